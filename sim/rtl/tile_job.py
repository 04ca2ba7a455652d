"""cocotb side of ``make sim``: run one compiled tile image and dump what happened.

Named ``test_module="sim.rtl.tile_job"`` by :func:`sim.run.run_on_tile`. The job
(``SIM_JOB``: a pickle written by :mod:`sim.run`) holds the image, the
addresses to read back and a cycle limit; the result (``SIM_RESULT``: JSON)
holds the queue status, cycles, engine timeline, MAC beats and the words read
back. This coroutine never asserts on the outcome: :mod:`sim.run` judges and
reports (a bad program is an expected outcome there).
"""
import json
import os
import pickle

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hw.tile import TileParams

from . import runner
from .image import load_image, make_ram
from .stream import reset
from .tile_host import make_host, run_tiles


async def _watch_pcs(dut, host, out, sems_out):
    """Record ``[cycle, queue, pc]`` whenever a queue's program counter moves,
    and ``[cycle, sems]`` whenever a semaphore value changes.

    A queue's pc leaves an ``EXEC`` when its engine accepts the command (the
    TTU and TVP feeders accept only when idle, so that is the start of the
    operation); semaphore increments mark completions. Together they give
    per-operation timing for the trace and for checking the performance model
    (the ``active`` busy intervals merge overlapping DMA descriptors). Cycles
    count like ``run_tiles``: started together, this loop also sees the edge of
    ``host.start()``, which ``run_tiles`` does not count.
    """
    last = [s["pc"] for s in host.status()]
    last_sems = int(dut.sems.value)
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        cycle += 1
        for q, s in enumerate(host.status()):
            if s["pc"] != last[q]:
                out.append([cycle - 1, q, s["pc"]])
                last[q] = s["pc"]
        sems = int(dut.sems.value)
        if sems != last_sems:
            sems_out.append([cycle - 1, hex(sems)])
            last_sems = sems


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def sim_job(dut):
    with open(os.environ["SIM_JOB"], "rb") as f:
        job = pickle.load(f)
    cfg = TileParams(**runner.params()["cfg"])
    await reset(dut)
    ram = make_ram(dut, cfg)
    host = make_host(dut, cfg)
    await RisingEdge(dut.clk)
    await load_image(host, ram, job["image"])
    pcs, sems = [], []
    watch = cocotb.start_soon(_watch_pcs(dut, host, pcs, sems))
    res = (await run_tiles([host], max_cycles=job["max_cycles"]))[0]
    watch.cancel()
    res["pc_changes"] = pcs
    res["sem_changes"] = sems
    words = sorted(job["sram_words"])
    res["sram"] = dict(zip(words, await host.read_sram(words)))
    wb = cfg.word_bytes
    res["hbm"] = {a: ram.read(a * wb, wb).hex() for a in job["hbm_lines"]}
    a, nbytes = job["out"]
    res["out"] = ram.read(a, nbytes).hex()
    res["errors"] = int(dut.errors.value)
    res["sems"] = int(dut.sems.value)
    with open(os.environ["SIM_RESULT"], "w") as f:
        json.dump(res, f)
