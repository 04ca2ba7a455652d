"""Running the hardware under a simulator: the one machinery of tests, ``make sim`` and ``make bench``.

* :mod:`sim.rtl.runner`: Amaranth -> Verilog -> Verilator/Icarus -> cocotb
  (``run``, ``params``, ``simulators``; builds under ``build/tb/<block>/``);
* :mod:`sim.rtl.stream`: cocotb BFMs of ``lib.stream`` ports (``StreamSource``,
  ``StreamSink``, ``reset``).
"""
