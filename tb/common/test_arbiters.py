# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""Arbiters and stream plumbing against the models in ``sim/common``.

Testplan (docs/common.md): round-robin and priority grants cycle by cycle
vs the model under random requests/advance (``arbiter_vs_model``); the
packet stream arbiter never interleaves packets and keeps per-input order
under random back-pressure (``packets_intact``); the broadcast delivers
every beat exactly once to every output (``broadcast_all``).
"""
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from amaranth.lib import data

from hw.common import PriorityArbiter, RoundRobinArbiter, StreamArbiter, StreamBroadcast
from sim.common import RoundRobinModel, priority_grant
from sim.rtl import runner
from sim.rtl.stream import StreamSink, StreamSource, reset

N = 4
DATA_BITS = 12


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def arbiter_vs_model(dut):
    p = runner.params()
    rr = p["kind"] == "rr"
    if rr:
        await reset(dut)  # the priority arbiter is purely combinational: no clock
    rng = random.Random(cocotb.RANDOM_SEED)
    model = RoundRobinModel(N)
    for cycle in range(2000):
        req = rng.randrange(1 << N)
        adv = rng.random() < 0.7
        dut.requests.value = req
        if rr:
            dut.advance.value = int(adv)
        await (ReadOnly() if rr else Timer(5, "ns"))
        want = model.grant(req) if rr else priority_grant(req, N)
        got_valid = int(dut.valid.value)
        grant = int(dut.grant.value)
        assert got_valid == (want is not None), f"cycle {cycle}: valid"
        if want is not None:
            assert grant == 1 << want and int(dut.index.value) == want, \
                f"cycle {cycle}: req={req:#x} grant={grant:#x} want={want}"
        else:
            assert grant == 0
        if rr:
            await RisingEdge(dut.clk)
            model.clock(req, adv)
        else:
            await Timer(5, "ns")


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def packets_intact(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    # payload = {data[12], last[1]} packed LSB first; data = (source << 8) | seq
    packets = {i: [] for i in range(N)}
    for i in range(N):
        seq = 0
        for _ in range(12):
            length = rng.randint(1, 5)
            packets[i].append([((i << 8 | (seq + k) % 256), k == length - 1) for k in range(length)])
            seq += length
    sources = [StreamSource(dut, f"i_streams__{i}", dut.clk, valid_prob=0.6, rng=rng) for i in range(N)]
    sink = StreamSink(dut, "o_stream", dut.clk, ready_prob=0.7, rng=rng)
    task = sink.start()
    total = sum(len(p) for ps in packets.values() for p in ps)
    for i in range(N):
        cocotb.start_soon(sources[i].send(
            [d | last << DATA_BITS for pkt in packets[i] for d, last in pkt]))
    await sink.wait_for(total, max_cycles=20_000)
    task.cancel()
    # Reassemble: a packet is a run of beats from one source ending in last.
    got = {i: [] for i in range(N)}
    current = []
    for beat in sink.beats:
        d, last = beat & ((1 << DATA_BITS) - 1), beat >> DATA_BITS
        current.append((d, bool(last)))
        assert len({x >> 8 for x, _ in current}) == 1, "packets interleaved"
        if last:
            got[current[0][0] >> 8].append(current)
            current = []
    assert got == packets


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def broadcast_all(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    # Outputs 0..N-2 take part; the last is masked off and must see nothing.
    dut.mask.value = (1 << (N - 1)) - 1
    data_in = [rng.randrange(1 << DATA_BITS) for _ in range(200)]
    sinks = [StreamSink(dut, f"o_streams__{i}", dut.clk, ready_prob=rng.choice([0.2, 0.6, 1.0]), rng=rng)
             for i in range(N)]
    tasks = [s.start() for s in sinks]
    await StreamSource(dut, "i_stream", dut.clk, valid_prob=0.8, rng=rng).send(data_in)
    for s in sinks[:-1]:
        await s.wait_for(len(data_in))
    await ClockCycles(dut.clk, 10)
    for t in tasks:
        t.cancel()
    for s in sinks[:-1]:
        assert s.beats == data_in
    assert sinks[-1].beats == [], "masked output received beats"


def test_round_robin_arbiter():
    runner.run(RoundRobinArbiter(n=N), block="rr_arbiter", test_module="tb.common.test_arbiters",
               testcase="arbiter_vs_model", params={"kind": "rr"})


def test_priority_arbiter():
    runner.run(PriorityArbiter(n=N), block="prio_arbiter", test_module="tb.common.test_arbiters",
               testcase="arbiter_vs_model", params={"kind": "prio"})


def test_stream_arbiter_packets():
    layout = data.StructLayout({"data": DATA_BITS, "last": 1})
    runner.run(StreamArbiter(payload_shape=layout, n=N, packet=True), block="stream_arbiter",
               test_module="tb.common.test_arbiters", testcase="packets_intact")


def test_stream_broadcast():
    runner.run(StreamBroadcast(payload_shape=DATA_BITS, n=N), block="stream_broadcast",
               test_module="tb.common.test_arbiters", testcase="broadcast_all")


def test_packet_mode_needs_last():
    with pytest.raises(TypeError, match="payload_shape"):
        StreamArbiter(payload_shape=8, n=2, packet=True)
