"""Bit-exact golden model of the OCP Microscaling (MX v1.0) numerics.

Everything here is exact integer/float64 arithmetic; the rules are written
down in ``docs/numerics.md`` and the RTL (``hw/common/mx.py``, ``hw/ttu``)
matches them bit for bit.

Element formats
---------------
Every element code decodes to ``(-1)**s * m * 2**(shift + lsb)`` with a small
unsigned integer ``m``, a non-negative ``shift`` and a per-format constant
``lsb`` (the weight of the smallest subnormal). :data:`FORMATS` holds the
per-format constants (defined once in :mod:`hw.common.mx`, the RTL's table);
:func:`element_int` returns the exact signed integer ``code value / 2**lsb``
used by the dot product.

Public API
----------
:func:`decode`, :func:`encode`, :func:`quantize`, :func:`dequantize`,
:func:`mx_dot`, :func:`mx_gemm`, :func:`int_to_f32_bits`, :func:`bf16_gemm`.
"""
import numpy as np

from hw.common.mx import (E8M0_BIAS, E8M0_NAN, F32_CANONICAL_NAN, FORMAT_CODES, FORMATS,
                          ElementFormat, nan_code)

__all__ = ["FORMATS", "FORMAT_CODES", "ElementFormat", "decode", "encode", "element_int",
           "quantize", "dequantize", "mx_dot", "mx_gemm", "int_to_f32_bits",
           "F32_CANONICAL_NAN", "E8M0_NAN", "E8M0_BIAS", "nan_code",
           "BF16_GROUP", "bf16_int", "bf16_decode", "bf16_gemm"]

# The format table and the E8M0 constants are the hardware's specification
# (hw/common/mx.py); this module is the numeric model built on them.


def _fmt(fmt):
    if isinstance(fmt, ElementFormat):
        return fmt
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, not {fmt!r}") from None


def _tables(f):
    """(sign, integer magnitude, nan, inf) for every code of ``f``."""
    n = 1 << f.bits
    codes = np.arange(n)
    if f.name == "int8":
        v = np.where(codes >= 128, codes - 256, codes)
        return (v < 0).astype(np.int64), np.abs(v).astype(np.int64), \
            np.zeros(n, bool), np.zeros(n, bool)
    sign = codes >> (f.bits - 1)
    e = (codes >> f.mbits) & ((1 << f.ebits) - 1)
    m = codes & ((1 << f.mbits) - 1)
    top = (1 << f.ebits) - 1
    mag = np.where(e == 0, m, (m | (1 << f.mbits)) << np.maximum(e - 1, 0)).astype(np.int64)
    nan = np.zeros(n, bool)
    inf = np.zeros(n, bool)
    if f.has_inf:
        nan = (e == top) & (m != 0)
        inf = (e == top) & (m == 0)
    elif f.has_nan:
        nan = (e == top) & (m == (1 << f.mbits) - 1)
    mag = np.where(nan | inf, 0, mag)
    return sign.astype(np.int64), mag, nan, inf


_TABLES = {name: _tables(f) for name, f in FORMATS.items()}


def element_int(codes, fmt):
    """Exact signed integer ``value / 2**lsb`` of each code (0 for NaN/Inf codes).

    Returns
    -------
    (ints, nan, inf) : int64 array, bool array, bool array
    """
    f = _fmt(fmt)
    sign, mag, nan, inf = _TABLES[f.name]
    c = np.asarray(codes, dtype=np.int64) & ((1 << f.bits) - 1)
    return np.where(sign[c] == 1, -mag[c], mag[c]), nan[c], inf[c]


def decode(codes, fmt):
    """Exact float64 value of each element code; NaN/Inf where the format has them.

    Bits above the format width are ignored.
    """
    f = _fmt(fmt)
    sign, mag, nan, inf = _TABLES[f.name]
    c = np.asarray(codes, dtype=np.int64) & ((1 << f.bits) - 1)
    v = mag[c].astype(np.float64) * 2.0 ** f.lsb
    v = np.where(sign[c] == 1, -v, v)
    v = np.where(inf[c], np.where(sign[c] == 1, -np.inf, np.inf), v)
    return np.where(nan[c], np.nan, v)


def encode(x, fmt):
    """Round float values to element codes: nearest, ties to even, saturating.

    * finite values beyond the largest magnitude saturate to +-max normal;
    * +-Inf: FP8 E5M2 -> the Inf code (0x7C/0xFC), every other format -> +-max;
    * NaN: FP8 E4M3 -> 0x7F, FP8 E5M2 -> 0x7E, formats without NaN -> 0
      (MX quantization marks such a block with a NaN scale instead);
    * a value that rounds to zero keeps its sign (-0 code) in the FP formats;
      INT8 has a single zero.
    """
    f = _fmt(fmt)
    x = np.asarray(x, dtype=np.float64)
    # Representable magnitudes (integers) in code order are increasing.
    sign_t, mag_t, nan_t, inf_t = _TABLES[f.name]
    npos = 1 << (f.bits - 1)
    valid = ~(nan_t[:npos] | inf_t[:npos])
    pos_codes = np.arange(npos)[valid]
    pos_mag = mag_t[:npos][valid].astype(np.float64)
    scaled = np.abs(x) / 2.0 ** f.lsb  # exact: power-of-two scaling of a float64
    with np.errstate(invalid="ignore"):
        scaled = np.where(np.isnan(x), 0.0, np.minimum(scaled, pos_mag[-1]))
    hi = np.clip(np.searchsorted(pos_mag, scaled, side="left"), 0, len(pos_mag) - 1)
    lo = np.clip(hi - 1, 0, None)
    d_hi = pos_mag[hi] - scaled
    d_lo = scaled - pos_mag[lo]
    take_lo = (d_lo < d_hi) | ((d_lo == d_hi) & (pos_codes[lo] % 2 == 0))
    take_lo &= scaled <= pos_mag[hi]  # beyond the top: hi (saturated) already
    idx = np.where(take_lo, lo, hi)
    mag_code = pos_codes[idx]
    neg = np.signbit(x)
    if f.name == "int8":
        ints = np.where(neg, -pos_mag[idx], pos_mag[idx]).astype(np.int64)
        code = (ints & 0xFF).astype(np.uint8)
        # Magnitudes saturate to 127 on both sides: INT8 encoding is symmetric and
        # code 0x80 (-2.0) is never produced (it still decodes).
    else:
        code = (mag_code | np.where(neg, 1 << (f.bits - 1), 0)).astype(np.uint8)
        if f.has_inf:
            code = np.where(np.isinf(x), np.where(neg, 0xFC, 0x7C), code).astype(np.uint8)
    code = np.where(np.isnan(x), nan_code(f), code).astype(np.uint8)
    return code


def _move(a, axis):
    return np.moveaxis(np.asarray(a), axis, -1)


def quantize(x, fmt, block=32, axis=-1):
    """OCP MX quantization of float32 data along ``axis`` in blocks of ``block``.

    Per block: ``X = floor(log2(amax)) - emax_elem`` clamped to ``[-127, 127]``
    (``amax == 0`` gives ``X = -127``), scale code ``X + 127``; elements are
    ``encode(x / 2**X)``. A block holding NaN or Inf gets the NaN scale 0xFF and
    all-zero element codes. A last partial block (length not a multiple of
    ``block``) is quantized on its own elements; the codes keep ``x``'s shape.

    Returns
    -------
    (scales, codes) : uint8 arrays; ``scales`` has ``ceil(n / block)`` entries
    along ``axis``.
    """
    f = _fmt(fmt)
    if block < 1:
        raise ValueError(f"block must be >= 1, not {block}")
    x = _move(np.asarray(x, dtype=np.float32).astype(np.float64), axis)
    n = x.shape[-1]
    nb = -(-n // block)
    pad = nb * block - n
    xp = np.concatenate([x, np.zeros(x.shape[:-1] + (pad,))], axis=-1) if pad else x
    xb = xp.reshape(x.shape[:-1] + (nb, block))
    bad = ~np.isfinite(xb).all(axis=-1)
    with np.errstate(invalid="ignore"):
        amax = np.where(bad, 0.0, np.max(np.abs(np.where(np.isfinite(xb), xb, 0.0)), axis=-1))
    _, e = np.frexp(amax)  # amax = m * 2**e, m in [0.5, 1): floor(log2) = e - 1
    X = np.where(amax > 0, e - 1 - f.emax, -127)
    X = np.clip(X, -127, 127)
    scales = np.where(bad, E8M0_NAN, X + E8M0_BIAS).astype(np.uint8)
    codes = encode(xb / np.exp2(X)[..., None].astype(np.float64), f)
    codes = np.where(bad[..., None], 0, codes).astype(np.uint8)
    codes = codes.reshape(xp.shape)[..., :n]
    return np.moveaxis(scales, -1, axis), np.moveaxis(codes, -1, axis)


def dequantize(scales, codes, fmt, block=32, axis=-1):
    """Exact float64 values ``decode(code) * 2**(scale - 127)``; NaN for scale 0xFF."""
    s = _move(scales, axis).astype(np.int64)
    c = _move(codes, axis)
    n = c.shape[-1]
    srep = np.repeat(s, block, axis=-1)[..., :n]
    v = decode(c, fmt) * np.exp2((srep - E8M0_BIAS).astype(np.float64))
    v = np.where(srep == E8M0_NAN, np.nan, v)
    return np.moveaxis(v, -1, axis)


def int_to_f32_bits(s, e):
    """FP32 bits of the exact value ``s * 2**e`` (Python ints), rounded to nearest even.

    Subnormals are produced exactly, values at or beyond ``2**128`` (after
    rounding) give +-Inf, and zero gives +0 (an exact zero sum has no sign).
    A non-zero value that rounds to zero keeps its sign.
    """
    s, e = int(s), int(e)
    if s == 0:
        return 0
    sign = 0x80000000 if s < 0 else 0
    mag = -s if s < 0 else s
    p = mag.bit_length() - 1          # value = 1.xxx * 2**(p + e)
    shift = max(p - 23, -149 - e)     # keep 24 bits (normal) or stop at 2**-149
    if shift <= 0:
        q = mag << -shift
    else:
        q = mag >> shift
        rem = mag & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
    if shift == p - 23:               # normal: exponent field of 1.xxx is p + e + 127
        bits = ((p + e + 127 - 1) << 23) + q  # q's hidden bit adds the missing 1
    else:
        bits = q                       # subnormal (q == 2**23 -> min normal, still right)
    if bits >= 0x7F800000:
        bits = 0x7F800000
    return sign | bits


def _blocks(k, block):
    return [(b * block, min(k, (b + 1) * block)) for b in range(-(-k // block))]


def mx_gemm(a_scales, a_codes, fmt_a, b_scales, b_codes, fmt_b, block=32):
    """Exact MX GEMM ``C[M, N] = A[M, K] @ B[K, N]`` returned as float32.

    ``a_codes`` is ``[M, K]`` with ``a_scales`` ``[M, ceil(K / block)]`` (blocks
    along K); ``b_codes`` is ``[K, N]`` with ``b_scales`` ``[ceil(K / block), N]``.
    Per output and block ``b``: the element products are exact integers, their
    sum ``S`` is exact, and ``S * 2**(lsbA + lsbB + sA + sB - 254)`` is rounded once
    to FP32 (:func:`int_to_f32_bits`). The FP32 block values are added to an
    FP32 accumulator that starts at +0, in increasing ``b`` order, each add
    rounded to nearest even (NumPy float32). A K that is not a multiple of
    ``block`` behaves as if zero-padded.

    Non-finite rules: a block whose float64 product sum is NaN (a NaN element,
    Inf * 0, or +Inf + -Inf) or either of whose scales is 0xFF gives NaN; a
    block with only same-signed Inf products gives that Inf; the FP32 adds
    then follow IEEE 754. Every NaN result is returned as 0x7FC00000.
    """
    fa, fb = _fmt(fmt_a), _fmt(fmt_b)
    a_codes = np.asarray(a_codes)
    b_codes = np.asarray(b_codes)
    M, K = a_codes.shape
    K2, N = b_codes.shape
    if K != K2:
        raise ValueError(f"K mismatch: A has {K}, B has {K2}")
    ia, na, fa_inf = element_int(a_codes, fa)
    ib, nb, fb_inf = element_int(b_codes, fb)
    da = decode(a_codes, fa)
    db = decode(b_codes, fb)
    a_scales = np.asarray(a_scales, dtype=np.int64).reshape(M, -1)
    b_scales = np.asarray(b_scales, dtype=np.int64).reshape(-1, N)
    acc = np.zeros((M, N), dtype=np.float32)
    exact64 = fa.max_int * fb.max_int * block < (1 << 62)
    for b, (k0, k1) in enumerate(_blocks(K, block)):
        sa = a_scales[:, b][:, None]
        sb = b_scales[b, :][None, :]
        if exact64:
            S = ia[:, k0:k1] @ ib[k0:k1, :]
        else:
            S = ia[:, k0:k1].astype(object) @ ib[k0:k1, :].astype(object)
        E = fa.lsb + fb.lsb + sa + sb - 2 * E8M0_BIAS
        bits = np.empty((M, N), dtype=np.uint32)
        for i in range(M):
            for j in range(N):
                bits[i, j] = int_to_f32_bits(S[i, j], E[i, j])
        val = bits.view(np.float32)
        special = np.any(na[:, k0:k1]) or np.any(nb[k0:k1]) or np.any(fa_inf[:, k0:k1]) \
            or np.any(fb_inf[k0:k1])
        if special:
            with np.errstate(invalid="ignore"):
                f64 = (da[:, k0:k1, None] * db[None, k0:k1, :]).sum(axis=1)
            val = np.where(np.isfinite(f64), val, f64.astype(np.float32))
        val = np.where((sa == E8M0_NAN) | (sb == E8M0_NAN), np.float32(np.nan), val)
        with np.errstate(over="ignore", invalid="ignore"):
            acc = (acc + val.astype(np.float32)).astype(np.float32)
    acc = np.where(np.isnan(acc), np.uint32(F32_CANONICAL_NAN).view(np.float32), acc)
    return acc.astype(np.float32)


def mx_dot(a_scales, a_codes, fmt_a, b_scales, b_codes, fmt_b, block=32):
    """MX dot product of two code vectors of length K (see :func:`mx_gemm`)."""
    a = np.asarray(a_codes).reshape(1, -1)
    b = np.asarray(b_codes).reshape(-1, 1)
    r = mx_gemm(np.asarray(a_scales).reshape(1, -1), a, fmt_a,
                np.asarray(b_scales).reshape(-1, 1), b, fmt_b, block)
    return r[0, 0]


#: Products summed exactly before the one FP32 rounding of a BF16 group.
#: Fixed (not the hardware K) so the result is the same for every K.
BF16_GROUP = 8
#: Weight of one unit of the BF16 integer view: 2**-133 (min subnormal), squared.
_BF16_LSB = -133


def bf16_int(codes):
    """Exact signed integer ``value / 2**-133`` of BF16 bit patterns (NaN/Inf -> 0)."""
    c = np.asarray(codes, dtype=np.int64) & 0xFFFF

    def one(x):
        e, m = (x >> 7) & 0xFF, x & 0x7F
        mag = 0 if e == 0xFF else (m if e == 0 else (m | 0x80) << (e - 1))  # Python int: 2**261
        return -mag if x >> 15 else mag
    out = np.empty(c.shape, dtype=object)
    for idx, x in np.ndenumerate(c):
        out[idx] = one(int(x))
    return out


def bf16_decode(codes):
    """float64 values of BF16 bit patterns (exact; -0, Inf, NaN kept)."""
    c = np.asarray(codes, dtype=np.uint32) & 0xFFFF
    with np.errstate(invalid="ignore"):  # NaN patterns cast to NaN (signalling -> quiet)
        return (c << 16).astype(np.uint32).view(np.float32).astype(np.float64)


def bf16_gemm(a_codes, b_codes, group=BF16_GROUP):
    """BF16 x BF16 GEMM ``C[M, N] = A[M, K] @ B[K, N]`` with FP32 accumulation.

    Per output and group ``g`` of ``group`` consecutive K (in increasing ``g``):
    exact products, exact integer sum ``S`` (weight ``2**-266``), one rounding
    ``int_to_f32_bits(S, -266)``, then ``acc = fp32(acc + v_g)`` from ``acc = +0``.
    A K tail is zero padding. NaN/Inf: a group whose float64 product sum is not
    finite takes that value (NaN element, Inf x 0, Inf - Inf -> NaN); every NaN
    result is 0x7FC00000. The result does not depend on the hardware K.
    """
    a_codes, b_codes = np.asarray(a_codes), np.asarray(b_codes)
    M, K = a_codes.shape
    K2, N = b_codes.shape
    if K != K2:
        raise ValueError(f"K mismatch: A has {K}, B has {K2}")
    ia, ib = bf16_int(a_codes), bf16_int(b_codes)
    da, db = bf16_decode(a_codes), bf16_decode(b_codes)
    acc = np.zeros((M, N), dtype=np.float32)
    for k0, k1 in _blocks(K, group):
        S = ia[:, k0:k1] @ ib[k0:k1, :]
        bits = np.empty((M, N), dtype=np.uint32)
        for i in range(M):
            for j in range(N):
                bits[i, j] = int_to_f32_bits(S[i, j], 2 * _BF16_LSB)
        val = bits.view(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            f64 = (da[:, k0:k1, None] * db[None, k0:k1, :]).sum(axis=1)
            val = np.where(np.isfinite(f64), val, f64.astype(np.float32))
            acc = (acc + val.astype(np.float32)).astype(np.float32)
    acc = np.where(np.isnan(acc), np.uint32(F32_CANONICAL_NAN).view(np.float32), acc)
    return acc.astype(np.float32)
