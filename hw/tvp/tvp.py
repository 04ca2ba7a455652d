"""The TVP: an N-lane FP32 / BF16x2 SIMD vector processor on streams."""
from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_pow2

from . import fpu
from .isa import CVT_OPS, N_OPS, OP, OP_BITS, in_layout, is_reduce as is_reduce_op, out_layout
from .microcode import (DST as _DST, PROGRAMS, SFU_FNS as _SFU_FNS, UNIT as _UNIT,
                        operand_sources, uop_reads)

__all__ = ["TVP", "in_layout", "out_layout"]


class TVP(wiring.Component):
    """Tile vector processor: ``lanes`` 32-bit lanes, FP32 or two BF16 per lane.

    Each input beat is an instruction (``op``, ``fmt``, ``last``) with operand
    vectors ``a``, ``b``, ``c``; it runs as the micro-program
    :func:`hw.tvp.microcode.program` and, unless it is a non-final reduction beat,
    yields one output beat. Micro-ops issue in order, at most one per cycle
    (every slot in parallel), into units pipelined to :attr:`unit_latency`
    stages; a micro-op reading ``t`` or the accumulators waits for the
    previous write of that register (:attr:`hazard_gap`, modelled by
    :class:`sim.tvp.TimingModel`). A new beat is accepted in the cycle the
    previous one issues its last micro-op, so single-micro-op instructions
    sustain one beat per cycle. The whole pipeline stalls while the output
    register holds a beat that is not taken.

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes, a power of two in ``[1, 64]``.

    Attributes
    ----------
    i_stream : In(stream.Signature(in_layout(lanes)))
        Instruction + operand beats.
    o_stream : Out(stream.Signature(out_layout(lanes)))
        Result beats (registered).
    error : Out(1)
        Sticky: an invalid opcode was seen (such a beat passes ``a`` through).
    """

    #: The per-slot unit builders (``fma``, ``exp``, ``recip``, ``rsqrt``, ``misc``,
    #: each ``(result, latency)``) and their ``LATENCY`` table; a formal wrapper may
    #: substitute cheap stand-ins to check the sequencer and pipeline control alone.
    UNITS = fpu
    #: Decode through a constant ROM read by a variable word select (a continuous
    #: assignment; Icarus never runs an ``always @*`` decoder whose inputs keep their
    #: initial values). ``False``: the same table as a ``Switch``, which the formal
    #: wrapper uses because a 26 kbit shifted constant makes the SMT model intractable.
    ROM_DECODER = True

    def __init__(self, *, lanes=16):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        self._programs = PROGRAMS(lanes)
        # Sequencer state shared with invariants() / the formal wrapper.
        self._busy = Signal(name="busy")          # a beat is being executed
        self._produces = Signal(name="produces")  # ... and it yields an output beat
        self._in_prog = Signal(name="in_prog")    # (op, fmt, last, step) is a program step
        self._step = Signal(max(1, (self.max_steps - 1).bit_length()), name="step")
        # Pipeline occupancy (valid + destination per stage) and in-flight t/acc writes.
        depth = self.unit_latency + 1
        self._sv = [Signal(name=f"s{k}_valid") for k in range(depth)]
        self._sdst = [Signal(3, name=f"s{k}_dst") for k in range(depth)]
        self._cnt_t = Signal(range(depth + 2), name="cnt_t")
        self._cnt_acc = Signal(range(depth + 2), name="cnt_acc")
        self._hazard = Signal(name="hazard")  # issue waits for a result in flight
        super().__init__({
            "i_stream": In(stream.Signature(in_layout(lanes))),
            "o_stream": Out(stream.Signature(out_layout(lanes))),
            "error": Out(1),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def max_steps(self):
        return max(len(p) for p in self._programs.values())

    @property
    def unit_latency(self):
        """Register stages of the slowest unit (every unit is padded to it)."""
        return max(self.UNITS.LATENCY.values())

    @property
    def hazard_gap(self):
        """Cycles from a micro-op's issue to the first issue that may read its result."""
        return self.unit_latency + 2

    @property
    def latency(self):
        """Cycles from a beat's acceptance to its output beat (one micro-op, no stalls)."""
        return self.unit_latency + 3

    def invariants(self):
        inv = [((~self._busy) | self._in_prog, "step_in_program")]
        for reg, cnt in (("t", self._cnt_t), ("acc", self._cnt_acc)):
            inflight = 0
            for v, d in zip(self._sv, self._sdst):
                inflight = inflight + (v & (d == _DST[reg]))
            inv.append((cnt == inflight, f"count_{reg}"))
        return inv

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        slots = 2 * n
        progs = self._programs
        nsteps = self.max_steps
        sw = max(1, (nsteps - 1).bit_length())
        L = self.unit_latency

        # --- the set of sources/constants/strides used anywhere --------------
        srcs, strides, idents = operand_sources(progs)

        # --- sequencer state ----------------------------------------------
        busy, step = self._busy, self._step
        op = Signal(OP_BITS)
        fmt = Signal()          # effective format (0 for conversions / invalid ops)
        last = Signal()
        # Derived from the op/last registers (not stored): no redundant state.
        is_reduce = Signal()
        m.d.comb += is_reduce.eq(is_reduce_op(op))
        m.d.comb += self._produces.eq(~is_reduce | last)
        first = Signal(init=1)  # next reduction beat starts a group
        regs = {k: Signal(data.ArrayLayout(32, n), name=f"r_{k}") for k in "abc"}
        t = [Signal(32, name=f"t{j}") for j in range(slots)]
        acc = [Signal(32, name=f"acc{j}") for j in range(slots)]

        # --- decode (op, fmt, last, step) -> controls ---------------------
        unit = Signal(2)
        fn = Signal(4)
        sel = {pos: Signal(range(max(2, len(srcs[pos]))), name=f"{pos}sel") for pos in "xyz"}
        dst = Signal(3)
        stride_sel = Signal(range(max(2, len(strides))))
        ident_sel = Signal(range(max(2, len(idents))))
        final = Signal()
        reads_t, reads_acc = Signal(), Signal()
        if self.ROM_DECODER:
            # A constant ROM indexed by (op, fmt, last, step), read with a variable word
            # select: it becomes a continuous assignment in Verilog. (A Switch would be an
            # ``always @*`` process, which Icarus never evaluates while its inputs keep
            # their initial values: the decoded controls then stay X.)
            fields = [("unit", unit), ("fn", fn), ("xsel", sel["x"]), ("ysel", sel["y"]),
                      ("zsel", sel["z"]), ("dst", dst), ("stride", stride_sel),
                      ("ident", ident_sel), ("final", final), ("reads_t", reads_t),
                      ("reads_acc", reads_acc), ("in_prog", self._in_prog)]
            width = sum(len(sig) for _, sig in fields)

            def pack(**vals):
                word, off = 0, 0
                for k, sig in fields:
                    word |= vals.get(k, 0) << off
                    off += len(sig)
                return word

            # Invalid opcode (or a step outside the program): misc mov of `a` to the output.
            default = dict(unit=_UNIT["misc"], fn=fpu.MISC_FNS.index("mov"),
                           xsel=srcs["x"].index("a"), dst=_DST["out"], final=1)
            nidx = 1 << (sw + 2 + OP_BITS)
            rom = [pack(**default, in_prog=int(code >= N_OPS and s == 0))
                   for code in range(1 << OP_BITS) for pfmt in (0, 1) for plast in (0, 1)
                   for s in range(1 << sw)]
            for (pname, pfmt, plast), prog in progs.items():
                code = OP[pname]
                for s, u in enumerate(prog):
                    f = (_SFU_FNS.index(u.fn) if u.unit == "sfu" else
                         fpu.MISC_FNS.index(u.fn) if u.unit == "misc" else 0)
                    reads = uop_reads(u)
                    idx = s | plast << sw | pfmt << (sw + 1) | code << (sw + 2)
                    rom[idx] = pack(unit=_UNIT[u.unit], fn=f,
                                    xsel=srcs["x"].index(u.x), ysel=srcs["y"].index(u.y),
                                    zsel=srcs["z"].index(u.z), dst=_DST[u.dst],
                                    stride=strides.index(u.stride), ident=idents.index(u.ident),
                                    final=int(s == len(prog) - 1), reads_t=int("t" in reads),
                                    reads_acc=int("acc" in reads), in_prog=1)
            assert len(rom) == nidx
            table = Const(sum(w << (k * width) for k, w in enumerate(rom)), nidx * width)
            ctl_word = Signal(width)
            m.d.comb += ctl_word.eq(table.word_select(Cat(step, last, fmt, op), width))
            off = 0
            for _, sig in fields:
                m.d.comb += sig.eq(ctl_word[off:off + len(sig)])
                off += len(sig)

        else:
            # The same table as a Switch (SMT-friendly; see ROM_DECODER).
            m.d.comb += [unit.eq(_UNIT["misc"]), fn.eq(fpu.MISC_FNS.index("mov")),
                         sel["x"].eq(srcs["x"].index("a")), dst.eq(_DST["out"]), final.eq(1),
                         self._in_prog.eq((op >= N_OPS) & (step == 0))]
            with m.Switch(Cat(step, last, fmt, op)):
                for (pname, pfmt, plast), prog in progs.items():
                    code = OP[pname]
                    for s, u in enumerate(prog):
                        f = (_SFU_FNS.index(u.fn) if u.unit == "sfu" else
                             fpu.MISC_FNS.index(u.fn) if u.unit == "misc" else 0)
                        reads = uop_reads(u)
                        with m.Case(s | plast << sw | pfmt << (sw + 1) | code << (sw + 2)):
                            m.d.comb += [
                                unit.eq(_UNIT[u.unit]), fn.eq(f),
                                *[sel[pos].eq(srcs[pos].index(getattr(u, pos)))
                                  for pos in "xyz"],
                                dst.eq(_DST[u.dst]), stride_sel.eq(strides.index(u.stride)),
                                ident_sel.eq(idents.index(u.ident)),
                                final.eq(s == len(prog) - 1),
                                reads_t.eq("t" in reads), reads_acc.eq("acc" in reads),
                                self._in_prog.eq(1),
                            ]

        ident = Signal(32)
        with m.Switch(ident_sel):
            for i, v in enumerate(idents):
                with m.Case(i):
                    m.d.comb += ident.eq(v)

        # --- issue: stall on o_stream, or on a result still in flight -------
        o = self.o_stream
        ce = Signal()       # the pipeline advances (the output register can take a beat)
        hazard = self._hazard
        issue = Signal()
        done = Signal()
        cnt_t, cnt_acc = self._cnt_t, self._cnt_acc
        m.d.comb += [
            ce.eq(~o.valid | o.ready),
            hazard.eq((reads_t & (cnt_t != 0)) | (reads_acc & (cnt_acc != 0))),
            issue.eq(busy & ~hazard & ce),
            done.eq(issue & final),
            self.i_stream.ready.eq(ce & (~busy | done)),
        ]

        # --- pipeline (its sync domain only advances with ce) ---------------
        pm = Module()
        m.submodules.pipe = EnableInserter(ce)(pm)

        def operand(k, j):
            word = regs[k][j % n]
            if j >= n:
                return Cat(Const(0, 16), word[16:32])
            return Mux(fmt, Cat(Const(0, 16), word[0:16]), word)

        def partner(j, s):
            if s == n:
                return (j + n) % slots
            h, i = divmod(j, n)
            return h * n + (i + s) % n

        # Stage 0: operands and controls of the issued micro-op.
        sv, sdst = self._sv, self._sdst
        ctl = {"unit": Signal(2, name="s0_unit"), "fn": Signal(4, name="s0_fn"),
               "fmt": Signal(name="s0_fmt"), "last": Signal(name="s0_last")}
        pm.d.sync += [sv[0].eq(busy & ~hazard), sdst[0].eq(dst), ctl["unit"].eq(unit),
                      ctl["fn"].eq(fn), ctl["fmt"].eq(fmt), ctl["last"].eq(last | is_reduce)]
        results = []
        for j in range(slots):
            vals = {}
            for pos in "xyz":
                v = Signal(32, name=f"{pos}{j}")
                with m.Switch(sel[pos]):
                    for i, key in enumerate(srcs[pos]):
                        with m.Case(i):
                            if isinstance(key, int):
                                m.d.comb += v.eq(key)
                            elif key in "abc":
                                m.d.comb += v.eq(operand(key, j))
                            elif key == "t":
                                m.d.comb += v.eq(t[j])
                            elif key == "acc":
                                m.d.comb += v.eq(acc[j])
                            elif key == "acc0":
                                m.d.comb += v.eq(Mux(first, ident, acc[j]))
                            elif key == "accp":
                                with m.Switch(stride_sel):
                                    for si, s in enumerate(strides):
                                        if s:
                                            with m.Case(si):
                                                m.d.comb += v.eq(acc[partner(j, s)])
                            else:  # pragma: no cover - table and decoder disagree
                                raise AssertionError(key)
                r = Signal(32, name=f"s0_{pos}{j}")
                pm.d.sync += r.eq(v)
                vals[pos] = r
            x, y, z = vals["x"], vals["y"], vals["z"]
            units = self.UNITS
            outs = {
                "fma": units.fma(pm, x, y, z, name=f"fma{j}"),
                "exp": units.exp(pm, x, name=f"exp{j}"),
                "recip": units.recip(pm, x, name=f"rcp{j}"),
                "rsqrt": units.rsqrt(pm, x, name=f"rsq{j}"),
                "misc": units.misc(pm, ctl["fn"], x, y, z, name=f"misc{j}"),
            }
            padded = {}
            for k, (val, lat) in outs.items():
                assert lat == units.LATENCY[k], (k, lat)
                padded[k] = fpu.delay(pm, val, L - lat, f"pad_{k}{j}")
            results.append(padded)
        # Controls travel alongside the data.
        for k in range(1, L + 1):
            pm.d.sync += [sv[k].eq(sv[k - 1]), sdst[k].eq(sdst[k - 1])]
        ctlL = {k: fpu.delay(pm, v, L, f"ctl_{k}") for k, v in ctl.items()}
        # sfu function select only: the misc unit took its fn at stage 0.
        vL, dstL = sv[L], sdst[L]

        # --- write-back ---------------------------------------------------
        res = []
        for j, r in enumerate(results):
            w = Signal(32, name=f"res{j}")
            with m.Switch(ctlL["unit"]):
                with m.Case(_UNIT["fma"]):
                    m.d.comb += w.eq(r["fma"])
                with m.Case(_UNIT["sfu"]):
                    m.d.comb += w.eq(Mux(ctlL["fn"] == 0, r["exp"],
                                         Mux(ctlL["fn"] == 1, r["recip"], r["rsqrt"])))
                with m.Default():
                    m.d.comb += w.eq(r["misc"])
            res.append(w)
        word = [Mux(dstL == _DST["outb"], res[0], res[j]) for j in range(slots)]
        packed = Signal(32 * n)
        m.d.comb += packed.eq(Cat(*[Mux(ctlL["fmt"], Cat(fpu.rne_bf16(word[i]),
                                                         fpu.rne_bf16(word[n + i])),
                                        word[i]) for i in range(n)]))
        # MXQP: dense codes (width from slot 0's format select), scale in the top byte.
        msel = res[0][16:19]
        codes = {w: Cat(*[res[i][0:w] for i in range(n)]) for w in (8, 6, 4)}
        mxp = Signal(32 * n)
        m.d.comb += mxp.eq(Cat(Mux(msel == 4, codes[4],
                                   Mux((msel == 2) | (msel == 3), codes[6], codes[8])),
                               Const(0, 24 * n - 8), res[0][8:16]))
        wb = Signal()
        m.d.comb += wb.eq(ce & vL)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(wb):
            with m.Switch(dstL):
                with m.Case(_DST["t"]):
                    m.d.sync += [t[j].eq(res[j]) for j in range(slots)]
                with m.Case(_DST["acc"]):
                    m.d.sync += [acc[j].eq(res[j]) for j in range(slots)]
                with m.Default():
                    m.d.sync += [o.valid.eq(1),
                                 o.payload.data.eq(Mux(dstL == _DST["outp"], mxp, packed)),
                                 o.payload.last.eq(ctlL["last"])]

        # In-flight writes of t / acc (issue adds, write-back removes).
        for cnt, reg in ((cnt_t, "t"), (cnt_acc, "acc")):
            inc = issue & (dst == _DST[reg])
            dec = wb & (dstL == _DST[reg])
            with m.If(inc & ~dec):
                m.d.sync += cnt.eq(cnt + 1)
            with m.Elif(dec & ~inc):
                m.d.sync += cnt.eq(cnt - 1)

        # --- sequencing -----------------------------------------------------
        with m.If(issue):
            m.d.sync += step.eq(step + 1)
        with m.If(done):
            m.d.sync += busy.eq(0)
            with m.If(is_reduce):
                m.d.sync += first.eq(last)

        p = self.i_stream.payload
        accept = self.i_stream.valid & self.i_stream.ready
        valid_op = p.op < N_OPS
        is_cvt = 0
        for name in CVT_OPS:
            is_cvt = is_cvt | (p.op == OP[name])
        with m.If(accept):
            m.d.sync += [
                busy.eq(1), step.eq(0), op.eq(p.op), last.eq(p.last),
                fmt.eq(p.fmt & valid_op & ~is_cvt),
                regs["a"].eq(p.a), regs["b"].eq(p.b), regs["c"].eq(p.c),
            ]
            with m.If(~valid_op):
                m.d.sync += self.error.eq(1)
        return m
