"""Design-space sweeps: one chip parameter over a list of values, every kernel re-predicted.

:func:`sweep` varies one parameter of a preset (``PARAMS`` names them and their
units), re-predicts a GEMM (its tiling searched again at every point), decode
tokens/s of the stated LLM and the two collectives, and returns the rows;
:func:`write_sweep` writes them as a markdown table and a PNG plot
(``python -m sim.perf sweep``, ``docs/perf.md`` has a worked example).
"""
import re
from pathlib import Path

from .collective import allreduce, alltoall
from .tiling import gemm
from .model import LLM_70B, tokens_per_second

__all__ = ["PARAMS", "apply", "parse_value", "sweep", "write_sweep"]


def _ttu_k(chip, v):
    base = chip.ttu_k["fp8"]
    return chip.with_(ttu_k={f: max(1, k * v // base) for f, k in chip.ttu_k.items()})


#: name -> (unit, how the value changes the chip)
PARAMS = {
    "ttu_k": ("K per cycle at FP8 (other formats scaled alike)", _ttu_k),
    "tile_sram": ("bytes per tile", lambda c, v: c.with_(tile_sram_bytes=int(v))),
    "cluster_sram": ("bytes per cluster", lambda c, v: c.with_(cluster_sram_bytes=int(v))),
    "hbm": ("TB/s", lambda c, v: c.with_(hbm_bytes_per_s=v * 1e12)),
    "tiles_per_cluster": ("tiles", lambda c, v: c.with_(tiles_per_cluster=int(v))),
    "clusters": ("clusters", lambda c, v: c.with_(clusters=int(v))),
    "dma": ("bytes/cycle per tile (fabric fill rate)", lambda c, v: c.with_(dma_bytes_per_cycle=v)),
    "clock": ("GHz", lambda c, v: c.with_(clock_hz=v * 1e9)),
    "fcq_ports_per_peer": ("ports to each FCQ peer (the rest to tier 2)",
                           lambda c, v: c.with_(fcq_ports_per_peer=int(v))),
    "nic_ports": ("ports per chip", lambda c, v: c.with_(nic_ports=int(v))),
}

_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30,
           "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_value(text):
    """A number, optionally with a size suffix (``3MiB``, ``512k``)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _SUFFIX:
        raise ValueError(f"value {text!r} is not a number (suffixes: k, M, G, KiB, MiB, GiB)")
    v = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    return int(v) if v.is_integer() else v


def apply(chip, param, value):
    """``chip`` with ``param`` (a key of :data:`PARAMS`) set to ``value``."""
    if param not in PARAMS:
        raise ValueError(f"sweep parameter must be one of {', '.join(sorted(PARAMS))}, not {param!r}")
    return PARAMS[param][1](chip, value)


def sweep(chip, param, values, *, shape=(4096, 4096, 4096), fmt="fp8", batch=64, context=4096,
          n_chips=4, collective_chips=64):
    """Rows ``{value, gemm_util, gemm_tflops, tiling, tokens_per_s, allreduce_busbw, alltoall_busbw}``."""
    if not values:
        raise ValueError("values must name at least one value to sweep")
    rows = []
    for v in values:
        c = apply(chip, param, v)
        g = gemm(*shape, c, fmt=fmt)
        t = tokens_per_second(LLM_70B, c, batch=batch, context=context, n_chips=n_chips)
        ar = allreduce(2**30, c, collective_chips)
        a2a = alltoall(2**30, c, collective_chips)
        rows.append(dict(value=v, gemm_util=g["utilisation"], gemm_tflops=2 * g["macs"] / g["seconds"] / 1e12,
                         tiling=g["tiling_text"], tokens_per_s=t["tokens_per_s"],
                         allreduce_busbw=ar["busbw"], alltoall_busbw=a2a["busbw"]))
    return rows


def show(param, value):
    """A swept value as the table prints it (SRAM sizes in MiB)."""
    if param in ("tile_sram", "cluster_sram"):
        return f"{value / 2**20:.4g} MiB"
    return f"{value:g}"


def table(chip, param, rows, *, shape, fmt, batch, context, n_chips, collective_chips):
    unit = PARAMS[param][0]
    m, n, k = shape
    lines = [f"Sweep of `{param}` ({unit}) on the `{chip.name}` preset: {fmt.upper()} GEMM "
             f"{m}x{n}x{k} (tiling searched at every point), decode tokens/s of {LLM_70B['name']} "
             f"(batch {batch}, context {context}, {n_chips} chips), all-reduce and all-to-all bus "
             f"bandwidth over {collective_chips} chips (1 GiB per chip).", "",
             f"| {param} | GEMM utilisation | GEMM TFLOP/s | tokens/s | all-reduce GB/s | "
             "all-to-all GB/s | GEMM tiling |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {show(param, r['value'])} | {r['gemm_util']:.1%} | {r['gemm_tflops']:,.0f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['allreduce_busbw'] / 1e9:,.0f} | "
                     f"{r['alltoall_busbw'] / 1e9:,.0f} | {r['tiling']} |")
    return "\n".join(lines) + "\n"


def plot(chip, param, rows, path, *, shape, fmt):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = [r["value"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(xs, [100 * r["gemm_util"] for r in rows], "o-")
    axes[0].set_ylabel(f"{fmt.upper()} GEMM {'x'.join(map(str, shape))} utilisation (%)")
    axes[1].plot(xs, [r["tokens_per_s"] for r in rows], "o-", color="C1")
    axes[1].set_ylabel("decode tokens/s")
    axes[2].plot(xs, [r["allreduce_busbw"] / 1e9 for r in rows], "o-", label="all-reduce")
    axes[2].plot(xs, [r["alltoall_busbw"] / 1e9 for r in rows], "s-", label="all-to-all")
    axes[2].set_ylabel("bus bandwidth (GB/s)")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel(f"{param} ({PARAMS[param][0]})")
        ax.grid(True, alpha=0.3)
        if min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
    fig.suptitle(f"{chip.name}: sweep of {param}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_sweep(chip, param, values, out=None, **kw):
    """Sweep and write ``<out>/sweep_<param>.md`` and ``.png`` (``out`` defaults to
    ``build/perf``; a path ending in ``.md`` names the table, the PNG beside it)."""
    if param not in PARAMS:
        apply(chip, param, None)          # raises, naming the parameter
    opts = dict(shape=(4096, 4096, 4096), fmt="fp8", batch=64, context=4096, n_chips=4,
                collective_chips=64)
    opts.update(kw)
    rows = sweep(chip, param, values, **opts)
    out = Path("build/perf" if out is None else out)
    md = out if out.suffix == ".md" else out / f"sweep_{param}.md"
    png = md.with_suffix(".png")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(table(chip, param, rows, **opts) + f"\n![sweep of {param}]({png.name})\n")
    plot(chip, param, rows, png, shape=opts["shape"], fmt=opts["fmt"])
    return md, png, rows
