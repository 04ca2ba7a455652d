"""DMA write side: the AW issuer (HBM bursts) and the write router (W, local SRAMs, NoC)."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import StreamBroadcast, StreamFIFO
from hw.mem.sram import SRAMPortSignature

from .descriptor import ERR_BITS, Kind, noc_layout
from .rows import burst_beats, burst_layout, row_cursor, row_layout, w_layout, wbeat_layout

__all__ = ["WriteIssuer", "WriteRouter"]


class WriteIssuer(wiring.Component):
    """Cuts every HBM-destination row into AW bursts.

    Bursts are cut like the reads (:func:`~hw.dma.rows.burst_beats`), so a
    row is one or more INCR bursts of at most ``max_burst`` beats that never
    cross 4 KiB. Per burst three entries are queued together: the AW request,
    its length for the W channel, and whether it ends a descriptor (for the B
    tracking), up to ``max_writes`` bursts ahead. AW and W are decoupled: the
    W channel never waits for AWREADY.

    Parameters
    ----------
    addr_width, data_width, n_local, max_burst, max_writes :
        As :class:`~hw.dma.DMAEngine`.

    Attributes
    ----------
    i_rows : In(stream.Signature(row_layout(addr_width, n_local)))
        The rows whose destination is HBM, in descriptor order.
    o_aw : Out(stream.Signature(burst_layout(addr_width - log2(data_width / 8))))
        AW requests (word address, AXI ``len``).
    o_wlen : Out(stream.Signature(8))
        AXI ``len`` of each burst, in order, for the W channel.
    o_btrack : Out(stream.Signature(1))
        Per burst: it is the last of its descriptor (for the B responses).
    """

    AW_DEPTH = 2

    def __init__(self, *, addr_width, data_width, n_local, max_burst, max_writes):
        self.aw, self.lanes = addr_width, data_width // 8
        self.lw = (self.lanes - 1).bit_length()
        self.max_burst, self.max_writes = max_burst, max_writes
        super().__init__({
            "i_rows": In(stream.Signature(row_layout(addr_width, n_local))),
            "o_aw": Out(stream.Signature(burst_layout(addr_width - self.lw))),
            "o_wlen": Out(stream.Signature(8)),
            "o_btrack": Out(stream.Signature(1)),
        })

    def elaborate(self, platform):
        m = Module()
        lw, aw = self.lw, self.aw
        waw = aw - lw
        m.submodules.aw_fifo = aw_fifo = StreamFIFO(payload_shape=burst_layout(waw),
                                                    depth=self.AW_DEPTH)
        m.submodules.wlen_fifo = wlen_fifo = StreamFIFO(payload_shape=8, depth=self.max_writes)
        m.submodules.btrack = btrack = StreamFIFO(payload_shape=1, depth=self.max_writes)
        wiring.connect(m, aw_fifo.o_stream, wiring.flipped(self.o_aw))
        wiring.connect(m, wlen_fifo.o_stream, wiring.flipped(self.o_wlen))
        wiring.connect(m, btrack.o_stream, wiring.flipped(self.o_btrack))
        wr_active = Signal()
        wr_cur = Signal(waw)
        wr_end = Signal(waw)
        wr_last_row = Signal()
        wr_beats = burst_beats(m, wr_cur, wr_end, lanes=self.lanes, max_burst=self.max_burst,
                               name="wr")
        wr_step = Signal()
        wr_is_last = wr_cur + wr_beats > wr_end
        with m.If(wr_active):
            ok = aw_fifo.i_stream.ready & wlen_fifo.i_stream.ready & btrack.i_stream.ready
            m.d.comb += [
                wr_step.eq(ok),
                aw_fifo.i_stream.valid.eq(ok),
                aw_fifo.i_stream.payload.addr.eq(wr_cur),
                aw_fifo.i_stream.payload.len.eq(wr_beats - 1),
                wlen_fifo.i_stream.valid.eq(ok),
                wlen_fifo.i_stream.payload.eq(wr_beats - 1),
                btrack.i_stream.valid.eq(ok),
                btrack.i_stream.payload.eq(wr_last_row & wr_is_last),
            ]
        wr_done = wr_step & wr_is_last
        row_cursor(m, self.i_rows, step=wr_step, amount=wr_beats, done=wr_done, active=wr_active,
                   cur=wr_cur, end=wr_end, addr=lambda r: r.dst, span=(lw, aw),
                   latch=lambda r: [wr_last_row.eq(r.last)])
        return m


class WriteRouter(wiring.Component):
    """Sends each aligned write beat to its destination: W channel, local SRAMs or NoC.

    HBM beats go out on ``o_w`` grouped into the bursts announced on
    ``i_wlen`` (``last`` on the final beat of each); LOCAL beats are written
    to every SRAM port of ``dst_mask`` (a broadcast); REMOTE beats leave on
    ``o_noc``. The last beat of a descriptor also queues the descriptor's read
    error on ``o_wdone``; it waits until that queue has room.

    Parameters
    ----------
    addr_width, data_width, n_local, inflight :
        As :class:`~hw.dma.DMAEngine`.
    sram_addr_width : int
        Word-address width of the local SRAM ports.

    Attributes
    ----------
    i_stream : In(stream.Signature(wbeat_layout(...)))
        Destination-aligned write beats (from the realigner).
    i_wlen : In(stream.Signature(8))
        AXI ``len`` of each HBM write burst, in order (from the AW issuer).
    o_w : Out(stream.Signature(w_layout(data_width)))
        The AXI W channel.
    sram_wr : Out(SRAMPortSignature).array(n_local)
        Local SRAM write ports (responses, which writes never have, are accepted).
    o_noc : Out(stream.Signature(noc_layout(addr_width, data_width)))
        Remote writes; ``last`` on the final beat of a descriptor.
    o_wdone : Out(stream.Signature(ERR_BITS))
        Per descriptor whose beats have all left: its read error code (0: none).
    """

    def __init__(self, *, addr_width, data_width, n_local, sram_addr_width, inflight):
        self.aw, self.dw, self.n_local, self.inflight = addr_width, data_width, n_local, inflight
        self.lw = (data_width // 8 - 1).bit_length()
        sram_sig = SRAMPortSignature(addr_width=sram_addr_width, data_width=data_width)
        super().__init__({
            "i_stream": In(stream.Signature(wbeat_layout(data_width, addr_width - self.lw,
                                                         n_local))),
            "i_wlen": In(stream.Signature(8)),
            "o_w": Out(stream.Signature(w_layout(data_width))),
            "sram_wr": Out(sram_sig).array(n_local),
            "o_noc": Out(stream.Signature(noc_layout(addr_width, data_width))),
            "o_wdone": Out(stream.Signature(ERR_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        lw = self.lw
        m.submodules.rdone = rdone = StreamFIFO(payload_shape=ERR_BITS, depth=self.inflight)
        wiring.connect(m, rdone.o_stream, wiring.flipped(self.o_wdone))
        req_layout = self.sram_wr[0].req.payload.shape()
        m.submodules.local_bc = local_bc = StreamBroadcast(payload_shape=req_layout, n=self.n_local)
        for i in range(self.n_local):
            wiring.connect(m, local_bc.o_streams[i], wiring.flipped(self.sram_wr[i].req))
            m.d.comb += self.sram_wr[i].rsp.ready.eq(1)
        wb, w, noc, wlen = self.i_stream, self.o_w, self.o_noc, self.i_wlen
        can = ~wb.payload.desc_last | rdone.i_stream.ready
        wcnt = Signal(8)
        wlast = wcnt == wlen.payload
        m.d.comb += [
            w.payload.data.eq(wb.payload.data),
            w.payload.strb.eq(wb.payload.strb),
            w.payload.last.eq(wlast),
            local_bc.mask.eq(wb.payload.dst_mask),
            local_bc.i_stream.payload.addr.eq(wb.payload.addr),
            local_bc.i_stream.payload.we.eq(1),
            local_bc.i_stream.payload.wstrb.eq(wb.payload.strb),
            local_bc.i_stream.payload.wdata.eq(wb.payload.data),
            noc.payload.addr.eq(wb.payload.addr << lw),
            noc.payload.data.eq(wb.payload.data),
            noc.payload.strb.eq(wb.payload.strb),
            noc.payload.last.eq(wb.payload.desc_last),
        ]
        with m.Switch(wb.payload.dst_kind):
            with m.Case(Kind.HBM):
                m.d.comb += [
                    w.valid.eq(wb.valid & can & wlen.valid),
                    wb.ready.eq(w.ready & can & wlen.valid),
                ]
            with m.Case(Kind.LOCAL):
                m.d.comb += [
                    local_bc.i_stream.valid.eq(wb.valid & can),
                    wb.ready.eq(local_bc.i_stream.ready & can),
                ]
            with m.Default():
                m.d.comb += [
                    noc.valid.eq(wb.valid & can),
                    wb.ready.eq(noc.ready & can),
                ]
        w_fire = w.valid & w.ready
        with m.If(w_fire):
            m.d.sync += wcnt.eq(Mux(wlast, 0, wcnt + 1))
        m.d.comb += wlen.ready.eq(w_fire & wlast)
        m.d.comb += [
            rdone.i_stream.valid.eq(wb.valid & wb.ready & wb.payload.desc_last),
            rdone.i_stream.payload.eq(wb.payload.err),
        ]
        return m
