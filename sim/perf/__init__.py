"""Analytical + event-level performance model of the chip.

:mod:`sim.perf.config` holds the chip parameters with two presets
(``PROTOTYPE``: the RTL's parameters; ``MAIA200``: the published figures);
:mod:`sim.perf.model` predicts cycles for GEMM, attention, a decoder layer
and tokens/s for an LLM; ``python -m sim.perf`` prints a report and draws the
roofline.
"""
from .config import MAIA200, PROTOTYPE, ChipConfig, presets
from .model import (attention, decoder_layer, dma_copy_cycles, gemm, pipeline_cycles,
                    roofline_points, tokens_per_second, ttu_gemm_cycles)

__all__ = ["ChipConfig", "PROTOTYPE", "MAIA200", "presets", "gemm", "attention",
           "decoder_layer", "pipeline_cycles", "ttu_gemm_cycles", "dma_copy_cycles", "tokens_per_second", "roofline_points"]
