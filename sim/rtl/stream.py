"""cocotb bus functional models for :mod:`amaranth.lib.stream` ports.

Amaranth flattens a stream member ``foo`` into ``foo__valid``,
``foo__ready`` and ``foo__payload`` (one vector); these models drive and
observe those three signals. Each cycle follows one pattern: write the
outputs, settle (``ReadOnly``), sample the handshake, wait for the edge.
The sink also checks the stream rules on every stalled beat, so a DUT that
drops ``valid`` or changes ``payload`` before ``ready`` fails the test.
"""
import random

from cocotb.triggers import ReadOnly, RisingEdge


def _sig(dut, prefix, name):
    return getattr(dut, f"{prefix}__{name}")


class StreamSource:
    """Drive ``prefix`` as a stream source, idling with ``1 - valid_prob``."""

    def __init__(self, dut, prefix, clk, *, valid_prob=1.0, rng=None):
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.payload = _sig(dut, prefix, "payload")
        self.clk = clk
        self.valid_prob = valid_prob
        self.rng = rng or random.Random(0)
        self.valid.value = 0
        self.sent = 0

    async def send(self, payloads):
        """Send each payload (an int) in order; return when the last is taken."""
        for p in payloads:
            while self.rng.random() >= self.valid_prob:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = int(p)
            while True:
                await ReadOnly()
                fire = int(self.ready.value)
                await RisingEdge(self.clk)
                if fire:
                    break
            self.sent += 1
        self.valid.value = 0


class StreamSink:
    """Accept beats on ``prefix`` with probability ``ready_prob`` per cycle.

    Started with :meth:`start`; beats land in :attr:`beats` in order.
    """

    def __init__(self, dut, prefix, clk, *, ready_prob=1.0, rng=None):
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.payload = _sig(dut, prefix, "payload")
        self.clk = clk
        self.ready_prob = ready_prob
        self.rng = rng or random.Random(1)
        self.beats = []
        self.ready.value = 0
        self.prefix = prefix

    def start(self):
        import cocotb
        return cocotb.start_soon(self._run())

    async def _run(self):
        stalled = None  # payload of a beat offered and not taken
        while True:
            self.ready.value = int(self.rng.random() < self.ready_prob)
            await ReadOnly()
            valid = int(self.valid.value)
            ready = int(self.ready.value)
            if stalled is not None:
                assert valid, f"{self.prefix}: valid dropped before ready"
                payload = int(self.payload.value)
                assert payload == stalled, \
                    f"{self.prefix}: payload changed while stalled ({stalled:#x} -> {payload:#x})"
            if valid:
                payload = int(self.payload.value)
                if ready:
                    self.beats.append(payload)
                    stalled = None
                else:
                    stalled = payload
            await RisingEdge(self.clk)

    async def wait_for(self, n, *, max_cycles=100_000):
        """Wait until ``n`` beats have arrived (fails after ``max_cycles``)."""
        for _ in range(max_cycles):
            if len(self.beats) >= n:
                return self.beats[:n]
            await RisingEdge(self.clk)
        raise AssertionError(f"{self.prefix}: {len(self.beats)} of {n} beats after {max_cycles} cycles")


async def reset(dut, cycles=2, *, clock=True):
    """Pulse ``dut.rst``; with ``clock`` first start a 100 MHz clock on ``dut.clk``.

    Pass ``clock=False`` to reset again later in the same test.
    """
    import cocotb
    from cocotb.clock import Clock
    if clock:
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
