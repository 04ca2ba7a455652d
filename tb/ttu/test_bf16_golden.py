"""BF16 x BF16 golden rule (``sim.mx.bf16_gemm``, docs/numerics.md) and K independence.

Pure pytest, no simulator. Testplan:
* ``test_bf16_decode``: BF16 bit patterns decode like ml_dtypes.bfloat16;
* ``test_bf16_exact_reference``: bf16_gemm equals an independent exact-rational
  reference (exact group sum, one RNE rounding to FP32, FP32 accumulation in order);
* ``test_bf16_error_bound``: |C - float64| <= (G + 1) * 2**-24 * sum|a*b| + G * 2**-149,
  G = number of groups (one rounding per group plus G FP32 adds);
* ``test_bf16_specials``: NaN, Inf x 0, Inf - Inf, overflow -> Inf, zeros;
* ``test_mx_result_independent_of_k``: the MX block rule has one rounding per block,
  so splitting a block into K-wide partial sums changes nothing: mx_gemm of the
  block equals the sum of K-wide exact integer partial sums rounded once.
"""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from sim import mx


def bf16_bits(x):
    return np.asarray(x, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


def test_bf16_decode():
    codes = np.arange(1 << 16, dtype=np.uint16)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns on NaN casts
        ref = codes.view(ml_dtypes.bfloat16).astype(np.float64)
    got = mx.bf16_decode(codes)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(got[ok], ref[ok])
    assert np.array_equal(np.signbit(got[ok]), np.signbit(ref[ok]))
    fin = np.isfinite(ref)
    ints = mx.bf16_int(codes[fin])
    assert all(Fraction(int(i)) * Fraction(1, 1 << 133) == Fraction(float(v))
               for i, v in zip(ints[::97], ref[fin][::97]))


def _rne_f32(q):
    """FP32 of an exact Fraction via float64 when exact there, else int_to_f32_bits."""
    num, den = q.numerator, q.denominator
    assert den & (den - 1) == 0
    return np.uint32(mx.int_to_f32_bits(num, -(den.bit_length() - 1))).view(np.float32)


@pytest.mark.parametrize("seed,K,lo,hi", [(1, 8, -130, 100), (2, 13, -130, 20), (3, 64, -2, 3),
                                          (6, 40, -70, -60)])
def test_bf16_exact_reference(seed, K, lo, hi):
    rng = np.random.default_rng(seed)
    M, N = 3, 4
    a = bf16_bits(rng.standard_normal((M, K)) * np.exp2(rng.integers(lo, hi, (M, K))))
    b = bf16_bits(rng.standard_normal((K, N)) * np.exp2(rng.integers(lo, hi, (K, N))))
    got = mx.bf16_gemm(a, b)
    da, db = mx.bf16_decode(a), mx.bf16_decode(b)
    G = mx.BF16_GROUP
    for i in range(M):
        for j in range(N):
            acc = np.float32(0)
            for k0 in range(0, K, G):
                s = sum(Fraction(float(da[i, k])) * Fraction(float(db[k, j]))
                        for k in range(k0, min(K, k0 + G)))
                acc = np.float32(acc + _rne_f32(s))
            assert got[i, j].view(np.uint32) == acc.view(np.uint32), (i, j)


@pytest.mark.parametrize("seed", [4, 5])
def test_bf16_error_bound(seed):
    rng = np.random.default_rng(seed)
    M, K, N = 8, 256, 8
    a = bf16_bits(rng.standard_normal((M, K)))
    b = bf16_bits(rng.standard_normal((K, N)))
    da, db = mx.bf16_decode(a), mx.bf16_decode(b)
    got = mx.bf16_gemm(a, b).astype(np.float64)
    ref = da @ db
    G = -(-K // mx.BF16_GROUP)
    bound = (G + 1) * 2.0 ** -24 * (np.abs(da) @ np.abs(db)) + G * 2.0 ** -149
    assert np.all(np.abs(got - ref) <= bound)
    # The rule is not just float64 rounded once: measured errors are non-zero but small.
    assert np.max(np.abs(got - ref) / (np.abs(da) @ np.abs(db))) < 2.0 ** -20


def test_bf16_specials():
    one, inf, nan, big = (int(bf16_bits(v)) for v in (1.0, np.inf, np.nan, 3e38))
    ninf = int(bf16_bits(-np.inf))

    def g(a, b):
        return mx.bf16_gemm(np.array([a], dtype=np.uint16), np.array(b, dtype=np.uint16)
                            .reshape(-1, 1))[0, 0]
    assert g([nan, 0], [0, one]).view(np.uint32) == mx.F32_CANONICAL_NAN
    assert g([inf], [0]).view(np.uint32) == mx.F32_CANONICAL_NAN
    assert g([inf, ninf], [one, one]).view(np.uint32) == mx.F32_CANONICAL_NAN
    assert g([inf, one], [one, one]) == np.inf
    assert g([big] * 2, [big] * 2) == np.inf
    assert g([0x8000], [one]).view(np.uint32) == 0  # exact zero sum is +0
    # Tail group of K=9 (group 8) is zero padding: 9 ones.
    assert g([one] * 9, [one] * 9) == 9.0


def cancellation_case(fa, fb, M=2, Kd=64, N=3, seed=7):
    """Adversarial MX operands: every 8-element partial sum of a block holds a huge
    product and tiny ones, and the huge products cancel across the block, so the
    exact block sum is the sum of the tiny products alone (large cancellation);
    rounding each partial sum loses (or rounds up) the tiny products.
    Row 0 / column 0 are such blocks; the rest is quantized random data."""
    rng = np.random.default_rng(seed)
    sa, ca = mx.quantize(rng.standard_normal((M, Kd)) * 4, fa, block=32, axis=1)
    sb, cb = mx.quantize(rng.standard_normal((Kd, N)), fb, block=32, axis=0)
    ta, tb = mx.FORMATS[fa], mx.FORMATS[fb]
    big_a = int(mx.encode(np.array([ta.max_normal]), fa)[0])
    big_b = int(mx.encode(np.array([tb.max_normal]), fb)[0])
    neg_a = int(mx.encode(np.array([-ta.max_normal]), fa)[0])
    tiny_a = int(mx.encode(np.array([2.0 ** ta.lsb]), fa)[0])
    tiny_b = int(mx.encode(np.array([2.0 ** tb.lsb]), fb)[0])
    for k in range(Kd):
        ca[0, k] = (big_a if (k // 8) % 2 == 0 else neg_a) if k % 8 == 0 else tiny_a
        cb[k, 0] = big_b if k % 8 == 0 else tiny_b
    sa[0, :] = sb[:, 0] = 127
    if ta.max_int * tb.max_int * 8 < 1 << 24:
        # Narrow pairs: an 8-element partial sum is exact in FP32 at normal scales,
        # so put the tiny products at 2**-151, below the FP32 grid (2**-149).
        s = 103 - ta.lsb - tb.lsb
        sa[0, :], sb[:, 0] = s // 2, s - s // 2
    return sa, ca, sb, cb


def k_partial_model(sa, ca, fa, sb, cb, fb, K, *, block=32, round_every=None):
    """A K-wide PE in Python: K-wide exact partial sums into the exact block sum, one
    rounding per block. ``round_every`` (a mutant): round each ``round_every``-element
    partial sum to FP32 and add those in FP32 instead."""
    M, Kd = ca.shape
    N = cb.shape[1]
    ia, _, _ = mx.element_int(ca, mx.FORMATS[fa])
    ib, _, _ = mx.element_int(cb, mx.FORMATS[fb])
    E0 = mx.FORMATS[fa].lsb + mx.FORMATS[fb].lsb - 2 * mx.E8M0_BIAS
    got = np.zeros((M, N), dtype=np.float32)
    for i in range(M):
        for j in range(N):
            acc = np.float32(0)
            for bi in range(Kd // block):
                e = E0 + int(sa[i, bi]) + int(sb[bi, j])
                step = round_every or K
                parts = []
                for k0 in range(bi * block, (bi + 1) * block, step):  # one PE cycle
                    parts.append(int(ia[i, k0:k0 + step].astype(object)
                                     @ ib[k0:k0 + step, j].astype(object)))
                if round_every is None:
                    vals = [mx.int_to_f32_bits(sum(parts), e)]
                else:
                    vals = [mx.int_to_f32_bits(p, e) for p in parts]
                for v in vals:
                    acc = np.float32(acc + np.uint32(v).view(np.float32))
            got[i, j] = acc
    return got


@pytest.mark.parametrize("fa,fb", [("fp8_e4m3", "fp8_e5m2"), ("fp4_e2m1", "fp6_e3m2"),
                                   ("int8", "fp8_e4m3")])
def test_mx_result_independent_of_k(fa, fb):
    """A K-wide PE adds K-wide exact partial sums into the exact block sum and rounds
    once per block, so its result is mx_gemm's for every K (K only sets the rate);
    the data includes blocks of large cancellation (:func:`cancellation_case`)."""
    sa, ca, sb, cb = cancellation_case(fa, fb)
    ref = mx.mx_gemm(sa, ca, fa, sb, cb, fb, 32)
    assert ref[0, 0] != 0  # the cancelling block keeps only its tiny products
    for K in (1, 2, 4, 8, 16, 32):
        got = k_partial_model(sa, ca, fa, sb, cb, fb, K)
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), K


@pytest.mark.parametrize("fa,fb", [("fp8_e4m3", "fp8_e5m2"), ("fp4_e2m1", "fp6_e3m2"),
                                   ("int8", "fp8_e4m3")])
def test_partial_rounding_mutant_is_caught(fa, fb):
    """The mutant that rounds every 8-element partial sum differs on that data."""
    sa, ca, sb, cb = cancellation_case(fa, fb)
    ref = mx.mx_gemm(sa, ca, fa, sb, cb, fb, 32)
    bad = k_partial_model(sa, ca, fa, sb, cb, fb, 8, round_every=8)
    assert not np.array_equal(bad.view(np.uint32), ref.view(np.uint32))
