"""Parameterised R x C output-stationary systolic array of MX PEs.

One input beat is a *wavefront*: the R activation lanes of one k step (A column)
and the C weight lanes of the same k step (B row), each with its block scale,
plus the ``blk_last``/``tile_last`` flags. The array skews row ``i`` by ``i``
cycles and column ``j`` by ``j`` cycles internally, so PE ``(i, j)`` sees
``A[i, k]`` and ``B[k, j]`` together. Results leave as rows of ``C`` FP32 values.

Timing (see ``docs/ttu.md``): the pipeline never stops. Result rows enter an
output FIFO at a fixed offset after their tile's last beat; a tile's last beat
is accepted only when the FIFO has room reserved for all R rows of that tile
(rows held plus rows still in flight), so output back-pressure stops the
input, never the array, and no row can be lost. With a consumer that is always
ready the FIFO (:func:`out_depth` rows) never refuses a tile. Consecutive tiles
must be at least ``max(R, C)`` beats apart (the controller pads with idle
cycles), which lets each row's results be read at a fixed offset after its last
PE finished, one row per cycle.
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.mx import ALL_FORMATS
from hw.common.params import check_choice, check_int
from hw.common.fifo import StreamFIFO

from .pe import GROUP, LATENCY, PE, BlockTail, OperandDecode, a_layout, b_layout, lane_width

__all__ = ["SystolicArray", "wavefront_layout", "row_layout", "out_depth", "PIPELINE_LATENCY"]

#: Cycles from an accepted input beat to PE (0, 0)'s result: the input register and
#: the edge decode register, then the PE link latency ``hw.ttu.pe.LATENCY``.
PIPELINE_LATENCY = 1 + LATENCY


def out_depth(rows, cols, latency=PIPELINE_LATENCY):
    """Output FIFO rows that let tiles ``max(rows, cols)`` beats apart flow at full rate.

    ``latency`` is the array's cycles from an accepted beat to PE (0, 0)'s result
    (this array's :data:`PIPELINE_LATENCY` by default; the K-wide array passes its own).

    Row ``i`` of a tile whose last beat was accepted in cycle ``t`` leaves the
    FIFO in cycle ``t + i + cols + PIPELINE_LATENCY + 1`` at the earliest, and
    its reservation is free one cycle later. The depth is the most rows reserved
    when a tile's last beat arrives (its own R plus the unreleased rows of the
    tiles before it), so a consumer that is always ready never stalls the input.
    """
    gap = max(rows, cols)
    held, j = rows, 1
    while True:
        released = min(rows, max(0, j * gap - cols - latency - 1))
        if released == rows:
            return held
        held += rows - released
        j += 1


def wavefront_layout(rows, cols, packed):
    """Payload of the array input stream."""
    lw = lane_width(packed)
    return data.StructLayout({
        "a_data": data.ArrayLayout(lw, rows),
        "a_scale": data.ArrayLayout(8, rows),
        "b_data": data.ArrayLayout(lw, cols),
        "b_scale": data.ArrayLayout(8, cols),
        "blk_last": 1,
        "tile_last": 1,
    })


def row_layout(rows, cols):
    """Payload of the result stream: one row of an output tile."""
    return data.StructLayout({
        "data": data.ArrayLayout(32, cols),
        "row": range(rows),
        "last": 1,  # last row of the tile
    })


class _Core(wiring.Component):
    """Skew registers, PE grid and row-readout markers (free-running)."""

    def __init__(self, *, rows, cols, formats, block, packed):
        self._rows, self._cols = rows, cols
        self._pe_args = dict(formats=formats, block=block, packed=packed)
        self._formats = formats
        self._packed = packed
        super().__init__({
            "in_valid": In(1),
            "in_payload": In(wavefront_layout(rows, cols, packed)),
            "fmt_a": In(3), "fmt_b": In(3), "pack": In(1),
            "row_ev": Out(rows),
            "row_data": Out(data.ArrayLayout(32, cols)),
        })
        self.pes = [[PE(**self._pe_args) for _ in range(cols)] for _ in range(rows)]
        width = self.pes[0][0].width
        # One shared rounding/accumulation tail per row and group of GROUP columns.
        self.tails = [[BlockTail(n=min(GROUP, cols - g), width=width, formats=formats)
                       for g in range(0, cols, GROUP)] for _ in range(rows)]

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        packed = self._packed
        # Input register (accepted beat), then the skew delay lines.
        iv = Signal()
        # Operand registers have no reset (valid bits carry it): a reset net to
        # every one of them would be the widest net of the array.
        ip = Signal(self.in_payload.shape(), reset_less=True)
        m.d.sync += [iv.eq(self.in_valid), ip.eq(self.in_payload)]
        # Every register stage that holds a tile end on its way to the row markers,
        # with the result rows it stands for (read by the formal array check).
        self.tile_end_stages = [(iv & ip.tile_last, R)]
        # Edge decode: every lane once (registered), then the skew delay lines.
        al = a_layout(self._formats, packed)
        bl = b_layout(self._formats, packed)
        a_left = []
        for i in range(R):
            m.submodules[f"dec_a{i}"] = dec = OperandDecode(formats=self._formats, packed=packed)
            m.d.comb += [dec.code.eq(ip.a_data[i]), dec.select.eq(self.fmt_a),
                         dec.pack.eq(self.pack)]
            s = Signal(al, name=f"a_skew{i}_0", reset_less=True)
            v = Signal(name=f"a_valid{i}_0")
            m.d.sync += [v.eq(iv), s.op.eq(dec.op), s.scale.eq(ip.a_scale[i]),
                         s.blk_last.eq(ip.blk_last), s.tile_last.eq(ip.tile_last)]
            self.tile_end_stages.append((v & s.tile_last, 1))
            for d in range(i):
                t = Signal(al, name=f"a_skew{i}_{d + 1}", reset_less=True)
                tv = Signal(name=f"a_valid{i}_{d + 1}")
                m.d.sync += [t.eq(s), tv.eq(v)]
                s, v = t, tv
                self.tile_end_stages.append((v & s.tile_last, 1))
            left = Signal(al, name=f"a_left{i}")
            m.d.comb += [left.eq(s), left.valid.eq(v)]
            a_left.append(left)
        b_top = []
        for j in range(C):
            m.submodules[f"dec_b{j}"] = dec = OperandDecode(formats=self._formats, packed=packed)
            m.d.comb += [dec.code.eq(ip.b_data[j]), dec.select.eq(self.fmt_b),
                         dec.pack.eq(self.pack)]
            s = Signal(bl, name=f"b_skew{j}_0", reset_less=True)
            m.d.sync += [s.op.eq(dec.op), s.scale.eq(ip.b_scale[j])]
            for d in range(j):
                t = Signal(bl, name=f"b_skew{j}_{d + 1}", reset_less=True)
                m.d.sync += t.eq(s)
                s = t
            b_top.append(s)

        for i in range(R):
            for j in range(C):
                pe = self.pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.a_in.eq(a_left[i] if j == 0 else self.pes[i][j - 1].a_out),
                    pe.b_in.eq(b_top[j] if i == 0 else self.pes[i - 1][j].b_out),
                ]
                self.tile_end_stages.append((pe.a_out.valid & pe.a_out.tile_last, 1))
        results = [[None] * C for _ in range(R)]
        for i in range(R):
            for g, tail in enumerate(self.tails[i]):
                m.submodules[f"tail_{i}_{g}"] = tail
                m.d.comb += [tail.fmt_a.eq(self.fmt_a), tail.fmt_b.eq(self.fmt_b)]
                for k in range(tail._n):
                    j = g * GROUP + k
                    m.d.comb += tail.blk[k].eq(self.pes[i][j].blk)
                    results[i][j] = tail.results[k]
        # Row i is complete LATENCY cycles after its tile_last beat entered PE (i, C-1),
        # i.e. LATENCY - 1 cycles after it leaves that PE.
        for i in range(R):
            last = self.pes[i][C - 1].a_out
            ev = last.valid & last.tile_last
            for d in range(LATENCY - 1):
                t = Signal(name=f"row_ev{i}_{d}")
                m.d.sync += t.eq(ev)
                ev = t
                self.tile_end_stages.append((t, 1))
            m.d.comb += self.row_ev[i].eq(ev)
        for j in range(C):
            col = 0
            for i in range(R):
                col = col | (results[i][j] & self.row_ev[i].replicate(32))
            m.d.comb += self.row_data[j].eq(col)
        return m


class SystolicArray(wiring.Component):
    """R x C output-stationary MX systolic array with a streamed row drain.

    Parameters
    ----------
    rows, cols : int
        Array size R x C (1..64).
    formats : tuple of str
        Element formats supported at run time.
    block : int
        Largest scale block (16 or 32).
    packed : bool
        Two FP4/FP6 pairs per lane per beat (twice the MAC rate).
    depth : int or None
        Output FIFO rows (>= rows); ``None`` takes :func:`out_depth`, the least
        that never stalls a consumer that is always ready. Fewer rows cost
        throughput on short tiles only.

    Attributes
    ----------
    i_stream : In(stream.Signature(wavefront_layout))
        One k step per beat. Beats of consecutive tiles must be at least
        ``max(rows, cols)`` accepted-or-idle cycles apart (the controller
        guarantees it); ``ready`` is low only for a tile's last beat (it
        depends on ``payload.tile_last``) while the output FIFO has no room
        for that tile's R rows.
    o_stream : Out(stream.Signature(row_layout))
        Result rows, ``row`` 0 .. R-1 per tile, ``last`` on row R-1, from a
        FIFO of :attr:`depth` rows (first row one cycle after it is ready).
    fmt_a, fmt_b, pack : In
        Runtime configuration, held static while a GEMM is in flight.
    """

    def __init__(self, *, rows, cols, formats=ALL_FORMATS, block=32, packed=True, depth=None):
        self._rows = check_int("rows", rows, min=1, max=64)
        self._cols = check_int("cols", cols, min=1, max=64)
        self._block = check_choice("block", block, (16, 32))
        self._packed = bool(packed)
        self._depth = (out_depth(rows, cols) if depth is None
                       else check_int("depth", depth, min=rows, max=4096))
        self._core = _Core(rows=rows, cols=cols, formats=tuple(formats), block=block,
                           packed=self._packed)
        self.out_fifo = StreamFIFO(payload_shape=row_layout(rows, cols), depth=self._depth)
        super().__init__({
            "i_stream": In(stream.Signature(wavefront_layout(rows, cols, self._packed))),
            "o_stream": Out(stream.Signature(row_layout(rows, cols))),
            "fmt_a": In(3), "fmt_b": In(3), "pack": In(1),
        })
        self.reserved = Signal(range(self._depth + 1))

    @property
    def pes(self):
        return self._core.pes

    @property
    def min_tile_beats(self):
        return max(self._rows, self._cols)

    @property
    def depth(self):
        """Rows of the output FIFO."""
        return self._depth

    def invariants(self):
        """Internal facts for k-induction (see ``formal/properties.py``)."""
        return [(self.out_fifo.level <= self.reserved, "rows_held_are_reserved"),
                (self.reserved <= self._depth, "reserved_in_range"),
                *self.out_fifo.invariants()]

    def elaborate(self, platform):
        m = Module()
        R = self._rows
        depth = self._depth
        m.submodules.core = core = self._core
        m.submodules.out = out = self.out_fifo
        wiring.connect(m, out.o_stream, wiring.flipped(self.o_stream))
        ev_any = core.row_ev.any()
        # Rows held in the FIFO or promised by accepted tile ends. A tile end is
        # taken only with room for its R rows, so a row always finds a slot
        # (formal/test_ttu.py proves it) and the array itself never stalls: no
        # clock enable fans out to its ~30k flip-flops.
        reserved = self.reserved
        tile_end = self.i_stream.valid & self.i_stream.ready & self.i_stream.payload.tile_last
        pop = self.o_stream.valid & self.o_stream.ready
        m.d.sync += reserved.eq(reserved + Mux(tile_end, R, 0) - pop)
        m.d.comb += [
            # Only a tile's last beat waits for room: the others make no rows.
            self.i_stream.ready.eq(~self.i_stream.payload.tile_last | (reserved <= depth - R)),
            core.in_valid.eq(self.i_stream.valid & self.i_stream.ready),
            core.in_payload.eq(self.i_stream.payload),
            core.fmt_a.eq(self.fmt_a), core.fmt_b.eq(self.fmt_b), core.pack.eq(self.pack),
            out.i_stream.valid.eq(ev_any),
            out.i_stream.payload.data.eq(core.row_data),
            out.i_stream.payload.last.eq(core.row_ev[R - 1]),
        ]
        for i in range(R):
            with m.If(core.row_ev[i]):
                m.d.comb += out.i_stream.payload.row.eq(i)
        return m
