"""Bit-exact FP32 / BF16 reference arithmetic on integer bit patterns.

Every function takes and returns Python ``int`` bit patterns (FP32: 32 bits,
BF16: 16 bits) and is computed exactly with Python integers, then rounded
once to nearest-even (RNE), with subnormals, infinities and NaN per IEEE 754.
The one deviation from IEEE is NaN payloads: every NaN result is the
canonical quiet NaN :data:`NAN` (``0x7FC00000``), BF16 ``0x7FC0``.

Public API
----------
:func:`fma`, :func:`add`, :func:`sub`, :func:`mul`, :func:`round_f32`,
:func:`f32_to_bf16`, :func:`bf16_to_f32`, :func:`is_nan`, :func:`to_float`,
:func:`from_float`, :func:`ordered`.
"""
import struct

from hw.common.f32 import BF16_NAN, NAN, NEG_ZERO, NINF, ONE, PINF

__all__ = ["NAN", "BF16_NAN", "PINF", "NINF", "ONE", "NEG_ZERO", "fma", "add", "sub", "mul",
           "round_f32", "f32_to_bf16", "bf16_to_f32", "is_nan", "is_inf", "to_float",
           "from_float", "ordered", "unpack"]


def is_nan(x):
    return (x & 0x7F800000) == 0x7F800000 and (x & 0x7FFFFF) != 0


def is_inf(x):
    return (x & 0x7FFFFFFF) == 0x7F800000


def to_float(x):
    """FP32 bits -> Python float (exact)."""
    return struct.unpack("<f", struct.pack("<I", x & 0xFFFFFFFF))[0]


def from_float(v):
    """Python float -> FP32 bits (rounded by the host, RNE)."""
    return struct.unpack("<I", struct.pack("<f", v))[0]


def unpack(x):
    """``(sign, biased_exponent_field, significand)`` with the hidden bit set for normals.

    The value of a finite ``x`` is ``(-1)**sign * sig * 2**(max(E, 1) - 150)``.
    """
    s = x >> 31
    e = (x >> 23) & 0xFF
    m = x & 0x7FFFFF
    sig = m | (0x800000 if e else 0)
    return s, e, sig


def round_f32(sign, mag, lsb_exp):
    """Round ``(-1)**sign * mag * 2**lsb_exp`` (``mag`` a non-negative int) to FP32, RNE.

    Overflow gives infinity; results below the smallest subnormal round to a
    signed zero (the sign of the exact value).
    """
    if mag == 0:
        return sign << 31
    k = mag.bit_length() - 1                  # value = 1.xxx * 2**(k + lsb_exp)
    # Position (relative to mag's LSB) of the result significand's LSB:
    # 23 bits below the leading one, but never below the subnormal LSB 2**-149.
    pos = max(k - 23, -149 - lsb_exp)
    if pos > 0:
        q = mag >> pos
        rem = mag - (q << pos)
        half = 1 << (pos - 1)
        if rem > half or (rem == half and (q & 1)):
            q += 1
    else:
        q = mag << -pos
    e_base = pos + lsb_exp + 150              # biased exponent when q has 24 bits
    bits = ((e_base - 1) << 23) + q if q else 0
    if bits >= 0x7F800000:
        bits = 0x7F800000
    return (sign << 31) | bits


def fma(a, b, c):
    """``round(a * b + c)`` with a single rounding (IEEE fusedMultiplyAdd, RNE)."""
    if is_nan(a) or is_nan(b) or is_nan(c):
        return NAN
    sa, ea, ma = unpack(a)
    sb, eb, mb = unpack(b)
    sc, ec, mc = unpack(c)
    sp = sa ^ sb
    a_inf, b_inf, c_inf = is_inf(a), is_inf(b), is_inf(c)
    a_zero, b_zero = (a & 0x7FFFFFFF) == 0, (b & 0x7FFFFFFF) == 0
    if (a_inf and b_zero) or (b_inf and a_zero):
        return NAN
    if a_inf or b_inf:
        if c_inf and sc != sp:
            return NAN
        return (sp << 31) | PINF
    if c_inf:
        return c
    # Exact value on the common grid 2**-300 (product LSB is >= 2**-298).
    p = ma * mb << (max(ea, 1) + max(eb, 1))
    q = mc << (max(ec, 1) + 150)
    total = (-p if sp else p) + (-q if sc else q)
    if total == 0:
        # Exact zero: -0 only when both addends are -0 (RNE rule).
        return (sp & sc) << 31 if (p == 0 and q == 0) else 0
    return round_f32(1 if total < 0 else 0, abs(total), -300)


def add(a, b):
    """``a + b`` as the TVP computes it: ``fma(a, 1.0, b)``."""
    return fma(a, ONE, b)


def sub(a, b):
    """``a - b`` as the TVP computes it: ``fma(b, -1.0, a)``."""
    return fma(b, 0xBF800000, a)


def mul(a, b):
    """``a * b`` as the TVP computes it: ``fma(a, b, -0.0)``."""
    return fma(a, b, NEG_ZERO)


def f32_to_bf16(x):
    """FP32 -> BF16 bits, RNE on the bit pattern (subnormals and overflow included)."""
    if is_nan(x):
        return BF16_NAN
    return ((x + 0x7FFF + ((x >> 16) & 1)) >> 16) & 0xFFFF


def bf16_to_f32(h):
    """BF16 -> FP32 bits (exact)."""
    return (h & 0xFFFF) << 16


def ordered(x):
    """Integer key with IEEE order on non-NaN values and ``-0 < +0``."""
    mag = x & 0x7FFFFFFF
    return -mag - 1 if x >> 31 else mag
