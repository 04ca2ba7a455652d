"""TVP kernels on the performance model: passes of beats, issue timing, drain.

A kernel (softmax, layernorm of one row) is a list of *passes*; each pass is
a stream of ``(op, fmt, last)`` beats sent back to back, then drained before
the next pass starts (a pass reads what the previous one wrote). A pass
costs :class:`sim.tvp.TimingModel`'s issue cycles at the chip's
``tvp_hazard_gap`` plus ``tvp_latency`` (``tvp_act_latency`` when its last
beat runs on the activation chain). ``make bench BENCH=tvp`` records the
RTL's cycles for single ops and these kernels in ``docs/measured.json``;
``tb/test_perf.py`` checks this model against them.
"""
__all__ = ["kernel_passes", "passes_cycles", "op_pass"]


def op_pass(op, fmt, beats):
    """One pass of ``beats`` beats of ``op`` (a reduction's last beat closes it)."""
    return [(op, fmt, int(k == beats - 1)) for k in range(beats)]


def kernel_passes(kernel, beats, fmt):
    """The passes of ``kernel`` ("softmax" or "layernorm") over a row of ``beats`` beats."""
    red = lambda op: op_pass(op, fmt, beats)
    if kernel == "softmax":
        return [red("RMAX"), [("EXPD", fmt, 0)] * beats,
                red("RSUM"), [("RECIP", fmt, 0)], [("MUL", fmt, 0)] * beats]
    if kernel == "layernorm":
        return [red("RSUM"), [("MUL", fmt, 0)], [("SUB", fmt, 0)] * beats,
                red("RSUMSQ"), [("FMA", fmt, 0)], [("RSQRT", fmt, 0)],
                [("MUL", fmt, 0)] * beats, [("FMA", fmt, 0)] * beats]
    if kernel == "rmsnorm":
        return [red("RSUMSQ"), [("FMA", fmt, 0)], [("RSQRT", fmt, 0)],
                [("MUL", fmt, 0)] * beats, [("MUL", fmt, 0)] * beats]
    raise ValueError(f"kernel must be 'softmax', 'layernorm' or 'rmsnorm', not {kernel!r}")


def passes_cycles(passes, chip):
    """Cycles of ``passes`` on one tile's TVP of ``chip`` (each pass drained)."""
    from sim.tvp import TimingModel
    total = 0
    for p in passes:
        tm = TimingModel(lanes=chip.tvp_lanes, gap=chip.tvp_hazard_gap)
        total += tm.run(p) + (chip.tvp_act_latency if tm.last_was_act else chip.tvp_latency)
    return total
