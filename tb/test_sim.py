"""``make sim`` (sim/run.py): options, bad input, the JSON report, the fast path.

Testplan (docs/sim.md): every bad option ends with exit status 2 and one line
naming the option and its limit, no traceback (fast, in the default regression);
``--list`` names every workload; the event-log decoder rebuilds the busy
intervals the per-cycle monitor measured; the fast path (HBM model in the top,
optimised Verilator) runs a GEMM and a transformer block bit-exact with the
``--json`` keys as numbers, and its cycle counts equal those of the
cocotbext-axi ``AxiRam`` path (slow: they build the optimised model).
"""
import json

import pytest

from sim import run


def _main(argv, capsys):
    try:
        status = run.main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("argv, names", [
    (["--seq", "0"], ["--seq", "positive"]),
    (["--d-model", "-32"], ["--d-model", "positive"]),
    (["--heads", "3"], ["--heads", "--d-model"]),
    (["--d-model", "48", "--heads", "2"], ["--d-model", "32"]),
    (["--seq", "64"], ["--seq", "32", "max_n_tiles"]),
    (["--d-ff", "128"], ["--d-ff", "64", "max_k_beats"]),
    (["--workload", "gemm", "--k", "512"], ["--k", "64", "max_k_beats"]),
    (["--workload", "gemm", "--m", "6"], ["--m", "multiple of 4"]),
    (["--workload", "gemm", "--m", "256", "--n", "256"], ["SRAM", "65536"]),
    (["--workload", "gemm", "--n", "x"], ["--n", "positive"]),
    (["--workload", "nosuch"], ["--workload", "nosuch", "transformer"]),
    (["--no-such-option"], ["--no-such-option"]),
    (["--buffers", "3"], ["--buffers"]),
    (["allreduce", "--chips", "3"], ["--chips", "3", "2, 4"]),
    (["gemm", "--chips", "4"], ["--chips", "allreduce", "gemm"]),
    (["gemm", "--workload", "allreduce"], ["--workload", "gemm", "allreduce"]),
])
def test_bad_input_one_line(argv, names, capsys):
    status, out, err = _main([*argv, "--no-record"], capsys)
    assert status not in (0, None), (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and out == ""
    for name in names:
        assert name in lines[0], (name, lines[0])


def test_list_names_every_workload(capsys):
    status, out, _ = _main(["--list"], capsys)
    assert status == 0
    listed = {line.split()[0] for line in out.splitlines()}
    assert {"transformer", "gemm", "gemm-layer", "allreduce", "stream"} <= listed
    assert listed == {k for k in run.WORKLOADS if not k.startswith("__")}


def test_event_log_decodes_to_busy_intervals():
    # Entries are the state after cycle c; an interval opens at the first cycle seen
    # busy, closes at the first cycle seen idle or at the end of the run.
    from sim.rtl.sim_job import decode_log
    st = lambda *pcs: sum(pc << (q * 15 + 6) for q, pc in enumerate(pcs))
    entries = [(0, 0b000, st(0, 0, 0), 0), (3, 0b001, st(1, 0, 0), 0),
               (7, 0b011, st(1, 1, 0), 0x1), (9, 0b010, st(2, 1, 0), 0x1),
               (12, 0b110, st(2, 1, 1), 0x0)]
    tl, pcs, sems = decode_log(entries, n_engines=3, st_bits=15, pc_bits=9, sems_bits=128,
                               cycles=20)
    assert tl == {"dma": [[3, 9]], "ttu": [[7, 20]], "tvp": [[12, 20]]}
    assert pcs == [[3, 0, 1], [7, 1, 1], [9, 0, 2], [12, 2, 1]]
    assert sems == [[7, "0x1"], [12, "0x0"]]


NUMBER_KEYS = ("cycles", "ttu_utilisation", "ttu_busy", "tvp_busy", "dma_busy",
               "sim_cycles_per_second", "max_abs_err_vs_float64")


def _json_run(tmp_path, argv):
    out = tmp_path / "rep.json"
    status = run.main([*argv, "--no-record", "--json", str(out)])
    rep = json.loads(out.read_text())
    return status, rep


@pytest.mark.slow
@pytest.mark.parametrize("fp4", [False, True])
def test_gemm_fast_path_json(tmp_path, fp4):
    status, rep = _json_run(tmp_path, ["--workload", "gemm", "--m", "32", "--n", "32",
                                       "--k", "64"] + (["--fp4"] if fp4 else []))
    assert status == 0 and rep["bit_exact"] is True
    for k in NUMBER_KEYS:
        assert isinstance(rep[k], (int, float)) and not isinstance(rep[k], bool), k
    assert 0 < rep["ttu_utilisation"] <= 1 and 0 < rep["ttu_busy"] <= 1
    assert rep["tvp_busy"] == 0        # a plain GEMM has no vector work
    # MX quantization of both operands: FP4 (E2M1) errs about four times more than FP8.
    assert 0 < rep["max_abs_err_vs_float64"] < (1.0 if fp4 else 0.3)


@pytest.mark.slow
def test_fast_path_cycles_equal_axiram_path(tmp_path):
    # The HBM model in the top and cocotbext-axi's AxiRam give the DMA the same
    # bandwidth, so the program takes (nearly) the same cycles on both paths.
    argv = ["--workload", "gemm-layer"]
    s1, fast = _json_run(tmp_path, argv)
    s2, slow = _json_run(tmp_path, [*argv, "--hbm", "axiram"])
    assert s1 == s2 == 0 and fast["bit_exact"] and slow["bit_exact"]
    assert abs(fast["cycles"] - slow["cycles"]) <= 0.05 * slow["cycles"], (fast["cycles"],
                                                                           slow["cycles"])
    assert fast["sim_cycles_per_second"] > 5 * slow["sim_cycles_per_second"]
