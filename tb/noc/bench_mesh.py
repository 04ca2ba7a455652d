"""cocotb side of ``scripts/bench_noc.py``: zero-load latency and a load sweep.

Driven by environment variables (set by the bench script):
``NOC_BENCH_LOADS`` (comma-separated offered loads, flits/node/cycle),
``NOC_BENCH_WARMUP`` and ``NOC_BENCH_CYCLES`` (cycles per load point),
``NOC_BENCH_PATTERN``, ``NOC_BENCH_CLASSES`` (bulk classes used), ``NOC_BENCH_OUT`` (JSON result file). Every packet is
still checked by the scoreboard, so a benchmark run is also a test.
"""
import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from sim.rtl import runner
from sim.rtl.stream import reset
from tb.noc.traffic import MeshTraffic


@cocotb.test(timeout_time=1000, timeout_unit="ms")
async def load_sweep(dut):
    await reset(dut)
    p = runner.params()
    kx, ky = p["kx"], p["ky"]
    loads = [float(x) for x in os.environ["NOC_BENCH_LOADS"].split(",")]
    warmup = int(os.environ.get("NOC_BENCH_WARMUP", "300"))
    cycles = int(os.environ.get("NOC_BENCH_CYCLES", "1000"))
    pattern = os.environ.get("NOC_BENCH_PATTERN", "uniform")
    classes = tuple(int(c) for c in os.environ.get("NOC_BENCH_CLASSES", "1").split(","))
    nbeats = p["max_packet_flits"] - 1
    rng = random.Random(cocotb.RANDOM_SEED)
    result = {"params": p, "pattern": pattern, "classes": classes, "nbeats": nbeats, "zero_load": [], "sweep": []}

    def make():
        t = MeshTraffic(dut, kx=kx, ky=ky, vcs=p["vcs"], data_width=p["data_width"],
                        max_packet_flits=p["max_packet_flits"], rng=rng)
        t.task = cocotb.start_soon(t.run())
        return t

    # Zero-load latency against distance: one packet at a time from (0, 0).
    t = make()
    for dst in sorted({(x, y) for x in range(kx) for y in range(ky)},
                      key=lambda d: d[0] + d[1]):
        n0 = len(t.latencies)
        t.send((0, 0), (dst[0], dst[0], dst[1], dst[1]), 1, nbeats=nbeats)
        await t.drain()
        result["zero_load"].append({"hops": dst[0] + dst[1] + 1, "latency": t.latencies[n0][3]})
    t.running = False
    await ClockCycles(dut.clk, 2)

    nodes = kx * ky
    for load in loads:
        t = make()
        t.set_load(load, pattern=pattern, nbeats=nbeats, classes=classes)
        await ClockCycles(dut.clk, warmup)
        start = t.cycle
        await ClockCycles(dut.clk, cycles)
        end = t.cycle
        t.load = None  # stop injecting; drain what is queued (bounded: no deadlock)
        offered = sum(1 for c in t.created.values() if start <= c < end) * (nbeats + 1)
        await t.drain(max_cycles=200_000)
        t.running = False
        await ClockCycles(dut.clk, 2)
        lat = [l for c, l, _, _ in t.latencies if start <= c < end]
        flits = sum(f for c, f in t.delivered_flits if start <= c < end)
        point = {
            "offered": load,
            "offered_measured": offered / (nodes * (end - start)),
            "accepted": flits / (nodes * (end - start)),
            "latency_avg": sum(lat) / len(lat) if lat else None,
            "latency_max": max(lat) if lat else None,
            "packets": len(lat),
        }
        dut._log.info(f"load {load}: {point}")
        result["sweep"].append(point)
    with open(os.environ["NOC_BENCH_OUT"], "w") as f:
        json.dump(result, f, indent=1)
