"""TVP slot array: operand select, the pipelined per-slot units, ``t``/``acc`` write-back."""
from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_pow2

from . import fpu
from .microcode import DST, UNIT, Dst, operand_sources
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

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes (a power of two in ``[1, 64]``).
    programs : dict
        :func:`hw.tvp.microcode.PROGRAMS` of ``lanes`` (sets the operand muxes).
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

    def __init__(self, *, lanes, programs, units):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        self._programs = programs
        self._units = units
        depth = self.latency + 1
        self.stage_valid = [Signal(name=f"s{k}_valid") for k in range(depth)]
        self.stage_dst = [Signal(3, name=f"s{k}_dst") for k in range(depth)]
        self._cnt = {"t": Signal(range(depth + 2), name="cnt_t"),
                     "acc": Signal(range(depth + 2), name="cnt_acc")}
        super().__init__({
            "i_stream": In(stream.Signature(uop_layout(lanes, programs))),
            "o_stream": Out(stream.Signature(result_layout(lanes))),
            "t_pending": Out(1),
            "acc_pending": Out(1),
        })

    @property
    def latency(self):
        """Register stages of the slowest unit (every unit is padded to it)."""
        return max(self._units.LATENCY.values())

    def invariants(self):
        """The in-flight write counters of ``t`` / ``acc`` equal the pipeline contents."""
        inv = []
        for reg, cnt in self._cnt.items():
            inflight = 0
            for v, d in zip(self.stage_valid, self.stage_dst):
                inflight = inflight + (v & (d == DST[reg]))
            inv.append((cnt == inflight, f"count_{reg}"))
        return inv

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        slots = 2 * n
        L = self.latency
        units = self._units
        srcs, strides, _ = operand_sources(self._programs)
        i, o = self.i_stream, self.o_stream
        u = i.payload
        t = [Signal(32, name=f"t{j}") for j in range(slots)]
        acc = [Signal(32, name=f"acc{j}") for j in range(slots)]

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

        def partner(j, s):
            if s == n:
                return (j + n) % slots
            h, i = divmod(j, n)
            return h * n + (i + s) % n

        # Stage 0: operands and controls of the issued micro-op.
        sv, sdst = self.stage_valid, self.stage_dst
        ctl = {"unit": Signal(2, name="s0_unit"), "fn": Signal(4, name="s0_fn"),
               "fmt": Signal(name="s0_fmt"), "last": Signal(name="s0_last")}
        pm.d.sync += [sv[0].eq(i.valid), sdst[0].eq(u.dst), ctl["unit"].eq(u.unit),
                      ctl["fn"].eq(u.fn), ctl["fmt"].eq(u.fmt), ctl["last"].eq(u.last)]
        sel = {"x": u.xsel, "y": u.ysel, "z": u.zsel}
        results = []
        for j in range(slots):
            vals = {}
            for pos in "xyz":
                v = Signal(32, name=f"{pos}{j}")
                with m.Switch(sel[pos]):
                    for si, key in enumerate(srcs[pos]):
                        with m.Case(si):
                            if isinstance(key, int):
                                m.d.comb += v.eq(key)
                            elif key in "abc":
                                m.d.comb += v.eq(operand(key, j))
                            elif key == "t":
                                m.d.comb += v.eq(t[j])
                            elif key == "acc":
                                m.d.comb += v.eq(acc[j])
                            elif key == "acc0":
                                m.d.comb += v.eq(Mux(u.first, u.ident, acc[j]))
                            elif key == "accp":
                                with m.Switch(u.stride):
                                    for ki, s in enumerate(strides):
                                        if s:
                                            with m.Case(ki):
                                                m.d.comb += v.eq(acc[partner(j, s)])
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
                    m.d.sync += [acc[j].eq(res[j]) for j in range(slots)]
        m.d.comb += [
            o.valid.eq(vL & (dstL != DST["t"]) & (dstL != DST["acc"])),
            o.payload.res.eq(Cat(*res)), o.payload.dst.eq(dstL),
            o.payload.fmt.eq(ctlL["fmt"]), o.payload.last.eq(ctlL["last"]),
        ]

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
