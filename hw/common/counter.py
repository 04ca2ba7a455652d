"""Saturating event counters.

Every error and event counter of the design counts with :func:`saturating_add`:
a counter that wraps reads as "few errors" after many, which is worse than no
counter at all. One helper keeps the rule in one place.
"""
from amaranth.hdl import Const, Mux, Value

__all__ = ["saturating_add", "saturate"]


def saturating_add(m, counter, amount=1, *, domain="sync"):
    """Add ``amount`` to ``counter`` in ``domain``, stopping at its largest value.

    Parameters
    ----------
    m : Module
        The module the statement goes into (inside the caller's ``If``, if any).
    counter : Signal
        An unsigned counter; its width sets the ceiling ``2**width - 1``.
    amount : int or Value
        Increment of this cycle. A constant 1 gives a plain "count unless full";
        a wider ``amount`` (several events in one cycle) is summed at full width
        and clamped, so it can never wrap past the ceiling either.
    """
    if counter.shape().signed:
        raise TypeError(f"counter must be unsigned, not {counter.shape()!r}")
    top = (1 << len(counter)) - 1
    if isinstance(amount, int):
        if amount < 0:
            raise ValueError(f"amount must be >= 0, not {amount}")
        if amount == 0:
            return
        if amount == 1:
            with m.If(counter != top):
                m.d[domain] += counter.eq(counter + 1)
            return
        amount = Const(amount)
    # The sum is one bit wider than either operand, so it never wraps.
    m.d[domain] += counter.eq(saturate(counter + Value.cast(amount), len(counter)))


def saturate(value, width):
    """``value`` (unsigned) clamped to ``2**width - 1``, as a ``width``-bit expression.

    For a sum of several saturating counters shown on one narrower port.
    """
    value = Value.cast(value)
    top = (1 << width) - 1
    if len(value) <= width:
        return value
    return Mux(value > top, top, value[:width])
