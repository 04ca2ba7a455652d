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
           "SFU_FNS", "MISC_FNS", "F32_ONE", "F32_NEG_ZERO", "F32_NINF", "MINUS_ONE",
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
    """The unit whose result a micro-op writes back."""
    FMA = 0
    SFU = 1
    MISC = 2


class Dst(enum.Enum, shape=3):
    """Where a micro-op's result goes: the temporary, the accumulators, or the
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


@dataclass(frozen=True)
class UOp:
    """One micro-op (one cycle, all slots in parallel).

    unit : ``"fma"``, ``"sfu"`` or ``"misc"``.
    fn : SFU function (``"exp"``, ``"recip"``, ``"rsqrt"``) or misc function.
    x, y, z : sources: ``"a"``, ``"b"``, ``"c"``, ``"t"`` (temporary), ``"acc"``,
        ``"acc0"`` (the accumulator, or the identity ``ident`` on the first beat of
        a reduction), ``"accp"`` (the accumulator of slot ``j + stride``) or an
        ``int`` constant (FP32 bits).
    dst : ``"t"``, ``"acc"``, ``"out"`` (per-slot result), ``"outb"`` (slot 0
        broadcast to every slot) or ``"outp"`` (MX codes densely packed,
        :func:`sim.tvp.mx_pack`).
    """
    unit: str
    fn: str = ""
    x: object = "a"
    y: object = "b"
    z: object = "c"
    dst: str = "out"
    stride: int = 0
    ident: int = 0


def uop_reads(u):
    """Architectural registers a micro-op reads (a subset of ``{"t", "acc"}``).

    A micro-op reading one of them waits for the previous write of it (the
    hazard rule of the issue logic and of :class:`sim.tvp.TimingModel`).
    """
    regs = set()
    for s in (u.x, u.y, u.z):
        if s == "t":
            regs.add("t")
        elif s in ("acc", "acc0", "accp"):
            regs.add("acc")
    return regs


def _fma(x, y, z, dst="out"):
    return UOp("fma", "", x, y, z, dst)


def _misc(fn, x="a", y="b", z="c", dst="out"):
    return UOp("misc", fn, x, y, z, dst)


def _sfu(fn, x="a", dst="out"):
    return UOp("sfu", fn, x, 0, 0, dst)


_ELEMENTWISE = {
    "ADD": [_fma("a", F32_ONE, "b")],
    "SUB": [_fma("b", MINUS_ONE, "a")],
    "MUL": [_fma("a", "b", F32_NEG_ZERO)],
    "FMA": [_fma("a", "b", "c")],
    "EXP": [_sfu("exp")],
    "RECIP": [_sfu("recip")],
    "RSQRT": [_sfu("rsqrt")],
    # SiLU(x) = x / (1 + exp(-x)).
    "SILU": [_misc("neg", dst="t"), _sfu("exp", "t", dst="t"),
             _fma("t", F32_ONE, F32_ONE, dst="t"), _sfu("recip", "t", dst="t"),
             _fma("a", "t", F32_NEG_ZERO)],
    # GELU(x) = x / (1 + exp(-z)), -z = x * (K0 + K1 * x*x).
    "GELU": [_fma("a", "a", F32_NEG_ZERO, dst="t"), _fma("t", GELU_K1, GELU_K0, dst="t"),
             _fma("a", "t", F32_NEG_ZERO, dst="t"), _sfu("exp", "t", dst="t"),
             _fma("t", F32_ONE, F32_ONE, dst="t"), _sfu("recip", "t", dst="t"),
             _fma("a", "t", F32_NEG_ZERO)],
    "BCAST": [_misc("mov", dst="outb")],
    "MXQ": [_misc("mxq")],
    "MXQP": [_misc("mxqp", dst="outp")],
}
for _name in ("MAX", "MIN", "CLT", "CLE", "CEQ", "SEL", "ABS", "NEG", "F2B", "B2FLO", "B2FHI"):
    _ELEMENTWISE[_name] = [_misc(_name.lower())]


def program(op, fmt, last, lanes):
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
    """
    if op not in REDUCE_OPS:
        return list(_ELEMENTWISE[op])
    if op == "RSUM":
        step = UOp("fma", "", "a", F32_ONE, "acc0", "acc", 0, F32_NEG_ZERO)
    else:
        step = UOp("misc", "max", "a", "acc0", 0, "acc", 0, F32_NINF)
    prog = [step]
    if last:
        slots = lanes * (2 if fmt and op not in CVT_OPS else 1)
        stride = slots // 2
        while stride >= 1:
            if op == "RSUM":
                prog.append(UOp("fma", "", "acc", F32_ONE, "accp", "acc", stride))
            else:
                prog.append(UOp("misc", "max", "acc", "accp", 0, "acc", stride))
            stride //= 2
        prog.append(_misc("mov", "acc", 0, 0, dst="outb"))
    return prog


#: ``PROGRAMS(lanes)[(op, fmt, last)]`` for every valid opcode.
def PROGRAMS(lanes):
    return {(op, fmt, last): program(op, fmt, last, lanes)
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
