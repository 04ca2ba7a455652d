"""The TVP micro-programs, their micro-op encoding and the SFU constant tables.

Every opcode of :mod:`hw.tvp.isa` runs as a short *micro-program*
(:func:`program`) of micro-ops (:class:`UOp`), one per cycle, over per-slot
units (``fma``, ``sfu``, ``misc``). The hardware decoder is generated from
:func:`PROGRAMS` and the golden model (:mod:`sim.tvp`) executes the same
table, so the only thing the RTL and the model can disagree on is the units
themselves. The SFU tables and fixed-point constants below define the
approximations (:func:`sim.tvp.exp_f32` etc. are their bit-exact model,
:mod:`hw.tvp.fpu` their hardware).
"""
from dataclasses import dataclass
import math
import struct

from amaranth.lib import enum

from hw.common import f32

from .isa import CVT_OPS, OPS, REDUCE_OPS

__all__ = ["UOp", "program", "PROGRAMS", "uop_reads", "Unit", "Dst", "UNIT", "DST",
           "SFU_FNS", "MISC_FNS", "ACT_FNS", "ACT_CHAIN", "ACT_TAP", "ROT", "combine_order", "F32_ONE", "F32_NEG_ZERO", "F32_NINF", "MINUS_ONE",
           "GELU_K0", "GELU_K1", "EXP_LOG2E", "EXP_TABLE", "EXP_C1", "EXP_C2", "EXP_C3",
           "RECIP_TABLE", "RSQRT_TABLE", "operand_sources"]


def _f32(v):
    """Python float -> FP32 bits (rounded by the host, RNE)."""
    return struct.unpack("<I", struct.pack("<f", v))[0]


#: FP32 bit patterns used as micro-op constants (``hw.common.f32``).
F32_ONE, F32_NEG_ZERO, F32_NINF = f32.ONE, f32.NEG_ZERO, f32.NINF
MINUS_ONE = f32.MINUS_ONE

#: GELU(x) = x * sigmoid(z), z = 2*sqrt(2/pi)*(x + 0.044715 x^3) (tanh form);
#: the program computes -z = x * (K0 + K1 * x^2).
GELU_K0 = _f32(-2.0 * math.sqrt(2.0 / math.pi))
GELU_K1 = _f32(-2.0 * math.sqrt(2.0 / math.pi) * 0.044715)


# ---------------------------------------------------------------------------
# Micro-op encoding (the decoder's control fields)
# ---------------------------------------------------------------------------

class Unit(enum.Enum, shape=2):
    """The unit whose result a micro-op writes back (``ACT``: the activation chain)."""
    FMA = 0
    SFU = 1
    MISC = 2
    ACT = 3


class Dst(enum.Enum, shape=3):
    """Where a micro-op's result goes: the temporary, an accumulator bank, or the
    output (per slot, slot 0 broadcast, MX codes densely packed)."""
    T = 0
    ACC = 1
    OUT = 2
    OUTB = 3
    OUTP = 4


#: ``UOp.unit`` name -> :class:`Unit` code.
UNIT = {u.name.lower(): u.value for u in Unit}
#: ``UOp.dst`` name -> :class:`Dst` code.
DST = {d.name.lower(): d.value for d in Dst}
#: SFU function codes (``fn`` of an ``sfu`` micro-op).
SFU_FNS = ["exp", "recip", "rsqrt"]
#: Misc unit function codes (``fn`` of a ``misc`` micro-op).
MISC_FNS = ["max", "min", "clt", "cle", "ceq", "sel", "abs", "neg", "f2b", "b2flo", "b2fhi",
            "mov", "mxq", "mxqp"]
#: Activation chain functions (``fn`` of an ``act`` micro-op).
ACT_FNS = ["gelu", "silu", "swiglu", "expd"]
#: The rotating accumulator bank (``bank`` of a source or destination).
ROT = -1


@dataclass(frozen=True)
class UOp:
    """One micro-op (one issue cycle, all slots in parallel).

    unit : ``"fma"``, ``"sfu"``, ``"misc"`` or ``"act"`` (the activation chain
        :data:`ACT_CHAIN`, one issue per beat).
    fn : SFU, misc or activation function.
    x, y, z : sources: ``"a"``, ``"b"``, ``"c"``, ``"t"`` (temporary),
        ``("acc", k)`` (accumulator bank ``k``, or the rotating bank for
        :data:`ROT`), ``("accp", k)`` (bank ``k`` of slot ``j + stride``) or an
        ``int`` constant (FP32 bits). An accumulator bank that has not been
        written in the current reduction group reads as ``ident``.
    dst : ``"t"``, ``"acc"`` (bank ``bank``), ``"out"`` (per-slot result),
        ``"outb"`` (slot 0 broadcast to every slot) or ``"outp"`` (MX codes
        densely packed, :func:`sim.tvp.mx_pack`).
    wait : a micro-op reading an accumulator bank waits for every accumulator
        write in flight (``False`` for the rotating accumulate: the rotation over
        :func:`acc_banks` banks already puts ``hazard_gap`` cycles between two
        uses of one bank, and for the 2nd.. micro-ops of one tree level, which
        read banks that level does not write).
    """
    unit: str
    fn: str = ""
    x: object = "a"
    y: object = "b"
    z: object = "c"
    dst: str = "out"
    stride: int = 0
    ident: int = 0
    bank: int = 0
    wait: bool = True


def uop_reads(u):
    """Architectural registers a micro-op waits for (a subset of ``{"t", "acc"}``).

    A micro-op reading one of them waits for the previous writes of it (the
    hazard rule of the issue logic and of :class:`sim.tvp.TimingModel`).
    """
    regs = set()
    for s in (u.x, u.y, u.z):
        if s == "t":
            regs.add("t")
        elif isinstance(s, tuple) and u.wait:
            regs.add("acc")
    return regs


def _fma(x, y, z, dst="out"):
    return UOp("fma", "", x, y, z, dst)


def _misc(fn, x="a", y="b", z="c", dst="out"):
    return UOp("misc", fn, x, y, z, dst)


def _sfu(fn, x="a", dst="out"):
    return UOp("sfu", fn, x, 0, 0, dst)


#: The activation chain: a fixed pipeline of units per slot, one stage per entry
#: ``(unit, {fn: (x, y, z)})`` (``unit`` ``fma`` or an SFU function), each stage
#: reading ``a`` / ``b`` (the beat's operands), ``t`` (the previous stage's result)
#: or constants and passing its result on as ``t``; the last stage's result is
#: the output. A beat enters it with one ``act`` micro-op, so GELU, SiLU and SwiGLU
#: run at one beat per cycle. (Stages 0-1 are computed but unused by SiLU/SwiGLU.)
#: GELU(x) = x / (1 + exp(-z)), -z = x (K0 + K1 x^2) (tanh form); SiLU(x) =
#: x / (1 + exp(-x)); SwiGLU(a, b) = SiLU(a) * b.
ACT_CHAIN = [
    ("fma", {f: ("a", "a", F32_NEG_ZERO) for f in ACT_FNS}),
    ("fma", {f: ("t", GELU_K1, GELU_K0) for f in ACT_FNS}),
    ("fma", {"gelu": ("a", "t", F32_NEG_ZERO), "silu": ("a", MINUS_ONE, F32_NEG_ZERO),
             "swiglu": ("a", MINUS_ONE, F32_NEG_ZERO), "expd": ("b", MINUS_ONE, "a")}),
    ("exp", {f: ("t", 0, 0) for f in ACT_FNS}),
    ("fma", {f: ("t", F32_ONE, F32_ONE) for f in ACT_FNS}),
    ("recip", {f: ("t", 0, 0) for f in ACT_FNS}),
    ("fma", {f: ("a", "t", F32_NEG_ZERO) for f in ACT_FNS}),
    ("fma", {"gelu": ("t", F32_ONE, F32_NEG_ZERO), "silu": ("t", F32_ONE, F32_NEG_ZERO),
             "swiglu": ("t", "b", F32_NEG_ZERO), "expd": ("t", F32_ONE, F32_NEG_ZERO)}),
]
#: The chain stage whose result is the output (default: the last stage); the
#: result is delayed to the end of the chain so every function has one latency.
#: EXPD(a, b) = exp(a - b) (the softmax / online-softmax rescale step).
ACT_TAP = {"gelu": len(ACT_CHAIN) - 1, "silu": len(ACT_CHAIN) - 1,
           "swiglu": len(ACT_CHAIN) - 1, "expd": 3}


_ELEMENTWISE = {
    "ADD": [_fma("a", F32_ONE, "b")],
    "SUB": [_fma("b", MINUS_ONE, "a")],
    "MUL": [_fma("a", "b", F32_NEG_ZERO)],
    "FMA": [_fma("a", "b", "c")],
    "EXP": [_sfu("exp")],
    "RECIP": [_sfu("recip")],
    "RSQRT": [_sfu("rsqrt")],
    "SILU": [UOp("act", "silu", "a", "b", 0)],
    "GELU": [UOp("act", "gelu", "a", "b", 0)],
    "SWIGLU": [UOp("act", "swiglu", "a", "b", 0)],
    "EXPD": [UOp("act", "expd", "a", "b", 0)],
    # RoPE: fma(pairswap(a), b, c) with ``ap`` slot 2m = -a[2m+1], slot 2m+1 = a[2m]
    # (b = sin, c = x cos from a MUL pass).
    "ROPE": [_fma("ap", "b", "c")],
    "BCAST": [_misc("mov", dst="outb")],
    "MXQ": [_misc("mxq")],
    "MXQP": [_misc("mxqp", dst="outp")],
}
for _name in ("MAX", "MIN", "CLT", "CLE", "CEQ", "SEL", "ABS", "NEG", "F2B", "B2FLO", "B2FHI"):
    _ELEMENTWISE[_name] = [_misc(_name.lower())]


def _combine(op, x, z, dst, bank=0, stride=0, wait=True):
    """``bank := op(x, z)``: RSUM ``fma(x, 1, z)``, RMAX ``max(x, z)``."""
    if op == "RSUM":
        return UOp("fma", "", x, F32_ONE, z, dst, stride, F32_NEG_ZERO, bank, wait)
    return UOp("misc", "max", x, z, 0, dst, stride, F32_NINF, bank, wait)


def combine_order(banks, slots):
    """The fixed order in which a reduction combines its partial results on ``last``.

    Returns a list of levels; each level a list of ``(kind, dst, src, stride)``:
    ``("bank", k, k + s, 0)``: bank ``k`` (every slot) := op(bank ``k``, bank
    ``k + s``), for ``s = 1, 2, 4, ...`` and ``k`` a multiple of ``2 s``;
    then ``("slot", 0, 0, s)``: bank 0 slot ``j`` := op(slot ``j``, slot ``j + s``)
    for ``s = slots/2, ..., 1``. The result is bank 0, slot 0.
    """
    levels = []
    s = 1
    while s < banks:
        levels.append([("bank", k, k + s, 0) for k in range(0, banks, 2 * s) if k + s < banks])
        s *= 2
    s = slots // 2
    while s >= 1:
        levels.append([("slot", 0, 0, s)])
        s //= 2
    return levels


def program(op, fmt, last, lanes, banks=1):
    """Micro-program of one beat: a list of :class:`UOp`.

    Parameters
    ----------
    op : str
    fmt : int
        0 FP32, 1 BF16x2 (ignored by :data:`~hw.tvp.isa.CVT_OPS`).
    last : int
        Last beat of a reduction group.
    lanes : int
        Number of lanes (a power of two).
    banks : int
        Accumulator banks of the reductions (:attr:`hw.tvp.TVP.acc_banks`).
    """
    if op not in REDUCE_OPS:
        return list(_ELEMENTWISE[op])
    acc_r = ("acc", ROT)
    if op == "RSUM":
        step = UOp("fma", "", "a", F32_ONE, acc_r, "acc", 0, F32_NEG_ZERO, ROT, False)
    elif op == "RSUMSQ":
        step = UOp("fma", "", "a", "a", acc_r, "acc", 0, F32_NEG_ZERO, ROT, False)
        op = "RSUM"
    else:
        step = UOp("misc", "max", "a", acc_r, 0, "acc", 0, F32_NINF, ROT, False)
    prog = [step]
    if last:
        slots = lanes * (2 if fmt else 1)
        for level in combine_order(banks, slots):
            for k, (kind, d, src, s) in enumerate(level):
                if kind == "bank":
                    prog.append(_combine(op, ("acc", d), ("acc", src), "acc", d, 0, k == 0))
                else:
                    prog.append(_combine(op, ("acc", 0), ("accp", 0), "acc", 0, s, True))
        if len(prog) == 1:
            prog.append(_misc("mov", ("acc", 0), 0, 0, dst="outb"))
        else:  # the final combine writes the broadcast output directly
            u = prog[-1]
            prog[-1] = UOp(u.unit, u.fn, u.x, u.y, u.z, "outb", u.stride, u.ident, 0, u.wait)
    return prog


#: ``PROGRAMS(lanes)[(op, fmt, last)]`` for every valid opcode.
def PROGRAMS(lanes, banks=1):
    return {(op, fmt, last): program(op, fmt, last, lanes, banks)
            for op in OPS for fmt in (0, 1) for last in (0, 1)}


def operand_sources(programs):
    """The operand sources, strides and identities used anywhere in ``programs``.

    Returns ``(srcs, strides, idents)``: ``srcs[pos]`` (``pos`` in ``"xyz"``) lists
    the source keys of that operand position in first-use order, ``strides`` and
    ``idents`` the reduction strides and identities (each starting with 0). The
    decoder's select fields index these lists.
    """
    srcs = {pos: [] for pos in "xyz"}
    strides, idents = [0], [0]
    for prog in programs.values():
        for u in prog:
            if u.unit == "act":  # the chain has its own operand wiring (x = a, y = b)
                u = UOp("misc", "", "a", "b", 0)
            for pos in "xyz":
                key = getattr(u, pos)
                if key not in srcs[pos]:
                    srcs[pos].append(key)
            if u.stride not in strides:
                strides.append(u.stride)
            if u.ident not in idents:
                idents.append(u.ident)
    return srcs, strides, idents


# ---------------------------------------------------------------------------
# SFU constants: exp, recip, rsqrt as integer operations on FP32 bit patterns
# ---------------------------------------------------------------------------

#: log2(e) with 34 fractional bits (35-bit constant).
EXP_LOG2E = round(math.log2(math.e) * 2 ** 34)
#: 2**(i/64) with 30 fractional bits, i = 0..63.
EXP_TABLE = [round(2 ** (i / 64) * 2 ** 30) for i in range(64)]
#: Taylor coefficients of 2**r = 1 + C1 r + C2 r^2 + C3 r^3 (30 fractional bits).
EXP_C1 = round(math.log(2) * 2 ** 30)
EXP_C2 = round(math.log(2) ** 2 / 2 * 2 ** 30)
EXP_C3 = round(math.log(2) ** 3 / 6 * 2 ** 30)
#: Seeds of 1/m, m in [1, 2): 128 entries, 10 fractional bits, at interval midpoints.
RECIP_TABLE = [round(2 ** 10 / (1 + (i + 0.5) / 128)) for i in range(128)]
#: Seeds of 1/sqrt(m): index = (exponent odd, top 7 mantissa bits); m in [1, 4).
RSQRT_TABLE = [round(2 ** 10 / math.sqrt((1 + odd) * (1 + (i + 0.5) / 128)))
               for odd in (0, 1) for i in range(128)]
