"""An AXI4 slave memory inside the simulated top: the tile's HBM for ``make sim``.

The AXI protocol is Amaranth; the storage is the Verilog array
``sim/rtl/verilog/sim_hbm_storage.v`` (an :class:`~amaranth.hdl.Instance`), which
loads the image at time 0 and dumps a range on request, so neither loading, the
run nor the read-back calls Python per word or per cycle. The tests that inject
back-pressure keep the cocotbext-axi ``AxiRam`` (:mod:`sim.rtl.image`).

Timing: one R beat per cycle (first beat two cycles after the AR handshake,
bursts back to back through a two-entry AR queue) and one W beat per cycle; the B
response follows the last W beat. INCR bursts of full-width beats (what the DMA
issues); addresses wrap modulo the memory size (the DMA range-checks them against
``hbm_size`` first).
"""
from pathlib import Path

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from hw.common import StreamFIFO, check_int, check_pow2
from hw.dma.axi import AXI4Signature

__all__ = ["HBMModel", "STORAGE_V"]

#: The Verilog storage module instantiated by :class:`HBMModel` (an extra source of the build).
STORAGE_V = Path(__file__).resolve().parent / "verilog" / "sim_hbm_storage.v"


class HBMModel(wiring.Component):
    """AXI4 slave memory of ``size`` bytes (simulation only).

    Parameters
    ----------
    addr_width, data_width : int
        AXI address and data widths (the tile's ``m_axi``).
    size : int
        Bytes (a power of two, at least one beat).

    Attributes
    ----------
    axi : In(AXI4Signature)
        The slave side of the master's ``m_axi``.
    dump : In(1)
        High at a clock edge: write the dump range to the ``+HBM_DUMP`` file.
    """

    def __init__(self, *, addr_width, data_width, size):
        self.data_width = check_pow2("data_width", data_width, min=8, max=1024)
        self.beat = data_width // 8
        self.size = check_pow2("size", size, min=self.beat)
        self.depth = size // self.beat
        check_int("addr_width", addr_width, min=(size - 1).bit_length())
        self.addr_width = addr_width
        super().__init__({"axi": In(AXI4Signature(addr_width=addr_width, data_width=data_width)),
                          "dump": In(1)})

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        shift = (self.beat - 1).bit_length()
        aw = max(1, (self.depth - 1).bit_length())
        req = data.StructLayout({"addr": aw, "len": 8, "id": len(axi.arid)})
        ren, raddr, rdata = Signal(), Signal(aw), Signal(self.data_width)
        wen, waddr = Signal(self.beat), Signal(aw)
        m.submodules.storage = Instance(
            "sim_hbm_storage", p_WIDTH=self.data_width, p_DEPTH=self.depth, p_AW=aw,
            i_clk=ClockSignal(), i_ren=ren, i_raddr=raddr, o_rdata=rdata,
            i_wen=wen, i_waddr=waddr, i_wdata=axi.wdata, i_dump=self.dump)

        # Read: AR queue -> burst counter -> one storage read per beat. The storage
        # holds rdata while ren is low, so a stalled R beat keeps its data.
        m.submodules.ar_q = arq = StreamFIFO(payload_shape=req, depth=2)
        m.d.comb += [arq.i_stream.valid.eq(axi.arvalid), axi.arready.eq(arq.i_stream.ready),
                     arq.i_stream.payload.addr.eq(axi.araddr >> shift),
                     arq.i_stream.payload.len.eq(axi.arlen),
                     arq.i_stream.payload.id.eq(axi.arid)]
        r_addr, r_left, r_id = Signal(aw), Signal(9), Signal(len(axi.arid))
        rvalid, rlast, rid = Signal(), Signal(), Signal(len(axi.rid))
        issue = Signal()
        m.d.comb += [issue.eq((r_left != 0) & (~rvalid | axi.rready)),
                     ren.eq(issue), raddr.eq(r_addr)]
        take_ar = arq.o_stream.valid & ((r_left == 0) | (issue & (r_left == 1)))
        m.d.comb += arq.o_stream.ready.eq(take_ar)
        with m.If(issue):
            m.d.sync += [r_addr.eq(r_addr + 1), r_left.eq(r_left - 1),
                         rlast.eq(r_left == 1), rid.eq(r_id)]
        with m.If(take_ar):
            p = arq.o_stream.payload
            m.d.sync += [r_addr.eq(p.addr), r_left.eq(p.len + 1), r_id.eq(p.id)]
        with m.If(issue):
            m.d.sync += rvalid.eq(1)
        with m.Elif(axi.rready):
            m.d.sync += rvalid.eq(0)
        m.d.comb += [axi.rvalid.eq(rvalid), axi.rlast.eq(rlast), axi.rid.eq(rid),
                     axi.rdata.eq(rdata), axi.rresp.eq(0)]

        # Write: AW queue -> burst counter -> one storage write per W beat -> B queue.
        m.submodules.aw_q = awq = StreamFIFO(payload_shape=req, depth=2)
        m.submodules.b_q = bq = StreamFIFO(payload_shape=len(axi.bid), depth=2)
        m.d.comb += [awq.i_stream.valid.eq(axi.awvalid), axi.awready.eq(awq.i_stream.ready),
                     awq.i_stream.payload.addr.eq(axi.awaddr >> shift),
                     awq.i_stream.payload.len.eq(axi.awlen),
                     awq.i_stream.payload.id.eq(axi.awid)]
        w_addr, w_left, w_id = Signal(aw), Signal(9), Signal(len(axi.awid))
        wready = Signal()
        m.d.comb += wready.eq((w_left != 0) & (bq.i_stream.ready | (w_left != 1)))
        beat = wready & axi.wvalid
        last = beat & (w_left == 1)
        m.d.comb += [axi.wready.eq(wready), wen.eq(Mux(beat, axi.wstrb, 0)), waddr.eq(w_addr),
                     bq.i_stream.valid.eq(last), bq.i_stream.payload.eq(w_id)]
        take_aw = awq.o_stream.valid & ((w_left == 0) | last)
        m.d.comb += awq.o_stream.ready.eq(take_aw)
        with m.If(beat):
            m.d.sync += [w_addr.eq(w_addr + 1), w_left.eq(w_left - 1)]
        with m.If(take_aw):
            p = awq.o_stream.payload
            m.d.sync += [w_addr.eq(p.addr), w_left.eq(p.len + 1), w_id.eq(p.id)]
        m.d.comb += [axi.bvalid.eq(bq.o_stream.valid), axi.bid.eq(bq.o_stream.payload),
                     axi.bresp.eq(0), bq.o_stream.ready.eq(axi.bready)]
        return m
