"""DMA: descriptor-based N-D DMA engine with an AXI4 master, SRAM ports and a NoC port."""
from .axi import AXI4Signature, Resp
from .descriptor import Err, Kind, descriptor_layout, completion_layout
from .engine import DMAEngine
from .decode import DescriptorDecoder
from .read import ReadIssuer
from .realign import Realigner
from .write import WriteIssuer, WriteRouter
from .completion import CompletionTracker
from .qos import QoSArbiter
from .remote import RemoteSink, RemoteWriter, remote_beat_layout

__all__ = ["AXI4Signature", "Resp", "Kind", "Err", "DMAEngine", "DescriptorDecoder", "ReadIssuer",
           "Realigner", "WriteIssuer", "WriteRouter", "CompletionTracker", "QoSArbiter",
           "RemoteSink", "RemoteWriter", "descriptor_layout", "completion_layout",
           "remote_beat_layout"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "dma_engine": lambda: DMAEngine(),
    "dma_qos_arbiter": lambda: QoSArbiter(payload_shape=32, n=2, starve_limit=4),
    # 64 KiB tile SRAMs on a 4x4 mesh: a beat is 64 data + 8 strobe + 13 address bits.
    "dma_remote_writer": lambda: RemoteWriter(kx=4, ky=4, noc_data_width=85),
    "dma_remote_sink": lambda: RemoteSink(kx=4, ky=4, noc_data_width=85),
}
