"""Receive window of one ATL flow: exactly-once acceptance and the ACK state."""
from amaranth.hdl import Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int

__all__ = ["RxWindow", "verdict_layout"]


def verdict_layout(psn_bits):
    """Per-packet verdict: ``accept`` (apply now), ``dup`` (seen before), ``outside``."""
    return data.StructLayout({"psn": psn_bits, "accept": 1, "dup": 1, "outside": 1,
                              "advance": range(33)})


class RxWindow(wiring.Component):
    """Exactly-once filter of data-packet PSNs for one flow (``docs/nic.md``).

    Keeps ``expected`` (next in-order PSN) and a bitmap of the PSNs in
    ``[expected, expected + window)`` already applied. For each PSN on
    ``i_stream`` the verdict on ``o_stream`` (same cycle, pass-through
    handshake) says whether to apply the packet; on the handshake the state
    advances over every PSN now received in order (``advance`` of them, so
    the caller can release semaphores that were waiting for them).

    Parameters
    ----------
    window : int
        Receive window in PSNs, 1..32 (equal to the sender's window).
    psn_bits : int
        PSN width, 16 on the wire; smaller only for formal proofs.

    Attributes
    ----------
    i_stream : In(stream.Signature(psn_bits))
        PSN of each arriving data packet.
    o_stream : Out(stream.Signature(verdict_layout(psn_bits)))
        Verdict for it.
    expected : Out(psn_bits)
        Cumulative ACK value.
    sack : Out(32)
        Bit i: PSN ``expected + 1 + i`` received.
    """

    def __init__(self, *, window=32, psn_bits=16):
        self._w = check_int("window", window, min=1, max=32)
        self._psn_bits = check_int("psn_bits", psn_bits, min=window.bit_length() + 2, max=16)
        super().__init__({
            "i_stream": In(stream.Signature(psn_bits)),
            "o_stream": Out(stream.Signature(verdict_layout(psn_bits))),
            "expected": Out(psn_bits),
            "sack": Out(32),
        })
        #: Bit i: PSN expected + i applied. Bit 0 is always clear between packets.
        self.bits = Signal(window)

    def invariants(self):
        return [(~self.bits[0], "bit0_clear")]

    def elaborate(self, platform):
        m = Module()
        w, n = self._w, self._psn_bits
        i, o = self.i_stream, self.o_stream
        d = Signal(n)
        m.d.comb += d.eq(i.payload - self.expected)
        behind = d[n - 1]
        in_window = ~behind & (d < w)
        seen = Signal()
        m.d.comb += seen.eq(in_window & self.bits.bit_select(d[:max(1, (w - 1).bit_length())], 1))
        accept = in_window & ~seen
        # Bitmap with this packet added, then count the in-order run at bit 0.
        new = Signal(w)
        m.d.comb += new.eq(self.bits | (accept.replicate(w) & (Const(1, w) << d[:6])))
        run = Signal(range(w + 1))
        for k in reversed(range(w + 1)):
            if k == w:
                with m.If(new.all()):
                    m.d.comb += run.eq(w)
            else:
                # Lowest clear bit: last assignment (smallest k) wins.
                with m.If(~new[k]):
                    m.d.comb += run.eq(k)
        m.d.comb += [
            o.valid.eq(i.valid),
            i.ready.eq(o.ready),
            o.payload.psn.eq(i.payload),
            o.payload.accept.eq(accept),
            o.payload.dup.eq(behind | seen),
            o.payload.outside.eq(~behind & (d >= w)),
            o.payload.advance.eq(run),
            self.sack.eq(self.bits[1:]),
        ]
        with m.If(i.valid & i.ready):
            m.d.sync += [self.bits.eq(new >> run), self.expected.eq(self.expected + run)]
        return m
