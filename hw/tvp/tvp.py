"""The TVP: an N-lane FP32 / BF16x2 SIMD vector processor on streams."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_pow2
from sim import tvp as golden

from . import fpu

__all__ = ["TVP", "in_layout", "out_layout"]

OP_BITS = 5
_SFU_FNS = ["exp", "recip", "rsqrt"]
_DST = {"t": 0, "acc": 1, "out": 2, "outb": 3}
_UNIT = {"fma": 0, "sfu": 1, "misc": 2}


def in_layout(lanes):
    """Input beat: one instruction with its three operand vectors."""
    return data.StructLayout({
        "op": OP_BITS,
        "fmt": 1,
        "last": 1,
        "a": data.ArrayLayout(32, lanes),
        "b": data.ArrayLayout(32, lanes),
        "c": data.ArrayLayout(32, lanes),
    })


def out_layout(lanes):
    """Output beat: one result vector."""
    return data.StructLayout({"data": data.ArrayLayout(32, lanes), "last": 1})


class TVP(wiring.Component):
    """Tile vector processor: ``lanes`` 32-bit lanes, FP32 or two BF16 per lane.

    Each input beat is an instruction (``op``, ``fmt``, ``last``) with operand
    vectors ``a``, ``b``, ``c``; it runs as the micro-program
    :func:`sim.tvp.program` (one micro-op per cycle, every slot in parallel)
    and, unless it is a non-final reduction beat, yields one output beat.
    A new beat is accepted in the cycle the previous one finishes, so an
    ``n``-micro-op instruction sustains one beat every ``n`` cycles.

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

    #: The per-slot unit builders (``fma``, ``exp``, ``recip``, ``rsqrt``, ``misc``);
    #: a formal wrapper may substitute cheap stand-ins to check the sequencer alone.
    UNITS = fpu

    def __init__(self, *, lanes=16):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        self._programs = golden.PROGRAMS(lanes)
        # Sequencer state shared with invariants() / the formal wrapper.
        self._busy = Signal(name="busy")          # a beat is being executed
        self._produces = Signal(name="produces")  # ... and it yields an output beat
        self._in_prog = Signal(name="in_prog")    # (op, fmt, last, step) is a program step
        self._step = Signal(max(1, (self.max_steps - 1).bit_length()), name="step")
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

    def invariants(self):
        return [((~self._busy) | self._in_prog, "step_in_program")]

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        slots = 2 * n
        progs = self._programs
        nsteps = self.max_steps
        sw = max(1, (nsteps - 1).bit_length())

        # --- the set of sources/constants/strides used anywhere --------------
        srcs = {pos: [] for pos in "xyz"}
        strides, idents = [0], [0]
        for prog in progs.values():
            for u in prog:
                for pos in "xyz":
                    key = getattr(u, pos)
                    if key not in srcs[pos]:
                        srcs[pos].append(key)
                if u.stride not in strides:
                    strides.append(u.stride)
                if u.ident not in idents:
                    idents.append(u.ident)

        # --- state --------------------------------------------------------
        busy, step = self._busy, self._step
        op = Signal(OP_BITS)
        fmt = Signal()          # effective format (0 for conversions / invalid ops)
        last = Signal()
        # Derived from the op/last registers (not stored): no redundant state.
        is_reduce = Signal()
        m.d.comb += is_reduce.eq((op == golden.OP["RSUM"]) | (op == golden.OP["RMAX"]))
        out_last = last | is_reduce
        m.d.comb += self._produces.eq(~is_reduce | last)
        first = Signal(init=1)  # next reduction beat starts a group
        regs = {k: Signal(data.ArrayLayout(32, n), name=f"r_{k}") for k in "abc"}
        t = [Signal(32, name=f"t{j}") for j in range(slots)]
        acc = [Signal(32, name=f"acc{j}") for j in range(slots)]

        # --- decode (op, fmt, last, step) -> controls ---------------------
        unit = Signal(2)
        fn = Signal(4)
        sel = {pos: Signal(range(max(2, len(srcs[pos]))), name=f"{pos}sel") for pos in "xyz"}
        dst = Signal(2)
        stride_sel = Signal(range(max(2, len(strides))))
        ident_sel = Signal(range(max(2, len(idents))))
        final = Signal()
        # Invalid opcode: misc mov of `a` to the output.
        m.d.comb += [unit.eq(_UNIT["misc"]), fn.eq(fpu.MISC_FNS.index("mov")),
                     sel["x"].eq(srcs["x"].index("a")), dst.eq(_DST["out"]), final.eq(1),
                     self._in_prog.eq((op >= len(golden.OPS)) & (step == 0))]
        with m.Switch(op):
            for code, name in enumerate(golden.OPS):
                with m.Case(code):
                    with m.Switch(Cat(step, last, fmt)):
                        for (pname, pfmt, plast), prog in progs.items():
                            if pname != name:
                                continue
                            for s, u in enumerate(prog):
                                with m.Case(s | plast << sw | pfmt << (sw + 1)):
                                    f = (_SFU_FNS.index(u.fn) if u.unit == "sfu" else
                                         fpu.MISC_FNS.index(u.fn) if u.unit == "misc" else 0)
                                    m.d.comb += [
                                        unit.eq(_UNIT[u.unit]), fn.eq(f),
                                        *[sel[pos].eq(srcs[pos].index(getattr(u, pos)))
                                          for pos in "xyz"],
                                        dst.eq(_DST[u.dst]),
                                        stride_sel.eq(strides.index(u.stride)),
                                        ident_sel.eq(idents.index(u.ident)),
                                        final.eq(s == len(prog) - 1),
                                        self._in_prog.eq(1),
                                    ]

        ident = Signal(32)
        with m.Switch(ident_sel):
            for i, v in enumerate(idents):
                with m.Case(i):
                    m.d.comb += ident.eq(v)

        # --- per-slot datapath --------------------------------------------
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

        res = []
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
                vals[pos] = v
            x, y, z = vals["x"], vals["y"], vals["z"]
            units = self.UNITS
            r_fma = units.fma(m, x, y, z, name=f"fma{j}")
            r_exp = units.exp(m, x, name=f"exp{j}")
            r_rcp = units.recip(m, x, name=f"rcp{j}")
            r_rsq = units.rsqrt(m, x, name=f"rsq{j}")
            r_misc = units.misc(m, fn, x, y, z, name=f"misc{j}")
            r = Signal(32, name=f"res{j}")
            with m.Switch(unit):
                with m.Case(_UNIT["fma"]):
                    m.d.comb += r.eq(r_fma)
                with m.Case(_UNIT["sfu"]):
                    m.d.comb += r.eq(Mux(fn == 0, r_exp, Mux(fn == 1, r_rcp, r_rsq)))
                with m.Default():
                    m.d.comb += r.eq(r_misc)
            res.append(r)

        # --- output packing -------------------------------------------------
        word = [Mux(dst == _DST["outb"], res[0], res[j]) for j in range(slots)]
        packed = Signal(data.ArrayLayout(32, n))
        for i in range(n):
            m.d.comb += packed[i].eq(Mux(fmt, Cat(fpu.rne_bf16(word[i]), fpu.rne_bf16(word[n + i])),
                                         word[i]))

        # --- sequencing -----------------------------------------------------
        writes_out = dst[1]
        o_free = ~self.o_stream.valid | self.o_stream.ready
        advance = Signal()
        done = Signal()
        m.d.comb += [
            advance.eq(busy & (~final | ~writes_out | o_free)),
            done.eq(advance & final),
            self.i_stream.ready.eq(~busy | done),
        ]
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(advance):
            m.d.sync += step.eq(step + 1)
            with m.Switch(dst):
                with m.Case(_DST["t"]):
                    m.d.sync += [t[j].eq(res[j]) for j in range(slots)]
                with m.Case(_DST["acc"]):
                    m.d.sync += [acc[j].eq(res[j]) for j in range(slots)]
                with m.Default():
                    m.d.sync += [self.o_stream.valid.eq(1),
                                 self.o_stream.payload.data.eq(packed),
                                 self.o_stream.payload.last.eq(out_last)]
        with m.If(done):
            m.d.sync += busy.eq(0)
            with m.If(is_reduce):
                m.d.sync += first.eq(last)

        p = self.i_stream.payload
        accept = self.i_stream.valid & self.i_stream.ready
        valid_op = p.op < len(golden.OPS)
        is_cvt = 0
        for name in golden.CVT_OPS:
            is_cvt = is_cvt | (p.op == golden.OP[name])
        with m.If(accept):
            m.d.sync += [
                busy.eq(1), step.eq(0), op.eq(p.op), last.eq(p.last),
                fmt.eq(p.fmt & valid_op & ~is_cvt),
                regs["a"].eq(p.a), regs["b"].eq(p.b), regs["c"].eq(p.c),
            ]
            with m.If(~valid_op):
                m.d.sync += self.error.eq(1)
        return m
