"""Element lanes and exact product terms of the K-wide PE (``docs/ttu.md``, issue 18).

A beat of one array row (or column) is ``k`` element lanes. Every lane decodes
once at the array edge (:class:`KOperandDecode`) into ``terms`` decoded elements:
lane ``l`` gives term ``2l`` (and, with packing support, its upper FP4/FP6 half
term ``2l + 1``); in BF16 mode the first :func:`bf16_terms` terms are BF16
elements instead (BF16 element ``i`` is bits ``[16i, 16i + 16)`` of the beat).
:class:`TermProducts` multiplies two such vectors term by term: ``k`` (or ``2k``)
narrow 8 x 8 mantissa products and exponent sums, exact.
"""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.common.bf16 import BF16_MAX_SHIFT, BF16ElementDecode
from hw.common.mx import FORMAT_SELECT, MXElementDecode, max_mant, max_shift, narrow_of

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
        self.mant_width = max(8 if bf16 else 0, max(max_mant(f) for f in formats).bit_length())
        sh = max(max_shift(f) for f in formats)
        self.shift_width = max(1, max(sh, BF16_MAX_SHIFT if bf16 else 0).bit_length())
        big = max(max_mant(f) << max_shift(f) for f in formats)
        narrow = narrow_of(formats)
        nbig = max((max_mant(f) << max_shift(f) for f in narrow), default=0)
        bbig = 255 << BF16_MAX_SHIFT
        # Largest |product| of each term position.
        self.term_max = []
        for t in range(self.terms):
            v = nbig * nbig if (packed and t % 2) else big * big
            if t < self.n_bf16:
                v = max(v, bbig * bbig)
            self.term_max.append(v)
        # Largest exact block / group sum: MX block of `block` products, BF16 group of 8.
        self.sum_max = max(big * big * block, bbig * bbig * 8 if bf16 else 0)

    def seg_max(self, s):
        return sum(self.term_max[s * self.seg:(s + 1) * self.seg])

    def term_width(self, t):
        return self.term_max[t].bit_length() + 1

    @property
    def sum_width(self):
        return self.sum_max.bit_length() + 1


def elem_layout(spec):
    """One decoded element: ``(-1)**sign * mant * 2**shift`` in units of its lsb."""
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
        el = elem_layout(sp)
        narrow = narrow_of(sp.formats)
        step = 2 if sp.packed else 1
        for lane in range(sp.k):
            bits = self.code[lane * sp.lane:(lane + 1) * sp.lane]
            halves = [(0, sp.formats, bits[:8])]
            if sp.packed:
                halves.append((1, narrow, bits[6:12]))
            for h, fmts, code in halves:
                t = lane * step + h
                m.submodules[f"dec{t}"] = d = MXElementDecode(formats=fmts)
                mx_el = Signal(el, name=f"mx{t}")
                use = ~self.bf16 & ~d.bad_format
                if h:
                    use = use & self.pack
                m.d.comb += [d.code.eq(code), d.select.eq(self.select)]
                m.d.comb += [mx_el.sign.eq(d.sign & use), mx_el.mant.eq(Mux(use, d.mant, 0)),
                             mx_el.shift.eq(Mux(use, d.shift, 0)), mx_el.nan.eq(d.nan & use),
                             mx_el.inf.eq(d.inf & use), mx_el.zero.eq(d.zero | ~use)]
                if t < sp.n_bf16:
                    m.submodules[f"bf{t}"] = b = BF16ElementDecode()
                    m.d.comb += b.code.eq(self.code[16 * t:16 * t + 16])
                    with m.If(self.bf16):
                        m.d.comb += self.elems[t].eq(Cat(b.sign, b.mant, b.shift, b.nan,
                                                         b.inf, b.zero))
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
        for t in range(self._spec.terms):
            a, b, o = self.a[t], self.b[t], self.terms[t]
            nan = a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)
            m.d.comb += [o.neg.eq(a.sign ^ b.sign), o.p.eq(a.mant * b.mant),
                         o.e.eq(a.shift + b.shift), o.nan.eq(nan),
                         o.inf.eq((a.inf | b.inf) & ~nan)]
        return m
