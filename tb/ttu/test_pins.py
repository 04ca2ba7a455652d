# amaranth: UnusedElaboratable=no
# (the bad-parameter test constructs blocks that are never elaborated)
"""``hw.ttu.pins.PinWrapper`` (FPGA measurement wrapper) in the Amaranth simulator:
inputs arrive through the serial chain, outputs are captured and shifted out."""
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.ttu import PinWrapper


class Reg(wiring.Component):
    """``y`` is ``x + 1``, registered."""

    def __init__(self):
        super().__init__({"x": In(16), "y": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.x + 1)
        return m


def test_pin_wrapper_round_trip():
    dut = PinWrapper(Reg(), width=8)
    got = []

    async def tb(ctx):
        for byte in (0x34, 0x12):        # the first byte ends up high: x = 0x3412
            ctx.set(dut.din, byte)
            await ctx.tick()
        await ctx.tick()                 # y <= x + 1 = 0x3413
        ctx.set(dut.cap, 1)
        await ctx.tick()
        ctx.set(dut.cap, 0)
        for _ in range(2):
            got.append(ctx.get(dut.dout))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == [0x34, 0x13], [hex(g) for g in got]  # most significant byte first


def test_pin_wrapper_rejects_non_components():
    with pytest.raises(TypeError, match="dut"):
        PinWrapper(object())
    with pytest.raises(ValueError, match="width"):
        PinWrapper(Reg(), width=0)
