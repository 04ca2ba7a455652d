"""One whole tile as an FPGA prototype: the tile, a UART host bridge and on-chip HBM.

::

    rx -> HostUARTBridge -host-> PortSplit -low->  Tile.host        (tile SRAM words)
                         |                -high-> PortToAXI -+
                         | load/start/status/...              AXIArbiter -> AXIRam
                         |                      Tile.m_axi --+      (the HBM stand-in)
    tx <-----------------+

The host sees one word-address space (``docs/fpga.md``): tile SRAM words at
``[0, sram_words)``, HBM words at ``[sram_words, sram_words + hbm_words)``; the
bridge range-checks against the sum. The tile's DMA reaches the same block RAM
through its ``m_axi``. There is no network on a one-tile board: remote writes
of the DMA (``noc``) are accepted and counted in ``noc_drops``.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.cluster import AXIArbiter
from hw.common import check_int, saturating_add
from hw.host import HostUARTBridge
from hw.host.protocol import Geometry
from hw.mem.axi_ram import AXIRam
from hw.mem.port_axi import PortSplit, PortToAXI
from hw.tile import Tile, TileParams

__all__ = ["FPGATile", "FPGA_TILE", "fpga_geometry"]

#: The tile configuration of the ECP5-85F prototype (``docs/fpga.md``): every
#: engine, a 4x4 TTU in FP8 and FP4, 4 TVP lanes, 32 KiB tile SRAM and 32 KiB of
#: block RAM as HBM.
FPGA_TILE = TileParams(n=4, sram_size=32 * 1024, banks=4, hbm_size=32 * 1024,
                       formats=("fp8_e4m3", "fp4_e2m1"), max_k_beats=64, max_n_tiles=8,
                       depth=256)


def fpga_geometry(params):
    """The host link's :class:`~hw.host.protocol.Geometry` of an :class:`FPGATile` of
    ``params`` (what ``sim.host`` builds its frames from), without building the tile."""
    words = params.words + params.hbm_size // params.word_bytes
    return Geometry(word_bits=params.word_bits, addr_width=(words - 1).bit_length(),
                    words=words, depth=params.depth, n_queues=3,
                    sems_shape=data.ArrayLayout(8, params.n_sems))


class FPGATile(wiring.Component):
    """A :class:`~hw.tile.Tile` with its host bridge and HBM stand-in, for one FPGA.

    Parameters
    ----------
    params : TileParams
        The tile (its ``hbm_size`` is the size of the block-RAM HBM).
    divisor : int
        UART clock cycles per bit (``f_clk / baud``).
    timeout_bytes : int
        The host bridge's frame timeout in byte times.

    Attributes
    ----------
    rx : In(1)
        UART receive (idle high).
    tx : Out(1)
        UART transmit.
    status : Out
        The tile's per-queue status (for LEDs).
    link_errors : Out(16)
        Error replies of the bridge.
    noc_drops : Out(16)
        Remote writes of the DMA dropped (no network), saturating.
    """

    def __init__(self, *, params=FPGA_TILE, divisor=434, timeout_bytes=64):
        if not isinstance(params, TileParams):
            raise TypeError(f"params must be a TileParams, not {params!r}")
        check_int("divisor", divisor, min=4)
        self.params = p = params
        self.tile = Tile(params=p)
        self.sram_words = p.words
        self.hbm_words = p.hbm_size // p.word_bytes
        words = self.sram_words + self.hbm_words
        self.addr_width = (words - 1).bit_length()
        members = self.tile.signature.members
        self.bridge = HostUARTBridge(
            divisor=divisor, timeout_bytes=timeout_bytes, word_bits=p.word_bits,
            addr_width=self.addr_width, words=words, depth=p.depth, n_queues=len(self.tile.start),
            status_shape=members["status"].shape, sems_shape=members["sems"].shape,
            errors_shape=members["errors"].shape, macs_width=len(self.tile.macs))
        self.geometry = self.bridge.geometry
        if self.geometry != fpga_geometry(p):   # the host computes it without a tile
            raise AssertionError(f"fpga_geometry({p}) differs from the tile's ports")
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "status": Out(members["status"].shape),
            "link_errors": Out(16),
            "noc_drops": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.tile = tile = self.tile
        m.submodules.bridge = bridge = self.bridge
        hbm_aw = max(1, (self.hbm_words - 1).bit_length())
        m.submodules.split = split = PortSplit(
            addr_width=self.addr_width, split=self.sram_words, low_width=tile.sram.addr_width,
            high_width=hbm_aw, data_width=p.word_bits)
        m.submodules.host_axi = host_axi = PortToAXI(
            addr_width=hbm_aw, data_width=p.word_bits, axi_addr_width=p.addr_width)
        m.submodules.arbiter = arb = AXIArbiter(n=2, addr_width=p.addr_width,
                                                data_width=p.word_bits)
        m.submodules.hbm = hbm = AXIRam(addr_width=p.addr_width, data_width=p.word_bits,
                                        size=p.hbm_size)

        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx),
                     self.link_errors.eq(bridge.link_errors), self.status.eq(tile.status)]
        wiring.connect(m, bridge.host, split.port)
        wiring.connect(m, split.low, tile.host)
        wiring.connect(m, split.high, host_axi.port)
        wiring.connect(m, bridge.load, tile.load)
        m.d.comb += [tile.start.eq(bridge.start), bridge.status.eq(tile.status),
                     bridge.sems.eq(tile.sems), bridge.errors.eq(tile.errors),
                     bridge.macs.eq(tile.macs)]
        # The DMA first: its bursts are what a running program waits on.
        wiring.connect(m, tile.m_axi, arb.s_axi[0])
        wiring.connect(m, host_axi.m_axi, arb.s_axi[1])
        wiring.connect(m, arb.m_axi, hbm.axi)

        m.d.comb += [tile.noc.ready.eq(1), tile.noc_in.req.valid.eq(0),
                     tile.noc_in.rsp.ready.eq(1), tile.sem_inc.valid.eq(0)]
        with m.If(tile.noc.valid):
            saturating_add(m, self.noc_drops)
        return m
