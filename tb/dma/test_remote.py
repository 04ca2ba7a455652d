"""Tile-to-tile copy in hardware: DMA -> RemoteWriter -> 2x1 NoC mesh -> RemoteSink -> SRAM.

Testplan (docs/dma.md, "Testplan"):
* ``remote_random``: random 3-D descriptors HBM->remote and local->remote
  (sizes 1 B .. 4 KiB, random alignment, signed strides) under AXI
  back-pressure; the remote tile's SRAM equals :class:`sim.dma.DMAModel`'s
  remote image byte for byte, completions in order.
* ``remote_bad_tile``: writes to a tile outside the mesh are dropped and
  counted beat by beat, a copy straddling the last tile's end lands its
  in-mesh part, and later copies still arrive.
"""
import random

import cocotb
from cocotb.triggers import ClockCycles

from hw.dma.descriptor import Err, Kind
from sim.rtl import runner
from sim.rtl.stream import reset
from tb.dma.remote_top import RemoteTestTop
from tb.dma.test_dma import HBM_SRC, LOC_SRC, Env, region_desc

PARAMS = dict(addr_width=32, data_width=64, dims=3, n_local=1, sram_size=8192,
              hbm_size=1 << 17, max_burst=16, read_buffer=64, starve_limit=3)
TILE1 = 8192             # remote byte address of tile (x=1, y=0), offset 0
NO_TILE = 2 * 8192       # (x=0, y=1): outside a 2x1 mesh


async def start(dut, prob):
    p = runner.params()
    await reset(dut)
    env = Env(dut, p, random.Random(cocotb.RANDOM_SEED))
    env.backpressure(prob)
    env.local.append(bytearray(p["sram_size"]))  # back-door image of tile 1's SRAM
    await env.fill_local(0, 0, p["sram_size"], zero=True)
    await env.fill_local(1, 0, p["sram_size"], zero=True)
    return env


async def check_remote(env, settle=200):
    """Posted writes: let the NoC drain, then compare tile 1's SRAM with the model."""
    await ClockCycles(env.dut.clk, settle)
    want = bytearray(env.p["sram_size"])
    for a, b in env.remote.items():
        if TILE1 <= a < TILE1 + len(want):
            want[a - TILE1] = b
    got = await env.read_local(1)
    bad = [a for a in range(len(got)) if got[a] != want[a]]
    assert not bad, f"remote SRAM differs at {len(bad)} bytes, first {bad[:8]}"


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def remote_random(dut):
    env = await start(dut, prob=0.3)
    env.fill_hbm(*HBM_SRC)
    await env.fill_local(0, *LOC_SRC)
    rng = env.rng
    kinds = [(Kind.HBM, Kind.REMOTE), (Kind.LOCAL, Kind.REMOTE)]
    descs = [region_desc(rng, env.model, *kinds[i % 2], 4096, sem=i, rem_dst=(TILE1, 8192))
             for i in range(16)]
    for half in (descs[:8], descs[8:]):
        await env.issue(half, valid_prob=0.7)
        assert await env.wait_done() == env.expected
    await check_remote(env)
    assert int(dut.remote_errors.value) == 0


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def remote_bad_tile(dut):
    env = await start(dut, prob=0.0)
    env.fill_hbm(*HBM_SRC)
    mk = lambda src, dst, n, sem: dict(src_kind=Kind.HBM, dst_kind=Kind.REMOTE, src=src, dst=dst,
                                       length=n, sem=sem)
    descs = [
        mk(0, TILE1 + 100, 300, 1),
        mk(1000, NO_TILE + 5, 100, 2),          # no such tile: every beat dropped
        mk(2000, NO_TILE - 20, 60, 3),          # 20 bytes land at tile 1's end, 40 dropped
        mk(3000, TILE1 + 4000, 777, 4),         # later copies still arrive
    ]
    await env.issue(descs)
    assert await env.wait_done() == [(d["sem"], Err.OK) for d in descs]
    for a in list(env.remote):                  # the model keeps only what the mesh can reach
        if not TILE1 <= a < NO_TILE:
            del env.remote[a]
    await check_remote(env)

    def words(lo, hi):
        return (hi - 1) // 8 - lo // 8 + 1
    dropped = words(NO_TILE + 5, NO_TILE + 105) + words(NO_TILE, NO_TILE + 40)
    assert int(dut.remote_errors.value) == dropped
    assert int(dut.remote_writes.value) == (words(TILE1 + 100, TILE1 + 400)
                                            + words(NO_TILE - 20, NO_TILE)
                                            + words(TILE1 + 4000, TILE1 + 4777))


def test_remote():
    dut = RemoteTestTop(**PARAMS)
    runner.run(dut, block="dma_remote", test_module="tb.dma.test_remote",
               params={**PARAMS, "sram_aw": dut.dma.sram_aw, "noc_on_chip": True})
