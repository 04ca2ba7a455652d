"""Performance-model figures: the Maia 200 comparison, both presets' reports, the roofline."""
from sim.perf import MAIA200, PROTOTYPE
from sim.perf.__main__ import plot_roofline, report
from sim.perf.compare import comparison_table


def run(quick=False):
    plot_roofline(MAIA200, "docs/perf_roofline.png")
    body = ["Predictions of the performance model (`python -m sim.perf`), not measurements: "
            "see docs/perf.md for what it assumes and where each Maia 200 figure comes from.\n",
            "### Maia 200 preset vs the published measurements\n",
            "Published: FP8 GEMM 96 % and BF16 GEMM 99.7 % of peak, AllReduce 1,298 GB/s, "
            "AllToAll 655 GB/s (issue 22, quoting the Maia 200 paper). The sources give no GEMM "
            "shape, chip count or buffer size, so each figure is predicted at stated conditions "
            "(`python -m sim.perf compare`). Targets: GEMM within 5 %, collectives within 15 %.\n",
            comparison_table()]
    for chip in (MAIA200, PROTOTYPE):
        body.append(report(chip).replace("# Performance model", "### Model"))
    body.append("![roofline](perf_roofline.png)\n")
    return "\n".join(body)
