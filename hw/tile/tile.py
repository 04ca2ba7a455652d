"""Tile: command processor + DMA + TTU + TVP around one banked tile SRAM.

The command processor (``hw.cp``) has one queue per engine: 0 DMA, 1 TTU,
2 TVP. An ``EXEC`` argument is the **SRAM word address of an operation
record** (the compiler places the records in the tile SRAM next to the data,
see ``docs/tile.md``). Each engine has a small *feeder* that fetches its
record through its own SRAM port, runs the engine and reports completion
(``done`` payload 1 = failed) back to the command processor:

* :class:`DMAFeeder` reads a DMA descriptor (``hw.dma.descriptor``) and
  hands it to the :class:`~hw.dma.DMAEngine`; completions pass through in
  order, so several descriptors can be in flight.
* :class:`TTUFeeder` reads a GEMM record, sends the TTU command, streams the
  weight then activation beats from SRAM (one word per beat) and writes the
  FP32 result rows back row-major.
* :class:`TVPFeeder` reads a vector record (opcode, operand/result address
  generators), gathers the operands of every beat, runs the TVP and writes the
  result beats.

Every SRAM address a feeder generates is range checked: an access out of the
SRAM, an unknown TVP opcode or a TTU command the TTU rejects completes the
command with an error, which stops that queue with ``ENGINE_ERROR``.
"""
from amaranth.hdl import Cat, Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.cp import CommandProcessor
from hw.dma import DMAEngine
from hw.dma.axi import AXI4Signature
from hw.dma.descriptor import noc_layout
from hw.mem.sram import BankedSRAM, SRAMPortSignature
from hw.ttu import TTU
from hw.tvp import TVP

from .dma_feeder import DMAFeeder
from .params import TileParams
from .ttu_feeder import TTUFeeder
from .tvp_feeder import TVPFeeder

__all__ = ["Tile", "ENGINES", "SRAM_PORTS"]

#: Engine (queue) numbers of a tile: command-processor queue ``i`` feeds engine ``i``.
ENGINES = {"dma": 0, "ttu": 1, "tvp": 2}

#: The tile SRAM's ports by name; the number is the port's index, which is
#: also its priority in a bank conflict (lower wins, ``hw.mem.sram``).
SRAM_PORTS = {"host": 0, "dma_rd": 1, "dma_wr": 2, "dma_desc": 3, "ttu_rd": 4, "ttu_wr": 5,
              "tvp_rd": 6, "tvp_wr": 7, "noc_in": 8, "tvp_rd_b": 9, "tvp_rd_c": 10}


class Tile(wiring.Component):
    """One tile: command processor, DMA, TTU, TVP and the tile SRAM.

    Parameters
    ----------
    params : TileParams
        Sizes of the tile's engines and memories (:class:`~hw.tile.params.TileParams`).

    Attributes
    ----------
    load : In(stream)
        Program load into the command processor (``{queue, addr, data}``).
    start : In(3)
        Start queues (bit 0 DMA, 1 TTU, 2 TVP).
    status : Out
        Per-queue ``{state, error, pc}``.
    sems : Out
        Semaphore values.
    sem_inc : In(stream)
        External semaphore increments.
    host : In(SRAMPortSignature)
        Host access to the tile SRAM (operation records, test read-back).
    m_axi : Out(AXI4Signature)
        HBM port of the DMA (``m_axi__*`` ports).
    noc : Out(stream)
        Remote writes of the DMA (``dst_kind`` 2).
    noc_in : In(SRAMPortSignature)
        Writes into this tile's SRAM from the network.
    active : Out(3)
        Per-engine activity (DMA busy, TTU feeder busy, TVP feeder busy).
    macs : Out(32)
        TTU array beats issued (each is ``n * n`` MACs).
    errors : Out(StructLayout)
        ``dma`` (count), ``ttu`` (rejected commands), ``tvp`` (sticky invalid op).
    """

    def __init__(self, *, params=TileParams()):
        if not isinstance(params, TileParams):
            raise TypeError(f"params must be a TileParams, not {params!r}")
        self.params = p = params
        self.n = p.n
        self.word_bits = p.word_bits
        self.words = p.words
        self.sram = BankedSRAM(size=p.sram_size, banks=p.banks, width=self.word_bits,
                               ports=len(SRAM_PORTS))
        self.cp = CommandProcessor(n_engines=len(ENGINES), n_sems=p.n_sems, depth=p.depth,
                                   deadlock_cycles=p.deadlock_cycles)
        self.dma = DMAEngine(addr_width=p.addr_width, data_width=self.word_bits, dims=p.dims,
                             n_local=1, sram_size=p.sram_size, hbm_size=p.hbm_size, queues=2)
        self.ttu = TTU(rows=p.n, cols=p.n, formats=p.formats, block=32, packed=False,
                       max_k_beats=p.max_k_beats, max_n_tiles=p.max_n_tiles)
        self.tvp = TVP(lanes=p.n)
        aw = self.sram.addr_width
        port = SRAMPortSignature(addr_width=aw, data_width=self.word_bits)
        super().__init__({
            "load": In(stream.Signature(self.cp.load.payload.shape())),
            "start": In(len(ENGINES)),
            "status": Out(self.cp.signature.members["status"].shape),
            "sems": Out(self.cp.signature.members["sems"].shape),
            "sem_inc": In(stream.Signature(self.cp.sem_inc.payload.shape())),
            "host": In(port),
            "m_axi": Out(AXI4Signature(addr_width=p.addr_width, data_width=self.word_bits)),
            "noc": Out(stream.Signature(noc_layout(p.addr_width, self.word_bits))),
            "noc_in": In(port),
            "active": Out(len(ENGINES)),
            "macs": Out(32),
            "errors": Out(data.StructLayout({"dma": 16, "ttu": 8, "tvp": 1})),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sram = sram = self.sram
        m.submodules.cp = cp = self.cp
        m.submodules.dma = dma = self.dma
        m.submodules.ttu = ttu = self.ttu
        m.submodules.tvp = tvp = self.tvp
        aw, wb, words = sram.addr_width, self.word_bits, self.words
        m.submodules.dma_feed = dfe = DMAFeeder(desc_layout=dma.desc_layout, word_bits=wb,
                                                addr_width=aw, words=words)
        m.submodules.ttu_feed = tfe = TTUFeeder(ttu_signature=ttu.signature, rows=self.n,
                                                word_bits=wb, addr_width=aw, words=words)
        m.submodules.tvp_feed = vfe = TVPFeeder(tvp_signature=tvp.signature, word_bits=wb,
                                                addr_width=aw, words=words)
        wiring.connect(m, tfe.ttu, ttu)
        wiring.connect(m, vfe.tvp, tvp)

        wiring.connect(m, wiring.flipped(self.load), cp.load)
        wiring.connect(m, wiring.flipped(self.sem_inc), cp.sem_inc)
        m.d.comb += [cp.start.eq(self.start), self.status.eq(cp.status), self.sems.eq(cp.sems)]
        for i, fe in enumerate((dfe, tfe, vfe)):
            wiring.connect(m, cp.cmd[i], fe.cmd)
            wiring.connect(m, fe.done, cp.done[i])
        wiring.connect(m, dfe.desc, dma.i_desc[0])
        m.d.comb += dma.i_desc[1].valid.eq(0)   # the second priority class is unused
        wiring.connect(m, dma.o_done, dfe.dma_done)
        wiring.connect(m, wiring.flipped(self.m_axi), dma.m_axi)
        wiring.connect(m, dma.noc, wiring.flipped(self.noc))

        ports = {
            "host": wiring.flipped(self.host), "dma_rd": dma.sram_rd, "dma_wr": dma.sram_wr[0],
            "dma_desc": dfe.mem, "ttu_rd": tfe.rd, "ttu_wr": tfe.wr, "tvp_rd": vfe.rd,
            "tvp_wr": vfe.wr, "noc_in": wiring.flipped(self.noc_in),
            "tvp_rd_b": vfe.rd_b, "tvp_rd_c": vfe.rd_c,
        }
        for name, port in ports.items():
            wiring.connect(m, port, sram.ports[SRAM_PORTS[name]])
        m.d.comb += [self.active.eq(Cat(dma.busy, tfe.busy, vfe.busy)),
                     self.errors.dma.eq(dma.errors), self.errors.ttu.eq(ttu.errors),
                     self.errors.tvp.eq(tvp.error)]
        beat = ttu.array.i_stream.valid & ttu.array.i_stream.ready
        m.d.sync += self.macs.eq(self.macs + beat)
        return m
