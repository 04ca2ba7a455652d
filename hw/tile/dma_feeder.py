"""DMA feeder: descriptors from the tile SRAM to the DMA engine."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.cp.isa import ARG_BITS
from hw.dma.descriptor import completion_layout
from hw.mem.sram import SRAMPortSignature

from .feeder import RecordFetch

__all__ = ["DMAFeeder"]


class DMAFeeder(wiring.Component):
    """Fetches DMA descriptors from SRAM for the DMA engine's queue 0.

    ``cmd`` carries the SRAM word address of the descriptor (``n_words``
    words, least significant word first). A descriptor that does not fit in
    the SRAM is replaced by a zero-length one, which the DMA completes as
    MALFORMED: completions stay in order and the error reaches the CP.
    """

    def __init__(self, *, desc_layout, word_bits, addr_width, words):
        self._desc = desc_layout
        self._wb = word_bits
        self._n = -(-desc_layout.size // word_bits)
        self._words = words
        super().__init__({
            "cmd": In(stream.Signature(ARG_BITS)),
            "done": Out(stream.Signature(1)),
            "mem": Out(SRAMPortSignature(addr_width=addr_width, data_width=word_bits)),
            "desc": Out(stream.Signature(desc_layout)),
            "dma_done": In(stream.Signature(completion_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        fetch = RecordFetch(n=n, word_bits=self._wb, words=self._words, name="desc")
        rd_addr = Signal(ARG_BITS)
        m.d.comb += [
            self.done.valid.eq(self.dma_done.valid),
            self.done.payload.eq(self.dma_done.payload.err != 0),
            self.dma_done.ready.eq(self.done.ready),
            self.mem.req.payload.addr.eq(rd_addr),
            self.mem.req.payload.we.eq(0),
            self.mem.req.payload.wstrb.eq(0),
            self.mem.req.payload.wdata.eq(0),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += fetch.start(self.cmd.payload)
                    m.next = "READ"
            with m.State("READ"):
                with m.If(fetch.fetch(m, self.mem, rd_addr) | fetch.bad):
                    m.next = "PUSH"
            with m.State("PUSH"):
                # A record outside the SRAM becomes length 0: the DMA completes it MALFORMED.
                m.d.comb += [self.desc.valid.eq(1),
                             self.desc.payload.eq(Mux(fetch.bad, 0, fetch.data[:self._desc.size]))]
                with m.If(self.desc.ready):
                    m.next = "IDLE"
        return m
