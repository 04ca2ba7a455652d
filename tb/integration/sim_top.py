"""cocotb side of ``make sim``: run one compiled tile image and dump what happened.

The job (``SIM_JOB``: a pickle written by :mod:`sim.run`) holds the image, the
addresses to read back and a cycle limit; the result (``SIM_RESULT``: JSON)
holds the queue status, cycles, engine timeline, MAC beats and the words read
back. This coroutine never asserts on the outcome: :mod:`sim.run` judges and
reports (a bad program is an expected outcome there).
"""
import json
import os
import pickle

import cocotb
from cocotb.triggers import RisingEdge

from sim.compiler import TileConfig
from tb import harness
from tb.stream import reset

from .common import load_image, make_host, make_ram
from .driver import run_tiles


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def sim_job(dut):
    with open(os.environ["SIM_JOB"], "rb") as f:
        job = pickle.load(f)
    cfg = TileConfig(**harness.params()["cfg"])
    await reset(dut)
    ram = make_ram(dut, cfg)
    host = make_host(dut, cfg)
    await RisingEdge(dut.clk)
    await load_image(host, ram, job["image"])
    res = (await run_tiles([host], max_cycles=job["max_cycles"]))[0]
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
