"""Schedule replay: the cycles of a compiled tile program on the prototype tile.

:func:`tile_program_cycles` replays a :class:`sim.compiler.TileProgram` the way
``hw.tile.Tile`` runs it, at the level of whole operations:

* the command processor (``docs/cp.md``): per-engine in-order queues, an
  instruction dispatches ``cp_dispatch_cycles`` after the previous one, once
  all its waits can be acquired at once; an ``EXEC`` is handed to its engine
  when the engine's feeder is idle; a completion signals its semaphores one
  cycle later;
* the TTU: the feeder's record fetch and command (``ttu_cmd_cycles``), the
  weight load (one beat per cycle) and the array's tile timing
  (:func:`sim.perf.model.ttu_gemm_cycles` at the record's K, with the skew
  and ``ttu_pe_latency`` drain);
* the TVP: the feeder streams ``a``, ``b``, ``c`` through one SRAM port each
  (one read per cycle per port) and hands beat ``j`` over
  ``TVP_FEED_LATENCY + j`` cycles after the start at the earliest, the vector
  unit issues micro-ops as :class:`sim.tvp.TimingModel` says, the last
  result leaves ``tvp_latency`` (activation chain: ``tvp_act_latency``)
  cycles after its issue; ``tvp_cmd_cycles``
  covers record fetch and the done handshake;
* the DMA: the feeder fetches the descriptor (``dma_fetch_cycles``) and
  queues it; the engine completes descriptors in order, each row costing its
  data beats or ``dma_row_cycles`` for short rows (gathers of one byte per
  row), ``dma_latency_cycles`` after the fetch, or ``dma_gap_cycles`` after
  the previous descriptor's data (the next latency runs under its beats).

The timing constants live in the chip preset (:data:`sim.perf.PROTOTYPE`);
``tb/test_perf.py`` checks the replay against the cycle count that
``make sim`` measured on the RTL (``docs/measured.json``, group ``sim``). SRAM
bank conflicts between engines are not modelled: they cost a few cycles per
operation (see ``docs/perf.md``).
"""
import heapq
import math
from collections import Counter

from sim.compiler.program import ENGINES
from sim.dma import tile_dma

from .model import ttu_gemm_cycles

__all__ = ["tile_chip", "tile_program_cycles", "op_cycles"]


def tile_chip(cfg, chip):
    """``chip`` with its per-tile shape set to the compiled tile's (:class:`hw.tile.TileParams`)."""
    return chip.with_(ttu_rows=cfg.n, ttu_cols=cfg.n, tvp_lanes=cfg.n,
                      dma_bytes_per_cycle=cfg.word_bytes,
                      ttu_fill_cycles=2 * cfg.n + chip.ttu_pe_latency)


def _ttu_cycles(rec, chip):
    n = chip.ttu_rows
    k = rec["k_beats"]
    load = rec["n_tiles"] * k
    # k_beats are array beats already (two FP4 elements per beat when packed).
    array = ttu_gemm_cycles(rec["m_tiles"] * n, rec["n_tiles"] * n, k, chip, fmt="fp8",
                            block=1)
    return chip.ttu_cmd_cycles + load + array


#: hw.tile.TVPFeeder: first operand read issued -> first beat handed to the TVP
#: (the tile SRAM's two-cycle read latency and the join).
TVP_FEED_LATENCY = 2


def _tvp_cycles(rec, chip):
    from sim.tvp import TimingModel
    tm = TimingModel(lanes=chip.tvp_lanes, gap=chip.tvp_hazard_gap)
    # a, b, c stream through their own SRAM ports, one read per cycle each: beat j
    # can be handed over SRAM_READ_LATENCY + j cycles after the record is decoded.
    for j in range(rec["n_beats"]):
        tm.cycle = max(tm.cycle, TVP_FEED_LATENCY + j)
        tm.beat(rec["op"], rec["fmt"], int(j % rec["group"] == rec["group"] - 1))
    lat = chip.tvp_act_latency if tm.last_was_act else chip.tvp_latency
    return tm.cycle + lat + chip.tvp_cmd_cycles


def _dma_cycles(rows, chip):
    """Data cycles of a descriptor: its beats, at least ``dma_row_cycles`` per row."""
    wb = chip.dma_bytes_per_cycle
    return sum(max(chip.dma_row_cycles, math.ceil(n / wb)) for _, _, n in rows)


def op_cycles(op, prog, chip):
    """Engine cycles of one operation (for DMA: its data cycles, without latency)."""
    if op.kind == "gemm":
        return _ttu_cycles(op.rec, chip)
    if op.kind == "vec":
        return _tvp_cycles(op.rec, chip)
    return _dma_cycles(tile_dma(prog.cfg).rows(op.rec), chip)


def tile_program_cycles(prog, chip):
    """Replay ``prog`` (a compiled :class:`sim.compiler.TileProgram`) on ``chip``.

    Returns ``{"cycles", "busy": {engine: cycles}, "spans": {engine: [(start,
    end, name)]}}``; ``chip`` should come from :func:`tile_chip`.
    """
    # (waits, op or None for a NOP) per queue, as the command processor runs them.
    instrs = [[(Counter(waits), op) for waits, op in q] for q in prog.instructions()]
    chip = tile_chip(prog.cfg, chip)
    sems = Counter()
    events = []               # (cycle, sem id): increments in the future
    pc = [0] * len(ENGINES)
    ready = [0] * len(ENGINES)            # earliest dispatch of the next instruction
    free = [0] * len(ENGINES)             # feeder (engine for TTU/TVP) idle from
    dma_engine_free = 0
    spans = {e: [] for e in ENGINES}
    end_all = 0
    now = 0
    while True:
        # The earliest dispatch possible with the semaphores as they are now.
        best = None
        for e, q in enumerate(instrs):
            if pc[e] < len(q) and all(sems[s] >= k for s, k in q[pc[e]][0].items()):
                t = max(ready[e], now)
                if best is None or t < best[0]:
                    best = (t, e)
        if best is not None and (not events or best[0] < events[0][0]):
            t, e = best
            waits, op = instrs[e][pc[e]]
            sems.subtract(waits)
            pc[e] += 1
            now = t
            if op is None:
                ready[e] = t + chip.cp_dispatch_cycles
                continue
            start = max(t + 1, free[e])        # the engine accepts when idle
            dur = op_cycles(op, prog, chip)
            if e == 0:     # DMA: fetch in the feeder, then the engine's queue
                fetched = start + chip.dma_fetch_cycles
                free[e] = fetched + 1
                # Descriptors overlap in the engine: the next one's latency runs
                # under the previous one's data beats.
                done = max(fetched + chip.dma_latency_cycles + dur,
                           dma_engine_free + dur + chip.dma_gap_cycles)
                begin = done - dur - chip.dma_latency_cycles
                dma_engine_free = done
            else:
                begin, done = start, start + dur
                free[e] = done + 1
            spans[ENGINES[e]].append((begin, done, op.name))
            ready[e] = start + chip.cp_dispatch_cycles
            end_all = max(end_all, done)
            for c in op.signals:
                heapq.heappush(events, (done + 1, prog.sem_ids[e, c]))
            continue
        if not events:
            break
        now, s = heapq.heappop(events)
        sems[s] += 1
    if any(pc[e] < len(q) for e, q in enumerate(instrs)):
        stuck = [ENGINES[e] for e, q in enumerate(instrs) if pc[e] < len(q)]
        raise ValueError(f"program deadlocks in the replay: queues {stuck} never proceed")
    busy = {e: sum(b - a for a, b, _ in s) for e, s in spans.items()}
    return {"cycles": math.ceil(end_all + chip.cp_halt_cycles),
            "busy": {e: round(b) for e, b in busy.items()}, "spans": spans}
