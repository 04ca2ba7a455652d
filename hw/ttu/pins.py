"""Pin wrapper: ECP5 implementation of a block with more ports than the package has pins.

The LFE5U-85F in CABGA381 has about 200 user I/Os; the TTU (and even one PE) has
more port bits. :class:`PinWrapper` keeps every port of the wrapped block live and
registered at both ends: all its input bits come from a shift register fed
``width`` bits per cycle, and all its output bits are captured (``cap``) into a
register that otherwise shifts out ``width`` bits per cycle. The wrapper adds
about one FF per port bit and one LUT4 per output bit; the block's own paths
(register to register) are unchanged, so Fmax is the block's.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_int

__all__ = ["PinWrapper"]


class PinWrapper(wiring.Component):
    """Drive all inputs of ``dut`` from a shift register, capture all outputs.

    Parameters
    ----------
    dut : wiring.Component
        The wrapped block (its ``sync`` domain is the wrapper's).
    width : int
        Bits shifted in and out per cycle (1..32).

    Attributes
    ----------
    din : In(width)
        Serial input data.
    cap : In(1)
        Capture the outputs of ``dut`` (else shift them out).
    dout : Out(width)
        Serial output data.
    """

    def __init__(self, dut, *, width=8):
        if not isinstance(dut, wiring.Component):
            raise TypeError(f"dut must be a wiring.Component, not {dut!r}")
        self._dut = dut
        self._width = check_int("width", width, min=1, max=32)
        super().__init__({"din": In(self._width), "cap": In(1), "dout": Out(self._width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        w = self._width
        ins, outs = [], []
        for _, member, value in dut.signature.flatten(dut):
            (ins if member.flow == In else outs).append(Value.cast(value))
        n_in = max(sum(len(v) for v in ins), 1)
        n_out = max(sum(len(v) for v in outs), 1)
        sin = Signal(n_in + w)
        m.d.sync += sin.eq(Cat(self.din, sin[:-w]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(sin[pos:pos + len(v)])
            pos += len(v)
        sout = Signal(n_out + w)
        m.d.sync += sout.eq(Mux(self.cap, Cat(Signal(w), *outs), sout << w))
        m.d.comb += self.dout.eq(sout[-w:])
        return m
