"""GEMM on the chip: a tiling chosen by search, replayed as a load/compute pipeline.

``C[m,n] = A[m,k] @ B[k,n]`` is cut the way a compiler for the tile/cluster
hierarchy would cut it:

* the chip's tiles form a grid: clusters ``gm x gn`` over C's rows x columns,
  tiles of a cluster ``tr x tc``; every tile owns one ``mt x nt`` C block per
  *wave*, so a wave covers ``(gm tr mt) x (gn tc nt)`` of C and the waves
  ``wm x wn`` cover all of it (the last wave of each dimension re-splits the
  remainder evenly: blocks shrink, in whole TTU tiles);
* within a wave, K flows in chunks of ``kt``: each chunk of the wave's A rows
  and B columns is read from HBM once and broadcast to every tile that needs
  it (the published "hierarchical HBM-to-cluster broadcast"; with
  ``broadcast=False`` every tile reads its own copy);
* ``pin="A"`` (or ``"B"``): the cluster SRAM keeps the cluster's A row panel
  (B column panel) for all of K across the waves that reuse it, so it is read
  from HBM once instead of once per wave;
* the TTU is ``hw.ttu``'s output-stationary array at the chip's shape: one
  K step of ``ttu_k[fmt]`` per cycle, output tiles back to back, but at least
  ``max(rows, cols)`` cycles per output tile and K chunk (the wavefront's skew),
  and ``ttu_fill_cycles`` to drain at the end;
* a tile double-buffers its A and B chunks, keeps FP32 accumulators when K
  takes more than one chunk, and with ``overlap_writeback`` a second output
  buffer: wave ``w``'s C is written back while wave ``w + 1`` computes (its
  bytes share HBM with wave ``w + 1``'s loads); only the last wave's write-back
  and the TTU drain are exposed. Without it every wave stops for its drain
  and write-back.

The search enumerates the grids, blocks (every block size that changes the
number of waves, up to what the tile SRAM holds), K chunks and pinning
choices that fit the tile and cluster SRAM, estimates each in closed form
(numpy), and replays the best ones step by step with
:func:`sim.perf.model.pipeline_cycles`; the fastest replay is reported.
"""
import math
from dataclasses import dataclass

import numpy as np

from .config import ELEMENT_BITS, MX_BLOCK

__all__ = ["Tiling", "gemm", "search_tiling"]


@dataclass(frozen=True)
class Tiling:
    """One way to cut a GEMM over the chip (see the module docstring)."""
    cluster_grid: tuple   # (gm, gn)
    tile_grid: tuple      # (tr, tc)
    block: tuple          # (mt, nt, kt)
    waves: tuple          # (wm, wn)
    pin: str              # "A", "B" or "-"

    def describe(self):
        (gm, gn), (tr, tc), (mt, nt, kt), (wm, wn) = (self.cluster_grid, self.tile_grid,
                                                      self.block, self.waves)
        pin = {"A": ", A panel pinned in cluster SRAM", "B": ", B panel pinned in cluster SRAM",
               "-": ""}[self.pin]
        return (f"clusters {gm}x{gn}, tiles {tr}x{tc} per cluster, block {mt}x{nt}, "
                f"K chunk {kt}, {wm}x{wn} waves{pin}")


def _pairs(x):
    return [(a, x // a) for a in range(1, x + 1) if x % a == 0]


def _cap(x, unit):
    return max(unit, -(-x // unit) * unit)


def _check(m, n, k, chip, fmt, out_fmt):
    for name, v in (("m", m), ("n", n), ("k", k)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    chip.macs_per_cycle(fmt)          # names fmt if the TTU has no such format
    if out_fmt not in ELEMENT_BITS:
        raise ValueError(f"out_fmt must be one of {sorted(ELEMENT_BITS)}, not {out_fmt!r}")


def _dim_candidates(size, grid, unit, most):
    """Block sizes (multiples of ``unit``, at most ``most``) each giving a different
    number of waves over ``size`` split ``grid`` ways, smallest block per wave count."""
    out, w = [], 1
    while True:
        b = _cap(-(-size // (grid * w)), unit)
        if b <= most and (not out or b < out[-1]):
            out.append(b)
        if b == unit:
            break
        w = max(w + 1, -(-size // (grid * (b - unit))))   # the next block size down
    return out


def _k_candidates(kpad, kc):
    """K chunks: K split into 1, 2, 4, ... equal chunks of whole MX blocks and TTU steps."""
    unit = math.lcm(kc, MX_BLOCK)
    out, q = [], 1
    while True:
        kt = _cap(-(-kpad // q), unit)
        if not out or kt < out[-1]:
            out.append(kt)
        if kt == unit:
            return out
        q *= 2


def _last_block(size, block, grid, waves, unit):
    """The block side of the last wave along one dimension (its remainder re-split evenly)."""
    rem = size - (waves - 1) * grid * block
    return min(block, _cap(-(-rem // grid), unit))


def _estimate(m, n, k, chip, fmt, out_fmt, broadcast, overlap_writeback, grid, mts, nts, kts, pin):
    """Closed-form cycles of every (mt, nt, kt) combination of one grid and pin choice:
    ``(cycles array [mt, nt, kt] with inf where the SRAMs cannot hold it, wm, wn)``."""
    rows, cols, kc = chip.ttu_rows, chip.ttu_cols, chip.ttu_k[fmt]
    b, ob = ELEMENT_BITS[fmt] / 8, ELEMENT_BITS[out_fmt] / 8
    kpad = _cap(k, MX_BLOCK)
    bpc = chip.hbm_bytes_per_cycle()
    dma = chip.dma_bytes_per_cycle
    sram = chip.tile_sram_bytes
    out_bufs = 2 if overlap_writeback else 1
    gm, gn, tr, tc = grid
    R, Cg = gm * tr, gn * tc
    MT = np.array(mts, dtype=float)[:, None, None]
    NT = np.array(nts, dtype=float)[None, :, None]
    KT = np.asarray(kts, dtype=float)[None, None, :]
    wm = np.array([-(-m // (R * x)) for x in mts], dtype=float)[:, None, None]
    wn = np.array([-(-n // (Cg * x)) for x in nts], dtype=float)[None, :, None]
    # The last wave of each dimension re-splits its remainder: its block side.
    mr = np.array([_last_block(m, x, R, int(w), rows) for x, w in zip(mts, wm.ravel())],
                  dtype=float)[:, None, None]
    nr = np.array([_last_block(n, x, Cg, int(w), cols) for x, w in zip(nts, wn.ravel())],
                  dtype=float)[None, :, None]
    q = np.ceil(kpad / KT)
    skew = max(rows, cols)
    # TTU cycles per output tile over all of K (the last chunk may be shorter).
    steps_k = ((q - 1) * np.maximum(np.ceil(KT / kc), skew)
               + np.maximum(np.ceil((kpad - (q - 1) * KT) / kc), skew))
    waves = wm * wn
    acc = np.where(q > 1, 4 * MT * NT, 0)
    need = 2 * (MT + NT) * KT * b + acc + out_bufs * MT * NT * ob
    fits = need <= sram
    a_copies = 1 if broadcast else Cg
    b_copies = 1 if broadcast else R
    c_wave = m * n * ob / waves
    drain = chip.ttu_fill_cycles
    first = (np.minimum(R * MT, m) * a_copies + np.minimum(Cg * NT, n) * b_copies) * KT * b / bpc
    if dma is not None:
        first = np.maximum(first, (MT + NT) * KT * b / dma)
    # Four classes of waves: full or last along M, full or last along N.
    classes = [(wm - 1) * (wn - 1), (wm - 1) * 1.0, (wn - 1) * 1.0, 1.0]
    sides = [(MT, NT), (MT, nr), (mr, NT), (mr, nr)]
    a_reads = m * k * b * a_copies * (1 if pin == "A" else wn)
    b_reads = k * n * b * b_copies * (1 if pin == "B" else wm)
    ok = fits
    if pin == "A":
        ok = ok & (2 * tr * MT * k * b <= chip.cluster_sram_bytes)
    elif pin == "B":
        ok = ok & (2 * tc * NT * k * b <= chip.cluster_sram_bytes)
    # HBM bytes per step, spread evenly (C of every wave but the last overlaps).
    hbm_step = ((a_reads + b_reads + (m * n * ob - c_wave if overlap_writeback else 0))
                / bpc / (waves * q))
    body = 0.0
    for count, (bm, bn) in zip(classes, sides):
        step = np.maximum(hbm_step, (bm / rows) * (bn / cols) * steps_k / q)
        if dma is not None:
            step = np.maximum(step, (bm + bn) * KT * b / dma)
        body = body + count * q * step
    tail = c_wave / bpc
    if dma is not None:
        tail = np.maximum(tail, MT * NT * ob / dma)
    est = first + body + drain + tail
    if not overlap_writeback:
        est = est + (waves - 1) * (drain + c_wave / bpc)
    return np.where(ok, est, np.inf), wm, wn


def search_tiling(m, n, k, chip, *, fmt="fp8", out_fmt="bf16", broadcast=True,
                  overlap_writeback=True, pins=("-", "A", "B"), top=1):
    """The ``top`` tilings of least estimated cycles: ``[(Tiling, cycles), ...]``, best first.

    The estimate (:func:`_estimate`) is the pipeline's closed form: the first
    load, then per K step the larger of its HBM share (all reads and the
    overlapped write-backs spread evenly), its tile fill and its TTU time, by
    class of wave (full, or the re-split last one of each dimension), then the
    drain and the last wave's write-back (+ every wave's drain and write-back
    without ``overlap_writeback``).
    """
    _check(m, n, k, chip, fmt, out_fmt)
    rows, cols, kc = chip.ttu_rows, chip.ttu_cols, chip.ttu_k[fmt]
    b, ob = ELEMENT_BITS[fmt] / 8, ELEMENT_BITS[out_fmt] / 8
    kpad = _cap(k, MX_BLOCK)
    sram = chip.tile_sram_bytes
    out_bufs = 2 if overlap_writeback else 1
    kts = np.array(_k_candidates(kpad, kc), dtype=float)
    # The largest block side the tile SRAM can hold with the other side one TTU tile.
    k_min = kts.min()
    side = lambda other: int((sram - 2 * other * k_min * b) // (2 * k_min * b + other * (4 + out_bufs * ob)))
    found = []
    for gm, gn in _pairs(chip.clusters):
        for tr, tc in _pairs(chip.tiles_per_cluster):
            R, Cg = gm * tr, gn * tc
            mts = _dim_candidates(m, R, rows, max(rows, side(cols)))
            nts = _dim_candidates(n, Cg, cols, max(cols, side(rows)))
            for pin in pins:
                if pin != "-" and chip.cluster_sram_bytes == 0:
                    continue
                est, wm, wn = _estimate(m, n, k, chip, fmt, out_fmt, broadcast, overlap_writeback,
                                        (gm, gn, tr, tc), mts, nts, kts, pin)
                if not np.isfinite(est).any():
                    continue
                flat = est.ravel()
                for f in np.argsort(flat, kind="stable")[:top]:
                    if not np.isfinite(flat[f]):
                        break
                    i = np.unravel_index(f, est.shape)
                    t = Tiling((gm, gn), (tr, tc), (mts[i[0]], nts[i[1]], int(kts[i[2]])),
                               (int(wm.ravel()[i[0]]), int(wn.ravel()[i[1]])), pin)
                    found.append((float(flat[f]), len(found), t))
    if not found:
        raise ValueError(f"tile_sram_bytes={sram} cannot hold one {fmt} GEMM block of this chip "
                         f"(TTU {rows} x {kc} x {cols})")
    found.sort()
    return [(t, e) for e, _, t in found[:top]]


def _split(size, block, grid, waves, unit):
    """Per wave along one dimension: (elements covered, block of one tile)."""
    out = []
    for w in range(waves):
        rem = min(grid * block, size - w * grid * block)
        out.append((rem, min(block, _cap(-(-rem // grid), unit))))
    return out


def gemm(m, n, k, chip, *, fmt="fp8", out_fmt="bf16", broadcast=True, overlap_writeback=True,
         tiling=None, candidates=24):
    """Predict ``C[m,n] = A[m,k] @ B[k,n]`` on ``chip`` (see the module docstring).

    ``tiling`` forces a :class:`Tiling`; else the ``candidates`` best tilings of
    :func:`search_tiling` (by estimate, while their replays stay under
    ``REPLAY_BUDGET`` steps in all) are replayed and the fastest is kept.
    Returns cycles, seconds, MACs, utilisation (of the chip's peak for ``fmt``),
    compute and memory cycles, the bound, HBM bytes, the tiling and its
    description, and the exposed head (first load) and tail (drain + last
    write-back) cycles.
    """
    _check(m, n, k, chip, fmt, out_fmt)
    kw = dict(fmt=fmt, out_fmt=out_fmt, broadcast=broadcast, overlap_writeback=overlap_writeback)
    if tiling is not None:
        return _replay(m, n, k, chip, tiling, **kw)
    found = search_tiling(m, n, k, chip, top=candidates, **kw)
    kpad, replays, steps = _cap(k, MX_BLOCK), [], 0
    for t, _ in found:
        steps += t.waves[0] * t.waves[1] * -(-kpad // t.block[2])
        if replays and steps > REPLAY_BUDGET:
            break
        replays.append(_replay(m, n, k, chip, t, **kw))
    return min(replays, key=lambda r: r["cycles"])


#: Beyond this many pipeline steps :func:`gemm` reports the closed form instead of the replay.
MAX_REPLAY_STEPS = 20000
#: Pipeline steps :func:`gemm` replays in all when it compares candidate tilings.
REPLAY_BUDGET = 60000


def _check_tiling(m, n, k, chip, t, fmt, out_fmt, overlap_writeback):
    """A forced tiling must cover C with the chip's tiles and fit both SRAMs."""
    (gm, gn), (tr, tc), (mt, nt, kt), (wm, wn) = t.cluster_grid, t.tile_grid, t.block, t.waves
    if gm * gn != chip.clusters or tr * tc != chip.tiles_per_cluster:
        raise ValueError(f"tiling grids {gm}x{gn} clusters, {tr}x{tc} tiles do not match the chip's "
                         f"clusters={chip.clusters}, tiles_per_cluster={chip.tiles_per_cluster}")
    if mt % chip.ttu_rows or nt % chip.ttu_cols or kt % MX_BLOCK or min(mt, nt, kt) < 1:
        raise ValueError(f"tiling block {mt}x{nt}, K chunk {kt}: whole TTU tiles and MX blocks")
    if wm * gm * tr * mt < m or wn * gn * tc * nt < n:
        raise ValueError(f"tiling waves {wm}x{wn} of {mt}x{nt} blocks do not cover {m}x{n}")
    if t.pin not in ("A", "B", "-"):
        raise ValueError(f"tiling pin must be 'A', 'B' or '-', not {t.pin!r}")
    b, ob = ELEMENT_BITS[fmt] / 8, ELEMENT_BITS[out_fmt] / 8
    need = (2 * (mt + nt) * kt * b + (4 * mt * nt if kt < _cap(k, MX_BLOCK) else 0)
            + (2 if overlap_writeback else 1) * mt * nt * ob)
    if need > chip.tile_sram_bytes:
        raise ValueError(f"tile_sram_bytes={chip.tile_sram_bytes} cannot hold the tiling's block "
                         f"({need:.0f} bytes)")
    panel = {"A": 2 * tr * mt * k * b, "B": 2 * tc * nt * k * b, "-": 0}[t.pin]
    if panel > chip.cluster_sram_bytes:
        raise ValueError(f"cluster_sram_bytes={chip.cluster_sram_bytes} cannot hold the pinned "
                         f"{t.pin} panel twice ({panel:.0f} bytes)")


def _replay(m, n, k, chip, tiling, *, fmt, out_fmt, broadcast, overlap_writeback):
    """The step-by-step pipeline of one tiling (the cycles :func:`gemm` reports)."""
    from .model import pipeline_cycles
    (gm, gn), (tr, tc), (mt, nt, kt), (wm, wn) = (tiling.cluster_grid, tiling.tile_grid,
                                                  tiling.block, tiling.waves)
    _check_tiling(m, n, k, chip, tiling, fmt, out_fmt, overlap_writeback)
    if wm * wn * -(-_cap(k, MX_BLOCK) // kt) > MAX_REPLAY_STEPS:
        est, _, _ = _estimate(m, n, k, chip, fmt, out_fmt, broadcast, overlap_writeback,
                              (gm, gn, tr, tc), [mt], [nt], [kt], tiling.pin)
        cycles = float(est.ravel()[0])
        if not math.isfinite(cycles):
            raise ValueError(f"tiling {tiling.describe()} does not fit the tile or cluster SRAM")
        macs = m * n * k
        b, ob = ELEMENT_BITS[fmt] / 8, ELEMENT_BITS[out_fmt] / 8
        R, Cg = gm * tr, gn * tc
        a_copies, b_copies = (1, 1) if broadcast else (Cg, R)
        hbm = (m * k * b * a_copies * (1 if tiling.pin == "A" else wn)
               + k * n * b * b_copies * (1 if tiling.pin == "B" else wm) + m * n * ob)
        memory = hbm / chip.hbm_bytes_per_cycle()
        compute = macs / chip.macs_per_cycle(fmt)
        return {"cycles": cycles, "seconds": cycles / chip.clock_hz, "macs": macs,
                "utilisation": macs / (cycles * chip.macs_per_cycle(fmt)),
                "compute_cycles": compute, "memory_cycles": memory,
                "bound": "compute" if compute >= memory else "memory",
                "hbm_bytes": hbm, "head_cycles": None, "tail_cycles": None, "tiling": tiling,
                "tiling_text": tiling.describe() + " (closed form)", "block": tiling.block,
                "replayed": False}
    rows, cols, kc = chip.ttu_rows, chip.ttu_cols, chip.ttu_k[fmt]
    b, ob = ELEMENT_BITS[fmt] / 8, ELEMENT_BITS[out_fmt] / 8
    (gm, gn), (tr, tc), (mt, nt, kt), (wm, wn) = (tiling.cluster_grid, tiling.tile_grid,
                                                  tiling.block, tiling.waves)
    R, Cg = gm * tr, gn * tc
    kpad = _cap(k, MX_BLOCK)
    bpc = chip.hbm_bytes_per_cycle()
    dma = chip.dma_bytes_per_cycle
    chunks = [min(kt, kpad - s) for s in range(0, kpad, kt)]
    kfrac = [c / kpad for c in chunks]          # share of the K bytes in each chunk
    a_copies, b_copies = (1, 1) if broadcast else (Cg, R)
    # Wave order: with A pinned, N runs inside M (the A panel is reused); else M inside N.
    order = ([(i, j) for i in range(wm) for j in range(wn)] if tiling.pin == "A"
             else [(i, j) for j in range(wn) for i in range(wm)])
    ms, ns = _split(m, mt, R, wm, rows), _split(n, nt, Cg, wn, cols)
    # A pinned panel (A rows of wave row i, or B columns of wave column j) is read
    # from HBM while the previous group of waves runs (the cluster SRAM holds two),
    # spread over that group's steps; the first group reads its panel as it goes.
    inner = wn if tiling.pin == "A" else wm
    a_panel = lambda i: ms[i][0] * a_copies * k * b
    b_panel = lambda j: ns[j][0] * b_copies * k * b
    loads, computes = [], []
    hbm_bytes = 0.0
    prev_c = 0.0
    drain = chip.ttu_fill_cycles
    nsteps = inner * len(chunks)
    for w, (i, j) in enumerate(order):
        (rm, bm), (rn, bn) = ms[i], ns[j]
        units = (bm // rows) * (bn // cols)
        group, first_of_group = divmod(w, inner)[0], w % inner == 0
        c_bytes = rm * rn * ob
        for s, (c, f) in enumerate(zip(chunks, kfrac)):
            by = 0.0
            if tiling.pin == "A":
                by += rn * b_copies * k * b * f
                if group == 0 and first_of_group:
                    by += a_panel(i) * f
                if group + 1 < wm:
                    by += a_panel(group + 1) / nsteps
            elif tiling.pin == "B":
                by += rm * a_copies * k * b * f
                if group == 0 and first_of_group:
                    by += b_panel(j) * f
                if group + 1 < wn:
                    by += b_panel(group + 1) / nsteps
            else:
                by += (rm * a_copies + rn * b_copies) * k * b * f
            if overlap_writeback:
                by += prev_c / len(chunks)     # the previous wave's C, under this wave
            hbm_bytes += by
            ld = by / bpc
            if dma is not None:
                ld = max(ld, (bm + bn) * c * b / dma)
            loads.append(ld)
            cp = units * max(math.ceil(c / kc), rows, cols)
            if not overlap_writeback and s == len(chunks) - 1:
                wb = c_bytes / bpc if dma is None else max(c_bytes / bpc, bm * bn * ob / dma)
                cp += drain + wb
                hbm_bytes += c_bytes
            computes.append(cp)
        prev_c = c_bytes
    body = pipeline_cycles(loads, computes)
    if overlap_writeback:
        last = ms[order[-1][0]][1] * ns[order[-1][1]][1] * ob
        wb = prev_c / bpc if dma is None else max(prev_c / bpc, last / dma)
        tail = drain + wb
        hbm_bytes += prev_c
    else:
        tail = 0.0
    cycles = body + tail
    macs = m * n * k
    compute_cycles = sum(computes)
    memory_cycles = sum(loads)
    return {
        "cycles": cycles,
        "seconds": cycles / chip.clock_hz,
        "macs": macs,
        "utilisation": macs / (cycles * chip.macs_per_cycle(fmt)),
        "compute_cycles": compute_cycles,
        "memory_cycles": memory_cycles,
        "bound": "compute" if compute_cycles >= memory_cycles else "memory",
        "hbm_bytes": hbm_bytes,
        "head_cycles": loads[0],
        "tail_cycles": tail,
        "tiling": tiling,
        "tiling_text": tiling.describe(),
        "block": tiling.block,
        "replayed": True,
    }
