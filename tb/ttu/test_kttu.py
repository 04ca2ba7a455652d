# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""K-wide TTU (``hw.ttu.KTTU``) against the golden models bit for bit (Amaranth pysim).

Testplan (docs/ttu.md, "K-wide unit"):
* ``test_kttu_mx_pairs[k]``: raw codes of every class (NaN/Inf/subnormal/max, scales 0,
  254, 0xFF) and quantized data, K not a multiple of the block (zero padding), vs
  ``sim.mx.mx_gemm``; K = 8 all 36 format pairs, K = 1 and 32 a spread of pairs
  (all 36 under ``slow``);
* ``test_kttu_bf16[k]``: BF16 x BF16 incl. NaN, Inf, Inf x 0, subnormals, overflow,
  K not a multiple of 8, vs ``sim.mx.bf16_gemm``, K = 1, 8, 32;
* ``test_kttu_block16``: block 16 with K = 32 (two blocks per beat, four packed);
* ``test_kttu_backpressure``: input gaps (valid 60 %) and a slow sink (ready 30 %);
* ``test_kttu_bad_config_counted``: a tile under an unsupported format / packing is
  counted in ``errors``; the next GEMM is exact;
* ``test_kttu_rate``: a tile of ``K_total`` elements takes ``K_total / k`` beats (FP8),
  half that packed FP4, 4x that BF16: cycle counts measured;
* ``test_mutant_kttu_is_caught``: a PE that forgets its multi-beat block sum fails;
* ``test_bad_parameters_are_named``.
"""
import itertools

import ml_dtypes
import numpy as np
import pytest

from hw.ttu.kpe import KPE
from hw.ttu.kttu import KTTU
from sim import mx
from tb.ttu.kdriver import KGemm, run_pysim

FORMATS = list(mx.FORMATS)
PAIRS = list(itertools.product(FORMATS, repeat=2))


def raw_mx(rng, dut, fa, fb, K, M=2, N=4):
    block = dut.spec.block
    nb = -(-K // block)

    def codes(shape, f):
        bits = mx.FORMATS[f].bits
        c = rng.integers(0, 1 << bits, shape)
        _, nan, inf = mx.element_int(c, f)
        redraw = (nan | inf) & (rng.random(shape) < 0.9)
        return np.where(redraw, rng.integers(0, 1 << (bits - 2), shape), c)

    ca, cb = codes((M, K), fa), codes((K, N), fb)
    sa = rng.integers(110, 145, (M, nb))
    sb = rng.integers(110, 145, (nb, N))
    sa[0, :] = 0                       # subnormal / underflowing FP32 results
    sa[1 % M, 0], sb[0, 1 % N] = 254, 254  # overflow to Inf
    if rng.random() < 0.5:
        sa[M - 1, nb - 1] = 255        # NaN scale
    return KGemm(dut, a=ca, b=cb, fa=fa, fb=fb, sa=sa, sb=sb)


def quant_mx(rng, dut, fa, fb, K, M=2, N=4):
    block = dut.spec.block
    a = (rng.standard_normal((M, K)) * np.exp2(rng.integers(-8, 8, (M, 1)))).astype(np.float32)
    b = (rng.standard_normal((K, N)) * np.exp2(rng.integers(-8, 8, (1, N)))).astype(np.float32)
    a[0, :] = 0.0
    sa, ca = mx.quantize(a, fa, block=block, axis=1)
    sb, cb = mx.quantize(b, fb, block=block, axis=0)
    return KGemm(dut, a=ca, b=cb, fa=fa, fb=fb, sa=sa, sb=sb)


def check(gemms, results):
    for g, got in zip(gemms, results):
        exp = g.expected.view(np.uint32)
        bad = np.argwhere(got != exp)
        assert bad.size == 0, (f"{g.fa}x{g.fb} bf16={g.bf16}: {len(bad)} mismatches, first "
                               f"{tuple(bad[0])}: got {got[tuple(bad[0])]:#010x} "
                               f"expected {exp[tuple(bad[0])]:#010x}")


def _mx_run(k, pairs, seed, **kw):
    dut = KTTU(rows=2, cols=2, k=k, bf16=False, **kw)
    rng = np.random.default_rng(seed)
    blk = dut.spec.block
    gemms = []
    for n, (fa, fb) in enumerate(pairs):
        K = [blk, 2 * blk + 5, 3 * blk - 1, 2 * blk][n % 4]
        gemms.append(raw_mx(rng, dut, fa, fb, K))
        if n % 3 == 0:
            gemms.append(quant_mx(rng, dut, fa, fb, K))
    res, _, errors = run_pysim(dut, gemms)
    assert errors == 0
    check(gemms, res)


SPREAD = PAIRS[::5] + [("fp4_e2m1", "fp4_e2m1"), ("fp6_e3m2", "fp6_e2m3"), ("fp8_e5m2", "fp8_e5m2")]


@pytest.mark.parametrize("k,pairs", [(8, PAIRS), (1, SPREAD), (32, SPREAD[:6])],
                         ids=["k8", "k1", "k32"])
def test_kttu_mx_pairs(k, pairs):
    _mx_run(k, pairs, seed=k)


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 2, 4, 16, 32])
def test_kttu_mx_all_pairs_slow(k):
    _mx_run(k, PAIRS, seed=100 + k)


def bf16_bits(x):
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


def bf16_case(rng, dut, K, M=2, N=2, lo=-130, hi=100):
    a = bf16_bits(rng.standard_normal((M, K)) * np.exp2(rng.integers(lo, hi, (M, K))))
    b = bf16_bits(rng.standard_normal((K, N)) * np.exp2(rng.integers(lo, hi, (K, N))))
    return a, b


@pytest.mark.parametrize("k", [1, 8, 32])
def test_kttu_bf16(k):
    dut = KTTU(rows=2, cols=2, k=k, formats=("fp8_e4m3", "fp4_e2m1"))
    rng = np.random.default_rng(k)
    gemms = []
    for K, lo, hi in [(8, -130, 100), (13, -140, -120), (21, -3, 3)]:
        a, b = bf16_case(rng, dut, K, lo=lo, hi=hi)
        gemms.append(KGemm(dut, a=a, b=b, bf16=True))
    one, inf, nan, big = (int(bf16_bits(v)) for v in (1.0, np.inf, np.nan, 3e38))
    ninf, sub = int(bf16_bits(-np.inf)), 0x0001
    a = np.array([[nan, one, one, one, 0, 0, 0, 0, one],
                  [inf, one, one, one, one, one, one, one, one]], np.uint16)
    b = np.array([[0, inf], [one, 0], [one, one], [one, one], [big, one], [big, ninf],
                  [one, one], [one, one], [sub, big]], np.uint16)
    gemms.append(KGemm(dut, a=a, b=b, bf16=True))  # NaN x 0, Inf x 0, Inf - Inf, overflow
    a = np.array([[sub] * 8 + [big] * 8, [0x8000] * 16], np.uint16)
    b = np.array([[sub, one]] * 8 + [[big, 0x8000]] * 8, np.uint16)
    gemms.append(KGemm(dut, a=a, b=b, bf16=True))  # subnormal products, overflow, -0
    # MX on the same unit after BF16: the mode switch leaves nothing behind.
    gemms.append(raw_mx(rng, dut, "fp8_e4m3", "fp4_e2m1", 40))
    res, _, errors = run_pysim(dut, gemms)
    assert errors == 0
    check(gemms, res)


def test_kttu_block16():
    _mx_run(32, [("fp8_e4m3", "fp8_e5m2"), ("fp4_e2m1", "fp6_e3m2"), ("int8", "int8")],
            seed=16, block=16)


def test_kttu_backpressure():
    dut = KTTU(rows=2, cols=2, k=8, bf16=False)
    rng = np.random.default_rng(3)
    gemms = [quant_mx(rng, dut, fa, fb, 64, M=4, N=4) for fa, fb in
             [("fp8_e4m3", "fp4_e2m1"), ("fp4_e2m1", "fp4_e2m1"), ("int8", "fp8_e5m2")]]
    res, _, _ = run_pysim(dut, gemms, valid_prob=0.6, ready_prob=0.3, seed=5)
    check(gemms, res)


def test_kttu_bad_config_counted():
    dut = KTTU(rows=2, cols=2, k=4, formats=("fp8_e4m3", "fp4_e2m1"), bf16=False)
    rng = np.random.default_rng(4)
    bad = quant_mx(rng, dut, "fp8_e4m3", "fp8_e4m3", 32)
    bad.fa = "fp8_e5m2"   # not supported by this unit: decodes as zero, counted
    bad2 = quant_mx(rng, dut, "fp4_e2m1", "fp4_e2m1", 32)
    bad2.cfg = lambda: {"fmt_a": mx.FORMATS["fp8_e4m3"].select,
                        "fmt_b": mx.FORMATS["fp4_e2m1"].select, "pack": 1, "bf16": 0}
    bad3 = quant_mx(rng, dut, "fp8_e4m3", "fp8_e4m3", 32)
    bad3.cfg = lambda: {"fmt_a": 0, "fmt_b": 0, "pack": 0, "bf16": 1}  # no BF16 path
    good = quant_mx(rng, dut, "fp8_e4m3", "fp4_e2m1", 64)
    res, _, errors = run_pysim(dut, [bad, bad2, bad3, good])
    assert errors == 3 * bad.m_tiles * bad.n_tiles
    check([good], res[3:])


def test_kttu_rate():
    """Beats per tile: FP8 K/k, packed FP4 K/2k, BF16 K/max(1, k/4) (measured cycles)."""
    dut = KTTU(rows=2, cols=2, k=8)
    rng = np.random.default_rng(6)
    K = 128
    cyc = {}
    for name in ("fp8_e4m3", "fp4_e2m1"):
        g = quant_mx(rng, dut, name, name, K, M=2, N=2)
        res, cyc[name], _ = run_pysim(dut, [g])
        check([g], res)
    a, b = bf16_case(rng, dut, K, lo=-3, hi=3)
    g = KGemm(dut, a=a, b=b, bf16=True)
    res, cyc["bf16"], _ = run_pysim(dut, [g])
    check([g], res)
    fixed = cyc["fp8_e4m3"] - K // 8
    assert cyc["fp4_e2m1"] - fixed == K // 16
    assert cyc["bf16"] - fixed == K // 2


class ForgetfulKPE(KPE):
    """Mutant: the exact block sum keeps only the block's last beat."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.blk_sum.eq(0)
        return m


def test_mutant_kttu_is_caught():
    dut = KTTU(rows=2, cols=2, k=4, formats=("fp8_e4m3",), packed=False, bf16=False)
    dut.pes[1][0]._MustUse__silence = True
    dut.pes[1][0] = ForgetfulKPE(spec=dut.spec)
    rng = np.random.default_rng(8)
    g = quant_mx(rng, dut, "fp8_e4m3", "fp8_e4m3", 64)
    with pytest.raises(AssertionError):
        check([g], run_pysim(dut, [g])[0])


def test_bad_parameters_are_named():
    for k in (0, 3, 64):
        with pytest.raises((ValueError, TypeError), match="k"):
            KTTU(rows=2, cols=2, k=k)
    with pytest.raises(ValueError, match="block"):
        KTTU(rows=2, cols=2, k=8, block=8)
    with pytest.raises(ValueError, match="rows"):
        KTTU(rows=0, cols=2, k=8)
    with pytest.raises(ValueError, match="depth"):
        KTTU(rows=4, cols=4, k=8, depth=3)
    with pytest.raises(ValueError, match="formats"):
        KTTU(rows=2, cols=2, k=8, formats=("fp16",))


@pytest.mark.parametrize("k", [8, pytest.param(32, marks=pytest.mark.slow)])
def test_kttu_cancellation(k):
    """Blocks of large cancellation (tb/ttu/test_bf16_golden.py::cancellation_case): a
    PE rounding any partial sum before the block end would differ."""
    from tb.ttu.test_bf16_golden import cancellation_case
    dut = KTTU(rows=2, cols=3, k=k, bf16=False)
    gemms = []
    for fa, fb in [("fp8_e4m3", "fp8_e5m2"), ("fp4_e2m1", "fp6_e3m2"), ("int8", "fp8_e4m3")]:
        sa, ca, sb, cb = cancellation_case(fa, fb)
        gemms.append(KGemm(dut, a=ca, b=cb, fa=fa, fb=fb, sa=sa, sb=sb))
    res, _, _ = run_pysim(dut, gemms)
    check(gemms, res)
