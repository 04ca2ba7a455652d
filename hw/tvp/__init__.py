"""TVP: the tile vector processor (SIMD FP32/BF16 lanes for the non-matmul work).

See ``docs/tvp.md``; the golden model is :mod:`sim.tvp`.
"""
from .tvp import TVP, in_layout, out_layout

__all__ = ["TVP", "in_layout", "out_layout"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "tvp": lambda: TVP(lanes=16),
}
