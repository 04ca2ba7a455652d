"""TVP: the tile vector processor (SIMD FP32/BF16 lanes for the non-matmul work).

See ``docs/tvp.md``; the golden model is :mod:`sim.tvp`.
"""
from .tvp import TVP, in_layout, out_layout

__all__ = ["TVP", "in_layout", "out_layout"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    # One lane (2 FP32 slots): the 16-lane default (32 slots) does not fit an ECP5-85;
    # Fmax does not depend on the lane count.
    "tvp": lambda: TVP(lanes=1),
}
