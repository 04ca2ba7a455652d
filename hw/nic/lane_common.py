"""Small helpers shared by the engines of a transport lane (``hw/nic/transport.py``)."""
from amaranth.hdl import Array, Cat, Const, Signal

from hw.common import RoundRobinArbiter, check_int, check_pow2

__all__ = ["rr_arbiter", "sel", "set_bit", "slot_addr", "check_lane"]


def check_lane(*, flow_ids, window, payload, psn_bits):
    """``(flow_ids, window, payload, psn_bits)`` of a lane, validated by name.

    One rule for the lane and every engine in it: flow ids are bytes, the window a
    power of two up to 32, and a PSN has two bits more than a window index, so
    that the receive window can tell an old packet from a new one.
    """
    ids = tuple(check_int("flow_ids", f, min=0, max=255) for f in flow_ids)
    window = check_pow2("window", window, min=2, max=32)
    payload = check_int("payload", payload, min=1, max=4000)
    psn_bits = check_int("psn_bits", psn_bits, min=window.bit_length() + 2, max=16)
    return ids, window, payload, psn_bits


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
