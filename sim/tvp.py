"""Bit-exact golden model of the TVP (tile vector processor), ``hw/tvp``.

The TVP executes one *vector instruction beat* at a time: an opcode, a format
bit, a ``last`` bit and three operand vectors ``a``, ``b``, ``c`` of ``lanes``
32-bit words. Every opcode is a short *micro-program* (:data:`PROGRAMS`) of
micro-ops, one per cycle, over per-slot units:

* ``fma``  -- FP32 fused multiply-add, IEEE RNE (:func:`sim.fp32.fma`);
* ``sfu``  -- the approximations ``exp``, ``recip``, ``rsqrt`` (defined here as
  integer operations on FP32 bit patterns: :func:`exp_f32`, :func:`recip_f32`,
  :func:`rsqrt_f32`);
* ``misc`` -- max/min/compare/select/abs/neg/conversions/move (:func:`misc`).

The ISA (:mod:`hw.tvp.isa`), the micro-programs and the SFU tables
(:mod:`hw.tvp.microcode`) are the hardware's specification and are imported
from there (re-exported here under their usual names); this module is only the
model that executes them. The hardware decoder is generated from the same
:data:`PROGRAMS` table, so the only thing the RTL and this model can disagree
on is the units themselves.

Slots: in FP32 mode (``fmt=0``) slot ``i`` is lane ``i``; in BF16 mode
(``fmt=1``) every 32-bit lane word carries two BF16 values and slot ``h*N + i``
is half ``h`` of lane ``i``. BF16 operands are widened exactly to FP32, every
micro-op computes in FP32, and the result is rounded to BF16 (RNE) only when
written to the output. Reductions (``RSUM``, ``RMAX``) accumulate per slot
over beats (FP32 accumulators; other instructions may be interleaved, the
group runs from a reduction beat after reset or after a ``last`` reduction beat
to the next reduction beat with ``last``) and on the ``last`` beat combine the slots in a
fixed tree: strides ``S/2, S/4, ..., 1`` over ``S`` active slots (slot ``j``
takes slot ``j + stride``), then broadcast slot 0.
"""
import numpy as np

from hw.tvp.isa import CVT_OPS, OP, OPS, REDUCE_OPS
from hw.tvp import TVP
from hw.tvp.microcode import (ACT_CHAIN, ACT_TAP, EXP_C1, EXP_C2, EXP_C3, EXP_LOG2E, EXP_TABLE,
                              GELU_K0, GELU_K1, MINUS_ONE, PROGRAMS, RECIP_TABLE, ROT,
                              RSQRT_TABLE, UOp, program, uop_reads)
from sim import fp32, mx

__all__ = ["OPS", "OP", "PROGRAMS", "UOp", "program", "exp_f32", "recip_f32", "rsqrt_f32",
           "misc", "sfu", "act", "TVPModel", "TimingModel", "mx_pack", "mxqp", "GELU_K0", "GELU_K1",
           "CVT_OPS", "REDUCE_OPS", "RECIP_TABLE", "RSQRT_TABLE", "EXP_TABLE", "EXP_LOG2E",
           "EXP_C1", "EXP_C2", "EXP_C3", "MINUS_ONE", "uop_reads"]

# ---------------------------------------------------------------------------
# Misc unit
# ---------------------------------------------------------------------------

def _lt(a, b):
    if fp32.is_nan(a) or fp32.is_nan(b):
        return False
    if (a | b) & 0x7FFFFFFF == 0:
        return False
    return fp32.ordered(a) < fp32.ordered(b)


def _eq(a, b):
    if fp32.is_nan(a) or fp32.is_nan(b):
        return False
    return a == b or (a | b) & 0x7FFFFFFF == 0


def misc(fn, x, y, z):
    """The misc unit on FP32 bit patterns.

    ``max``/``min``: canonical NaN if either is NaN, ``-0 < +0``.
    ``clt``/``cle``/``ceq``: IEEE comparison (NaN false, ``-0 == +0``) -> 1.0 or +0.0.
    ``sel``: ``y`` if ``x`` is not (+-)0 else ``z`` (NaN counts as true).
    ``abs``/``neg``: sign bit only (NaN payload kept).
    ``f2b``: ``bf16(y) << 16 | bf16(x)``; ``b2flo``/``b2fhi``: widen the low/high half.
    ``mov``: ``x``. ``mxq``: :func:`mxq` (``x`` element, ``y`` amax, ``z`` format).
    """
    if fn in ("max", "min"):
        if fp32.is_nan(x) or fp32.is_nan(y):
            return fp32.NAN
        gt = fp32.ordered(x) > fp32.ordered(y)
        return x if gt == (fn == "max") else y
    if fn == "clt":
        return fp32.ONE if _lt(x, y) else 0
    if fn == "cle":
        return fp32.ONE if (_lt(x, y) or _eq(x, y)) else 0
    if fn == "ceq":
        return fp32.ONE if _eq(x, y) else 0
    if fn == "sel":
        return y if x & 0x7FFFFFFF else z
    if fn == "abs":
        return x & 0x7FFFFFFF
    if fn == "neg":
        return x ^ 0x80000000
    if fn == "f2b":
        return fp32.f32_to_bf16(y) << 16 | fp32.f32_to_bf16(x)
    if fn == "b2flo":
        return (x & 0xFFFF) << 16
    if fn == "b2fhi":
        return x & 0xFFFF0000
    if fn == "mov":
        return x
    if fn == "mxq":
        return mxq(x, y, z)
    if fn == "mxqp":
        return mxqp(x, y, z)
    raise ValueError(f"unknown misc function {fn!r}")


def mx_scale_exp(amax, fmt):
    """Shared exponent ``X`` of an MX block from its FP32 ``amax`` bits (None: NaN scale).

    ``X = floor(log2(amax)) - emax_elem`` clamped to ``[-127, 127]``; ``amax == 0``
    gives -127 (the rule of :func:`sim.mx.quantize`).
    """
    a = amax & 0x7FFFFFFF
    if a >= 0x7F800000:
        return None
    if a == 0:
        return -127
    e = a >> 23
    fl = e - 127 if e else a.bit_length() - 1 - 149
    return max(-127, min(127, fl - mx.FORMATS[fmt].emax))


def mxq(x, amax, sel):
    """MX quantization of one element: ``code | scale << 8``.

    ``amax`` is the block's ``max(|x|)`` (``ABS`` then ``RMAX``), ``sel[2:0]``
    the format code of :data:`sim.mx.FORMAT_CODES`. The element code is
    :func:`sim.mx.encode` of ``x / 2**X`` (exact in float64), so a block
    quantized this way equals :func:`sim.mx.quantize` bit for bit. A NaN/Inf
    ``amax`` gives scale 0xFF and code 0; an unknown ``sel`` gives 0.
    """
    name = mx.FORMAT_CODES.get(sel & 7)
    if name is None:
        return 0
    X = mx_scale_exp(amax, name)
    if X is None:
        return mx.E8M0_NAN << 8
    v = np.float64(fp32.to_float(x)) / np.float64(2.0) ** X
    code = int(mx.encode(np.array([v]), name)[0])
    return code | (X + mx.E8M0_BIAS) << 8


def mxqp(x, amax, sel):
    """:func:`mxq` with the format select in bits [18:16] (0 for an unknown format).

    The per-slot word of ``MXQP``; the output packer (:func:`mx_pack`) reads the
    element width and the scale from slot 0.
    """
    w = mxq(x, amax, sel)
    return w | (sel & 7) << 16 if (sel & 7) in mx.FORMAT_CODES else w


#: Element code width by runtime format select (0 for an unknown select: nothing packed).
MX_BITS = {code: mx.FORMATS[name].bits for code, name in mx.FORMAT_CODES.items()}


def mx_pack(words, lanes):
    """Dense packing of one ``MXQP`` beat: per-slot words -> ``lanes`` output words.

    ``words[i]`` is :func:`mxqp` of lane ``i``. The element width ``w`` (8 for
    FP8/INT8, 6 for FP6, 4 for FP4) and the E8M0 scale come from slot 0 (all
    lanes of a beat must use one format). Output vector, as one ``32 lanes``-bit
    integer, LSB first: element ``i``'s code at bits ``[w i, w (i + 1))`` (FP4:
    two per byte, low nibble first; FP6: four per 3 bytes; FP8: one per byte),
    zeros up to bit ``32 lanes - 8``, and the scale in the top byte (bits
    ``[32 lanes - 8, 32 lanes)``, i.e. bits [31:24] of the last word).
    """
    sel = (words[0] >> 16) & 7
    w = MX_BITS.get(sel, 8)
    vec = 0
    for i, v in enumerate(words[:lanes]):
        vec |= (v & ((1 << w) - 1)) << (w * i)
    vec |= ((words[0] >> 8) & 0xFF) << (32 * lanes - 8)
    return [(vec >> (32 * i)) & 0xFFFFFFFF for i in range(lanes)]


# ---------------------------------------------------------------------------
# Special function unit: exp, recip, rsqrt as integer operations
# ---------------------------------------------------------------------------
# Common rules: NaN in -> canonical NaN; subnormal inputs are treated as zero
# of the same sign (DAZ); results below 2**-126 flush to zero (FTZ). The tables
# and constants (EXP_*, RECIP_TABLE, RSQRT_TABLE) are in hw.tvp.microcode.

def exp_f32(x):
    """``exp(x)`` for FP32 bits ``x``.

    1. ``t = x * log2(e)`` in fixed point with 30 fractional bits: the 24-bit
       significand times :data:`EXP_LOG2E`, shifted right (truncated) by
       ``154 - E``, negated for negative ``x``.
    2. ``n = floor(t)``, ``f = t - n`` (30 bits); ``i = f[29:24]``, ``r = f[23:0]``.
    3. ``p = ((C3 r >> 30) + C2) r >> 30 ...`` Horner for ``2**r - 1``;
       ``y = EXP_TABLE[i] * (2**30 + p) >> 30`` in ``[2**30, 2**31)``.
    4. Significand ``(y + 64) >> 7`` (round half up, carry into the exponent),
       exponent ``n + 127``; >= 255 -> +inf, <= 0 -> +0.
    """
    s, e, sig = fp32.unpack(x)
    if fp32.is_nan(x):
        return fp32.NAN
    if e == 0xFF:
        return 0 if s else fp32.PINF
    if e == 0:
        return fp32.ONE
    if e >= 134:  # |x| >= 128: certain overflow / underflow
        return 0 if s else fp32.PINF
    mag = (sig * EXP_LOG2E) >> (154 - e) if e > 154 - 64 else 0
    t = -mag if s else mag
    n = t >> 30
    f = t & ((1 << 30) - 1)
    i, r = f >> 24, f & ((1 << 24) - 1)
    p = (EXP_C3 * r) >> 30
    p = ((EXP_C2 + p) * r) >> 30
    p = ((EXP_C1 + p) * r) >> 30
    y = (EXP_TABLE[i] * ((1 << 30) + p)) >> 30
    m = (y + 64) >> 7
    ex = n + 127
    if m >> 24:
        m >>= 1
        ex += 1
    if ex >= 255:
        return fp32.PINF
    if ex <= 0:
        return 0
    return (ex << 23) | (m & 0x7FFFFF)


def _normalize_q32(sign, y, exp_hi):
    """``y * 2**-32`` (``y`` in ``(2**30, 2**32]``) scaled by ``2**(exp_hi - 126)`` -> FP32.

    Rounds half up to 24 bits; a biased exponent <= 0 flushes to a signed zero.
    """
    if y >> 31:
        m = (y + (1 << 7)) >> 8
        ex = exp_hi
    else:
        m = (y + (1 << 6)) >> 7
        ex = exp_hi - 1
    if m >> 24:
        m >>= 1
        ex += 1
    if ex <= 0:
        return sign << 31
    return (sign << 31) | (ex << 23) | (m & 0x7FFFFF)


def recip_f32(x):
    """``1/x`` for FP32 bits ``x``: table seed + two Newton steps in Q.32.

    ``Y0 = RECIP_TABLE[M[22:16]] << 22``; twice ``Y = Y * (2**33 - (sig*Y >> 23)) >> 32``;
    then :func:`_normalize_q32` with biased exponent ``253 - E``.
    ``+-0``/subnormal -> ``+-inf``, ``+-inf`` -> ``+-0``.
    """
    s, e, sig = fp32.unpack(x)
    if fp32.is_nan(x):
        return fp32.NAN
    if e == 0xFF:
        return s << 31
    if e == 0:
        return (s << 31) | fp32.PINF
    y = RECIP_TABLE[(sig >> 16) & 0x7F] << 22
    for _ in range(2):
        my = (sig * y) >> 23
        y = (y * ((1 << 33) - my)) >> 32
    return _normalize_q32(s, y, 253 - e)


def rsqrt_f32(x):
    """``1/sqrt(x)`` for FP32 bits ``x``: table seed + two Newton steps in Q.32.

    Odd unbiased exponent: ``mm = 2*sig`` (``m`` in ``[2, 4)``). ``Y0 =
    RSQRT_TABLE[odd, M[22:16]] << 22``; twice ``y2 = Y*Y >> 32``,
    ``Y = Y * (3*2**32 - (mm*y2 >> 23)) >> 33``; biased exponent
    ``126 - (E - 127 - odd)/2``. ``+-0``/subnormal -> ``+-inf``, ``+inf`` -> +0,
    negative -> NaN.
    """
    s, e, sig = fp32.unpack(x)
    if fp32.is_nan(x):
        return fp32.NAN
    if e == 0:
        return (s << 31) | fp32.PINF
    if s:
        return fp32.NAN
    if e == 0xFF:
        return 0
    odd = (e - 127) & 1
    mm = sig << odd
    y = RSQRT_TABLE[(odd << 7) | ((sig >> 16) & 0x7F)] << 22
    for _ in range(2):
        y2 = (y * y) >> 32
        my2 = (mm * y2) >> 23
        y = (y * ((3 << 32) - my2)) >> 33
    half = (e - 127 - odd) >> 1
    return _normalize_q32(0, y, 126 - half)


def sfu(fn, x):
    return {"exp": exp_f32, "recip": recip_f32, "rsqrt": rsqrt_f32}[fn](x)


def act(fn, a, b):
    """The activation chain :data:`hw.tvp.microcode.ACT_CHAIN` for one slot.

    Every stage is an FMA or an SFU function reading ``a``, ``b``, the previous
    stage's result ``t`` or constants; the result is stage ``ACT_TAP[fn]``'s.
    """
    t = 0
    vals = []
    for unit, srcs in ACT_CHAIN:
        x, y, z = ({"a": a, "b": b, "t": t}.get(v, v) for v in srcs[fn])
        t = fp32.fma(x, y, z) if unit == "fma" else sfu(unit, x)
        vals.append(t)
    return vals[ACT_TAP[fn]]


# ---------------------------------------------------------------------------
# Whole-TVP model
# ---------------------------------------------------------------------------

class TVPModel:
    """Beat-level golden model of :class:`hw.tvp.TVP`.

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes (power of two).
    banks : int
        Accumulator banks of the reductions (default :attr:`hw.tvp.TVP.acc_banks`).

    :meth:`step` takes one input beat and returns the output beat (or ``None``
    for a non-final reduction beat). Reductions: the ``k``-th beat of a group
    accumulates into bank ``k mod banks`` (a bank not yet written in the group
    reads as the identity); on ``last`` the banks and then the slots are
    combined in :func:`hw.tvp.microcode.combine_order`.
    """

    def __init__(self, *, lanes, banks=None):
        self.lanes = lanes
        self.slots = 2 * lanes
        self.banks = TVP.timing()[1] if banks is None else banks
        self.acc = [[0] * self.slots for _ in range(self.banks)]
        self.live = set()
        self.rot = 0
        self.t = [0] * self.slots
        self.first = True
        self.error = False
        self.errors = 0

    def _bank(self, k):
        return self.rot if k == ROT else k

    def _src(self, s, u, j, ops):
        if isinstance(s, int):
            return s
        if isinstance(s, tuple):
            kind, k = s
            k = self._bank(k)
            if k not in self.live:
                return u.ident
            if kind == "accp":
                return self.acc[k][(j + u.stride) % self.active]
            return self.acc[k][j]
        if s == "t":
            return self.t[j]
        if s == "ap":  # RoPE pair swap: slot 2m <- -a[2m+1], slot 2m+1 <- a[2m]
            p = j ^ 1 if (j ^ 1) < self.active else j
            return ops["a"][p] ^ (0 if j & 1 else 0x80000000)
        return ops[s][j]

    def step(self, op, fmt, last, a, b, c):
        """Execute one beat; ``op`` is a name or a code; returns ``(words, last)`` or None."""
        n = self.lanes
        code = OP[op] if isinstance(op, str) else op
        if code >= len(OPS):
            self.error = True
            self.errors += 1
            return list(a), last
        op = OPS[code]
        if op in CVT_OPS and fmt:  # invalid format: counted, run in FP32 form
            self.error = True
            self.errors += 1
            fmt = 0
        self.active = 2 * n if fmt else n
        if fmt:
            ops = {k: [((v[j % n] >> (16 * (j // n))) & 0xFFFF) << 16 for j in range(2 * n)]
                   for k, v in (("a", a), ("b", b), ("c", c))}
        else:
            ops = {k: list(v) + [0] * n for k, v in (("a", a), ("b", b), ("c", c))}
        out = None
        for u in program(op, fmt, last, n, self.banks):
            if u.dst == "acc" and u.bank == ROT and self.first:
                self.live, self.rot, self.first = set(), 0, False
            res = []
            for j in range(self.slots):
                x, y, z = (self._src(s, u, j, ops) for s in (u.x, u.y, u.z))
                if u.unit == "fma":
                    res.append(fp32.fma(x, y, z))
                elif u.unit == "sfu":
                    res.append(sfu(u.fn, x))
                elif u.unit == "act":
                    res.append(act(u.fn, x, y))
                else:
                    res.append(misc(u.fn, x, y, z))
            if u.dst == "t":
                self.t = res
            elif u.dst == "acc":
                k = self._bank(u.bank)
                self.acc[k] = res
                self.live.add(k)
                if u.bank == ROT:
                    self.rot = (self.rot + 1) % self.banks
            elif u.dst == "outb":
                out = [res[0]] * self.slots
            elif u.dst == "outp":
                return mx_pack(res, n), last
            else:
                out = res
        if op in REDUCE_OPS and last:
            self.first = True
        if out is None:
            return None
        if fmt:
            h = [fp32.f32_to_bf16(v) for v in out]
            words = [h[n + i] << 16 | h[i] for i in range(n)]
        else:
            words = out[:n]
        return words, (1 if op in REDUCE_OPS else last)

    def cycles(self, op, fmt, last):
        """Issue cycles of one beat (one per micro-op, hazards not counted)."""
        code = OP[op] if isinstance(op, str) else op
        if code >= len(OPS):
            return 1
        name = OPS[code]
        return len(program(name, 0 if name in CVT_OPS else fmt, last, self.lanes, self.banks))


class TimingModel:
    """Cycle model of the pipelined TVP's issue logic (:class:`hw.tvp.TVP`).

    One micro-op issues per cycle, in order. A micro-op that waits for ``t`` or
    the accumulators (:func:`hw.tvp.microcode.uop_reads`) issues no earlier
    than ``gap`` cycles after the last micro-op writing that register
    (``gap = TVP.hazard_gap``, the unit latency + 2); the rotating accumulate
    of a reduction never waits (``banks = gap``). A micro-op that is not an
    ``act`` issues no earlier than ``act_gap`` cycles after the last ``act``
    micro-op (``TVP.act_timing()``: the activation chain is longer than the
    other units and results leave in issue order). With ``o_stream.ready``
    always high the issue cycles are exact; a beat's output appears
    ``TVP.latency`` (``act``: the act latency) cycles after its last issue.

    Parameters
    ----------
    lanes : int
    gap : int
    act_gap : int, optional
        Default: :meth:`hw.tvp.TVP.act_timing`.
    """

    def __init__(self, *, lanes, gap, act_gap=None):
        self.lanes = lanes
        self.gap = gap
        self.act_gap = TVP.act_timing()[1] if act_gap is None else act_gap
        self.cycle = 0          # first cycle the next micro-op may issue
        self.ready = {"t": 0, "acc": 0}
        self.last_act = -(1 << 30)
        self.last_was_act = False   # the last micro-op issued was an act one

    def beat(self, op, fmt, last):
        """Issue one beat's micro-program; returns the cycle after its last issue."""
        code = OP[op] if isinstance(op, str) else op
        if code >= len(OPS):
            prog = [UOp("misc", "mov")]
        else:
            name = OPS[code]
            prog = program(name, 0 if name in CVT_OPS else fmt, last, self.lanes, self.gap)
        for u in prog:
            c = self.cycle
            for r in uop_reads(u):
                c = max(c, self.ready[r])
            self.last_was_act = u.unit == "act"
            if u.unit == "act":
                self.last_act = c
            else:
                c = max(c, self.last_act + self.act_gap)
            if u.dst in ("t", "acc"):
                self.ready[u.dst] = c + self.gap
            self.cycle = c + 1
        return self.cycle

    def run(self, beats):
        """Issue cycles of a stream of ``(op, fmt, last)`` beats sent back to back."""
        start = self.cycle
        for b in beats:
            self.beat(*b[:3])
        return self.cycle - start
