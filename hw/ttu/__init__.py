"""TTU: the MX tensor unit (output-stationary systolic array, see ``docs/ttu.md``)."""
from .fp32 import FP32Add, IntToFP32
from .pe import PE
from .array import SystolicArray
from .controller import TTU

__all__ = ["FP32Add", "IntToFP32", "PE", "SystolicArray", "TTU"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "ttu_pe": lambda: PE(),
    "ttu_8x8": lambda: TTU(rows=8, cols=8),
}
