"""Formal checks of the NoC router and its QoS switch arbiter.

Testplan (docs/noc.md):

* ``test_router_safety`` (k-induction): the router sits between an upstream
  model that respects credits and a downstream model that returns a credit
  only for a flit it holds, on every port and VC. Proved:
  - credit conservation on every output VC (router credits + flit on the
    link + flits held downstream == ``vc_depth``), so a credit counter never
    exceeds the buffer depth and the downstream buffer never overflows;
  - credit conservation on every input VC (upstream credits + FIFO level +
    credit on the way back == ``vc_depth``), so no input FIFO is ever written
    when full: no flit is lost on entry;
  - no duplication: an output never sends a flit it has already sent (the
    per-branch ``done`` bits), and every output flit is the owning FIFO's head;
  - no loss: a routed flit leaves its FIFO only when every output of its set
    has sent it; a flit is only discarded by the malformed-packet path;
  - ownership: every owned output VC belongs to exactly the routed input VC
    that lists it, and routes never name a port without a neighbour;
  - covers: a multicast fork, a same-cycle release/re-allocation, a
    look-ahead allocation (the packet behind a leaving tail), a credit
    counter at zero.
* ``test_router_well_formed`` (BMC): with well-formed packets on every input,
  nothing is ever dropped.
* ``test_qos_arbiter`` (BMC): bounded wait. Class 0 waits at most one grant;
  a bulk requester that keeps requesting waits at most
  ``(n - 2) * (burst + 1) + burst`` grants; covers reach both bounds' worst case.
* ``test_mutant_*``: a router whose credit counters start one too high fails
  the credit proof.
* ``test_address_router`` (k-induction + cover): the chip NoC's entry point
  (:class:`hw.noc.AddressRouter`) with free packets (stream rules assumed) and a
  free ``ready``: the stream rules hold on its output; a packet leaves only for a
  key of the table, towards the node the table names (a checker-side table, not
  the DUT's), with its word write unchanged; a bad key is taken at once and
  counted (``errors`` + 1 per bad beat, saturating, never decreasing); covers: a
  forwarded packet under back-pressure, a dropped one, two drops in a row.
  ``test_mutant_address_router_fails``: a router whose table has one key more
  than the specification fails the proof.
"""
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal
import pytest

from formal import harness
from formal.properties import check_invariants
from formal.properties import check_source, drive_source
from hw.noc import PORTS, AddressRouter, QosArbiter, Router
from hw.noc.packet import header_layout, route_mask

# A corner of a 2x1 mesh: two live ports (local, east), which still has
# unicast, multicast forks (local + east), contention and both VCs.
# vc_depth = max_packet_flits + 1 is the least that allows re-allocating an
# output VC in its release cycle.
SMALL = dict(kx=2, ky=1, x=0, y=0, vcs=2, data_width=6, vc_depth=3, max_packet_flits=2,
             qos_burst=1)


class RouterCheck(Elaboratable):
    def __init__(self, dut, *, well_formed=False):
        self.dut = dut
        self.well_formed = well_formed

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        V, D = dut.vcs, dut.vc_depth
        exists = dut.existing_ports()
        check_invariants(m, dut)
        hdr_layout = header_layout(dut.kx, dut.ky)

        for p in range(PORTS):
            link = dut.i_links[p]
            if not exists >> p & 1:
                # Tied off in a mesh (constant zero): no neighbour, stays empty.
                for v in range(V):
                    m.d.comb += Assert((dut.fifos[p][v].level == 0) & ~dut.routed[p][v],
                                       f"dead_port_idle_{p}_{v}")
                continue
            m.d.comb += [link.valid.eq(AnySeq(1)), link.vc.eq(AnySeq(len(link.vc))),
                         link.flit.eq(AnySeq(len(link.flit.as_value())))]
            m.d.comb += Assume(link.vc < V)
            for v in range(V):
                # Upstream model: sends on VC v only with a credit.
                up = Signal(range(D + 1), init=D, name=f"up_cred_{p}_{v}")
                send = link.valid & (link.vc == v)
                m.d.comb += Assume(~send | (up != 0))
                m.d.sync += up.eq(up - send + link.credit[v])
                fifo = dut.fifos[p][v]
                m.d.comb += [
                    Assert(up + fifo.level + link.credit[v] == D, f"in_credit_{p}_{v}"),
                    Assert(~fifo.i_stream.valid | fifo.i_stream.ready, f"no_overflow_{p}_{v}"),
                ]
                if self.well_formed:
                    # Packets: head .. tail, at most max_packet_flits, a routable header.
                    in_pkt = Signal(name=f"wf_in_pkt_{p}_{v}")
                    hdr = hdr_layout(link.flit.data[:hdr_layout.size])
                    rmask = route_mask(hdr, in_port=p, x=dut.x, y=dut.y, kx=dut.kx, ky=dut.ky)
                    with m.If(send):
                        m.d.comb += Assume(link.flit.head == ~in_pkt)
                        with m.If(link.flit.head):
                            m.d.comb += [Assume(rmask.any()), Assume(~link.flit.tail)]
                        with m.Else():
                            # max_packet_flits == 2: the flit after the head is the tail.
                            m.d.comb += Assume(link.flit.tail)
                        m.d.sync += in_pkt.eq(~link.flit.tail)
                    m.d.comb += Assert(~dut.drop_start[p][v], f"no_drop_{p}_{v}")

        for o in range(PORTS):
            link = dut.o_links[o]
            if not exists >> o & 1:
                m.d.comb += Assert(~link.valid, f"no_dead_port_{o}")
                continue
            for v in range(V):
                # Downstream model: holds what it received, returns credits freely.
                held = Signal(range(D + 1), name=f"held_{o}_{v}")
                ret = Signal(name=f"ret_{o}_{v}")
                m.d.comb += [ret.eq(AnySeq(1)), Assume(~ret | (held != 0)),
                             link.credit[v].eq(ret)]
                arrive = link.valid & (link.vc == v)
                m.d.sync += held.eq(held + arrive - ret)
                m.d.comb += Assert(dut.credits[o][v] + arrive + held == D, f"out_credit_{o}_{v}")

        multicast = Signal()
        reuse = Signal()
        for p in range(PORTS):
            if not exists >> p & 1:
                continue
            for v in range(V):
                sent_now, done, omask = dut.sent_now[p][v], dut.done[p][v], dut.omask[p][v]
                m.d.comb += [
                    Assert((sent_now & done) == 0, f"no_dup_{p}_{v}"),
                    Assert((sent_now & ~omask) == 0, f"sent_in_mask_{p}_{v}"),
                    Assert((done & ~omask) == 0, f"done_in_mask_{p}_{v}"),
                    Assert(~(dut.pop[p][v] & dut.routed[p][v] & omask.any())
                           | ((omask & ~done & ~sent_now) == 0), f"no_loss_{p}_{v}"),
                ]
                with m.If(dut.pop[p][v] & (omask & (omask - 1)).any() & (done == 0)):
                    m.d.comb += multicast.eq(1)
        for o in range(PORTS):
            if not exists >> o & 1:
                continue
            for v in range(V):
                # An output VC changes owner without a free cycle in between.
                prev_busy = Signal(name=f"prev_busy_{o}_{v}")
                prev_owner = Signal(range(PORTS), name=f"prev_owner_{o}_{v}")
                m.d.sync += [prev_busy.eq(dut.busy[o][v]), prev_owner.eq(dut.owner[o][v])]
                with m.If(prev_busy & dut.busy[o][v] & (prev_owner != dut.owner[o][v])):
                    m.d.comb += reuse.eq(1)
        lookahead = Signal()
        for p in range(PORTS):
            for v in range(V):
                with m.If(dut.look[p][v] & dut.va_arbiters[v].valid
                          & (dut.va_arbiters[v].index == p)):
                    m.d.comb += lookahead.eq(1)
        m.d.comb += [
            Cover(lookahead, "lookahead_allocation"),
            Cover(multicast, "multicast_fork"),
            Cover(reuse, "release_and_reallocate"),
            Cover(dut.credits[2][1] == 0, "credits_exhausted"),
        ]
        return m


def test_router_safety():
    harness.check(RouterCheck(Router(**SMALL)), name="noc_router", modes=("prove", "cover"),
                  depth=8)


@pytest.mark.slow
def test_router_well_formed():
    harness.check(RouterCheck(Router(**SMALL), well_formed=True), name="noc_router_wf",
                  modes=("bmc",), depth=8)


class QosCheck(Elaboratable):
    def __init__(self, n, burst):
        self.n, self.burst = n, burst

    def elaborate(self, platform):
        m = Module()
        n, burst = self.n, self.burst
        m.submodules.dut = dut = QosArbiter(n=n, burst=burst)
        check_invariants(m, dut)
        m.d.comb += [dut.requests.eq(AnySeq(n)), dut.fire.eq(AnySeq(1))]
        m.d.comb += [
            Assert(dut.valid == dut.requests.any(), "work_conserving"),
            Assert(~dut.valid | dut.requests.bit_select(dut.index, 1), "granted_requested"),
        ]
        # Requester k keeps requesting until served; count grants to others.
        k = Signal(range(n))
        m.d.comb += k.eq(AnyConst(range(n)))
        served = dut.fire & dut.valid & (dut.index == k)
        prev_req, prev_served = Signal(), Signal()
        m.d.sync += [prev_req.eq(dut.requests.bit_select(k, 1)), prev_served.eq(served)]
        with m.If(prev_req & ~prev_served):
            m.d.comb += Assume(dut.requests.bit_select(k, 1))
        bound = (n - 2) * (burst + 1) + burst
        waited = Signal(range(bound + 2))
        with m.If(~dut.requests.bit_select(k, 1) | served):
            m.d.sync += waited.eq(0)
        with m.Elif(dut.fire & dut.valid):
            m.d.sync += waited.eq(waited + 1)
        m.d.comb += [
            Assert(waited <= bound, "bulk_bounded_wait"),
            Assert((k != 0) | (waited <= 1), "control_waits_at_most_one"),
            Cover((k != 0) & (waited == bound), "bulk_worst_wait"),
            Cover((k == 0) & (waited == 1), "control_worst_wait"),
        ]
        return m


def test_qos_arbiter():
    n, burst = 3, 2
    bound = (n - 2) * (burst + 1) + burst
    harness.check(QosCheck(n, burst), name="noc_qos", modes=("bmc", "cover"),
                  depth=bound + 8)


class ExtraCreditRouter(Router):
    """Mutant: credit counters start one above the downstream buffer depth."""

    def __init__(self, **kw):
        super().__init__(**kw)
        d = self.vc_depth
        self.credits = [[Signal(range(d + 2), init=d + 1, name=f"cred_{o}_{v}")
                         for v in range(self.vcs)] for o in range(PORTS)]


def test_mutant_router_credits_fail():
    with pytest.raises(AssertionError, match="prove"):
        harness.check(RouterCheck(ExtraCreditRouter(**SMALL)), name="noc_router_mutant",
                      modes=("prove",), depth=8)


ROUTES = {0: 0, 1: 1, 3: 2, 6: 3, 7: 1}
AR = dict(addr_width=6, word_bits=8, key_shift=2, key_bits=3, kx=2, ky=2)


class AddressRouterCheck(Elaboratable):
    def __init__(self, dut, routes):
        self.dut, self.routes = dut, routes

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        i, o = dut.i_stream, dut.o_stream
        drive_source(m, i, name="i")
        m.d.comb += o.ready.eq(AnySeq(1))
        check_source(m, o, name="o")
        key = i.payload.addr[dut.key_shift:dut.key_shift + dut.key_bits]
        good = Signal()
        want_x, want_y = Signal(1), Signal(1)
        for k, node in self.routes.items():
            with m.If(key == k):
                m.d.comb += [good.eq(1), want_x.eq(node % 2), want_y.eq(node // 2)]
        m.d.comb += [
            Assert(o.valid == (i.valid & good), "forward_iff_good"),
            Assert(~o.valid | ((o.payload.x0 == want_x) & (o.payload.x1 == want_x)
                               & (o.payload.y0 == want_y) & (o.payload.y1 == want_y)),
                   "destination"),
            Assert(~o.valid | (o.payload.data == i.payload.as_value()), "data_unchanged"),
            Assert(~o.valid | o.payload.last, "single_beat"),
            Assert(~(i.valid & ~good) | i.ready, "bad_taken_at_once"),
            Assert(~(i.valid & good) | (i.ready == o.ready), "good_waits_for_mesh"),
        ]
        prev = Signal(16)
        prev_bad = Signal()
        m.d.sync += [prev.eq(dut.errors), prev_bad.eq(i.valid & ~good)]
        m.d.comb += Assert(dut.errors == prev + (prev_bad & (prev != 0xFFFF)), "errors_count")
        drops = Signal(2)
        with m.If(i.valid & ~good):
            m.d.sync += drops.eq(drops + (drops != 3))
        with m.Else():
            m.d.sync += drops.eq(0)
        m.d.comb += [
            Cover(o.valid & ~o.ready),
            Cover(o.valid & o.ready & (o.payload.x0 == 1) & (o.payload.y0 == 1)),
            Cover(drops == 2),
        ]
        return m


def test_address_router():
    harness.check(AddressRouterCheck(AddressRouter(**AR, dests=ROUTES), ROUTES),
                  name="noc_address_router", modes=("prove", "cover"), depth=6)


def test_mutant_address_router_fails():
    # The table routes key 2, which the specification does not have.
    dut = AddressRouter(**AR, dests={**ROUTES, 2: 0})
    with pytest.raises(AssertionError, match="prove"):
        harness.check(AddressRouterCheck(dut, ROUTES), name="noc_address_router_mutant",
                      modes=("prove",), depth=6)
