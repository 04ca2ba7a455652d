"""Tile integration: compiled programs on ``hw.tile.Tile`` (CP + DMA + TTU + TVP + SRAM).

Testplan (docs/tile.md):
* ``gemm_bias_gelu``: ``GELU(x @ W + b)`` with MX FP8 weights streamed from
  HBM through two SRAM buffers: every SRAM word and HBM byte the program
  writes equals the golden model (``sim.tile.TileModel``) bit for bit; all
  queues DONE, semaphores back to 0.
* ``fp4_weights``: the same with MX FP4 (E2M1) weights.
* ``double_buffer_overlap``: a larger GEMM with one vs two weight buffers:
  with two the TTU and DMA are busy in the same cycles and the run is faster.
* ``mutant_no_semaphores``: the same program with every wait removed is
  caught (results differ from the golden model).
* ``bad_programs``: illegal opcode, semaphore deadlock and an out-of-range
  SRAM address each stop the offending queue with its error code (no hang).
"""
import cocotb

from hw.tile import Tile
from hw.tile import TileParams
from sim.compiler.workloads import bad_program, gemm_layer
from sim.rtl import runner
from sim.rtl.tile_host import overlap

from .common import run_program

TIMEOUT = dict(timeout_time=20, timeout_unit="ms")


def _cfg():
    return TileParams(**runner.params()["cfg"])


def _check_ok(dut, res):
    assert not res["timeout"], res["status"]
    assert all(s["state"] == "DONE" for s in res["status"]), res["status"]
    c = res["cmp"]
    assert c["sram_bad"] == 0 and c["hbm_bad"] == 0, c
    assert c["sram_words"] > 0 and c["hbm_lines"] > 0
    sems = int(dut.sems.value)
    assert sems == 0, f"semaphores not balanced: {sems:#x}"


@cocotb.test(**TIMEOUT)
async def gemm_bias_gelu(dut):
    cfg = _cfg()
    prog, meta = gemm_layer(cfg, M=8, K=32, N=32)
    res = await run_program(dut, cfg, prog)
    _check_ok(dut, res)
    dut._log.info("gemm_bias_gelu: %d cycles, cmp %s", res["cycles"], res["cmp"])


@cocotb.test(**TIMEOUT)
async def fp4_weights(dut):
    cfg = _cfg()
    prog, meta = gemm_layer(cfg, M=8, K=64, N=16, wfmt="fp4_e2m1", seed=2)
    res = await run_program(dut, cfg, prog)
    _check_ok(dut, res)


@cocotb.test(**TIMEOUT)
async def double_buffer_overlap(dut):
    cfg = _cfg()
    cyc, ov = {}, {}
    ram = None
    for buffers in (1, 2):
        prog, meta = gemm_layer(cfg, M=4, K=64, N=64, act=None, buffers=buffers, chunk=2, seed=3)
        res = await run_program(dut, cfg, prog, clock=buffers == 1, ram=ram)
        ram = res["ram"]
        _check_ok(dut, res)
        tl = res["timeline"]
        cyc[buffers] = res["cycles"]
        ov[buffers] = overlap(tl["dma"], tl["ttu"])
        dut._log.info("%d buffer(s): %d cycles, TTU busy %d, DMA busy %d, both %d", buffers,
                      res["cycles"], sum(b - a for a, b in tl["ttu"]),
                      sum(b - a for a, b in tl["dma"]), ov[buffers])
    assert ov[2] > 100, ov
    assert cyc[2] < cyc[1], cyc


@cocotb.test(**TIMEOUT)
async def bad_programs(dut):
    cfg = _cfg()
    expect = {"opcode": (1, "ILLEGAL_OPCODE"), "deadlock": (2, "DEADLOCK"),
              "address": (2, "ENGINE_ERROR")}
    ram = None
    for i, (kind, (queue, code)) in enumerate(expect.items()):
        prog, meta = bad_program(kind, cfg)
        prog.image = lambda image=meta["image"]: image
        res = await run_program(dut, cfg, prog, check=False, max_cycles=50_000, clock=i == 0,
                                ram=ram)
        ram = res["ram"]
        dut._log.info("%s: %s after %d cycles", kind, res["status"], res["cycles"])
        assert not res["timeout"], (kind, res["status"])
        st = res["status"][queue]
        assert st["state"] == "ERROR" and st["error"] == code, (kind, res["status"])


@cocotb.test(**TIMEOUT)
async def mutant_no_semaphores(dut):
    """A compiler that drops every wait (no synchronisation) must be caught:
    the TTU then reads weight buffers before the DMA has filled them."""
    from hw.cp.isa import Opcode, decode, encode
    cfg = _cfg()
    prog, meta = gemm_layer(cfg, M=8, K=32, N=32, act=None, seed=4)
    image = prog.image()
    strip = lambda w: encode(decode(w)[0], signals=decode(w)[2], arg=decode(w)[3])
    image["queues"] = [[strip(w) for w in q if decode(w)[0] != Opcode.NOP] for q in image["queues"]]
    prog.image = lambda: image
    res = await run_program(dut, cfg, prog, max_cycles=50_000)
    c = res["cmp"]
    dut._log.info("mutant: %s, %s", res["status"], c)
    assert c["sram_bad"] + c["hbm_bad"] > 0, "unsynchronised program was not caught"


def test_tile():
    t = Tile()
    cfg = t.params
    runner.run(t, block="integration_tile", test_module="tb.integration.test_tile",
               params={"cfg": cfg.as_dict()})
