"""Formal checks of the ATL NIC blocks.

Testplan (docs/nic.md):
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
* Lane (the transport sender/receiver of one port; window 2, 4-bit PSNs,
  1-byte payloads): the retransmit buffer is never written in a slot that
  holds a posted, unacknowledged PSN, and every ``Lane.invariants()`` fact
  (at most ``window`` PSNs outstanding, retransmit/SACK marks only on sent
  unacknowledged slots, ACK-engine and post-engine consistency, the receive
  window's own invariant; it gathers the facts its sub-components
  ``PostEngine`` and ``RetransmitTimers`` state in their own ``invariants()``)
  holds (k-induction); both output streams obey the
  stream rules. Covers: a timeout, a buffer write while another PSN is
  unacknowledged. Mutant: a post engine that ignores the window (writes
  while ``window`` PSNs are outstanding) must fail.
* Sprayer (2 ports, 2 semaphores; BMC depth 9 + cover) with free posts (stream
  rules and a stable group assumed), free ``ready`` s and a free link status:
  the stream rules on every output; a WRITE beat is shown on at most one port;
  all beats of a WRITE message go to the port of its first beat; a message
  starts only on a port that is up; SEM accounting per port: copies taken +
  copies owed + the copy still to take == SEMs accepted + the SEM in
  progress (none lost, none duplicated). Covers: a message on each port, an owed
  copy flushed, a SEM with one copy owed. Mutant: a sprayer that forgets the
  owed copies fails.
"""
import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Signal

from formal import harness
from formal.properties import (beat, check_invariants, check_source, drive_sink, drive_source,
                               one_in_one_out)
from hw.nic import EthRx, EthTx, Lane, RxWindow
from hw.nic.post_engine import PostEngine
from hw.nic.sprayer import Sprayer


class StreamRulesCheck(Elaboratable):
    """Stream rules on the output; shallow covers (a full frame needs 64+ cycles,
    beyond a quick cover run; whole frames are covered by ``tb/nic/test_eth.py``)."""

    def __init__(self, dut, covers):
        self.dut, self.covers = dut, covers

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        one_in_one_out(m, dut)
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
        one_in_one_out(m, dut)
        v = dut.o_stream.payload
        fire = beat(dut.o_stream)
        k = Signal(n)
        m.d.comb += k.eq(AnyConst(n))
        acc_k = Signal()        # k has been accepted
        d0 = Signal(n)          # distance of k from expected when accepted
        g = Signal(n + 1)       # PSNs advanced since then
        m.d.comb += Assume(g <= mod // 2 - w)  # packet lifetime (docs/nic.md)
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


class LaneCheck(Elaboratable):
    """Formal top around one :class:`Lane`: every input free, the rules assumed."""

    def __init__(self, dut, *, quiet_rx=False):
        self.dut, self.quiet_rx = dut, quiet_rx

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        W, pb = dut._w, dut._psn_bits
        sb = (W - 1).bit_length()
        for k, p in enumerate(dut.i_posts):
            drive_source(m, p, name=f"post{k}")
        drive_source(m, dut.i_frame, name="rx")
        if self.quiet_rx:
            # Cover runs only: nothing received, so the deep covers stay in
            # reach of the solver (reachable here => reachable unconstrained).
            m.d.comb += [Assume(~dut.i_frame.valid), Assume(dut.o_frame.ready)]
            for post in dut.i_posts:
                m.d.comb += Assume(post.payload.sem & post.payload.last & post.valid)
        drive_sink(m, dut.o_frame)
        drive_sink(m, dut.o_mem)
        check_source(m, dut.o_frame, name="tx")
        check_source(m, dut.o_mem, name="mem")
        m.d.comb += [dut.mac.eq(AnyConst(48)), dut.peer_macs.eq(AnyConst(48 * len(dut.i_posts)))]
        check_invariants(m, dut)
        # Retransmit buffer: a write never lands in a slot holding a posted,
        # unacknowledged PSN of its flow ([base, next)).
        for l in range(len(dut.i_posts)):
            used = (dut.next[l] - dut.base[l])[:pb]
            occupied = []
            for slot in range(W):
                pos = (Const(slot, sb) - dut.base[l][:sb])[:sb]
                occupied.append(pos < used)
            with m.If(dut.buf_we & (dut.buf_flow == l)):
                m.d.comb += Assert(~Cat(*occupied).bit_select(dut.buf_psn[:sb], 1),
                                   f"buffer_write_free_slot_{l}")
            m.d.comb += Cover(dut.buf_we & (dut.buf_flow == l)
                              & (dut.snext[l] != dut.base[l]), f"write_while_unacked_{l}")
        m.d.comb += Cover(dut.timeouts, "timeout")
        return m


def _lane(**kw):
    return Lane(flow_ids=(0,), window=2, payload=1, mem_bits=4, n_sems=1, rto=3, psn_bits=4,
                **kw)


def test_lane_invariants():
    harness.check(LaneCheck(_lane()), name="nic_lane", modes=("prove",), depth=4)


def test_lane_covers():
    harness.check(LaneCheck(_lane(), quiet_rx=True), name="nic_lane_cover", modes=("cover",),
                  depth=25)


class GreedyPostEngine(PostEngine):
    """Mutant: fills a slot even when the window is full."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        for l in range(len(self.i_posts)):
            m.d.comb += self._arb.requests[l].eq(self.i_posts[l].valid)
        return m


class GreedyLane(Lane):
    """Mutant lane: its post engine ignores the window."""
    _post_engine_cls = GreedyPostEngine


def test_mutant_lane_overwrites_is_caught():
    # A reachable overwrite needs ~40 cycles of BMC (too slow for the
    # regression); the same proof as test_lane_invariants must fail instead.
    with pytest.raises(AssertionError):
        harness.check(LaneCheck(GreedyLane(flow_ids=(0,), window=2, payload=1, mem_bits=4,
                                           n_sems=1, rto=3, psn_bits=4)),
                      name="nic_lane_mutant", modes=("prove",), depth=4)


class SprayerCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        from amaranth.asserts import AnySeq
        m = Module()
        m.submodules.dut = dut = self.dut
        W = dut.width
        i = dut.i_post
        drive_source(m, i, name="i_post")
        m.d.comb += [dut.port_up.eq(AnySeq(W)), dut.i_group.eq(0)]
        # Well-formed posts: a SEM is a single-beat message for a semaphore the
        # sprayer can owe (a larger index is counted as an error).
        i_in_msg = Signal()
        with m.If(beat(i)):
            m.d.sync += i_in_msg.eq(~i.payload.last & (i_in_msg | ~i.payload.sem))
        m.d.comb += Assume(~i.valid | ~i.payload.sem
                           | (~i_in_msg & i.payload.last & (i.payload.addr < dut.n_sems)))
        for j, o in enumerate(dut.o_posts):
            drive_sink(m, o)
            check_source(m, o, name=f"o_post{j}")
        wr_valid = Cat(*[o.valid & ~o.payload.sem for o in dut.o_posts])
        m.d.comb += Assert((wr_valid & (wr_valid - 1)) == 0, "write_on_one_port")
        # Message atomicity: the beats after the first go where the first went.
        in_msg, port = Signal(), Signal(range(W))
        for j, o in enumerate(dut.o_posts):
            with m.If(beat(o) & ~o.payload.sem):
                m.d.sync += [in_msg.eq(~o.payload.last), port.eq(j)]
                m.d.comb += Assert(~in_msg | (port == j), f"message_stays_{j}")
        # A message starts on a live port (the choice is registered one cycle earlier).
        up_prev = Signal(W)
        m.d.sync += up_prev.eq(dut.port_up)
        started = Signal(W)
        for j, o in enumerate(dut.o_posts):
            first = Signal(name=f"first{j}")
            prev_first = Signal(name=f"prev_first{j}")
            m.d.comb += first.eq(o.valid & ~o.payload.sem & ~in_msg)
            m.d.sync += prev_first.eq(first)
            m.d.comb += started[j].eq(first & ~prev_first)
        # SEM accounting per port (4-bit counters, equal modulo 16).
        n_in = Signal(4)
        with m.If(beat(i) & i.payload.sem):
            m.d.sync += n_in.eq(n_in + 1)
        for j, o in enumerate(dut.o_posts):
            got = Signal(4, name=f"got{j}")
            with m.If(beat(o) & o.payload.sem):
                m.d.sync += got.eq(got + 1)
            owed = sum(dut._owed[0][j][k] for k in range(dut.n_sems))
            pending = dut._sem_on & dut._sem_mask[j]
            m.d.comb += Assert(((got + owed + pending) & 15) == ((n_in + dut._sem_on) & 15),
                               f"sem_copies_{j}")
            m.d.comb += Cover(beat(o) & ~o.payload.sem & o.payload.last)
        m.d.comb += [
            Cover(dut._flushing & beat(dut.o_posts[1])),
            Cover(beat(i) & i.payload.sem & (dut.owed)),
        ]
        with m.If(started.any()):
            m.d.comb += Assert((started & ~up_prev) == 0, "start_on_live_port")
        return m


class ForgetfulSprayer(Sprayer):
    """Mutant: SEM copies for ports that are down are never sent."""
    _owe = False


def test_sprayer():
    harness.check(SprayerCheck(Sprayer(groups=1, width=2, n_sems=2)), name="nic_sprayer",
                  modes=("bmc", "cover"), depth=9)


def test_mutant_sprayer_forgets_owed_copies():
    with pytest.raises(AssertionError, match="bmc"):
        harness.check(SprayerCheck(ForgetfulSprayer(groups=1, width=2, n_sems=2)),
                      name="nic_sprayer_mutant", modes=("bmc",), depth=10)


@pytest.mark.slow
def test_sprayer_deep():
    """The same properties to depth 14 (about 5 minutes)."""
    harness.check(SprayerCheck(Sprayer(groups=1, width=2, n_sems=2)), name="nic_sprayer_deep",
                  modes=("bmc",), depth=14)
