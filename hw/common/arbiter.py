from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import check_int

__all__ = ["RoundRobinArbiter", "PriorityArbiter"]


class PriorityArbiter(wiring.Component):
    """Fixed-priority arbiter: the lowest-numbered requester wins.

    Purely combinational. Starves high indices by design; use it only where
    a bound on the higher-priority traffic is guaranteed elsewhere.

    Parameters
    ----------
    n : int
        Number of requesters, >= 1.

    Attributes
    ----------
    requests : In(n)
        One bit per requester.
    grant : Out(n)
        One-hot grant, zero when nothing is requested.
    index : Out(range(n))
        Index of the granted requester (valid when ``valid``).
    valid : Out(1)
        Any request is granted.
    """

    def __init__(self, *, n):
        self._n = check_int("n", n, min=1)
        super().__init__({
            "requests": In(n),
            "grant": Out(n),
            "index": Out(range(n)),
            "valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        # Lowest set bit: requests & -requests.
        m.d.comb += [
            self.grant.eq(self.requests & (~self.requests + 1)),
            self.valid.eq(self.requests.any()),
        ]
        for i in reversed(range(n)):
            with m.If(self.requests[i]):
                m.d.comb += self.index.eq(i)
        return m


class RoundRobinArbiter(wiring.Component):
    """Round-robin arbiter with a registered priority pointer.

    The grant is combinational from ``requests``; when ``advance`` is high
    the requester after the granted one gets top priority next. A requester
    that holds its request waits for at most ``n - 1`` other grants.

    Parameters
    ----------
    n : int
        Number of requesters, >= 1.

    Attributes
    ----------
    requests : In(n)
        One bit per requester.
    advance : In(1)
        The current grant is consumed (e.g. handshake done); rotate priority.
    grant : Out(n)
        One-hot grant, zero when nothing is requested.
    index : Out(range(n))
        Index of the granted requester (valid when ``valid``).
    valid : Out(1)
        Any request is granted.
    """

    def __init__(self, *, n):
        self._n = check_int("n", n, min=1)
        super().__init__({
            "requests": In(n),
            "advance": In(1),
            "grant": Out(n),
            "index": Out(range(n)),
            "valid": Out(1),
        })
        # Requester `ptr` has the highest priority, then ptr+1, ... wrapping.
        self._ptr = Signal(range(n))

    def invariants(self):
        """Internal facts for k-induction (see ``formal/properties.py``).

        For ``n`` not a power of two the pointer has unreachable encodings.
        """
        return [(self._ptr < self._n, "rr_ptr_in_range")]

    def elaborate(self, platform):
        m = Module()
        n = self._n
        ptr = self._ptr
        m.d.comb += self.valid.eq(self.requests.any())
        for p in range(n):
            with m.If(ptr == p):
                # Last assignment wins: scan from lowest to highest priority.
                for k in reversed(range(n)):
                    i = (p + k) % n
                    with m.If(self.requests[i]):
                        m.d.comb += self.index.eq(i)
        for i in range(n):
            m.d.comb += self.grant[i].eq(self.valid & (self.index == i))
        with m.If(self.advance & self.valid):
            m.d.sync += ptr.eq(Mux(self.index == n - 1, 0, self.index + 1))
        return m
