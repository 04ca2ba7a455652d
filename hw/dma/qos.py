"""Priority stream arbiter with starvation avoidance (the DMA's QoS classes)."""
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, check_shape, select_stream

__all__ = ["QoSArbiter"]


class QoSArbiter(wiring.Component):
    """Merge ``n`` streams by fixed priority (index 0 highest) with an ageing bound.

    Every grant to another input while input ``i`` waits counts towards ``i``'s
    age; an input whose age reached ``starve_limit`` is served before any
    non-starving one (lowest index first among starving inputs). Hence the
    lowest class of two waits for at most ``starve_limit`` grants to the
    other. A grant is held while its beat is offered and not taken, so the
    output obeys the stream rules.

    Parameters
    ----------
    payload_shape : shape-castable
        Payload of every stream.
    n : int
        Number of inputs (priority classes), >= 1.
    starve_limit : int
        Grants a waiting input tolerates before it is promoted, >= 1.

    Attributes
    ----------
    i_streams : In(stream.Signature(payload_shape)).array(n)
        Inputs, index 0 the highest class.
    o_stream : Out(stream.Signature(payload_shape))
        Merged output (combinational from the granted input).
    o_index : Out(range(n))
        Input carried by ``o_stream``.
    """

    def __init__(self, *, payload_shape, n, starve_limit=4):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        self._n = check_int("n", n, min=1)
        self._limit = check_int("starve_limit", starve_limit, min=1, max=255)
        super().__init__({
            "i_streams": In(stream.Signature(payload_shape)).array(n),
            "o_stream": Out(stream.Signature(payload_shape)),
            "o_index": Out(range(n)),
        })
        self.age = [Signal(range(self._limit + 1), name=f"age{i}") for i in range(n)]

    def invariants(self):
        return [(a <= self._limit, f"age{i}_bounded") for i, a in enumerate(self.age)]

    def elaborate(self, platform):
        m = Module()
        n, limit = self._n, self._limit
        valid = [s.valid for s in self.i_streams]
        pick = Signal(range(n))
        # Last assignment wins: scan from lowest to highest precedence.
        for i in reversed(range(n)):
            with m.If(valid[i]):
                m.d.comb += pick.eq(i)
        for i in reversed(range(n)):
            with m.If(valid[i] & (self.age[i] == limit)):
                m.d.comb += pick.eq(i)
        index, fire, _ = select_stream(m, self.i_streams, self.o_stream, pick)
        m.d.comb += self.o_index.eq(index)
        with m.If(fire):
            for i in range(n):
                with m.If(index == i):
                    m.d.sync += self.age[i].eq(0)
                with m.Elif(valid[i] & (self.age[i] != limit)):
                    m.d.sync += self.age[i].eq(self.age[i] + 1)
        return m
