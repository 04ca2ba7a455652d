"""What the tile's engine feeders share: their ports, the record fetch, the address generator."""
from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from hw.cp.isa import ARG_BITS
from hw.mem.sram import SRAMPortSignature

from .records import ADDR

__all__ = ["feeder_members", "AddrGen", "RecordFetch"]


def feeder_members(addr_width, word_bits):
    """Ports every engine feeder has: a command from its queue, a completion back,
    an SRAM read port for records and operands, a write port for results, ``busy``."""
    port = SRAMPortSignature(addr_width=addr_width, data_width=word_bits)
    return {
        "cmd": In(stream.Signature(ARG_BITS)),
        "done": Out(stream.Signature(1)),
        "rd": Out(port),
        "wr": Out(port),
        "busy": Out(1),
    }


class AddrGen:
    """Two-level address generator (base, inner stride, outer stride, group)."""

    def __init__(self, m, name):
        self.m = m
        self.outer_ptr = Signal(ADDR, name=f"{name}_optr")
        self.ptr = Signal(ADDR, name=f"{name}_ptr")
        self.i = Signal(16, name=f"{name}_i")

    def reset(self, base):
        return [self.outer_ptr.eq(base), self.ptr.eq(base), self.i.eq(0)]

    def step(self, group, inner, outer):
        nxt = (self.outer_ptr + outer)[:ADDR]
        return [
            self.i.eq(Mux(self.i == group - 1, 0, self.i + 1)),
            self.outer_ptr.eq(Mux(self.i == group - 1, nxt, self.outer_ptr)),
            self.ptr.eq(Mux(self.i == group - 1, nxt, (self.ptr + inner)[:ADDR])),
        ]


class RecordFetch:
    """Reads an ``n``-word operation record from the tile SRAM (one FSM state of a feeder).

    Every feeder starts a command the same way: the ``EXEC`` argument is the
    record's word address, the record must lie inside the SRAM, and its words
    are read in order through the feeder's read port. :meth:`start` goes with
    the command's acceptance, :meth:`fetch` into the feeder's fetch state.

    Attributes
    ----------
    bad : Signal
        The record does not fit in the SRAM (nothing is read then).
    data : Signal(n * word_bits)
        The words received so far, the first in the least significant bits once
        all ``n`` are in.
    last_data : Value
        ``data`` including the word arriving in this cycle (the whole record in
        the cycle :meth:`fetch` reports done).
    """

    def __init__(self, *, n, word_bits, words, name="rec"):
        self.n = n
        self._wb = word_bits
        self._words = words
        self.addr = Signal(ARG_BITS, name=f"{name}_addr")
        self.bad = Signal(name=f"{name}_bad")
        self.sent = Signal(range(n + 1), name=f"{name}_sent")
        self.got = Signal(range(n + 1), name=f"{name}_got")
        self.data = Signal(n * word_bits, name=f"{name}_data")
        self.last_data = None

    def start(self, addr):
        """Sync statements that begin a fetch at word ``addr``."""
        return [self.addr.eq(addr), self.sent.eq(0), self.got.eq(0),
                self.bad.eq(addr + self.n > self._words)]

    def fetch(self, m, port, rd_addr):
        """Drive ``port`` (and the feeder's read address ``rd_addr``) for this cycle.

        Returns the condition "the record's last word arrives now".
        """
        wb, n = self._wb, self.n
        m.d.comb += [port.req.valid.eq((self.sent != n) & ~self.bad),
                     rd_addr.eq(self.addr + self.sent), port.rsp.ready.eq(1)]
        self.last_data = Cat(self.data[wb:], port.rsp.payload)
        with m.If(port.req.valid & port.req.ready):
            m.d.sync += self.sent.eq(self.sent + 1)
        with m.If(port.rsp.valid):
            m.d.sync += [self.data.eq(self.last_data), self.got.eq(self.got + 1)]
        return port.rsp.valid & (self.got == n - 1)
