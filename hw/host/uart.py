"""8N1 UART receiver and transmitter as byte-stream components.

One bit lasts ``divisor`` clock cycles (``divisor = f_clk / baud``), so a byte
(start, 8 data bits LSB first, stop) takes ``10 * divisor`` cycles.
"""
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, saturating_add

__all__ = ["UARTRx", "UARTTx", "MIN_DIVISOR", "MAX_DIVISOR"]

#: Smallest divisor: the receiver needs a distinct mid-bit sample after the
#: two-flop synchroniser.
MIN_DIVISOR = 4
MAX_DIVISOR = 1 << 20


class UARTRx(wiring.Component):
    """8N1 receiver: samples each bit in its middle, bytes out on a stream.

    A falling edge starts a frame; the start bit is sampled again half a bit
    later and a high level there is a glitch (ignored). A low stop bit is a
    framing error: the byte is dropped, ``framing_errors`` counts it and the
    receiver waits for the line to return high (a break is one error, not
    many). A byte completed while the previous one is still offered is
    dropped and counted in ``overruns``: ``o_stream`` keeps its beat stable.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, ``MIN_DIVISOR`` .. ``MAX_DIVISOR``.

    Attributes
    ----------
    rx : In(1)
        Serial input (idle high), asynchronous to the clock.
    o_stream : Out(stream.Signature(8))
        Received bytes.
    framing_errors : Out(16)
        Saturating count of frames with a low stop bit.
    overruns : Out(16)
        Saturating count of bytes lost because ``o_stream`` was not taken.
    """

    def __init__(self, *, divisor):
        self._divisor = check_int("divisor", divisor, min=MIN_DIVISOR, max=MAX_DIVISOR)
        super().__init__({
            "rx": In(1, init=1),
            "o_stream": Out(stream.Signature(8)),
            "framing_errors": Out(16),
            "overruns": Out(16),
        })

    @property
    def divisor(self):
        return self._divisor

    def _deliver(self, m, byte):
        """The stop bit was good: offer ``byte`` unless a beat is still waiting."""
        with m.If(self.o_stream.valid & ~self.o_stream.ready):
            saturating_add(m, self.overruns)
        with m.Else():
            m.d.sync += [self.o_stream.valid.eq(1), self.o_stream.payload.eq(byte)]

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        # Two flops against metastability; start high so reset is not a start bit.
        s1 = Signal(init=1)
        rx = Signal(init=1)
        m.d.sync += [s1.eq(self.rx), rx.eq(s1)]
        count = Signal(range(d))
        bit = Signal(range(8))
        shift = Signal(8)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += count.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(rx):
                    m.next = "IDLE"          # glitch: too short for a start bit
                with m.Else():
                    m.d.sync += [count.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), count.eq(d - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(rx):
                    self._deliver(m, shift)
                    m.next = "IDLE"
                with m.Else():
                    saturating_add(m, self.framing_errors)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter: one byte from ``i_stream`` per ``10 * divisor`` cycles.

    ``i_stream.ready`` is high only while the line is idle, so a byte is taken
    when its start bit begins.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, ``MIN_DIVISOR`` .. ``MAX_DIVISOR``.

    Attributes
    ----------
    i_stream : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        Serial output (idle high).
    busy : Out(1)
        A frame is on the line.
    """

    def __init__(self, *, divisor):
        self._divisor = check_int("divisor", divisor, min=MIN_DIVISOR, max=MAX_DIVISOR)
        super().__init__({
            "i_stream": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        count = Signal(range(d))
        left = Signal(range(11))
        shift = Signal(10, init=0x3FF)
        m.d.comb += [self.tx.eq(shift[0]), self.busy.eq(left != 0),
                     self.i_stream.ready.eq(left == 0)]
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [shift.eq(Cat(Const(0, 1), self.i_stream.payload, Const(1, 1))),
                         left.eq(10), count.eq(d - 1)]
        with m.Elif(left != 0):
            with m.If(count != 0):
                m.d.sync += count.eq(count - 1)
            with m.Else():
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), left.eq(left - 1),
                             count.eq(d - 1)]
        return m
