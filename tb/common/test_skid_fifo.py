# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""SkidBuffer and StreamFIFO: ordering, no loss/duplication, back-pressure, throughput.

Testplan (docs/common.md): random traffic under random valid/ready
(``random_backpressure``), full-rate throughput (``full_rate``), and for the
FIFO exact fill level under a stalled sink (``fill_level``). Both simulators.
"""
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from hw.common import SkidBuffer, StreamFIFO
from sim.rtl import runner
from sim.rtl.stream import StreamSink, StreamSource, reset

WIDTH = 16


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def random_backpressure(dut):
    p = runner.params()
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    for valid_prob, ready_prob in [(1.0, 1.0), (0.5, 0.9), (0.9, 0.3), (0.3, 0.3)]:
        data = [rng.randrange(1 << WIDTH) for _ in range(300)]
        src = StreamSource(dut, "i_stream", dut.clk, valid_prob=valid_prob, rng=rng)
        sink = StreamSink(dut, "o_stream", dut.clk, ready_prob=ready_prob, rng=rng)
        task = sink.start()
        await src.send(data)
        got = await sink.wait_for(len(data), max_cycles=10_000)
        await ClockCycles(dut.clk, 8)
        task.cancel()
        assert got == data, f"{p['block']}: stream corrupted at v={valid_prob} r={ready_prob}"
        assert len(sink.beats) == len(data), "extra beats appeared"
        sink.ready.value = 0
        await RisingEdge(dut.clk)


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def full_rate(dut):
    """With valid and ready always high the block moves one beat per cycle.

    A depth-1 FIFO cannot take a beat while full (no pass-through), so it
    runs at exactly half rate; that is checked too.
    """
    p = runner.params()
    per_beat = 2 if p.get("depth") == 1 else 1
    await reset(dut)
    n = 200
    src = StreamSource(dut, "i_stream", dut.clk)
    sink = StreamSink(dut, "o_stream", dut.clk)
    task = sink.start()
    start = cocotb.utils.get_sim_time("ns")
    await src.send(range(n))
    await sink.wait_for(n)
    cycles = (cocotb.utils.get_sim_time("ns") - start) / 10
    task.cancel()
    assert sink.beats == list(range(n))
    assert cycles <= per_beat * n + 4, f"{cycles} cycles for {n} beats"


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def fill_level(dut):
    """A stalled sink lets exactly `depth` beats in, then `ready` is low."""
    p = runner.params()
    if p["block"] != "fifo":
        return
    await reset(dut)
    depth = p["depth"]
    dut.o_stream__ready.value = 0
    dut.i_stream__valid.value = 1
    accepted = 0
    for i in range(depth + 5):
        dut.i_stream__payload.value = i
        await ReadOnly()
        accepted += int(dut.i_stream__ready.value)
        await RisingEdge(dut.clk)
    dut.i_stream__valid.value = 0
    await ReadOnly()
    assert accepted == depth, f"accepted {accepted} beats into a depth-{depth} FIFO"
    assert int(dut.level.value) == depth
    await RisingEdge(dut.clk)
    sink = StreamSink(dut, "o_stream", dut.clk)
    task = sink.start()
    await sink.wait_for(depth)
    await ClockCycles(dut.clk, 4)
    task.cancel()
    assert sink.beats == list(range(depth))


@pytest.mark.parametrize("sim", runner.simulators())
def test_skid_buffer(sim):
    runner.run(SkidBuffer(payload_shape=WIDTH), block="skid", sim=sim,
               test_module="tb.common.test_skid_fifo", params={"block": "skid"})


@pytest.mark.parametrize("sim", runner.simulators())
@pytest.mark.parametrize("depth", [1, 5, 8])
def test_stream_fifo(sim, depth):
    runner.run(StreamFIFO(payload_shape=WIDTH, depth=depth), block="fifo", sim=sim,
               test_module="tb.common.test_skid_fifo", params={"block": "fifo", "depth": depth})


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="depth"):
        StreamFIFO(payload_shape=8, depth=0)
    with pytest.raises(ValueError, match="depth"):  # the look-ahead needs a second entry
        StreamFIFO(payload_shape=8, depth=1, lookahead=True)
    with pytest.raises(TypeError, match="payload_shape"):
        SkidBuffer(payload_shape="wide")


class ReadyHighSkid(SkidBuffer):
    """Mutant: ``ready`` forced high, so a stalled skid register is overwritten."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i_stream.ready.eq(1)
        return m


def test_mutant_skid_is_caught():
    """The testbench must be able to fail: the ready-forced-high mutant loses beats."""
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(ReadyHighSkid(payload_shape=WIDTH), block="skid_mutant", sim="icarus"
                   if "icarus" in runner.simulators() else "verilator",
                   test_module="tb.common.test_skid_fifo", testcase="random_backpressure",
                   params={"block": "skid_mutant"})
