"""Element lanes and exact product terms of the K-wide PE (``docs/ttu.md``, issue 18).

A beat of one array row (or column) is ``k`` element lanes. Every lane decodes
once at the array edge (:class:`KOperandDecode`) into ``terms`` decoded elements:
lane ``l`` gives term ``l`` (with packing support term ``2l``, and its upper FP4/FP6
half term ``2l + 1``); in BF16 mode the first :func:`bf16_terms` lower-half terms
are BF16 elements instead (BF16 element ``i`` is bits ``[16i, 16i + 16)`` of the beat).
:class:`TermProducts` multiplies two such vectors term by term: ``k`` (or ``2k``)
narrow 8 x 8 mantissa products and exponent sums, exact.
"""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.common.bf16 import BF16_MAX_SHIFT, BF16ElementDecode
from hw.common.mx import max_mant, max_shift, narrow_of

from .pe import OperandDecode, _narrow_widths, _op_widths

__all__ = ["KSpec", "bf16_terms", "elem_layout", "term_layout", "KOperandDecode",
           "TermProducts"]


def bf16_terms(k):
    """BF16 elements per beat: ``k / 4``, at least 1 (the chip's FP8 : BF16 = 4 : 1)."""
    return max(1, k // 4)


class KSpec:
    """Static shape of a K-wide datapath (widths derived from the supported formats).

    Parameters
    ----------
    k : int
        FP8/INT8 lanes per beat.
    formats : tuple of str
        MX element formats supported at run time.
    packed : bool
        12-bit lanes carrying two FP4/FP6 elements (``2k`` terms per beat).
    bf16 : bool
        BF16 x BF16 support (:func:`bf16_terms` terms per beat).
    block : int
        MX scale block (16 or 32 elements).
    """

    def __init__(self, *, k, formats, packed, bf16, block):
        self.k, self.formats, self.packed, self.bf16, self.block = k, formats, packed, bf16, block
        self.lane = 12 if packed else 8
        self.terms = 2 * k if packed else k
        self.n_bf16 = bf16_terms(k) if bf16 else 0
        #: Bits of one row's beat: k lanes, or at least one BF16 element.
        self.data_width = max(k * self.lane, 16 * self.n_bf16)
        #: Blocks per beat at most (the slots of the PE): one block when it spans beats.
        self.slots = max(1, self.terms // block)
        #: Terms summed into one slot's segment.
        self.seg = min(self.terms, block)
        # MX lanes arrive pre-shifted from the edge (hw.ttu.pe.OperandDecode): an element
        # is m0 = mant << shift[3:0] (<= 18 bits, one DSP multiply per product) and
        # hi = shift[4] (E5M2), so a product only needs a coarse shift by 16 * (hiA + hiB).
        # Packed upper halves are (mant <= 4 bits, shift <= 6): a LUT product and shift.
        w0, self.has_hi, _ = _op_widths(formats, packed)
        self.wide_mant = w0
        self.narrow_mant, self.narrow_shift = _narrow_widths(formats) if packed else (1, 1)
        self.mant_width = max(8 if bf16 else 0, w0)
        self.shift_width = max(1, self.narrow_shift if packed else 1,
                               BF16_MAX_SHIFT.bit_length() if bf16 else 0)
        big = max(max_mant(f) << max_shift(f) for f in formats)
        narrow = narrow_of(formats)
        nbig = max((max_mant(f) << max_shift(f) for f in narrow), default=0)
        bbig = 255 << BF16_MAX_SHIFT
        # Largest |product| of each term position.
        self.term_max = []
        for t in range(self.terms):
            v = nbig * nbig if (packed and t % 2) else big * big
            if self.bf16_index(t) is not None:
                v = max(v, bbig * bbig)
            self.term_max.append(v)
        # Largest exact block / group sum: MX block of `block` products, BF16 group of 8.
        self.sum_max = max(big * big * block, bbig * bbig * 8 if bf16 else 0)

    def bf16_index(self, t):
        """BF16 element carried by term ``t`` in BF16 mode, or None (BF16 element ``i``
        is term ``i`` or, with packing, ``2i``: never a narrow upper half)."""
        step = 2 if self.packed else 1
        i, r = divmod(t, step)
        return i if r == 0 and i < self.n_bf16 else None

    def narrow(self, t):
        """Term ``t`` is the upper FP4/FP6 half of a packed lane."""
        return self.packed and t % 2 == 1

    def seg_max(self, s):
        return sum(self.term_max[s * self.seg:(s + 1) * self.seg])

    def term_width(self, t):
        return self.term_max[t].bit_length() + 1

    @property
    def sum_width(self):
        return self.sum_max.bit_length() + 1


def elem_layout(spec):
    """One decoded element. MX lane: ``mant`` = m0 (pre-shifted), ``shift`` = hi (units
    of 16); packed upper half: ``mant * 2**shift``; BF16: ``mant * 2**shift``."""
    return data.StructLayout({"sign": 1, "mant": spec.mant_width, "shift": spec.shift_width,
                              "nan": 1, "inf": 1, "zero": 1})


def term_layout(spec):
    """One exact product: ``(-1)**neg * p * 2**e`` plus its NaN / Inf class."""
    return data.StructLayout({"neg": 1, "p": 2 * spec.mant_width, "e": spec.shift_width + 1,
                              "nan": 1, "inf": 1})


class KOperandDecode(wiring.Component):
    """Decode one row's (or column's) beat into ``spec.terms`` elements (combinational).

    Parameters
    ----------
    spec : KSpec

    Attributes
    ----------
    code : In(spec.data_width)
        ``k`` lanes of ``spec.lane`` bits, lane 0 lowest.
    select : In(3)
        MX format select (``hw.common.mx.FORMAT_SELECT``).
    pack : In(1)
        Upper lane halves carry a second FP4/FP6 element.
    bf16 : In(1)
        BF16 mode (``spec.bf16`` only).
    elems : Out(ArrayLayout(elem_layout, spec.terms))
        Term ``t``'s element; all-zero for unused terms.
    """

    def __init__(self, *, spec):
        self._spec = spec
        super().__init__({
            "code": In(spec.data_width), "select": In(3), "pack": In(1), "bf16": In(1),
            "elems": Out(data.ArrayLayout(elem_layout(spec), spec.terms)),
        })

    def elaborate(self, platform):
        m = Module()
        sp = self._spec
        step = 2 if sp.packed else 1
        for lane in range(sp.k):
            m.submodules[f"dec{lane}"] = d = OperandDecode(formats=sp.formats, packed=sp.packed)
            use = ~self.bf16
            m.d.comb += [d.code.eq(self.code[lane * sp.lane:(lane + 1) * sp.lane]),
                         d.select.eq(self.select), d.pack.eq(self.pack)]
            op = d.op
            hi = op.hi if sp.has_hi else 0
            halves = [(0, Cat(op.s0, op.m0, hi, op.nan, op.inf, op.zero))]
            if sp.packed:
                halves.append((1, Cat(op.s1, op.m1, op.e1, 0, 0, op.m1 == 0)))
            for h, bits in halves:
                t = lane * step + h
                mx_el = Signal(elem_layout(sp), name=f"mx{t}")
                mv = Signal(elem_layout(sp), name=f"mxraw{t}")
                wm = sp.narrow_mant if h else sp.wide_mant
                ws = sp.narrow_shift if h else 1
                m.d.comb += [mv.sign.eq(bits[0]), mv.mant.eq(bits[1:1 + wm]),
                             mv.shift.eq(bits[1 + wm:1 + wm + ws] if (h or sp.has_hi) else 0),
                             mv.nan.eq(bits[-3]), mv.inf.eq(bits[-2]), mv.zero.eq(bits[-1])]
                m.d.comb += mx_el.eq(Mux(use, mv, 0))
                with m.If(~use):
                    m.d.comb += mx_el.zero.eq(1)
                bi = sp.bf16_index(t)
                if bi is not None:
                    m.submodules[f"bf{t}"] = b = BF16ElementDecode()
                    m.d.comb += b.code.eq(self.code[16 * bi:16 * bi + 16])
                    with m.If(self.bf16):
                        e = self.elems[t]
                        m.d.comb += [e.sign.eq(b.sign), e.mant.eq(b.mant), e.shift.eq(b.shift),
                                     e.nan.eq(b.nan), e.inf.eq(b.inf), e.zero.eq(b.zero)]
                    with m.Else():
                        m.d.comb += self.elems[t].eq(mx_el)
                else:
                    m.d.comb += self.elems[t].eq(mx_el)
        return m


class TermProducts(wiring.Component):
    """Exact element products, term by term (combinational).

    ``p = mantA * mantB`` (an 8 x 8 multiply at most, in LUTs), ``e = shiftA +
    shiftB``, ``neg = signA ^ signB``; ``nan`` for a NaN element or Inf x 0,
    ``inf`` for Inf x finite non-zero.

    Parameters
    ----------
    spec : KSpec

    Attributes
    ----------
    a, b : In(ArrayLayout(elem_layout, spec.terms))
    terms : Out(ArrayLayout(term_layout, spec.terms))
    """

    def __init__(self, *, spec):
        self._spec = spec
        el = data.ArrayLayout(elem_layout(spec), spec.terms)
        super().__init__({"a": In(el), "b": In(el),
                          "terms": Out(data.ArrayLayout(term_layout(spec), spec.terms))})

    def elaborate(self, platform):
        m = Module()
        sp = self._spec
        for t in range(sp.terms):
            a, b, o = self.a[t], self.b[t], self.terms[t]
            nan = a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)
            if sp.narrow(t):
                # A <= 4 x 4 product from shifted partial products: no DSP slice.
                w = sp.narrow_mant
                p = sum(Mux(a.mant[i], b.mant[:w] << i, 0) for i in range(w))
            else:
                p = a.mant * b.mant  # 18 x 18 at most: one MULT18X18D
            m.d.comb += [o.neg.eq(a.sign ^ b.sign), o.p.eq(p),
                         o.e.eq(a.shift + b.shift), o.nan.eq(nan),
                         o.inf.eq((a.inf | b.inf) & ~nan)]
        return m
