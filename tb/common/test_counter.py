# amaranth: UnusedElaboratable=no
# (the bad-argument test builds a module that is never elaborated)
"""hw.common.counter.saturating_add: counters stop at their ceiling, never wrap.

Testplan (docs/common.md): single increments run a 4-bit counter past 15
(``test_single_increments_saturate``); several events per cycle, with an
amount wider than the counter, clamp at the ceiling (``test_multi_event_saturates``);
a signed counter or a negative amount raises (``test_bad_arguments``).
Amaranth's simulator: the helper is a statement generator, no top of its own.
"""
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator


def _run(width, amount_width, amounts):
    from hw.common import saturating_add
    m = Module()
    cnt = Signal(width)
    amt = Signal(amount_width)
    saturating_add(m, cnt, amt)
    seen = []

    async def bench(ctx):
        for a in amounts:
            ctx.set(amt, a)
            await ctx.tick()
            seen.append(ctx.get(cnt))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _golden(width, amounts):
    top, v, out = (1 << width) - 1, 0, []
    for a in amounts:
        v = min(top, v + a)
        out.append(v)
    return out


def test_single_increments_saturate():
    from hw.common import saturating_add
    m = Module()
    cnt = Signal(4)
    saturating_add(m, cnt)
    seen = []

    async def bench(ctx):
        for _ in range(40):
            await ctx.tick()
            seen.append(ctx.get(cnt))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [min(15, i + 1) for i in range(40)]


def test_multi_event_saturates():
    # 5 events per cycle into a 4-bit counter, then amounts up to 63 (wider than it).
    amounts = [5] * 6 + [0, 63, 1, 0]
    assert _run(4, 6, amounts) == _golden(4, amounts)
    # A 16-bit counter fed 5 * V drops a cycle (the NoC router's case) stops at 0xFFFF.
    amounts = [20] * 3300
    got = _run(16, 5, amounts)
    assert got == _golden(16, amounts) and got[-1] == 0xFFFF


def test_bad_arguments():
    from hw.common import saturating_add
    m = Module()
    with pytest.raises(TypeError, match="counter must be unsigned"):
        saturating_add(m, Signal(range(-4, 4)))
    with pytest.raises(ValueError, match="amount must be >= 0"):
        saturating_add(m, Signal(4), -1)
