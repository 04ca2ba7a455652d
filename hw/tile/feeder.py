"""What every engine feeder of the tile shares: its ports and its address generator."""
from amaranth.hdl import Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from hw.cp.isa import ARG_BITS
from hw.mem.sram import SRAMPortSignature

from .records import ADDR

__all__ = ["feeder_members", "AddrGen"]


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
