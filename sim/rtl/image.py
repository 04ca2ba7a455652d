"""A compiled tile program image on the RTL: the HBM model and the loader.

``TileProgram.image()`` (``sim.compiler``) gives ``{"hbm", "queues", "sram"}``;
:func:`load_image` puts the HBM bytes into a cocotbext-axi ``AxiRam`` (the
tile's HBM, :func:`make_ram`) and the queues and SRAM words into the tile
through its host ports (:class:`sim.rtl.tile_host.TileHost`).
"""
from cocotbext.axi import AxiBus, AxiRam


def make_ram(dut, cfg, prefix="m_axi"):
    """An ``AxiRam`` of ``cfg.hbm_size`` bytes on the AXI master ports ``prefix__*``."""
    return AxiRam(AxiBus.from_prefix(dut, prefix, bus_separator="__"), dut.clk, dut.rst,
                  size=cfg.hbm_size)


async def load_image(host, ram, image):
    """HBM bytes into ``ram``, then queues and SRAM words through ``host``."""
    for a, b in image["hbm"].items():
        ram.write(a, b)
    await host.load_queues(image["queues"])
    await host.write_sram(image["sram"])
