# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""TTU (controller + systolic array) against the golden MX GEMM, bit for bit.

Testplan (docs/ttu.md):
* ``all_format_pairs``: for each of the 36 (A, B) format pairs, a quantized random GEMM
  and a raw-code GEMM (every code incl. NaN/Inf/subnormal/max, scales incl. 0, 254 and
  the NaN scale 0xFF), K not a multiple of the block (zero padding), packed 2x mode
  whenever both formats are FP4/FP6;
* ``backpressure``: random activation stalls and a slow result sink (ready 30 %);
* ``bad_command``: rejected commands are counted and the unit keeps working;
* ``cycle_count``: cycles equal ``sim.ttu.CycleModel`` exactly, FP4 takes half the
  FP8 cycles for the same GEMM;
on a 4x4 and an 8x8 array (block 32) and a 4x4 array with block 16;
* ``test_output_fifo_depth_is_the_least_for_full_rate`` (pysim, bare 2x2 array): tiles
  ``max(R, C)`` beats apart never wait with ``out_depth`` FIFO rows and do with one fewer.
"""
import itertools
import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from hw.ttu import TTU, PE, SystolicArray
from hw.ttu.array import row_layout
from hw.ttu.controller import cmd_layout, operand_layout
from sim import mx
from sim.rtl import runner
from sim.rtl.blocks import run_ttu, ttu_params
from sim.rtl.stream import StreamSink, StreamSource, reset
from sim.ttu import PE_LATENCY, CycleModel
from tb.ttu.driver import Gemm

FORMATS = list(mx.FORMATS)


class Env:
    def __init__(self, dut, p, rng, *, valid_prob=1.0, ready_prob=1.0):
        self.dut, self.p = dut, p
        self.R, self.C = p["rows"], p["cols"]
        self.cmd_l = cmd_layout(p["max_k_beats"], p["max_n_tiles"])
        self.w_l = operand_layout(self.C, True)
        self.a_l = operand_layout(self.R, True)
        self.o_l = row_layout(self.R, self.C)
        self.cmd = StreamSource(dut, "cmd_stream", dut.clk, rng=rng)
        self.w = StreamSource(dut, "w_stream", dut.clk, rng=rng)
        self.a = StreamSource(dut, "a_stream", dut.clk, valid_prob=valid_prob, rng=rng)
        self.sink = StreamSink(dut, "o_stream", dut.clk, ready_prob=ready_prob, rng=rng)
        self.task = self.sink.start()

    async def run(self, g, *, max_cycles=200_000):
        self.sink.beats.clear()
        await self.command(g)
        await self.w.send(g.weights(self.w_l))
        await self.a.send(g.activations(self.a_l))
        beats = await self.sink.wait_for(g.n_rows_out(), max_cycles=max_cycles)
        return g.unpack_results(self.o_l, beats)

    async def command(self, g):
        errors = int(self.dut.errors.value)
        await self.cmd.send([g.cmd(self.cmd_l)])
        await ReadOnly()
        assert int(self.dut.errors.value) == errors, "command rejected"
        await RisingEdge(self.dut.clk)

    def check(self, g, got, what):
        exp = g.expected.view(np.uint32)
        bad = np.argwhere(got != exp)
        assert bad.size == 0, (f"{what} {g.fa}x{g.fb} packed={g.packed}: {len(bad)} mismatches, "
                               f"first at {tuple(bad[0])}: got {got[tuple(bad[0])]:#010x} "
                               f"expected {exp[tuple(bad[0])]:#010x}")


def quantized_case(rng, R, C, fa, fb, block, K, mt=1, nt=2):
    M, N = R * mt, C * nt
    a = (rng.standard_normal((M, K)) * np.exp2(rng.integers(-8, 8, (M, 1)))).astype(np.float32)
    b = (rng.standard_normal((K, N)) * np.exp2(rng.integers(-8, 8, (1, N)))).astype(np.float32)
    a[0, :] = 0.0  # a zero row
    sa, ca = mx.quantize(a, fa, block=block, axis=1)
    sb, cb = mx.quantize(b, fb, block=block, axis=0)
    return Gemm(R, C, sa, ca, fa, sb, cb, fb, block=block)


def raw_case(rng, R, C, fa, fb, block, K):
    """Arbitrary codes (all classes) and extreme scales."""
    M, N = R, C
    nb = -(-K // block)

    def codes(shape, f):
        bits = mx.FORMATS[f].bits
        c = rng.integers(0, 1 << bits, shape)
        # Mostly finite: re-draw NaN/Inf codes with high probability.
        _, nan, inf = mx.element_int(c, f)
        redraw = (nan | inf) & (rng.random(shape) < 0.97)
        c = np.where(redraw, rng.integers(0, 1 << (bits - 2), shape), c)
        return c.astype(np.uint8)

    ca, cb = codes((M, K), fa), codes((K, N), fb)
    sa = rng.integers(110, 145, (M, nb))
    sb = rng.integers(110, 145, (nb, N))
    # extremes: subnormal / overflowing block values and NaN scales
    sa[0, :] = 0                       # row 0: subnormal and underflowing FP32 results
    sb[:, 0] = rng.integers(95, 140, nb)
    sa[1 % M, 0], sb[0, 1 % N] = 254, 254  # overflow to Inf
    if rng.random() < 0.5:
        sa[M - 1, nb - 1] = 255
    return Gemm(R, C, sa.astype(np.uint8), ca, fa, sb.astype(np.uint8), cb, fb, block=block)


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def all_format_pairs(dut):
    p = runner.params()
    await reset(dut)
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    env = Env(dut, p, random.Random(cocotb.RANDOM_SEED))
    blk = p["block"]
    for n, (fa, fb) in enumerate(itertools.product(FORMATS, repeat=2)):
        K = [blk, 2 * blk + 5, 3 * blk - 1, 2 * blk][n % 4]
        g = quantized_case(rng, env.R, env.C, fa, fb, blk, K, mt=1 + n % 2)
        env.check(g, await env.run(g), "quantized")
        g = raw_case(rng, env.R, env.C, fa, fb, blk, K)
        env.check(g, await env.run(g), "raw")


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def backpressure(dut):
    p = runner.params()
    await reset(dut)
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 1)
    env = Env(dut, p, random.Random(cocotb.RANDOM_SEED), valid_prob=0.6, ready_prob=0.3)
    blk = p["block"]
    for fa, fb in [("fp8_e4m3", "fp4_e2m1"), ("fp4_e2m1", "fp4_e2m1"), ("int8", "fp8_e5m2")]:
        g = quantized_case(rng, env.R, env.C, fa, fb, blk, 2 * blk, mt=2, nt=2)
        env.check(g, await env.run(g), "backpressure")


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def bad_command(dut):
    p = runner.params()
    await reset(dut)
    rng = np.random.default_rng(3)
    env = Env(dut, p, random.Random(0))
    blk = p["block"]
    g = quantized_case(rng, env.R, env.C, "fp8_e4m3", "fp8_e4m3", blk, blk)
    cmd = g.cmd(env.cmd_l)
    bad = [
        cmd | (7 << 0),                                   # fmt_a = 7: no such format
        g.cmd(env.cmd_l) | (1 << 6),                      # packing with FP8
    ]
    g.k_beats += 1
    bad.append(g.cmd(env.cmd_l))                          # K not a whole number of blocks
    g.k_beats -= 1
    await env.cmd.send(bad)
    await ClockCycles(dut.clk, 2)
    await ReadOnly()
    assert int(dut.errors.value) == 3, int(dut.errors.value)
    assert int(dut.busy.value) == 0
    await RisingEdge(dut.clk)
    env.check(g, await env.run(g), "after errors")


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def cycle_count(dut):
    p = runner.params()
    await reset(dut)
    rng = np.random.default_rng(5)
    env = Env(dut, p, random.Random(0))
    R, C = env.R, env.C
    model = CycleModel(R, C)
    blk = p["block"]
    measured = {}
    for fa, fb, K in [("fp8_e4m3", "fp8_e4m3", 3 * blk), ("fp4_e2m1", "fp4_e2m1", 3 * blk),
                      ("fp8_e4m3", "fp8_e4m3", blk // 2)]:
        g = quantized_case(rng, R, C, fa, fb, blk, K, mt=2, nt=2)
        env.sink.beats.clear()
        await env.command(g)
        await env.w.send(g.weights(env.w_l))
        start = None
        acts = g.activations(env.a_l)
        task = cocotb.start_soon(env.a.send(acts))
        cycles = 0
        while len(env.sink.beats) < g.n_rows_out():
            await ReadOnly()
            if start is None and int(dut.a_stream__valid.value) and int(dut.a_stream__ready.value):
                start = 0
            if start is not None:
                cycles += 1
            await RisingEdge(dut.clk)
        await task
        env.check(g, g.unpack_results(env.o_l, env.sink.beats), "cycles")
        ref = model.run(R * 2, C * 2, K, fa, fb, blk)
        assert cycles == ref["compute_cycles"], (fa, K, cycles, ref)
        measured[(fa, K)] = cycles
        dut._log.info(f"{fa} K={K}: {cycles} cycles (model {ref['compute_cycles']})")
    fixed = R + C + PE_LATENCY
    assert measured[("fp4_e2m1", 3 * blk)] - fixed == (measured[("fp8_e4m3", 3 * blk)] - fixed) // 2


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def bench_gemm(dut):
    """Benchmark only (``params['bench']``): measured cycles of square GEMMs, checked bit for bit."""
    import json
    import os
    p = runner.params()
    bench = json.loads(os.environ.get("TTU_BENCH", "null"))
    if not bench:
        return
    p.update(bench)
    await reset(dut)
    rng = np.random.default_rng(9)
    env = Env(dut, p, random.Random(0))
    R, C = env.R, env.C
    out = {}
    for size, fa, fb in p["bench"]:
        a = rng.standard_normal((size, size)).astype(np.float32)
        b = rng.standard_normal((size, size)).astype(np.float32)
        sa, ca = mx.quantize(a, fa, block=32, axis=1)
        sb, cb = mx.quantize(b, fb, block=32, axis=0)
        g = Gemm(R, C, sa, ca, fa, sb, cb, fb, block=32)
        env.sink.beats.clear()
        await env.command(g)
        await env.w.send(g.weights(env.w_l))
        task = cocotb.start_soon(env.a.send(g.activations(env.a_l)))
        cycles, started = 0, False
        while len(env.sink.beats) < g.n_rows_out():
            await ReadOnly()
            started |= bool(int(dut.a_stream__valid.value) and int(dut.a_stream__ready.value))
            cycles += started
            await RisingEdge(dut.clk)
        await task
        env.check(g, g.unpack_results(env.o_l, env.sink.beats), "bench")
        out[f"{size}:{fa}:{fb}"] = cycles
    with open(p["bench_out"], "w") as f:
        json.dump(out, f)


def test_ttu_4x4():
    run_ttu(4, 4, 32, test_module="tb.ttu.test_ttu")


def test_ttu_4x4_block16():
    run_ttu(4, 4, 16, test_module="tb.ttu.test_ttu", testcase=["all_format_pairs", "cycle_count"])


def test_ttu_8x8():
    run_ttu(8, 8, 32, test_module="tb.ttu.test_ttu")


class ForgetfulPE(PE):
    """Mutant: the exact block sum keeps only the block's last beat."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.blk_sum.eq(0)
        return m


def test_mutant_ttu_is_caught():
    """The testbench must be able to fail: one forgetful PE corrupts its outputs."""
    dut = TTU(rows=2, cols=2, block=32, max_k_beats=96, max_n_tiles=2)
    dut.array._core.pes[1][0]._MustUse__silence = True  # replaced, never elaborated
    dut.array._core.pes[1][0] = ForgetfulPE()
    with pytest.raises((AssertionError, SystemExit)):  # the cocotb runner exits on failure
        runner.run(dut, block="ttu_mutant", test_module="tb.ttu.test_ttu",
                   params=ttu_params(2, 2, 32), testcase="bad_command")


def test_latency_model_matches_rtl():
    from hw.ttu.array import PIPELINE_LATENCY
    assert PE_LATENCY == PIPELINE_LATENCY


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="rows"):
        TTU(rows=0)
    with pytest.raises(ValueError, match="block"):
        SystolicArray(rows=2, cols=2, block=8)
    with pytest.raises(ValueError, match="depth"):
        SystolicArray(rows=4, cols=4, depth=3)  # fewer rows than one tile
    with pytest.raises(ValueError, match="formats"):
        PE(formats=("fp16",))
    with pytest.raises(ValueError, match="max_k_beats"):
        TTU(max_k_beats=0)


def _full_rate_stalls(depth, *, rows=2, cols=2, tiles=24):
    """Feed tiles of ``max(rows, cols)`` beats back to back into a bare array whose
    consumer is always ready; return (input stall cycles, result row indices)."""
    from amaranth.sim import Simulator

    dut = SystolicArray(rows=rows, cols=cols, formats=("fp8_e4m3",), block=16, packed=False,
                        depth=depth)
    beats = max(rows, cols)
    out = {"stalls": 0, "rows": []}

    async def bench(ctx):
        ctx.set(dut.o_stream.ready, 1)
        sent = 0
        for _ in range(tiles * beats + rows + cols + 40):
            last = sent % beats == beats - 1
            ctx.set(dut.i_stream.valid, sent < tiles * beats)
            ctx.set(dut.i_stream.payload.blk_last, last)
            ctx.set(dut.i_stream.payload.tile_last, last)
            await ctx.delay(1e-9)  # settle ready (it depends on tile_last)
            valid, ready = ctx.get(dut.i_stream.valid), ctx.get(dut.i_stream.ready)
            out["stalls"] += valid and not ready
            if ctx.get(dut.o_stream.valid):
                out["rows"].append(ctx.get(dut.o_stream.payload.row))
            await ctx.tick()
            sent += valid and ready

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["stalls"], out["rows"]


def test_output_fifo_depth_is_the_least_for_full_rate():
    """``out_depth`` rows let the shortest tiles flow with no input stall; one row
    fewer stalls them (the formula is tight); every row leaves, in order."""
    from hw.ttu.array import out_depth

    depth = out_depth(2, 2)
    stalls, rows = _full_rate_stalls(depth)
    assert stalls == 0
    assert rows == [0, 1] * 24
    stalls, rows = _full_rate_stalls(depth - 1)
    assert stalls > 0
    assert rows == [0, 1] * 24
