"""``make bench BENCH=sim``: the ``make sim`` workloads on the tile RTL, against the model.

Runs each compiled workload through :func:`sim.run.main` (Verilator, bit-exact
against the golden model, cycles recorded in ``docs/measured.json``), tabulates
the command, cycles, TTU utilisation, engine busy time, the simulation speed and
the performance model's schedule-replay prediction, and draws the transformer
block's timeline, RTL above model, to ``docs/sim_timeline.png``.
"""
import json
from pathlib import Path

from sim.compiler.program import ENGINES
from sim.run import BUILD, compile_workload
from sim.run import main as sim_main

#: The largest plain GEMM the default tile takes: K is bounded by the TTU's K buffer
#: (``TileParams.max_k_beats`` = 64) and M x N by the 64 KiB tile SRAM, so 256^3 does not fit.
GEMM = ["--m", "64", "--n", "64", "--k", "64"]
RUNS = [
    ("transformer block (default `make sim`), MX FP8 weights", "transformer", []),
    ("transformer block, MX FP4 weights", "transformer", ["--fp4"]),
    ("MX GEMM 64x64x64, FP8", "gemm", ["--workload", "gemm", *GEMM]),
    ("MX GEMM 64x64x64, FP4", "gemm", ["--workload", "gemm", *GEMM, "--fp4"]),
    ("GELU(x W + b) 8x64x64, 2 weight buffers", "gemm-layer", ["--workload", "gemm-layer"]),
    ("same, 1 weight buffer", "gemm-layer", ["--workload", "gemm-layer", "--buffers", "1"]),
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
    import os
    load = os.getloadavg()[0]
    rows = ["| workload | command | RTL cycles | model (replay) | error | TTU utilisation | "
            "TTU busy | TVP busy | DMA busy | sim cycles/s | bit-exact |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    png_done = False
    for desc, name, opts in runs:
        out = BUILD / "bench_report.json"
        status = sim_main([*opts, "--json", str(out)])
        rep = json.loads(out.read_text())
        if status != 0:
            raise RuntimeError(f"make sim {' '.join(opts)} failed (exit {status})")
        result = json.loads((BUILD / "result.json").read_text())
        prog, _ = compile_workload(name, rep["_params"])
        replay = tile_program_cycles(prog, PROTOTYPE)
        cyc = rep["cycles"]
        cmd = "make sim" + (f' SIMARGS="{" ".join(opts)}"' if opts else "")
        rows.append(f"| {desc} | `{cmd}` | {cyc} | {replay['cycles']} | "
                    f"{(replay['cycles'] - cyc) / cyc:+.1%} | {rep['ttu_utilisation']:.1%} | "
                    f"{rep['ttu_busy']:.0%} | {rep['tvp_busy']:.0%} | {rep['dma_busy']:.0%} | "
                    f"{rep['sim_cycles_per_second']:,} | "
                    f"{'yes' if rep.get('bit_exact') else 'NO'} |")
        if name == "transformer" and not png_done:
            _timeline_png(result, replay, PNG)
            png_done = True
    return ("## Tile programs (`make sim`)\n\n"
            "Each compiled workload runs on the tile RTL (Verilator), bit-exact against "
            "`sim.tile.TileModel`; the model column is `sim.perf.tile.tile_program_cycles` "
            "(schedule replay on the prototype preset, `docs/perf.md`), busy columns are "
            "the fraction of cycles each engine's feeder was active; TTU utilisation is useful "
            "MACs / (cycles x the TTU's peak MACs per cycle for the weight format). Sim "
            "cycles/s: simulated tile cycles per wall second of the run (HBM model inside "
            "the simulated top, optimised Verilator; build, load and read-back excluded), "
            f"measured on a 2-core machine shared with other jobs (1-minute load average "
            f"{load:.1f} at the start of the runs). GEMM 256x256x256 does not fit the default "
            "tile (K buffer 64 beats, 64 KiB SRAM): 64x64x64 is the largest square one.\n\n"
            + "\n".join(rows) + "\n\n"
            f"![timeline]({PNG.name})\n")
