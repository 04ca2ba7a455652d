"""BF16 element decoding shared by the tensor unit (and any other BF16 consumer).

A BF16 bit pattern (1 sign, 8 exponent, 7 mantissa bits, bias 127) decodes like an
MX element (:mod:`hw.common.mx`): a finite value is ``(-1)**sign * mant * 2**shift *
2**-133`` with ``mant`` <= 255 (hidden bit included) and ``shift`` <= 253, so a
product of two elements is an 8 x 8 integer multiply and a shift. The golden
model is ``sim.mx.bf16_int`` (docs/numerics.md).
"""
from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BF16_LSB", "BF16_MAX_SHIFT", "BF16ElementDecode"]

#: log2 of the weight of ``mant`` at ``shift`` 0: the smallest subnormal, 2**-133.
BF16_LSB = -133
#: Largest ``shift`` of a finite BF16 value (exponent field 254).
BF16_MAX_SHIFT = 253


class BF16ElementDecode(wiring.Component):
    """Combinational decode of one BF16 bit pattern.

    Attributes
    ----------
    code : In(16)
    sign : Out(1)
    mant : Out(8)
        Mantissa with the hidden bit (0 for zero, NaN and Inf).
    shift : Out(8)
        ``exponent - 1`` for normal values, 0 for subnormals and specials.
    nan, inf, zero : Out(1)
    """

    def __init__(self):
        super().__init__({
            "code": In(16), "sign": Out(1), "mant": Out(8), "shift": Out(8),
            "nan": Out(1), "inf": Out(1), "zero": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        e, f = self.code[7:15], self.code[:7]
        special = e == 0xFF
        m.d.comb += [
            self.sign.eq(self.code[15]),
            self.mant.eq(Mux(special, 0, Mux(e == 0, f, f | 0x80))),
            self.shift.eq(Mux((e == 0) | special, 0, e - 1)),
            self.nan.eq(special & (f != 0)),
            self.inf.eq(special & (f == 0)),
            self.zero.eq(~special & (e == 0) & (f == 0)),
        ]
        return m
