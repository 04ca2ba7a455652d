"""OCP MX element decoding shared by the tensor unit and the vector unit.

Every MX element code (FP8 E4M3/E5M2, FP6 E3M2/E2M3, FP4 E2M1, INT8) is the
exact value ``(-1)**sign * mant * 2**shift * 2**lsb(fmt)`` with a small
unsigned ``mant`` and ``shift >= 0``; ``lsb`` is the per-format weight of the
smallest subnormal (see ``sim/mx.py`` and ``docs/numerics.md``). Products of
two decoded elements are then plain integer multiplies and shifts.

This module is the one definition of the MX format table (:data:`FORMATS`);
the golden model :mod:`sim.mx` imports it.
"""
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import f32


__all__ = ["ElementFormat", "FORMATS", "FORMAT_CODES", "E8M0_NAN", "E8M0_BIAS",
           "F32_CANONICAL_NAN", "nan_code",
           "FORMAT_SELECT", "FORMAT_LSB", "FORMAT_BITS", "ALL_FORMATS", "NARROW_FORMATS",
           "MXElementDecode", "format_lsb", "max_shift", "max_mant", "narrow_of"]

#: E8M0 scale code meaning NaN.
E8M0_NAN = 0xFF
#: E8M0 bias: code ``c`` means ``2**(c - 127)``.
E8M0_BIAS = 127
#: The only NaN encoding the models (and the RTL) ever produce in FP32.
F32_CANONICAL_NAN = f32.NAN


@dataclass(frozen=True)
class ElementFormat:
    """Constants of one MX element format.

    Attributes
    ----------
    name : str
    bits : int
        Code width.
    ebits, mbits : int
        Exponent and mantissa field widths (``ebits == 0`` for INT8).
    bias : int
        Exponent bias.
    emax : int
        Exponent of the largest power of two (``emax_elem`` of the MX spec).
    lsb : int
        log2 of the smallest positive (subnormal) value; INT8: -6.
    max_int : int
        Largest magnitude as an integer multiple of ``2**lsb``.
    has_inf, has_nan : bool
    ml_dtype : str or None
        The matching ``ml_dtypes`` type name.
    select : int
        The 3-bit runtime format code of the RTL.
    """
    name: str
    bits: int
    ebits: int
    mbits: int
    bias: int
    emax: int
    lsb: int
    max_int: int
    has_inf: bool
    has_nan: bool
    ml_dtype: str
    select: int

    @property
    def max_normal(self):
        return self.max_int * 2.0 ** self.lsb

    @property
    def max_exp_field(self):
        """Exponent field of the largest finite code (FP formats)."""
        top = (1 << self.ebits) - 1
        return top - 1 if self.has_inf else top

    @property
    def max_mant_field(self):
        """Mantissa field of the largest finite code (0 for INT8)."""
        if not self.ebits:
            return 0
        if not self.has_inf and self.has_nan:  # E4M3FN: only S.1111.111 is NaN
            return (1 << self.mbits) - 2
        return (1 << self.mbits) - 1


def _fp(name, ebits, mbits, bias, *, inf, nan, ml, sel, top_nan_only=False):
    bits = 1 + ebits + mbits
    emax_field = (1 << ebits) - 1
    if inf:  # IEEE-like: top exponent is Inf/NaN
        max_e, max_m = emax_field - 1, (1 << mbits) - 1
    elif top_nan_only:  # E4M3FN: only S.1111.111 is NaN
        max_e, max_m = emax_field, (1 << mbits) - 2
    else:
        max_e, max_m = emax_field, (1 << mbits) - 1
    lsb = 1 - bias - mbits
    max_int = ((1 << mbits) | max_m) << (max_e - 1)
    return ElementFormat(name, bits, ebits, mbits, bias, max_e - bias, lsb, max_int,
                         inf, nan, ml, sel)


#: Element formats by name: the one definition of the MX format table.
FORMATS = {
    "fp8_e4m3": _fp("fp8_e4m3", 4, 3, 7, inf=False, nan=True, ml="float8_e4m3fn", sel=0,
                    top_nan_only=True),
    "fp8_e5m2": _fp("fp8_e5m2", 5, 2, 15, inf=True, nan=True, ml="float8_e5m2", sel=1),
    "fp6_e3m2": _fp("fp6_e3m2", 3, 2, 3, inf=False, nan=False, ml="float6_e3m2fn", sel=2),
    "fp6_e2m3": _fp("fp6_e2m3", 2, 3, 1, inf=False, nan=False, ml="float6_e2m3fn", sel=3),
    "fp4_e2m1": _fp("fp4_e2m1", 2, 1, 1, inf=False, nan=False, ml="float4_e2m1fn", sel=4),
    "int8": ElementFormat("int8", 8, 0, 7, 0, 0, -6, 128, False, False, None, 5),
}
#: Runtime format select code -> name.
FORMAT_CODES = {f.select: n for n, f in FORMATS.items()}


def nan_code(f):
    """The code an encoder writes for NaN: FP8 E4M3 0x7F, FP8 E5M2 0x7E, else 0
    (formats without NaN; MX quantization marks such a block with a NaN scale)."""
    if f.name == "fp8_e4m3":
        return 0x7F
    if f.name == "fp8_e5m2":
        return 0x7E
    return 0


#: Runtime format select codes (3 bits).
FORMAT_SELECT = {n: f.select for n, f in FORMATS.items()}
#: log2 of the weight of mantissa LSB at shift 0 (the smallest subnormal; INT8: 2**-6).
FORMAT_LSB = {n: f.lsb for n, f in FORMATS.items()}
#: Code width of each format.
FORMAT_BITS = {n: f.bits for n, f in FORMATS.items()}
#: (exponent bits, mantissa bits) of the floating-point formats.
_FP = {n: (f.ebits, f.mbits) for n, f in FORMATS.items() if f.ebits}
ALL_FORMATS = tuple(FORMAT_SELECT)
#: Formats that fit a 6-bit half lane (packed two per lane at twice the rate).
NARROW_FORMATS = ("fp6_e3m2", "fp6_e2m3", "fp4_e2m1")


def narrow_of(formats):
    """The formats of ``formats`` that pack two per lane (:data:`NARROW_FORMATS`), in order."""
    return tuple(f for f in formats if f in NARROW_FORMATS)


def max_shift(fmt):
    """Largest ``shift`` a finite element of ``fmt`` decodes to."""
    if fmt == "int8":
        return 0
    return FORMATS[fmt].max_exp_field - 1


def max_mant(fmt):
    """Largest ``mant`` (incl. the hidden bit) of ``fmt``; INT8: 128 (code 0x80)."""
    if fmt == "int8":
        return 128
    return (2 << FORMATS[fmt].mbits) - 1


def format_lsb(m, select, formats=ALL_FORMATS):
    """Signed 6-bit signal holding ``FORMAT_LSB`` of the runtime ``select``."""
    lsb = Signal(signed(6))
    with m.Switch(select):
        for f in formats:
            with m.Case(FORMAT_SELECT[f]):
                m.d.comb += lsb.eq(FORMAT_LSB[f])
    return lsb


class MXElementDecode(wiring.Component):
    """Combinational decode of one element code into sign, mantissa and shift.

    Parameters
    ----------
    formats : tuple of str
        Formats this decoder supports (subset of ``ALL_FORMATS``); a select
        outside the set decodes every code as zero and raises ``bad_format``.

    Attributes
    ----------
    code : In(8)
        Element code in the low bits (FP6 uses ``code[0:6]``, FP4 ``code[0:4]``).
    select : In(3)
        Runtime format select (``FORMAT_SELECT``).
    sign : Out(1)
    mant : Out(mant_width)
        Unsigned mantissa including the hidden bit (0 for zero, NaN, Inf).
    shift : Out(shift_width)
    nan, inf, zero : Out(1)
        Element class (``zero`` also for -0).
    bad_format : Out(1)
    """

    def __init__(self, *, formats=ALL_FORMATS):
        formats = tuple(formats)
        if not formats or any(f not in FORMAT_SELECT for f in formats):
            raise ValueError(f"formats must be a non-empty subset of {ALL_FORMATS}, not {formats!r}")
        self._formats = formats
        self.mant_width = max(max_mant(f) for f in formats).bit_length()
        self.shift_width = max(1, max(max_shift(f) for f in formats).bit_length())
        self.code_width = max(FORMAT_BITS[f] for f in formats)
        super().__init__({
            "code": In(self.code_width),
            "select": In(3),
            "sign": Out(1),
            "mant": Out(self.mant_width),
            "shift": Out(self.shift_width),
            "nan": Out(1),
            "inf": Out(1),
            "zero": Out(1),
            "bad_format": Out(1),
        })

    @property
    def formats(self):
        return self._formats

    def elaborate(self, platform):
        m = Module()
        c = self.code
        m.d.comb += self.bad_format.eq(1)
        with m.Switch(self.select):
            for f in self._formats:
                with m.Case(FORMAT_SELECT[f]):
                    m.d.comb += self.bad_format.eq(0)
                    if f == "int8":
                        v = c[:8].as_signed()
                        m.d.comb += [
                            self.sign.eq(v < 0),
                            self.mant.eq(Mux(v < 0, -v, v)),
                            self.shift.eq(0),
                        ]
                        continue
                    eb, mb = _FP[f]
                    bits = 1 + eb + mb
                    man = c[:mb]
                    exp = c[mb:mb + eb]
                    top = (1 << eb) - 1
                    special = Signal(name=f"special_{f}")
                    if f == "fp8_e5m2":
                        m.d.comb += [special.eq(exp == top),
                                     self.nan.eq((exp == top) & (man != 0)),
                                     self.inf.eq((exp == top) & (man == 0))]
                    elif f == "fp8_e4m3":
                        m.d.comb += [special.eq((exp == top) & (man == (1 << mb) - 1)),
                                     self.nan.eq(special)]
                    m.d.comb += [
                        self.sign.eq(c[bits - 1]),
                        # Subnormal: mant = m at shift 0; normal: (1.m) << (e - 1).
                        self.mant.eq(Mux(special, 0, Mux(exp == 0, man, man | (1 << mb)))),
                        self.shift.eq(Mux((exp == 0) | special, 0, exp - 1)),
                    ]
        m.d.comb += self.zero.eq((self.mant == 0) & ~self.nan & ~self.inf)
        return m
