"""Run one block on the RTL: elaborate it with its regression parameters and call the runner.

Shared by the tests (``tb/<block>/test_*.py``) and the benchmarks
(``scripts/bench_<block>.py``), so that both use the same parameters and
hence the same cached Verilator build. The caller names the cocotb module
to run (``test_module="tb.ttu.test_ttu"``, ``testcase=...``): the coroutines
stay with the tests, and nothing here imports them.
"""
from hw.noc import Mesh
from hw.ttu import TTU
from hw.tvp import TVP

from . import runner
from .dma_top import DMATestTop

#: :class:`sim.rtl.dma_top.DMATestTop` parameters of the DMA regression and benchmark.
DMA_PARAMS = dict(addr_width=32, data_width=64, dims=3, n_local=2, sram_size=8192,
                  hbm_size=1 << 17, max_burst=16, read_buffer=64, starve_limit=3)


def run_dma(*, test_module, testcase=None, extra_env=None):
    """A :class:`sim.rtl.dma_top.DMATestTop` with :data:`DMA_PARAMS` (block ``dma``)."""
    dut = DMATestTop(**DMA_PARAMS)
    params = {**DMA_PARAMS, "sram_aw": dut.dma.sram_aw}
    return runner.run(dut, block="dma", test_module=test_module, params=params,
                      testcase=testcase, extra_env=extra_env)


#: :class:`hw.noc.Mesh` parameters of the mesh regression (the benchmark varies some).
MESH = dict(vcs=2, data_width=32, vc_depth=8, max_packet_flits=4, qos_burst=4, bulk_vcs=1)


def run_mesh(k, *, vcs=MESH["vcs"], bulk_vcs=MESH["bulk_vcs"], vc_depth=MESH["vc_depth"], **kw):
    """A ``k`` x ``k`` :class:`hw.noc.Mesh` (block ``noc_mesh``); ``kw`` go to :func:`runner.run`."""
    mesh = dict(MESH, vcs=vcs, bulk_vcs=bulk_vcs, vc_depth=vc_depth)
    params = dict(mesh, kx=k, ky=k)
    return runner.run(Mesh(kx=k, ky=k, **mesh), block="noc_mesh", params=params, **kw)


def ttu_params(rows, cols, block):
    """cocotb parameters of a ``rows`` x ``cols`` TTU run."""
    # The 8x8 build also serves the benchmark (64^3 GEMM: 8 column tiles).
    return {"rows": rows, "cols": cols, "block": block, "max_k_beats": 3 * 32,
            "max_n_tiles": 8 if rows == 8 else 2}


def run_ttu(rows, cols, block, *, test_module, testcase=None, extra_env=None):
    """A :class:`hw.ttu.TTU` with :func:`ttu_params` (block ``ttu``)."""
    p = ttu_params(rows, cols, block)
    dut = TTU(rows=rows, cols=cols, block=block, max_k_beats=p["max_k_beats"],
              max_n_tiles=p["max_n_tiles"])
    return runner.run(dut, block="ttu", test_module=test_module, params=p, testcase=testcase,
                      extra_env=extra_env)


def tvp_params(lanes, **extra):
    """cocotb parameters of a ``TVP(lanes=lanes)`` run (timing figures for ``throughput``)."""
    _, gap, latency = TVP.timing()
    act_latency = TVP.act_timing()[2]
    return {"lanes": lanes, "gap": gap, "latency": latency, "act_latency": act_latency, **extra}


def run_tvp(lanes, *, test_module, testcase=None, sim=None, extra_env=None, **extra):
    """A ``TVP(lanes=lanes)`` (block ``tvp``); ``extra`` are further cocotb parameters."""
    return runner.run(TVP(lanes=lanes), block="tvp", test_module=test_module,
                      params=tvp_params(lanes, **extra), testcase=testcase, sim=sim,
                      extra_env=extra_env)
