"""TTU controller: weight buffer, activation replay and tile sequencing around the array.

A GEMM ``C[M, N] = A[M, K] @ B[K, N]`` (MX codes + E8M0 scales, K padded by the
host to a multiple of the scale block with zero codes) runs as:

1. ``cmd_stream``: one beat with formats, packing, block size and the tile counts;
2. ``w_stream``: the weights, ``n_tiles * k_beats`` beats (column tile major), into
   the weight buffer;
3. ``a_stream``: the activations, ``m_tiles * k_beats`` beats (row tile major). The
   first column tile of each row tile consumes the stream directly (and keeps a
   copy); the other column tiles replay the copy, so every activation crosses the
   port once;
4. ``o_stream``: FP32 results, one tile row (``cols`` values) per beat, tiles in
   (row tile, column tile) order, ``last`` on each tile's last row.

A bad command (unsupported format, packing with a non-FP4/FP6 format, ``k_beats``
out of range or not a whole number of blocks, zero tiles) is dropped and counted
in ``errors``; the controller stays idle and takes the next command.
"""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common.counter import saturating_add
from hw.common.mx import ALL_FORMATS, FORMAT_SELECT, narrow_of
from hw.common.params import check_choice, check_int

from .array import SystolicArray, row_layout
from .pe import lane_width

__all__ = ["TTU", "cmd_layout", "operand_layout"]


def cmd_layout(max_k_beats, max_n_tiles):
    return data.StructLayout({
        "fmt_a": 3,
        "fmt_b": 3,
        "pack": 1,        # two FP4/FP6 elements per lane
        "block32": 1,     # scale block of 32 elements (else 16)
        "k_beats": range(max_k_beats + 1),
        "n_tiles": range(max_n_tiles + 1),
        "m_tiles": 16,
    })


def operand_layout(lanes, packed):
    """One k step of ``lanes`` rows (activations) or columns (weights)."""
    return data.StructLayout({
        "data": data.ArrayLayout(lane_width(packed), lanes),
        "scale": data.ArrayLayout(8, lanes),
    })


class TTU(wiring.Component):
    """MX tensor unit: controller + ``rows x cols`` output-stationary array.

    Parameters
    ----------
    rows, cols : int
        Array size.
    formats : tuple of str
        Supported element formats.
    block : int
        Largest scale block (16 or 32).
    packed : bool
        Support two FP4/FP6 pairs per lane (2x MAC rate).
    max_k_beats : int
        Weight/activation buffer depth in beats per tile (K / lanes per beat).
    max_n_tiles : int
        Column tiles held in the weight buffer.

    Attributes
    ----------
    cmd_stream : In(stream.Signature(cmd_layout))
    w_stream : In(stream.Signature(operand_layout(cols)))
    a_stream : In(stream.Signature(operand_layout(rows)))
    o_stream : Out(stream.Signature(row_layout(rows, cols)))
    busy : Out(1)
        A command is being executed (results may still be draining after it drops).
    errors : Out(8)
        Number of rejected commands (saturating).
    """

    def __init__(self, *, rows=8, cols=8, formats=ALL_FORMATS, block=32, packed=True,
                 max_k_beats=64, max_n_tiles=4):
        self._rows = check_int("rows", rows, min=1, max=64)
        self._cols = check_int("cols", cols, min=1, max=64)
        self._block = check_choice("block", block, (16, 32))
        self._packed = bool(packed)
        self._formats = tuple(formats)
        self._max_k = check_int("max_k_beats", max_k_beats, min=1, max=4096)
        self._max_n = check_int("max_n_tiles", max_n_tiles, min=1, max=256)
        self.array = SystolicArray(rows=rows, cols=cols, formats=self._formats, block=block,
                                   packed=self._packed)
        super().__init__({
            "cmd_stream": In(stream.Signature(cmd_layout(self._max_k, self._max_n))),
            "w_stream": In(stream.Signature(operand_layout(cols, self._packed))),
            "a_stream": In(stream.Signature(operand_layout(rows, self._packed))),
            "o_stream": Out(stream.Signature(row_layout(rows, cols))),
            "busy": Out(1),
            "errors": Out(8),
        })

    def _fmt_ok(self, sel, allowed):
        return Cat(*[sel == FORMAT_SELECT[f] for f in allowed]).any()

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        packed = self._packed
        m.submodules.array = arr = self.array
        wiring.connect(m, arr.o_stream, wiring.flipped(self.o_stream))

        wl = operand_layout(C, packed)
        al = operand_layout(R, packed)
        m.submodules.wmem = wmem = Memory(shape=wl, depth=self._max_k * self._max_n, init=[])
        m.submodules.amem = amem = Memory(shape=al, depth=max(self._max_k, 2), init=[])
        w_wr = wmem.write_port()
        w_rd = wmem.read_port(domain="comb")
        a_wr = amem.write_port()
        a_rd = amem.read_port(domain="comb")

        cfg = Signal(self.cmd_stream.payload.shape())
        blk_beats = Signal(range(33))
        kb = Signal(range(self._max_k + 1))       # beat within the tile
        kblk = Signal(range(33))                   # beat within the block
        nt = Signal(range(self._max_n + 1))
        mt = Signal(16)
        wbase = Signal(range(self._max_k * self._max_n + 1))
        waddr = Signal(range(self._max_k * self._max_n + 1))
        gap = Signal(range(max(R, C) + 1))
        m.d.comb += [arr.fmt_a.eq(cfg.fmt_a), arr.fmt_b.eq(cfg.fmt_b), arr.pack.eq(cfg.pack)]

        c = self.cmd_stream.payload
        narrow = narrow_of(self._formats)
        pack_ok = ~c.pack | (self._fmt_ok(c.fmt_a, narrow) & self._fmt_ok(c.fmt_b, narrow))
        if not packed:
            pack_ok = ~c.pack
        cmd_blk = Signal(range(33))
        m.d.comb += cmd_blk.eq(Mux(c.block32 & (self._block == 32), 32, 16) >> c.pack)
        aligned = Signal()
        m.d.comb += aligned.eq(Mux(cmd_blk == 16, c.k_beats[:4] == 0,
                                   Mux(cmd_blk == 32, c.k_beats[:5] == 0, c.k_beats[:3] == 0)))
        good = (self._fmt_ok(c.fmt_a, self._formats) & self._fmt_ok(c.fmt_b, self._formats)
                & pack_ok & aligned & (c.k_beats != 0) & (c.k_beats <= self._max_k)
                & (c.n_tiles != 0) & (c.n_tiles <= self._max_n) & (c.m_tiles != 0)
                & (~c.block32 | (self._block == 32)))

        from_stream = nt == 0
        ap = Signal(al)
        m.d.comb += ap.eq(Mux(from_stream, self.a_stream.payload, a_rd.data))
        wp = arr.i_stream.payload
        m.d.comb += [
            a_rd.addr.eq(kb),
            w_rd.addr.eq(wbase + kb),
            a_wr.addr.eq(kb),
            a_wr.data.eq(self.a_stream.payload),
            w_wr.addr.eq(waddr),
            w_wr.data.eq(self.w_stream.payload),
            wp.a_data.eq(ap.data), wp.a_scale.eq(ap.scale),
            wp.b_data.eq(w_rd.data.data), wp.b_scale.eq(w_rd.data.scale),
            wp.blk_last.eq(kblk == blk_beats - 1),
            wp.tile_last.eq(kb == cfg.k_beats - 1),
        ]
        issue = arr.i_stream.valid & arr.i_stream.ready

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd_stream.ready.eq(1)
                with m.If(self.cmd_stream.valid):
                    with m.If(good):
                        m.d.sync += [cfg.eq(c), blk_beats.eq(cmd_blk), waddr.eq(0)]
                        m.next = "LOAD"
                    with m.Else():
                        saturating_add(m, self.errors)
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.w_stream.ready.eq(1),
                             w_wr.en.eq(self.w_stream.valid)]
                with m.If(self.w_stream.valid):
                    m.d.sync += waddr.eq(waddr + 1)
                    with m.If(waddr == cfg.k_beats * cfg.n_tiles - 1):
                        m.d.sync += [kb.eq(0), kblk.eq(0), nt.eq(0), mt.eq(0), wbase.eq(0),
                                     gap.eq(0)]
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(gap != 0):
                    # Idle cycles so that consecutive tiles are >= max(R, C) apart.
                    with m.If(arr.i_stream.ready):
                        m.d.sync += gap.eq(gap - 1)
                with m.Else():
                    m.d.comb += [
                        arr.i_stream.valid.eq(Mux(from_stream, self.a_stream.valid, 1)),
                        self.a_stream.ready.eq(from_stream & arr.i_stream.ready),
                        a_wr.en.eq(from_stream & issue),
                    ]
                    with m.If(issue):
                        m.d.sync += [kb.eq(kb + 1),
                                     kblk.eq(Mux(kblk == blk_beats - 1, 0, kblk + 1))]
                        with m.If(kb == cfg.k_beats - 1):
                            m.d.sync += [kb.eq(0), kblk.eq(0),
                                         gap.eq(Mux(cfg.k_beats < max(R, C),
                                                    max(R, C) - cfg.k_beats, 0))]
                            with m.If(nt == cfg.n_tiles - 1):
                                m.d.sync += [nt.eq(0), wbase.eq(0), mt.eq(mt + 1)]
                                with m.If(mt == cfg.m_tiles - 1):
                                    m.next = "DONE"
                            with m.Else():
                                m.d.sync += [nt.eq(nt + 1), wbase.eq(wbase + cfg.k_beats)]
            with m.State("DONE"):
                # Keep the spacing rule across commands too.
                m.d.comb += self.busy.eq(1)
                with m.If(gap == 0):
                    m.next = "IDLE"
                with m.Elif(arr.i_stream.ready):
                    m.d.sync += gap.eq(gap - 1)
        return m
