"""Golden MX numerics (``sim/mx.py``) against ml_dtypes and exact references.

Pure pytest, no simulator. Testplan (docs/numerics.md):
* ``test_decode_all_codes``: every code of every FP format equals ml_dtypes' value;
* ``test_encode_matches_ml_dtypes``: all representable values round-trip, and random,
  tie, tiny and huge values encode like ml_dtypes' RNE cast after clamping to +-max;
* ``test_int8``: INT8 codes are two's complement / 64, encode is RNE and symmetric;
* ``test_quantize_rule``: the scale is floor(log2(amax)) - emax, clamped; NaN/Inf
  blocks get scale 0xFF; partial last blocks;
* ``test_int_to_f32``: the exact int -> FP32 rounding against float64 (exact there);
* ``test_gemm_against_float64``: MX GEMM equals an independent float64 reference
  (exact products and block sums, one rounding, FP32 accumulation) for every format pair;
* ``test_gemm_specials``: NaN, Inf, NaN scale, zeros, overflow, subnormal block results.
"""
import itertools

import ml_dtypes
import numpy as np
import pytest

from sim import mx

FP = [n for n in mx.FORMATS if n != "int8"]


def ml(name):
    return getattr(ml_dtypes, mx.FORMATS[name].ml_dtype)


@pytest.mark.parametrize("name", FP)
def test_decode_all_codes(name):
    f = mx.FORMATS[name]
    codes = np.arange(1 << f.bits, dtype=np.uint8)
    ref = codes.view(ml(name)).astype(np.float64)
    got = mx.decode(codes, name)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(got[ok], ref[ok])
    assert np.array_equal(np.signbit(got[ok]), np.signbit(ref[ok]))
    assert np.nanmax(np.abs(got[np.isfinite(got)])) == f.max_normal == float(ml_dtypes.finfo(ml(name)).max)


def ml_encode(x, name):
    f = mx.FORMATS[name]
    xc = np.clip(x, -f.max_normal, f.max_normal)  # ml_dtypes does not saturate
    return xc.astype(np.float32).astype(ml(name)).view(np.uint8)


@pytest.mark.parametrize("name", FP)
def test_encode_matches_ml_dtypes(name):
    f = mx.FORMATS[name]
    rng = np.random.default_rng(7)
    codes = np.arange(1 << f.bits, dtype=np.uint8)
    vals = mx.decode(codes, name)
    fin = np.isfinite(vals)
    assert np.array_equal(mx.encode(vals[fin], name), codes[fin])  # round trip
    # Midpoints between neighbours (ties to even) and just around them.
    pos = np.unique(np.abs(vals[fin]))
    mids = (pos[1:] + pos[:-1]) / 2
    tests = [mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf),
             rng.standard_normal(20000) * f.max_normal / 4,
             np.exp2(rng.uniform(f.lsb - 4, f.emax + 3, 20000)),
             np.array([0.0, f.max_normal * 1.5, 1e30, 2.0 ** (f.lsb - 1), 2.0 ** (f.lsb - 1) * 1.0001])]
    x = np.concatenate(tests)
    x = np.concatenate([x, -x]).astype(np.float32).astype(np.float64)
    got = mx.encode(x, name)
    ref = ml_encode(x, name)
    assert np.array_equal(got, ref), x[got != ref][:5]
    assert np.array_equal(mx.encode(np.array([np.inf, -np.inf]), name),
                          [0x7C, 0xFC] if f.has_inf else ml_encode(np.array([1e30, -1e30]), name))
    nan = mx.encode(np.array([np.nan]), name)[0]
    assert nan == {"fp8_e4m3": 0x7F, "fp8_e5m2": 0x7E}.get(name, 0)


def test_int8():
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(mx.decode(codes, "int8"), codes.view(np.int8) / 64.0)
    x = np.array([0.5 / 64, 1.5 / 64, 2.5 / 64, -2.5 / 64, 1.99, -1.999, -2.0, 5.0, -5.0, 1e-9])
    ref = np.clip(np.round(x * 64), -127, 127).astype(np.int8).view(np.uint8)
    assert np.array_equal(mx.encode(x, "int8"), ref)
    rng = np.random.default_rng(3)
    x = rng.uniform(-2.2, 2.2, 10000)
    assert np.array_equal(mx.encode(x, "int8"),
                          np.clip(np.round(x * 64), -127, 127).astype(np.int8).view(np.uint8))


@pytest.mark.parametrize("name", list(mx.FORMATS))
@pytest.mark.parametrize("block", [16, 32])
def test_quantize_rule(name, block):
    f = mx.FORMATS[name]
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((5, 3 * block + 7)) * np.exp2(rng.integers(-20, 20, (5, 1)))).astype(np.float32)
    x[0, :block] = 0.0
    x[1, 3] = np.nan
    x[2, block + 1] = np.inf
    x[3, :block] *= np.float32(2.0 ** -140)  # scale clamps at 2**-127
    s, c = mx.quantize(x, name, block=block)
    assert s.shape == (5, 4) and c.shape == x.shape
    for r in range(5):
        for b in range(4):
            blk = x[r, b * block:(b + 1) * block].astype(np.float64)
            if not np.all(np.isfinite(blk)):
                assert s[r, b] == 0xFF and not c[r, b * block:(b + 1) * block].any()
                continue
            amax = np.max(np.abs(blk))
            X = -127 if amax == 0 else int(np.floor(np.log2(amax))) - f.emax
            X = min(max(X, -127), 127)
            assert s[r, b] == X + 127
            assert np.array_equal(c[r, b * block:(b + 1) * block], mx.encode(blk / 2.0 ** X, name))
    # axis=0 is the transpose of axis=-1
    s0, c0 = mx.quantize(x.T, name, block=block, axis=0)
    assert np.array_equal(s0, s.T) and np.array_equal(c0, c.T)
    d = mx.dequantize(s, c, name, block=block)
    fin = np.repeat(s != 0xFF, block, axis=1)[:, :x.shape[1]]
    assert np.all(np.isnan(d[~fin]))
    if name != "int8":  # the largest element keeps a relative error below the element ulp
        big = np.abs(x) == np.max(np.abs(np.where(np.isfinite(x), x, 0)), axis=1, keepdims=True)
        big &= fin & (s[:, :1].repeat(x.shape[1], 1) > 0)
        assert np.all(np.abs(d[big] - x[big]) <= np.abs(x[big]) * 2.0 ** -f.mbits)


def test_int_to_f32():
    rng = np.random.default_rng(5)
    for _ in range(20000):
        s = int(rng.integers(-(1 << 52), 1 << 52)) >> int(rng.integers(0, 52))
        e = int(rng.integers(-220, 140))
        with np.errstate(over="ignore"):
            ref = np.array([np.ldexp(np.float64(s), e)]).astype(np.float32).view(np.uint32)[0]
        got = mx.int_to_f32_bits(s, e)
        if s == 0:
            ref = 0
        assert got == ref, (s, e, hex(got), hex(ref))
    # wide sums (beyond float64) round once
    s = (1 << 68) + (1 << 44) + 1  # 1 + 2**-24 + tiny: above the tie -> rounds up
    assert mx.int_to_f32_bits(s, -68) == 0x3F800001
    assert mx.int_to_f32_bits((1 << 68) + (1 << 44), -68) == 0x3F800000  # tie to even
    assert mx.int_to_f32_bits(1, 128) == 0x7F800000 and mx.int_to_f32_bits(-1, -150) == 0x80000000
    assert mx.int_to_f32_bits(3, -150) == 0x00000002  # 1.5 * 2**-149 -> 2 (even)


def reference_gemm(sa, ca, fa, sb, cb, fb, block):
    """Independent reference: float64 block sums (exact here), one FP32 rounding."""
    da = mx.decode(ca, fa)
    db = mx.decode(cb, fb)
    M, K = ca.shape
    N = cb.shape[1]
    acc = np.zeros((M, N), np.float32)
    for b in range(-(-K // block)):
        sl = slice(b * block, (b + 1) * block)
        blk = da[:, sl] @ db[sl, :]  # exact: < 53 significant bits for these inputs
        scale = np.exp2((sa[:, b:b + 1].astype(float) - 127) + (sb[b:b + 1, :].astype(float) - 127))
        with np.errstate(over="ignore", invalid="ignore"):
            acc = (acc + (blk * scale).astype(np.float32)).astype(np.float32)
    return acc


PAIRS = list(itertools.product(mx.FORMATS, repeat=2))


@pytest.mark.parametrize("fa,fb", PAIRS)
def test_gemm_against_float64(fa, fb):
    rng = np.random.default_rng(PAIRS.index((fa, fb)))
    M, K, N, block = 3, 77, 4, 32
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    sa, ca = mx.quantize(a, fa, block=block)
    sb, cb = mx.quantize(b, fb, block=block, axis=0)
    # Keep float64 block sums exact: random scales near 127 and few big exponents.
    got = mx.mx_gemm(sa, ca, fa, sb, cb, fb, block)
    ref = reference_gemm(sa, ca, fa, sb, cb, fb, block)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))
    # Extreme scales: subnormal and overflowing block values.
    sa2 = rng.integers(0, 255, sa.shape).astype(np.uint8)
    sb2 = rng.integers(0, 255, sb.shape).astype(np.uint8)
    got = mx.mx_gemm(sa2, ca, fa, sb2, cb, fb, block)
    ref = reference_gemm(sa2, ca, fa, sb2, cb, fb, block)
    ref = np.where(np.isnan(ref), np.uint32(mx.F32_CANONICAL_NAN).view(np.float32), ref)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_gemm_wide_exact_sum():
    """E5M2 x E5M2 block sums need ~70 bits: one rounding, not float64's two."""
    f = "fp8_e5m2"
    ca = np.zeros((1, 32), np.uint8)
    cb = np.zeros((32, 1), np.uint8)
    ca[0, 0], cb[0, 0] = 0x7B, 0x7B      # 57344**2 = 2**31.6...
    ca[0, 1], cb[1, 0] = 0x01, 0x01      # 2**-32: below float64's 53 bits relative
    sa = np.full((1, 1), 127, np.uint8)
    sb = np.full((1, 1), 127, np.uint8)
    big = mx.mx_dot(sa, ca, f, sb, cb, f, 32)
    assert big == np.float32(57344.0 ** 2)
    S = mx.FORMATS[f].max_int ** 2 + 1
    assert mx.int_to_f32_bits(S, -32) == np.float32(57344.0 ** 2).view(np.uint32)


def test_gemm_specials():
    f8, f5, f4 = "fp8_e4m3", "fp8_e5m2", "fp4_e2m1"
    one = lambda f: mx.encode(np.array([1.0]), f)[0]
    sa = np.full((1, 2), 127, np.uint8)
    sb = np.full((2, 1), 127, np.uint8)
    ca = np.zeros((1, 64), np.uint8)
    cb = np.zeros((64, 1), np.uint8)
    nanbits = lambda r: r.view(np.uint32)[0, 0]
    # all zeros -> +0
    assert nanbits(mx.mx_gemm(sa, ca, f8, sb, cb, f4)) == 0
    # NaN element in A times a zero still poisons
    c = ca.copy(); c[0, 5] = 0x7F
    assert nanbits(mx.mx_gemm(sa, c, f8, sb, cb, f4)) == mx.F32_CANONICAL_NAN
    # NaN scale
    s = sa.copy(); s[0, 1] = 0xFF
    assert nanbits(mx.mx_gemm(s, ca, f8, sb, cb, f4)) == mx.F32_CANONICAL_NAN
    # Inf * 0 = NaN, Inf * 1 = Inf, +Inf + -Inf = NaN
    c = ca.copy(); c[0, 3] = 0x7C
    assert nanbits(mx.mx_gemm(sa, c, f5, sb, cb, f5)) == mx.F32_CANONICAL_NAN
    d = cb.copy(); d[3, 0] = one(f5)
    assert nanbits(mx.mx_gemm(sa, c, f5, sb, d, f5)) == 0x7F800000
    c[0, 40] = 0xFC; d[40, 0] = one(f5)
    assert nanbits(mx.mx_gemm(sa, c, f5, sb, d, f5)) == mx.F32_CANONICAL_NAN
    # overflow of the FP32 accumulation -> Inf; huge scales
    s2 = np.full((1, 2), 254, np.uint8)
    c = np.full((1, 64), one(f8), np.uint8)
    d = np.full((64, 1), one(f4), np.uint8)
    assert nanbits(mx.mx_gemm(s2, c, f8, s2.T.copy(), d, f4)) == 0x7F800000
    # tiny scales -> subnormal / zero
    s0 = np.zeros((1, 2), np.uint8)
    r = mx.mx_gemm(s0, c, f8, np.full((2, 1), 110, np.uint8), d, f4)
    assert r[0, 0] == np.float32(64 * 2.0 ** -127 * 2.0 ** -17)
