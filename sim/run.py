"""``make sim``: compile a workload, run it on the RTL and report it against the golden model.

Workloads register in :data:`WORKLOADS` (name -> callable(args) -> report
dict). The default, ``transformer``, compiles one transformer block
(``sim.compiler.workloads.transformer_block``) into a tile program, runs it
on ``hw.tile.Tile`` in Verilator (cocotb, :mod:`sim.rtl.tile_job`) and
reports: result vs the golden model (bit-exact) and vs float64 (error),
cycles, MAC utilisation, per-engine busy time, DMA bytes, and a
Chrome/Perfetto trace under ``build/sim/``. The driver exits non-zero on any
mismatch or error status, so ``make sim`` is itself a check.

Usage::

    make sim                                    # transformer block, MX FP8 weights
    make sim SIMARGS="--fp4"                    # MX FP4 weights
    make sim SIMARGS="--workload gemm"          # GEMM + bias + GELU layer
    make sim SIMARGS="--workload bad-deadlock"  # bad-opcode | bad-deadlock | bad-address
    make sim SIMARGS="allreduce --chips 4"      # FCQ all-reduce on four chips (positional name)
    make sim SIMARGS="--list"
"""
import argparse
import json
import os
import pickle
import sys
import threading
import time
from pathlib import Path

import numpy as np

from sim.compiler.program import ENGINES
from sim.dma import tile_dma

WORKLOADS = {}
BUILD = Path(__file__).resolve().parent.parent / "build" / "sim"
#: Verilator warnings, simulator and cocotb output of every ``make sim`` run.
LOG = BUILD / "make_sim.log"


def workload(name, *, default=False):
    """Register ``fn`` as workload ``name``."""
    def register(fn):
        WORKLOADS[name] = fn
        if default:
            WORKLOADS["__default__"] = name
        return fn
    return register


def _trace(res, prog, path, n):
    """Chrome/Perfetto trace: one track per engine, TTU/TVP spans named by op."""
    events = []
    names = {e: [o.name for o in prog.ops if o.engine == i]
             for i, e in enumerate(ENGINES)}
    for tid, eng in enumerate(ENGINES):
        events.append(dict(name="thread_name", ph="M", pid=0, tid=tid, args=dict(name=eng)))
        for k, (a, b) in enumerate(res["timeline"][eng]):
            label = names[eng][k] if eng != "dma" and k < len(names[eng]) else eng
            events.append(dict(name=label, cat=eng, ph="X", pid=0, tid=tid, ts=a, dur=b - a))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(traceEvents=events, displayTimeUnit="ns",
                                    otherData=dict(unit="1 us = 1 clock cycle"))))


def _trace_model(path, replay):
    """Add the model's per-operation schedule to the trace as a second process."""
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    events.append(dict(name="process_name", ph="M", pid=1, args=dict(name="model (sim.perf.tile)")))
    events.append(dict(name="process_name", ph="M", pid=0, args=dict(name="RTL")))
    for tid, eng in enumerate(ENGINES):
        events.append(dict(name="thread_name", ph="M", pid=1, tid=tid, args=dict(name=eng)))
        for a, b, name in replay["spans"][eng]:
            events.append(dict(name=name, cat=eng, ph="X", pid=1, tid=tid, ts=round(a),
                               dur=round(b - a)))
    path.write_text(json.dumps(trace))


def ttu_peak_macs(cfg, fmt):
    """Peak MACs per cycle of the tile's TTU for operands in ``fmt`` (from the hardware parameters).

    Rows x columns x MACs per PE and cycle of the format, as the performance
    model's prototype preset derives them from the tile (``sim.perf.config``).
    """
    from hw.cluster import ClusterParams
    from sim.perf.config import prototype
    chip = prototype(ClusterParams().replace(tile=cfg))
    return chip.ttu_rows * chip.ttu_cols * chip.ttu_k[fmt.split("_")[0]]


def _hbm_init(image, wb, path):
    """``$readmemh`` file of the image's non-zero HBM words; returns the image's extent in words."""
    end = max((a + len(b) for a, b in image["hbm"].items()), default=0)
    buf = np.zeros(-(-end // wb) * wb, np.uint8)
    for a, b in image["hbm"].items():
        buf[a:a + len(b)] = np.frombuffer(b, np.uint8)
    words = buf.reshape(-1, wb)
    lines = []
    for i in np.flatnonzero(words.any(axis=1)):
        lines.append(f"@{i:x}\n{words[i][::-1].tobytes().hex()}\n")
    path.write_text("".join(lines))
    return len(words)


def _hbm_dump(path, lo, wb):
    """Bytes of the words in a ``$writememh`` dump starting at word ``lo``."""
    out = bytearray()
    for line in path.read_text().split("\n"):
        line = line.strip()
        if not line or line.startswith(("//", "@")):
            continue
        out += int(line, 16).to_bytes(wb, "little")
    return bytes(out)


class _Progress:
    """One status line on the terminal, rewritten in place (a plain line when not a terminal)."""

    def __init__(self):
        self.out = os.fdopen(os.dup(1), "w", buffering=1)
        self.tty = self.out.isatty()
        self.last = ""

    def show(self, text, final=False):
        if self.tty:
            self.out.write("\r" + text.ljust(len(self.last)) + ("\n" if final else ""))
            self.out.flush()
        elif final:
            self.out.write(text + "\n")
        self.last = text

    def close(self):
        self.out.close()


def _run_watched(fn, progress_file, what):
    """Call ``fn`` in a thread; meanwhile show the cycles the job reports in ``progress_file``."""
    box = {}

    def body():
        try:
            box["ret"] = fn()
        except BaseException as e:  # re-raised in the caller's thread
            box["exc"] = e
    line = _Progress()
    th = threading.Thread(target=body, daemon=True)
    th.start()
    t0 = time.time()
    text = f"{what} (log: {_rel(LOG)})"
    line.show(text)
    while th.is_alive():
        th.join(0.5)
        try:
            cyc, secs = progress_file.read_text().split()
            cyc, secs = int(cyc), float(secs)
            text = (f"simulating: {cyc:,} cycles, {cyc / max(secs, 1e-9):,.0f} cycles/s "
                    f"(log: {_rel(LOG)})")
        except (OSError, ValueError):
            text = f"{what} {time.time() - t0:.0f} s (log: {_rel(LOG)})"
        if th.is_alive():
            line.show(text)
    line.show(text, final=True)
    line.close()
    if "exc" in box:
        raise box["exc"]
    return box.get("ret")


def _rel(path):
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _simulate_fast(cfg, image, prog, sram_words, hbm_lines, out, max_cycles):
    """Run on :class:`sim.rtl.sim_top.SimTile` (HBM inside, optimised cached Verilator model)."""
    from sim.rtl import runner
    from sim.rtl.hbm import STORAGE_V
    from sim.rtl.sim_top import SimTile
    wb = cfg.word_bytes
    top = SimTile(params=cfg)
    init, dump = BUILD / "hbm_init.hex", BUILD / "hbm_dump.hex"
    extent = _hbm_init(image, wb, init)
    out_addr, nbytes = out
    hi = max([extent - 1, (out_addr + nbytes - 1) // wb, *hbm_lines])
    if dump.exists():
        dump.unlink()
    job_path, res_path, prog_path = BUILD / "job.pkl", BUILD / "result.json", BUILD / "progress"
    for f in (res_path, prog_path):
        if f.exists():
            f.unlink()
    with open(job_path, "wb") as f:
        pickle.dump(dict(image=dict(queues=image["queues"], sram=image["sram"]),
                         sram_words=sorted(sram_words), max_cycles=max_cycles), f)
    built = any(BUILD.glob("sim_tile-verilator-opt-*/top"))

    def go():
        runner.run(top, block="sim_tile", test_module="sim.rtl.sim_job",
                   params={"cfg": cfg.as_dict()}, extra_sources=[STORAGE_V], opt=True,
                   build_root=BUILD, plusargs=[f"+HBM_INIT={init}", f"+HBM_DUMP={dump}",
                                               "+HBM_DUMP_LO=0", f"+HBM_DUMP_HI={hi}"],
                   extra_env={"SIM_JOB": str(job_path), "SIM_RESULT": str(res_path),
                              "SIM_PROGRESS": str(prog_path)})
    t0 = time.time()
    _run_watched(go, prog_path, "building the optimised Verilator model (cached after)"
                 if not built else "loading")
    wall = time.time() - t0
    res = json.loads(res_path.read_text())
    hbm = _hbm_dump(dump, 0, wb)
    res["hbm"] = {str(a): hbm[a * wb:(a + 1) * wb].hex() for a in hbm_lines}
    res["out"] = hbm[out_addr:out_addr + nbytes].hex()
    res["sram"] = {str(a): v for a, v in res["sram"].items()}
    return res, wall


def _simulate_axiram(cfg, image, sram_words, hbm_lines, out, max_cycles):
    """The cocotbext-axi ``AxiRam`` path: Python samples the tile every cycle (slow, -O0 build)."""
    from hw.tile import Tile
    from sim.rtl import runner
    job_path, res_path, prog_path = BUILD / "job.pkl", BUILD / "result.json", BUILD / "progress"
    for f in (res_path, prog_path):
        if f.exists():
            f.unlink()
    with open(job_path, "wb") as f:
        pickle.dump(dict(image=image, sram_words=sorted(sram_words), hbm_lines=sorted(hbm_lines),
                         out=out, max_cycles=max_cycles), f)
    t0 = time.time()
    # Same parameters as tb/integration/test_tile.py: the Verilator build is shared.
    _run_watched(lambda: runner.run(Tile(params=cfg), block="integration_tile",
                                    test_module="sim.rtl.tile_job",
                                    params={"cfg": cfg.as_dict()},
                                    extra_env={"SIM_JOB": str(job_path),
                                               "SIM_RESULT": str(res_path)}),
                 prog_path, "building and simulating (AxiRam, Python every cycle)")
    wall = time.time() - t0
    res = json.loads(res_path.read_text())
    res["busy"] = {e: sum(b - a for a, b in res["timeline"][e]) for e in ENGINES}
    res["run_wall_seconds"] = wall
    return res, wall


def run_on_tile(prog, meta, args, *, check=True):
    """Run ``prog`` on the tile RTL (fast path unless ``--hbm axiram``); return the report dict."""
    from hw.tile import TileParams
    from sim.tile import TileModel

    cfg = TileParams()
    image = meta.get("image") or prog.image()
    golden = None
    sram_words, hbm_lines = set(), set()
    for op in prog.ops:
        sram_words |= op.writes
        hbm_lines |= op.hwrites
    if check:
        golden = TileModel(cfg).run(prog, image)
    out_addr, shape = meta["out"]
    nbytes = 4 * int(np.prod(shape))
    BUILD.mkdir(parents=True, exist_ok=True)
    if getattr(args, "hbm", "model") == "axiram":
        res, wall = _simulate_axiram(cfg, image, sram_words, hbm_lines, (out_addr, nbytes),
                                     args.max_cycles)
    else:
        res, wall = _simulate_fast(cfg, image, prog, sram_words, hbm_lines, (out_addr, nbytes),
                                   args.max_cycles)
    (BUILD / "result.json").write_text(json.dumps(res))
    rep = {"workload": meta["desc"]}
    st = res["status"]
    rep["queues"] = ", ".join(f"{e}:{s['state']}" + (f"({s['error']} at pc {s['pc']})"
                                                     if s["state"] == "ERROR" else "")
                              for e, s in zip(ENGINES, st))
    ok = all(s["state"] == "DONE" for s in st) and not res["timeout"]
    if res["timeout"]:
        rep["error"] = f"TIMEOUT after {res['cycles']} cycles (watchdog did not fire)"
    elif not ok:
        bad = [(e, s) for e, s in zip(ENGINES, st) if s["state"] == "ERROR"]
        # The root cause first: a deadlock is usually the consequence of another stop.
        bad.sort(key=lambda es: es[1]["error"] == "DEADLOCK")
        e, s = bad[0]
        rep["error"] = (f"{e} queue stopped with {s['error']} at pc {s['pc']} "
                        f"(tile errors: dma {res['errors'] & 0xFFFF}, ttu "
                        f"{res['errors'] >> 16 & 0xFF}, tvp {res['errors'] >> 24 & 1})")
    cycles = res["cycles"]
    rep["cycles"] = cycles
    busy = res["busy"]
    frac = {e: busy[e] / max(1, cycles) for e in ENGINES}
    wfmt = meta.get("wfmt", "fp8_e4m3")
    peak = ttu_peak_macs(cfg, wfmt)
    rep["ttu_utilisation"] = meta["macs"] / (max(1, cycles) * peak)
    rep["ttu_busy"], rep["tvp_busy"], rep["dma_busy"] = frac["ttu"], frac["tvp"], frac["dma"]
    rep["sim_cycles_per_second"] = round(cycles / max(res["run_wall_seconds"], 1e-9))
    rep["bit_exact"] = False
    if ok and check:
        wb = cfg.word_bytes
        bad_s = sum(1 for a in sram_words if res["sram"][str(a)] != golden.word(a))
        bad_h = sum(1 for a in hbm_lines
                    if bytes.fromhex(res["hbm"][str(a)]) != bytes(golden.hbm[a * wb:(a + 1) * wb]))
        rep["vs golden"] = (f"{'BIT-EXACT' if bad_s == bad_h == 0 else 'MISMATCH'}: "
                            f"{len(sram_words) - bad_s}/{len(sram_words)} SRAM words, "
                            f"{len(hbm_lines) - bad_h}/{len(hbm_lines)} HBM lines")
        rep["bit_exact"] = bad_s == bad_h == 0 and res["sems"] == 0
        y = np.frombuffer(bytes.fromhex(res["out"]), np.float32).reshape(shape).astype(np.float64)
        ref = meta["ref"]
        err = np.abs(y - ref)
        rep["max_abs_err_vs_float64"] = float(err.max())
        rep["vs float64"] = (f"max abs err {err.max():.4g}, rms {np.sqrt((err ** 2).mean()):.4g}, "
                             f"max |ref| {np.abs(ref).max():.4g} (MX quantization of "
                             f"weights and activations)")
        rep["useful MACs"] = meta["macs"]
        rep["TTU MAC utilisation"] = (f"{rep['ttu_utilisation']:.1%} of peak ({peak} {wfmt} "
                                      f"MACs/cycle) over the run ({res['macs'] * cfg.n ** 2 / (max(1, cycles) * peak):.1%} "
                                      f"counting padded MACs; TTU busy {frac['ttu']:.1%})")
    from sim.rtl.tile_host import overlap
    rep["overlap"] = (f"DMA and TTU both busy {overlap(res['timeline']['dma'], res['timeline']['ttu'])}"
                      f" cycles, TVP and TTU {overlap(res['timeline']['tvp'], res['timeline']['ttu'])}")
    rep["TVP busy"] = f"{busy['tvp']} cycles ({frac['tvp']:.1%})"
    dma_bytes = sum(sum(r[2] for r in _rows(prog, o)) for o in prog.ops if o.kind == "dma")
    rep["DMA"] = (f"{len([o for o in prog.ops if o.kind == 'dma'])} descriptors, "
                  f"{dma_bytes} bytes, busy {busy['dma']} cycles ({frac['dma']:.1%})")
    rep["program"] = (f"{len(prog.ops)} ops, queue words "
                      f"{'/'.join(str(len(q)) for q in image['queues'])} (dma/ttu/tvp)")
    trace = Path(args.trace) if args.trace else BUILD / "trace.json"
    _trace(res, prog, trace, cfg.n)
    rep["trace"] = f"{_rel(trace)} (ui.perfetto.dev or chrome://tracing; 1 us = 1 cycle)"
    if res.get("log_lost"):
        rep["trace"] += f"; {res['log_lost']} events past the event log were lost"
    rep["simulation"] = (f"{rep['sim_cycles_per_second']:,} cycles/s "
                         f"({res['run_wall_seconds']:.1f} s run, {wall:.1f} s with build, load "
                         f"and read-back; {'AxiRam, Python every cycle' if getattr(args, 'hbm', 'model') == 'axiram' else 'HBM model in the top, optimised Verilator'})")
    rep["ok"] = ok
    if not check:
        rep["bit_exact"] = ok
    return rep


def _rows(prog, op):
    return tile_dma(prog.cfg).rows(op.rec)


#: Compilable workloads: name -> (sim.compiler.workloads function, fixed keywords).
PROGRAMS = {
    "transformer": ("transformer_block", {}),
    "gemm": ("mx_gemm", {}),
    "gemm-layer": ("gemm_layer", dict(M=8, K=64, N=64)),
}


def compile_workload(name, params):
    """``(program, meta)`` of workload ``name`` compiled with ``params``.

    The performance-model test (``tb/test_perf.py``) recompiles the programs
    recorded in ``docs/measured.json`` with this to replay their schedule.
    """
    from hw.tile import TileParams
    from sim.compiler import workloads
    fn, fixed = PROGRAMS[name]
    return getattr(workloads, fn)(TileParams(), **fixed, **params)


def _compile_and_run(name, params, args):
    prog, meta = compile_workload(name, params)
    meta.setdefault("wfmt", params.get("wfmt", "fp8_e4m3"))
    rep = run_on_tile(prog, meta, args)
    if rep.get("ok") and rep.get("bit_exact"):
        from sim.perf import PROTOTYPE
        from sim.perf.tile import tile_program_cycles
        replay = tile_program_cycles(prog, PROTOTYPE)
        pred = replay["cycles"]
        rep["model cycles"] = (f"{pred} predicted by sim.perf.tile (schedule replay, prototype "
                               f"preset): {(pred - rep['cycles']) / rep['cycles']:+.1%}")
        _trace_model(Path(args.trace) if args.trace else BUILD / "trace.json", replay)
        rep["_params"], rep["_model_cycles"] = params, pred
        if args.record:
            from sim.measured import record_measurements
            shown = _workload_args(args.argv)
            command = "make sim" + (f' SIMARGS="{" ".join(shown)}"' if shown else "")
            record_measurements(f"sim {name} {_params_key(params)}",
                                [dict(kind="tile_program", workload=name, params=params,
                                      cycles=rep["cycles"])], command)
    return rep


def _workload_args(argv):
    """``argv`` without the output options (``--json PATH``, ``--trace PATH``)."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("--json", "--trace"):
            next(it, None)
        elif not a.startswith(("--json=", "--trace=")):
            out.append(a)
    return out


def _params_key(params):
    return ",".join(f"{k}={v}" for k, v in sorted(params.items()))


@workload("transformer", default=True)
def transformer(args):
    """One transformer block (attention + softmax, MLP + GELU), MX weights, on the tile RTL."""
    from hw.tile import TileParams
    from sim.compiler.workloads import check_transformer
    check_transformer(TileParams(), seq=args.seq, d_model=args.d_model, heads=args.heads,
                      d_ff=args.d_ff)
    return _compile_and_run("transformer", dict(
        seq=args.seq, d_model=args.d_model, heads=args.heads, d_ff=args.d_ff,
        wfmt="fp4_e2m1" if args.fp4 else "fp8_e4m3", seed=args.seed), args)


@workload("gemm")
def gemm(args):
    """A plain MX GEMM A[m,k] @ W[k,n] (--m --n --k; FP8, --fp4), both operands MX from HBM."""
    return _compile_and_run("gemm", dict(
        m=args.m, n=args.n, k=args.k, buffers=args.buffers,
        wfmt="fp4_e2m1" if args.fp4 else "fp8_e4m3", seed=args.seed), args)


@workload("gemm-layer")
def gemm_layer(args):
    """GELU(x @ W + b) 8x64x64: x quantized on the tile, W streamed with double buffering."""
    return _compile_and_run("gemm-layer", dict(
        buffers=args.buffers, wfmt="fp4_e2m1" if args.fp4 else "fp8_e4m3", seed=args.seed), args)


def _bad(kind):
    def run(args):
        from hw.tile import TileParams
        from sim.compiler.workloads import bad_program
        prog, meta = bad_program(kind, TileParams())
        meta["desc"] = f"bad program ({kind})"
        return run_on_tile(prog, meta, args, check=False)
    run.__doc__ = f"A program with a deliberate {kind} error: must stop with an error status."
    return run


for _k in ("opcode", "deadlock", "address"):
    workload(f"bad-{_k}")(_bad(_k))


@workload("stream")
def stream_pipeline(args):
    """Random beats through StreamFIFO -> SkidBuffer with random stalls.

    Runs in Amaranth's built-in simulator (no compile step) and compares
    the output with the input sequence, the golden model of a lossless,
    order-preserving pipeline.
    """
    import random
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.sim import Simulator
    from hw.common import SkidBuffer, StreamFIFO

    m = Module()
    m.submodules.fifo = fifo = StreamFIFO(payload_shape=32, depth=8)
    m.submodules.skid = skid = SkidBuffer(payload_shape=32)
    wiring.connect(m, fifo.o_stream, skid.i_stream)
    rng = random.Random(args.seed)
    data = [rng.randrange(1 << 32) for _ in range(args.beats)]
    got = []
    stats = {"cycles": 0}

    async def source(ctx):
        for d in data:
            ctx.set(fifo.i_stream.valid, 1)
            ctx.set(fifo.i_stream.payload, d)
            await ctx.tick().until(fifo.i_stream.ready)
            if rng.random() < args.stall:
                ctx.set(fifo.i_stream.valid, 0)
                await ctx.tick()
        ctx.set(fifo.i_stream.valid, 0)

    async def sink(ctx):
        cycles = 0
        while len(got) < len(data):
            ready = rng.random() >= args.stall
            ctx.set(skid.o_stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(skid.o_stream.valid, skid.o_stream.payload)
            cycles += 1
            if valid and ready:
                got.append(payload)
        stats["cycles"] = cycles

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return {
        "workload": "stream",
        "beats": len(data),
        "bit_exact": got == data,
        "cycles": stats["cycles"],
        "beats_per_cycle": round(len(data) / stats["cycles"], 3),
        "stall_probability": args.stall,
    }


from sim import allreduce as _allreduce  # noqa: E402,F401  registers the "allreduce" workload


class _Parser(argparse.ArgumentParser):
    """Bad options end with one line naming the option, no usage block."""

    def error(self, message):
        self.exit(2, f"make sim: error: {message}\n")


def _size(text):
    """A positive integer option value."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {v}")
    return v


def _report_json(report):
    """The ``--json`` report: every key, numbers as numbers, arrays as lists."""
    def plain(v):
        if isinstance(v, (np.integer, np.floating)):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
        return v
    return {k: plain(v) for k, v in report.items()}


def main(argv=None):
    ap = _Parser(description="Run a workload on the openmaia RTL.",
                 epilog="Tool output goes to build/sim/make_sim.log.")
    ap.add_argument("name", nargs="?", default=None, metavar="WORKLOAD",
                    help="workload name, as --workload")
    ap.add_argument("--workload", default=None, help="workload name (see --list)")
    ap.add_argument("--chips", type=int, choices=(2, 4), default=2,
                    help="allreduce: chips (2: a pair, 4: the fully connected quad)")
    ap.add_argument("--list", action="store_true", help="list workloads and exit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--beats", type=_size, default=2048)
    ap.add_argument("--stall", type=float, default=0.2)
    ap.add_argument("--json", help="also write the report to this file")
    ap.add_argument("--fp4", action="store_true", help="MX FP4 (E2M1) weights instead of FP8")
    ap.add_argument("--seq", type=_size, default=8)
    ap.add_argument("--d-model", type=_size, default=32)
    ap.add_argument("--heads", type=_size, default=2)
    ap.add_argument("--d-ff", type=_size, default=64)
    ap.add_argument("--m", type=_size, default=64, help="gemm: rows of A and y")
    ap.add_argument("--n", type=_size, default=64, help="gemm: columns of W and y")
    ap.add_argument("--k", type=_size, default=64, help="gemm: the reduction")
    ap.add_argument("--max-cycles", type=_size, default=2_000_000,
                    help="host-side limit (the tile's deadlock watchdog normally fires first)")
    ap.add_argument("--buffers", type=int, default=2, choices=(1, 2),
                    help="gemm: weight buffers (1 or 2)")
    ap.add_argument("--hbm", choices=("model", "axiram"), default="model",
                    help="HBM: the AXI model inside the simulated top (fast, default) or "
                         "cocotbext-axi AxiRam with Python every cycle (slow)")
    ap.add_argument("--trace", help="trace JSON path (default build/sim/trace.json)")
    ap.add_argument("--no-record", dest="record", action="store_false",
                    help="do not store the measured cycles in docs/measured.json")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    names = sorted(k for k in WORKLOADS if not k.startswith("__"))
    if args.list:
        for name in names:
            print(f"{name:12s} {(WORKLOADS[name].__doc__ or '').splitlines()[0]}")
        return 0
    if args.name and args.workload and args.name != args.workload:
        ap.error(f"argument --workload: {args.workload!r} and workload {args.name!r} disagree")
    name = args.name or args.workload or WORKLOADS["__default__"]
    if name not in names:
        ap.error(f"argument --workload: unknown workload {name!r} (known: {', '.join(names)})")
    if args.chips != 2 and name != "allreduce":
        ap.error(f"argument --chips: only the allreduce workload has chips, not {name!r}")
    start = time.time()
    from sim.rtl import runner
    BUILD.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    runner.LOG = LOG
    try:
        report = WORKLOADS[name](args)
    except ValueError as e:  # CompileError too: an option the workload or the tile cannot take
        from hw.tile import TileParams
        from sim.compiler import CompileError
        if isinstance(e, CompileError):
            cfg = TileParams()
            sizes = " ".join(_workload_args(args.argv)) or "(defaults)"
            msg = (f"{sizes} does not fit the tile: {e} (limits: tile SRAM {cfg.sram_size} "
                   f"bytes = {cfg.words} words, HBM {cfg.hbm_size} bytes, "
                   f"{cfg.depth} words per queue)")
        else:
            msg = f"bad option: {e}"
        print(f"make sim: error: {name}: {msg}", file=sys.stderr)
        return 2
    except Exception as e:  # a failed simulator run: say so clearly, the log has the rest
        print(f"make sim: FAIL: {name}: {type(e).__name__}: {e} (see {_rel(LOG)})",
              file=sys.stderr)
        return 2
    finally:
        runner.LOG = None
    report["wall_seconds"] = round(time.time() - start, 2)
    # Keys starting with "_" are for --json readers (numbers behind the text lines).
    shown = {k: v for k, v in report.items() if not k.startswith("_")}
    width = max(len(k) for k in shown)
    print(f"== openmaia make sim: {name} ==")
    for k, v in shown.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        print(f"  {k:{width}s}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(_report_json(report), f, indent=1)
    if report.get("error"):
        print(f"FAIL: {report['error']}", file=sys.stderr)
        return 3
    if not report.get("bit_exact", False):
        print("FAIL: result differs from the golden model", file=sys.stderr)
        return 1
    print("PASS: bit-exact against the golden model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
