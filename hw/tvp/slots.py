"""TVP slot array: operand select, the pipelined per-slot units, ``t``/``acc`` write-back."""
from amaranth.hdl import Array, Cat, Const, EnableInserter, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_pow2

from . import fpu
from .microcode import ACT_CHAIN, ACT_FNS, ACT_TAP, DST, ROT, UNIT, Dst, Unit, operand_sources
from .sequencer import uop_layout

__all__ = ["TVPSlots", "result_layout"]


def result_layout(lanes):
    """One micro-op result bound for the output: every slot's FP32 word and the
    output controls (``dst`` is ``OUT``, ``OUTB`` or ``OUTP``)."""
    return data.StructLayout({
        "res": data.ArrayLayout(32, 2 * lanes),
        "dst": Dst,
        "fmt": 1,
        "last": 1,
    })


class TVPSlots(wiring.Component):
    """``2 lanes`` slots of pipelined FP32 units behind one micro-op stream.

    Each issued micro-op selects every slot's operands (``a``/``b``/``c``
    widened per ``fmt``, the temporary ``t``, the accumulators, constants),
    registers them in stage 0 and runs all units of every slot, each padded to
    :attr:`latency` stages so that results return in issue order. At the last
    stage the micro-op's unit result is written back into ``t`` or the
    accumulators, or sent on ``o_stream``. The pipeline has one enable: every
    stage advances exactly when ``o_stream.ready`` is high (the output stage's
    ``ready`` does not depend on ``valid``), so ``i_stream.ready`` is
    ``o_stream.ready``. ``t_pending``/``acc_pending`` say a write of that
    register is still in flight (the issue logic must not let a micro-op that
    reads it in).

    The activation chain (``act`` micro-ops, :data:`hw.tvp.microcode.ACT_CHAIN`)
    is a second, longer pipeline (:attr:`act_latency` stages) fed from the same
    stage-0 operands; its results merge with the others at the output.
    ``act_block`` is high while an ``act`` micro-op is in its first
    ``act_latency - latency`` stages: a non-``act`` micro-op issued then would
    leave before it (the issue logic holds it back), so results still leave in
    issue order and the two never collide.

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes (a power of two in ``[1, 64]``).
    programs : dict
        :func:`hw.tvp.microcode.PROGRAMS` of ``lanes`` (sets the operand muxes).
    banks : int
        Accumulator banks.
    units : namespace
        The per-slot unit builders and their ``LATENCY`` (:mod:`hw.tvp.fpu`, or
        stand-ins for a formal check of the control logic).

    Attributes
    ----------
    i_stream : In(stream.Signature(uop_layout(lanes, programs)))
        Issued micro-ops.
    o_stream : Out(stream.Signature(result_layout(lanes)))
        Results for the output stage (valid for ``out``/``outb``/``outp`` micro-ops).
    t_pending, acc_pending : Out(1)
        A write of ``t`` / the accumulators is in flight.
    stage_valid, stage_dst : list of Signal
        Pipeline occupancy (``latency + 1`` stages), for :meth:`invariants` and
        the formal wrapper.
    """

    def __init__(self, *, lanes, programs, units, banks):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        self._programs = programs
        self._units = units
        self._banks = banks
        depth = self.latency + 1
        if self.act_latency <= self.latency:
            raise ValueError(f"units: the activation chain ({self.act_latency} stages) must be "
                             f"longer than the other units ({self.latency})")
        self.stage_valid = [Signal(name=f"s{k}_valid") for k in range(depth)]
        self.stage_dst = [Signal(3, name=f"s{k}_dst") for k in range(depth)]
        self.act_valid = [Signal(name=f"a{k}_valid") for k in range(self.act_latency + 1)]
        self._cnt = {"t": Signal(range(depth + 2), name="cnt_t"),
                     "acc": Signal(range(depth + 2), name="cnt_acc")}
        super().__init__({
            "i_stream": In(stream.Signature(uop_layout(lanes, programs, banks))),
            "o_stream": Out(stream.Signature(result_layout(lanes))),
            "t_pending": Out(1),
            "acc_pending": Out(1),
            "act_block": Out(1),
        })

    @property
    def latency(self):
        """Register stages of the slowest unit (every unit is padded to it)."""
        return max(self._units.LATENCY.values())

    @property
    def act_latency(self):
        """Register stages of the activation chain."""
        return act_chain_latency(self._units.LATENCY)

    def invariants(self):
        """The in-flight write counters of ``t`` / ``acc`` equal the pipeline contents;
        a short micro-op never runs less than ``act_latency - latency + 1`` stages
        behind an ``act`` one (so it cannot overtake or collide with it)."""
        inv = []
        for reg, cnt in self._cnt.items():
            inflight = 0
            for v, d in zip(self.stage_valid, self.stage_dst):
                inflight = inflight + (v & (d == DST[reg]))
            inv.append((cnt == inflight, f"count_{reg}"))
        # A short micro-op behind an act one is at least LA - L + 1 stages behind it.
        gap = self.act_latency - self.latency + 1
        bad = 0
        for k, v in enumerate(self.stage_valid):
            for mm in range(k + 1, min(k + gap, len(self.act_valid))):
                bad = bad | (v & self.act_valid[mm])
        inv.append((~bad, "act_order"))
        return inv

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        slots = 2 * n
        nb = self._banks
        L = self.latency
        LA = self.act_latency
        units = self._units
        srcs, strides, _ = operand_sources(self._programs)
        i, o = self.i_stream, self.o_stream
        u = i.payload
        t = [Signal(32, name=f"t{j}") for j in range(slots)]
        acc = [[Signal(32, name=f"acc{b}_{j}") for j in range(slots)] for b in range(nb)]

        ce = Signal()       # the pipeline advances (the output stage can take a result)
        m.d.comb += [ce.eq(o.ready), i.ready.eq(ce)]

        # --- pipeline (its sync domain only advances with ce) ---------------
        pm = Module()
        m.submodules.pipe = EnableInserter(ce)(pm)

        def operand(k, j):
            word = getattr(u, k)[j % n]
            if j >= n:
                return Cat(Const(0, 16), word[16:32])
            return Mux(u.fmt, Cat(Const(0, 16), word[0:16]), word)

        def pair_swapped(j):
            # RoPE: slot 2m <- -a[2m+1], slot 2m+1 <- a[2m] (within the active slots).
            p = j ^ 1
            bf = operand("a", p)
            fp = operand("a", p if p < n else j)
            v = Mux(u.fmt, bf, fp)
            return v if j & 1 else v ^ 0x80000000

        def partner(j, s):
            if s == n:
                return (j + n) % slots
            h, i = divmod(j, n)
            return h * n + (i + s) % n

        def bank_word(k, j):
            if k == ROT:
                live = u.live.bit_select(u.rot, 1)
                word = Array(acc[b][j] for b in range(nb))[u.rot]
            else:
                live, word = u.live[k], acc[k][j]
            return Mux(live, word, u.ident)

        # Stage 0: operands and controls of the issued micro-op.
        sv, sdst, av = self.stage_valid, self.stage_dst, self.act_valid
        is_act = u.unit == Unit.ACT
        ctl = {"unit": Signal(2, name="s0_unit"), "fn": Signal(4, name="s0_fn"),
               "fmt": Signal(name="s0_fmt"), "last": Signal(name="s0_last"),
               "bank": Signal(range(max(2, nb)), name="s0_bank")}
        pm.d.sync += [sv[0].eq(i.valid & ~is_act), av[0].eq(i.valid & is_act),
                      sdst[0].eq(u.dst), ctl["unit"].eq(u.unit),
                      ctl["fn"].eq(u.fn), ctl["fmt"].eq(u.fmt), ctl["last"].eq(u.last),
                      ctl["bank"].eq(u.bank)]
        sel = {"x": u.xsel, "y": u.ysel, "z": u.zsel}
        results = []
        act_res = []
        for j in range(slots):
            vals = {}
            for pos in "xyz":
                v = Signal(32, name=f"{pos}{j}")
                with m.Switch(sel[pos]):
                    for si, key in enumerate(srcs[pos]):
                        with m.Case(si):
                            if isinstance(key, int):
                                m.d.comb += v.eq(key)
                            elif key in ("a", "b", "c"):
                                m.d.comb += v.eq(operand(key, j))
                            elif key == "ap":
                                m.d.comb += v.eq(pair_swapped(j))
                            elif key == "t":
                                m.d.comb += v.eq(t[j])
                            elif isinstance(key, tuple) and key[0] == "acc":
                                m.d.comb += v.eq(bank_word(key[1], j))
                            elif isinstance(key, tuple) and key[0] == "accp":
                                with m.Switch(u.stride):
                                    for ki, s in enumerate(strides):
                                        if s:
                                            with m.Case(ki):
                                                m.d.comb += v.eq(bank_word(key[1], partner(j, s)))
                            else:  # pragma: no cover - table and decoder disagree
                                raise AssertionError(key)
                r = Signal(32, name=f"s0_{pos}{j}")
                pm.d.sync += r.eq(v)
                vals[pos] = r
            x, y, z = vals["x"], vals["y"], vals["z"]
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
            act_res.append(build_act_chain(pm, units, ctl["fn"], x, y, name=f"act{j}"))
        # Controls travel alongside the data.
        for k in range(1, L + 1):
            pm.d.sync += [sv[k].eq(sv[k - 1]), sdst[k].eq(sdst[k - 1])]
        for k in range(1, LA + 1):
            pm.d.sync += av[k].eq(av[k - 1])
        ctlL = {k: fpu.delay(pm, v, L, f"ctl_{k}") for k, v in ctl.items()}
        act_ctl = {k: fpu.delay(pm, ctl[k], LA, f"actctl_{k}") for k in ("fmt", "last")}
        vL, dstL = sv[L], sdst[L]

        # --- write-back ---------------------------------------------------
        res = []
        for j, r in enumerate(results):
            w = Signal(32, name=f"res{j}")
            with m.Switch(ctlL["unit"]):
                with m.Case(UNIT["fma"]):
                    m.d.comb += w.eq(r["fma"])
                with m.Case(UNIT["sfu"]):
                    m.d.comb += w.eq(Mux(ctlL["fn"] == 0, r["exp"],
                                         Mux(ctlL["fn"] == 1, r["recip"], r["rsqrt"])))
                with m.Default():
                    m.d.comb += w.eq(r["misc"])
            res.append(w)
        wb = Signal()
        m.d.comb += wb.eq(ce & vL)
        with m.If(wb):
            with m.Switch(dstL):
                with m.Case(DST["t"]):
                    m.d.sync += [t[j].eq(res[j]) for j in range(slots)]
                with m.Case(DST["acc"]):
                    with m.Switch(ctlL["bank"]):
                        for b in range(nb):
                            with m.Case(b):
                                m.d.sync += [acc[b][j].eq(res[j]) for j in range(slots)]
        short_out = vL & (dstL != DST["t"]) & (dstL != DST["acc"])
        act_out = av[LA]
        m.d.comb += [
            o.valid.eq(short_out | act_out),
            o.payload.res.eq(Mux(act_out, Cat(*act_res), Cat(*res))),
            o.payload.dst.eq(Mux(act_out, DST["out"], dstL)),
            o.payload.fmt.eq(Mux(act_out, act_ctl["fmt"], ctlL["fmt"])),
            o.payload.last.eq(Mux(act_out, act_ctl["last"], ctlL["last"])),
        ]
        # An act micro-op in its first LA - L stages: a short one must not issue.
        block = 0
        for k in range(LA - L):
            block = block | av[k]
        m.d.comb += self.act_block.eq(block)

        # In-flight writes of t / acc (issue adds, write-back removes).
        for reg, cnt in self._cnt.items():
            inc = i.valid & i.ready & (u.dst == Dst[reg.upper()])
            dec = wb & (dstL == DST[reg])
            with m.If(inc & ~dec):
                m.d.sync += cnt.eq(cnt + 1)
            with m.Elif(dec & ~inc):
                m.d.sync += cnt.eq(cnt - 1)
        m.d.comb += [self.t_pending.eq(self._cnt["t"] != 0),
                     self.acc_pending.eq(self._cnt["acc"] != 0)]
        return m


def act_chain_latency(latency):
    """Register stages of :data:`~hw.tvp.microcode.ACT_CHAIN` for the unit ``latency`` table."""
    return sum(latency[unit] for unit, _ in ACT_CHAIN)


def build_act_chain(p, units, fn, a, b, *, name):
    """One slot's activation chain in pipeline module ``p``.

    ``fn`` (the :data:`~hw.tvp.microcode.ACT_FNS` code), ``a`` and ``b`` are
    stage-0 registers; every stage reads ``a`` / ``b`` / the previous result /
    constants, delayed to the stage's start. Returns the result of stage
    ``ACT_TAP[fn]`` at the end of the chain (:func:`act_chain_latency` stages).
    """
    total = act_chain_latency(units.LATENCY)
    off = 0
    t = Const(0, 32)
    taps = []
    delayed = {"a": (0, a), "b": (0, b), "fn": (0, fn)}

    def at(key, when):
        # key's value delayed to stage offset `when` (delays are shared along the chain).
        d, v = delayed[key]
        v = fpu.delay(p, v, when - d, f"{name}_{key}{d}")
        delayed[key] = (when, v)
        return v

    for k, (unit, srcs) in enumerate(ACT_CHAIN):
        fnk = at("fn", off)
        ops = []
        for pos in range(3):
            choices = {f: srcs[f][pos] for f in ACT_FNS}

            def value(src):
                if isinstance(src, int):
                    return Const(src, 32)
                if src == "t":
                    return t
                return at(src, off)
            vals = {f: value(c) for f, c in choices.items()}
            if len(set(choices.values())) == 1:
                ops.append(vals[ACT_FNS[0]])
            else:
                v = Signal(32, name=f"{name}_s{k}_{'xyz'[pos]}")
                with p.Switch(fnk):
                    for fi, f in enumerate(ACT_FNS):
                        with p.Case(fi):
                            p.d.comb += v.eq(vals[f])
                ops.append(v)
        if unit == "fma":
            t, lat = units.fma(p, *ops, name=f"{name}_s{k}")
        else:
            t, lat = getattr(units, unit)(p, ops[0], name=f"{name}_s{k}")
        off += lat
        taps.append((off, t))
    fn_end = at("fn", total)
    tapped = {}
    for k in sorted(set(ACT_TAP.values())):
        end, v = taps[k]
        tapped[k] = fpu.delay(p, v, total - end, f"{name}_tap{k}")
    out = Signal(32, name=f"{name}_out")
    with p.Switch(fn_end):
        for fi, f in enumerate(ACT_FNS):
            with p.Case(fi):
                p.d.comb += out.eq(tapped[ACT_TAP[f]])
    return out
