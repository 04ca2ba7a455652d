"""``python -m sim.perf [--preset maia200|prototype] [--plot PNG]``: a performance report."""
import argparse
import sys

from .config import presets
from .model import LLM_70B, gemm, roofline_points, tokens_per_second


def report(chip):
    lines = [f"# Performance model: {chip.name}", ""]
    lines.append(f"{chip.tiles} tiles ({chip.clusters} clusters x {chip.tiles_per_cluster}), "
                 f"TTU {chip.ttu_rows} x K x {chip.ttu_cols}, {chip.clock_hz / 1e9:g} GHz, "
                 f"HBM {chip.hbm_bytes_per_s / 1e12:g} TB/s")
    lines.append("")
    lines.append("| format | peak PFLOP/s | ridge (FLOP/byte) |")
    lines.append("|---|---|---|")
    for fmt in ("fp4", "fp8", "bf16"):
        r = roofline_points(chip, fmt)
        lines.append(f"| {fmt} | {r['peak_flops'] / 1e15:.3f} | {r['ridge_flop_per_byte']:.0f} |")
    lines += ["", "| GEMM m x n x k | format | cycles | utilisation | bound |", "|---|---|---|---|---|"]
    for (m, n, k) in ((64, 64, 64), (256, 256, 256), (4096, 4096, 4096), (8, 8192, 8192)):
        for fmt in ("fp8", "fp4"):
            g = gemm(m, n, k, chip, fmt=fmt)
            lines.append(f"| {m} x {n} x {k} | {fmt} | {g['cycles']:.0f} | {g['utilisation']:.1%} | {g['bound']} |")
    lines += ["", f"LLM: {LLM_70B['name']}, FP4 weights, decode, context 4096", "",
              "| chips | batch | tokens/s | step (ms) | all-reduce per layer (us) |", "|---|---|---|---|---|"]
    for n_chips, batch in ((1, 1), (1, 64), (4, 64), (4, 256)):
        t = tokens_per_second(LLM_70B, chip, batch=batch, context=4096, n_chips=n_chips)
        lines.append(f"| {n_chips} | {batch} | {t['tokens_per_s']:.0f} | {t['step_s'] * 1e3:.2f} | "
                     f"{t['allreduce_s_per_layer'] * 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def plot_roofline(chip, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    oi = np.logspace(-1, 4, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    for fmt in ("fp4", "fp8", "bf16"):
        r = roofline_points(chip, fmt)
        ax.loglog(oi, np.minimum(r["peak_flops"], oi * r["hbm_bytes_per_s"]) / 1e12, label=fmt)
    for (m, n, k) in ((8, 8192, 8192), (256, 8192, 8192), (4096, 4096, 4096)):
        g = gemm(m, n, k, chip, fmt="fp4")
        ai = 2 * g["macs"] / g["hbm_bytes"]
        ax.plot(ai, 2 * g["macs"] / g["seconds"] / 1e12, "o")
        ax.annotate(f"{m}x{n}x{k}", (ai, 2 * g["macs"] / g["seconds"] / 1e12), fontsize=7)
    ax.set_xlabel("operational intensity (FLOP / HBM byte)")
    ax.set_ylabel("TFLOP/s")
    ax.set_title(f"Roofline: {chip.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="maia200", choices=sorted(presets()))
    ap.add_argument("--plot", help="write a roofline PNG here")
    args = ap.parse_args(argv)
    chip = presets()[args.preset]
    print(report(chip))
    if args.plot:
        plot_roofline(chip, args.plot)
        print(f"roofline: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
