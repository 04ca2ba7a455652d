"""Small helpers shared by the engines of a transport lane (``hw/nic/transport.py``)."""
from amaranth.hdl import Array, Cat, Const, Signal

from hw.common import RoundRobinArbiter

__all__ = ["rr_arbiter", "sel", "set_bit", "slot_addr"]


class _Single:
    """Stand-in for a one-requester :class:`RoundRobinArbiter` (no zero-width index)."""

    def __init__(self, m):
        self.requests = Signal(1)
        self.advance = Signal()
        self.valid = self.requests[0]
        self.index = Const(0, 1)


def rr_arbiter(m, name, n):
    """A :class:`RoundRobinArbiter` over ``n`` requesters, added to ``m`` as ``name``."""
    if n == 1:
        return _Single(m)
    m.submodules[name] = arb = RoundRobinArbiter(n=n)
    return arb


def sel(signals, idx):
    """``signals[idx]`` for a run-time index."""
    return Array(signals)[idx]


def set_bit(m, vecs, l, s, value):
    """``vecs[l][s] <= value`` (sync) for a run-time flow ``l`` and bit ``s``."""
    for k in range(len(vecs)):
        with m.If(l == k):
            m.d.sync += vecs[k].bit_select(s, 1).eq(value)


def slot_addr(l, s, *, sb, lb, stride, depth):
    """First retransmit-buffer address of slot ``s`` of flow ``l`` (``stride`` bytes a slot)."""
    return (Cat(s[:sb], Const(0, lb) | l) * stride)[:(depth - 1).bit_length() + 1]
