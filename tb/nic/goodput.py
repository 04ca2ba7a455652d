"""Goodput and latency of the RTL NIC (run by ``scripts/bench_nic.py``, not by pytest).

Two NICs back to back (1 port, 1 flow); NIC 0 posts ``packets`` full-size
WRITEs to NIC 1 over links with the configured latency that drop each frame
(data and ACK alike) with probability ``loss``. Goodput = unique payload
bytes landed in NIC 1's memory per cycle from the first post to the last
byte (line rate = 1 byte/cycle). Results go to the JSON file ``out``.
"""
import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from sim.rtl import runner
from sim.rtl.nic_group import topology
from sim.rtl.stream import reset

from .fabric import Fabric


async def one_run(dut, p, *, loss, packets, length, seed):
    await reset(dut, clock=False)
    await ClockCycles(dut.clk, 2)
    rng = random.Random(seed)
    peer = topology(2, 1, 1)
    fab = Fabric(dut, n=2, ports=1, flows=1, peer=peer, rng=rng, mem_bits=p["mem_bits"],
                 n_sems=p["n_sems"], link=dict(latency=p["latency"], drop=loss), seed=seed)
    golden = {}
    for k in range(packets):
        body = bytes(rng.getrandbits(8) for _ in range(length))
        fab.post(0, 0, ("w", k * length, body))
        for x, b in enumerate(body):
            golden[k * length + x] = b
    total = packets * length
    try:
        end = await fab.run(lambda: len(fab.mem[1]) >= total, max_cycles=40 * total + 100_000)
    except AssertionError:
        from hw.nic import COUNTERS
        for i in range(2):
            dut._log.error(f"NIC {i}: " + str({c: fab.counter(i, c) for c in COUNTERS}))
        dut._log.error(f"frames {[(k, len(v)) for k, v in fab.tx_frames.items()]}, "
                       f"landed {len(fab.mem[1])}, posts {fab.post_done}")
        raise
    assert fab.mem[1] == golden
    assert all(c == 1 for c in fab.mem_writes[1].values())
    first_land = fab.mem_log[1][0][0]
    return dict(loss=loss, cycles=end, bytes=total, goodput=total / end,
                first_land=first_land, tx_rtx=fab.counter(0, "tx_rtx"),
                timeouts=fab.counter(0, "timeouts"), tx_data=fab.counter(0, "tx_data"),
                dropped=sum(lk.stats["dropped"] for lk in fab.links.values()))


@cocotb.test(timeout_time=100, timeout_unit="sec")
async def goodput_sweep(dut):
    # Build parameters from the runner, run settings from NIC_BENCH (so a
    # different sweep reuses the same Verilator build).
    p = {**runner.params(), **json.loads(os.environ["NIC_BENCH"])}
    await reset(dut)
    out = {"latency": [], "sweep": []}
    # Small message: one 8-byte WRITE on idle links, post to last byte placed.
    r = await one_run(dut, p, loss=0.0, packets=1, length=8, seed=1)
    out["latency"] = r["cycles"]
    for loss in p["losses"]:
        r = await one_run(dut, p, loss=loss, packets=p["packets"], length=p["payload"], seed=7)
        dut._log.info(f"{r}")
        out["sweep"].append(r)
    with open(p["out"], "w") as f:
        json.dump(out, f)
