"""The ULX3S-85F board top: the FPGA tile behind the board's PLL, UART and LEDs.

Pins come from ``amaranth_boards.ulx3s`` (imported only when a platform is
built): the 25 MHz oscillator feeds :class:`~hw.board.pll.ECP5PLL`, whose lock
releases the reset of the ``sync`` domain; the FTDI UART (``uart`` 0) is the
host link; LEDs 0-2 show the three queues DONE, LED 3 any queue in ERROR,
LED 7 the PLL lock. ``make bitstream`` builds it (``scripts/bitstream.py``).
"""
from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from hw.cp.queue import QueueState
from hw.common import check_int

from .fpga_tile import FPGA_TILE, FPGATile
from .pll import ECP5PLL

__all__ = ["ULX3STile", "OSC_MHZ"]

#: The board's oscillator.
OSC_MHZ = 25


class ULX3STile(Elaboratable):
    """:class:`~hw.board.FPGATile` on a ULX3S (LFE5U-85F).

    Parameters
    ----------
    params : TileParams
        The tile.
    f_mhz : float
        System clock made by the PLL.
    baud : int
        UART bit rate (the divisor is ``round(f_mhz * 1e6 / baud)``).
    """

    def __init__(self, *, params=FPGA_TILE, f_mhz=50, baud=115200):
        self.pll = ECP5PLL(f_in_mhz=OSC_MHZ, f_out_mhz=f_mhz)
        self.f_mhz = self.pll.f_out_mhz
        self.baud = check_int("baud", baud, min=1200, max=3_000_000)
        self.divisor = round(self.f_mhz * 1e6 / baud)
        self.tile = FPGATile(params=params, divisor=self.divisor)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.pll = pll = self.pll
        m.submodules.tile = tile = self.tile
        m.submodules.rst = ResetSynchronizer(~pll.locked, domain="sync")
        clk = platform.request("clk25", dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk)
        m.d.comb += pll.clk_in.eq(clk_buf.i)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [tile.rx.eq(rx.i), tx.o.eq(tile.tx)]
        leds = []
        for i in range(8):
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            leds.append(led)
        for q in range(3):
            m.d.comb += leds[q].o.eq(tile.status[q].state == QueueState.DONE)
        error = Cat(*(tile.status[q].state == QueueState.ERROR for q in range(3)))
        m.d.comb += [leds[3].o.eq(error.any()), leds[7].o.eq(pll.locked)]
        return m
