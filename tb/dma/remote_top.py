"""Test top: a DMA engine writing another tile's SRAM through a 2x1 NoC mesh.

Node 0 holds the DMA engine, its SRAM (ports: DMA write, testbench, DMA read)
and a :class:`~hw.dma.remote.RemoteWriter` on its bulk injection class; node 1
holds a :class:`~hw.dma.remote.RemoteSink` on its bulk ejection class and an
SRAM (ports: sink, testbench). Testbench back-door ports: ``tb[0]`` node 0,
``tb[1]`` node 1. The remote side of node 0 and the writer side of node 1 are
idle, so the loop is DMA -> NoC -> SRAM of the other tile.
"""
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma import DMAEngine
from hw.dma.remote import RemoteSink, RemoteWriter, remote_beat_layout
from hw.mem import BankedSRAM, SRAMPortSignature
from hw.noc import Mesh

BULK = 1  # NoC class for DMA traffic (class 0 is the control/latency class)


class RemoteTestTop(wiring.Component):
    def __init__(self, *, banks=4, max_packet_flits=4, vc_depth=8, **dma_params):
        self.dma = d = DMAEngine(**dma_params)
        kx, ky = 2, 1
        beat = remote_beat_layout(d.sram_aw, d.dw).size  # NoC flits carry one write beat
        common = dict(data_width=d.dw, sram_size=d.sram_size, kx=kx, ky=ky, noc_data_width=beat)
        self.writer = RemoteWriter(addr_width=d.aw, max_beats=max_packet_flits - 1, **common)
        self.sink = RemoteSink(**common)
        self.mesh = Mesh(kx=kx, ky=ky, data_width=beat, vc_depth=vc_depth,
                         max_packet_flits=max_packet_flits)
        self.srams = [BankedSRAM(size=d.sram_size, banks=banks, width=d.dw, ports=3),
                      BankedSRAM(size=d.sram_size, banks=banks, width=d.dw, ports=2)]
        sig = d.signature.members
        super().__init__({
            "i_desc": sig["i_desc"],
            "o_done": sig["o_done"],
            "m_axi": sig["m_axi"],
            "errors": sig["errors"],
            "busy": sig["busy"],
            "tb": In(SRAMPortSignature(addr_width=d.sram_aw, data_width=d.dw)).array(2),
            "remote_errors": Out(16),
            "remote_writes": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        d, w, s, mesh = self.dma, self.writer, self.sink, self.mesh
        m.submodules.dma, m.submodules.writer, m.submodules.sink = d, w, s
        m.submodules.mesh = mesh
        for q in range(d.queues):
            wiring.connect(m, wiring.flipped(self.i_desc[q]), d.i_desc[q])
        wiring.connect(m, d.o_done, wiring.flipped(self.o_done))
        wiring.connect(m, d.m_axi, wiring.flipped(self.m_axi))
        m.d.comb += [self.errors.eq(d.errors), self.busy.eq(d.busy),
                     self.remote_errors.eq(w.errors), self.remote_writes.eq(s.writes)]
        wiring.connect(m, d.noc, w.i_stream)
        wiring.connect(m, w.o_stream, mesh.i_streams[0][BULK])
        wiring.connect(m, mesh.o_streams[1][BULK], s.i_stream)
        # Idle streams: nothing injected at node 1, everything ejected at node 0 accepted.
        m.d.comb += [mesh.o_streams[n][c].ready.eq(1) for n in range(2) for c in range(2)
                     if (n, c) != (1, BULK)]
        for n, sram in enumerate(self.srams):
            m.submodules[f"sram{n}"] = sram
        wiring.connect(m, d.sram_wr[0], self.srams[0].ports[0])
        wiring.connect(m, wiring.flipped(self.tb[0]), self.srams[0].ports[1])
        wiring.connect(m, d.sram_rd, self.srams[0].ports[2])
        wiring.connect(m, s.sram, self.srams[1].ports[0])
        wiring.connect(m, wiring.flipped(self.tb[1]), self.srams[1].ports[1])
        return m
