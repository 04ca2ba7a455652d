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
    one, _ = compile_workload("gemm-layer", dict(buffers=1, wfmt="fp8_e4m3", seed=1))
    two, _ = compile_workload("gemm-layer", dict(buffers=2, wfmt="fp8_e4m3", seed=1))
    c1 = tile_program_cycles(one, PROTOTYPE)["cycles"]
    c2 = tile_program_cycles(two, PROTOTYPE)["cycles"]
    assert c1 - c2 > 500, (c1, c2)


def test_prediction_check_can_fail():
    # The check above is not vacuous: a model with the wrong DMA rate misses by far more than 5 %.
    slow = PROTOTYPE.with_(dma_bytes_per_cycle=PROTOTYPE.dma_bytes_per_cycle // 2)
    assert dma_copy_cycles(4096, slow) > 1.05 * dma_copy_cycles(4096, PROTOTYPE)


# --- Maia 200: published figures, tiling search, collectives, sweep, bad input (issue 22) ---

@pytest.fixture(scope="module")
def comparison_rows():
    from sim.perf.compare import comparison
    return comparison()


def test_published_gemm_utilisation_within_5_percent(comparison_rows):
    # "96 % (FP8) and 99.7 % (BF16) of peak": every GEMM row of the comparison within 5 %.
    rows = [r for r in comparison_rows if r["kind"] == "gemm"]
    assert {r["key"] for r in rows} == {"gemm_fp8", "gemm_bf16"}
    for r in rows:
        assert r["within"], r
        assert abs(r["ratio"] - 1) <= 0.05


def test_published_allreduce_within_15_percent(comparison_rows):
    rows = [r for r in comparison_rows if r["key"] == "allreduce"]
    assert rows and all(abs(r["ratio"] - 1) <= 0.15 for r in rows), rows


def test_comparison_rows_that_miss_say_why(comparison_rows):
    # Rows outside their target are printed as missed with the reason; the table has them all.
    from sim.perf.compare import comparison_table
    table = comparison_table(comparison_rows)
    for r in comparison_rows:
        if not r["within"]:
            assert r["note"].startswith("Misses"), r
    assert table.count("\n") == len(comparison_rows) + 2
    assert "**missed**" in table or all(r["within"] for r in comparison_rows)


def test_mutant_without_writeback_overlap_misses_the_gemm_target():
    # The comparison can fail: without overlapped C write-back (every wave waits for its
    # drain and write-back, as the old model did) the FP8 GEMM misses the 5 % target.
    from sim.perf.compare import comparison
    fp8 = [r for r in comparison(overlap_writeback=False) if r["key"] == "gemm_fp8"]
    assert any(not r["within"] for r in fp8), fp8


def test_prototype_cluster_sram_is_the_rtl():
    # The prototype's cluster SRAM (what the GEMM search may pin panels in) is the cluster's.
    from hw.cluster import ClusterParams
    assert PROTOTYPE.cluster_sram_bytes == ClusterParams().sram_size


def test_tiling_is_searched_within_the_srams():
    from sim.perf.config import ELEMENT_BITS
    from sim.perf.tiling import Tiling
    g = gemm(4096, 4096, 4096, MAIA200, fmt="fp8")
    t = g["tiling"]
    mt, nt, kt = t.block
    b = ELEMENT_BITS["fp8"] / 8
    need = 2 * (mt + nt) * kt * b + 4 * mt * nt * (kt < 4096) + 2 * mt * nt * 2
    assert need <= MAIA200.tile_sram_bytes
    assert mt % 32 == 0 and nt % 32 == 0
    # The old model's choice (512 x 512 blocks, 8 TTU steps of K, 2 waves over 40 tiles,
    # no pinning) is slower than the searched one.
    old = Tiling((2, 2), (2, 5), (512, 512, 256), (2, 1), "-")
    assert gemm(4096, 4096, 4096, MAIA200, fmt="fp8", tiling=old)["cycles"] > 1.1 * g["cycles"]


def test_closed_form_follows_the_replay():
    # The closed form (used for the search, and for GEMMs too long to replay) stays
    # within 3 % of the step-by-step replay of the same tiling.
    import sim.perf.tiling as tiling
    g = gemm(4096, 4096, 4096, MAIA200, fmt="fp8")
    (gm, gn), (tr, tc) = g["tiling"].cluster_grid, g["tiling"].tile_grid
    mt, nt, kt = g["tiling"].block
    est, _, _ = tiling._estimate(4096, 4096, 4096, MAIA200, "fp8", "bf16", True, True,
                                 (gm, gn, tr, tc), [mt], [nt], [kt], g["tiling"].pin)
    assert abs(float(est.ravel()[0]) / g["cycles"] - 1) <= 0.03


def test_collectives_choose_the_algorithm_the_topology_suits():
    from sim.perf.collective import allreduce, alltoall
    quad = allreduce(2**30, MAIA200, 4)
    big = allreduce(2**30, MAIA200, 64)
    assert quad["algorithm"] == "direct" and quad["topology"] == "FCQ"
    assert big["algorithm"] == "hierarchical" and big["candidates"]["ring"] > big["seconds"]
    # Bus bandwidth never exceeds the ports' payload rate.
    rate = MAIA200.nic_ports * MAIA200.port_payload_bytes_per_s()
    for r in (quad, big, alltoall(2**30, MAIA200, 4), alltoall(2**30, MAIA200, 64)):
        assert r["busbw"] <= rate * 1.0001


def test_attention_prefill_and_decode():
    from sim.perf.model import attention
    dec = attention(64, 64, 1, 4096, 128, MAIA200, kv_heads=8)
    pre = attention(1, 64, 4096, 4096, 128, MAIA200, kv_heads=8)
    # Decode reads the whole KV cache: never faster than that read.
    assert dec["cycles"] >= dec["kv_cycles"]
    assert pre["macs"] > 10 * dec["macs"]


def test_tokens_per_second_at_1_4_and_64_chips():
    one = tokens_per_second(LLM_70B, MAIA200, batch=64, context=4096, n_chips=1)
    four = tokens_per_second(LLM_70B, MAIA200, batch=64, context=4096, n_chips=4)
    many = tokens_per_second(LLM_70B, MAIA200, batch=64, context=4096, n_chips=64)
    assert one["tokens_per_s"] < four["tokens_per_s"] < many["tokens_per_s"]
    assert (four["tp"], many["tp"], many["replicas"]) == (4, 4, 16)
    assert four["allreduce_algorithm"] == "direct"
    # Prefill of a 4096-token prompt: tensor parallel in the FCQ shortens the time to first token.
    from sim.perf.model import prefill
    assert prefill(LLM_70B, MAIA200, batch=1, context=4096, n_chips=4)["seconds"] < \
        prefill(LLM_70B, MAIA200, batch=1, context=4096, n_chips=1)["seconds"]


def test_bad_configurations_rejected_by_name():
    from sim.perf.collective import allreduce
    for kw, name in ((dict(tile_sram_bytes=4096), "tile_sram_bytes"),
                     (dict(hbm_bytes_per_s=0), "hbm_bytes_per_s"),
                     (dict(nic_bits_per_s=0), "nic_bits_per_s"),
                     (dict(dma_bytes_per_cycle=0), "dma_bytes_per_cycle"),
                     (dict(clock_hz=-1), "clock_hz"),
                     (dict(tiles_per_cluster=0), "tiles_per_cluster"),
                     (dict(fcq_ports_per_peer=10), "fcq_ports_per_peer")):
        with pytest.raises(ValueError, match=name):
            MAIA200.with_(**kw)
    with pytest.raises(ValueError, match="n_chips"):
        allreduce(2**20, MAIA200, 6)
    from sim.perf.tiling import Tiling
    with pytest.raises(ValueError, match="tile_sram_bytes"):
        gemm(4096, 4096, 4096, MAIA200, tiling=Tiling((2, 2), (2, 5), (1024, 1024, 1024), (1, 1), "-"))
    with pytest.raises(ValueError, match="hbm_capacity_bytes"):
        tokens_per_second(LLM_70B, MAIA200, batch=4096, context=32768, n_chips=1)


def test_sweep_writes_table_and_png(tmp_path):
    from sim.perf.__main__ import main
    out = tmp_path / "hbm"
    assert main(["sweep", "hbm", "3.5", "7", "14", "--gemm", "1024x1024x1024", "--out", str(out)]) == 0
    md, png = out / "sweep_hbm.md", out / "sweep_hbm.png"
    rows = [l for l in md.read_text().splitlines() if l.startswith("| ") and l[2].isdigit()]
    assert len(rows) == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_one_line_nonzero(capsys):
    from sim.perf.__main__ import main
    for argv, name in ((["sweep", "ttu_m", "32"], "ttu_m"),
                       (["sweep", "tile_sram", "1k"], "tile_sram_bytes"),
                       (["sweep", "hbm", "0"], "hbm_bytes_per_s")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and name in err and "Traceback" not in err, err
