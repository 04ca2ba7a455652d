"""Formal checks of the ATL NIC blocks.

Testplan (docs/atl.md):
* EthTx, EthRx: stream rules on the output (prove), shallow covers (a
  stalled output, a client frame end, runts dropped);
* RxWindow (4-bit PSNs so wrap-around is inside the proof): for a symbolic
  PSN ``k``, once ``k`` is accepted it is never accepted again while the
  receiver has advanced less than half the PSN space since (the documented
  packet-lifetime assumption), the window bitmap keeps ``k`` marked until
  ``expected`` passes it, ``expected`` moves by exactly the reported
  ``advance``, and an accepted PSN always lies inside the window (prove);
  covers for a duplicate of ``k`` refused, a multi-PSN advance and a wrap.
* mutant: a window that forgets to check the bitmap must fail.
"""
import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal

from formal import harness
from formal.properties import beat, check_invariants, check_source, drive_sink, drive_source
from hw.nic import EthRx, EthTx, RxWindow


class StreamRulesCheck(Elaboratable):
    """Stream rules on the output; shallow covers (a full frame needs 64+ cycles,
    beyond a quick cover run; whole frames are covered by ``tb/nic/test_eth.py``)."""

    def __init__(self, dut, covers):
        self.dut, self.covers = dut, covers

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        drive_source(m, dut.i_stream, name="i")
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        check_invariants(m, dut)
        for expr, name in self.covers(dut):
            m.d.comb += Cover(expr, name)
        return m


def test_eth_tx_stream_rules():
    def covers(dut):
        return [(dut.o_stream.valid & ~dut.o_stream.ready, "stalled"),
                (beat(dut.i_stream) & dut.i_stream.payload.last, "client_frame_end")]
    harness.check(StreamRulesCheck(EthTx(), covers), name="nic_eth_tx",
                  modes=("prove", "cover"), depth=6)


def test_eth_rx_stream_rules():
    def covers(dut):
        return [(dut.runts == 2, "two_runts_dropped"),
                (beat(dut.i_stream) & ~dut.i_stream.payload.last, "byte_taken")]
    harness.check(StreamRulesCheck(EthRx(max_frame=64), covers), name="nic_eth_rx",
                  modes=("prove", "cover"), depth=6)


class WindowCheck(Elaboratable):
    PSN_BITS = 4

    def __init__(self, dut, window):
        self.dut, self.w = dut, window

    def elaborate(self, platform):
        m = Module()
        n, w = self.PSN_BITS, self.w
        mod = 1 << n
        m.submodules.dut = dut = self.dut
        drive_source(m, dut.i_stream, name="i")
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        check_invariants(m, dut)
        v = dut.o_stream.payload
        fire = beat(dut.o_stream)
        k = Signal(n)
        m.d.comb += k.eq(AnyConst(n))
        acc_k = Signal()        # k has been accepted
        d0 = Signal(n)          # distance of k from expected when accepted
        g = Signal(n + 1)       # PSNs advanced since then
        m.d.comb += Assume(g <= mod // 2 - w)  # packet lifetime (docs/atl.md)
        with m.If(fire):
            m.d.comb += Assert((v.advance == 0) | v.accept, "advance_only_on_accept")
            with m.If(v.accept):
                m.d.comb += Assert((v.psn - dut.expected)[:n] < w, "accept_in_window")
            with m.If(v.accept & (v.psn == k)):
                m.d.comb += Assert(~acc_k, "never_accepted_twice")
                m.d.sync += [acc_k.eq(1), d0.eq((k - dut.expected)[:n]), g.eq(v.advance)]
            with m.Elif(acc_k):
                m.d.sync += g.eq(g + v.advance)
        with m.If(acc_k):
            m.d.comb += [
                Assert(d0 < w, "d0_in_window"),
                Assert((dut.expected - k + d0)[:n] == g[:n], "expected_tracks_g"),
            ]
            with m.If(g <= d0):
                m.d.comb += Assert(dut.bits.bit_select((d0 - g)[:n], 1), "k_marked_until_passed")
        m.d.comb += [
            Cover(fire & v.dup & (v.psn == k) & acc_k & ~(g > d0), "dup_in_window_refused"),
            Cover(fire & v.dup & (v.psn == k) & acc_k & (g > d0), "dup_behind_refused"),
            Cover(fire & (v.advance >= 2), "multi_advance"),
            # A PSN accepted across the wrap point (numerically below expected).
            Cover(fire & v.accept & (v.psn < dut.expected), "wrapped"),
        ]
        return m


class ForgetfulWindow(RxWindow):
    """Mutant: duplicates inside the window are not recognised."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        d = (self.i_stream.payload - self.expected)[:self._psn_bits]
        m.d.comb += self.o_stream.payload.accept.eq(~d[-1] & (d < self._w))
        return m


def test_rx_window():
    w = 3
    harness.check(WindowCheck(RxWindow(window=w, psn_bits=WindowCheck.PSN_BITS), w),
                  name="nic_rx_window", modes=("prove", "cover"), depth=20)


def test_mutant_window_is_caught():
    w = 3
    with pytest.raises(AssertionError):
        harness.check(WindowCheck(ForgetfulWindow(window=w, psn_bits=WindowCheck.PSN_BITS), w),
                      name="nic_rx_window_mutant", modes=("bmc",), depth=8)
