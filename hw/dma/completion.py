"""DMA completion tracker: B responses and in-order completions."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import StreamFIFO, saturating_add

from .axi import Resp
from .descriptor import ERR_BITS, Err, completion_layout
from .rows import entry_layout

__all__ = ["CompletionTracker"]


class CompletionTracker(wiring.Component):
    """Completes descriptors in decode order, once all their writes are done.

    Every decoded descriptor queues an entry (``i_entry``, up to ``inflight``).
    The head entry completes at once when its decode failed (``skip``);
    otherwise when the write router reports its last beat gone (``i_wdone``)
    and, for an HBM destination, its last burst's B response arrived. B
    responses are taken in order (``i_btrack`` says which burst ends a
    descriptor); the first SLVERR / DECERR of a descriptor is kept. The code
    is the decode error, else the read error, else the write error.

    Parameters
    ----------
    inflight : int
        Descriptors between decode and completion.

    Attributes
    ----------
    i_entry : In(stream.Signature(entry_layout()))
        Completion entries from the decoder.
    i_wdone : In(stream.Signature(ERR_BITS))
        Read error code of each descriptor whose beats were all written.
    i_btrack : In(stream.Signature(1))
        Per HBM write burst: it ends its descriptor.
    i_b : In(stream.Signature(Resp))
        The AXI B channel (``bresp``); ready only when a burst is awaited.
    o_done : Out(stream.Signature(completion_layout()))
        Completions ``{sem, err}``, in descriptor order.
    errors : Out(16)
        Descriptors completed with an error (saturating).
    pending : Out(1)
        A descriptor is between decode and completion.
    """

    def __init__(self, *, inflight):
        self.inflight = inflight
        super().__init__({
            "i_entry": In(stream.Signature(entry_layout())),
            "i_wdone": In(stream.Signature(ERR_BITS)),
            "i_btrack": In(stream.Signature(1)),
            "i_b": In(stream.Signature(Resp.as_shape())),
            "o_done": Out(stream.Signature(completion_layout())),
            "errors": Out(16),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.comp_fifo = comp_fifo = StreamFIFO(payload_shape=entry_layout(),
                                                        depth=self.inflight)
        wiring.connect(m, wiring.flipped(self.i_entry), comp_fifo.i_stream)

        # ---- B responses: the first write error of each descriptor -------------
        m.submodules.bdone = bdone = StreamFIFO(payload_shape=ERR_BITS, depth=self.inflight)
        b, btrack = self.i_b, self.i_btrack
        berr = Signal(ERR_BITS)
        b_code = Mux(b.payload == Resp.SLVERR, Err.WR_SLVERR,
                     Mux(b.payload == Resp.DECERR, Err.WR_DECERR, Err.OK))
        b_err_next = Mux(berr == 0, b_code, berr)
        m.d.comb += [
            b.ready.eq(btrack.valid & bdone.i_stream.ready),
            btrack.ready.eq(b.valid & b.ready),
            bdone.i_stream.payload.eq(b_err_next),
            bdone.i_stream.valid.eq(b.valid & b.ready & btrack.payload),
        ]
        with m.If(b.valid & b.ready):
            m.d.sync += berr.eq(Mux(btrack.payload, 0, b_err_next))

        # ---- completion (in descriptor order) -----------------------------------
        head = comp_fifo.o_stream.payload
        wdone = self.i_wdone
        ready_to_complete = comp_fifo.o_stream.valid & (
            head.skip | (wdone.valid & (~head.hbm | bdone.o_stream.valid)))
        done_fire = self.o_done.valid & self.o_done.ready
        m.d.comb += [
            self.o_done.valid.eq(ready_to_complete),
            self.o_done.payload.sem.eq(head.sem),
            self.o_done.payload.err.eq(
                Mux(head.skip, head.err,
                    Mux(wdone.payload != 0, wdone.payload,
                        Mux(head.hbm, bdone.o_stream.payload, 0)))),
            comp_fifo.o_stream.ready.eq(done_fire),
            wdone.ready.eq(done_fire & ~head.skip),
            bdone.o_stream.ready.eq(done_fire & ~head.skip & head.hbm),
            self.pending.eq(comp_fifo.o_stream.valid),
        ]
        with m.If(done_fire & (self.o_done.payload.err != 0)):
            saturating_add(m, self.errors)
        return m
