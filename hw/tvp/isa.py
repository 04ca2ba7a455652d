"""The TVP instruction set: opcodes, the format bit, the beat layouts.

This is the one definition of the TVP's ISA; the golden model (:mod:`sim.tvp`),
the tile's TVP feeder and the compiler import it from here. The micro-programs
that implement each opcode are in :mod:`hw.tvp.microcode`.
"""
from amaranth.lib import data, enum

__all__ = ["OP_BITS", "Op", "Fmt", "OPS", "OP", "N_OPS", "CVT_OPS", "REDUCE_OPS",
           "REDUCE_CODES", "is_reduce", "in_layout", "out_layout"]

#: Width of the ``op`` field of an instruction beat.
OP_BITS = 5


class Op(enum.Enum, shape=OP_BITS):
    """Opcodes (the 5-bit ``op`` field). Codes ``>= N_OPS`` are invalid: such a
    beat passes ``a`` through and sets the TVP's sticky ``error`` flag."""
    ADD = 0
    SUB = 1
    MUL = 2
    FMA = 3
    MAX = 4
    MIN = 5
    CLT = 6
    CLE = 7
    CEQ = 8
    SEL = 9
    ABS = 10
    NEG = 11
    F2B = 12
    B2FLO = 13
    B2FHI = 14
    EXP = 15
    RECIP = 16
    RSQRT = 17
    GELU = 18
    SILU = 19
    RSUM = 20
    RMAX = 21
    BCAST = 22
    MXQ = 23
    MXQP = 24
    SWIGLU = 25
    ROPE = 26
    EXPD = 27
    RSUMSQ = 28


class Fmt(enum.Enum, shape=1):
    """The ``fmt`` bit: one FP32 value per lane, or two BF16 values (slots)."""
    FP32 = 0
    BF16X2 = 1


#: Opcode names in code order (the compatibility view used by the models).
OPS = [o.name for o in Op]
#: Opcode name -> code.
OP = {o.name: o.value for o in Op}
#: Number of valid opcodes.
N_OPS = len(OPS)
#: Word-level conversions: they run in FP32 mode only; ``fmt = BF16X2`` on one of
#: them is an invalid format (counted in ``errors``, the beat runs as FP32).
CVT_OPS = ("F2B", "B2FLO", "B2FHI", "MXQ", "MXQP")
#: Reductions: a group of beats yields one output beat (on the beat with ``last``).
REDUCE_OPS = ("RSUM", "RMAX", "RSUMSQ")
#: Codes of :data:`REDUCE_OPS`.
REDUCE_CODES = tuple(OP[name] for name in REDUCE_OPS)


def is_reduce(op):
    """Amaranth expression: the opcode value ``op`` is one of :data:`REDUCE_OPS`."""
    expr = None
    for code in REDUCE_CODES:
        expr = (op == code) if expr is None else expr | (op == code)
    return expr


def in_layout(lanes):
    """Input beat: one instruction with its three operand vectors.

    ``op`` is a plain 5-bit field (not :class:`Op`-shaped): the invalid codes
    ``N_OPS..31`` are legal inputs with a defined behaviour.
    """
    return data.StructLayout({
        "op": OP_BITS,
        "fmt": 1,
        "last": 1,
        "a": data.ArrayLayout(32, lanes),
        "b": data.ArrayLayout(32, lanes),
        "c": data.ArrayLayout(32, lanes),
    })


def out_layout(lanes):
    """Output beat: one result vector."""
    return data.StructLayout({"data": data.ArrayLayout(32, lanes), "last": 1})
