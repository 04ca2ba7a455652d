"""Stream plumbing on :mod:`amaranth.lib.stream`: N-to-1 arbitration and 1-to-N fork."""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out

from .arbiter import RoundRobinArbiter
from .params import check_int, check_shape

__all__ = ["StreamArbiter", "StreamBroadcast", "select_stream"]


def select_stream(m, i_streams, o_stream, choice, *, packet=False):
    """Drive ``o_stream`` from ``i_streams[index]``, holding a grant as the stream rules need.

    ``index`` follows ``choice`` (an arbiter's pick) except while a grant is
    held: from a beat offered but not taken until it is taken (the output's
    ``valid`` and ``payload`` must stay stable) and, with ``packet``, until the
    beat with ``payload.last``. Shared by every N-to-1 stream arbiter.

    Returns
    -------
    (index, end, (locked, lock_index))
        The input carried this cycle; "the grant ends here" (a beat taken,
        with ``packet`` the last of a packet), the cycle to update fairness
        state; and the held-grant state, for arbiters that mask requests
        while a grant is held.
    """
    n = len(i_streams)
    locked = Signal()
    lock_index = Signal(range(n))
    index = Signal(range(n))
    with m.If(locked):
        m.d.comb += index.eq(lock_index)
    with m.Else():
        m.d.comb += index.eq(choice)
    with m.Switch(index):
        for i in range(n):
            with m.Case(i):
                m.d.comb += [
                    o_stream.valid.eq(i_streams[i].valid),
                    o_stream.payload.eq(i_streams[i].payload),
                    i_streams[i].ready.eq(o_stream.ready),
                ]
    beat = o_stream.valid & o_stream.ready
    end = beat & o_stream.payload.last if packet else beat
    with m.If(o_stream.valid & ~end):
        m.d.sync += [locked.eq(1), lock_index.eq(index)]
    with m.Elif(end):
        m.d.sync += locked.eq(0)
    return index, end, (locked, lock_index)


class StreamArbiter(wiring.Component):
    """Round-robin merge of ``n`` streams into one.

    With ``packet=True`` the payload must be a :class:`~amaranth.lib.data.StructLayout`
    with a ``last`` field; a grant is then held from the first beat of a packet
    to its ``last`` beat, so packets never interleave.

    Parameters
    ----------
    payload_shape : shape-castable
        Payload shape of every stream.
    n : int
        Number of inputs, >= 1.
    packet : bool
        Hold the grant until ``payload.last``.

    Attributes
    ----------
    i_streams : In(stream.Signature(payload_shape)).array(n)
        Inputs.
    o_stream : Out(stream.Signature(payload_shape))
        Merged output (combinational from the granted input).
    o_index : Out(range(n))
        Index of the input that ``o_stream`` carries.
    """

    def __init__(self, *, payload_shape, n, packet=False):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        self._n = check_int("n", n, min=1)
        self._packet = bool(packet)
        if self._packet:
            layout = data.Layout.cast(payload_shape) if isinstance(payload_shape, data.Layout) else None
            if not isinstance(layout, data.StructLayout) or "last" not in layout.members:
                raise TypeError("payload_shape must be a StructLayout with a 'last' field "
                                "when packet=True")
        super().__init__({
            "i_streams": In(stream.Signature(payload_shape)).array(n),
            "o_stream": Out(stream.Signature(payload_shape)),
            "o_index": Out(range(n)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        m.submodules.arbiter = arb = RoundRobinArbiter(n=n)
        index, end, (locked, lock_index) = select_stream(
            m, self.i_streams, self.o_stream, arb.index, packet=self._packet)
        # While locked only the held input may request, so the arbiter's
        # own index equals the held one at the closing beat and rotates past it.
        for i in range(n):
            m.d.comb += arb.requests[i].eq(self.i_streams[i].valid &
                                           (~locked | (lock_index == i)))
        m.d.comb += [self.o_index.eq(index), arb.advance.eq(end)]
        return m


class StreamBroadcast(wiring.Component):
    """Fork one stream to ``n`` outputs; a beat leaves when every output took it.

    Outputs may accept in different cycles: each output that has taken the
    current beat is masked until all have, so no output sees a beat twice
    and ``valid`` on an output never depends on another output's ``ready``.

    Parameters
    ----------
    payload_shape : shape-castable
        Payload shape.
    n : int
        Number of outputs, >= 1.

    Attributes
    ----------
    i_stream : In(stream.Signature(payload_shape))
        Input.
    o_streams : Out(stream.Signature(payload_shape)).array(n)
        Outputs.
    mask : In(n)
        Outputs taking part (sampled per beat); a zero mask drops the beat.
    """

    def __init__(self, *, payload_shape, n):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        self._n = check_int("n", n, min=1)
        super().__init__({
            "i_stream": In(stream.Signature(payload_shape)),
            "o_streams": Out(stream.Signature(payload_shape)).array(n),
            "mask": In(n, init=(1 << n) - 1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        done = Signal(n)  # outputs that already took the current beat
        took = Signal(n)
        for i in range(n):
            o = self.o_streams[i]
            m.d.comb += [
                o.valid.eq(self.i_stream.valid & self.mask[i] & ~done[i]),
                o.payload.eq(self.i_stream.payload),
                took[i].eq(~self.mask[i] | done[i] | o.ready),
            ]
        m.d.comb += self.i_stream.ready.eq(took.all())
        with m.If(self.i_stream.valid):
            with m.If(self.i_stream.ready):
                m.d.sync += done.eq(0)
            with m.Else():
                for i in range(n):
                    with m.If(self.o_streams[i].valid & self.o_streams[i].ready):
                        m.d.sync += done[i].eq(1)
        return m
