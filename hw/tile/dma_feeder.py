"""DMA feeder: descriptors from the tile SRAM to the DMA engine."""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.cp.isa import ARG_BITS
from hw.mem.sram import SRAMPortSignature

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
            "dma_done": In(stream.Signature(data.StructLayout({"sem": 8, "err": 3}))),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        arg = Signal(ARG_BITS)
        bad = Signal()
        issued = Signal(range(n + 1))
        got = Signal(range(n + 1))
        buf = Signal(n * self._wb)
        m.d.comb += [
            self.done.valid.eq(self.dma_done.valid),
            self.done.payload.eq(self.dma_done.payload.err != 0),
            self.dma_done.ready.eq(self.done.ready),
            self.mem.req.payload.addr.eq(arg + issued),
            self.mem.req.payload.we.eq(0),
            self.mem.req.payload.wstrb.eq(0),
            self.mem.req.payload.wdata.eq(0),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [arg.eq(self.cmd.payload), issued.eq(0), got.eq(0),
                                 bad.eq(self.cmd.payload + n > self._words)]
                    m.next = "READ"
            with m.State("READ"):
                with m.If(bad):
                    m.d.sync += buf.eq(0)   # length 0: MALFORMED
                    m.next = "PUSH"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(issued != n)
                    with m.If(self.mem.req.valid & self.mem.req.ready):
                        m.d.sync += issued.eq(issued + 1)
                    m.d.comb += self.mem.rsp.ready.eq(1)
                    with m.If(self.mem.rsp.valid):
                        m.d.sync += [buf.eq(Cat(buf[self._wb:], self.mem.rsp.payload)),
                                     got.eq(got + 1)]
                        with m.If(got == n - 1):
                            m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += [self.desc.valid.eq(1), self.desc.payload.eq(buf[:self._desc.size])]
                with m.If(self.desc.ready):
                    m.next = "IDLE"
        return m
