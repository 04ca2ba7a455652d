# amaranth: UnusedElaboratable=no
# (model_figures builds a TVP only to read its timing properties)
"""TVP figures: accuracy of the approximations, throughput, composed rows, ECP5 cost.

* accuracy of ``exp``/``recip``/``rsqrt`` (max ulp vs float64) and GELU/SiLU
  (max abs error vs float64) from the golden model :mod:`sim.tvp`, which the
  RTL matches bit for bit;
* elements/cycle per op and cycles for softmax / layernorm of a 1x1024 row,
  measured in Verilator (cocotb ``throughput`` coroutine of ``tb/tvp``);
* LUT/FF/DSP and Fmax of the registered ``tvp`` top on ECP5, read from
  ``docs/fpga.json`` (written by ``python -m scripts.fpga --only tvp``).
"""
import json
import math
from pathlib import Path

import numpy as np

from sim import fp32
from sim.measured import record_measurements
from sim.perf.tvp import kernel_passes
from sim.tvp import CVT_OPS, OPS, TimingModel, TVPModel, exp_f32, recip_f32, rsqrt_f32

BUILD = Path("build/bench/tvp")


def _ulp(ref):
    e = max(math.frexp(ref)[1] - 1, -126)
    return 2.0 ** (e - 23)


def _f32_grid(lo, hi, n, rng):
    """Random FP32 values with uniformly random exponent in [lo, hi] (both signs)."""
    e = rng.integers(lo, hi + 1, n)
    m = rng.integers(0, 1 << 23, n)
    return [int(v) for v in ((e + 127) << 23 | m)]


def unit_eval(op, x):
    """One FP32 element through an element-wise op of the golden model."""
    model = TVPModel(lanes=1)
    return model.step(op, 0, 0, [x], [0], [0])[0][0]


def accuracy(quick):
    rng = np.random.default_rng(7)
    n = 20_000 if quick else 200_000
    rows = []
    # exp over its whole normal-output range.
    xs = [fp32.from_float(v) for v in rng.uniform(-87.3, 88.7, n).astype(np.float32)]
    xs += [fp32.from_float(v) for v in (rng.uniform(-1, 1, n // 4) *
                                        2.0 ** rng.integers(-30, 0, n // 4)).astype(np.float32)]
    worst = max((abs(fp32.to_float(exp_f32(x)) - math.exp(fp32.to_float(x))) /
                 _ulp(math.exp(fp32.to_float(x))), x) for x in xs
                if math.exp(fp32.to_float(x)) >= 2.0 ** -126)
    rows.append(("exp", f"{worst[0]:.3f} ulp", f"x = {fp32.to_float(worst[1]):.7g}", len(xs)))
    xs = _f32_grid(-125, 125, n, rng)
    worst = max((abs(fp32.to_float(recip_f32(x)) - 1 / fp32.to_float(x)) /
                 _ulp(1 / fp32.to_float(x)), x) for x in xs)
    rows.append(("recip", f"{worst[0]:.3f} ulp", f"x = {fp32.to_float(worst[1]):.7g}", len(xs)))
    xs = _f32_grid(-126, 127, n, rng)
    worst = max((abs(fp32.to_float(rsqrt_f32(x)) - fp32.to_float(x) ** -0.5) /
                 _ulp(fp32.to_float(x) ** -0.5), x) for x in xs)
    rows.append(("rsqrt", f"{worst[0]:.3f} ulp", f"x = {fp32.to_float(worst[1]):.7g}", len(xs)))

    m = 4_000 if quick else 40_000
    grid = np.concatenate([np.linspace(-12, 12, m), rng.uniform(-100, 100, m // 4)])
    xs = [fp32.from_float(float(v)) for v in grid.astype(np.float32)]
    silu = [(abs(fp32.to_float(unit_eval("SILU", x)) -
                 (lambda v: v / (1 + math.exp(-v)))(fp32.to_float(x))), x) for x in xs]
    w = max(silu)
    rows.append(("SiLU", f"{w[0]:.3g} abs", f"x = {fp32.to_float(w[1]):.5g}", len(xs)))

    def gelu_tanh(v):
        return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))

    def gelu_erf(v):
        return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))

    g = [(fp32.to_float(unit_eval("GELU", x)), fp32.to_float(x)) for x in xs]
    w = max((abs(y - gelu_tanh(v)), v) for y, v in g)
    rows.append(("GELU vs tanh form", f"{w[0]:.3g} abs", f"x = {w[1]:.5g}", len(xs)))
    w = max((abs(y - gelu_erf(v)), v) for y, v in g)
    rows.append(("GELU vs erf (exact)", f"{w[0]:.3g} abs", f"x = {w[1]:.5g}", len(xs)))
    # SwiGLU(a, b) = silu(a) * b, relative to |b| (b in [-4, 4]).
    bs = [fp32.from_float(float(v)) for v in rng.uniform(-4, 4, len(xs)).astype(np.float32)]
    model = TVPModel(lanes=1)
    sw = []
    for x, b in zip(xs, bs):
        y = fp32.to_float(model.step("SWIGLU", 0, 0, [x], [b], [0])[0][0])
        v, bv = fp32.to_float(x), fp32.to_float(b)
        sw.append((abs(y - v / (1 + math.exp(-v)) * bv) / max(abs(bv), 1e-30), x))
    w = max(sw)
    rows.append(("SwiGLU / abs(b)", f"{w[0]:.3g} abs", f"a = {fp32.to_float(w[1]):.5g}", len(xs)))
    # EXPD(a, b) = exp(a - b) over the softmax range a - b in [-87, 0].
    a = rng.uniform(-40, 40, m).astype(np.float32)
    b = (a + rng.uniform(0, 40, m)).astype(np.float32)
    worst = (0, 0)
    for av, bv in zip(a, b):
        y = fp32.to_float(model.step("EXPD", 0, 0, [fp32.from_float(float(av))],
                                     [fp32.from_float(float(bv))], [0])[0][0])
        ref = math.exp(float(fp32.to_float(fp32.sub(fp32.from_float(float(av)),
                                                     fp32.from_float(float(bv))))))
        if ref >= 2.0 ** -126:
            worst = max(worst, (abs(y - ref) / _ulp(ref), float(av - bv)))
    rows.append(("EXPD vs exp(fp32(a - b))", f"{worst[0]:.3f} ulp", f"a - b = {worst[1]:.5g}", m))
    table = ["| function | max error vs float64 | worst input | points |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(table) + "\n"


class _Rows:
    """Composed rows on the golden model (= RTL bit for bit), for their accuracy."""

    def __init__(self, lanes, fmt):
        self.n, self.fmt = lanes, fmt
        self.m = TVPModel(lanes=lanes)

    def words(self, x):
        n = self.n
        bits = [fp32.from_float(float(v)) for v in x]
        if not self.fmt:
            return [bits[k:k + n] for k in range(0, len(bits), n)]
        h = [fp32.f32_to_bf16(b) for b in bits]
        return [[h[k + n + i] << 16 | h[k + i] for i in range(n)]
                for k in range(0, len(h), 2 * n)]

    def floats(self, beats):
        out = []
        for w in beats:
            if self.fmt:
                out += [fp32.to_float((v & 0xFFFF) << 16) for v in w]
                out += [fp32.to_float(v & 0xFFFF0000) for v in w]
            else:
                out += [fp32.to_float(v) for v in w]
        return np.array(out)

    def run(self, op, a, b=None, c=None, reduce=False):
        z = [[0] * self.n] * len(a)
        b, c = b or z, c or z
        out = [self.m.step(op, self.fmt, int(reduce and k == len(a) - 1), a[k], b[k], c[k])
               for k in range(len(a))]
        out = [w for w, _ in filter(None, out)]
        return out

    def splat(self, v, k):
        return self.words([v] * (k * self.n * (2 if self.fmt else 1)))


def row_accuracy(lanes=16, length=1024, seed=11):
    """Max error vs float64 of composed rows (softmax, layernorm, RMSNorm, RoPE, SwiGLU)."""
    rng = np.random.default_rng(seed)
    rows = []
    for fmt in (0, 1):
        r = _Rows(lanes, fmt)
        x = r.words(rng.normal(0, 3, length))
        xq = r.floats(x)
        nb = len(x)
        inv = r.splat(1.0 / length, 1)
        mx_ = r.run("RMAX", x, reduce=True)[0]
        e = r.run("EXPD", x, [mx_] * nb)
        s_ = r.run("RSUM", e, reduce=True)[0]
        rc = r.run("RECIP", [s_])[0]
        y = r.floats(r.run("MUL", e, [rc] * nb))
        ref = np.exp(xq - xq.max()) / np.exp(xq - xq.max()).sum()
        rows.append(("softmax", fmt, np.max(np.abs(y - ref)), np.max(np.abs(y - ref) / ref)))
        s_ = r.run("RSUMSQ", x, reduce=True)[0]
        ve = r.run("FMA", [s_], inv, r.splat(1e-5, 1))[0]
        rs = r.run("RSQRT", [ve])[0]
        y = r.floats(r.run("MUL", x, [rs] * nb))
        ref = xq / np.sqrt(np.mean(xq * xq) + 1e-5)
        rows.append(("RMSNorm", fmt, np.max(np.abs(y - ref)), np.max(np.abs(y - ref) / np.abs(ref))))
        s_ = r.run("RSUM", x, reduce=True)[0]
        mu = r.run("MUL", [s_], inv)[0]
        d = r.run("SUB", x, [mu] * nb)
        v = r.run("RSUMSQ", d, reduce=True)[0]
        ve = r.run("FMA", [v], inv, r.splat(1e-5, 1))[0]
        rs = r.run("RSQRT", [ve])[0]
        y = r.floats(r.run("MUL", d, [rs] * nb))
        ref = (xq - xq.mean()) / np.sqrt(xq.var() + 1e-5)
        rows.append(("layernorm", fmt, np.max(np.abs(y - ref)), None))
        theta = rng.uniform(-np.pi, np.pi, length // 2).repeat(2)
        cw, sw = r.words(np.cos(theta)), r.words(np.sin(theta))
        xc = r.run("MUL", x, cw)
        y = r.floats(r.run("ROPE", x, sw, xc))
        cq, sq = r.floats(cw), r.floats(sw)
        ref = xq * cq + np.stack([-xq[1::2], xq[0::2]], 1).ravel() * sq
        rows.append(("RoPE", fmt, np.max(np.abs(y - ref)), None))
        bw = r.words(rng.normal(0, 2, length))
        bq = r.floats(bw)
        y = r.floats(r.run("SWIGLU", x, bw))
        ref = xq / (1 + np.exp(-xq)) * bq
        rows.append(("SwiGLU", fmt, np.max(np.abs(y - ref)), None))
    table = [f"| row (1x{length}, {lanes} lanes, inputs N(0, 3) rounded to the format) | "
             "format | max abs error vs float64 | max rel error |", "|---|---|---|---|"]
    for name, fmt, ab, rel in rows:
        table.append(f"| {name} | {'bf16x2' if fmt else 'fp32'} | {ab:.3g} | "
                     f"{'-' if rel is None else f'{rel:.3g}'} |")
    return "\n".join(table) + "\n"


def throughput(quick):
    """Run the cocotb ``throughput`` coroutine (1 lane, the regression lane count); return
    its JSON figures."""
    from sim.rtl.blocks import run_tvp
    lanes = 1
    BUILD.mkdir(parents=True, exist_ok=True)
    out = (BUILD / f"throughput_{lanes}.json").resolve()
    # The regression TVP (identical Verilog), 1x1024 rows.
    run_tvp(lanes, test_module="tb.tvp.test_tvp", testcase="throughput", sim="verilator",
            row=1024, extra_env={"TVP_BENCH_OUT": str(out)})
    return json.loads(out.read_text())


def model_figures(lanes, row=1024, beats=64):
    """Cycle figures of ``TVP(lanes)`` from :class:`sim.tvp.TimingModel`.

    Each pass of a composed row is issued back to back and then drained
    (``latency`` cycles) before the next pass starts, as a host that waits for
    a result before using it would do.
    """
    from hw.tvp import TVP
    from sim.perf.config import PROTOTYPE
    from sim.perf.tvp import passes_cycles
    chip = PROTOTYPE.with_(tvp_lanes=lanes)
    gap, lat = TVP.timing()[1:]
    ops = {}
    for op in OPS:
        for fmt in ((0,) if op in CVT_OPS else (0, 1)):
            seq = [(op, fmt, int(k == beats - 1)) for k in range(beats)]
            half = [(op, fmt, int(k == beats // 2 - 1)) for k in range(beats // 2)]
            steady = (TimingModel(lanes=lanes, gap=gap).run(seq)
                      - TimingModel(lanes=lanes, gap=gap).run(half)) / (beats - beats // 2)
            total = passes_cycles([seq], chip)
            per = lanes * (2 if fmt else 1)
            ops[f"{op}/{'bf16' if fmt else 'fp32'}"] = {
                "cycles_per_beat": steady, "steady_elements_per_cycle": per / steady,
                "elements_per_cycle": per * beats / total, "cycles": total}
    comp = {}
    for fmt in (0, 1):
        nb = row // (lanes * (2 if fmt else 1))
        for name in ("softmax", "layernorm", "rmsnorm"):
            comp[f"{name}/{'bf16' if fmt else 'fp32'}"] = passes_cycles(
                kernel_passes(name, nb, fmt), chip)
    return {"lanes": lanes, "gap": gap, "latency": lat, "act_latency": TVP.act_timing()[2],
            "row": row, "ops": ops, "composed": comp}


def _record(tp):
    """Store the RTL cycles in ``docs/measured.json`` for the performance-model test."""
    n = tp["lanes"]
    entries = [dict(kind="tvp_pass", op=key.split("/")[0], fmt=int(key.endswith("bf16")),
                    beats=v["elements"] // (n * (2 if key.endswith("bf16") else 1)), lanes=n,
                    cycles=v["cycles"])
               for key, v in sorted(tp["ops"].items())]
    entries += [dict(kind="tvp_kernel", kernel=key.split("/")[0], fmt=int(key.endswith("bf16")),
                     row=tp["row"], lanes=n, cycles=c) for key, c in sorted(tp["composed"].items())]
    record_measurements("tvp", entries, "make bench BENCH=tvp")


def ecp5():
    """The ``tvp`` row of ``docs/fpga.json`` (None if ``scripts.fpga`` has not run)."""
    path = Path("docs/fpga.json")
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("tvp")


def run(quick=False):
    parts = ["### TVP (tile vector processor)\n",
             "Accuracy of the approximations (golden model = RTL bit for bit), "
             "FP32 inputs, normal results (exp results below 2^-126 flush to zero):\n\n",
             accuracy(quick),
             "\nComposed rows on the golden model (the float64 reference takes the same "
             "rounded inputs; BF16 results are rounded to BF16 on output):\n\n",
             row_accuracy()]
    tp = throughput(quick)
    _record(tp)
    md = model_figures(16)
    n = tp["lanes"]
    parts.append("\nThroughput, 64 beats per op, valid/ready always high (BF16 = two values "
                 "per lane). *steady* = elements per cycle from the cycles of 64 minus 32 "
                 "back-to-back beats (reductions: one group of that length; the combine on "
                 "`last` cancels); *run* = elements / cycles of the whole 64-beat run, "
                 f"including the pipeline latency once ({md['latency']} cycles, activation "
                 f"chain ops {md['act_latency']}) and a reduction's combine on `last`. Every "
                 "op issues one beat per cycle: GELU, SiLU, SwiGLU and EXPD run on the "
                 "pipelined activation chain, reductions rotate over "
                 f"{md['gap']} accumulator banks. The 16-lane columns come from "
                 "`sim.tvp.TimingModel` + latency (`sim.perf.tvp.passes_cycles`), the issue "
                 "model of the RTL; the RTL was measured in Verilator at "
                 f"{n} lanes (the regression build; the 16-lane Verilator model is too large "
                 "to build on the shared machine), where the `throughput` test checks it "
                 "against the same model and fails if any op is below one beat per cycle:\n\n")
    rows = ["| op | cycles/beat (steady, model 16 lanes) | 16 lanes fp32 elem/cycle steady (run) | "
            "16 lanes bf16 elem/cycle steady (run) | "
            f"{n} lanes fp32 measured cycles/beat, elem/cycle steady (run) | "
            f"{n} lanes fp32 model cycles (64 beats) = measured |", "|---|---|---|---|---|---|"]
    mn = model_figures(n)
    for op in OPS:
        f, b = md["ops"].get(f"{op}/fp32"), md["ops"].get(f"{op}/bf16")
        meas = tp["ops"][f"{op}/fp32"]
        cell = (f"{b['steady_elements_per_cycle']:.2f} ({b['elements_per_cycle']:.2f})"
                if b else "-")
        mcyc = mn["ops"][f"{op}/fp32"]["cycles"]
        rows.append(f"| {op} | {f['cycles_per_beat']:.2f} | "
                    f"{f['steady_elements_per_cycle']:.2f} ({f['elements_per_cycle']:.2f}) | "
                    f"{cell} | {meas['cycles_per_beat']:.2f}, "
                    f"{meas['steady_elements_per_cycle']:.2f} ({meas['elements_per_cycle']:.2f}) | "
                    f"{mcyc} {'=' if mcyc == meas['cycles'] else '!='} {meas['cycles']} |")
    parts.append("\n".join(rows) + "\n")
    c, cm = tp["composed"], md["composed"]
    check = model_figures(n, row=tp["row"])["composed"]
    same = all(check[k] == c[k] for k in c)
    tgt = {"softmax": 450, "layernorm": 650, "rmsnorm": 650}
    verdict = ", ".join(f"{k} {cm[k + '/fp32']} {'<=' if cm[k + '/fp32'] <= v else '>'} {v} "
                        f"({'met' if cm[k + '/fp32'] <= v else 'MISSED'})"
                        for k, v in tgt.items())
    parts.append(f"\nComposed 1x{tp['row']} rows, cycles (each pass streamed and drained "
                 "before the next; measured: from the first beat in to the last beat out "
                 "of each pass; the model gives "
                 f"{'exactly the measured' if same else 'different'} cycle counts at "
                 f"{n} lanes{'' if same else ': ' + str(check)}). Targets at 16 lanes FP32: "
                 f"{verdict}:\n\n"
                 f"| row | 16 lanes fp32 (model) | 16 lanes bf16x2 (model) | {n} lanes fp32 "
                 f"(measured) | {n} lanes bf16x2 (measured) |\n|---|---|---|---|---|\n"
                 f"| softmax (RMAX, EXPD, RSUM, RECIP, MUL) | {cm['softmax/fp32']} | "
                 f"{cm['softmax/bf16']} | {c['softmax/fp32']} | {c['softmax/bf16']} |\n"
                 f"| layernorm (RSUM, MUL, SUB, RSUMSQ, FMA, RSQRT, MUL, FMA) | "
                 f"{cm['layernorm/fp32']} | {cm['layernorm/bf16']} | {c['layernorm/fp32']} | "
                 f"{c['layernorm/bf16']} |\n"
                 f"| RMSNorm (RSUMSQ, FMA, RSQRT, MUL, MUL) | "
                 f"{cm['rmsnorm/fp32']} | {cm['rmsnorm/bf16']} | {c['rmsnorm/fp32']} | "
                 f"{c['rmsnorm/bf16']} |\n")
    r = ecp5()
    if r:
        parts.append("\nECP5 (LFE5U-85F, yosys synth_ecp5 + nextpnr, 100 MHz target, "
                     "`make fpga TOPS=tvp`) for the registered top `TVP(lanes=1)` (2 FP32 "
                     "slots, each with its own pipelined FMA, exp, recip, rsqrt and misc/MX "
                     "units). The datapath scales linearly with the slots; the per-slot paths "
                     "do not depend on the lane count (the fan-out of the stall enable and "
                     "of the decoded controls grows with it); the 16-lane default (32 slots, about 16x the "
                     "DSPs) does not fit one ECP5-85 (156 MULT18):\n\n"
                     "| LUT4 | FF | DSP (MULT18) | Fmax (MHz) |\n|---|---|---|---|\n"
                     f"| {r['LUT4']} | {r['FF']} | {r['DSP']} | {r['Fmax']} |\n")
    return "".join(parts)


if __name__ == "__main__":
    print(run(quick=True))
