"""Formal checks of :mod:`hw.host` (``docs/host.md``).

* ``test_uart_rx_formal``: free ``rx`` line, free ``o_stream.ready``: the stream rules
  on ``o_stream`` are proved; covers: a byte delivered, a framing error (an overrun needs two
  frames, 80+ cycles: beyond the cover depth).
* ``test_uart_tx_formal``: ``i_stream`` under the stream rules: the line is high and
  ``i_stream.ready`` high whenever the transmitter is not busy (proved); cover: a
  byte taken and sent to its stop bit.
* ``test_bridge_formal``: free ``i_bytes``, SRAM response, tile inputs and output
  readies: the stream rules on ``o_bytes``, ``host.req`` and ``load`` are proved;
  ``link_errors`` never decreases; covers: an OK and an error status byte leave,
  an SRAM write, a program load.
* ``test_mutant_rx_overwrite_fails``: a receiver that overwrites a stalled byte fails.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal

from formal import harness
from formal.properties import beat, check_source, drive_sink, drive_source
from hw.host import HostBridge, Status, UARTRx, UARTTx


class RxCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.d.comb += dut.rx.eq(AnySeq(1))
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        prev_fe, prev_ov = Signal(16), Signal(16)
        m.d.sync += [prev_fe.eq(dut.framing_errors), prev_ov.eq(dut.overruns)]
        m.d.comb += [
            Cover(beat(dut.o_stream)),
            Cover(dut.framing_errors > prev_fe),
        ]
        return m


class TxCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        drive_source(m, dut.i_stream, name="i")
        with m.If(~dut.busy):
            m.d.comb += [Assert(dut.tx, "idle_high"), Assert(dut.i_stream.ready, "idle_ready")]
        prev_busy = Signal()
        m.d.sync += prev_busy.eq(dut.busy)
        m.d.comb += [Cover(beat(dut.i_stream)), Cover(prev_busy & ~dut.busy)]
        return m


class BridgeCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        drive_source(m, dut.i_bytes, name="i_bytes")
        drive_source(m, dut.host.rsp, name="rsp")
        drive_sink(m, dut.o_bytes)
        drive_sink(m, dut.host.req)
        drive_sink(m, dut.load)
        for name in ("status", "sems", "errors", "macs"):
            v = getattr(dut, name)
            v = v.as_value() if hasattr(v, "as_value") else v
            m.d.comb += v.eq(AnySeq(len(v)))
        check_source(m, dut.o_bytes, name="o_bytes")
        check_source(m, dut.host.req, name="req")
        check_source(m, dut.load, name="load")
        prev = Signal(16)
        m.d.sync += prev.eq(dut.link_errors)
        m.d.comb += Assert(dut.link_errors >= prev, "link_errors_monotone")
        m.d.comb += [
            Cover(beat(dut.o_bytes) & (dut.o_bytes.payload == Status.OK)),
            Cover(beat(dut.o_bytes) & (dut.o_bytes.payload == Status.BAD_LENGTH)),
            Cover(beat(dut.host.req) & dut.host.req.payload.we),
            Cover(beat(dut.load)),
        ]
        return m


def test_uart_rx_formal():
    harness.check(RxCheck(UARTRx(divisor=4)), name="host_uart_rx", depth=45)


def test_uart_tx_formal():
    harness.check(TxCheck(UARTTx(divisor=4)), name="host_uart_tx", depth=45)


def test_bridge_formal():
    dut = HostBridge(word_bits=8, addr_width=2, depth=2, n_queues=1, timeout=2,
                     sems_shape=2, errors_shape=2, macs_width=2)
    harness.check(BridgeCheck(dut), name="host_bridge", depth=16)


class OverwritingRx(UARTRx):
    """Mutant: a byte completed while the previous one is stalled replaces it."""

    def _deliver(self, m, byte):
        m.d.sync += [self.o_stream.valid.eq(1), self.o_stream.payload.eq(byte)]


def test_mutant_rx_overwrite_fails():
    import pytest
    with pytest.raises(AssertionError):
        harness.check(RxCheck(OverwritingRx(divisor=4)), name="host_uart_rx_mutant",
                      modes=("prove",), depth=50)
