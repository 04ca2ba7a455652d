"""TTU: the MX tensor unit (output-stationary systolic array, see ``docs/ttu.md``)."""
from .fp32 import FP32Add, IntToFP32
from .pe import PE
from .array import SystolicArray
from .controller import TTU
from .pins import PinWrapper
from .kpe import KPE
from .kttu import KTTU

__all__ = ["FP32Add", "IntToFP32", "KPE", "KTTU", "PE", "PinWrapper", "SystolicArray", "TTU"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`). All have more port bits
#: than an ECP5 package has pins, so ``make fpga`` sees them behind a
#: :class:`~hw.ttu.pins.PinWrapper` (every port registered, serial pins).
TOPS = {
    "ttu_pe": lambda: PinWrapper(PE()),
    "ttu_8x8": lambda: PinWrapper(TTU(rows=8, cols=8)),
    # Routes in minutes: shows the unit's critical path while the 8x8 takes an hour.
    "ttu_2x2": lambda: PinWrapper(TTU(rows=2, cols=2)),
    # K-wide unit (issue 18), FPGA shape 4 x 8 x 4, all MX formats; no BF16 path (its
    # exact 526-bit group sum costs ~5x the LUTs of the MX PE, docs/ttu.md).
    "ttu_4x4x8": lambda: PinWrapper(KTTU(rows=4, cols=4, k=8, bf16=False)),
}


def maia_shape(*, bf16=True):
    """The Maia tile shape ``KTTU(rows=32, cols=32, k=32)``. Not in :data:`TOPS`: Amaranth's
    netlist builder runs out of memory on it here (> 9 GB, > 11 min, also without BF16),
    and ``make verilog`` exports every top (docs/ttu.md)."""
    return KTTU(rows=32, cols=32, k=32, bf16=bf16)

#: Replicated units of a top, for the per-unit cost of ``make fpga`` (see :func:`hw.tops.all_units`).
UNITS = {"ttu_8x8": ("PE (with its share of tails, edge decode, controller)", 64),
         "ttu_2x2": ("PE (with its share of tails, edge decode, controller)", 4),
         "ttu_4x4x8": ("8 FP8 MAC/cycle (a K=8 PE with its share of edge decode, FIFO)", 128)}
