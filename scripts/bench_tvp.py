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
    table = ["| function | max error vs float64 | worst input | points |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(table) + "\n"


def throughput(quick):
    """Run the cocotb ``throughput`` coroutine (4 lanes); return its JSON figures."""
    from sim.rtl.blocks import run_tvp
    lanes = 4
    BUILD.mkdir(parents=True, exist_ok=True)
    out = (BUILD / f"throughput_{lanes}.json").resolve()
    # Same build as the 4-lane tb runs (identical parameters and Verilog).
    run_tvp(lanes, test_module="tb.tvp.test_tvp", testcase="throughput", sim="verilator",
            extra_env={"TVP_BENCH_OUT": str(out)})
    return json.loads(out.read_text())


def model_figures(lanes, row=1024, beats=64):
    """Cycle figures of ``TVP(lanes)`` from :class:`sim.tvp.TimingModel`.

    Each pass of a composed row is issued back to back and then drained
    (``latency`` cycles) before the next pass starts, as a host that waits for
    a result before using it would do.
    """
    from hw.tvp import TVP
    tvp = TVP(lanes=lanes)
    gap, lat = tvp.hazard_gap, tvp.latency
    ops = {}
    for op in OPS:
        for fmt in ((0,) if op in CVT_OPS else (0, 1)):
            seq = [(op, fmt, int(k == beats - 1)) for k in range(beats)]
            steady = TimingModel(lanes=lanes, gap=gap).run(seq[:-1]) / (beats - 1)
            total = TimingModel(lanes=lanes, gap=gap).run(seq) + lat
            per = lanes * (2 if fmt else 1)
            ops[f"{op}/{'bf16' if fmt else 'fp32'}"] = {
                "cycles_per_beat": steady, "steady_elements_per_cycle": per / steady,
                "elements_per_cycle": per * beats / total}
    comp = {}
    for fmt in (0, 1):
        nb = row // (lanes * (2 if fmt else 1))
        for name in ("softmax", "layernorm"):
            passes = kernel_passes(name, nb, fmt)
            comp[f"{name}/{'bf16' if fmt else 'fp32'}"] = sum(
                TimingModel(lanes=lanes, gap=gap).run(p) + lat for p in passes)
    return {"lanes": lanes, "gap": gap, "latency": lat, "row": row, "ops": ops,
            "composed": comp}


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
             accuracy(quick)]
    tp = throughput(quick)
    _record(tp)
    md = model_figures(16)
    n = tp["lanes"]
    parts.append("\nThroughput, 64 beats per op, valid/ready always high (BF16 = two values "
                 "per lane). *steady* = elements per cycle with beats issued back to back; "
                 "*run* = elements / cycles of the whole 64-beat run, including the "
                 f"{md['latency']}-cycle pipeline latency once. A micro-op that reads `t` or "
                 "the accumulators waits for the previous write of that register "
                 f"({md['gap']} cycles after its issue), so multi-micro-op programs (GELU, "
                 "SiLU) and reductions (each beat adds onto the previous one) run below one "
                 "beat per cycle. The 16-lane columns come from `sim.tvp.TimingModel`, the "
                 "issue model of the RTL; the RTL was measured in Verilator at "
                 f"{n} lanes (the 16-lane Verilator model is too large to build on the shared "
                 "machine), where the `throughput` test checks it against the same model "
                 "(within the pipeline latency + 4 cycles of testbench overhead):\n\n")
    rows = ["| op | cycles/beat (steady) | 16 lanes fp32 elem/cycle steady (run) | "
            "16 lanes bf16 elem/cycle steady (run) | "
            f"{n} lanes fp32 measured elem/cycle (run) |", "|---|---|---|---|---|"]
    for op in OPS:
        f, b = md["ops"].get(f"{op}/fp32"), md["ops"].get(f"{op}/bf16")
        meas = tp["ops"][f"{op}/fp32"]
        cell = (f"{b['steady_elements_per_cycle']:.2f} ({b['elements_per_cycle']:.2f})"
                if b else "-")
        rows.append(f"| {op} | {f['cycles_per_beat']:.2f} | "
                    f"{f['steady_elements_per_cycle']:.2f} ({f['elements_per_cycle']:.2f}) | "
                    f"{cell} | {meas['elements_per_cycle']:.2f} |")
    parts.append("\n".join(rows) + "\n")
    c, cm = tp["composed"], md["composed"]
    check = model_figures(n, row=tp["row"])["composed"]
    same = all(check[k] == c[k] for k in c)
    parts.append(f"\nComposed 1x{tp['row']} rows, cycles (each pass streamed and drained "
                 "before the next; measured: from the first beat in to the last beat out, "
                 "including the testbench turn-around between passes; the model gives "
                 f"{'exactly the measured' if same else 'different'} cycle counts at "
                 f"{n} lanes{'' if same else ': ' + str(check)}):\n\n"
                 f"| row | 16 lanes fp32 (model) | 16 lanes bf16x2 (model) | {n} lanes fp32 "
                 f"(measured) | {n} lanes bf16x2 (measured) |\n|---|---|---|---|---|\n"
                 f"| softmax (RMAX, SUB, EXP, RSUM, RECIP, MUL) | {cm['softmax/fp32']} | "
                 f"{cm['softmax/bf16']} | {c['softmax/fp32']} | {c['softmax/bf16']} |\n"
                 f"| layernorm (RSUM, MUL, SUB, MUL, RSUM, FMA, RSQRT, MUL, FMA) | "
                 f"{cm['layernorm/fp32']} | {cm['layernorm/bf16']} | {c['layernorm/fp32']} | "
                 f"{c['layernorm/bf16']} |\n")
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
