"""Throughput of the shared stream blocks (the `make sim` stream workload)."""
from types import SimpleNamespace

from sim.run import stream_pipeline


def run(quick=False):
    rows = ["| stall probability (each side) | beats | cycles | beats/cycle | bit-exact |",
            "|---|---|---|---|---|"]
    for stall in (0.0, 0.1, 0.3):
        r = stream_pipeline(SimpleNamespace(seed=1, beats=1024 if quick else 8192, stall=stall))
        rows.append(f"| {stall} | {r['beats']} | {r['cycles']} | {r['beats_per_cycle']} | {r['bit_exact']} |")
    return ("StreamFIFO(depth 8) -> SkidBuffer, 32-bit beats, Amaranth simulator. "
            "With no stalls one beat per cycle is the ideal.\n\n" + "\n".join(rows) + "\n")
