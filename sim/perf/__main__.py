"""``python -m sim.perf``: performance report, comparison with the published figures, sweeps.

    python -m sim.perf [report] [--preset maia200|prototype] [--plot PNG]
    python -m sim.perf compare
    python -m sim.perf sweep PARAM VALUE... [--preset P] [--gemm MxNxK] [--fmt F] [--out PATH]

A bad parameter or value prints one line (``error: ...``) and exits with status 2.
"""
import argparse
import sys

from .collective import allreduce, alltoall
from .config import presets
from .model import LLM_70B, attention, decoder_layer, gemm, prefill, roofline_points, tokens_per_second

#: The stated LLM configuration of the tokens/s table.
TOKENS_CASES = ((1, 1), (1, 64), (4, 64), (4, 256), (64, 64), (64, 256))


def report(chip):
    lines = [f"# Performance model: {chip.name}", ""]
    lines.append(f"{chip.tiles} tiles ({chip.clusters} clusters x {chip.tiles_per_cluster}), "
                 f"TTU {chip.ttu_rows} x K x {chip.ttu_cols}, {chip.clock_hz / 1e9:g} GHz, "
                 f"HBM {chip.hbm_bytes_per_s / 1e12:g} TB/s, tile SRAM {chip.tile_sram_bytes / 2**20:g} MiB, "
                 f"cluster SRAM {chip.cluster_sram_bytes / 2**20:.4g} MiB")
    lines.append("")
    lines.append("| format | peak PFLOP/s | ridge (FLOP/byte) |")
    lines.append("|---|---|---|")
    for fmt in ("fp4", "fp8", "bf16"):
        r = roofline_points(chip, fmt)
        lines.append(f"| {fmt} | {r['peak_flops'] / 1e15:.4g} | {r['ridge_flop_per_byte']:.0f} |")
    lines += ["", "GEMM (tiling chosen by search over the tile and cluster SRAM; C in BF16):", "",
              "| GEMM m x n x k | format | cycles | utilisation | bound | tiling |",
              "|---|---|---|---|---|---|"]
    for (m, n, k) in ((256, 256, 256), (4096, 4096, 4096), (8192, 8192, 8192), (8, 8192, 8192)):
        for fmt in ("fp8", "fp4", "bf16"):
            g = gemm(m, n, k, chip, fmt=fmt)
            lines.append(f"| {m} x {n} x {k} | {fmt} | {g['cycles']:.0f} | {g['utilisation']:.1%} | "
                         f"{g['bound']} | {g['tiling_text']} |")
    cfg = LLM_70B
    lines += ["", f"Attention of one layer of {cfg['name']} (FP8 Q/K/V, one chip):", "",
              "| phase | batch | q_len | kv_len | cycles | us | bound |", "|---|---|---|---|---|---|---|"]
    for phase, batch, q_len in (("prefill", 1, 4096), ("decode", 1, 1), ("decode", 64, 1)):
        a = attention(batch, cfg["heads"], q_len, 4096, cfg["head_dim"], chip, kv_heads=cfg["kv_heads"])
        lines.append(f"| {phase} | {batch} | {q_len} | 4096 | {a['cycles']:.0f} | "
                     f"{a['seconds'] * 1e6:.1f} | {a['bound']} |")
    lay = decoder_layer(cfg, chip, batch=64, context=4096)
    lines += ["", "Decoder layer, decode, batch 64, context 4096, FP4 weights, one chip (cycles): " +
              ", ".join(f"{k} {lay[k]:.0f}" for k in ("qkv", "attn", "out", "mlp_up", "mlp_down", "tvp")) +
              f"; total {lay['seconds'] * 1e6:.1f} us.", ""]
    lines += ["Prefill of one 4096-token prompt (FP4 weights, causal attention), tensor parallel in "
              "one FCQ:", "", "| chips | time to first token (ms) | prompt tokens/s | layer (us) | "
              "all-reduce per layer (us) | attention bound |", "|---|---|---|---|---|---|"]
    for n_chips in (1, 4):
        if n_chips > chip.fcq_size:
            continue
        p = prefill(cfg, chip, batch=1, context=4096, n_chips=n_chips)
        lines.append(f"| {n_chips} | {p['seconds'] * 1e3:.1f} | {p['tokens_per_s']:,.0f} | "
                     f"{p['layer_s'] * 1e6:.0f} | {p['allreduce_s_per_layer'] * 1e6:.1f} | {p['attn_bound']} |")
    lines += ["", f"Decode tokens/s: {cfg['name']}, FP4 weights, FP8 KV cache, context 4096; tensor "
              "parallel inside one FCQ (up to 4 chips), data-parallel replicas of 4 chips beyond "
              "(batch per replica):", "",
              "| chips | TP x replicas | batch | tokens/s | step (ms) | all-reduce per layer (us) | "
              "algorithm | HBM per chip (GB) |", "|---|---|---|---|---|---|---|---|"]
    for n_chips, batch in TOKENS_CASES:
        if n_chips > 1 and chip.fcq_size * (n_chips // chip.fcq_size) != n_chips and n_chips > chip.fcq_size:
            continue
        try:
            t = tokens_per_second(cfg, chip, batch=batch, context=4096, n_chips=n_chips)
        except ValueError as e:
            lines.append(f"| {n_chips} | - | {batch} | does not fit: {e} | | | | |")
            continue
        lines.append(f"| {n_chips} | {t['tp']} x {t['replicas']} | {batch} | {t['tokens_per_s']:,.0f} | "
                     f"{t['step_s'] * 1e3:.2f} | {t['allreduce_s_per_layer'] * 1e6:.1f} | "
                     f"{t['allreduce_algorithm']} | {t['hbm_bytes_per_chip'] / 1e9:.1f} |")
    lines += ["", "Collectives, 1 GiB per chip (bus bandwidth; algorithm chosen for the topology):", "",
              "| chips | topology | all-reduce GB/s | algorithm | all-to-all GB/s | algorithm |",
              "|---|---|---|---|---|---|"]
    for n in (4, 64, 1024):
        try:
            ar, a2a = allreduce(2**30, chip, n), alltoall(2**30, chip, n)
        except ValueError:
            continue
        gb = lambda x: f"{x / 1e9:,.0f}" if x >= 1e10 else f"{x / 1e9:.3g}"
        lines.append(f"| {n} | {ar['topology']} | {gb(ar['busbw'])} | {ar['algorithm']} | "
                     f"{gb(a2a['busbw'])} | {a2a['algorithm']} |")
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


class _Parser(argparse.ArgumentParser):
    """Errors in one line, no usage dump."""

    def error(self, message):
        raise ValueError(message)


def _shape(text):
    try:
        m, n, k = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--gemm must be MxNxK (e.g. 4096x4096x4096), not {text!r}") from None
    return m, n, k


def _run(argv):
    from .sweep import PARAMS, parse_value, write_sweep
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv.pop(0) if argv and argv[0] in ("report", "compare", "sweep") else "report"
    ap = _Parser(prog=f"python -m sim.perf {cmd}", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="maia200", choices=sorted(presets()))
    if cmd == "report":
        ap.add_argument("--plot", help="write a roofline PNG here")
    if cmd == "sweep":
        ap.add_argument("param", help=f"one of {', '.join(sorted(PARAMS))}")
        ap.add_argument("values", nargs="+", help="values (suffixes k, M, G, KiB, MiB, GiB)")
        ap.add_argument("--gemm", default="4096x4096x4096", help="GEMM shape MxNxK")
        ap.add_argument("--fmt", default="fp8")
        ap.add_argument("--out", help="directory (default build/perf) or a .md path")
    args = ap.parse_args(argv)
    chip = presets()[args.preset]
    if cmd == "report":
        print(report(chip))
        if args.plot:
            plot_roofline(chip, args.plot)
            print(f"roofline: {args.plot}")
    elif cmd == "compare":
        from .compare import comparison, comparison_table
        print(comparison_table(comparison(chip)))
    else:
        if args.param not in PARAMS:
            raise ValueError(f"sweep parameter must be one of {', '.join(sorted(PARAMS))}, "
                             f"not {args.param!r}")
        values = [parse_value(v) for v in args.values]
        md, png, _ = write_sweep(chip, args.param, values, args.out, shape=_shape(args.gemm),
                                 fmt=args.fmt)
        print(md.read_text())
        print(f"wrote {md} and {png}")
    return 0


def main(argv=None):
    try:
        return _run(argv)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
