"""Output-stationary MX processing element.

One PE owns one output ``C[i, j]``. Every valid beat it multiplies one element
pair (or, in packed mode, two FP4/FP6 pairs from the two 6-bit halves of the
lane) exactly, adds the products into a wide two's-complement block sum, and on
the block's last beat hands ``(sum, lsbA + lsbB + scaleA + scaleB - 254)`` to a
four-stage tail: round to FP32 (:class:`~hw.ttu.fp32.IntToFP32`), then add into
the FP32 accumulator (:class:`~hw.ttu.fp32.FP32Add`). On the tile's last beat
the final sum goes to ``result`` and the accumulator restarts from +0.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.common.mx import (ALL_FORMATS, FORMAT_SELECT, NARROW_FORMATS, MXElementDecode,
                          format_lsb, max_mant, max_shift)
from hw.common.params import check_choice, check_int

from .fp32 import FP32Add, IntToFP32

__all__ = ["PE", "a_layout", "b_layout", "acc_width", "LATENCY"]

#: Cycles from a beat on ``a_in`` to its effect on ``result`` (tile end).
LATENCY = 6


def lane_width(packed):
    """Element lane width: 8 bits, or 12 (two 6-bit halves) with packing support."""
    return 12 if packed else 8


def a_layout(packed):
    """Horizontal (activation) link: data, scale and the control travelling with it."""
    return data.StructLayout({
        "valid": 1,      # the beat carries elements (else a bubble)
        "data": lane_width(packed),
        "scale": 8,      # E8M0 scale of the block (sampled on blk_last)
        "blk_last": 1,   # last beat of a scale block
        "tile_last": 1,  # last beat of the output tile
    })


def b_layout(packed):
    """Vertical (weight) link."""
    return data.StructLayout({"data": lane_width(packed), "scale": 8})


def acc_width(formats, block):
    """Bits of the exact block sum for any pair of ``formats`` and ``block`` elements."""
    big = max((max_mant(f) << max_shift(f)) for f in formats)
    return (big * big * block).bit_length() + 1


class PE(wiring.Component):
    """One MX multiply-accumulate cell of the systolic array.

    Parameters
    ----------
    formats : tuple of str
        Element formats supported at run time (default: all six).
    block : int
        Largest scale block, 16 or 32 (sizes the exact block sum).
    packed : bool
        Support two FP4/FP6 element pairs per beat (12-bit lanes).

    Attributes
    ----------
    a_in, a_out : In/Out(a_layout)
        Activation link from the left / to the right (registered pass-through).
    b_in, b_out : In/Out(b_layout)
        Weight link from above / downwards (registered pass-through).
    fmt_a, fmt_b : In(3)
        Runtime format selects (static during a GEMM).
    pack : In(1)
        Lanes hold two 6-bit elements (both formats must be FP4/FP6).
    result : Out(32)
        FP32 result of the last finished tile (held until the next one).
    result_valid : Out(1)
        One-cycle pulse when ``result`` is updated.
    """

    def __init__(self, *, formats=ALL_FORMATS, block=32, packed=True):
        formats = tuple(formats)
        if not formats or any(f not in FORMAT_SELECT for f in formats):
            raise ValueError(f"formats must be a non-empty subset of {ALL_FORMATS}, not {formats!r}")
        self._formats = formats
        self._block = check_choice("block", block, (16, 32))
        self._packed = bool(packed)
        self._narrow = tuple(f for f in formats if f in NARROW_FORMATS)
        if self._packed and not self._narrow:
            raise ValueError("packed needs at least one of the narrow formats "
                             f"{NARROW_FORMATS} in formats")
        self.width = acc_width(formats, block)
        super().__init__({
            "a_in": In(a_layout(self._packed)),
            "b_in": In(b_layout(self._packed)),
            "a_out": Out(a_layout(self._packed)),
            "b_out": Out(b_layout(self._packed)),
            "fmt_a": In(3),
            "fmt_b": In(3),
            "pack": In(1),
            "result": Out(32),
            "result_valid": Out(1),
        })
        # Exposed for formal checks.
        self.blk_sum = Signal(signed(self.width))
        self.acc = Signal(32)

    def invariants(self):
        return []

    def _product(self, m, da, db, name):
        """Signed exact product of two decoded elements plus its special flags."""
        prod = Signal(self.width, name=f"{name}_mag")
        wa, wb = da.shift.shape().width, db.shift.shape().width
        sh = Signal(range((1 << wa) + (1 << wb)), name=f"{name}_sh")
        m.d.comb += [sh.eq(da.shift + db.shift), prod.eq((da.mant * db.mant) << sh)]
        p = Signal(signed(self.width), name=name)
        neg = da.sign ^ db.sign
        m.d.comb += p.eq(Mux(neg, -prod, prod))
        nan = da.nan | db.nan | (da.inf & db.zero) | (db.inf & da.zero)
        inf = (da.inf | db.inf) & ~nan
        return p, nan, inf & ~neg, inf & neg

    def elaborate(self, platform):
        m = Module()
        a, b = self.a_in, self.b_in
        m.d.sync += [self.a_out.eq(a), self.b_out.eq(b)]

        m.submodules.dec_a0 = da0 = MXElementDecode(formats=self._formats)
        m.submodules.dec_b0 = db0 = MXElementDecode(formats=self._formats)
        m.d.comb += [da0.code.eq(a.data[:8]), da0.select.eq(self.fmt_a),
                     db0.code.eq(b.data[:8]), db0.select.eq(self.fmt_b)]
        p0, nan, pinf, ninf = self._product(m, da0, db0, "p0")
        prods = Signal(signed(self.width))
        if self._packed:
            # The second half-lane: a narrow (<= 4-bit mantissa) multiplier used only
            # when both operands are FP4/FP6, so packing doubles the MAC rate.
            m.submodules.dec_a1 = da1 = MXElementDecode(formats=self._narrow)
            m.submodules.dec_b1 = db1 = MXElementDecode(formats=self._narrow)
            m.d.comb += [da1.code.eq(a.data[6:12]), da1.select.eq(self.fmt_a),
                         db1.code.eq(b.data[6:12]), db1.select.eq(self.fmt_b)]
            p1, _, _, _ = self._product(m, da1, db1, "p1")
            m.d.comb += prods.eq(p0 + Mux(self.pack, p1, 0))
        else:
            m.d.comb += prods.eq(p0)
        lsb_a = format_lsb(m, self.fmt_a, self._formats)
        lsb_b = format_lsb(m, self.fmt_b, self._formats)

        # Stage P: the beat's exact product sum, flags and block exponent.
        p_valid = Signal()
        p_blk_last = Signal()
        p_tile_last = Signal()
        p_sum = Signal(signed(self.width))
        p_exp = Signal(signed(11))
        p_nan = Signal()
        p_pinf = Signal()
        p_ninf = Signal()
        m.d.sync += [
            p_valid.eq(a.valid), p_blk_last.eq(a.blk_last), p_tile_last.eq(a.tile_last),
            p_sum.eq(prods),
            p_exp.eq(lsb_a + lsb_b + a.scale + b.scale - 254),
            p_nan.eq(nan | (a.blk_last & ((a.scale == 0xFF) | (b.scale == 0xFF)))),
            p_pinf.eq(pinf), p_ninf.eq(ninf),
        ]

        flag_nan = Signal()
        flag_pinf = Signal()
        flag_ninf = Signal()
        total = Signal(signed(self.width))
        m.d.comb += total.eq(self.blk_sum + p_sum)

        # Stage C: block sum ready for rounding.
        c_go = Signal()
        c_tile_last = Signal()
        c_sum = Signal(signed(self.width))
        c_exp = Signal(signed(11))
        c_nan = Signal()
        c_pinf = Signal()
        c_ninf = Signal()
        m.d.sync += c_go.eq(0)
        with m.If(p_valid):
            with m.If(p_blk_last):
                m.d.sync += [
                    c_go.eq(1),
                    c_tile_last.eq(p_tile_last),
                    c_sum.eq(total),
                    c_exp.eq(p_exp),
                    c_nan.eq(flag_nan | p_nan),
                    c_pinf.eq(flag_pinf | p_pinf),
                    c_ninf.eq(flag_ninf | p_ninf),
                    self.blk_sum.eq(0),
                    flag_nan.eq(0), flag_pinf.eq(0), flag_ninf.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    self.blk_sum.eq(total),
                    flag_nan.eq(flag_nan | p_nan),
                    flag_pinf.eq(flag_pinf | p_pinf),
                    flag_ninf.eq(flag_ninf | p_ninf),
                ]

        # Stage V (two cycles): FP32 block value.
        m.submodules.round = rnd = IntToFP32(width=self.width, exp_width=11, pipelined=True)
        m.d.comb += [rnd.value.eq(c_sum), rnd.exp.eq(c_exp), rnd.nan.eq(c_nan),
                     rnd.pinf.eq(c_pinf), rnd.ninf.eq(c_ninf)]
        c2_go = Signal()
        c2_tile_last = Signal()
        m.d.sync += [c2_go.eq(c_go), c2_tile_last.eq(c_tile_last)]
        v_go = Signal()
        v_tile_last = Signal()
        v_bits = Signal(32)
        m.d.sync += [v_go.eq(c2_go), v_tile_last.eq(c2_tile_last), v_bits.eq(rnd.result)]

        # Stage A (two cycles): FP32 accumulate, blocks in arrival (increasing k) order.
        # The accumulator is read two cycles before it is written; block ends of one
        # PE are >= 8 beats apart (the controller's smallest block), so no hazard.
        m.submodules.add = add = FP32Add(pipelined=True)
        m.d.comb += [add.a.eq(self.acc), add.b.eq(v_bits)]
        w_go = Signal()
        w_tile_last = Signal()
        m.d.sync += [w_go.eq(v_go), w_tile_last.eq(v_tile_last)]
        m.d.sync += self.result_valid.eq(w_go & w_tile_last)
        with m.If(w_go):
            with m.If(w_tile_last):
                m.d.sync += [self.result.eq(add.s), self.acc.eq(0)]
            with m.Else():
                m.d.sync += self.acc.eq(add.s)
        return m
