# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""Compiler and golden-model checks that need no simulator.

* every compiled workload runs to completion on the command-processor golden
  model (``sim.cp.run``: all queues DONE, every semaphore back to 0), i.e. the
  automatic semaphores are balanced and deadlock-free;
* the tile golden model's GEMM equals ``sim.ttu.quantized_gemm`` bit for bit and the
  transformer block is close to float64;
* compile errors and invalid tile parameters name the problem.
"""
import numpy as np
import pytest

from hw.tile import Tile
from sim import cp
from hw.tile import TileParams
from sim.compiler import CompileError, TileProgram, ops
from sim.compiler.workloads import gemm_layer, transformer_block
from sim.tile import TileModel
from sim.ttu import quantized_gemm

CFG = TileParams()


@pytest.mark.parametrize("build", [
    lambda: gemm_layer(CFG),
    lambda: gemm_layer(CFG, wfmt="fp4_e2m1", buffers=1),
    lambda: transformer_block(CFG),
])
def test_semaphores_balanced(build):
    prog, _ = build()
    qs = prog.image()["queues"]
    out = cp.run(qs, n_sems=CFG.n_sems, depth=CFG.depth)
    sems, states = out["sems"], out["state"]
    assert all(s == "done" for s in states), states
    assert all(v == 0 for v in sems), sems


def test_golden_gemm_matches_ttu_model():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    p = TileProgram(CFG)
    X = ops.new_mat(p, 8, 64, "x")
    ops.load_mat(p, p.hbm(x.tobytes(), "x"), X)
    A = ops.quantize(p, X, "fp8_e4m3", "xq")
    b, kb, tiles, _ = ops.weight_beats(w, "fp8_e4m3", CFG.n)
    Y = ops.new_mat(p, 8, 32, "y")
    ops.gemm(p, A, dict(hbm=p.hbm(b, "w"), k_beats=kb, tiles=tiles, fmt="fp8_e4m3"), Y)
    g = TileModel(CFG).run(p)
    got = g.read_f32(Y.addr, 8, 32, Y.pitch)
    ref = np.asarray(quantized_gemm(x, w, "fp8_e4m3", "fp8_e4m3"), np.float32)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_transformer_close_to_float64():
    prog, meta = transformer_block(CFG)
    g = TileModel(CFG).run(prog)
    a, shape = meta["out"]
    y = np.frombuffer(bytes(g.hbm[a:a + 4 * 8 * 32]), np.float32).reshape(shape)
    err = np.abs(y - meta["ref"]).max() / np.abs(meta["ref"]).max()
    assert err < 0.1, err


def test_compile_errors():
    p = TileProgram(CFG)
    with pytest.raises(CompileError, match="SRAM full"):
        p.alloc(CFG.words, "huge")
    with pytest.raises(CompileError, match="multiple of the tile size"):
        ops.new_mat(p, 3, 8, "odd")


@pytest.mark.parametrize("kw, name", [(dict(n=3), "n"), (dict(sram_size=1000), "sram_size"),
                                      (dict(dims=1), "dims"), (dict(n_sems=64), "n_sems")])
def test_bad_parameters_are_named(kw, name):
    with pytest.raises(ValueError, match=name):
        TileParams(**kw)
    with pytest.raises(TypeError, match="params must be a TileParams"):
        Tile(params=kw)
