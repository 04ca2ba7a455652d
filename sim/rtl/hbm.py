"""An AXI4 slave memory inside the simulated top: the tile's HBM for ``make sim``.

The AXI protocol is Amaranth; the storage is the Verilog array
``sim/rtl/verilog/sim_hbm_storage.v`` (an :class:`~amaranth.hdl.Instance`), which
loads the image at time 0 and dumps a range on request, so neither loading, the
run nor the read-back calls Python per word or per cycle. The tests that inject
back-pressure keep the cocotbext-axi ``AxiRam`` (:mod:`sim.rtl.image`).

Timing: one R beat per cycle (first beat two cycles after the AR handshake,
bursts back to back through a two-entry AR queue) and one W beat per cycle; the B
response follows the last W beat. INCR bursts of full-width beats (what the DMA
issues); addresses wrap modulo the memory size (the DMA range-checks them against
``hbm_size`` first).
"""
from pathlib import Path

from amaranth.hdl import ClockSignal, Instance
from amaranth.lib.wiring import In

from hw.mem.axi_ram import AXIRam

__all__ = ["HBMModel", "STORAGE_V"]

#: The Verilog storage module instantiated by :class:`HBMModel` (an extra source of the build).
STORAGE_V = Path(__file__).resolve().parent / "verilog" / "sim_hbm_storage.v"


class HBMModel(AXIRam):
    """AXI4 slave memory of ``size`` bytes (simulation only).

    :class:`hw.mem.axi_ram.AXIRam`'s AXI engine (the FPGA tile's block-RAM HBM)
    over the Verilog storage that loads ``+HBM_INIT`` at time 0 and dumps a range.

    Parameters
    ----------
    addr_width, data_width : int
        AXI address and data widths (the tile's ``m_axi``).
    size : int
        Bytes (a power of two, at least one beat).

    Attributes
    ----------
    axi : In(AXI4Signature)
        The slave side of the master's ``m_axi``.
    dump : In(1)
        High at a clock edge: write the dump range to the ``+HBM_DUMP`` file.
    """

    def __init__(self, *, addr_width, data_width, size):
        super().__init__(addr_width=addr_width, data_width=data_width, size=size)

    def members(self):
        return {**super().members(), "dump": In(1)}

    def storage(self, m, *, ren, raddr, rdata, wen, waddr, wdata):
        m.submodules.storage = Instance(
            "sim_hbm_storage", p_WIDTH=self.data_width, p_DEPTH=self.depth,
            p_AW=self.word_addr_width, i_clk=ClockSignal(), i_ren=ren, i_raddr=raddr,
            o_rdata=rdata, i_wen=wen, i_waddr=waddr, i_wdata=wdata, i_dump=self.dump)
