"""Reference arbiters mirroring :mod:`hw.common.arbiter`."""


def priority_grant(requests, n):
    """Index granted by :class:`hw.common.PriorityArbiter`, or ``None``."""
    for i in range(n):
        if requests >> i & 1:
            return i
    return None


class RoundRobinModel:
    """Cycle model of :class:`hw.common.RoundRobinArbiter`."""

    def __init__(self, n):
        self.n = n
        self.ptr = 0

    def grant(self, requests):
        """Index granted this cycle, or ``None`` (combinational)."""
        for k in range(self.n):
            i = (self.ptr + k) % self.n
            if requests >> i & 1:
                return i
        return None

    def clock(self, requests, advance):
        """Advance one cycle; returns the grant of the cycle that ended."""
        g = self.grant(requests)
        if advance and g is not None:
            self.ptr = (g + 1) % self.n
        return g
