"""``make bench BENCH=sim``: the ``make sim`` workloads on the tile RTL, against the model.

Runs each compiled workload through :func:`sim.run.main` (Verilator, bit-exact
against the golden model, cycles recorded in ``docs/measured.json``), tabulates
cycles, engine busy time and the performance model's schedule-replay
prediction, and draws the transformer block's timeline, RTL above model, to
``docs/sim_timeline.png``.
"""
import json
from pathlib import Path

from sim.compiler.program import ENGINES
from sim.run import BUILD, compile_workload
from sim.run import main as sim_main

RUNS = [
    ("transformer block, MX FP8 weights", "transformer", []),
    ("transformer block, MX FP4 weights", "transformer", ["--fp4"]),
    ("GELU(x W + b) 8x64x64, 2 weight buffers", "gemm", ["--workload", "gemm"]),
    ("same, 1 weight buffer", "gemm", ["--workload", "gemm", "--buffers", "1"]),
]
PNG = Path("docs/sim_timeline.png")


def _timeline_png(result, replay, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = {"dma": "tab:blue", "ttu": "tab:red", "tvp": "tab:green"}
    fig, ax = plt.subplots(figsize=(11, 3.2))
    rows = []
    for k, eng in enumerate(ENGINES):
        rtl = [(a, b - a) for a, b in result["timeline"][eng]]
        model = [(a, b - a) for a, b, _ in replay["spans"][eng]]
        for label, spans, y in ((f"RTL {eng}", rtl, 2 * k + 1), (f"model {eng}", model, 2 * k)):
            ax.broken_barh(spans, (y - 0.4, 0.8), color=colours[eng],
                           alpha=1.0 if label.startswith("RTL") else 0.5)
            rows.append((y, label))
    ax.set_yticks([y for y, _ in rows], [label for _, label in rows])
    ax.set_xlabel("cycle")
    ax.set_title("make sim transformer block: engine busy time, RTL (Verilator) vs "
                 "sim.perf.tile replay")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(quick=False):
    from sim.perf import PROTOTYPE
    from sim.perf.tile import tile_program_cycles
    runs = RUNS[:1] if quick else RUNS
    rows = ["| workload | `make sim` options | RTL cycles | model (replay) | error | TTU busy | "
            "TVP busy | DMA busy | bit-exact |", "|---|---|---|---|---|---|---|---|---|"]
    png_done = False
    for desc, name, opts in runs:
        out = BUILD / "bench_report.json"
        status = sim_main([*opts, "--json", str(out)])
        rep = json.loads(out.read_text())
        if status != 0:
            raise RuntimeError(f"make sim {' '.join(opts)} failed (exit {status})")
        result = json.loads((BUILD / "result.json").read_text())
        busy = {e: sum(b - a for a, b in result["timeline"][e]) for e in ENGINES}
        prog, _ = compile_workload(name, rep["_params"])
        replay = tile_program_cycles(prog, PROTOTYPE)
        cyc = rep["cycles"]
        rows.append(f"| {desc} | `{' '.join(opts) or '(default)'}` | {cyc} | {replay['cycles']} | "
                    f"{(replay['cycles'] - cyc) / cyc:+.1%} | {busy['ttu'] / cyc:.0%} | "
                    f"{busy['tvp'] / cyc:.0%} | {busy['dma'] / cyc:.0%} | "
                    f"{'yes' if rep.get('bit_exact') else 'NO'} |")
        if name == "transformer" and not png_done:
            _timeline_png(result, replay, PNG)
            png_done = True
    return ("## Tile programs (`make sim`)\n\n"
            "Each compiled workload runs on the tile RTL (Verilator), bit-exact against "
            "`sim.tile.TileModel`; the model column is `sim.perf.tile.tile_program_cycles` "
            "(schedule replay on the prototype preset, `docs/perf.md`), busy columns are "
            "the fraction of cycles each engine's feeder was active.\n\n"
            + "\n".join(rows) + "\n\n"
            f"![timeline]({PNG.name})\n")
