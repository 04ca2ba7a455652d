"""Memory system: multi-banked SRAM shared by the TTU feed and the DMA engines."""
from .sram import BankedSRAM, SRAMPortSignature, sram_request_layout

__all__ = ["BankedSRAM", "SRAMPortSignature", "sram_request_layout"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`): a tile SRAM slice and a
#: cluster SRAM slice at FPGA-friendly sizes.
TOPS = {
    "mem_tile_sram": lambda: BankedSRAM(size=16 * 1024, banks=4, width=64, ports=2),
    "mem_cluster_sram": lambda: BankedSRAM(size=64 * 1024, banks=8, width=128, ports=3),
}
