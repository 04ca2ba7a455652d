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
    make sim SIMARGS="--list"
"""
import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from sim.compiler.program import ENGINES
from sim.dma import tile_dma

WORKLOADS = {}
BUILD = Path(__file__).resolve().parent.parent / "build" / "sim"


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


def run_on_tile(prog, meta, args, *, check=True):
    """Build (cached) and run ``prog`` on the tile RTL; return the report dict."""
    from hw.tile import Tile
    from hw.tile import TileParams
    from sim.rtl import runner
    from sim.tile import TileModel

    cfg = TileParams()
    tile = Tile(params=cfg)
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
    job_path, res_path = BUILD / "job.pkl", BUILD / "result.json"
    if res_path.exists():
        res_path.unlink()
    with open(job_path, "wb") as f:
        pickle.dump(dict(image=image, sram_words=sorted(sram_words), hbm_lines=sorted(hbm_lines),
                         out=(out_addr, nbytes), max_cycles=args.max_cycles), f)
    t0 = time.time()
    # Same parameters as tb/integration/test_tile.py: the Verilator build is shared.
    runner.run(tile, block="integration_tile", test_module="sim.rtl.tile_job",
               params={"cfg": cfg.as_dict()},
               extra_env={"SIM_JOB": str(job_path), "SIM_RESULT": str(res_path)})
    wall = time.time() - t0
    res = json.loads(res_path.read_text())
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
    rep["cycles"] = res["cycles"]
    n = cfg.n
    busy = {e: sum(b - a for a, b in res["timeline"][e]) for e in ENGINES}
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
        rep["vs float64"] = (f"max abs err {err.max():.4g}, rms {np.sqrt((err ** 2).mean()):.4g}, "
                             f"max |ref| {np.abs(ref).max():.4g} (MX quantization of "
                             f"weights and activations)")
        rep["useful MACs"] = meta["macs"]
        peak = res["cycles"] * n * n
        rep["TTU MAC utilisation"] = (f"{meta['macs'] / peak:.1%} of peak over the run "
                                      f"({res['macs'] * n * n / peak:.1%} counting padded MACs; "
                                      f"TTU busy {busy['ttu'] / res['cycles']:.1%})")
    from sim.rtl.tile_host import overlap
    rep["overlap"] = (f"DMA and TTU both busy {overlap(res['timeline']['dma'], res['timeline']['ttu'])}"
                      f" cycles, TVP and TTU {overlap(res['timeline']['tvp'], res['timeline']['ttu'])}")
    rep["TVP busy"] = f"{busy['tvp']} cycles ({busy['tvp'] / max(1, res['cycles']):.1%})"
    dma_bytes = sum(sum(r[2] for r in _rows(prog, o)) for o in prog.ops if o.kind == "dma")
    rep["DMA"] = (f"{len([o for o in prog.ops if o.kind == 'dma'])} descriptors, "
                  f"{dma_bytes} bytes, busy {busy['dma']} cycles "
                  f"({busy['dma'] / max(1, res['cycles']):.1%})")
    rep["program"] = (f"{len(prog.ops)} ops, queue words "
                      f"{'/'.join(str(len(q)) for q in image['queues'])} (dma/ttu/tvp)")
    trace = Path(args.trace) if args.trace else BUILD / "trace.json"
    _trace(res, prog, trace, n)
    rep["trace"] = f"{trace} (open in ui.perfetto.dev or chrome://tracing; 1 us = 1 cycle)"
    rep["simulation wall seconds"] = round(wall, 1)
    rep["ok"] = ok
    if not check:
        rep["bit_exact"] = ok
    return rep


def _rows(prog, op):
    return tile_dma(prog.cfg).rows(op.rec)


#: Compilable workloads: name -> (sim.compiler.workloads function, fixed keywords).
PROGRAMS = {
    "transformer": ("transformer_block", {}),
    "gemm": ("gemm_layer", dict(M=8, K=64, N=64)),
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
    return _compile_and_run("transformer", dict(
        seq=args.seq, d_model=args.d_model, heads=args.heads, d_ff=args.d_ff,
        wfmt="fp4_e2m1" if args.fp4 else "fp8_e4m3", seed=args.seed), args)


@workload("gemm")
def gemm(args):
    """GELU(x @ W + b), weights streamed with double buffering, on the tile RTL."""
    return _compile_and_run("gemm", dict(
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run a workload on the openmaia RTL.")
    ap.add_argument("--workload", default=None, help="workload name (see --list)")
    ap.add_argument("--list", action="store_true", help="list workloads and exit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--beats", type=int, default=2048)
    ap.add_argument("--stall", type=float, default=0.2)
    ap.add_argument("--json", help="also write the report to this file")
    ap.add_argument("--fp4", action="store_true", help="MX FP4 (E2M1) weights instead of FP8")
    ap.add_argument("--seq", type=int, default=8)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--d-ff", type=int, default=64)
    ap.add_argument("--max-cycles", type=int, default=400_000,
                    help="host-side limit (the tile's deadlock watchdog normally fires first)")
    ap.add_argument("--buffers", type=int, default=2, help="gemm: weight buffers (1 or 2)")
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
    name = args.workload or WORKLOADS["__default__"]
    if name not in names:
        ap.error(f"unknown workload {name!r}; known: {', '.join(names)}")
    start = time.time()
    try:
        report = WORKLOADS[name](args)
    except Exception as e:  # a compile error or a failed simulator run: say so clearly
        from sim.compiler import CompileError
        kind = "compile error" if isinstance(e, CompileError) else type(e).__name__
        print(f"== openmaia make sim: {name} ==\nFAIL: {kind}: {e}", file=sys.stderr)
        return 2
    report["wall_seconds"] = round(time.time() - start, 2)
    # Keys starting with "_" are for --json readers (numbers behind the text lines).
    shown = {k: v for k, v in report.items() if not k.startswith("_")}
    width = max(len(k) for k in shown)
    print(f"== openmaia make sim: {name} ==")
    for k, v in shown.items():
        print(f"  {k:{width}s}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
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
