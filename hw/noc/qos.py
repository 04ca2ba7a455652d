"""Switch arbiter with a latency class: VC 0 first, bulk VCs round-robin, bounded."""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, check_int

__all__ = ["QosArbiter"]


class QosArbiter(wiring.Component):
    """Priority to requester 0 (the control/latency class), round-robin among the rest.

    Requester 0 wins whenever it requests, except after ``burst`` consecutive
    wins while a bulk requester was waiting: then one bulk requester is
    served (round-robin among bulk requesters) and the count restarts. So
    requester 0 waits at most one grant, and a bulk requester that keeps
    requesting waits at most ``(n - 2) * (burst + 1) + burst`` grants to
    others: bulk is never starved.

    Parameters
    ----------
    n : int
        Number of requesters (VCs), >= 2.
    burst : int
        Consecutive class-0 grants allowed while bulk waits, >= 1.

    Attributes
    ----------
    requests : In(n)
    fire : In(1)
        The grant of this cycle was used; update the fairness state.
    index : Out(range(n))
        Granted requester (valid when ``valid``).
    valid : Out(1)
        Some requester is granted.
    """

    def __init__(self, *, n, burst):
        self._n = check_int("n", n, min=2)
        self._burst = check_int("burst", burst, min=1)
        super().__init__({
            "requests": In(n),
            "fire": In(1),
            "index": Out(range(n)),
            "valid": Out(1),
        })
        self.count = Signal(range(burst + 1))

    def invariants(self):
        return [(self.count <= self._burst, "qos_count_in_range")]

    def elaborate(self, platform):
        m = Module()
        n, burst = self._n, self._burst
        m.submodules.rr = rr = RoundRobinArbiter(n=n)
        req = self.requests
        bulk_wait = req[1:].any()
        prio = Signal()
        m.d.comb += [
            prio.eq(req[0] & (~bulk_wait | (self.count != burst))),
            # With bulk waiting and the budget spent, class 0 sits out one round.
            rr.requests.eq(Cat(req[0] & ~bulk_wait, req[1:])),
            rr.advance.eq(self.fire & ~prio),
            self.valid.eq(req.any()),
            self.index.eq(Mux(prio, 0, rr.index)),
        ]
        with m.If(~bulk_wait):
            m.d.sync += self.count.eq(0)
        with m.Elif(self.fire):
            m.d.sync += self.count.eq(Mux(prio, self.count + 1, 0))
        return m
