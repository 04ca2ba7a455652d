"""Property building blocks shared by every formal wrapper.

Stream rules (as in :mod:`amaranth.lib.stream`): once ``valid`` is high it
stays high, with ``payload`` unchanged, until the cycle ``ready`` is high.
A wrapper *assumes* them on the design's inputs and *asserts* them on its
outputs. Reset is a free input: the checker's history registers are in the
same domain, so a reset also clears the history and nothing is checked
across it.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Signal, Value


def stream_rules(m, s, check, *, name):
    """Add ``check(...)`` (``Assert`` or ``Assume``) of the stream rules on ``s``."""
    prev_valid = Signal(name=f"{name}_prev_valid")
    prev_ready = Signal(name=f"{name}_prev_ready")
    prev_payload = Signal.like(s.payload, name=f"{name}_prev_payload")
    m.d.sync += [
        prev_valid.eq(s.valid),
        prev_ready.eq(s.ready),
        prev_payload.eq(s.payload),
    ]
    with m.If(prev_valid & ~prev_ready):
        m.d.comb += [
            check(s.valid, f"{name}_valid_held"),
            check(Value.cast(s.payload) == Value.cast(prev_payload), f"{name}_payload_stable"),
        ]


def drive_source(m, s, *, name):
    """Drive the design's input stream ``s`` from free variables obeying the rules."""
    m.d.comb += [
        s.valid.eq(AnySeq(1)),
        s.payload.eq(AnySeq(len(Value.cast(s.payload)))),
    ]
    stream_rules(m, s, Assume, name=name)


def drive_sink(m, s):
    """Drive ``ready`` of the design's output stream ``s`` freely."""
    m.d.comb += s.ready.eq(AnySeq(1))


def check_source(m, s, *, name):
    """Assert the stream rules on the design's output stream ``s``."""
    stream_rules(m, s, Assert, name=name)


def beat(s):
    """The handshake of stream ``s`` this cycle."""
    return s.valid & s.ready


def check_occupancy(m, i, o, occupancy, *, width):
    """Assert ``beats in - beats out == occupancy`` (mod ``2**width``).

    Inductive on its own; it rules out lost and duplicated beats in count.
    """
    n = Signal(width, name="inflight")
    with m.If(beat(i) & ~beat(o)):
        m.d.sync += n.eq(n + 1)
    with m.Elif(beat(o) & ~beat(i)):
        m.d.sync += n.eq(n - 1)
    m.d.comb += Assert(n == occupancy, "occupancy")


def check_order(m, i, o, *, width=6):
    """Assert the k-th beat out carries the k-th beat in, for a symbolic k.

    Meant for BMC: with ``depth < 2**width`` the counters do not wrap, and
    any reordering, loss, duplication or corruption of some beat is caught.
    """
    from amaranth.asserts import AnyConst
    n_in = Signal(width, name="order_n_in")
    n_out = Signal(width, name="order_n_out")
    k = Signal(width, name="order_k")
    seen = Signal(name="order_seen")
    value = Signal.like(i.payload, name="order_value")
    m.d.comb += k.eq(AnyConst(width))
    with m.If(beat(i)):
        m.d.sync += n_in.eq(n_in + 1)
        with m.If(n_in == k):
            m.d.sync += [seen.eq(1), value.eq(i.payload)]
    with m.If(beat(o)):
        m.d.sync += n_out.eq(n_out + 1)
        with m.If(n_out == k):
            m.d.comb += Assert(seen & (Value.cast(o.payload) == Value.cast(value)), "order")


def check_invariants(m, dut):
    """Assert the internal invariants a block exposes through ``invariants()``.

    Convention: a block whose proof needs facts about hidden state (pointer
    ranges, counter relations) returns ``[(expr, name), ...]`` from an
    ``invariants()`` method; the facts are asserted, so they are proved too.
    """
    for expr, name in getattr(dut, "invariants", lambda: [])():
        m.d.comb += Assert(expr, name)


def one_in_one_out(m, dut):
    """The usual frame around a block with ``i_stream`` and ``o_stream``.

    Free input under the stream rules, free ``ready`` on the output, the
    output checked against the stream rules, and the block's own
    ``invariants()`` asserted.
    """
    drive_source(m, dut.i_stream, name="i")
    drive_sink(m, dut.o_stream)
    check_source(m, dut.o_stream, name="o")
    check_invariants(m, dut)
