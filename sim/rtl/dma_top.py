"""Test top: a DMA engine with its local SRAMs and a testbench back-door port per SRAM.

Local SRAM ``i`` has ports ``[dma write i, testbench]`` and SRAM 0 also the DMA
read port. The AXI master, descriptor queues, completions and NoC port are
brought out unchanged (``m_axi__*`` names, see ``hw/dma/axi.py``).
"""
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma import DMAEngine
from hw.mem import BankedSRAM, SRAMPortSignature


class DMATestTop(wiring.Component):
    """A :class:`hw.dma.DMAEngine` with its local SRAMs (see the module docstring).

    Parameters
    ----------
    banks : int
        Banks of each local :class:`hw.mem.BankedSRAM`.
    **dma_params
        :class:`hw.dma.DMAEngine` parameters.

    Attributes
    ----------
    tb : array of SRAM ports
        The testbench's back door into each local SRAM.
    conflicts : Signal(32)
        Bank conflicts of SRAM 0.
    """

    def __init__(self, *, banks=4, **dma_params):
        self.dma = DMAEngine(**dma_params)
        d = self.dma
        sig = d.signature.members
        self.srams = [BankedSRAM(size=d.sram_size, banks=banks, width=d.dw, ports=3 if i == 0 else 2)
                      for i in range(d.n_local)]
        super().__init__({
            "i_desc": sig["i_desc"],
            "o_done": sig["o_done"],
            "m_axi": sig["m_axi"],
            "noc": sig["noc"],
            "errors": sig["errors"],
            "busy": sig["busy"],
            "tb": In(SRAMPortSignature(addr_width=d.sram_aw, data_width=d.dw)).array(d.n_local),
            "conflicts": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.dma
        m.submodules.dma = d
        for q in range(d.queues):
            wiring.connect(m, wiring.flipped(self.i_desc[q]), d.i_desc[q])
        wiring.connect(m, d.o_done, wiring.flipped(self.o_done))
        wiring.connect(m, d.m_axi, wiring.flipped(self.m_axi))
        wiring.connect(m, d.noc, wiring.flipped(self.noc))
        m.d.comb += [self.errors.eq(d.errors), self.busy.eq(d.busy)]
        for i, s in enumerate(self.srams):
            m.submodules[f"sram{i}"] = s
            wiring.connect(m, d.sram_wr[i], s.ports[0])
            wiring.connect(m, wiring.flipped(self.tb[i]), s.ports[1])
            if i == 0:
                wiring.connect(m, d.sram_rd, s.ports[2])
        m.d.comb += self.conflicts.eq(self.srams[0].conflicts)
        return m
