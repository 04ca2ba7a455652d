"""TTU feeder: one GEMM record, SRAM -> TTU operand streams, results -> SRAM."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.cp.isa import ARG_BITS

from .feeder import RecordFetch, feeder_members
from .records import ttu_record_layout

__all__ = ["TTUFeeder"]


class TTUFeeder(wiring.Component):
    """Runs one GEMM record on the TTU: SRAM -> ``w``/``a`` streams, ``o`` -> SRAM.

    Parameters
    ----------
    ttu_signature : wiring.Signature
        The TTU's signature; the feeder's ``ttu`` port is its flip (it drives the
        TTU's command and operand streams and takes its results and error count).
    rows : int
        TTU rows (result rows per output tile).
    word_bits, addr_width, words : int
        SRAM word width, address width and size in words.
    """

    def __init__(self, *, ttu_signature, rows, word_bits, addr_width, words):
        self._wb = word_bits
        self._words = words
        self._rows = rows
        super().__init__({**feeder_members(addr_width, word_bits), "ttu": In(ttu_signature)})

    def elaborate(self, platform):
        m = Module()
        ttu = self.ttu
        R = self._rows
        rec = Signal(ttu_record_layout())
        err = Signal()
        n_w = Signal(32)
        n_all = Signal(32)
        issued = Signal(32)
        got = Signal(32)
        tiles = Signal(32)
        tiles_done = Signal(32)
        mt = Signal(16)
        nt = Signal(8)
        errs0 = Signal(8)
        fetch = RecordFetch(n=1, word_bits=self._wb, words=self._words)

        rd, wr = self.rd, self.wr
        raddr = Signal(32)
        m.d.comb += raddr.eq(Mux(issued < n_w, rec.w_addr + issued, rec.a_addr + issued - n_w))
        rd_addr = Signal(ARG_BITS)
        m.d.comb += [rd.req.payload.addr.eq(rd_addr), rd.req.payload.we.eq(0),
                     rd.req.payload.wstrb.eq(0), rd.req.payload.wdata.eq(0)]

        # Result writer (active in RUN): row-major address of (tile row, column tile).
        o = ttu.o_stream
        waddr = Signal(32)
        m.d.comb += waddr.eq(rec.o_addr + (mt * R + o.payload.row) * rec.o_pitch + nt)
        m.d.comb += [
            wr.req.payload.addr.eq(waddr),
            wr.req.payload.we.eq(1),
            wr.req.payload.wstrb.eq(Mux(waddr < self._words, (1 << (self._wb // 8)) - 1, 0)),
            wr.req.payload.wdata.eq(o.payload.data.as_value()),
        ]
        ok_word = rd.rsp.payload
        m.d.comb += [
            ttu.w_stream.payload.eq(ok_word[:ttu.w_stream.payload.shape().size]),
            ttu.a_stream.payload.eq(ok_word[:ttu.a_stream.payload.shape().size]),
        ]
        cp = ttu.cmd_stream.payload
        m.d.comb += [cp.fmt_a.eq(rec.fmt_a), cp.fmt_b.eq(rec.fmt_b), cp.pack.eq(rec.pack),
                     cp.block32.eq(rec.block32), cp.k_beats.eq(rec.k_beats),
                     cp.n_tiles.eq(rec.n_tiles), cp.m_tiles.eq(rec.m_tiles)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [*fetch.start(self.cmd.payload), err.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += self.busy.eq(1)
                fetched = fetch.fetch(m, rd, rd_addr)
                with m.If(fetch.bad):
                    m.d.sync += err.eq(1)
                    m.next = "DONE"
                with m.If(fetched):
                    m.d.sync += [rec.eq(fetch.last_data[:rec.shape().size]), issued.eq(0),
                                 got.eq(0), tiles_done.eq(0), mt.eq(0), nt.eq(0)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [n_w.eq(rec.k_beats * rec.n_tiles),
                             n_all.eq(rec.k_beats * (rec.n_tiles + rec.m_tiles)),
                             tiles.eq(rec.m_tiles * rec.n_tiles)]
                m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [self.busy.eq(1), ttu.cmd_stream.valid.eq(1)]
                with m.If(ttu.cmd_stream.ready):
                    m.d.sync += errs0.eq(ttu.errors)
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                with m.If(ttu.errors != errs0):
                    m.d.sync += err.eq(1)
                    m.next = "DONE"
                with m.Else():
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                # Reads: weights then activations, in order on one port.
                m.d.comb += [rd.req.valid.eq(issued != n_all), rd_addr.eq(raddr)]
                with m.If(rd.req.valid & rd.req.ready):
                    m.d.sync += issued.eq(issued + 1)
                    with m.If(raddr >= self._words):
                        m.d.sync += err.eq(1)
                to_w = got < n_w
                m.d.comb += [
                    ttu.w_stream.valid.eq(rd.rsp.valid & to_w),
                    ttu.a_stream.valid.eq(rd.rsp.valid & ~to_w),
                    rd.rsp.ready.eq(Mux(to_w, ttu.w_stream.ready, ttu.a_stream.ready)),
                ]
                with m.If(rd.rsp.valid & rd.rsp.ready):
                    m.d.sync += got.eq(got + 1)
                # Results.
                m.d.comb += [wr.req.valid.eq(o.valid), o.ready.eq(wr.req.ready)]
                with m.If(o.valid & o.ready):
                    with m.If(waddr >= self._words):
                        m.d.sync += err.eq(1)
                    with m.If(o.payload.last):
                        m.d.sync += tiles_done.eq(tiles_done + 1)
                        with m.If(nt == rec.n_tiles - 1):
                            m.d.sync += [nt.eq(0), mt.eq(mt + 1)]
                        with m.Else():
                            m.d.sync += nt.eq(nt + 1)
                        with m.If(tiles_done == tiles - 1):
                            m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.valid.eq(1), self.done.payload.eq(err)]
                with m.If(self.done.ready):
                    m.next = "IDLE"
        return m
