# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""TVP: every op bit-exact against :class:`sim.tvp.TVPModel`.

Testplan (docs/tvp.md):

* ``ops_random``: every opcode in FP32 and BF16x2 mode on random, special
  (0, -0, subnormal, min normal, max, inf, NaN, huge/tiny) and cancelling
  operands, under random valid/ready stalls;
* ``reductions``: RSUM/RMAX groups of 1..9 beats in both formats, interleaved
  with element-wise beats, plus BCAST;
* ``softmax_layernorm``: softmax and layernorm of random rows composed from
  the ops (FP32 and BF16x2), every pass equal to the model, the result close
  to float64;
* ``mx_quantize``: ABS -> RMAX over a 32-element block -> MXQ equals
  ``sim.mx.quantize`` (scale and codes) for all six formats, with NaN, Inf,
  zero, subnormal and huge blocks;
* ``invalid_op``: an invalid opcode passes ``a`` through and sets ``error``;
* ``throughput``: cycles per beat equal the micro-program length, and the
  1x1024 softmax / layernorm cycle counts (written for ``scripts/bench_tvp.py``).
"""
import json
import os
import random
from types import SimpleNamespace

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from hw.tvp import TVP, fpu
from hw.tvp.microcode import Dst, Unit
from sim import fp32, mx
from sim.rtl import runner
from sim.rtl.blocks import run_tvp, tvp_params
from sim.rtl.stream import StreamSink, StreamSource, reset
from sim.tvp import CVT_OPS, OP, OPS, REDUCE_OPS, TimingModel, TVPModel

SPECIAL = [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x80800000,
           0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
           0x3F800000, 0xBF800000, 0x7E967699, 0x0DA24260, 0x3F000000, 0x42B17218, 0xC2CE8ED0,
           0x42FE0000, 0xC3000000, 0x33800000, 0x00400000]


def rand_word(rng, fmt=0):
    """A random FP32 word (or two BF16 values) weighted towards interesting values."""
    if fmt:
        return rand_half(rng) << 16 | rand_half(rng)
    r = rng.random()
    if r < 0.2:
        return rng.choice(SPECIAL)
    if r < 0.45:
        return rng.getrandbits(32)
    if r < 0.8:  # |x| in [2**-27, 2**28]
        return rng.getrandbits(1) << 31 | rng.randrange(100, 156) << 23 | rng.getrandbits(23)
    if r < 0.9:  # subnormal and tiny
        return rng.getrandbits(1) << 31 | rng.randrange(0, 30) << 23 | rng.getrandbits(23)
    return rng.getrandbits(1) << 31 | rng.randrange(0, 256) << 23 | rng.getrandbits(23)


def rand_half(rng):
    return rand_word(rng) >> 16


async def begin(dut):
    """Drive the stream inputs idle, reset, then let the design settle.

    The inputs must be driven before reset: an undriven input is ``Z``/``X``
    in Icarus (Verilator starts them at 0), and an ``X`` on
    ``i_stream.valid`` after reset makes ``busy`` and everything that
    follows ``X`` for good (the root cause of the old Icarus-only failure).
    """
    dut.i_stream__valid.value = 0
    dut.i_stream__payload.value = 0
    dut.o_stream__ready.value = 0
    await reset(dut)
    await ClockCycles(dut.clk, 2)


class Driver:
    """Sends instruction beats, collects results and checks them against the model."""

    def __init__(self, dut, rng, *, valid_prob=1.0, ready_prob=1.0):
        self.p = runner.params()
        self.n = self.p["lanes"]
        self.dut = dut
        self.model = TVPModel(lanes=self.n)
        self.src = StreamSource(dut, "i_stream", dut.clk, valid_prob=valid_prob, rng=rng)
        self.sink = StreamSink(dut, "o_stream", dut.clk, ready_prob=ready_prob, rng=rng)
        self.task = self.sink.start()
        self.taken = 0

    def pack(self, op, fmt, last, a, b, c):
        code = OP[op] if isinstance(op, str) else op
        word = code | fmt << 5 | last << 6
        for k, vec in enumerate((a, b, c)):
            for i, v in enumerate(vec):
                word |= (v & 0xFFFFFFFF) << (7 + 32 * (k * self.n + i))
        return word

    def unpack(self, word):
        return [(word >> (32 * i)) & 0xFFFFFFFF for i in range(self.n)], (word >> (32 * self.n)) & 1

    async def run(self, beats, *, what=""):
        """Execute ``beats`` ``(op, fmt, last, a, b, c)``; return the result vectors."""
        expected = []
        for beat in beats:
            r = self.model.step(*beat)
            if r is not None:
                expected.append((beat, r))
        await self.src.send([self.pack(*b) for b in beats])
        got = await self.sink.wait_for(self.taken + len(expected), max_cycles=200_000)
        got = got[self.taken:]
        self.taken += len(expected)
        for (beat, (words, last)), word in zip(expected, got):
            g_words, g_last = self.unpack(word)
            if g_words != words or g_last != last:
                op = beat[0] if isinstance(beat[0], str) else f"op{beat[0]}"
                raise AssertionError(
                    f"{what} {op} fmt={beat[1]} last={beat[2]}\n"
                    f"  a={[hex(v) for v in beat[3]]}\n  b={[hex(v) for v in beat[4]]}\n"
                    f"  c={[hex(v) for v in beat[5]]}\n"
                    f"  got {[hex(v) for v in g_words]} last={g_last}\n"
                    f"  exp {[hex(v) for v in words]} last={last}")
        return [words for _, (words, _) in expected]

    def stop(self):
        self.task.cancel()


def operands(rng, op, fmt, n):
    a = [rand_word(rng, fmt) for _ in range(n)]
    b = [rand_word(rng, fmt) for _ in range(n)]
    c = [rand_word(rng, fmt) for _ in range(n)]
    if op == "FMA" and not fmt and rng.random() < 0.5:
        # Massive cancellation: c = -(a*b) rounded, perturbed in the last bits.
        c = [fp32.mul(x, y) ^ 0x80000000 ^ rng.getrandbits(2) for x, y in zip(a, b)]
    if op in ("ADD", "SUB") and not fmt and rng.random() < 0.5:
        b = [x ^ (0x80000000 if op == "ADD" else 0) ^ rng.getrandbits(3) for x in a]
    if op in ("MXQ", "MXQP") and rng.random() < 0.7:  # amax near |a|, a valid format select
        b = [(x & 0x7FFFFFFF) + rng.choice([0, 1, rng.getrandbits(22)]) for x in a]
        c = [rng.randrange(6)] * n
    if op in ("CEQ", "CLE", "SEL") and rng.random() < 0.3:
        b = list(a)
    if op == "EXPD" and not fmt and rng.random() < 0.5:  # a - b in exp's range
        b = [fp32.from_float(fp32.to_float(x) + rng.uniform(-20, 20))
             if (x >> 23) & 0xFF < 0x90 else x for x in a]
    return a, b, c


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def ops_random(dut):
    """Every element-wise opcode, both formats, random + special operands, stalls."""
    p = runner.params()
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    drv = Driver(dut, rng, valid_prob=0.7, ready_prob=0.6)
    n = drv.n
    per_op = p.get("beats", 12)
    for op in OPS:
        if op in REDUCE_OPS:
            continue
        for fmt in (0, 1):
            beats = [(op, fmt, rng.getrandbits(1), *operands(rng, op, fmt, n))
                     for _ in range(per_op)]
            await drv.run(beats, what="ops_random")
    # Every special value against every other one, for the FMA-based ops.
    pairs = [(x, y) for x in SPECIAL for y in SPECIAL]
    for op in ("ADD", "SUB", "MUL", "FMA", "MAX", "MIN", "CLT", "CLE", "CEQ"):
        beats = []
        for k in range(0, len(pairs), n):
            chunk = pairs[k:k + n] + [(0, 0)] * (n - len(pairs[k:k + n]))
            a = [x for x, _ in chunk]
            b = [y for _, y in chunk]
            c = [SPECIAL[(k + i) % len(SPECIAL)] for i in range(n)]
            beats.append((op, 0, 0, a, b, c))
        await drv.run(beats, what="specials")
    drv.stop()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def reductions(dut):
    """RSUM/RMAX/RSUMSQ over groups of 1..29 beats (across the bank rotation), both
    formats, other ops inside and between."""
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    drv = Driver(dut, rng, valid_prob=0.8, ready_prob=0.5)
    n = drv.n
    for _ in range(16):
        op = rng.choice(REDUCE_OPS)
        fmt = rng.getrandbits(1)
        length = rng.randrange(1, 30)
        beats = []
        for k in range(length):
            if rng.random() < 0.2:  # normal-range values make sums meaningful
                a = [rand_word(rng, fmt) for _ in range(n)]
            else:
                a = [fp32.from_float(rng.uniform(-4, 4)) >> (16 if fmt else 0) for _ in range(n)]
                if fmt:
                    a = [v << 16 | v for v in a]
            beats.append((op, fmt, int(k == length - 1), a, [0] * n, [0] * n))
            if rng.random() < 0.2:  # element-wise beats inside a group leave it alone
                beats.append(("MUL", rng.getrandbits(1), rng.getrandbits(1),
                              *operands(rng, "MUL", 0, n)))
        beats.append(("BCAST", rng.getrandbits(1), 1, [rand_word(rng) for _ in range(n)],
                      [0] * n, [0] * n))
        beats.append(("ADD", fmt, 0, *operands(rng, "ADD", fmt, n)))
        await drv.run(beats, what="reductions")
    drv.stop()


async def softmax(drv, row, fmt):
    """Softmax of ``row`` (beats of words) composed from TVP ops; returns the output beats."""
    n = drv.n
    z = [0] * n
    nb = len(row)
    mx = (await drv.run([("RMAX", fmt, int(k == nb - 1), row[k], z, z) for k in range(nb)],
                        what="softmax max"))[0]
    e = await drv.run([("EXPD", fmt, 0, row[k], mx, z) for k in range(nb)], what="softmax exp")
    s = (await drv.run([("RSUM", fmt, int(k == nb - 1), e[k], z, z) for k in range(nb)],
                       what="softmax sum"))[0]
    r = (await drv.run([("RECIP", fmt, 0, s, z, z)], what="softmax recip"))[0]
    return await drv.run([("MUL", fmt, 0, v, r, z) for v in e], what="softmax mul")


async def layernorm(drv, row, gamma, beta, fmt, eps=1e-5):
    n = drv.n
    z = [0] * n
    nb = len(row)
    count = nb * n * (2 if fmt else 1)
    inv = fp32.from_float(1.0 / count)
    epsw = fp32.from_float(eps)
    if fmt:
        inv, epsw = (w >> 16 << 16 | w >> 16 for w in (inv, epsw))
    invv, epsv = [inv] * n, [epsw] * n
    s = (await drv.run([("RSUM", fmt, int(k == nb - 1), row[k], z, z) for k in range(nb)],
                       what="ln sum"))[0]
    mu = (await drv.run([("MUL", fmt, 0, s, invv, z)], what="ln mean"))[0]
    d = await drv.run([("SUB", fmt, 0, v, mu, z) for v in row], what="ln sub")
    v = (await drv.run([("RSUMSQ", fmt, int(k == nb - 1), d[k], z, z) for k in range(nb)],
                       what="ln var"))[0]
    ve = (await drv.run([("FMA", fmt, 0, v, invv, epsv)], what="ln eps"))[0]
    r = (await drv.run([("RSQRT", fmt, 0, ve, z, z)], what="ln rsqrt"))[0]
    nrm = await drv.run([("MUL", fmt, 0, x, r, z) for x in d], what="ln norm")
    return await drv.run([("FMA", fmt, 0, x, gamma[k], beta[k]) for k, x in enumerate(nrm)],
                         what="ln affine")


def _splat(value, n, fmt):
    w = fp32.from_float(value)
    if fmt:
        w = w >> 16 << 16 | w >> 16
    return [w] * n


async def rmsnorm(drv, row, gamma, fmt, eps=1e-5):
    """RMSNorm: RSUMSQ, mean + eps, RSQRT, scale by the rsqrt and by gamma."""
    n = drv.n
    z = [0] * n
    nb = len(row)
    count = nb * n * (2 if fmt else 1)
    s = (await drv.run([("RSUMSQ", fmt, int(k == nb - 1), row[k], z, z) for k in range(nb)],
                       what="rms sumsq"))[0]
    ve = (await drv.run([("FMA", fmt, 0, s, _splat(1.0 / count, n, fmt), _splat(eps, n, fmt))],
                        what="rms mean"))[0]
    r = (await drv.run([("RSQRT", fmt, 0, ve, z, z)], what="rms rsqrt"))[0]
    nrm = await drv.run([("MUL", fmt, 0, x, r, z) for x in row], what="rms norm")
    return await drv.run([("MUL", fmt, 0, x, gamma[k], z) for k, x in enumerate(nrm)],
                         what="rms scale")


async def rope(drv, row, cos, sin, fmt):
    """RoPE of adjacent pairs: MUL (x cos), then ROPE = fma(pairswap(x), sin, x cos)."""
    z = [0] * drv.n
    xc = await drv.run([("MUL", fmt, 0, x, cos[k], z) for k, x in enumerate(row)], what="rope cos")
    return await drv.run([("ROPE", fmt, 0, x, sin[k], xc[k]) for k, x in enumerate(row)],
                         what="rope")


def to_words(values, n, fmt):
    """Float row -> list of beats of 32-bit words (FP32, or BF16 pairs: slot h*n+i)."""
    bits = [fp32.from_float(float(v)) for v in values]
    if not fmt:
        return [bits[k:k + n] for k in range(0, len(bits), n)]
    h = [fp32.f32_to_bf16(b) for b in bits]
    return [[h[k + n + i] << 16 | h[k + i] for i in range(n)] for k in range(0, len(h), 2 * n)]


def from_words(beats, n, fmt):
    out = []
    for w in beats:
        if fmt:
            out += [fp32.to_float((v & 0xFFFF) << 16) for v in w]
            out += [fp32.to_float(v & 0xFFFF0000) for v in w]
        else:
            out += [fp32.to_float(v) for v in w]
    return np.array(out)


@cocotb.test(timeout_time=500, timeout_unit="ms")
async def softmax_layernorm(dut):
    """Rows composed from the ops: every pass bit-exact; the result close to float64."""
    p = runner.params()
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 2)
    nprng = np.random.default_rng(cocotb.RANDOM_SEED)
    drv = Driver(dut, rng, valid_prob=0.9, ready_prob=0.7)
    n = drv.n
    for fmt in (0, 1):
        for length in p.get("rows", [n * 8, n * 6]):
            length *= (2 if fmt else 1)
            x = nprng.normal(0, 3, length)
            row = to_words(x, n, fmt)
            xq = from_words(row, n, fmt)
            y = from_words(await softmax(drv, row, fmt), n, fmt)
            ref = np.exp(xq - xq.max())
            ref /= ref.sum()
            tol = 2e-2 if fmt else 1e-5
            assert np.allclose(y, ref, rtol=tol, atol=tol * 1e-2), f"softmax fmt={fmt} off"
            g, b = nprng.normal(1, 0.1, length), nprng.normal(0, 0.1, length)
            y = from_words(await layernorm(drv, row, to_words(g, n, fmt), to_words(b, n, fmt), fmt),
                           n, fmt)
            gq, bq = from_words(to_words(g, n, fmt), n, fmt), from_words(to_words(b, n, fmt), n, fmt)
            ref = (xq - xq.mean()) / np.sqrt(xq.var() + 1e-5) * gq + bq
            assert np.allclose(y, ref, rtol=tol * 4, atol=tol * 4), f"layernorm fmt={fmt} off"
    drv.stop()


@cocotb.test(timeout_time=500, timeout_unit="ms")
async def llm_rows(dut):
    """RMSNorm, RoPE, SwiGLU and an online (two-chunk) softmax of random rows:
    every pass bit-exact, the result close to float64, FP32 and BF16x2."""
    p = runner.params()
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 6)
    nprng = np.random.default_rng(cocotb.RANDOM_SEED + 6)
    drv = Driver(dut, rng, valid_prob=0.9, ready_prob=0.7)
    n = drv.n
    z = [0] * n
    for fmt in (0, 1):
        tol = 2e-2 if fmt else 1e-5
        length = p.get("rows", [n * 8])[0] * (2 if fmt else 1)
        x = nprng.normal(0, 3, length)
        row = to_words(x, n, fmt)
        xq = from_words(row, n, fmt)
        g = to_words(nprng.normal(1, 0.1, length), n, fmt)
        gq = from_words(g, n, fmt)
        y = from_words(await rmsnorm(drv, row, g, fmt), n, fmt)
        ref = xq / np.sqrt(np.mean(xq * xq) + 1e-5) * gq
        assert np.allclose(y, ref, rtol=tol * 4, atol=tol * 4), f"rmsnorm fmt={fmt} off"
        theta = nprng.uniform(-np.pi, np.pi, length // 2).repeat(2)
        cw, sw = to_words(np.cos(theta), n, fmt), to_words(np.sin(theta), n, fmt)
        cq, sq = from_words(cw, n, fmt), from_words(sw, n, fmt)
        y = from_words(await rope(drv, row, cw, sw, fmt), n, fmt)
        if n > 1 or fmt:  # a pair needs two slots in one beat (bit-exact either way)
            ref = xq * cq + np.stack([-xq[1::2], xq[0::2]], 1).ravel() * sq
            assert np.allclose(y, ref, rtol=tol, atol=tol * 10), f"rope fmt={fmt} off"
        b = to_words(nprng.normal(0, 2, length), n, fmt)
        bq = from_words(b, n, fmt)
        y = from_words(await drv.run([("SWIGLU", fmt, 0, a, b[k], z) for k, a in enumerate(row)],
                                     what="swiglu"), n, fmt)
        ref = xq / (1 + np.exp(-xq)) * bq
        assert np.allclose(y, ref, rtol=tol * 4, atol=tol), f"swiglu fmt={fmt} off"
        # Online softmax over two chunks: running max, rescale, running sum.
        h = len(row) // 2
        state = None
        for chunk in (row[:h], row[h:]):
            nb = len(chunk)
            mc = (await drv.run([("RMAX", fmt, int(k == nb - 1), chunk[k], z, z)
                                 for k in range(nb)], what="online max"))[0]
            if state is None:
                m_new = mc
            else:
                m_new = (await drv.run([("MAX", fmt, 0, state[0], mc, z)], what="online m"))[0]
            e = await drv.run([("EXPD", fmt, 0, chunk[k], m_new, z) for k in range(nb)],
                              what="online exp")
            lc = (await drv.run([("RSUM", fmt, int(k == nb - 1), e[k], z, z)
                                 for k in range(nb)], what="online sum"))[0]
            if state is None:
                state = (m_new, lc)
            else:
                sc = (await drv.run([("EXPD", fmt, 0, state[0], m_new, z)], what="online scale"))[0]
                lsum = (await drv.run([("FMA", fmt, 0, state[1], sc, lc)], what="online l"))[0]
                state = (m_new, lsum)
        m_got, l_got = from_words([state[0]], n, fmt)[0], from_words([state[1]], n, fmt)[0]
        assert m_got == xq.max(), f"online max fmt={fmt}"
        ref_l = np.exp(xq - xq.max()).sum()
        assert abs(l_got - ref_l) <= tol * 4 * ref_l, f"online sum fmt={fmt}: {l_got} {ref_l}"
    drv.stop()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def mx_quantize(dut):
    """ABS -> RMAX (block amax) -> MXQ equals ``sim.mx.quantize`` for every format."""
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 5)
    nprng = np.random.default_rng(cocotb.RANDOM_SEED + 5)
    drv = Driver(dut, rng, valid_prob=0.8, ready_prob=0.8)
    n = drv.n
    z = [0] * n
    nb = 32 // n
    for name, f in mx.FORMATS.items():
        for kind in range(6):
            x = (nprng.standard_normal(32) * 2.0 ** nprng.integers(-30, 30)).astype(np.float32)
            if kind == 1:
                x[nprng.integers(32)] = np.nan
            elif kind == 2:
                x[nprng.integers(32)] = -np.inf
            elif kind == 3:
                x[:] = 0
                x[5] = -0.0
            elif kind == 4:  # subnormal block
                x = (x.view(np.uint32) & np.uint32(0x807FFFFF)).view(np.float32)
            elif kind == 5:  # huge values
                x = ((x.view(np.uint32) & np.uint32(0x80FFFFFF)) | np.uint32(0x7E000000)).view(np.float32)
            words = [int(v) for v in x.view(np.uint32)]
            row = [words[k * n:(k + 1) * n] for k in range(nb)]
            ab = await drv.run([("ABS", 0, 0, r, z, z) for r in row], what="mx abs")
            amax = (await drv.run([("RMAX", 0, int(k == nb - 1), ab[k], z, z)
                                   for k in range(nb)], what="mx amax"))[0]
            out = await drv.run([("MXQ", 0, 0, r, amax, [f.select] * n) for r in row],
                                what="mx quantize")
            scales, codes = mx.quantize(x, name)
            got = [w for beat in out for w in beat]
            assert [w & 0xFF for w in got] == [int(c) for c in codes], f"{name} codes"
            assert {w >> 8 for w in got} == {int(scales[0])}, f"{name} scale"
            # MXQP: the same codes densely packed, the scale in the top byte.
            out = await drv.run([("MXQP", 0, 0, r, amax, [f.select] * n) for r in row],
                                what="mx quantize packed")
            bits = f.bits
            for k, beat in enumerate(out):
                vec = sum(w << (32 * i) for i, w in enumerate(beat))
                got = [(vec >> (bits * i)) & ((1 << bits) - 1) for i in range(n)]
                assert got == [int(c) for c in codes[k * n:(k + 1) * n]], f"{name} packed codes"
                assert vec >> (32 * n - 8) == int(scales[0]), f"{name} packed scale"
                assert (vec >> (bits * n)) & ((1 << (32 * n - 8 - bits * n)) - 1) == 0
    drv.stop()


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def invalid_op(dut):
    """An invalid opcode passes ``a`` through, an invalid format (BF16X2 on a conversion)
    runs as FP32; each sets ``error`` and counts, and the TVP keeps working."""
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 3)
    drv = Driver(dut, rng)
    n = drv.n
    assert int(dut.error.value) == 0 and int(dut.errors.value) == 0
    a = [rand_word(rng) for _ in range(n)]
    bad = list(range(len(OPS), 32))
    beats = []
    for k, code in enumerate(bad):  # interleaved with valid beats and inside a reduction
        beats.append((code, k & 1, rng.getrandbits(1), a, a, a))
        beats.append(("RSUM", 0, int(k == len(bad) - 1), *operands(rng, "ADD", 0, n)))
        beats.append(("GELU", 0, 0, *operands(rng, "GELU", 0, n)))
    cvt = [name for name in CVT_OPS]  # BF16X2 on a conversion: an invalid format
    for name in cvt:
        beats.append((name, 1, 0, *operands(rng, name, 0, n)))
        beats.append(("SILU", 1, 0, *operands(rng, "SILU", 1, n)))
    await drv.run(beats, what="invalid")
    assert int(dut.error.value) == 1
    assert int(dut.errors.value) == len(bad) + len(cvt) == drv.model.errors
    await drv.run([("ADD", 0, 0, *operands(rng, "ADD", 0, n))], what="after invalid")
    drv.stop()


async def timed(drv, beats, what):
    start = cocotb.utils.get_sim_time("ns")
    out = await drv.run(beats, what=what)
    return out, round((cocotb.utils.get_sim_time("ns") - start) / 10)


@cocotb.test(timeout_time=500, timeout_unit="ms")
async def throughput(dut):
    """Every op at one beat per cycle in steady state; 1x1024 softmax/layernorm/RMSNorm.

    Per op and format: 32 and 64 back-to-back beats (groups of that length for the
    reductions); the 32 extra beats must take exactly 32 more cycles (fails for
    any op below one beat per cycle), and the cycles equal
    :class:`sim.tvp.TimingModel` plus the pipeline latency.
    """
    p = runner.params()
    await begin(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 4)
    drv = Driver(dut, rng)
    n = drv.n
    act_lat = p["act_latency"]
    rows = {}
    slow = []
    for op in OPS:
        for fmt in ((0,) if op in CVT_OPS else (0, 1)):
            cyc = {}
            for nb in (32, 64):
                beats = [(op, fmt, int(k == nb - 1), *operands(rng, op, fmt, n))
                         for k in range(nb)]
                ideal = TimingModel(lanes=n, gap=p["gap"]).run(beats)
                # Let the previous op drain (the act chain holds later ops back).
                await ClockCycles(dut.clk, act_lat + 4)
                _, cycles = await timed(drv, beats, op)
                lat = act_lat if op in ("GELU", "SILU", "SWIGLU", "EXPD") else p["latency"]
                assert ideal <= cycles <= ideal + lat + 4, \
                    f"{op} fmt={fmt}: {cycles} cycles, ideal {ideal}"
                cyc[nb] = cycles
            per_beat = (cyc[64] - cyc[32]) / 32
            if per_beat > 1:
                slow.append(f"{op}/{fmt}: {per_beat} cycles/beat")
            elems = 64 * n * (2 if fmt else 1)
            rows[f"{op}/{'bf16' if fmt else 'fp32'}"] = {
                "cycles_per_beat": per_beat, "elements": elems, "cycles": cyc[64],
                "elements_per_cycle": elems / cyc[64],
                "steady_elements_per_cycle": n * (2 if fmt else 1) / per_beat}
    assert not slow, "below one beat per cycle: " + ", ".join(slow)
    length = p.get("row", 1024)
    nprng = np.random.default_rng(5)
    comp = {}
    for fmt in (0, 1):
        x = nprng.normal(0, 3, length)
        row = to_words(x, n, fmt)
        start = cocotb.utils.get_sim_time("ns")
        await softmax(drv, row, fmt)
        comp[f"softmax/{'bf16' if fmt else 'fp32'}"] = round(
            (cocotb.utils.get_sim_time("ns") - start) / 10)
        g = to_words(np.ones(length), n, fmt)
        b = to_words(np.zeros(length), n, fmt)
        start = cocotb.utils.get_sim_time("ns")
        await layernorm(drv, row, g, b, fmt)
        comp[f"layernorm/{'bf16' if fmt else 'fp32'}"] = round(
            (cocotb.utils.get_sim_time("ns") - start) / 10)
        start = cocotb.utils.get_sim_time("ns")
        await rmsnorm(drv, row, g, fmt)
        comp[f"rmsnorm/{'bf16' if fmt else 'fp32'}"] = round(
            (cocotb.utils.get_sim_time("ns") - start) / 10)
    drv.stop()
    out = os.environ.get("TVP_BENCH_OUT")
    if out:
        with open(out, "w") as f:
            json.dump({"lanes": n, "row": length, "gap": p["gap"], "latency": p["latency"],
                       "ops": rows, "composed": comp}, f, indent=1)


def test_tvp_lanes1():
    """Every coroutine on 1 lane (2 slots): the regression configuration (the smallest
    build; BF16 gives the 2 slots a RoPE pair)."""
    run_tvp(1, test_module="tb.tvp.test_tvp", row=64)


@pytest.mark.slow
def test_tvp_lanes2():
    """Every coroutine on 2 lanes (4 slots), 1x128 rows."""
    run_tvp(2, test_module="tb.tvp.test_tvp", row=128)


@pytest.mark.slow
def test_tvp_lanes16():
    """The default 16-lane configuration (32 slots) under Icarus.

    Icarus, not Verilator: the 32 slots of pipelined units make Verilator's
    C++ model too large to compile on a shared 2-core machine (verilation and
    compilation took over 15 minutes without finishing), while ``iverilog``
    elaborates it quickly; the short rows keep the slow simulation bounded.
    """
    run_tvp(16, test_module="tb.tvp.test_tvp", sim="icarus",
            testcase=["ops_random", "reductions", "softmax_layernorm", "llm_rows", "invalid_op"],
            beats=2,
            rows=[32])


def test_tvp_lanes1_icarus():
    """Icarus too: 1 lane, the element-wise ops and the reductions.

    (This used to fail on Icarus only: the decoder was an ``always @*`` process
    that Icarus never ran while its inputs kept their initial values, so its
    outputs stayed X; it is a constant ROM with a continuous assignment now.)
    """
    run_tvp(1, test_module="tb.tvp.test_tvp", sim="icarus",
            testcase=["ops_random", "reductions", "invalid_op"], beats=4)


class TruncatingTVP(TVP):
    """Mutant: FMA results lose their LSB (a rounding bug)."""
    UNITS = SimpleNamespace(
        **{k: getattr(fpu, k) for k in ("exp", "recip", "rsqrt", "misc", "LATENCY")},
        fma=lambda p, x, y, z, name: (lambda r: (r[0] & ~1, r[1]))(fpu.fma(p, x, y, z, name=name)))


@pytest.mark.slow
def test_mutant_fma_is_caught():
    """The testbench must be able to fail: a truncating FMA is caught."""
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(TruncatingTVP(lanes=1), block="tvp_mutant", test_module="tb.tvp.test_tvp",
                   params=tvp_params(1, beats=2), testcase="ops_random")


class NoHazardTVP(TVP):
    """Mutant: the issue logic ignores results still in flight (no hazard stall)."""

    def hazard(self, uop, slots):
        return 0


@pytest.mark.slow
def test_mutant_no_hazard_is_caught():
    """A reduction combine issued before its operands are written back must fail."""
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(NoHazardTVP(lanes=1), block="tvp_mutant_hazard",
                   test_module="tb.tvp.test_tvp", params=tvp_params(1, beats=2),
                   testcase="reductions", sim="icarus")


class DependentWaitTVP(TVP):
    """Mutant: the old dependent wait is back (a reduction beat waits for the previous
    one's accumulate, an act beat for the previous act beat)."""

    def hazard(self, uop, slots):
        u = uop.payload
        return (super().hazard(uop, slots) | ((u.dst == Dst.ACC) & slots.acc_pending)
                | ((u.unit == Unit.ACT) & slots.act_block))


@pytest.mark.slow
def test_mutant_dependent_wait_is_caught():
    """The throughput test fails when a beat waits for the previous one of its op."""
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(DependentWaitTVP(lanes=1), block="tvp_mutant_wait",
                   test_module="tb.tvp.test_tvp", params=tvp_params(1, row=32),
                   testcase="throughput")


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="lanes"):
        TVP(lanes=3)
    with pytest.raises(ValueError, match="lanes"):
        TVP(lanes=128)
    with pytest.raises(TypeError, match="lanes"):
        TVP(lanes="4")
