"""TVP: the tile vector processor (SIMD FP32/BF16 lanes for the non-matmul work).

See ``docs/tvp.md``. The specification lives here: the ISA in :mod:`hw.tvp.isa`,
the micro-programs and SFU tables in :mod:`hw.tvp.microcode`; the golden model
:mod:`sim.tvp` imports them.
"""
from . import isa, microcode
from .isa import Op, in_layout, out_layout
from .output import TVPOutput
from .sequencer import TVPSequencer, uop_layout
from .slots import TVPSlots, result_layout
from .tvp import TVP

__all__ = ["TVP", "TVPSequencer", "TVPSlots", "TVPOutput", "Op", "in_layout", "out_layout",
           "uop_layout", "result_layout", "isa", "microcode"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    # One lane (2 FP32 slots): the 16-lane default (32 slots) does not fit an ECP5-85;
    # Fmax does not depend on the lane count.
    "tvp": lambda: TVP(lanes=1),
}
