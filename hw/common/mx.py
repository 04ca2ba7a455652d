"""OCP MX element decoding shared by the tensor unit and the vector unit.

Every MX element code (FP8 E4M3/E5M2, FP6 E3M2/E2M3, FP4 E2M1, INT8) is the
exact value ``(-1)**sign * mant * 2**shift * 2**lsb(fmt)`` with a small
unsigned ``mant`` and ``shift >= 0``; ``lsb`` is the per-format weight of the
smallest subnormal (see ``sim/mx.py`` and ``docs/numerics.md``). Products of
two decoded elements are then plain integer multiplies and shifts.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["FORMAT_SELECT", "FORMAT_LSB", "FORMAT_BITS", "ALL_FORMATS", "NARROW_FORMATS",
           "MXElementDecode", "format_lsb", "max_shift", "max_mant", "narrow_of"]

#: Runtime format select codes (3 bits), identical to ``sim.mx.FORMATS[..].select``.
FORMAT_SELECT = {"fp8_e4m3": 0, "fp8_e5m2": 1, "fp6_e3m2": 2, "fp6_e2m3": 3,
                 "fp4_e2m1": 4, "int8": 5}
#: log2 of the weight of mantissa LSB at shift 0 (the smallest subnormal; INT8: 2**-6).
FORMAT_LSB = {"fp8_e4m3": -9, "fp8_e5m2": -16, "fp6_e3m2": -4, "fp6_e2m3": -3,
              "fp4_e2m1": -1, "int8": -6}
#: Code width of each format.
FORMAT_BITS = {"fp8_e4m3": 8, "fp8_e5m2": 8, "fp6_e3m2": 6, "fp6_e2m3": 6,
               "fp4_e2m1": 4, "int8": 8}
#: (exponent bits, mantissa bits, bias) of the floating-point formats.
_FP = {"fp8_e4m3": (4, 3), "fp8_e5m2": (5, 2), "fp6_e3m2": (3, 2), "fp6_e2m3": (2, 3),
       "fp4_e2m1": (2, 1)}
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
    e, _ = _FP[fmt]
    top = (1 << e) - 1
    return (top - 1 if fmt == "fp8_e5m2" else top) - 1


def max_mant(fmt):
    """Largest ``mant`` (incl. the hidden bit) of ``fmt``; INT8: 128 (code 0x80)."""
    if fmt == "int8":
        return 128
    return (2 << _FP[fmt][1]) - 1


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
