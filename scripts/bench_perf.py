"""Performance-model figures for both presets, with the roofline plot."""
from sim.perf import MAIA200, PROTOTYPE
from sim.perf.__main__ import plot_roofline, report


def run(quick=False):
    plot_roofline(MAIA200, "docs/perf_roofline.png")
    body = ["Predictions of the performance model (`python -m sim.perf`), not measurements: "
            "see docs/perf.md for what it assumes.\n"]
    for chip in (MAIA200, PROTOTYPE):
        body.append(report(chip).replace("# Performance model", "### Model"))
    body.append("![roofline](perf_roofline.png)\n")
    return "\n".join(body)
