"""``make sim``: run a workload on the RTL and report it against the golden model.

Workloads register in :data:`WORKLOADS` (name -> callable(args) -> report
dict). Each one builds the RTL, runs it, checks the result bit for bit
against the golden model and returns figures; the driver prints a report
and exits non-zero on any mismatch, so ``make sim`` is itself a check.

Usage::

    make sim                          # the default workload
    make sim SIMARGS="--list"
    make sim SIMARGS="--workload stream --beats 4096"
"""
import argparse
import json
import sys
import time

WORKLOADS = {}


def workload(name, *, default=False):
    """Register ``fn`` as workload ``name``."""
    def register(fn):
        WORKLOADS[name] = fn
        if default:
            WORKLOADS["__default__"] = name
        return fn
    return register


@workload("stream", default=True)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run a workload on the openmaia RTL.")
    ap.add_argument("--workload", default=None, help="workload name (see --list)")
    ap.add_argument("--list", action="store_true", help="list workloads and exit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--beats", type=int, default=2048)
    ap.add_argument("--stall", type=float, default=0.2)
    ap.add_argument("--json", help="also write the report to this file")
    args = ap.parse_args(argv)
    names = sorted(k for k in WORKLOADS if not k.startswith("__"))
    if args.list:
        for name in names:
            print(f"{name:12s} {(WORKLOADS[name].__doc__ or '').splitlines()[0]}")
        return 0
    name = args.workload or WORKLOADS["__default__"]
    if name not in names:
        ap.error(f"unknown workload {name!r}; known: {', '.join(names)}")
    start = time.time()
    report = WORKLOADS[name](args)
    report["wall_seconds"] = round(time.time() - start, 2)
    width = max(len(k) for k in report)
    print(f"== openmaia make sim: {name} ==")
    for k, v in report.items():
        print(f"  {k:{width}s}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if not report.get("bit_exact", False):
        print("FAIL: result differs from the golden model", file=sys.stderr)
        return 1
    print("PASS: bit-exact against the golden model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
