# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""BankedSRAM against :class:`sim.mem.BankedSRAMModel`.

Testplan (docs/mem.md, "Testplan"):
* ``exact_arbitration``: every port streams random reads/writes at full rate;
  read data per port, the conflict counter and the cycle count equal the
  cycle model exactly (round-robin per bank, one access per bank per cycle).
* ``backpressure``: random valid/ready on every port over disjoint regions;
  read data equals the model's, nothing lost or duplicated.
* ``full_rate``: two ports streaming sequential words on different banks never
  conflict and finish in ``n + latency`` cycles.
"""
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles

from hw.mem import BankedSRAM, sram_request_layout
from hw.common import layout
from sim.mem import BankedSRAMModel
from sim.rtl import runner
from sim.rtl.stream import StreamSink, StreamSource, reset


def pack(p, req):
    addr, we, wstrb, wdata = req
    return layout.pack(sram_request_layout(p["aw"], p["width"]),
                       dict(addr=addr, we=we, wstrb=wstrb, wdata=wdata))


def model(p):
    return BankedSRAMModel(size=p["size"], banks=p["banks"], width=p["width"], ports=p["ports"])


def random_reqs(rng, p, n, lo, hi):
    lanes = p["width"] // 8
    out = []
    for _ in range(n):
        we = rng.random() < 0.5
        out.append((rng.randrange(lo, hi), int(we), rng.randrange(1 << lanes) if we else 0,
                    rng.getrandbits(p["width"]) if we else 0))
    return out


async def drive(dut, p, queues, *, valid_prob=1.0, ready_prob=1.0, rng=None):
    rng = rng or random.Random(0)
    sinks, tasks, srcs = [], [], []
    for i, q in enumerate(queues):
        sink = StreamSink(dut, f"ports__{i}__rsp", dut.clk, ready_prob=ready_prob, rng=rng)
        sinks.append(sink)
        tasks.append(sink.start())
        srcs.append(StreamSource(dut, f"ports__{i}__req", dut.clk, valid_prob=valid_prob, rng=rng))
    start = cocotb.utils.get_sim_time("ns")
    sends = [cocotb.start_soon(s.send([pack(p, r) for r in q])) for s, q in zip(srcs, queues)]
    for s in sends:
        await s
    cycles = (cocotb.utils.get_sim_time("ns") - start) / 10
    for sink, q in zip(sinks, queues):
        await sink.wait_for(sum(1 for r in q if not r[1]), max_cycles=10_000)
    await ClockCycles(dut.clk, 6)
    for t in tasks:
        t.cancel()
    return [s.beats for s in sinks], cycles


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def exact_arbitration(dut):
    p = runner.params()
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    words = p["size"] // (p["width"] // 8)
    # A small window makes bank conflicts and read-after-write hazards frequent.
    queues = [random_reqs(rng, p, 200, 0, min(words, 4 * p["banks"])) for _ in range(p["ports"])]
    ref = model(p)
    want, want_cycles = ref.run(queues)
    got, cycles = await drive(dut, p, queues)
    assert got == want, "read data differs from the cycle model"
    assert int(dut.conflicts.value) == ref.conflicts, \
        f"conflicts {int(dut.conflicts.value)} != model {ref.conflicts}"
    assert ref.conflicts > 0, "test did not provoke any conflict"
    assert cycles == want_cycles, f"{cycles} cycles, model {want_cycles}"


@cocotb.test(timeout_time=4, timeout_unit="ms")
async def backpressure(dut):
    p = runner.params()
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    words = p["size"] // (p["width"] // 8)
    region = words // p["ports"]
    for valid_prob, ready_prob in [(0.7, 0.5), (1.0, 0.2), (0.3, 1.0)]:
        queues = [random_reqs(rng, p, 150, i * region, i * region + min(region, 3 * p["banks"]))
                  for i in range(p["ports"])]
        ref = model(p)
        want = [[d for d in (ref.access(r) for r in q) if d is not None] for q in queues]
        # The RTL memory keeps its contents across phases; the model starts at zero,
        # so clear the touched words first.
        clear = [[(a, 1, (1 << (p["width"] // 8)) - 1, 0)
                  for a in range(i * region, i * region + min(region, 3 * p["banks"]))]
                 for i in range(p["ports"])]
        await drive(dut, p, clear)
        got, _ = await drive(dut, p, queues, valid_prob=valid_prob, ready_prob=ready_prob, rng=rng)
        assert got == want, f"read data wrong at valid={valid_prob} ready={ready_prob}"


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def full_rate(dut):
    p = runner.params()
    if p["ports"] < 2 or p["banks"] < 2:
        return
    await reset(dut)
    before = int(dut.conflicts.value)
    n = 64
    # Port 0 on even banks, port 1 one bank ahead: they never meet.
    q0 = [(2 * i * 1 % (p["size"] // (p["width"] // 8)), 0, 0, 0) for i in range(n)]
    q1 = [(a + 1, 0, 0, 0) for a, *_ in q0]
    _, cycles = await drive(dut, p, [q0, q1] + [[] for _ in range(p["ports"] - 2)])
    assert int(dut.conflicts.value) == before, "disjoint banks conflicted"
    assert cycles <= n + 1, f"{cycles} cycles for {n} reads per port"


CONFIGS = [
    dict(size=1024, banks=4, width=32, ports=3),
    dict(size=2048, banks=2, width=64, ports=2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"b{c['banks']}w{c['width']}p{c['ports']}")
def test_banked_sram(cfg):
    dut = BankedSRAM(**cfg)
    runner.run(dut, block="mem_sram", test_module="tb.mem.test_sram",
               params={**cfg, "aw": dut.addr_width})


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="banks"):
        BankedSRAM(size=1024, banks=3, width=32, ports=2)
    with pytest.raises(ValueError, match="width"):
        BankedSRAM(size=1024, banks=2, width=12, ports=2)
    with pytest.raises(ValueError, match="ports"):
        BankedSRAM(size=1024, banks=2, width=32, ports=0)
    with pytest.raises(ValueError, match="size"):
        BankedSRAM(size=8, banks=4, width=32, ports=1)


class ReadyHighSRAM(BankedSRAM):
    """Mutant: port 0 always sees ``ready``, so requests that lost arbitration vanish."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.ports[0].req.ready.eq(1)
        return m


def test_mutant_sram_is_caught():
    cfg = CONFIGS[0]
    dut = ReadyHighSRAM(**cfg)
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(dut, block="mem_sram_mutant", test_module="tb.mem.test_sram",
                   testcase="exact_arbitration", params={**cfg, "aw": dut.addr_width})
