"""Exponent-aligned exact fixed-point adder tree of the K-wide PE.

Every product term ``(-1)**neg * p * 2**e`` is shifted to its place on one fixed
point grid (weight 1 = the lsb product of the formats) and the terms are summed
exactly, in ``spec.slots`` segments of ``spec.seg`` terms (one MX block each when a
beat holds several blocks). No bit is dropped, so the segment sums are the exact
integers of the golden model (``sim.mx.mx_gemm``, ``sim.mx.bf16_gemm``) for any K.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .kterm import term_layout

__all__ = ["AlignedSum", "seg_flags_layout"]


def seg_flags_layout():
    return data.StructLayout({"nan": 1, "pinf": 1, "ninf": 1})


class AlignedSum(wiring.Component):
    """Combinational exact sum of the product terms, per segment.

    Parameters
    ----------
    spec : hw.ttu.kterm.KSpec

    Attributes
    ----------
    terms : In(ArrayLayout(term_layout, spec.terms))
    sums : Out(signed) per segment, exposed as ``self.sums[s]``
    flags : Out(ArrayLayout(seg_flags_layout, spec.slots))
        Any NaN term; any +Inf / -Inf term of the segment.
    bf16 : In(1)
        BF16 mode: the first terms carry a full shift (MX lanes only a coarse one).
    """

    def __init__(self, *, spec):
        self._spec = spec
        self.seg_width = max(spec.seg_max(s) for s in range(spec.slots)).bit_length() + 1
        super().__init__({
            "terms": In(data.ArrayLayout(term_layout(spec), spec.terms)),
            "sums": Out(data.ArrayLayout(signed(self.seg_width), spec.slots)),
            "flags": Out(data.ArrayLayout(seg_flags_layout(), spec.slots)),
            "bf16": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        sp = self._spec
        vals = []
        for t in range(sp.terms):
            tm = self.terms[t]
            w = sp.term_width(t)
            mag = Signal(w - 1, name=f"mag{t}")
            if sp.narrow(t):
                m.d.comb += mag.eq(tm.p << tm.e[:sp.narrow_shift + 1])
            else:
                # MX lane product: coarse shift 16 * (hiA + hiB) only (0, 16 or 32).
                coarse = tm.p
                if sp.has_hi:
                    coarse = Mux(tm.e[1], tm.p << 32, Mux(tm.e[0], tm.p << 16, tm.p))
                if sp.bf16_index(t) is not None:
                    m.d.comb += mag.eq(Mux(self.bf16, tm.p << tm.e, coarse))
                else:
                    m.d.comb += mag.eq(coarse)
            # Ones' complement of a negative product; the +1 of each is added once per
            # segment (the count of negative terms) instead of a negation per term.
            ext = Signal(signed(w), name=f"ext{t}")
            v = Signal(signed(w), name=f"term{t}")
            m.d.comb += [ext.eq(mag), v.eq(ext ^ tm.neg.replicate(w))]
            vals.append(v)
        for s in range(sp.slots):
            part = vals[s * sp.seg:(s + 1) * sp.seg]
            # Exact, so any order: narrow terms (packed halves, ~20 bits) pair among
            # themselves first instead of widening a full-width adder each.
            part = sorted(part, key=lambda v: -len(v))
            # Balanced tree of two-input adders (each node one carry chain).
            negs = [self.terms[t].neg for t in range(s * sp.seg, (s + 1) * sp.seg)]
            ones = Signal(range(len(negs) + 1), name=f"negs{s}")
            m.d.comb += ones.eq(sum(negs))
            part.append(Cat(ones, 0).as_signed())
            while len(part) > 1:
                part = [part[i] + part[i + 1] if i + 1 < len(part) else part[i]
                        for i in range(0, len(part), 2)]
            terms = [self.terms[t] for t in range(s * sp.seg, (s + 1) * sp.seg)]
            m.d.comb += [
                self.sums[s].eq(part[0]),
                self.flags[s].nan.eq(_any(t.nan for t in terms)),
                self.flags[s].pinf.eq(_any(t.inf & ~t.neg for t in terms)),
                self.flags[s].ninf.eq(_any(t.inf & t.neg for t in terms)),
            ]
        return m


def _any(values):
    out = 0
    for v in values:
        out = out | v
    return out
