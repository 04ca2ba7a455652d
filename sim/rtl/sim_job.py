"""cocotb side of the fast ``make sim`` path: run one compiled image on :class:`sim.rtl.sim_top.SimTile`.

Named ``test_module="sim.rtl.sim_job"`` by :func:`sim.run.run_on_tile`. The HBM
image is already in the simulated memory (``+HBM_INIT``, loaded at time 0) and
the clock is cocotb's GPI clock, so during the run Python only wakes every
``SIM_PROGRESS_CYCLES`` cycles (a :class:`~cocotb.triggers.Timer`, or the rising
``done``) to write the progress file. Before the run it loads the queues and
the SRAM constants through the host ports; after it, it reads the counters,
the event log and the SRAM words back and has the HBM dumped (``hbm_dump``).
The job (``SIM_JOB``, a pickle) and result (``SIM_RESULT``, JSON) are those of
:mod:`sim.rtl.tile_job`; like it, this coroutine judges nothing.
"""
import json
import os
import pickle
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from hw.tile import TileParams
from sim.compiler.program import ENGINES

from . import runner
from .tile_host import make_host

PERIOD_NS = 10


def _field(v, lo, width):
    return v >> lo & ((1 << width) - 1)


def decode_log(entries, *, n_engines, st_bits, pc_bits, sems_bits, cycles):
    """Event-log words -> ``timeline``, ``pc_changes``, ``sem_changes`` (as ``tile_job`` reports them).

    Entry ``(c, active, status, sems)`` is the state after cycle ``c``; a busy
    interval ``[a, b)`` opens at the first cycle an engine's bit is seen set and
    closes at the first cycle it is seen clear (or at the end of the run).
    """
    timeline = {e: [] for e in ENGINES}
    open_at = [None] * n_engines
    pcs, sems_out = [], []
    last_pc, last_sems = None, None
    for c, act, st, sems in entries:
        for e in range(n_engines):
            on = act >> e & 1
            if c == 0:
                continue      # the state of the start edge: run_tiles does not see it
            if on and open_at[e] is None:
                open_at[e] = c
            elif not on and open_at[e] is not None:
                timeline[ENGINES[e]].append([open_at[e], c])
                open_at[e] = None
        pc = [_field(st, q * st_bits + 6, pc_bits) for q in range(n_engines)]
        if last_pc is not None:
            for q in range(n_engines):
                if pc[q] != last_pc[q]:
                    pcs.append([c, q, pc[q]])
            if sems != last_sems:
                sems_out.append([c, hex(sems)])
        last_pc, last_sems = pc, sems
    for e in range(n_engines):
        if open_at[e] is not None:
            timeline[ENGINES[e]].append([open_at[e], cycles])
    return timeline, pcs, sems_out


@cocotb.test(timeout_time=100, timeout_unit="sec")
async def sim_job(dut):
    with open(os.environ["SIM_JOB"], "rb") as f:
        job = pickle.load(f)
    cfg = TileParams(**runner.params()["cfg"])
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    dut.hbm_dump.value = 0
    dut.log_addr.value = 0
    host = make_host(dut, cfg)
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    await host.load_queues(job["image"]["queues"])
    await host.write_sram(job["image"]["sram"])

    progress = os.environ.get("SIM_PROGRESS")
    step = int(os.environ.get("SIM_PROGRESS_CYCLES", "20000"))
    max_cycles = job["max_cycles"]
    await host.start()
    t0 = time.time()
    timeout = False
    while not int(dut.done.value):
        await First(RisingEdge(dut.done), Timer(step * PERIOD_NS, unit="ns"))
        cycles = int(dut.cycles.value)
        if progress:
            with open(progress + ".tmp", "w") as f:
                f.write(f"{cycles} {time.time() - t0:.3f}\n")
            os.replace(progress + ".tmp", progress)
        if cycles >= max_cycles and not int(dut.done.value):
            timeout = True
            break
    run_wall = time.time() - t0
    await RisingEdge(dut.clk)
    await ReadOnly()
    cycles = int(dut.cycles.value)
    n_log, lost = int(dut.log_count.value), int(dut.log_lost.value)
    res = dict(cycles=cycles, status=host.status(), macs=int(dut.macs.value), timeout=timeout,
               busy={e: int(dut.busy.value) >> (32 * i) & 0xFFFFFFFF
                     for i, e in enumerate(ENGINES)},
               errors=int(dut.errors.value), sems=int(dut.sems.value), log_lost=lost,
               run_wall_seconds=run_wall)
    await RisingEdge(dut.clk)

    entries = []
    st_w, sems_w = len(dut.status), len(dut.sems)
    for i in range(n_log):
        dut.log_addr.value = i
        await RisingEdge(dut.clk)
        await ReadOnly()
        v = int(dut.log_data.value)
        entries.append((v & 0xFFFFFFFF, v >> 32 & 7, v >> 35 & ((1 << st_w) - 1),
                        v >> (35 + st_w) & ((1 << sems_w) - 1)))
        await RisingEdge(dut.clk)
    st_bits = st_w // len(ENGINES)
    res["timeline"], res["pc_changes"], res["sem_changes"] = decode_log(
        entries, n_engines=len(ENGINES), st_bits=st_bits, pc_bits=host.pc_bits,
        sems_bits=sems_w, cycles=cycles)

    words = sorted(job["sram_words"])
    res["sram"] = dict(zip(words, await host.read_sram(words)))
    dut.hbm_dump.value = 1
    await RisingEdge(dut.clk)
    dut.hbm_dump.value = 0
    await RisingEdge(dut.clk)
    with open(os.environ["SIM_RESULT"], "w") as f:
        json.dump(res, f)
