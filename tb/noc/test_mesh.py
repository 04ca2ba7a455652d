"""Meshes with network interfaces: patterns, multicast, back-pressure, QoS, latency.

Testplan (docs/noc.md), run on a 2x2 mesh (and a short 4x4 run):

* ``zero_load``: one packet at a time between every pair of nodes; the
  latency equals the golden ``sim.noc.zero_load_latency`` exactly;
* ``patterns``: uniform, hotspot and transpose traffic on both classes,
  packet lengths 1..2*max (split by the interface), under source stalls and
  sink back-pressure (every port of every router backs up); every packet
  delivered exactly once, intact, in order per (source, destination, class);
  the bounded drain is the no-deadlock check;
* ``multicast``: random rectangles (broadcast included) mixed with unicast;
  each destination set receives exactly one copy (the scoreboard rejects
  any extra delivery);
* ``qos``: a control packet crosses a mesh saturated by bulk traffic to the
  same destination with a bounded latency.
"""
import os
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles

from sim.noc import zero_load_latency
from sim.rtl import runner
from sim.rtl.blocks import run_mesh
from sim.rtl.stream import reset
from tb.noc.traffic import MeshTraffic, pattern_dest


def packets():
    """Packets per run: small for the regression (``NOC_PACKETS`` overrides)."""
    return int(os.environ.get("NOC_PACKETS", "300"))


def make(dut, rng, **kw):
    p = runner.params()
    t = MeshTraffic(dut, kx=p["kx"], ky=p["ky"], vcs=p["vcs"], data_width=p["data_width"],
                    max_packet_flits=p["max_packet_flits"], rng=rng, **kw)
    t.task = cocotb.start_soon(t.run())
    return p, t


def check_errors(dut, p):
    for n in range(p["kx"] * p["ky"]):
        assert int(getattr(dut, f"errors__{n}").value) == 0, f"router {n} dropped packets"


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def zero_load(dut):
    await reset(dut)
    p, t = make(dut, random.Random(cocotb.RANDOM_SEED))
    nodes = [(x, y) for y in range(p["ky"]) for x in range(p["kx"])]
    for src in nodes:
        for dst in nodes:
            for nbeats in (1, p["max_packet_flits"] - 1):
                n0 = len(t.latencies)
                t.send(src, (dst[0], dst[0], dst[1], dst[1]), 1, nbeats=nbeats)
                await t.drain()
                hops = abs(src[0] - dst[0]) + abs(src[1] - dst[1]) + 1
                lat = t.latencies[n0][3]
                want = zero_load_latency(hops, nbeats)
                assert lat == want, f"{src}->{dst} {nbeats} beats: latency {lat}, model {want}"
    t.task.cancel()


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def patterns(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    p = runner.params()
    for pattern, valid_prob, ready_prob in [("uniform", 1.0, 1.0), ("uniform", 0.5, 0.3),
                                            ("hotspot", 1.0, 0.6), ("transpose", 0.8, 0.5)]:
        _, t = make(dut, rng, valid_prob=valid_prob, ready_prob=ready_prob)
        nodes = [(x, y) for y in range(p["ky"]) for x in range(p["kx"])]
        for _ in range(packets()):
            src = rng.choice(nodes)
            d = pattern_dest(pattern, p["kx"], p["ky"], src, rng)
            t.send(src, (d[0], d[0], d[1], d[1]), rng.randrange(p["vcs"]),
                   beats=[rng.randrange(1 << p["data_width"]) for _ in
                          range(rng.randrange(1, 2 * p["max_packet_flits"]))])
        await t.drain(max_cycles=50_000)
        t.running = False
        await ClockCycles(dut.clk, 2)
        dut._log.info(f"{pattern} v={valid_prob} r={ready_prob}: {t.expected.received} "
                      f"packets in {t.cycle} cycles")
    check_errors(dut, p)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def multicast(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    p, t = make(dut, rng, valid_prob=0.8, ready_prob=0.7)
    kx, ky = p["kx"], p["ky"]
    nodes = [(x, y) for y in range(ky) for x in range(kx)]
    for i in range(packets() // 2):
        src = rng.choice(nodes)
        if i % 3 == 0:
            rect = (0, kx - 1, 0, ky - 1) if i % 2 else \
                (rng.randrange(kx), kx - 1, 0, rng.randrange(ky))
            x0, y0 = rng.randrange(kx), rng.randrange(ky)
            rect = (x0, rng.randrange(x0, kx), y0, rng.randrange(y0, ky)) if i % 5 else rect
        else:
            d = rng.choice(nodes)
            rect = (d[0], d[0], d[1], d[1])
        t.send(src, rect, rng.randrange(p["vcs"]), nbeats=rng.randrange(1, p["max_packet_flits"]))
    await t.drain(max_cycles=50_000)
    t.task.cancel()
    check_errors(dut, p)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def qos(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 2)
    p, t = make(dut, rng)
    kx, ky = p["kx"], p["ky"]
    L = p["max_packet_flits"]
    # Every other node floods node (0, 0) with bulk: its ejection port saturates.
    for _ in range(40):
        for y in range(ky):
            for x in range(kx):
                if (x, y) != (0, 0) and (x, y) != (kx - 1, ky - 1):
                    t.send((x, y), (0, 0, 0, 0), 1, nbeats=L - 1)
    await ClockCycles(dut.clk, 60)
    hops = kx + ky - 1
    for _ in range(5):
        n0 = len(t.latencies)
        t.send((kx - 1, ky - 1), (0, 0, 0, 0), 0, nbeats=1)
        for _ in range(200):
            await ClockCycles(dut.clk, 1)
            if any(c == 0 for _, _, c, _ in t.latencies[n0:]):
                break
        lat = [l for _, _, c, l in t.latencies[n0:] if c == 0][0]
        # Each router may first finish one bulk flit (one cycle) and the
        # ejection takes one beat of bulk per qos_burst control beats.
        bound = zero_load_latency(hops, 1) + 2 * hops
        assert lat <= bound, f"control latency {lat} under bulk load (bound {bound})"
    await t.drain(max_cycles=50_000)
    t.task.cancel()
    check_errors(dut, p)


def test_mesh_2x2():
    # Two VCs for the bulk class: each source keeps one, the ejection merges them.
    run_mesh(2, bulk_vcs=2, test_module="tb.noc.test_mesh")


@pytest.mark.slow  # the 4x4 Verilator build alone takes 5-10 minutes on 2 shared cores
def test_mesh_4x4():
    # The throughput configuration of scripts/bench_noc.py (same build, cached):
    # 4 lanes per bulk class, multicasts replayed per column.
    run_mesh(4, bulk_vcs=4, vc_depth=32, test_module="tb.noc.test_mesh",
             testcase=["patterns", "multicast"], extra_env={"NOC_PACKETS": "150"})
