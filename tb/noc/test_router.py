# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""Single router: delivery, multicast, back-pressure, QoS, fairness, errors.

Testplan (docs/noc.md): a router at the centre of a 3x3 mesh so all five
ports are live, driven by credit-based link models (``tb/noc/link.py``):

* ``random_traffic``: random unicast/multicast/malformed packets on every
  input and VC, under four stall/back-pressure settings; every packet goes
  to exactly the ports of the golden ``route_mask``, intact, contiguous per
  VC, in order per (input, output, VC); malformed ones are dropped and counted;
  credits never overflow (the sink models fail on a flit without credit);
* ``zero_load``: head latency is exactly ``HOP_CYCLES``; a 5-way multicast
  leaves on all outputs in the same cycle;
* ``qos_priority``: control (VC 0) packets cross an output saturated by bulk
  with at most two cycles of extra latency, and bulk is not starved by a
  saturating control stream;
* ``fairness``: four inputs saturating one output get equal shares;
* ``orphan_flits``: body flits without a head are dropped and counted.
"""
import os
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge

from hw.noc import Mesh, NetworkInterface, QosArbiter, Router
from sim.noc import (EAST, HOP_CYCLES, LOCAL, NORTH, PORTS, SOUTH, WEST, pack_header,
                     route_mask, unpack_flit)
from sim.rtl import runner
from sim.rtl.stream import reset
from tb.noc.link import LinkSink, LinkSource, run_links

PARAMS = dict(kx=3, ky=3, x=1, y=1, vcs=2, data_width=16, vc_depth=8, max_packet_flits=4,
              qos_burst=2)


class Bench:
    def __init__(self, dut, rng, *, valid_prob=1.0, ready_prob=1.0):
        p = runner.params()
        self.p = p
        self.dut = dut
        self.rng = rng
        kw = dict(vcs=p["vcs"], depth=p["vc_depth"], data_width=p["data_width"])
        self.sources = [LinkSource(dut, f"i_links__{i}", valid_prob=valid_prob, rng=rng, **kw)
                        for i in range(PORTS)]
        self.sinks = [LinkSink(dut, f"o_links__{o}", ready_prob=ready_prob, rng=rng, **kw)
                      for o in range(PORTS)]
        self.state = {"cycle": 0}
        self.packets = {}  # tag of first body flit -> packet record
        self.next_tag = 1
        self.seq = 0

    def start(self):
        self.task = cocotb.start_soon(run_links(self.dut.clk, self.sources, self.sinks,
                                                self.state))

    def stop(self):
        self.task.cancel()

    def packet(self, in_port, vc, rect, nbody, src=(0, 0)):
        p = self.p
        hdr = dict(x0=rect[0], x1=rect[1], y0=rect[2], y1=rect[3], src_x=src[0], src_y=src[1])
        head = pack_header(p["kx"], p["ky"], **hdr)
        tags = []
        for _ in range(nbody):
            tags.append(self.next_tag)
            self.next_tag = self.next_tag % ((1 << p["data_width"]) - 1) + 1
        flits = [(head, 1, 0, None)] + [(t, 0, i == nbody - 1, t) for i, t in enumerate(tags)]
        mask = route_mask(hdr, in_port=in_port, x=p["x"], y=p["y"], kx=p["kx"], ky=p["ky"])
        rec = dict(in_port=in_port, vc=vc, head=head, tags=tags, mask=mask, seq=self.seq,
                   got=set())
        self.seq += 1
        self.packets[tags[0]] = rec
        self.sources[in_port].send_packet(vc, flits)
        return rec

    def random_rect(self):
        p = self.p
        r = self.rng.random()
        if r < 0.05:  # malformed: x0 > x1 or off the mesh
            return (2, 1, 0, 2) if self.rng.random() < 0.5 else (0, 3, 1, 1)
        if r < 0.25:  # multicast rectangle
            x0 = self.rng.randrange(p["kx"])
            y0 = self.rng.randrange(p["ky"])
            return (x0, self.rng.randrange(x0, p["kx"]), y0, self.rng.randrange(y0, p["ky"]))
        x, y = self.rng.randrange(p["kx"]), self.rng.randrange(p["ky"])
        return (x, x, y, y)

    async def drain(self, max_cycles=20_000):
        """Wait until every expected flit has left the router (bounded: no deadlock)."""
        want = sum(bin(r["mask"]).count("1") * (len(r["tags"]) + 1)
                   for r in self.packets.values())
        for _ in range(max_cycles):
            if not any(s.pending() for s in self.sources) and \
               sum(len(s.received) for s in self.sinks) >= want:
                break
            await RisingEdge(self.dut.clk)
        await ClockCycles(self.dut.clk, 10)

    def check(self):
        """Reassemble every output's flits per VC and compare with the golden routes."""
        last_seq = {}
        for o, sink in enumerate(self.sinks):
            current = [None] * self.p["vcs"]
            for cycle, v, f in sink.received:
                data, head, tail = unpack_flit(self.p["data_width"], f)
                if head:
                    assert current[v] is None, f"out {o} vc {v}: head inside a packet"
                    current[v] = [data]
                    continue
                assert current[v] is not None, f"out {o} vc {v}: body flit without head"
                current[v].append(data)
                if tail:
                    flits = current[v]
                    current[v] = None
                    rec = self.packets.get(flits[1])
                    assert rec is not None, f"out {o}: unknown packet {flits}"
                    assert flits == [rec["head"]] + rec["tags"], f"out {o}: corrupted {flits}"
                    assert rec["vc"] == v, f"out {o}: packet changed VC"
                    assert rec["mask"] >> o & 1, f"packet {rec} misrouted to port {o}"
                    assert o not in rec["got"], f"packet {rec} duplicated on port {o}"
                    rec["got"].add(o)
                    key = (rec["in_port"], o, v)
                    assert last_seq.get(key, -1) < rec["seq"], f"reordered on {key}"
                    last_seq[key] = rec["seq"]
            assert all(c is None for c in current), \
                f"out {o}: truncated packet {current} {[self.packets.get(c[1]) for c in current if c and len(c) > 1]}"
        dropped = 0
        for rec in self.packets.values():
            want = {o for o in range(PORTS) if rec["mask"] >> o & 1}
            assert rec["got"] == want, f"packet {rec}: delivered to {rec['got']}, want {want}"
            dropped += rec["mask"] == 0
        return dropped


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def random_traffic(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    p = runner.params()
    total_dropped = 0
    npackets = int(os.environ.get("NOC_PACKETS", "250"))
    for valid_prob, ready_prob in [(1.0, 1.0), (0.7, 0.5), (1.0, 0.2), (0.3, 0.9)]:
        b = Bench(dut, rng, valid_prob=valid_prob, ready_prob=ready_prob)
        b.start()
        for _ in range(npackets):
            b.packet(rng.randrange(PORTS), rng.randrange(p["vcs"]), b.random_rect(),
                     rng.randrange(1, p["max_packet_flits"]))
        await b.drain()
        b.stop()
        total_dropped += b.check()
        await RisingEdge(dut.clk)
    assert total_dropped > 0, "no malformed packet was generated"
    assert int(dut.errors.value) == total_dropped, \
        f"errors {int(dut.errors.value)} != dropped {total_dropped}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def zero_load(dut):
    await reset(dut)
    b = Bench(dut, random.Random(0))
    b.start()
    rec = b.packet(LOCAL, 1, (2, 2, 1, 1), 3)
    await b.drain()
    sent = b.sources[LOCAL].sent_log[0][0]
    arrived = b.sinks[EAST].arrivals[0][0]
    assert arrived - sent == HOP_CYCLES, f"head latency {arrived - sent}, want {HOP_CYCLES}"
    assert [c for c, _, _ in b.sinks[EAST].arrivals] == list(range(arrived, arrived + 4)), \
        "body flits do not follow one per cycle"
    # A multicast to the whole 3x3 mesh from the local port forks to all five outputs.
    rec = b.packet(LOCAL, 0, (0, 2, 0, 2), 2)
    await b.drain()
    b.stop()
    assert rec["mask"] == 0b11111
    cycles = {b.sinks[o].arrivals[-1][0] for o in range(PORTS)}
    assert len(cycles) == 1, f"multicast tail left in different cycles {cycles}"
    b.check()


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def qos_priority(dut):
    await reset(dut)
    p = runner.params()
    b = Bench(dut, random.Random(2))
    b.start()
    # Bulk (VC 1) from W, E and N saturates the south output...
    for _ in range(60):
        for port in (WEST, EAST, NORTH):
            b.packet(port, 1, (1, 1, 2, 2), p["max_packet_flits"] - 1)
    await ClockCycles(dut.clk, 40)
    # ...while control packets (VC 0) from the local port cross it.
    lat = []
    for _ in range(8):
        n0 = len(b.sources[LOCAL].sent_log)
        rec = b.packet(LOCAL, 0, (1, 1, 2, 2), 1)
        await ClockCycles(dut.clk, 30)
        sent = b.sources[LOCAL].sent_log[n0][0]
        got = [c for c, v, f in b.sinks[SOUTH].arrivals
               if v == 0 and unpack_flit(p["data_width"], f)[0] == rec["tags"][0]][0]
        lat.append(got - sent)
        await ClockCycles(dut.clk, 7)
    assert max(lat) <= HOP_CYCLES + 1 + 2, f"control latency under bulk load {lat}"
    await b.drain()
    # A saturating control stream must not starve bulk (qos_burst bound).
    for _ in range(40):
        b.packet(WEST, 0, (1, 1, 2, 2), p["max_packet_flits"] - 1)
        b.packet(NORTH, 1, (1, 1, 2, 2), p["max_packet_flits"] - 1)
    start = b.state["cycle"]
    await ClockCycles(dut.clk, 120)
    window = [v for c, v, _ in b.sinks[SOUTH].arrivals if c > start + 20]
    share = window.count(1) / len(window)
    assert share >= 1 / (p["qos_burst"] + 1) - 0.05, f"bulk share {share:.2f} under control load"
    await b.drain()
    b.stop()
    b.check()


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def fairness(dut):
    await reset(dut)
    p = runner.params()
    b = Bench(dut, random.Random(3))
    b.start()
    ports = (LOCAL, WEST, EAST, NORTH)
    for _ in range(50):
        for port in ports:
            b.packet(port, 1, (1, 1, 2, 2), p["max_packet_flits"] - 1)
    await ClockCycles(dut.clk, 300)
    counts = {port: 0 for port in ports}
    for c, v, f in b.sinks[SOUTH].arrivals:
        data, head, _ = unpack_flit(p["data_width"], f)
        if not head and data in b.packets:
            counts[b.packets[data]["in_port"]] += 1
    n = sum(counts.values())
    assert all(abs(c / n - 1 / 4) < 0.05 for c in counts.values()), f"unfair shares {counts}"
    cycles = [c for c, _, _ in b.sinks[SOUTH].arrivals if 50 < c < 290]
    assert len(cycles) >= 0.95 * 240, f"output only {len(cycles)} flits in 240 cycles"
    await b.drain()
    b.stop()
    b.check()


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def orphan_flits(dut):
    await reset(dut)
    b = Bench(dut, random.Random(4))
    b.start()
    before = int(dut.errors.value)
    b.sources[NORTH].send_packet(1, [(7, 0, 0, None), (8, 0, 1, None)])  # no head
    b.sources[NORTH].send_packet(1, [(9, 0, 1, None)])                    # lone tail
    rec = b.packet(NORTH, 1, (1, 1, 2, 2), 2)                             # then a good one
    await b.drain()
    b.stop()
    b.check()
    assert rec["got"] == {SOUTH}
    assert int(dut.errors.value) - before == 2


def test_router():
    runner.run(Router(**PARAMS), block="noc_router", test_module="tb.noc.test_router",
               params=PARAMS)


def test_bad_parameters_are_named():
    base = dict(PARAMS)
    for name, value, exc in [("vcs", 1, ValueError), ("x", 3, ValueError),
                             ("data_width", 4, ValueError), ("max_packet_flits", 9, ValueError),
                             ("vc_depth", "8", TypeError)]:
        kw = dict(base, **{name: value})
        with pytest.raises(exc, match=name):
            Router(**kw)
    with pytest.raises(ValueError, match="y"):
        NetworkInterface(kx=2, ky=2, x=0, y=2)
    with pytest.raises(ValueError, match="qos_burst"):
        Mesh(kx=2, ky=2, qos_burst=0)
    with pytest.raises(ValueError, match="n"):
        QosArbiter(n=1, burst=1)


class ExtraCreditRouter(Router):
    """Mutant: credit counters start one above the downstream buffer depth."""

    def __init__(self, **kw):
        from amaranth.hdl import Signal
        super().__init__(**kw)
        d = self.vc_depth
        self.credits = [[Signal(range(d + 2), init=d + 1, name=f"cred_{o}_{v}")
                         for v in range(self.vcs)] for o in range(PORTS)]


def test_mutant_router_is_caught():
    """The testbench must be able to fail: one extra credit overflows a sink buffer."""
    sim = "icarus" if "icarus" in runner.simulators() else "verilator"
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(ExtraCreditRouter(**PARAMS), block="noc_router_mutant", sim=sim,
                   test_module="tb.noc.test_router", testcase="random_traffic",
                   params=PARAMS, extra_env={"NOC_PACKETS": "60"})
