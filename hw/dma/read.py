"""DMA read issuer: AR bursts toward HBM or word reads of the local SRAM, with the read buffers."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import SkidBuffer, StreamFIFO
from hw.mem.sram import SRAMPortSignature

from .descriptor import KIND_BITS, Kind
from .rows import burst_beats, burst_layout, rbeat_layout, row_cursor, row_layout

__all__ = ["ReadIssuer"]


class ReadIssuer(wiring.Component):
    """Reads the source words of every row, in row order, into two read buffers.

    An HBM row is cut into INCR bursts (:func:`~hw.dma.rows.burst_beats`); a
    burst is issued on ``o_ar`` only when the HBM read buffer has room for all
    its beats (space reserved at AR time), so ``i_r.ready`` is high whenever
    the slave returns only beats it owes. A local row is read one word a cycle
    on ``sram``, with up to ``SRAM_BUFFER`` reads issued or buffered. Rows
    follow each other without a bubble (:func:`~hw.dma.rows.row_cursor`).

    Parameters
    ----------
    addr_width, data_width, n_local, max_burst, read_buffer :
        As :class:`~hw.dma.DMAEngine`.
    sram_addr_width : int
        Word-address width of the local SRAM port.

    Attributes
    ----------
    i_rows : In(stream.Signature(row_layout(addr_width, n_local)))
        Rows, in descriptor order.
    o_ar : Out(stream.Signature(burst_layout(addr_width - log2(data_width / 8))))
        AR requests (word address, AXI ``len``); a registered stage.
    i_r : In(stream.Signature(rbeat_layout(data_width)))
        The AXI R channel (data, response).
    sram : Out(SRAMPortSignature(addr_width=sram_addr_width, data_width=data_width))
        Local SRAM reads (``we`` = 0).
    o_hbm : Out(stream.Signature(rbeat_layout(data_width)))
        HBM words, in order.
    o_sram : Out(stream.Signature(data_width))
        Local SRAM words, in order.
    """

    SRAM_BUFFER = 4

    def __init__(self, *, addr_width, data_width, n_local, sram_addr_width, max_burst,
                 read_buffer):
        self.aw, self.dw = addr_width, data_width
        self.lanes = data_width // 8
        self.lw = (self.lanes - 1).bit_length()
        self.max_burst, self.read_buffer = max_burst, read_buffer
        super().__init__({
            "i_rows": In(stream.Signature(row_layout(addr_width, n_local))),
            "o_ar": Out(stream.Signature(burst_layout(addr_width - self.lw))),
            "i_r": In(stream.Signature(rbeat_layout(data_width))),
            "sram": Out(SRAMPortSignature(addr_width=sram_addr_width, data_width=data_width)),
            "o_hbm": Out(stream.Signature(rbeat_layout(data_width))),
            "o_sram": Out(stream.Signature(data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        aw, lw = self.aw, self.lw
        waw = aw - lw
        nbuf = self.SRAM_BUFFER
        m.submodules.rbuf = rbuf = StreamFIFO(payload_shape=rbeat_layout(self.dw),
                                              depth=self.read_buffer)
        m.submodules.sbuf = sbuf = StreamFIFO(payload_shape=self.dw, depth=nbuf)
        m.submodules.ar_skid = ar_skid = SkidBuffer(payload_shape=burst_layout(waw))
        wiring.connect(m, ar_skid.o_stream, wiring.flipped(self.o_ar))
        wiring.connect(m, rbuf.o_stream, wiring.flipped(self.o_hbm))
        wiring.connect(m, sbuf.o_stream, wiring.flipped(self.o_sram))

        r_reserved = Signal(range(self.read_buffer + 1))  # beats requested, not yet buffered
        s_reserved = Signal(range(nbuf + 1))
        rd_active = Signal()
        rd_cur = Signal(waw)
        rd_end = Signal(waw)
        rd_kind = Signal(KIND_BITS)
        rd_beats = burst_beats(m, rd_cur, rd_end, lanes=self.lanes, max_burst=self.max_burst,
                               name="rd")
        ar_push = Signal()
        s_push = Signal()
        rd_step = Signal()  # the burst / word at rd_cur is issued this cycle
        r_room = Signal()
        m.d.comb += r_room.eq(r_reserved + rbuf.level + rd_beats <= self.read_buffer)
        with m.If(rd_active):
            with m.If(rd_kind == Kind.HBM):
                m.d.comb += [
                    ar_skid.i_stream.valid.eq(r_room),
                    ar_skid.i_stream.payload.addr.eq(rd_cur),
                    ar_skid.i_stream.payload.len.eq(rd_beats - 1),
                    ar_push.eq(r_room & ar_skid.i_stream.ready),
                    rd_step.eq(ar_push),
                ]
            with m.Else():
                room = s_reserved + sbuf.level < nbuf
                m.d.comb += [
                    self.sram.req.valid.eq(room),
                    s_push.eq(room & self.sram.req.ready),
                    rd_step.eq(s_push),
                ]
        # Outside any If, so the constant fields are plain assigns (lint-clean Verilog).
        m.d.comb += [
            self.sram.req.payload.addr.eq(rd_cur),
            self.sram.req.payload.we.eq(0),
            self.sram.req.payload.wstrb.eq(0),
            self.sram.req.payload.wdata.eq(0),
        ]
        step_words = Mux(rd_kind == Kind.HBM, rd_beats, 1)
        rd_done = rd_step & (rd_cur + step_words > rd_end)
        row_cursor(m, self.i_rows, step=rd_step, amount=step_words, done=rd_done,
                   active=rd_active, cur=rd_cur, end=rd_end, addr=lambda r: r.src, span=(lw, aw),
                   latch=lambda r: [rd_kind.eq(r.src_kind)])
        wiring.connect(m, wiring.flipped(self.i_r), rbuf.i_stream)
        r_accept = self.i_r.valid & self.i_r.ready
        m.d.sync += r_reserved.eq(r_reserved + Mux(ar_push, rd_beats, 0) - r_accept)
        wiring.connect(m, wiring.flipped(self.sram.rsp), sbuf.i_stream)
        s_accept = self.sram.rsp.valid & self.sram.rsp.ready
        m.d.sync += s_reserved.eq(s_reserved + s_push - s_accept)
        return m
