from amaranth.hdl import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .params import check_shape

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Fully registered stream stage (a two-entry skid buffer).

    Breaks both the forward (``valid``/``payload``) and the backward
    (``ready``) combinational paths, so long streams can be pipelined
    without losing throughput: one beat per cycle at steady state.

    Parameters
    ----------
    payload_shape : shape-castable
        Shape of the stream payload.

    Attributes
    ----------
    i_stream : In(stream.Signature(payload_shape))
        Input; ``ready`` is a register output.
    o_stream : Out(stream.Signature(payload_shape))
        Output; ``valid`` and ``payload`` are register outputs.
    """

    def __init__(self, *, payload_shape):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        super().__init__({
            "i_stream": In(stream.Signature(payload_shape)),
            "o_stream": Out(stream.Signature(payload_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid_payload = Signal.like(self.i_stream.payload)

        # ready depends only on the skid register: no combinational path
        # from o_stream.ready back to i_stream.ready.
        m.d.comb += self.i_stream.ready.eq(~skid_valid)
        accept = self.i_stream.valid & self.i_stream.ready

        with m.If(~self.o_stream.valid | self.o_stream.ready):
            # Output register is free (or being emptied): refill it, oldest first.
            with m.If(skid_valid):
                m.d.sync += [
                    self.o_stream.valid.eq(1),
                    self.o_stream.payload.eq(skid_payload),
                    skid_valid.eq(0),
                ]
            with m.Else():
                m.d.sync += self.o_stream.valid.eq(self.i_stream.valid)
                with m.If(accept):
                    m.d.sync += self.o_stream.payload.eq(self.i_stream.payload)
        with m.Elif(accept):
            # Output stalled: park the beat that arrived with ready still high.
            m.d.sync += [
                skid_valid.eq(1),
                skid_payload.eq(self.i_stream.payload),
            ]
        return m
