"""Performance model (sim/perf): published figures, consistency, event model.

Testplan (docs/perf.md): the Maia 200 preset reproduces the published peak
rates; the event-level pipeline equals the closed form where one exists;
FP4 halves compute-bound GEMM time; decode GEMV is memory bound near the HBM
roofline; more chips raise tokens/s; bad arguments are rejected by name; the
prototype preset predicts every RTL cycle count that ``make bench`` recorded
in ``docs/measured.json`` (DMA copies, TTU GEMMs, TVP ops and kernels, NoC packets at zero load, NIC messages and transfers, and the ``make sim``
tile programs by a replay of their compiled schedule) within 5 %.
"""
import json
import math
from pathlib import Path

import pytest

from sim.perf import (MAIA200, PROTOTYPE, dma_copy_cycles, gemm, pipeline_cycles, roofline_points,
                      tokens_per_second, ttu_gemm_cycles)
from sim.perf.model import LLM_70B

MEASURED = Path(__file__).resolve().parent.parent / "docs" / "measured.json"


def test_published_peaks():
    # "10+ petaFLOPS (FP4), 5+ petaFLOPS (FP8)"
    assert 10e15 <= MAIA200.peak_flops("fp4") <= 11e15
    assert 5e15 <= MAIA200.peak_flops("fp8") <= 5.5e15
    assert MAIA200.peak_flops("fp4") == 2 * MAIA200.peak_flops("fp8")
    assert MAIA200.tiles == 40
    assert MAIA200.tiles * MAIA200.tile_sram_bytes <= MAIA200.total_sram_bytes


def test_pipeline_closed_form():
    # n equal stages: first load, then n computes back to back (compute-bound)
    assert pipeline_cycles([3] * 10, [5] * 10) == 3 + 10 * 5
    # load-bound: n loads back to back, then the last compute
    assert pipeline_cycles([7] * 10, [2] * 10) == 10 * 7 + 2
    # a single buffer serialises load and compute
    assert pipeline_cycles([3] * 4, [5] * 4, buffers=1) == 4 * (3 + 5)
    assert pipeline_cycles([], []) == 0


def test_fp4_doubles_compute_bound_rate():
    fp8 = gemm(8192, 8192, 8192, MAIA200, fmt="fp8")
    fp4 = gemm(8192, 8192, 8192, MAIA200, fmt="fp4")
    assert fp8["bound"] == "compute"
    assert 1.6 <= fp8["cycles"] / fp4["cycles"] <= 2.0


def test_decode_gemv_is_memory_bound_near_roofline():
    g = gemm(1, 8192, 8192, MAIA200, fmt="fp4")
    assert g["bound"] == "memory"
    ideal = 8192 * 8192 * 4.25 / 8 / MAIA200.hbm_bytes_per_cycle()
    assert ideal <= g["cycles"] <= 2 * ideal


def test_roofline_ridge():
    r = roofline_points(MAIA200, "fp8")
    assert math.isclose(r["ridge_flop_per_byte"], MAIA200.peak_flops("fp8") / 7e12)


def test_more_chips_more_tokens():
    one = tokens_per_second(LLM_70B, MAIA200, batch=64, context=4096, n_chips=1)
    four = tokens_per_second(LLM_70B, MAIA200, batch=64, context=4096, n_chips=4)
    assert four["tokens_per_s"] > 2 * one["tokens_per_s"]


def test_prototype_preset_is_the_rtl():
    # The preset is derived from the default cluster's parameter object and the
    # hardware classes' latencies, not typed again.
    from hw.cluster import ClusterParams
    from hw.ttu.array import PIPELINE_LATENCY
    from sim.perf.config import prototype, ttu_k_of
    p = ClusterParams()
    assert (PROTOTYPE.ttu_rows, PROTOTYPE.tvp_lanes) == (p.tile.n, p.tile.n)
    assert PROTOTYPE.tiles_per_cluster == p.n_tiles
    assert PROTOTYPE.tile_sram_bytes == p.tile.sram_size
    assert PROTOTYPE.dma_bytes_per_cycle == p.tile.word_bytes
    assert PROTOTYPE.ttu_pe_latency == PIPELINE_LATENCY
    # The tile's TTU is unpacked (FP4 = FP8 rate); a packed TTU doubles the narrow formats.
    assert PROTOTYPE.macs_per_cycle("fp4") == PROTOTYPE.macs_per_cycle("fp8")
    assert ttu_k_of(("fp8_e4m3", "fp4_e2m1"), packed=True) == dict(fp4=2, fp6=1, fp8=1, bf16=1)
    # A bigger tile changes the preset with it.
    big = prototype(p.replace(tile=p.tile.replace(n=8)))
    assert big.ttu_rows == 8 and big.macs_per_cycle("fp8") == 4 * PROTOTYPE.macs_per_cycle("fp8")


def test_bad_arguments_named():
    with pytest.raises(ValueError, match="fmt"):
        MAIA200.macs_per_cycle("fp5")
    with pytest.raises(ValueError, match="k must"):
        gemm(8, 8, 0, MAIA200)
    with pytest.raises(ValueError, match="buffers"):
        pipeline_cycles([1], [1], buffers=0)


def _predict(entry):
    """The prototype preset's prediction for one ``docs/measured.json`` entry."""
    kind = entry["kind"]
    if kind == "dma_copy":
        # Measured on the DMA bench's engine (sim.rtl.blocks.DMA_PARAMS), not the tile's.
        from sim.rtl.blocks import DMA_PARAMS
        return dma_copy_cycles(entry["bytes"], PROTOTYPE.with_(
            dma_bytes_per_cycle=DMA_PARAMS["data_width"] // 8))
    if kind == "ttu_gemm":
        # The standalone TTU of the bench: every format, narrow ones packed two per lane.
        from hw.common.mx import ALL_FORMATS
        from sim.perf.config import ttu_k_of
        chip = PROTOTYPE.with_(ttu_rows=entry["rows"], ttu_cols=entry["cols"],
                               ttu_k=ttu_k_of(ALL_FORMATS, packed=True),
                               ttu_fill_cycles=entry["rows"] + entry["cols"] + PROTOTYPE.ttu_pe_latency)
        return ttu_gemm_cycles(entry["m"], entry["n"], entry["k"], chip, fmt=entry["fmt"])
    if kind == "nic_message":
        from sim.perf.model import nic_message_cycles
        return nic_message_cycles(entry["payload"], PROTOTYPE, link_latency=entry["link_latency"])
    if kind == "nic_transfer":
        from sim.perf.model import nic_transfer_cycles
        return nic_transfer_cycles(entry["packets"], entry["payload"], PROTOTYPE,
                                   link_latency=entry["link_latency"], rto=entry["rto"],
                                   retransmits=entry["retransmits"], timeouts=entry["timeouts"])
    if kind == "noc_zero_load":
        from sim.perf.model import noc_packet_cycles
        return noc_packet_cycles(entry["hops"], entry["beats"], PROTOTYPE)
    if kind in ("tvp_pass", "tvp_kernel"):
        from sim.perf.tvp import kernel_passes, op_pass, passes_cycles
        chip = PROTOTYPE.with_(tvp_lanes=entry["lanes"])
        if kind == "tvp_pass":
            return passes_cycles([op_pass(entry["op"], entry["fmt"], entry["beats"])], chip)
        beats = entry["row"] // (entry["lanes"] * (2 if entry["fmt"] else 1))
        return passes_cycles(kernel_passes(entry["kernel"], beats, entry["fmt"]), chip)
    if kind == "tile_program":
        # The make sim workload, recompiled, its schedule replayed on the model.
        from sim.perf.tile import tile_program_cycles
        from sim.run import compile_workload
        prog, _ = compile_workload(entry["workload"], entry["params"])
        return tile_program_cycles(prog, PROTOTYPE)["cycles"]
    raise AssertionError(f"no prediction for measured kind {kind!r}")


def test_prototype_predicts_rtl_within_5_percent():
    """Every RTL cycle count recorded by ``make bench`` (docs/measured.json) is
    predicted by the prototype preset within 5 %."""
    data = json.loads(MEASURED.read_text())
    assert {"dma", "ttu", "tvp", "noc", "nic"} <= set(data), f"measurements missing: have {sorted(data)}"
    sims = [g for g in data if g.startswith("sim transformer")]
    assert sims, "no make sim transformer run recorded (run make sim)"
    worst = []
    for group, rec in data.items():
        for e in rec["entries"]:
            p = _predict(e)
            err = abs(p - e["cycles"]) / e["cycles"]
            worst.append((err, group, e, p))
            assert err <= 0.05, f"{group} {e}: model predicts {p}, RTL took {e['cycles']}"
    assert len(worst) >= 6


def test_replay_is_sensitive_to_the_schedule():
    # The replay follows the program's semaphores: one weight buffer instead of two
    # serialises DMA and TTU, and the predicted cycles grow.
    from sim.perf.tile import tile_program_cycles
    from sim.run import compile_workload
    one, _ = compile_workload("gemm", dict(buffers=1, wfmt="fp8_e4m3", seed=1))
    two, _ = compile_workload("gemm", dict(buffers=2, wfmt="fp8_e4m3", seed=1))
    c1 = tile_program_cycles(one, PROTOTYPE)["cycles"]
    c2 = tile_program_cycles(two, PROTOTYPE)["cycles"]
    assert c1 - c2 > 500, (c1, c2)


def test_prediction_check_can_fail():
    # The check above is not vacuous: a model with the wrong DMA rate misses by far more than 5 %.
    slow = PROTOTYPE.with_(dma_bytes_per_cycle=PROTOTYPE.dma_bytes_per_cycle // 2)
    assert dma_copy_cycles(4096, slow) > 1.05 * dma_copy_cycles(4096, PROTOTYPE)
