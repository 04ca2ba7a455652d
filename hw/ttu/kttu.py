"""``KTTU``: R x K x C tensor unit, a K-wide MX/BF16 dot product per PE per cycle (issue 18).

Alongside :class:`hw.ttu.TTU` (the K = 1 unit the tile still uses): the same
output-stationary wavefront scheme (:mod:`hw.ttu.array`) with K-wide links. One
input beat carries, per array row and column, ``k`` element lanes (12-bit lanes
with two FP4/FP6 elements when ``packed``; BF16: ``max(1, k/4)`` 16-bit elements)
and one E8M0 scale per block slot. Row ``i`` is skewed by ``i`` cycles and column
``j`` by ``j``; every lane is decoded once at the edge. Results leave as rows of
``cols`` FP32 values through an output FIFO with the same reservation rule as
:class:`hw.ttu.SystolicArray`: only a tile's last beat waits for room, the array
never stalls. Consecutive tiles must be at least ``max(rows, cols)`` beats apart.
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.counter import saturating_add
from hw.common.fifo import StreamFIFO
from hw.common.mx import ALL_FORMATS, FORMAT_SELECT, narrow_of
from hw.common.params import check_choice, check_int, check_pow2

from .array import out_depth, row_layout
from .kpe import KPE, KPE_LATENCY, cfg_layout, ka_layout, kb_layout
from .kterm import KOperandDecode, KSpec
from .pe import _check_formats

__all__ = ["KTTU", "kwave_layout", "KPIPELINE_LATENCY"]

#: Accepted beat -> PE (0, 0)'s result: input register, edge decode register, PE.
KPIPELINE_LATENCY = 2 + KPE_LATENCY


def kwave_layout(spec, rows, cols):
    """Payload of the input stream: one beat of every row and column."""
    sc = data.ArrayLayout(8, spec.slots)
    return data.StructLayout({
        "a_data": data.ArrayLayout(spec.data_width, rows),
        "a_scale": data.ArrayLayout(sc, rows),
        "b_data": data.ArrayLayout(spec.data_width, cols),
        "b_scale": data.ArrayLayout(sc, cols),
        "blk_last": 1,   # last beat of a block (every beat when a beat holds whole blocks)
        "tile_last": 1,  # last beat of the output tile
    })


class KTTU(wiring.Component):
    """R x K x C output-stationary tensor unit with K-wide PEs.

    Parameters
    ----------
    rows, cols : int
        Array size (1..64).
    k : int
        FP8/INT8 elements reduced per PE per cycle: a power of two, 1..32. FP4/FP6
        reduce ``2k`` (``packed``), BF16 ``max(1, k/4)``.
    formats : tuple of str
        MX element formats supported at run time.
    block : int
        MX scale block, 32 or 16 elements.
    packed : bool
        12-bit lanes with two FP4/FP6 elements (twice the rate).
    bf16 : bool
        BF16 x BF16 path (one exact group of 8 per rounding, ``docs/numerics.md``).
    depth : int or None
        Output FIFO rows (>= rows); ``None``: the least for full rate.

    Attributes
    ----------
    i_stream : In(stream.Signature(kwave_layout))
    o_stream : Out(stream.Signature(row_layout(rows, cols)))
    cfg : In(cfg_layout())
        ``fmt_a``, ``fmt_b``, ``pack``, ``bf16``; static while a GEMM is in flight.
    errors : Out(8)
        Tiles computed under an invalid configuration (unsupported format, packing
        with a non-FP4/FP6 format, BF16 without the path), saturating; such tiles'
        elements decode as zero.
    """

    def __init__(self, *, rows, cols, k, formats=ALL_FORMATS, block=32, packed=True,
                 bf16=True, depth=None):
        self._rows = check_int("rows", rows, min=1, max=64)
        self._cols = check_int("cols", cols, min=1, max=64)
        self._k = check_pow2("k", k, min=1, max=32)
        self._block = check_choice("block", block, (16, 32))
        self._packed = bool(packed)
        self._formats = _check_formats(formats, self._packed)
        self.spec = KSpec(k=k, formats=self._formats, packed=self._packed, bf16=bool(bf16),
                          block=block)
        self._depth = (out_depth(rows, cols, KPIPELINE_LATENCY) if depth is None
                       else check_int("depth", depth, min=rows, max=4096))
        self.pes = [[KPE(spec=self.spec) for _ in range(cols)] for _ in range(rows)]
        self.out_fifo = StreamFIFO(payload_shape=row_layout(rows, cols), depth=self._depth)
        super().__init__({
            "i_stream": In(stream.Signature(kwave_layout(self.spec, rows, cols))),
            "o_stream": Out(stream.Signature(row_layout(rows, cols))),
            "cfg": In(cfg_layout()),
            "errors": Out(8),
        })
        self.reserved = Signal(range(self._depth + 1))

    @property
    def depth(self):
        return self._depth

    @property
    def min_tile_beats(self):
        return max(self._rows, self._cols)

    def invariants(self):
        """Internal facts for k-induction (see ``formal/properties.py``)."""
        return [(self.out_fifo.level <= self.reserved, "rows_held_are_reserved"),
                (self.reserved <= self._depth, "reserved_in_range"),
                *self.out_fifo.invariants()]

    def _fmt_ok(self, sel, allowed):
        ok = 0
        for f in allowed:
            ok = ok | (sel == FORMAT_SELECT[f])
        return ok

    def elaborate(self, platform):
        m = Module()
        R, C, sp = self._rows, self._cols, self.spec
        cfg = self.cfg
        m.submodules.out = out = self.out_fifo
        wiring.connect(m, out.o_stream, wiring.flipped(self.o_stream))

        # Accepted beats; only a tile's last beat waits for room for its R rows.
        tile_end = self.i_stream.valid & self.i_stream.ready & self.i_stream.payload.tile_last
        pop = self.o_stream.valid & self.o_stream.ready
        m.d.sync += self.reserved.eq(self.reserved + Mux(tile_end, R, 0) - pop)
        m.d.comb += self.i_stream.ready.eq(~self.i_stream.payload.tile_last
                                           | (self.reserved <= self._depth - R))
        good = self._fmt_ok(cfg.fmt_a, self._formats) & self._fmt_ok(cfg.fmt_b, self._formats)
        narrow = narrow_of(self._formats)
        pack_ok = (~cfg.pack | (self._fmt_ok(cfg.fmt_a, narrow) & self._fmt_ok(cfg.fmt_b, narrow))
                   if self._packed else ~cfg.pack)
        good = Mux(cfg.bf16, int(sp.bf16), good & pack_ok)
        with m.If(tile_end & ~good):
            saturating_add(m, self.errors)

        iv = Signal()
        ip = Signal(self.i_stream.payload.shape(), reset_less=True)
        m.d.sync += [iv.eq(self.i_stream.valid & self.i_stream.ready),
                     ip.eq(self.i_stream.payload)]
        dcfg = Signal(cfg_layout())
        m.d.comb += [dcfg.eq(cfg), dcfg.pack.eq(cfg.pack & pack_ok)]

        al, bl = ka_layout(sp), kb_layout(sp)
        a_left = []
        for i in range(R):
            m.submodules[f"dec_a{i}"] = dec = KOperandDecode(spec=sp)
            m.d.comb += [dec.code.eq(ip.a_data[i]), dec.select.eq(cfg.fmt_a),
                         dec.pack.eq(dcfg.pack), dec.bf16.eq(cfg.bf16 & sp.bf16)]
            s = Signal(al, name=f"a_skew{i}_0", reset_less=True)
            v = Signal(name=f"a_valid{i}_0")
            m.d.sync += [v.eq(iv), s.elems.eq(dec.elems), s.scale.eq(ip.a_scale[i]),
                         s.blk_last.eq(ip.blk_last), s.tile_last.eq(ip.tile_last)]
            for d in range(i):
                t = Signal(al, name=f"a_skew{i}_{d + 1}", reset_less=True)
                tv = Signal(name=f"a_valid{i}_{d + 1}")
                m.d.sync += [t.eq(s), tv.eq(v)]
                s, v = t, tv
            left = Signal(al, name=f"a_left{i}")
            m.d.comb += [left.eq(s), left.valid.eq(v)]
            a_left.append(left)
        b_top = []
        for j in range(C):
            m.submodules[f"dec_b{j}"] = dec = KOperandDecode(spec=sp)
            m.d.comb += [dec.code.eq(ip.b_data[j]), dec.select.eq(cfg.fmt_b),
                         dec.pack.eq(dcfg.pack), dec.bf16.eq(cfg.bf16 & sp.bf16)]
            s = Signal(bl, name=f"b_skew{j}_0", reset_less=True)
            m.d.sync += [s.elems.eq(dec.elems), s.scale.eq(ip.b_scale[j])]
            for d in range(j):
                t = Signal(bl, name=f"b_skew{j}_{d + 1}", reset_less=True)
                m.d.sync += t.eq(s)
                s = t
            b_top.append(s)

        for i in range(R):
            for j in range(C):
                pe = self.pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [pe.a_in.eq(a_left[i] if j == 0 else self.pes[i][j - 1].a_out),
                             pe.b_in.eq(b_top[j] if i == 0 else self.pes[i - 1][j].b_out),
                             pe.cfg.eq(dcfg)]
        # Row i is final KPE_LATENCY cycles after its tile_last beat entered PE (i, C-1).
        row_ev = []
        for i in range(R):
            last = self.pes[i][C - 1].a_out
            ev = last.valid & last.tile_last
            for d in range(KPE_LATENCY - 1):
                t = Signal(name=f"row_ev{i}_{d}")
                m.d.sync += t.eq(ev)
                ev = t
            row_ev.append(ev)
        for j in range(C):
            col = 0
            for i in range(R):
                col = col | (self.pes[i][j].result & row_ev[i].replicate(32))
            m.d.comb += out.i_stream.payload.data[j].eq(col)
        any_ev = 0
        for i in range(R):
            any_ev = any_ev | row_ev[i]
            with m.If(row_ev[i]):
                m.d.comb += out.i_stream.payload.row.eq(i)
        m.d.comb += [out.i_stream.valid.eq(any_ev), out.i_stream.payload.last.eq(row_ev[R - 1])]
        return m
