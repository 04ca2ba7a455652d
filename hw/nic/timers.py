"""Retransmission timers of a transport lane, one per flow."""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int

__all__ = ["RetransmitTimers"]


class RetransmitTimers(wiring.Component):
    """One retransmission timer per flow.

    A flow's timer counts while the flow has something outstanding
    (``busy``) and stops at ``rto``; it is cleared when the flow is idle, on
    ``restart`` (progress) and when it expires. It expires (``expire`` pulse,
    one per flow) once it has reached ``rto`` and ``allow`` is high (the lane
    lets expiries through only while nothing else updates the flow's
    retransmit marks); the lane then marks the oldest unacknowledged slot.

    Parameters
    ----------
    flows : int
        Number of timers.
    rto : int
        Retransmission timeout in cycles.

    Attributes
    ----------
    busy, restart : In(flows)
        Per flow: something outstanding / progress this cycle.
    allow : In(1)
        Expiries may happen this cycle.
    expire : Out(flows)
        Per flow: the timer expires now.
    """

    def __init__(self, *, flows, rto):
        self._L = check_int("flows", flows, min=1, max=256)
        self._rto = check_int("rto", rto, min=2, max=1 << 24)
        super().__init__({
            "busy": In(flows),
            "restart": In(flows),
            "allow": In(1),
            "expire": Out(flows),
        })
        #: The counters (hidden state, bounded by :meth:`invariants`).
        self.tcnt = [Signal(self._rto.bit_length(), name=f"tcnt{l}") for l in range(flows)]

    def invariants(self):
        """Every timer is within ``0..rto``."""
        return [(t <= self._rto, f"timer_{l}") for l, t in enumerate(self.tcnt)]

    def elaborate(self, platform):
        m = Module()
        for l, tcnt in enumerate(self.tcnt):
            busy = self.busy[l]
            m.d.comb += self.expire[l].eq(busy & (tcnt == self._rto) & self.allow)
            with m.If(busy & (tcnt != self._rto)):
                m.d.sync += tcnt.eq(tcnt + 1)
            with m.If(~busy | self.restart[l]):
                m.d.sync += tcnt.eq(0)
            with m.If(self.expire[l]):
                m.d.sync += tcnt.eq(0)
        return m
