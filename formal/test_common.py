"""Formal checks of the shared blocks in ``hw/common``.

Testplan (docs/common.md):
* skid buffer / FIFO: stream rules on the output (prove), occupancy = beats
  in - beats out (prove), k-th out = k-th in (bmc), covers for full, stall
  and full-rate transfer; look-ahead FIFO: the same, and ``o_next`` is the
  head after the next pop (prove);
* round-robin arbiter: grant one-hot and requested (prove), bounded wait
  of n-1 grants (bmc over 3n+4 cycles), covers;
* stream arbiter and broadcast: stream rules on outputs (prove), covers;
* mutants: a skid buffer with ``ready`` forced high must fail.
"""
import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import data

from hw.common import (RoundRobinArbiter, SkidBuffer, StreamArbiter, StreamBroadcast,
                       StreamFIFO)
from formal import harness
from formal.properties import (beat, check_invariants, check_occupancy, check_order, check_source,
                               drive_sink, drive_source, one_in_one_out)


class FifoLikeCheck(Elaboratable):
    """Wrapper for a one-in one-out buffer with a known occupancy."""

    def __init__(self, dut, occupancy, capacity, order=False):
        self.dut = dut
        self.occupancy = occupancy  # function of the dut's ports
        self.capacity = capacity
        self.order = order

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        one_in_one_out(m, dut)
        occ = Signal(range(self.capacity + 1))
        m.d.comb += occ.eq(self.occupancy(dut))
        m.d.comb += Assert(occ <= self.capacity, "capacity")
        check_occupancy(m, dut.i_stream, dut.o_stream, occ, width=8)
        if self.order:
            check_order(m, dut.i_stream, dut.o_stream)
        m.d.comb += [
            Cover(occ == self.capacity, "full"),
            Cover(beat(dut.i_stream) & beat(dut.o_stream) & (occ != 0), "through"),
            Cover(dut.o_stream.valid & ~dut.o_stream.ready, "stalled"),
        ]
        return m


def skid_occupancy(dut):
    return dut.o_stream.valid + ~dut.i_stream.ready


def fifo_occupancy(dut):
    return dut.level


def test_skid_buffer():
    harness.check(FifoLikeCheck(SkidBuffer(payload_shape=4), skid_occupancy, 2),
                  name="skid", modes=("prove", "cover"), depth=8)
    # Order needs only distinguishable beats: a 2-bit payload keeps BMC fast.
    harness.check(FifoLikeCheck(SkidBuffer(payload_shape=2), skid_occupancy, 2, order=True),
                  name="skid_order", modes=("bmc",), depth=12)


def test_stream_fifo():
    harness.check(FifoLikeCheck(StreamFIFO(payload_shape=4, depth=3), fifo_occupancy, 3),
                  name="fifo", modes=("prove", "cover"), depth=10)
    harness.check(FifoLikeCheck(StreamFIFO(payload_shape=2, depth=3), fifo_occupancy, 3, order=True),
                  name="fifo_order", modes=("bmc",), depth=12)


class LookaheadCheck(FifoLikeCheck):
    """``FifoLikeCheck`` plus: the ``o_next`` seen when the head leaves is the next head."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        dut = self.dut
        o = dut.o_stream
        armed = Signal()
        promised = Signal.like(dut.o_next)
        m.d.sync += [armed.eq(beat(o) & dut.next_valid), promised.eq(dut.o_next)]
        m.d.comb += [
            Assert(~armed | (o.valid & (o.payload == promised)), "o_next_is_next_head"),
            Assert(dut.next_valid == (dut.level >= 2), "next_valid"),
            Cover(armed & beat(o) & dut.next_valid, "back_to_back_lookahead"),
        ]
        return m


def test_stream_fifo_lookahead():
    harness.check(LookaheadCheck(StreamFIFO(payload_shape=4, depth=3, lookahead=True),
                                 fifo_occupancy, 3),
                  name="fifo_lookahead", modes=("prove", "cover"), depth=10)


class ReadyHighSkid(SkidBuffer):
    """Mutant: ``ready`` forced high, so a stalled skid register is overwritten."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i_stream.ready.eq(1)
        return m


def test_mutant_skid_fails():
    with pytest.raises(AssertionError, match="prove"):
        harness.check(FifoLikeCheck(ReadyHighSkid(payload_shape=4),
                                    lambda d: d.o_stream.valid, 2),
                      name="skid_mutant", modes=("prove",), depth=8)


class RoundRobinCheck(Elaboratable):
    def __init__(self, n):
        self.n = n

    def elaborate(self, platform):
        m = Module()
        n = self.n
        m.submodules.dut = dut = RoundRobinArbiter(n=n)
        m.d.comb += [dut.requests.eq(AnySeq(n)), dut.advance.eq(AnySeq(1))]
        # Safety: one grant, to a requester, whenever anyone requests.
        m.d.comb += [
            Assert((dut.grant & (dut.grant - 1)) == 0, "onehot"),
            Assert((dut.grant & ~dut.requests) == 0, "granted_requested"),
            Assert(dut.valid == dut.requests.any(), "work_conserving"),
            Assert(~dut.valid | (dut.grant == (1 << dut.index)), "index_matches"),
        ]
        # Liveness as bounded wait: a requester k that keeps requesting
        # (until served) sees at most n-1 grants to others.
        k = Signal(range(n))
        m.d.comb += k.eq(AnyConst(range(n)))
        waited = Signal(range(n + 1))
        served = dut.advance & dut.valid & (dut.index == k)
        prev_req = Signal()
        prev_served = Signal()
        m.d.sync += [prev_req.eq(dut.requests.bit_select(k, 1)), prev_served.eq(served)]
        with m.If(prev_req & ~prev_served):
            m.d.comb += Assume(dut.requests.bit_select(k, 1))
        with m.If(~dut.requests.bit_select(k, 1) | served):
            m.d.sync += waited.eq(0)
        with m.Elif(dut.advance & dut.valid):
            m.d.sync += waited.eq(waited + 1)
        check_invariants(m, dut)
        # Inductive strengthening: every grant to another requester moves the
        # pointer closer to k, so distance(ptr -> k) + waited stays below n.
        dist = Signal(range(2 * n))
        m.d.comb += dist.eq(Mux(k >= dut._ptr, k - dut._ptr, k + n - dut._ptr))
        with m.If(dut.requests.bit_select(k, 1) & (waited != 0)):
            m.d.comb += Assert(dist + waited <= n - 1, "wait_distance")
        m.d.comb += [
            Assert(waited <= n - 1, "bounded_wait"),
            Cover(waited == n - 1, "worst_wait"),
            Cover(dut.requests.all() & dut.advance, "contention"),
        ]
        return m


def test_round_robin_arbiter():
    n = 3
    harness.check(RoundRobinCheck(n), name="rr_arbiter", modes=("prove", "cover"), depth=3 * n + 4)


class StreamPlumbingCheck(Elaboratable):
    def __init__(self, dut, inputs, outputs):
        self.dut, self.inputs, self.outputs = dut, inputs, outputs

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        for i, s in enumerate(self.inputs(dut)):
            drive_source(m, s, name=f"i{i}")
        for i, s in enumerate(self.outputs(dut)):
            drive_sink(m, s)
            check_source(m, s, name=f"o{i}")
            m.d.comb += Cover(beat(s), f"o{i}_beat")
        return m


def test_stream_arbiter():
    layout = data.StructLayout({"data": 3, "last": 1})
    dut = StreamArbiter(payload_shape=layout, n=3, packet=True)
    harness.check(StreamPlumbingCheck(dut, lambda d: d.i_streams, lambda d: [d.o_stream]),
                  name="stream_arbiter", modes=("prove", "cover"), depth=8)


def test_stream_broadcast():
    dut = StreamBroadcast(payload_shape=3, n=3)
    harness.check(StreamPlumbingCheck(dut, lambda d: [d.i_stream], lambda d: d.o_streams),
                  name="stream_broadcast", modes=("prove", "cover"), depth=8)
