"""TVP instruction sequencer: one instruction beat in, its micro-ops out."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_pow2

from .isa import CVT_OPS, N_OPS, OP, OP_BITS, in_layout, is_reduce
from hw.common.counter import saturating_add

from .microcode import (ACT_FNS, DST, MISC_FNS, ROT, SFU_FNS, UNIT, Dst, Unit, operand_sources,
                        uop_reads)

__all__ = ["TVPSequencer", "uop_layout", "step_width"]


def step_width(programs):
    """Width of the micro-program step counter for ``programs``."""
    nsteps = max(len(p) for p in programs.values())
    return max(1, (nsteps - 1).bit_length())


def uop_layout(lanes, programs, banks):
    """One issued micro-op: decoded controls, the beat's state and its operand vectors.

    ``xsel``/``ysel``/``zsel`` and ``stride`` index the lists of
    :func:`hw.tvp.microcode.operand_sources` of ``programs``; ``ident`` is the
    reduction identity (FP32 bits), ``first`` says the accumulators start a
    group (``acc0`` reads ``ident``), ``last`` is the ``last`` bit of the output
    beat (set for every reduction beat), ``reads_t``/``reads_acc`` are the
    registers the micro-op waits for (:func:`hw.tvp.microcode.uop_reads`);
    ``bank`` the accumulator bank written (the rotating bank resolved), ``rot``
    the rotating bank, ``live`` the banks written in the current group (the
    others read as ``ident``).
    """
    srcs, strides, _ = operand_sources(programs)
    return data.StructLayout({
        "unit": Unit,
        "fn": 4,
        **{f"{pos}sel": range(max(2, len(srcs[pos]))) for pos in "xyz"},
        "dst": Dst,
        "stride": range(max(2, len(strides))),
        "ident": 32,
        "reads_t": 1,
        "reads_acc": 1,
        "fmt": 1,
        "last": 1,
        "first": 1,
        "bank": range(max(2, banks)),
        "rot": range(max(2, banks)),
        "live": banks,
        "a": data.ArrayLayout(32, lanes),
        "b": data.ArrayLayout(32, lanes),
        "c": data.ArrayLayout(32, lanes),
    })


class TVPSequencer(wiring.Component):
    """Holds one instruction beat and issues its micro-program, one micro-op per beat.

    A beat ``(op, fmt, last, a, b, c)`` is accepted when the sequencer is idle,
    or in the cycle its predecessor's last micro-op issues, and only while
    ``enable`` is high (the pipeline behind can advance). It then presents the
    micro-ops of :func:`hw.tvp.microcode.program` on ``o_stream`` in order; the
    decode ``(op, fmt, last, step) -> controls`` is generated from ``programs``.
    An invalid opcode (``>= N_OPS``) runs as one ``misc mov`` of ``a`` to the
    output and sets the sticky ``error``. The reduction group state (``first``)
    lives here: it is set again by the ``last`` beat of a reduction.

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes (a power of two in ``[1, 64]``).
    programs : dict
        :func:`hw.tvp.microcode.PROGRAMS` of ``lanes``.
    rom_decoder : bool
        Decode through a constant ROM read by a variable word select (a
        continuous assignment: Icarus never runs an ``always @*`` decoder whose
        inputs keep their initial values). ``False``: the same table as a
        ``Switch``, which the formal wrapper uses (a 26 kbit shifted constant
        makes the SMT model intractable).

    Attributes
    ----------
    i_stream : In(stream.Signature(in_layout(lanes)))
        Instruction beats.
    o_stream : Out(stream.Signature(uop_layout(lanes, programs)))
        Micro-ops; ``valid`` is ``busy``, the payload is stable until taken.
    enable : In(1)
        The pipeline advances this cycle; a new beat is accepted only then.
    error : Out(1)
        Sticky: an invalid opcode was seen.
    busy, produces, in_prog, step : Signal
        State for :meth:`invariants` and the formal wrapper: a beat is held,
        it yields an output beat, ``(op, fmt, last, step)`` is a program step,
        the step counter.
    """

    def __init__(self, *, lanes, programs, banks, rom_decoder=True):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        self._programs = programs
        self._banks = banks
        self._rom = bool(rom_decoder)
        self._sw = step_width(programs)
        self.busy = Signal(name="busy")
        self.produces = Signal(name="produces")
        self.in_prog = Signal(name="in_prog")
        self.step = Signal(self._sw, name="step")
        super().__init__({
            "i_stream": In(stream.Signature(in_layout(lanes))),
            "o_stream": Out(stream.Signature(uop_layout(lanes, programs, banks))),
            "enable": In(1),
            "error": Out(1),
            "errors": Out(16),
        })

    def invariants(self):
        """The step counter of a held beat never leaves its micro-program."""
        return [((~self.busy) | self.in_prog, "step_in_program")]

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        progs = self._programs
        sw = self._sw
        srcs, strides, idents = operand_sources(progs)

        busy, step = self.busy, self.step
        op = Signal(OP_BITS)
        fmt = Signal()          # effective format (0 for conversions / invalid ops)
        last = Signal()
        # Derived from the op/last registers (not stored): no redundant state.
        is_red = Signal(name="is_reduce")
        m.d.comb += is_red.eq(is_reduce(op))
        m.d.comb += self.produces.eq(~is_red | last)
        first = Signal(init=1)  # next reduction beat starts a group
        regs = {k: Signal(data.ArrayLayout(32, n), name=f"r_{k}") for k in "abc"}

        # --- decode (op, fmt, last, step) -> controls ---------------------
        unit = Signal(2)
        fn = Signal(4)
        sel = {pos: Signal(range(max(2, len(srcs[pos]))), name=f"{pos}sel") for pos in "xyz"}
        dst = Signal(3)
        stride_sel = Signal(range(max(2, len(strides))))
        ident_sel = Signal(range(max(2, len(idents))))
        final = Signal()
        reads_t, reads_acc = Signal(), Signal()
        nb = self._banks
        bank = Signal(range(nb + 1))   # nb: the rotating bank

        def controls(s, u, prog):
            f = (SFU_FNS.index(u.fn) if u.unit == "sfu" else
                 MISC_FNS.index(u.fn) if u.unit == "misc" else
                 ACT_FNS.index(u.fn) if u.unit == "act" else 0)
            reads = uop_reads(u)
            return dict(unit=UNIT[u.unit], fn=f, xsel=srcs["x"].index(u.x),
                        ysel=srcs["y"].index(u.y), zsel=srcs["z"].index(u.z), dst=DST[u.dst],
                        stride=strides.index(u.stride), ident=idents.index(u.ident),
                        final=int(s == len(prog) - 1), reads_t=int("t" in reads),
                        reads_acc=int("acc" in reads), in_prog=1,
                        bank=nb if u.bank == ROT else u.bank)

        fields = [("unit", unit), ("fn", fn), ("xsel", sel["x"]), ("ysel", sel["y"]),
                  ("zsel", sel["z"]), ("dst", dst), ("stride", stride_sel),
                  ("ident", ident_sel), ("final", final), ("reads_t", reads_t),
                  ("reads_acc", reads_acc), ("in_prog", self.in_prog), ("bank", bank)]
        # Invalid opcode (or a step outside the program): misc mov of `a` to the output.
        default = dict(unit=UNIT["misc"], fn=MISC_FNS.index("mov"),
                       xsel=srcs["x"].index("a"), dst=DST["out"], final=1)
        if self._rom:
            # A constant ROM indexed by (op, fmt, last, step), read with a variable word
            # select: it becomes a continuous assignment in Verilog. (A Switch would be an
            # ``always @*`` process, which Icarus never evaluates while its inputs keep
            # their initial values: the decoded controls then stay X.)
            width = sum(len(sig) for _, sig in fields)

            def pack(**vals):
                word, off = 0, 0
                for k, sig in fields:
                    word |= vals.get(k, 0) << off
                    off += len(sig)
                return word

            nidx = 1 << (sw + 2 + OP_BITS)
            rom = [pack(**default, in_prog=int(code >= N_OPS and s == 0))
                   for code in range(1 << OP_BITS) for pfmt in (0, 1) for plast in (0, 1)
                   for s in range(1 << sw)]
            for (pname, pfmt, plast), prog in progs.items():
                code = OP[pname]
                for s, u in enumerate(prog):
                    idx = s | plast << sw | pfmt << (sw + 1) | code << (sw + 2)
                    rom[idx] = pack(**controls(s, u, prog))
            assert len(rom) == nidx
            # One ROM per field: a single literal of the whole table (~80 kbit at 16
            # lanes) overflows Icarus's lexer buffer.
            index = Cat(step, last, fmt, op)
            off = 0
            for _, sig in fields:
                w = len(sig)
                col = [(word >> off) & ((1 << w) - 1) for word in rom]
                table = Const(sum(v << (k * w) for k, v in enumerate(col)), nidx * w)
                m.d.comb += sig.eq(table.word_select(index, w))
                off += w
        else:
            # The same table as a Switch (SMT-friendly; see ``rom_decoder``).
            sigs = dict(fields)
            m.d.comb += [sigs[k].eq(v) for k, v in default.items()]
            m.d.comb += self.in_prog.eq((op >= N_OPS) & (step == 0))
            with m.Switch(Cat(step, last, fmt, op)):
                for (pname, pfmt, plast), prog in progs.items():
                    code = OP[pname]
                    for s, u in enumerate(prog):
                        with m.Case(s | plast << sw | pfmt << (sw + 1) | code << (sw + 2)):
                            m.d.comb += [sigs[k].eq(v) for k, v in controls(s, u, prog).items()]

        ident = Signal(32)
        with m.Switch(ident_sel):
            for i, v in enumerate(idents):
                with m.Case(i):
                    m.d.comb += ident.eq(v)

        # --- accumulator banks: rotation and the banks written in this group --
        rot = Signal(range(max(2, nb)))
        live = Signal(nb)
        is_rot = Signal()       # the rotating accumulate: step 0 of a reduction beat
        eff_rot = Signal.like(rot)
        eff_live = Signal.like(live)
        wbank = Signal.like(rot)
        m.d.comb += [
            is_rot.eq((dst == DST["acc"]) & (bank == nb)),
            # The first accumulate of a group starts from bank 0, nothing live.
            eff_rot.eq(Mux(is_rot & first, 0, rot)),
            eff_live.eq(Mux(is_rot & first, 0, live)),
            wbank.eq(Mux(is_rot, eff_rot, bank)),
        ]

        # --- the micro-op stream ------------------------------------------
        o = self.o_stream
        u = o.payload
        m.d.comb += [
            o.valid.eq(busy),
            u.unit.eq(unit), u.fn.eq(fn), u.xsel.eq(sel["x"]), u.ysel.eq(sel["y"]),
            u.zsel.eq(sel["z"]), u.dst.eq(dst), u.stride.eq(stride_sel), u.ident.eq(ident),
            u.reads_t.eq(reads_t), u.reads_acc.eq(reads_acc),
            u.fmt.eq(fmt), u.last.eq(last | is_red), u.first.eq(first),
            u.bank.eq(wbank), u.rot.eq(eff_rot), u.live.eq(eff_live),
            u.a.eq(regs["a"]), u.b.eq(regs["b"]), u.c.eq(regs["c"]),
        ]
        issue = Signal()
        done = Signal()
        m.d.comb += [
            issue.eq(o.valid & o.ready),
            done.eq(issue & final),
            self.i_stream.ready.eq(self.enable & (~busy | done)),
        ]

        # --- sequencing -----------------------------------------------------
        with m.If(issue):
            m.d.sync += step.eq(step + 1)
            with m.If(dst == DST["acc"]):
                m.d.sync += live.eq(eff_live | (1 << wbank))
            with m.If(is_rot):
                m.d.sync += [first.eq(0), rot.eq(Mux(eff_rot == nb - 1, 0, eff_rot + 1))]
        with m.If(done):
            m.d.sync += busy.eq(0)
            with m.If(is_red & last):
                m.d.sync += first.eq(1)

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
            # An invalid opcode, or BF16X2 on a conversion (which only exists in
            # FP32 form), is counted; the beat still runs to a defined result.
            with m.If(~valid_op | (p.fmt & is_cvt)):
                m.d.sync += self.error.eq(1)
                saturating_add(m, self.errors)
        return m
