"""AXI4 slave memory: the HBM of a tile that has no HBM (the FPGA prototype).

:class:`AXIRam` answers the INCR bursts the DMA issues (full-width beats) at one
R beat and one W beat per cycle. The storage is a synchronous block RAM
(:class:`~amaranth.lib.memory.Memory`, byte-enable writes), so on an ECP5 it
maps to DP16KD. The AXI engine only needs a storage with a read enable that
holds its data while the enable is low; :meth:`AXIRam.storage` builds it and a
subclass may build another (the ``make sim`` HBM model uses a Verilog array
that loads a file at time 0).
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from hw.common import StreamFIFO, check_int, check_pow2
from hw.dma.axi import AXI4Signature, Resp

__all__ = ["AXIRam"]


class AXIRam(wiring.Component):
    """AXI4 slave memory of ``size`` bytes.

    Reads: AR queue (two entries) -> burst counter -> one storage read per R beat;
    the first beat is valid two cycles after the AR handshake and bursts follow
    back to back. Writes: AW queue -> one storage write per W beat (``wstrb`` is
    the byte enable) -> B after the last beat. Addresses are taken modulo
    ``size`` (the master range-checks against its HBM size), every response is
    ``OKAY``.

    Parameters
    ----------
    addr_width : int
        AXI byte-address width.
    data_width : int
        AXI data width in bits (power of two).
    size : int
        Bytes (a power of two, at least one beat).
    init : sequence of int
        Initial words (block RAM contents at configuration).

    Attributes
    ----------
    axi : In(AXI4Signature)
        The slave side of a master's ``m_axi``.
    """

    def __init__(self, *, addr_width, data_width, size, init=()):
        self.data_width = check_pow2("data_width", data_width, min=8, max=1024)
        self.beat = data_width // 8
        self.size = check_pow2("size", size, min=self.beat)
        self.depth = size // self.beat
        check_int("addr_width", addr_width, min=max(12, (size - 1).bit_length()))
        self.addr_width = addr_width
        self.init = list(init)
        if len(self.init) > self.depth:
            raise ValueError(f"init has {len(self.init)} words, more than the {self.depth} "
                             "of size")
        super().__init__(self.members())

    def members(self):
        """The signature's members (a subclass may add its own)."""
        return {"axi": In(AXI4Signature(addr_width=self.addr_width, data_width=self.data_width))}

    @property
    def word_addr_width(self):
        return max(1, (self.depth - 1).bit_length())

    def storage(self, m, *, ren, raddr, rdata, wen, waddr, wdata):
        """Build the storage: ``rdata`` is word ``raddr`` one cycle after ``ren``
        and holds while ``ren`` is low; byte ``i`` of ``wdata`` is written to
        word ``waddr`` when ``wen[i]``."""
        m.submodules.mem = mem = Memory(shape=self.data_width, depth=self.depth, init=self.init)
        rd = mem.read_port()
        wr = mem.write_port(granularity=8)
        m.d.comb += [rd.en.eq(ren), rd.addr.eq(raddr), rdata.eq(rd.data),
                     wr.en.eq(wen), wr.addr.eq(waddr), wr.data.eq(wdata)]

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        shift = (self.beat - 1).bit_length()
        aw = self.word_addr_width
        req = data.StructLayout({"addr": aw, "len": 8, "id": len(axi.arid)})
        ren, raddr, rdata = Signal(), Signal(aw), Signal(self.data_width)
        wen, waddr = Signal(self.beat), Signal(aw)
        self.storage(m, ren=ren, raddr=raddr, rdata=rdata, wen=wen, waddr=waddr,
                     wdata=axi.wdata)

        def address_queue(name, valid, ready, addr, length, ident):
            q = StreamFIFO(payload_shape=req, depth=2)
            m.submodules[name] = q
            m.d.comb += [q.i_stream.valid.eq(valid), ready.eq(q.i_stream.ready),
                         q.i_stream.payload.addr.eq(addr >> shift),
                         q.i_stream.payload.len.eq(length), q.i_stream.payload.id.eq(ident)]
            return q.o_stream

        # Read: a beat is read from the storage when the R register is free or
        # being emptied; the next AR is taken as the current burst's last beat goes.
        ar = address_queue("ar_q", axi.arvalid, axi.arready, axi.araddr, axi.arlen, axi.arid)
        r_addr, r_left, r_id = Signal(aw), Signal(9), Signal(len(axi.arid))
        rvalid, rlast, rid = Signal(), Signal(), Signal(len(axi.rid))
        issue = Signal()
        m.d.comb += [issue.eq((r_left != 0) & (~rvalid | axi.rready)),
                     ren.eq(issue), raddr.eq(r_addr)]
        take_ar = ar.valid & ((r_left == 0) | (issue & (r_left == 1)))
        m.d.comb += ar.ready.eq(take_ar)
        with m.If(issue):
            m.d.sync += [r_addr.eq(r_addr + 1), r_left.eq(r_left - 1),
                         rlast.eq(r_left == 1), rid.eq(r_id), rvalid.eq(1)]
        with m.Elif(axi.rready):
            m.d.sync += rvalid.eq(0)
        with m.If(take_ar):
            m.d.sync += [r_addr.eq(ar.payload.addr), r_left.eq(ar.payload.len + 1),
                         r_id.eq(ar.payload.id)]
        m.d.comb += [axi.rvalid.eq(rvalid), axi.rlast.eq(rlast), axi.rid.eq(rid),
                     axi.rdata.eq(rdata), axi.rresp.eq(Resp.OKAY)]

        # Write: W beats are accepted while a burst is open and, for its last
        # beat, the B queue has room.
        awq = address_queue("aw_q", axi.awvalid, axi.awready, axi.awaddr, axi.awlen, axi.awid)
        m.submodules.b_q = bq = StreamFIFO(payload_shape=len(axi.bid), depth=2)
        w_addr, w_left, w_id = Signal(aw), Signal(9), Signal(len(axi.awid))
        wready = Signal()
        m.d.comb += wready.eq((w_left != 0) & (bq.i_stream.ready | (w_left != 1)))
        beat = wready & axi.wvalid
        last = beat & (w_left == 1)
        m.d.comb += [axi.wready.eq(wready), wen.eq(Mux(beat, axi.wstrb, 0)), waddr.eq(w_addr),
                     bq.i_stream.valid.eq(last), bq.i_stream.payload.eq(w_id)]
        take_aw = awq.valid & ((w_left == 0) | last)
        m.d.comb += awq.ready.eq(take_aw)
        with m.If(beat):
            m.d.sync += [w_addr.eq(w_addr + 1), w_left.eq(w_left - 1)]
        with m.If(take_aw):
            m.d.sync += [w_addr.eq(awq.payload.addr), w_left.eq(awq.payload.len + 1),
                         w_id.eq(awq.payload.id)]
        m.d.comb += [axi.bvalid.eq(bq.o_stream.valid), axi.bid.eq(bq.o_stream.payload),
                     axi.bresp.eq(Resp.OKAY), bq.o_stream.ready.eq(axi.bready)]
        return m
