"""TTU benchmark: GEMM cycles and MAC utilisation, ECP5 cost of a PE.

``run(quick=False)`` returns a markdown section for ``docs/results.md``:

* cycles / utilisation of 64^3 and 256^3 GEMMs on 8x8 and 16x16 arrays, FP8 (E4M3)
  and FP4 (E2M1), from :class:`sim.ttu.CycleModel`; the model equals the RTL cycle
  for cycle (``tb/ttu/test_ttu.py::cycle_count``), and unless ``quick`` the 64^3
  GEMMs on the 8x8 array are also simulated (Verilator, results checked bit for bit);
* the ECP5 figures of the ``ttu_pe``, ``ttu_2x2`` and ``ttu_8x8`` tops as recorded by
  ``make fpga`` in ``docs/fpga.json`` (not re-run here: the 8x8 place and route
  takes many minutes).
"""
import json
from pathlib import Path

from sim.measured import record_measurements
from sim.ttu import CycleModel

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
    from sim.rtl.blocks import run_ttu
    OUT.mkdir(parents=True, exist_ok=True)
    out = (REPO / OUT / "rtl_cycles.json").resolve()
    bench = {"bench": [[64, f, f] for _, f in FORMATS], "bench_out": str(out)}
    # Same build as the 8x8 regression test (tb/ttu/test_ttu.py::test_ttu_8x8).
    run_ttu(8, 8, 32, test_module="tb.ttu.test_ttu", testcase="bench_gemm",
            extra_env={"TTU_BENCH": json.dumps(bench)})
    cycles = json.loads(out.read_text())
    record_ttu(cycles)
    return cycles


def record_ttu(cycles):
    """Put the RTL cycle counts in ``docs/measured.json`` for the performance model's check."""
    fmt = {"fp8_e4m3": "fp8", "fp4_e2m1": "fp4"}
    entries = []
    for key, c in sorted(cycles.items()):
        n, fa, _ = key.split(":")
        entries.append(dict(kind="ttu_gemm", rows=8, cols=8, m=int(n), n=int(n), k=int(n),
                            fmt=fmt[fa], cycles=c))
    record_measurements("ttu", entries, "make bench BENCH=ttu")


def synth_counts():
    """yosys ``synth_ecp5`` cell counts of one bare PE and one 8-PE row tail."""
    from amaranth.back import verilog
    from hw.ttu.pe import PE, BlockTail
    from scripts.export_verilog import summarize, synth_ecp5
    out = OUT / "synth"
    out.mkdir(parents=True, exist_ok=True)
    pe = PE()
    rows = {}
    for name, dut in (("ttu_pe_bare", pe), ("ttu_tail", BlockTail(n=8, width=pe.width))):
        path = out / f"{name}.v"
        path.write_text(verilog.convert(dut, name=name, emit_src=False))
        rows[name] = summarize(synth_ecp5(path, name, out))
    return rows


def fpga_rows():
    """ECP5 rows of the TTU tops from ``docs/fpga.json`` (written by ``make fpga``)."""
    path = REPO / "docs" / "fpga.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return {k: v for k, v in data.items() if k.startswith("ttu_")}


def run(quick=False):
    parts = ["## TTU (MX tensor unit)", "",
             "Output-stationary array, one FP8/INT8 pair or two FP4/FP6 pairs per PE per cycle. "
             "Cycles count from the first accepted activation beat to the last result row "
             "(weights preloaded; loading them takes `n_tiles * k_beats` more cycles). "
             "Utilisation = useful MACs / (cycles x peak MACs per cycle of the format); "
             "steady-state excludes the pipeline fill/drain of `rows + cols + 14` cycles (beat-to-result latency 14). "
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
        parts += synth_section()
        parts += fpga_section()
    return "\n".join(parts)


def fpga_section():
    rows = fpga_rows()
    if not rows:
        return ["ECP5 figures: run `make fpga TOPS=\"ttu_pe ttu_2x2 ttu_8x8\"` (none recorded yet).", ""]
    out = ["ECP5 (yowasp yosys `synth_ecp5` + nextpnr-ecp5 `--85k`, `make fpga`, "
           "`docs/fpga.json`; LUT4 counts CCU2C as 2). `ttu_pe` is one PE without its "
           "share of the row tail (one `BlockTail` per row of 8 PEs); `ttu_2x2` and `ttu_8x8` are "
           "whole units (controller, buffers, PEs, tails, output FIFO):", "",
           "| top | LUT4 | FF | DSP | BRAM | Fmax (MHz) |", "|---|---|---|---|---|---|"]
    for name, r in sorted(rows.items()):
        out.append(f"| {name} | {r['LUT4']} | {r['FF']} | {r['DSP']} | {r['BRAM']} | "
                   f"{r['Fmax'] if r['Fmax'] is not None else '-'} |")
    if "ttu_8x8" in rows:
        r = rows["ttu_8x8"]
        out += ["", f"Per PE in the 8x8 unit (everything / 64): {r['LUT4'] / 64:.0f} LUT4, "
                f"{r['FF'] / 64:.0f} FF, {r['DSP'] / 64:.1f} DSP."]
    out += ["", "The tops sit behind "
                "`hw.ttu.pins.PinWrapper` (the ports exceed the package pins), so they are placed "
                "in context, with I/O buffers and the clock on a global network: about one FF "
                "per port bit and one LUT4 per output bit of the wrapped block are the wrapper's."]
    return out + [""]


def synth_section():
    try:
        rows = synth_counts()
    except Exception as e:  # pragma: no cover - reported, not fatal
        return [f"yosys synthesis failed: {e}", ""]
    out = ["Without the pin wrapper (yosys `synth_ecp5` only):", "",
           "| unit | LUT4 | FF | DSP |", "|---|---|---|---|"]
    pe, tail = rows["ttu_pe_bare"], rows["ttu_tail"]
    out.append(f"| PE (all six formats, 70-bit block sum) | {pe['LUT4']} | {pe['FF']} | {pe['DSP']} |")
    out.append(f"| BlockTail (8 PEs: rounder, FP32 adder, 8 accumulators + results) | "
               f"{tail['LUT4']} | {tail['FF']} | {tail['DSP']} |")
    out.append(f"| PE + 1/8 tail | {pe['LUT4'] + tail['LUT4'] / 8:.0f} | "
               f"{pe['FF'] + tail['FF'] / 8:.0f} | {pe['DSP']} |")
    return out + [""]


if __name__ == "__main__":
    print(run(quick=True))
