"""Running the hardware under a simulator: the one machinery of tests, ``make sim`` and ``make bench``.

* :mod:`sim.rtl.runner`: Amaranth -> Verilog -> Verilator/Icarus -> cocotb
  (``run``, ``params``, ``simulators``; builds under ``build/tb/<block>/``);
* :mod:`sim.rtl.stream`: cocotb BFMs of ``lib.stream`` ports (``StreamSource``,
  ``StreamSink``, ``reset``);
* :mod:`sim.rtl.blocks`: run one block with its regression parameters
  (``run_dma``, ``run_mesh``, ``run_ttu``, ``run_tvp``);
* test tops: :mod:`sim.rtl.dma_top` (``DMATestTop``), :mod:`sim.rtl.nic_group`
  (``NicGroup``, with ``spray=True`` a ``Sprayer`` per NIC), :mod:`sim.rtl.chip_pair`
  (``ChipPair``, ``CHIP``), :mod:`sim.rtl.chip_quad` (``ChipQuad``, ``CHIP4``: the FCQ);
* the tile from cocotb: :mod:`sim.rtl.tile_host` (``TileHost``, ``run_tiles``),
  :mod:`sim.rtl.image` (HBM ``AxiRam``, image loader), :mod:`sim.rtl.cable`
  (lossy cables between chips' NIC ports);
* the ``make sim`` fast path: :mod:`sim.rtl.sim_top` (``SimTile``: the tile, its HBM
  model :mod:`sim.rtl.hbm` over ``verilog/sim_hbm_storage.v``, run counters and an
  event log) and its cocotb job :mod:`sim.rtl.sim_job` (no Python per cycle);
* the other ``make sim`` cocotb jobs: :mod:`sim.rtl.tile_job` (``--hbm axiram``),
  :mod:`sim.rtl.allreduce_job`; :mod:`sim.rtl.fcq` (``run_allreduce(chips=4)``: the
  quad all-reduce, a report dict).

The rule: ``sim/`` and ``scripts/`` import nothing from ``tb/``. A benchmark or
``make sim`` that runs cocotb coroutines of the tests names them by module
string (``runner.run(..., test_module="tb.tvp.test_tvp", testcase="throughput")``);
the simulator imports them, Python code here never does. The modules that
import cocotb are imported only inside the simulator or by the tests: importing
this package imports none of them.
"""
