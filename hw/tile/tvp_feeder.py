"""TVP feeder: one vector record, operands gathered from SRAM, results written back."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.cp.isa import ARG_BITS
from hw.mem.sram import SRAMPortSignature
from hw.tvp.isa import N_OPS, is_reduce

from .feeder import AddrGen, RecordFetch, feeder_members
from .records import ADDR, tvp_record_layout

__all__ = ["TVPFeeder"]

class TVPFeeder(wiring.Component):
    """Runs one vector record on the TVP: gathers operands, writes results.

    The record is read through ``rd``; then operand ``a`` streams through
    ``rd``, ``b`` through ``rd_b`` and ``c`` through ``rd_c`` (only the first
    ``nsrc`` of them), each port issuing one read per cycle on its own address
    generator, and the results stream out through ``wr``. The TVP's input beat
    is the join of the operand responses (the tile SRAM's per-port response
    FIFO lets every port run ahead of the join), so a streaming op runs SRAM to
    SRAM at one beat per cycle when no bank conflict intervenes.
    """

    def __init__(self, *, tvp_signature, word_bits, addr_width, words):
        self._wb = word_bits
        self._words = words
        port = SRAMPortSignature(addr_width=addr_width, data_width=word_bits)
        super().__init__({**feeder_members(addr_width, word_bits), "rd_b": Out(port),
                          "rd_c": Out(port), "tvp": In(tvp_signature)})

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
        ports = (rd, self.rd_b, self.rd_c)
        rd_addr = Signal(ARG_BITS)
        gens = {k: AddrGen(m, k) for k in "abc"}
        # Whole payloads driven outside the FSM: b and c address only from their
        # generators (``valid`` gates them), so no bit is left to an FSM branch.
        m.d.comb += [rd.req.payload.addr.eq(rd_addr), self.rd_b.req.payload.addr.eq(gens["b"].ptr),
                     self.rd_c.req.payload.addr.eq(gens["c"].ptr)]
        for port in ports:
            m.d.comb += [port.req.payload.we.eq(0), port.req.payload.wstrb.eq(0),
                         port.req.payload.wdata.eq(0)]
        og = AddrGen(m, "o")
        issued = [Signal(16, name=f"issued_{k}") for k in "abc"]  # reads issued per operand
        collected = Signal(16)    # beats handed to the TVP
        c_i = Signal(16)          # position in group at the TVP input (for last)
        pending = Signal(17)      # output beats expected but not written
        reduce = Signal()
        m.d.comb += reduce.eq(is_reduce(rec.op))
        need = [rec.nsrc > k for k in range(3)]

        ip = tvp.i_stream.payload
        m.d.comb += [
            ip.op.eq(rec.op), ip.fmt.eq(rec.fmt), ip.last.eq(c_i == rec.group - 1),
            wr.req.payload.addr.eq(og.ptr),
            wr.req.payload.we.eq(1),
            wr.req.payload.wstrb.eq(Mux(og.ptr < self._words, (1 << (wb // 8)) - 1, 0)),
            wr.req.payload.wdata.eq(tvp.o_stream.payload.data.as_value()),
        ]
        for k, name in enumerate("abc"):  # operands not read are zero
            m.d.comb += getattr(ip, name).eq(Mux(need[k], ports[k].rsp.payload, 0))
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
                m.d.sync += [rec.eq(raw[:lay.size]), collected.eq(0), c_i.eq(0), pending.eq(0),
                             *[iss.eq(0) for iss in issued]]
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
                # Operand reads: one per cycle per port, each on its own generator.
                m.d.comb += rd_addr.eq(gens["a"].ptr)
                for k, name in enumerate("abc"):
                    port, g = ports[k], gens[name]
                    m.d.comb += port.req.valid.eq(need[k] & (issued[k] != rec.n_beats))
                    with m.If(port.req.valid & port.req.ready):
                        with m.If(g.ptr >= self._words):
                            m.d.sync += err.eq(1)
                        m.d.sync += [issued[k].eq(issued[k] + 1),
                                     g.step(rec.group, getattr(rec, name).inner,
                                            getattr(rec, name).outer)]
                # The TVP beat: the join of the operand responses.
                joined = 1
                for k in range(3):
                    joined = joined & (~need[k] | ports[k].rsp.valid)
                m.d.comb += tvp.i_stream.valid.eq(joined)
                accept = tvp.i_stream.valid & tvp.i_stream.ready
                for k in range(3):
                    m.d.comb += ports[k].rsp.ready.eq(need[k] & accept)
                produces = ~reduce | (c_i == rec.group - 1)
                with m.If(accept):
                    m.d.sync += [collected.eq(collected + 1),
                                 c_i.eq(Mux(c_i == rec.group - 1, 0, c_i + 1))]
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
