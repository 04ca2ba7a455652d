"""Analytical + event-level performance model of the chip.

:mod:`sim.perf.config` holds the chip parameters with two presets
(``PROTOTYPE``: the RTL's parameters; ``MAIA200``: the published figures);
:mod:`sim.perf.tiling` cuts a GEMM over the tiles by searching the tilings the
SRAMs hold; :mod:`sim.perf.model` predicts attention, a decoder layer and
tokens/s; :mod:`sim.perf.collective` all-reduce and all-to-all over the FCQ and
the two-tier network; :mod:`sim.perf.compare` sets the Maia 200 predictions
beside the published figures; :mod:`sim.perf.sweep` explores one parameter.
``python -m sim.perf`` prints a report, the comparison or a sweep.
"""
from .collective import allreduce, alltoall
from .config import MAIA200, PROTOTYPE, ChipConfig, presets
from .model import (attention, batched_gemm, decoder_layer, dma_copy_cycles, gemm, pipeline_cycles,
                    roofline_points, tokens_per_second, ttu_gemm_cycles)

__all__ = ["ChipConfig", "PROTOTYPE", "MAIA200", "presets", "gemm", "batched_gemm", "attention",
           "decoder_layer", "pipeline_cycles", "ttu_gemm_cycles", "dma_copy_cycles",
           "tokens_per_second", "roofline_points", "allreduce", "alltoall"]
