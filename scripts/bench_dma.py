"""DMA benchmark: AXI bus utilisation vs transfer size, broadcast, ECP5 resources and Fmax.

``run(quick=False) -> str`` returns a markdown section for ``docs/results.md``.
The measurement is the ``bench_sweep`` coroutine of ``tb/dma/test_dma.py``, run
through :func:`sim.rtl.blocks.run_dma` (same build as the regression) against
cocotbext-axi's ``AxiRam`` with no back-pressure. Single-descriptor cycle
counts go to ``docs/measured.json`` (the performance model is checked against
them); ECP5 figures are quoted from ``docs/fpga.json`` (``make fpga``).
"""
import json
import os
import sys
import tempfile
from pathlib import Path

from scripts.results import fpga_table
from sim.measured import record_measurements

REPO = Path(__file__).resolve().parent.parent


def _measure(quick):
    from sim.rtl.blocks import DMA_PARAMS, run_dma
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        run_dma(test_module="tb.dma.test_dma", testcase="bench_sweep",
                extra_env={"BENCH_OUT": str(out), "BENCH_QUICK": "1" if quick else "0"})
        return DMA_PARAMS, json.loads(out.read_text())


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
        # Cycles of single-descriptor copies, for the performance model's check.
        lanes = res["lanes"]
        record_measurements("dma", [dict(kind="dma_copy", bytes=r["size"],
                                         cycles=round(r["size"] / (lanes * r["one"])))
                                    for r in res["rows"]], "make bench BENCH=dma")
        table = fpga_table(("dma_", "mem_"))
        lines += ["", "ECP5 (default parameters of the `dma_*` and `mem_*` tops, as recorded by "
                  "`make fpga` in `docs/fpga.json`):", "", table or "(none recorded yet)"]
        return "\n".join(lines) + "\n"
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
