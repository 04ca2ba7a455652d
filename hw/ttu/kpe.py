"""K-wide output-stationary PE: one K-long MX block dot product per cycle (issue 18).

Pipeline (:data:`KPE_LATENCY` cycles from a beat on ``a_in`` to ``result``):

1. P: :class:`~hw.ttu.kterm.TermProducts`, ``k`` (``2k`` packed) narrow exact
   products, registered;
2. T: :class:`~hw.ttu.ktree.AlignedSum`, the exponent-aligned exact sum of the
   beat per segment, registered;
3. B: the slots of the beat (one MX block per slot when a beat holds several
   blocks; else slot 0 accumulates the exact block sum over ``block / E`` beats);
   on ``blk_last`` the exact block sums leave with their scales and flags;
4. R: one :class:`~hw.ttu.fp32.IntToFP32` per slot, ``S * 2**(lsbA + lsbB + sA +
   sB - 254)`` (BF16: ``S * 2**-266``) rounded once (2 register stages);
5. F: FP32 accumulation (:class:`~hw.ttu.fp32.FP32Add`, combinational, in slot
   order = increasing k) into the accumulator; on ``tile_last`` the result
   register takes the sum and the accumulator restarts at +0.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.common.bf16 import BF16_LSB
from hw.common.mx import ALL_FORMATS, format_lsb

from .fp32 import FP32Add, IntToFP32
from .kterm import KSpec, TermProducts, elem_layout
from .ktree import AlignedSum

__all__ = ["KPE", "KPE_LATENCY", "ka_layout", "kb_layout", "cfg_layout"]

_ROUND_STAGES = 2
#: Cycles from a beat on ``a_in`` to its effect on ``result`` (tile end).
KPE_LATENCY = 3 + _ROUND_STAGES + 1


def ka_layout(spec):
    """Horizontal link: decoded beat, one scale per slot, control."""
    return data.StructLayout({
        "valid": 1,
        "elems": data.ArrayLayout(elem_layout(spec), spec.terms),
        "scale": data.ArrayLayout(8, spec.slots),
        "blk_last": 1, "tile_last": 1,
    })


def kb_layout(spec):
    """Vertical link."""
    return data.StructLayout({"elems": data.ArrayLayout(elem_layout(spec), spec.terms),
                              "scale": data.ArrayLayout(8, spec.slots)})


def cfg_layout():
    """Run-time configuration, static while a GEMM is in flight."""
    return data.StructLayout({"fmt_a": 3, "fmt_b": 3, "pack": 1, "bf16": 1})


class KPE(wiring.Component):
    """K-wide MX/BF16 processing element (exact block sums, one rounding per block).

    Parameters
    ----------
    spec : hw.ttu.kterm.KSpec
        Shape (``k``, formats, packing, BF16, block).

    Attributes
    ----------
    a_in, a_out : In/Out(ka_layout(spec))
    b_in, b_out : In/Out(kb_layout(spec))
        Registered pass-through links.
    cfg : In(cfg_layout())
    result : Out(32)
        FP32 result of the last finished tile (held until the next one).
    """

    def __init__(self, *, spec):
        if not isinstance(spec, KSpec):
            raise TypeError(f"spec must be a KSpec, not {spec!r}")
        self._spec = spec
        super().__init__({
            "a_in": In(ka_layout(spec)), "b_in": In(kb_layout(spec)),
            "a_out": Out(ka_layout(spec)), "b_out": Out(kb_layout(spec)),
            "cfg": In(cfg_layout()),
            "result": Out(32),
        })
        # Exposed for the formal checks.
        self.blk_sum = Signal(signed(spec.sum_width), reset_less=True)
        self.acc = Signal(32)
        self.blk_valid = Signal()

    def elaborate(self, platform):
        m = Module()
        sp = self._spec
        S = sp.slots
        a, b, cfg = self.a_in, self.b_in, self.cfg
        a_q = Signal(a.shape(), reset_less=True)
        b_q = Signal(b.shape(), reset_less=True)
        a_valid = Signal()
        m.d.sync += [a_q.eq(a), b_q.eq(b), a_valid.eq(a.valid)]
        m.d.comb += [self.a_out.eq(a_q), self.a_out.valid.eq(a_valid), self.b_out.eq(b_q)]

        ctrl = data.StructLayout({"valid": 1, "blk_last": 1, "tile_last": 1,
                                  "sa": data.ArrayLayout(8, S), "sb": data.ArrayLayout(8, S)})

        def ctl_reg(src, name):
            r = Signal(ctrl, name=name)
            m.d.sync += r.eq(src)
            return r

        # Stage P: exact products.
        m.submodules.prod = prod = TermProducts(spec=sp)
        m.d.comb += [prod.a.eq(a.elems), prod.b.eq(b.elems)]
        p_terms = Signal(prod.terms.shape(), reset_less=True)
        m.d.sync += p_terms.eq(prod.terms)
        c0 = Signal(ctrl)
        m.d.comb += [c0.valid.eq(a.valid), c0.blk_last.eq(a.blk_last),
                     c0.tile_last.eq(a.tile_last), c0.sa.eq(a.scale), c0.sb.eq(b.scale)]
        p_ctl = ctl_reg(c0, "p_ctl")

        # Stage T: exact aligned segment sums.
        m.submodules.tree = tree = AlignedSum(spec=sp)
        m.d.comb += [tree.terms.eq(p_terms), tree.bf16.eq(cfg.bf16)]
        t_sums = Signal(tree.sums.shape(), reset_less=True)
        t_flags = Signal(tree.flags.shape(), reset_less=True)
        m.d.sync += [t_sums.eq(tree.sums), t_flags.eq(tree.flags)]
        t_ctl = ctl_reg(p_ctl, "t_ctl")

        # Stage B: slots of the beat. Level l of the segment tree sums 2**l segments;
        # MX with packed lanes but unpacked data puts one block on 2 segments, BF16
        # (one group of 8 per beat at most) and single-slot shapes use the total.
        levels = [[(t_sums[s], t_flags[s].as_value()) for s in range(S)]]
        while len(levels[-1]) > 1:
            prev = levels[-1]
            levels.append([(prev[i][0] + prev[i + 1][0], prev[i][1] | prev[i + 1][1])
                           for i in range(0, len(prev), 2)])
        top = len(levels) - 1
        level = Signal(range(max(top + 1, 2)))
        nslots = Signal(range(S + 1))
        with m.If(cfg.bf16):
            m.d.comb += [level.eq(top), nslots.eq(1)]
        with m.Elif(~cfg.pack & sp.packed & (top >= 1)):
            m.d.comb += [level.eq(1), nslots.eq(S // 2)]
        with m.Else():
            m.d.comb += [level.eq(0), nslots.eq(S)]
        width = sp.sum_width
        slot_v = [Signal(signed(width), name=f"slot{j}") for j in range(S)]
        slot_f = [Signal(3, name=f"slot{j}_flags") for j in range(S)]
        for j in range(S):
            with m.Switch(level):
                for lv, nodes in enumerate(levels):
                    if j < len(nodes):
                        with m.Case(lv):
                            m.d.comb += [slot_v[j].eq(nodes[j][0]), slot_f[j].eq(nodes[j][1])]
        # Slot 0 accumulates a block that spans beats; the sum restarts after a block end.
        flags0 = Signal(3)
        total0 = Signal(signed(width))
        m.d.comb += total0.eq(self.blk_sum + slot_v[0])
        end = t_ctl.valid & t_ctl.blk_last
        with m.If(t_ctl.valid):
            m.d.sync += [self.blk_sum.eq(Mux(t_ctl.blk_last, 0, total0)),
                         flags0.eq(Mux(t_ctl.blk_last, 0, flags0 | slot_f[0]))]
        lsb = Signal(signed(11))
        m.d.comb += lsb.eq(Mux(cfg.bf16, 2 * BF16_LSB + 254,
                               format_lsb(m, cfg.fmt_a, sp.formats)
                               + format_lsb(m, cfg.fmt_b, sp.formats)))
        blk = data.StructLayout({"sum": signed(width), "exp": signed(11), "flags": 3})
        x = [Signal(blk, name=f"x{j}", reset_less=True) for j in range(S)]
        x_go = Signal()
        x_tile = Signal(reset_less=True)
        x_mask = Signal(S, reset_less=True)
        m.d.sync += [x_go.eq(end), x_tile.eq(t_ctl.tile_last)]
        m.d.comb += self.blk_valid.eq(x_go)
        for j in range(S):
            sa, sb = t_ctl.sa[j], t_ctl.sb[j]
            nan_scale = ~cfg.bf16 & ((sa == 0xFF) | (sb == 0xFF))
            f = (flags0 | slot_f[0]) if j == 0 else slot_f[j]
            m.d.sync += [
                x[j].sum.eq(total0 if j == 0 else slot_v[j]),
                x[j].exp.eq(Mux(cfg.bf16, 0, sa + sb) + lsb - 254),
                x[j].flags.eq(f | nan_scale),
                x_mask[j].eq(j < nslots),
            ]

        # Stage R: one rounding per block.
        vals = []
        for j in range(S):
            m.submodules[f"round{j}"] = rnd = IntToFP32(width=width, exp_width=11,
                                                        pipelined=_ROUND_STAGES)
            m.d.comb += [rnd.value.eq(x[j].sum), rnd.exp.eq(x[j].exp), rnd.nan.eq(x[j].flags[0]),
                         rnd.pinf.eq(x[j].flags[1]), rnd.ninf.eq(x[j].flags[2])]
            vals.append(rnd.result)
        go, tile, mask = x_go, x_tile, x_mask
        for i in range(_ROUND_STAGES):
            g2, t2, k2 = Signal(name=f"r_go{i}"), Signal(name=f"r_tile{i}", reset_less=True), \
                Signal(S, name=f"r_mask{i}", reset_less=True)
            m.d.sync += [g2.eq(go), t2.eq(tile), k2.eq(mask)]
            go, tile, mask = g2, t2, k2

        # Stage F: FP32 accumulation in slot order (increasing k).
        chain = self.acc
        for j in range(S):
            m.submodules[f"add{j}"] = add = FP32Add()
            m.d.comb += [add.a.eq(chain), add.b.eq(vals[j])]
            nxt = Signal(32, name=f"chain{j}")
            m.d.comb += nxt.eq(Mux(mask[j], add.s, chain))
            chain = nxt
        res = Signal(32, reset_less=True)
        m.d.comb += self.result.eq(res)
        with m.If(go):
            m.d.sync += self.acc.eq(Mux(tile, 0, chain))
            with m.If(tile):
                m.d.sync += res.eq(chain)
        return m
