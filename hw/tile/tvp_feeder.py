"""TVP feeder: one vector record, operands gathered from SRAM, results written back."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from hw.cp.isa import ARG_BITS
from hw.tvp.isa import N_OPS, is_reduce

from .feeder import AddrGen, RecordFetch, feeder_members
from .records import ADDR, tvp_record_layout

__all__ = ["TVPFeeder"]

class TVPFeeder(wiring.Component):
    """Runs one vector record on the TVP: gathers operands, writes results."""

    def __init__(self, *, tvp_signature, word_bits, addr_width, words):
        self._wb = word_bits
        self._words = words
        super().__init__({**feeder_members(addr_width, word_bits), "tvp": In(tvp_signature)})

    def elaborate(self, platform):
        m = Module()
        tvp = self.tvp
        wb = self._wb
        lay = tvp_record_layout()
        rec = Signal(lay)
        fetch = RecordFetch(n=2, word_bits=wb, words=self._words)
        raw = fetch.data
        err = Signal()
        rd, wr = self.rd, self.wr
        rd_addr = Signal(ARG_BITS)
        m.d.comb += [rd.req.payload.addr.eq(rd_addr), rd.req.payload.we.eq(0),
                     rd.req.payload.wstrb.eq(0), rd.req.payload.wdata.eq(0)]
        gens = {k: AddrGen(m, k) for k in "abc"}
        og = AddrGen(m, "o")
        issued = Signal(16)       # beats whose reads are all issued
        k_iss = Signal(2)         # operand within the beat being issued
        collected = Signal(16)    # beats handed to the TVP
        k_got = Signal(2)
        full = Signal()
        opnd = [Signal(wb, name=f"opnd_{k}") for k in "abc"]
        c_i = Signal(16)          # position in group at the TVP input (for last)
        pending = Signal(17)      # output beats expected but not written
        reduce = Signal()
        m.d.comb += reduce.eq(is_reduce(rec.op))

        cur = Signal(ADDR)
        with m.Switch(k_iss):
            for k, name in enumerate("abc"):
                with m.Case(k):
                    m.d.comb += cur.eq(gens[name].ptr)

        ip = tvp.i_stream.payload
        m.d.comb += [
            ip.op.eq(rec.op), ip.fmt.eq(rec.fmt), ip.last.eq(c_i == rec.group - 1),
            ip.a.eq(opnd[0]), ip.b.eq(opnd[1]), ip.c.eq(opnd[2]),
            wr.req.payload.addr.eq(og.ptr),
            wr.req.payload.we.eq(1),
            wr.req.payload.wstrb.eq(Mux(og.ptr < self._words, (1 << (wb // 8)) - 1, 0)),
            wr.req.payload.wdata.eq(tvp.o_stream.payload.data.as_value()),
        ]
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
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                r = data.View(lay, raw)
                m.d.sync += [rec.eq(raw[:lay.size]), issued.eq(0), k_iss.eq(0), collected.eq(0),
                             k_got.eq(0), full.eq(0), c_i.eq(0), pending.eq(0)]
                for name in "abc":
                    m.d.sync += gens[name].reset(getattr(r, name).base)
                m.d.sync += og.reset(r.o_base)
                bad = ((r.op >= N_OPS) | (r.nsrc == 0) | (r.n_beats == 0) | (r.group == 0)
                       | (r.o_group == 0))
                with m.If(bad):
                    m.d.sync += err.eq(1)
                    m.next = "DONE"
                with m.Else():
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                # Operand read issue: nsrc reads per beat.
                m.d.comb += [rd.req.valid.eq(issued != rec.n_beats), rd_addr.eq(cur)]
                with m.If(rd.req.valid & rd.req.ready):
                    with m.If(cur >= self._words):
                        m.d.sync += err.eq(1)
                    with m.If(k_iss == rec.nsrc - 1):
                        m.d.sync += [k_iss.eq(0), issued.eq(issued + 1)]
                        for name in "abc":
                            g = getattr(rec, name)
                            m.d.sync += gens[name].step(rec.group, g.inner, g.outer)
                    with m.Else():
                        m.d.sync += k_iss.eq(k_iss + 1)
                # Operand collection.
                m.d.comb += rd.rsp.ready.eq(~full)
                with m.If(rd.rsp.valid & ~full):
                    with m.Switch(k_got):
                        for k in range(3):
                            with m.Case(k):
                                m.d.sync += opnd[k].eq(rd.rsp.payload)
                    with m.If(k_got == rec.nsrc - 1):
                        m.d.sync += [k_got.eq(0), full.eq(1)]
                    with m.Else():
                        m.d.sync += k_got.eq(k_got + 1)
                m.d.comb += tvp.i_stream.valid.eq(full)
                accept = tvp.i_stream.valid & tvp.i_stream.ready
                produces = ~reduce | (c_i == rec.group - 1)
                with m.If(accept):
                    m.d.sync += [full.eq(0), collected.eq(collected + 1),
                                 c_i.eq(Mux(c_i == rec.group - 1, 0, c_i + 1))]
                    for k in range(3):
                        m.d.sync += opnd[k].eq(0)
                # Results.
                m.d.comb += [wr.req.valid.eq(tvp.o_stream.valid),
                             tvp.o_stream.ready.eq(wr.req.ready)]
                wrote = tvp.o_stream.valid & tvp.o_stream.ready
                with m.If(wrote):
                    with m.If(og.ptr >= self._words):
                        m.d.sync += err.eq(1)
                    m.d.sync += og.step(rec.o_group, rec.o_inner, rec.o_outer)
                m.d.sync += pending.eq(pending + (accept & produces) - wrote)
                with m.If((collected == rec.n_beats) & (pending == 0) & ~tvp.o_stream.valid):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.valid.eq(1), self.done.payload.eq(err)]
                with m.If(self.done.ready):
                    m.next = "IDLE"
        return m
