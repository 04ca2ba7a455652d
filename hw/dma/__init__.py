"""DMA: descriptor-based N-D DMA engine with an AXI4 master, SRAM ports and a NoC port."""
from .axi import AXI4Signature
from .descriptor import descriptor_layout, completion_layout
from .engine import DMAEngine
from .qos import QoSArbiter

__all__ = ["AXI4Signature", "DMAEngine", "QoSArbiter", "descriptor_layout", "completion_layout"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "dma_engine": lambda: DMAEngine(),
    "dma_qos_arbiter": lambda: QoSArbiter(payload_shape=32, n=2, starve_limit=4),
}
