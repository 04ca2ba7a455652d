"""Output-stationary MX processing element and the shared block tail of a PE row.

One :class:`PE` owns one output ``C[i, j]``. Every valid beat it multiplies one
element pair (or, in packed mode, two FP4/FP6 pairs from the two 6-bit halves
of the lane) exactly and adds the products into a wide two's-complement block
sum. On the block's last beat it hands the exact sum (with the block's scales
and NaN/Inf flags) to the :class:`BlockTail` of its row group: the rounding to
FP32 (:class:`~hw.ttu.fp32.IntToFP32`) and the FP32 accumulation
(:class:`~hw.ttu.fp32.FP32Add`) happen once per block, and in the skewed array
the PEs of a row finish their blocks on distinct cycles, so one tail serves up
to :data:`GROUP` PEs, time-multiplexed, with one FP32 accumulator register per
PE.
"""
from amaranth.hdl import Cat, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.common.mx import (ALL_FORMATS, FORMAT_SELECT, NARROW_FORMATS, MXElementDecode,
                          format_lsb, max_mant, max_shift, narrow_of)
from hw.common.params import check_choice, check_int

from .fp32 import FP32Add, IntToFP32

__all__ = ["PE", "BlockTail", "OperandDecode", "a_layout", "b_layout", "op_layout", "blk_layout",
           "acc_width",
           "LATENCY", "BLOCK_LATENCY", "TAIL_LATENCY", "GROUP"]

#: Cycles from a beat on ``a_in`` to the PE's block output (``blk``) for a block end.
BLOCK_LATENCY = 3
#: Register stages of the tail's rounder and adder (see :class:`BlockTail`).
_CONV_STAGES = 4
_ADD_STAGES = 3
#: Cycles from a PE's block output to the FP32 result register in its tail.
TAIL_LATENCY = 3 + _CONV_STAGES + _ADD_STAGES
#: Cycles from a beat on ``a_in`` to its effect on the result (tile end).
LATENCY = BLOCK_LATENCY + TAIL_LATENCY
#: PEs sharing one tail: block ends of one row are >= 8 beats apart in the
#: row's activation chain (the smallest block: 16 elements, two per beat), so at
#: most one of 8 neighbouring PEs finishes a block in any cycle.
GROUP = 8


def lane_width(packed):
    """Element lane width: 8 bits, or 12 (two 6-bit halves) with packing support."""
    return 12 if packed else 8


def _op_widths(formats, packed):
    """(lane-0 operand bits, lane-0 has a coarse shift bit, lane-1 operand bits)."""
    sw = max(1, max(max_shift(f) for f in formats).bit_length())
    lo_max = (1 << min(sw, 4)) - 1
    w0 = max((max_mant(f) << min(max_shift(f), lo_max)).bit_length() for f in formats)
    assert w0 <= 18, w0  # one MULT18X18D per product
    w1 = 0
    if packed:
        w1 = max((max_mant(f) << max_shift(f)).bit_length() for f in narrow_of(formats))
    return w0, sw > 4, w1


def _narrow_widths(formats):
    """(mantissa bits, shift bits) of the packed FP4/FP6 element."""
    narrow = narrow_of(formats)
    return (max(max_mant(f) for f in narrow).bit_length(),
            max(1, max(max_shift(f) for f in narrow).bit_length()))


def op_layout(formats, packed):
    """A decoded element lane (see :class:`OperandDecode`)."""
    w0 = _op_widths(formats, packed)[0]
    fields = {
        "m0": w0,     # mant << shift[:4] of the (lower) element
        "hi": 1,      # shift[4] (E5M2 only): a further << 16
        "s0": 1,      # sign
        "nan": 1, "inf": 1, "zero": 1,
    }
    if packed:
        mw, ew = _narrow_widths(formats)
        # Upper FP4/FP6 element, (-1)**s1 * m1 * 2**e1 (m1 = 0 unless packed): its
        # product is formed in LUTs, so a PE needs one DSP slice, not two.
        fields.update({"m1": mw, "e1": ew, "s1": 1})
    return data.StructLayout(fields)


def a_layout(formats, packed):
    """Horizontal (activation) link: decoded lane, scale and the control travelling with it."""
    return data.StructLayout({
        "valid": 1,      # the beat carries elements (else a bubble)
        "op": op_layout(formats, packed),
        "scale": 8,      # E8M0 scale of the block (sampled on blk_last)
        "blk_last": 1,   # last beat of a scale block
        "tile_last": 1,  # last beat of the output tile
    })


def b_layout(formats, packed):
    """Vertical (weight) link."""
    return data.StructLayout({"op": op_layout(formats, packed), "scale": 8})


def blk_layout(width):
    """PE -> tail: one finished block (all zero while ``valid`` is low, so the
    outputs of a group can be OR-ed)."""
    return data.StructLayout({
        "valid": 1,
        "tile_last": 1,
        "sum": signed(width),  # exact block sum in units of 2**(lsbA + lsbB)
        "scale_a": 8, "scale_b": 8,
        "nan": 1, "pinf": 1, "ninf": 1,
    })


def acc_width(formats, block):
    """Bits of the exact block sum for any pair of ``formats`` and ``block`` elements."""
    big = max((max_mant(f) << max_shift(f)) for f in formats)
    return (big * big * block).bit_length() + 1


def _check_formats(formats, packed):
    formats = tuple(formats)
    if not formats or any(f not in FORMAT_SELECT for f in formats):
        raise ValueError(f"formats must be a non-empty subset of {ALL_FORMATS}, not {formats!r}")
    if packed and not narrow_of(formats):
        raise ValueError("packed needs at least one of the narrow formats "
                         f"{NARROW_FORMATS} in formats")
    return formats


class OperandDecode(wiring.Component):
    """Decode one element lane for the PEs (combinational; once per array edge lane).

    The element ``(-1)**s * mant * 2**shift`` (:class:`~hw.common.mx.MXElementDecode`)
    becomes ``m0 = mant << shift[:4]`` (<= 18 bits, a DSP operand) and
    ``hi = shift[4:]`` (E5M2 only), so that a product is
    ``m0A * m0B << 16 * (hiA + hiB)``. With packing, the upper 6-bit half is a
    second FP4/FP6 element, passed as ``m1 = mant`` (zero unless ``pack``) and
    ``e1 = shift``: its product ``m1A * m1B << (e1A + e1B)`` is built in LUTs.

    Parameters
    ----------
    formats : tuple of str
        Element formats supported at run time.
    packed : bool
        12-bit lanes with a second FP4/FP6 element.

    Attributes
    ----------
    code : In(lane_width(packed))
    select : In(3)
    pack : In(1)
    op : Out(op_layout(formats, packed))
    """

    def __init__(self, *, formats=ALL_FORMATS, packed=True):
        self._packed = bool(packed)
        self._formats = _check_formats(formats, self._packed)
        super().__init__({
            "code": In(lane_width(self._packed)),
            "select": In(3),
            "pack": In(1),
            "op": Out(op_layout(self._formats, self._packed)),
        })

    def elaborate(self, platform):
        m = Module()
        has_hi = _op_widths(self._formats, self._packed)[1]
        m.submodules.dec0 = d0 = MXElementDecode(formats=self._formats)
        m.d.comb += [d0.code.eq(self.code[:8]), d0.select.eq(self.select)]
        m.d.comb += [
            self.op.m0.eq(d0.mant << d0.shift[:4]),  # the coarse bit shift[4] stays apart
            self.op.s0.eq(d0.sign),
            self.op.nan.eq(d0.nan), self.op.inf.eq(d0.inf), self.op.zero.eq(d0.zero),
        ]
        if has_hi:
            m.d.comb += self.op.hi.eq(d0.shift[4:])
        if self._packed:
            m.submodules.dec1 = d1 = MXElementDecode(formats=narrow_of(self._formats))
            m.d.comb += [d1.code.eq(self.code[6:12]), d1.select.eq(self.select)]
            m.d.comb += [
                self.op.m1.eq(Mux(self.pack, d1.mant, 0)),
                self.op.e1.eq(d1.shift),
                self.op.s1.eq(d1.sign),
            ]
        return m


class PE(wiring.Component):
    """One MX multiply-accumulate cell of the systolic array (exact block sums).

    The operands arrive decoded (:class:`OperandDecode` at the array edge, passed
    on from PE to PE). Pipeline (:data:`BLOCK_LATENCY` = 3): M products (lane 0
    on one MULT18X18D, the packed lane 1 in LUTs); S sign and add of the two
    packed pairs (38 bits); B shift by ``16 * (hiA + hiB)`` (E5M2 only) and add
    into the ``acc_width`` block sum.
    On ``blk_last`` the total leaves on ``blk`` (one cycle) and the sum restarts
    at 0.

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
    blk : Out(blk_layout(width))
        The finished block, ``BLOCK_LATENCY`` cycles after its last beat; zero
        in every other cycle.
    """

    def __init__(self, *, formats=ALL_FORMATS, block=32, packed=True):
        self._packed = bool(packed)
        self._formats = _check_formats(formats, self._packed)
        self._block = check_choice("block", block, (16, 32))
        self.width = acc_width(self._formats, block)
        super().__init__({
            "a_in": In(a_layout(self._formats, self._packed)),
            "b_in": In(b_layout(self._formats, self._packed)),
            "a_out": Out(a_layout(self._formats, self._packed)),
            "b_out": Out(b_layout(self._formats, self._packed)),
            "blk": Out(blk_layout(self.width)),
        })
        # Exposed for formal checks.
        self.blk_sum = Signal(signed(self.width), reset_less=True)

    @property
    def formats(self):
        return self._formats

    def elaborate(self, platform):
        m = Module()
        a, b = self.a_in, self.b_in
        # Pass-through links: operands without reset (the widest reset net of the
        # array otherwise), ``valid`` with it so a reset leaves no beat in flight.
        a_q = Signal(self.a_in.shape(), reset_less=True)
        b_q = Signal(self.b_in.shape(), reset_less=True)
        a_valid = Signal()
        m.d.sync += [a_q.eq(a), b_q.eq(b), a_valid.eq(a.valid)]
        m.d.comb += [self.a_out.eq(a_q), self.a_out.valid.eq(a_valid), self.b_out.eq(b_q)]
        w0, has_hi, w1 = _op_widths(self._formats, self._packed)
        oa, ob = a.op, b.op

        # Stage M: exact mantissa products (DSP multipliers), signs, classes.
        ctrl = data.StructLayout({"valid": 1, "blk_last": 1, "tile_last": 1,
                                  "scale_a": 8, "scale_b": 8})
        m_ctl = Signal(ctrl)
        m.d.sync += [m_ctl.valid.eq(a.valid), m_ctl.blk_last.eq(a.blk_last),
                     m_ctl.tile_last.eq(a.tile_last), m_ctl.scale_a.eq(a.scale),
                     m_ctl.scale_b.eq(b.scale)]
        # Data registers have no reset: they count only where m_ctl.valid says so.
        m_p0 = Signal(2 * w0, reset_less=True)
        m_hi = Signal(range(3), reset_less=True)
        m_neg0 = Signal(reset_less=True)
        m_flags = Signal(3, reset_less=True)
        nan = oa.nan | ob.nan | (oa.inf & ob.zero) | (ob.inf & oa.zero)
        inf = (oa.inf | ob.inf) & ~nan
        neg = oa.s0 ^ ob.s0
        m.d.sync += [m_p0.eq(oa.m0 * ob.m0), m_neg0.eq(neg),
                     m_flags.eq(Cat(nan, inf & ~neg, inf & neg))]
        if has_hi:
            m.d.sync += m_hi.eq(oa.hi + ob.hi)
        wn = 2 * w0 + 2
        if self._packed:
            m_p1 = Signal(2 * w1, reset_less=True)
            m_neg1 = Signal(reset_less=True)
            # m1A * m1B << (e1A + e1B) from shifted partial products: a 4 x 4
            # product needs no DSP slice (half the array's MULT18X18D, which
            # otherwise crowd the PEs around the DSP rows of an ECP5).
            mw, _ = _narrow_widths(self._formats)
            m.d.sync += [m_p1.eq(sum(Mux(oa.m1[i], ob.m1 << i, 0) for i in range(mw))
                                 << (oa.e1 + ob.e1)),
                         m_neg1.eq(oa.s1 ^ ob.s1)]

        # Stage S: the beat's product sum before the coarse shift, with the lane-0
        # product in ones' complement when negative (its +1 is the carry-in of the
        # block-sum adder): q = n - neg0 where n = (-1)**s0 p0 + (-1)**s1 p1.
        s_q = Signal(signed(wn), reset_less=True)
        s_ctl = Signal(ctrl)
        s_hi = Signal.like(m_hi, reset_less=True)
        s_neg0 = Signal(reset_less=True)
        s_flags = Signal(3, reset_less=True)
        p0e = Signal(signed(wn))
        m.d.comb += p0e.eq(m_p0)
        x0 = p0e ^ Mux(m_neg0, -1, 0)
        if self._packed:
            m.d.sync += s_q.eq(x0 + Mux(m_neg1, -m_p1, m_p1))
        else:
            m.d.sync += s_q.eq(x0)
        m.d.sync += [s_ctl.eq(m_ctl), s_hi.eq(m_hi), s_flags.eq(m_flags), s_neg0.eq(m_neg0)]

        # Stage B: coarse shift (ones shifted in below a negative lane-0 product, so
        # that +1 completes its two's complement), block sum, block end.
        shifted = Signal(signed(self.width))
        if has_hi:
            with m.Switch(s_hi):
                for h in range(3):
                    with m.Case(h):
                        m.d.comb += shifted.eq(Cat(s_neg0.replicate(16 * h), s_q).as_signed())
        else:
            m.d.comb += shifted.eq(s_q)
        total = Signal(signed(self.width))
        # One carry chain: {blk_sum, 1} + {shifted, neg0}, dropping the low bit.
        wide = Signal(signed(self.width + 1))
        m.d.comb += [wide.eq(Cat(1, self.blk_sum).as_signed() + Cat(s_neg0, shifted).as_signed()),
                     total.eq(wide[1:])]
        flags = Signal(3, reset_less=True)  # nan, pinf, ninf seen in the block so far
        m.d.sync += self.blk.eq(0)
        end = s_ctl.valid & s_ctl.blk_last
        with m.If(end):
            m.d.sync += [
                self.blk.valid.eq(1),
                self.blk.tile_last.eq(s_ctl.tile_last),
                self.blk.sum.eq(total),
                self.blk.scale_a.eq(s_ctl.scale_a),
                self.blk.scale_b.eq(s_ctl.scale_b),
                Cat(self.blk.nan, self.blk.pinf, self.blk.ninf).eq(flags | s_flags),
            ]
        # The block sum and flags clear with the reset or at a block end: one
        # synchronous reset of the flip-flops, no clear multiplexer.
        with m.If(ResetSignal() | end):
            m.d.sync += [self.blk_sum.eq(0), flags.eq(0)]
        with m.Elif(s_ctl.valid):
            m.d.sync += [self.blk_sum.eq(total), flags.eq(flags | s_flags)]
        return m


def _follow(m, go, tile, sel, stages, prefix):
    """Delay a tail's ``go`` (with reset), ``tile`` and PE select (without) by ``stages``
    cycles, beside a pipelined unit; return the delayed three."""
    for k in range(stages):
        g2 = Signal(name=f"{prefix}{k}_go")
        t2 = Signal(name=f"{prefix}{k}_tile", reset_less=True)
        s2 = Signal.like(sel, name=f"{prefix}{k}_sel", reset_less=True)
        m.d.sync += [g2.eq(go), t2.eq(tile), s2.eq(sel)]
        go, tile, sel = g2, t2, s2
    return go, tile, sel


class BlockTail(wiring.Component):
    """FP32 rounding and accumulation shared by up to :data:`GROUP` PEs of a row.

    At most one of the PEs presents a finished block (``blk[j].valid``) in any
    cycle (the array guarantees it, see :data:`GROUP`). Pipeline
    (:data:`TAIL_LATENCY` cycles from ``blk`` to ``results``): X select the block
    and form its exponent ``lsbA + lsbB + sA + sB - 254`` (NaN for a 0xFF scale);
    ``IntToFP32`` (4 stages); V the FP32 block value and the PE's accumulator;
    ``FP32Add`` (3 stages); W write the accumulator, or on the tile's last block
    the result register (the accumulator restarts at +0). A PE's accumulator is
    read 5 cycles before its new value is visible and its blocks are >= 8 cycles apart, so
    there is no hazard.

    Parameters
    ----------
    n : int
        Number of PEs served (1..GROUP).
    width : int
        Width of the exact block sums (``PE.width``).
    formats : tuple of str
        Element formats supported at run time.

    Attributes
    ----------
    blk : In(ArrayLayout(blk_layout(width), n))
        The PEs' block outputs.
    fmt_a, fmt_b : In(3)
        Runtime format selects.
    results : Out(ArrayLayout(32, n))
        FP32 result of each PE's last finished tile (held until the next one).
    """

    def __init__(self, *, n, width, formats=ALL_FORMATS):
        self._n = check_int("n", n, min=1, max=GROUP)
        self._width = check_int("width", width, min=2)
        self._formats = tuple(formats)
        super().__init__({
            "blk": In(data.ArrayLayout(blk_layout(width), n)),
            "fmt_a": In(3), "fmt_b": In(3),
            "results": Out(data.ArrayLayout(32, n)),
        })
        self.acc = [Signal(32, name=f"acc{j}") for j in range(n)]

    def elaborate(self, platform):
        m = Module()
        n = self._n
        # Stage X: the (single) valid block of the group.
        any_blk = Signal(blk_layout(self._width))
        sel = Signal(range(max(n, 2)))
        or_blk = 0
        or_sel = 0
        for j in range(n):
            or_blk = or_blk | self.blk[j].as_value()
            if j:
                or_sel = or_sel | Mux(self.blk[j].valid, j, 0)
        m.d.comb += [any_blk.eq(or_blk), sel.eq(or_sel)]
        lsb = Signal(signed(11))
        m.d.comb += lsb.eq(format_lsb(m, self.fmt_a, self._formats)
                           + format_lsb(m, self.fmt_b, self._formats) - 254)
        # Block data without reset (it counts only with x_go), x_go with it.
        x = Signal(blk_layout(self._width), reset_less=True)
        x_go = Signal()
        x_sel = Signal.like(sel, reset_less=True)
        x_exp = Signal(signed(11), reset_less=True)
        m.d.sync += [x.eq(any_blk), x_go.eq(any_blk.valid), x_sel.eq(sel),
                     x_exp.eq(any_blk.scale_a + any_blk.scale_b + lsb)]

        m.submodules.round = rnd = IntToFP32(width=self._width, exp_width=11,
                                             pipelined=_CONV_STAGES)
        m.d.comb += [rnd.value.eq(x.sum), rnd.exp.eq(x_exp),
                     rnd.nan.eq(x.nan | (x.scale_a == 0xFF) | (x.scale_b == 0xFF)),
                     rnd.pinf.eq(x.pinf), rnd.ninf.eq(x.ninf)]
        go, tile, s = _follow(m, x_go, x.tile_last, x_sel, _CONV_STAGES, "c")

        # Stage V: block value and the PE's accumulator, read here.
        v_go = Signal()
        v_tile, v_sel = Signal(reset_less=True), Signal.like(sel, reset_less=True)
        v_bits, v_acc = Signal(32, reset_less=True), Signal(32, reset_less=True)
        m.d.sync += [v_go.eq(go), v_tile.eq(tile), v_sel.eq(s), v_bits.eq(rnd.result)]
        with m.Switch(s):
            for j in range(n):
                with m.Case(j):
                    m.d.sync += v_acc.eq(self.acc[j])

        m.submodules.add = add = FP32Add(pipelined=_ADD_STAGES)
        m.d.comb += [add.a.eq(v_acc), add.b.eq(v_bits)]
        go, tile, s = _follow(m, v_go, v_tile, v_sel, _ADD_STAGES, "a")

        # Stage W: accumulate in increasing k order; tile end -> result, restart at +0.
        wdata = Signal(32)
        m.d.comb += wdata.eq(Mux(tile, 0, add.s))
        for j in range(n):
            # The accumulator restarts at +0 after a reset; a result is read only
            # when the array's row marker says it is new, so it needs no reset.
            res = Signal(32, name=f"res{j}", reset_less=True)
            m.d.comb += self.results[j].eq(res)
            with m.If(go & (s == j)):
                m.d.sync += self.acc[j].eq(wdata)
                with m.If(tile):
                    m.d.sync += res.eq(add.s)
        return m
