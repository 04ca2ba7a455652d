"""An SRAM port onto AXI4, and one SRAM port split over two address windows.

The FPGA prototype's host bridge reaches the tile SRAM and the board's HBM
stand-in through one :class:`~hw.mem.sram.SRAMPortSignature`:
:class:`PortSplit` sends each request to the window its address falls in and
returns the read responses in request order, and :class:`PortToAXI` turns the
HBM window's requests into single-beat AXI4 transactions.
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int
from hw.dma.axi import AXI4Signature

from .sram import SRAMPortSignature

__all__ = ["PortToAXI", "PortSplit"]

_INCR = 1


class PortToAXI(wiring.Component):
    """SRAM-port requests as single-beat AXI4 reads and writes, one at a time.

    A request is taken, then its AXI transaction runs to the end (B for a
    write, R for a read) before the next is taken, so requests complete in
    order; a read's data goes out on ``port.rsp``. Meant for slow traffic (a
    host link), not for streaming.

    Parameters
    ----------
    addr_width : int
        Word-address width of the port.
    data_width : int
        Word width = AXI data width.
    axi_addr_width : int
        AXI byte-address width.

    Attributes
    ----------
    port : In(SRAMPortSignature)
        The requests (word addresses).
    m_axi : Out(AXI4Signature)
        The AXI master.
    errors : Out(1)
        Sticky: a response was not ``OKAY``.
    """

    def __init__(self, *, addr_width, data_width, axi_addr_width):
        self._aw = check_int("addr_width", addr_width, min=1)
        self._dw = data_width
        self._shift = (data_width // 8 - 1).bit_length()
        check_int("axi_addr_width", axi_addr_width, min=addr_width + self._shift)
        super().__init__({
            "port": In(SRAMPortSignature(addr_width=addr_width, data_width=data_width)),
            "m_axi": Out(AXI4Signature(addr_width=axi_addr_width, data_width=data_width)),
            "errors": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req, rsp, axi = self.port.req, self.port.rsp, self.m_axi
        cur = Signal.like(req.payload)
        aw_done, w_done = Signal(), Signal()
        byte_addr = cur.addr << self._shift
        m.d.comb += [axi.awaddr.eq(byte_addr), axi.araddr.eq(byte_addr),
                     axi.awlen.eq(0), axi.arlen.eq(0),
                     axi.awsize.eq(self._shift), axi.arsize.eq(self._shift),
                     axi.awburst.eq(_INCR), axi.arburst.eq(_INCR),
                     axi.wdata.eq(cur.wdata), axi.wstrb.eq(cur.wstrb), axi.wlast.eq(1),
                     rsp.payload.eq(axi.rdata)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    m.d.sync += [cur.eq(req.payload), aw_done.eq(0), w_done.eq(0)]
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.If(cur.we):
                    m.next = "WRITE"
                with m.Else():
                    m.next = "READ"
            with m.State("WRITE"):
                m.d.comb += [axi.awvalid.eq(~aw_done), axi.wvalid.eq(~w_done)]
                with m.If(axi.awvalid & axi.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(axi.wvalid & axi.wready):
                    m.d.sync += w_done.eq(1)
                m.d.comb += axi.bready.eq(aw_done & w_done)
                with m.If(axi.bvalid & axi.bready):
                    m.d.sync += self.errors.eq(self.errors | (axi.bresp != 0))
                    m.next = "IDLE"
            with m.State("READ"):
                m.d.comb += axi.arvalid.eq(~aw_done)
                with m.If(axi.arvalid & axi.arready):
                    m.d.sync += aw_done.eq(1)
                # The R beat waits in the slave until the port takes it.
                m.d.comb += [rsp.valid.eq(aw_done & axi.rvalid),
                             axi.rready.eq(aw_done & rsp.ready)]
                with m.If(axi.rvalid & axi.rready):
                    m.d.sync += self.errors.eq(self.errors | (axi.rresp != 0))
                    m.next = "IDLE"
        return m


class PortSplit(wiring.Component):
    """One SRAM port over two windows: ``[0, split)`` to ``low``, ``[split, ...)`` to
    ``high`` (at address ``addr - split``).

    Writes are posted to either side. A read goes out only while no read of the
    other side is outstanding, so the responses come back in request order
    without a reorder buffer (the host link reads one window at a time).

    Parameters
    ----------
    addr_width : int
        Word-address width of ``port``.
    split : int
        First address of the ``high`` window (``0 < split < 2**addr_width``).
    low_width, high_width : int
        Word-address widths of the two sides.
    data_width : int
        Word width.
    max_reads : int
        Reads in flight to one side.
    """

    def __init__(self, *, addr_width, split, low_width, high_width, data_width, max_reads=4):
        check_int("addr_width", addr_width, min=1)
        self._split = check_int("split", split, min=1, max=(1 << addr_width) - 1)
        self._max = check_int("max_reads", max_reads, min=1)
        super().__init__({
            "port": In(SRAMPortSignature(addr_width=addr_width, data_width=data_width)),
            "low": Out(SRAMPortSignature(addr_width=low_width, data_width=data_width)),
            "high": Out(SRAMPortSignature(addr_width=high_width, data_width=data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        req, rsp = self.port.req, self.port.rsp
        high = Signal()
        m.d.comb += high.eq(req.payload.addr >= self._split)
        pending = Signal(range(self._max + 1))
        side = Signal()     # the side of the outstanding reads
        is_read = ~req.payload.we
        blocked = is_read & (pending != 0) & ((side != high) | (pending == self._max))
        for sel, out, offset in ((0, self.low, 0), (1, self.high, self._split)):
            # Field by field: the two sides' layouts differ in the address width.
            m.d.comb += [out.req.payload.we.eq(req.payload.we),
                         out.req.payload.wstrb.eq(req.payload.wstrb),
                         out.req.payload.wdata.eq(req.payload.wdata),
                         out.req.payload.addr.eq(req.payload.addr - offset),
                         out.req.valid.eq(req.valid & (high == sel) & ~blocked)]
        m.d.comb += req.ready.eq(~blocked & Mux(high, self.high.req.ready,
                                                 self.low.req.ready))
        sent = req.valid & req.ready & is_read
        # Responses: only the side of the outstanding reads can answer.
        m.d.comb += [rsp.valid.eq(Mux(side, self.high.rsp.valid, self.low.rsp.valid)),
                     rsp.payload.eq(Mux(side, self.high.rsp.payload, self.low.rsp.payload)),
                     self.low.rsp.ready.eq(rsp.ready & ~side),
                     self.high.rsp.ready.eq(rsp.ready & side)]
        back = rsp.valid & rsp.ready
        with m.If(sent):
            m.d.sync += side.eq(high)
        m.d.sync += pending.eq(pending + sent - back)
        return m
