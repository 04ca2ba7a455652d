"""Combinational arithmetic of the TTU against the golden model (Amaranth simulator).

Pure pytest (no Verilog build): ``FP32Add`` against NumPy float32 addition,
``IntToFP32`` against ``sim.mx.int_to_f32_bits`` and ``MXElementDecode``
against ``sim.mx.element_int`` on every code of every format.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.common.mx import ALL_FORMATS, FORMAT_SELECT, MXElementDecode
from hw.ttu.fp32 import FP32Add, IntToFP32
from sim import mx


def run_comb(dut, vectors, inputs, outputs):
    """Apply each vector (tuple of input values) and collect the outputs."""
    got = []

    async def tb(ctx):
        for vec in vectors:
            for sig, val in zip(inputs, vec):
                ctx.set(sig, val)
            got.append(tuple(ctx.get(o) for o in outputs))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return got


def run_pipe(dut, vectors, inputs, outputs):
    """Like :func:`run_comb` for a pipelined unit: one vector per cycle, results
    collected ``dut.latency`` cycles later."""
    got = []
    lat = dut.latency

    async def tb(ctx):
        for n in range(len(vectors) + lat - 1):
            for sig, val in zip(inputs, vectors[min(n, len(vectors) - 1)]):
                ctx.set(sig, val)
            await ctx.tick()
            if n >= lat - 1:
                got.append(tuple(ctx.get(o) for o in outputs))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got


def f32_edge_values():
    specials = [0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x00800000, 0x00800001, 0x7F7FFFFF,
                0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x3F800000,
                0xBF800000, 0x33800000, 0x4B800000, 0x3F800001, 0xBF7FFFFF]
    return specials


@pytest.mark.parametrize("pipelined", [0, 1, 2, 3])
def test_fp32_add(pipelined):
    rng = np.random.default_rng(21)
    n = 3000
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    # close exponents and cancellation are the hard cases
    b[: n // 2] = ((a[: n // 2].astype(np.int64) ^ 0x80000000) + rng.integers(-40, 40, n // 2)) & 0xFFFFFFFF
    b[n // 2: 3 * n // 4] = (a[n // 2: 3 * n // 4].astype(np.int64) + (rng.integers(0, 30, n // 4) << 23)) & 0xFFFFFFFF
    # subnormal neighbourhood
    a[-300:] = rng.integers(0, 1 << 25, 300).astype(np.uint32) | (rng.integers(0, 2, 300).astype(np.uint32) << 31)
    b[-300:] = rng.integers(0, 1 << 25, 300).astype(np.uint32) | (rng.integers(0, 2, 300).astype(np.uint32) << 31)
    ed = f32_edge_values()
    pairs = [(x, y) for x in ed for y in ed] + list(zip(a.tolist(), b.tolist()))
    dut = FP32Add(pipelined=pipelined)
    got = (run_pipe if pipelined else run_comb)(dut, pairs, [dut.a, dut.b], [dut.s])
    A = np.array([p[0] for p in pairs], np.uint32).view(np.float32)
    B = np.array([p[1] for p in pairs], np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        S = A + B
    ref = np.where(np.isnan(S), np.uint32(mx.F32_CANONICAL_NAN), S.view(np.uint32))
    got = np.array([g[0] for g in got], np.uint32)
    bad = np.nonzero(got != ref)[0]
    assert bad.size == 0, [(hex(pairs[i][0]), hex(pairs[i][1]), hex(got[i]), hex(ref[i])) for i in bad[:5]]


@pytest.mark.parametrize("width,pipelined", [(70, 0), (20, 0), (70, 1), (70, 2), (70, 3), (70, 4)])
def test_int_to_fp32(width, pipelined):
    rng = np.random.default_rng(width)
    vecs = []
    lim = 1 << (width - 1)
    for _ in range(2500):
        s = int(rng.integers(-(1 << 62), 1 << 62)) * (1 << max(0, width - 64)) >> int(rng.integers(0, width))
        s = max(-lim, min(lim - 1, s))
        e = int(rng.integers(-300, 260))
        vecs.append((s, e, 0, 0, 0))
    vecs += [(-lim, 0, 0, 0, 0), (lim - 1, 130 - width, 0, 0, 0), (1, -149, 0, 0, 0), (1, -150, 0, 0, 0),
             (3, -150, 0, 0, 0), (-3, -151, 0, 0, 0), ((1 << 24) - 1, 104, 0, 0, 0),
             ((1 << 25) - 1, 103, 0, 0, 0), (0, 5, 0, 0, 0), (5, 0, 1, 0, 0), (5, 0, 0, 1, 0),
             (5, 0, 0, 0, 1), (5, 0, 0, 1, 1), (-7, -1023 // 4, 0, 0, 0)]
    vecs = [v for v in vecs if -lim <= v[0] < lim]
    dut = IntToFP32(width=width, pipelined=pipelined)
    got = (run_pipe if pipelined else run_comb)(dut, vecs, [dut.value, dut.exp, dut.nan, dut.pinf, dut.ninf], [dut.result])
    for (s, e, nan, pinf, ninf), (r,) in zip(vecs, got):
        if nan or (pinf and ninf):
            ref = mx.F32_CANONICAL_NAN
        elif pinf:
            ref = 0x7F800000
        elif ninf:
            ref = 0xFF800000
        else:
            ref = mx.int_to_f32_bits(s, e)
        assert r == ref, (s, e, hex(r), hex(ref))


def test_element_decode_all_codes():
    dut = MXElementDecode()
    vecs = [(c, FORMAT_SELECT[f]) for f in ALL_FORMATS for c in range(256)] + [(3, 6), (3, 7)]
    got = run_comb(dut, vecs, [dut.code, dut.select],
                   [dut.sign, dut.mant, dut.shift, dut.nan, dut.inf, dut.zero, dut.bad_format])
    for (c, sel), (sign, mant, shift, nan, inf, zero, bad) in zip(vecs, got):
        if sel > 5:
            assert bad and zero and not nan
            continue
        f = mx.FORMAT_CODES[sel]
        ref, rnan, rinf = mx.element_int(np.array([c]), f)
        value = (mant << shift) * (-1 if sign else 1)
        assert (value, nan, inf, zero, bad) == (ref[0], rnan[0], rinf[0], ref[0] == 0 and not (rnan[0] or rinf[0]), 0), (f, c)
