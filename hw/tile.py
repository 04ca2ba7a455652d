"""Tile: command processor + DMA + TTU + TVP around one banked tile SRAM.

The command processor (``hw.cp``) has one queue per engine: 0 DMA, 1 TTU,
2 TVP. An ``EXEC`` argument is the **SRAM word address of an operation
record** (the compiler places the records in the tile SRAM next to the data,
see ``docs/tile.md``). Each engine has a small *feeder* that fetches its
record through its own SRAM port, runs the engine and reports completion
(``done`` payload 1 = failed) back to the command processor:

* :class:`DMAFeeder` reads a DMA descriptor (``hw.dma.descriptor``) and
  hands it to the :class:`~hw.dma.DMAEngine`; completions pass through in
  order, so several descriptors can be in flight.
* :class:`TTUFeeder` reads a GEMM record, sends the TTU command, streams the
  weight then activation beats from SRAM (one word per beat) and writes the
  FP32 result rows back row-major.
* :class:`TVPFeeder` reads a vector record (opcode, operand/result address
  generators), gathers the operands of every beat, runs the TVP and writes the
  result beats.

Every SRAM address a feeder generates is range checked: an access out of the
SRAM, an unknown TVP opcode or a TTU command the TTU rejects completes the
command with an error, which stops that queue with ``ENGINE_ERROR``.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_int, check_pow2
from hw.cp import CommandProcessor
from hw.cp.isa import ARG_BITS
from hw.dma import DMAEngine
from hw.dma.axi import AXI4Signature
from hw.dma.engine import noc_layout
from hw.mem.sram import BankedSRAM, SRAMPortSignature
from hw.ttu import TTU
from hw.tvp import TVP
from sim.tvp import OP as TVP_OP

__all__ = ["Tile", "DMAFeeder", "TTUFeeder", "TVPFeeder", "ttu_record_layout",
           "tvp_record_layout", "ENGINES", "TOPS"]

#: Engine (queue) numbers of a tile.
ENGINES = {"dma": 0, "ttu": 1, "tvp": 2}

#: Reduction opcodes of the TVP (one output per group), from its ISA table.
_RSUM, _RMAX, _N_TVP_OPS = TVP_OP["RSUM"], TVP_OP["RMAX"], len(TVP_OP)

ADDR = 16  # SRAM word addresses in records


def _feeder_members(addr_width, word_bits):
    """Ports every engine feeder has: a command from its queue, a completion back,
    an SRAM read port for records and operands, a write port for results, ``busy``."""
    port = SRAMPortSignature(addr_width=addr_width, data_width=word_bits)
    return {
        "cmd": In(stream.Signature(ARG_BITS)),
        "done": Out(stream.Signature(1)),
        "rd": Out(port),
        "wr": Out(port),
        "busy": Out(1),
    }


def ttu_record_layout():
    """One TTU record (one SRAM word, >= 128 bits): a GEMM on SRAM operands."""
    return data.StructLayout({
        "fmt_a": 3, "fmt_b": 3, "pack": 1, "block32": 1,
        "k_beats": 16, "n_tiles": 8, "m_tiles": 16,
        "w_addr": ADDR,   # n_tiles * k_beats weight beats (column tile major, then k)
        "a_addr": ADDR,   # m_tiles * k_beats activation beats (row tile major, then k)
        "o_addr": ADDR,   # result: row-major, word o_addr + row * o_pitch + column tile
        "o_pitch": ADDR,  # words per result row
    })


def _agen_layout():
    return data.StructLayout({"base": ADDR, "inner": signed(ADDR), "outer": signed(ADDR)})


def tvp_record_layout():
    """One TVP record (two SRAM words of 128 bits).

    Beat ``j = g * group + i`` reads ``a/b/c`` at ``base + g * outer + i * inner``
    (word addresses, strides signed); output beat ``j'`` goes to
    ``o.base + (j' // o_group) * o.outer + (j' % o_group) * o.inner``.
    ``last`` is set on the last beat of each group (reductions end there).
    """
    return data.StructLayout({
        "op": 5, "fmt": 1, "nsrc": 2, "_pad": 8,
        "n_beats": 16, "group": 16, "o_group": 16,
        "a": _agen_layout(), "o_base": ADDR,
        # second word
        "b": _agen_layout(), "c": _agen_layout(), "o_inner": signed(ADDR), "o_outer": signed(ADDR),
    })


class _AddrGen:
    """Two-level address generator (base, inner stride, outer stride, group)."""

    def __init__(self, m, name):
        self.m = m
        self.outer_ptr = Signal(ADDR, name=f"{name}_optr")
        self.ptr = Signal(ADDR, name=f"{name}_ptr")
        self.i = Signal(16, name=f"{name}_i")

    def reset(self, base):
        return [self.outer_ptr.eq(base), self.ptr.eq(base), self.i.eq(0)]

    def step(self, group, inner, outer):
        nxt = (self.outer_ptr + outer)[:ADDR]
        return [
            self.i.eq(Mux(self.i == group - 1, 0, self.i + 1)),
            self.outer_ptr.eq(Mux(self.i == group - 1, nxt, self.outer_ptr)),
            self.ptr.eq(Mux(self.i == group - 1, nxt, (self.ptr + inner)[:ADDR])),
        ]


class DMAFeeder(wiring.Component):
    """Fetches DMA descriptors from SRAM for the DMA engine's queue 0.

    ``cmd`` carries the SRAM word address of the descriptor (``n_words``
    words, least significant word first). A descriptor that does not fit in
    the SRAM is replaced by a zero-length one, which the DMA completes as
    MALFORMED: completions stay in order and the error reaches the CP.
    """

    def __init__(self, *, desc_layout, word_bits, addr_width, words):
        self._desc = desc_layout
        self._wb = word_bits
        self._n = -(-desc_layout.size // word_bits)
        self._words = words
        super().__init__({
            "cmd": In(stream.Signature(ARG_BITS)),
            "done": Out(stream.Signature(1)),
            "mem": Out(SRAMPortSignature(addr_width=addr_width, data_width=word_bits)),
            "desc": Out(stream.Signature(desc_layout)),
            "dma_done": In(stream.Signature(data.StructLayout({"sem": 8, "err": 3}))),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        arg = Signal(ARG_BITS)
        bad = Signal()
        issued = Signal(range(n + 1))
        got = Signal(range(n + 1))
        buf = Signal(n * self._wb)
        m.d.comb += [
            self.done.valid.eq(self.dma_done.valid),
            self.done.payload.eq(self.dma_done.payload.err != 0),
            self.dma_done.ready.eq(self.done.ready),
            self.mem.req.payload.addr.eq(arg + issued),
            self.mem.req.payload.we.eq(0),
            self.mem.req.payload.wstrb.eq(0),
            self.mem.req.payload.wdata.eq(0),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [arg.eq(self.cmd.payload), issued.eq(0), got.eq(0),
                                 bad.eq(self.cmd.payload + n > self._words)]
                    m.next = "READ"
            with m.State("READ"):
                with m.If(bad):
                    m.d.sync += buf.eq(0)   # length 0: MALFORMED
                    m.next = "PUSH"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(issued != n)
                    with m.If(self.mem.req.valid & self.mem.req.ready):
                        m.d.sync += issued.eq(issued + 1)
                    m.d.comb += self.mem.rsp.ready.eq(1)
                    with m.If(self.mem.rsp.valid):
                        m.d.sync += [buf.eq(Cat(buf[self._wb:], self.mem.rsp.payload)),
                                     got.eq(got + 1)]
                        with m.If(got == n - 1):
                            m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += [self.desc.valid.eq(1), self.desc.payload.eq(buf[:self._desc.size])]
                with m.If(self.desc.ready):
                    m.next = "IDLE"
        return m


class TTUFeeder(wiring.Component):
    """Runs one GEMM record on the TTU: SRAM -> ``w``/``a`` streams, ``o`` -> SRAM."""

    def __init__(self, *, ttu, rows, word_bits, addr_width, words):
        self._ttu = ttu
        self._wb = word_bits
        self._words = words
        self._rows = rows
        super().__init__(_feeder_members(addr_width, word_bits))

    def elaborate(self, platform):
        m = Module()
        ttu = self._ttu
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
        fetch_sent = Signal()
        faddr = Signal(ARG_BITS)

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
                    m.d.sync += [faddr.eq(self.cmd.payload), fetch_sent.eq(0),
                                 err.eq(self.cmd.payload >= self._words)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.busy.eq(1), rd.req.valid.eq(~fetch_sent & ~err),
                             rd_addr.eq(faddr), rd.rsp.ready.eq(1)]
                with m.If(err):
                    m.next = "DONE"
                with m.If(rd.req.valid & rd.req.ready):
                    m.d.sync += fetch_sent.eq(1)
                with m.If(rd.rsp.valid):
                    m.d.sync += [rec.eq(rd.rsp.payload[:rec.shape().size]), issued.eq(0),
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


class TVPFeeder(wiring.Component):
    """Runs one vector record on the TVP: gathers operands, writes results."""

    def __init__(self, *, tvp, word_bits, addr_width, words):
        self._tvp = tvp
        self._wb = word_bits
        self._words = words
        super().__init__(_feeder_members(addr_width, word_bits))

    def elaborate(self, platform):
        m = Module()
        tvp = self._tvp
        wb = self._wb
        lay = tvp_record_layout()
        rec = Signal(lay)
        raw = Signal(2 * wb)
        err = Signal()
        arg = Signal(ARG_BITS)
        fsent = Signal(2)
        fgot = Signal(2)
        rd, wr = self.rd, self.wr
        rd_addr = Signal(ARG_BITS)
        m.d.comb += [rd.req.payload.addr.eq(rd_addr), rd.req.payload.we.eq(0),
                     rd.req.payload.wstrb.eq(0), rd.req.payload.wdata.eq(0)]
        gens = {k: _AddrGen(m, k) for k in "abc"}
        og = _AddrGen(m, "o")
        issued = Signal(16)       # beats whose reads are all issued
        k_iss = Signal(2)         # operand within the beat being issued
        collected = Signal(16)    # beats handed to the TVP
        k_got = Signal(2)
        full = Signal()
        opnd = [Signal(wb, name=f"opnd_{k}") for k in "abc"]
        c_i = Signal(16)          # position in group at the TVP input (for last)
        pending = Signal(17)      # output beats expected but not written
        reduce = Signal()
        m.d.comb += reduce.eq((rec.op == _RSUM) | (rec.op == _RMAX))

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
                    m.d.sync += [arg.eq(self.cmd.payload), fsent.eq(0), fgot.eq(0),
                                 err.eq(self.cmd.payload + 2 > self._words)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.busy.eq(1), rd.req.valid.eq((fsent != 2) & ~err),
                             rd_addr.eq(arg + fsent), rd.rsp.ready.eq(1)]
                with m.If(err):
                    m.next = "DONE"
                with m.If(rd.req.valid & rd.req.ready):
                    m.d.sync += fsent.eq(fsent + 1)
                with m.If(rd.rsp.valid):
                    m.d.sync += [raw.eq(Cat(raw[wb:], rd.rsp.payload)), fgot.eq(fgot + 1)]
                    with m.If(fgot == 1):
                        m.next = "START"
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                r = data.View(lay, raw)
                m.d.sync += [rec.eq(raw[:lay.size]), issued.eq(0), k_iss.eq(0), collected.eq(0),
                             k_got.eq(0), full.eq(0), c_i.eq(0), pending.eq(0)]
                for name in "abc":
                    m.d.sync += gens[name].reset(getattr(r, name).base)
                m.d.sync += og.reset(r.o_base)
                bad = ((r.op >= _N_TVP_OPS) | (r.nsrc == 0) | (r.n_beats == 0) | (r.group == 0)
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


class Tile(wiring.Component):
    """One tile: command processor, DMA, TTU, TVP and the tile SRAM.

    Parameters
    ----------
    n : int
        TTU array size (``n x n``) and TVP lanes; the SRAM word is ``32 n`` bits
        (one TVP vector, one TTU result row, one TTU operand beat).
    sram_size : int
        Tile SRAM bytes (power of two).
    banks : int
        SRAM banks.
    addr_width : int
        HBM (AXI) byte-address width.
    hbm_size : int
        HBM bytes reachable (DMA range check).
    dims : int
        DMA descriptor dimensions.
    formats : tuple of str
        TTU element formats.
    max_k_beats, max_n_tiles : int
        TTU buffer sizes.
    n_sems, depth, deadlock_cycles : int
        Command-processor semaphores, program words per queue, watchdog.

    Attributes
    ----------
    load : In(stream)
        Program load into the command processor (``{queue, addr, data}``).
    start : In(3)
        Start queues (bit 0 DMA, 1 TTU, 2 TVP).
    status : Out
        Per-queue ``{state, error, pc}``.
    sems : Out
        Semaphore values.
    sem_inc : In(stream)
        External semaphore increments.
    host : In(SRAMPortSignature)
        Host access to the tile SRAM (operation records, test read-back).
    m_axi : Out(AXI4Signature)
        HBM port of the DMA (``m_axi__*`` ports).
    noc : Out(stream)
        Remote writes of the DMA (``dst_kind`` 2).
    noc_in : In(SRAMPortSignature)
        Writes into this tile's SRAM from the network.
    active : Out(3)
        Per-engine activity (DMA busy, TTU feeder busy, TVP feeder busy).
    macs : Out(32)
        TTU array beats issued (each is ``n * n`` MACs).
    errors : Out(StructLayout)
        ``dma`` (count), ``ttu`` (rejected commands), ``tvp`` (sticky invalid op).
    """

    def __init__(self, *, n=4, sram_size=65536, banks=4, addr_width=32, hbm_size=1 << 20,
                 dims=4, formats=("fp8_e4m3", "fp4_e2m1"), max_k_beats=64, max_n_tiles=8,
                 n_sems=16, depth=256, deadlock_cycles=2048):
        self.n = check_pow2("n", n, min=2, max=16)
        self.word_bits = 32 * n
        self.sram_size = check_pow2("sram_size", sram_size, min=self.word_bits // 8 * banks * 4)
        self.banks = check_pow2("banks", banks, min=1, max=16)
        self.addr_width = check_int("addr_width", addr_width, min=16, max=48)
        self.hbm_size = check_int("hbm_size", hbm_size, min=4096, max=1 << addr_width)
        self.dims = check_int("dims", dims, min=2, max=6)
        self.formats = tuple(formats)
        self.max_k_beats = check_int("max_k_beats", max_k_beats, min=1, max=4096)
        self.max_n_tiles = check_int("max_n_tiles", max_n_tiles, min=1, max=255)
        self.n_sems = check_int("n_sems", n_sems, min=1, max=32)
        self.depth = check_int("depth", depth, min=2)
        self.deadlock_cycles = check_int("deadlock_cycles", deadlock_cycles, min=2)
        self.words = sram_size // (self.word_bits // 8)
        self.sram = BankedSRAM(size=sram_size, banks=banks, width=self.word_bits, ports=9)
        self.cp = CommandProcessor(n_engines=3, n_sems=n_sems, depth=depth,
                                   deadlock_cycles=deadlock_cycles)
        self.dma = DMAEngine(addr_width=addr_width, data_width=self.word_bits, dims=dims,
                             n_local=1, sram_size=sram_size, hbm_size=hbm_size, queues=2)
        self.ttu = TTU(rows=n, cols=n, formats=self.formats, block=32, packed=False,
                       max_k_beats=max_k_beats, max_n_tiles=max_n_tiles)
        self.tvp = TVP(lanes=n)
        aw = self.sram.addr_width
        port = SRAMPortSignature(addr_width=aw, data_width=self.word_bits)
        super().__init__({
            "load": In(stream.Signature(self.cp.load.payload.shape())),
            "start": In(3),
            "status": Out(self.cp.signature.members["status"].shape),
            "sems": Out(self.cp.signature.members["sems"].shape),
            "sem_inc": In(stream.Signature(self.cp.sem_inc.payload.shape())),
            "host": In(port),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=self.word_bits)),
            "noc": Out(stream.Signature(noc_layout(addr_width, self.word_bits))),
            "noc_in": In(port),
            "active": Out(3),
            "macs": Out(32),
            "errors": Out(data.StructLayout({"dma": 16, "ttu": 8, "tvp": 1})),
        })

    @property
    def desc_words(self):
        """SRAM words per DMA descriptor record."""
        return -(-self.dma.desc_layout.size // self.word_bits)

    def elaborate(self, platform):
        m = Module()
        m.submodules.sram = sram = self.sram
        m.submodules.cp = cp = self.cp
        m.submodules.dma = dma = self.dma
        m.submodules.ttu = ttu = self.ttu
        m.submodules.tvp = tvp = self.tvp
        aw, wb, words = sram.addr_width, self.word_bits, self.words
        m.submodules.dma_feed = dfe = DMAFeeder(desc_layout=dma.desc_layout, word_bits=wb,
                                                addr_width=aw, words=words)
        m.submodules.ttu_feed = tfe = TTUFeeder(ttu=ttu, rows=self.n, word_bits=wb, addr_width=aw,
                                                words=words)
        m.submodules.tvp_feed = vfe = TVPFeeder(tvp=tvp, word_bits=wb, addr_width=aw, words=words)

        wiring.connect(m, wiring.flipped(self.load), cp.load)
        wiring.connect(m, wiring.flipped(self.sem_inc), cp.sem_inc)
        m.d.comb += [cp.start.eq(self.start), self.status.eq(cp.status), self.sems.eq(cp.sems)]
        for i, fe in enumerate((dfe, tfe, vfe)):
            wiring.connect(m, cp.cmd[i], fe.cmd)
            wiring.connect(m, fe.done, cp.done[i])
        wiring.connect(m, dfe.desc, dma.i_desc[0])
        m.d.comb += dma.i_desc[1].valid.eq(0)   # the second priority class is unused
        wiring.connect(m, dma.o_done, dfe.dma_done)
        wiring.connect(m, wiring.flipped(self.m_axi), dma.m_axi)
        wiring.connect(m, dma.noc, wiring.flipped(self.noc))

        ports = [wiring.flipped(self.host), dma.sram_rd, dma.sram_wr[0], dfe.mem,
                 tfe.rd, tfe.wr, vfe.rd, vfe.wr, wiring.flipped(self.noc_in)]
        for i, p in enumerate(ports):
            wiring.connect(m, p, sram.ports[i])
        m.d.comb += [self.active.eq(Cat(dma.busy, tfe.busy, vfe.busy)),
                     self.errors.dma.eq(dma.errors), self.errors.ttu.eq(ttu.errors),
                     self.errors.tvp.eq(tvp.error)]
        beat = ttu.array.i_stream.valid & ttu.array.i_stream.ready
        m.d.sync += self.macs.eq(self.macs + beat)
        return m


TOPS = {
    "integration_tile": lambda: Tile(),
}
