"""cocotb models of credit-based NoC links (see :class:`hw.noc.packet.LinkSignature`).

:class:`LinkSource` sends flits into a router input: one flit per cycle at
most, only on a VC with a credit, whole packets per VC in order (VCs
interleave flit by flit). :class:`LinkSink` is a downstream buffer of
``depth`` flits per VC behind a router output: it drains each cycle with
probability ``ready_prob`` and returns a credit per drained flit; a flit
arriving at a full buffer fails the test (credit overflow).

Both are stepped by :func:`run_links`, one coroutine for all links (cheap).
"""
import random

from cocotb.triggers import ReadOnly, RisingEdge

from sim.noc import pack_flit


class LinkSource:
    def __init__(self, dut, prefix, *, vcs, depth, data_width, valid_prob=1.0, rng=None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.vc = getattr(dut, f"{prefix}__vc")
        self.flit = getattr(dut, f"{prefix}__flit")
        self.credit = getattr(dut, f"{prefix}__credit")
        self.vcs, self.depth, self.data_width = vcs, depth, data_width
        self.credits = [depth] * vcs
        self.queues = [[] for _ in range(vcs)]  # flits (data, head, tail, tag)
        self.valid_prob = valid_prob
        self.rng = rng or random.Random(0)
        self.valid.value = 0
        self.sent_log = []  # (cycle, vc, tag) when a flit went out

    def send_packet(self, vc, flits):
        """Queue ``[(data, head, tail, tag), ...]`` on ``vc``."""
        self.queues[vc].extend(flits)

    def pending(self):
        return sum(len(q) for q in self.queues)

    def drive(self, cycle):
        ok = [v for v in range(self.vcs) if self.queues[v] and self.credits[v] > 0]
        if ok and self.rng.random() < self.valid_prob:
            v = self.rng.choice(ok)
            data, head, tail, tag = self.queues[v].pop(0)
            self.credits[v] -= 1
            self.valid.value = 1
            self.vc.value = v
            self.flit.value = pack_flit(self.data_width, data, head=head, tail=tail)
            self.sent_log.append((cycle, v, tag))
        else:
            self.valid.value = 0

    def sample(self):
        c = int(self.credit.value)
        for v in range(self.vcs):
            if c >> v & 1:
                self.credits[v] += 1
                assert self.credits[v] <= self.depth, "router returned too many credits"


class LinkSink:
    def __init__(self, dut, prefix, *, vcs, depth, data_width, ready_prob=1.0, rng=None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.vc = getattr(dut, f"{prefix}__vc")
        self.flit = getattr(dut, f"{prefix}__flit")
        self.credit = getattr(dut, f"{prefix}__credit")
        self.prefix = prefix
        self.vcs, self.depth, self.data_width = vcs, depth, data_width
        self.buffers = [[] for _ in range(vcs)]
        self.ready_prob = ready_prob
        self.rng = rng or random.Random(1)
        self.received = []  # (cycle, vc, flit int) in drain order per VC
        self.arrivals = []  # (cycle, vc, flit int) in arrival order
        self._credit_next = 0
        self.credit.value = 0

    def drive(self, cycle):
        self.credit.value = self._credit_next
        self._credit_next = 0

    def sample(self, cycle):
        if int(self.valid.value):
            v = int(self.vc.value)
            f = int(self.flit.value)
            assert len(self.buffers[v]) < self.depth, \
                f"{self.prefix}: flit on VC {v} without a credit (buffer full)"
            self.buffers[v].append(f)
            self.arrivals.append((cycle, v, f))
        # Drain after the arrival: the drained flit frees its slot next cycle.
        credit = 0
        for v in range(self.vcs):
            if self.buffers[v] and self.rng.random() < self.ready_prob:
                self.received.append((cycle, v, self.buffers[v].pop(0)))
                credit |= 1 << v
        self._credit_next = credit


async def run_links(clk, sources, sinks, state):
    """Step all link models every cycle; ``state['cycle']`` counts cycles."""
    while True:
        cycle = state["cycle"]
        for s in sources:
            s.drive(cycle)
        for s in sinks:
            s.drive(cycle)
        await ReadOnly()
        for s in sources:
            s.sample()
        for s in sinks:
            s.sample(cycle)
        await RisingEdge(clk)
        state["cycle"] = cycle + 1
