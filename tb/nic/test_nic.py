"""Whole NICs (RTL) talking over lossy links: exactly-once RDMA writes and semaphores.

Testplan (docs/nic.md): two NICs back to back (1 port, 2 flows) and a fully
connected quad (4 NICs, 3 ports, 3 flows each), every cable a
:class:`sim.nic.Link` with fixed seeds:

* ``clean``: no loss, memory back-pressure: every byte lands once, no
  retransmission, no timeout, no duplicate;
* ``lossy``: drop / duplicate / reorder / corrupt at 5 % each (data and ACK
  frames) and PHY pauses: the memory image equals the golden one, every
  byte is written exactly once, the semaphores count exactly, a semaphore
  never fires before the writes posted before it on its flow have landed,
  the FCS-error counters equal the links' corruption count, and every frame
  the RTL emitted parses with scapy, carries ``zlib.crc32`` as its FCS and
  a well-formed ATL header;
* ``quad`` (slow): the lossy test on the quad, 260-byte payloads;
* mutant (slow): receive windows that ignore their bitmap (duplicates
  accepted) must fail ``lossy``.
"""
import os
import random
import zlib

import cocotb
import pytest
from scapy.layers.l2 import Ether

from hw.nic import Nic, RxWindow
from sim import nic as atl
from sim.rtl import runner
from sim.rtl.nic_group import NicGroup, mac_of, topology
from sim.rtl.stream import reset

from .fabric import Fabric


def workload(rng, n, flows, peer, *, msgs, payload, mem_bits, sem_prob=0.2):
    """Messages per (src, flow) and the golden image per destination.

    Each (src, flow) writes a private region of its peer's memory, so every
    byte is written by exactly one packet; flow ``f`` increments semaphore ``f``.
    """
    region = (1 << mem_bits) // (n * flows)
    plan = {}
    golden = [dict() for _ in range(n)]
    sems = [[0] * max(4, flows) for _ in range(n)]
    for i in range(n):
        for f in range(flows):
            j = peer[i][f]
            base = (i * flows + f) * region
            off = 0
            msgs_if = []
            for _ in range(msgs):
                if rng.random() < sem_prob:
                    msgs_if.append(("s", f))
                    sems[j][f] += 1
                else:
                    ln = rng.choice([1, payload, rng.randint(1, payload)])
                    if off + ln > region:
                        break
                    body = bytes(rng.getrandbits(8) for _ in range(ln))
                    msgs_if.append(("w", base + off, body))
                    for k, b in enumerate(body):
                        golden[j][base + off + k] = b
                    off += ln
            plan[(i, f)] = msgs_if
    return plan, golden, sems


async def exchange(dut, *, link, msgs, mem_ready=1.0, tx_ready=1.0, max_cycles=200_000):
    p = runner.params()
    n, ports, flows = p["n"], p["ports"], p["flows"]
    peer = topology(n, ports, flows)
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    plan, golden, want_sems = workload(rng, n, flows, peer, msgs=msgs, payload=p["payload"],
                                       mem_bits=p["mem_bits"])
    fab = Fabric(dut, n=n, ports=ports, flows=flows, peer=peer, link=link, rng=rng,
                 mem_bits=p["mem_bits"], n_sems=p["n_sems"], mem_ready=mem_ready,
                 tx_ready=tx_ready, seed=cocotb.RANDOM_SEED)
    for (i, f), ms in plan.items():
        for msg in ms:
            fab.post(i, f, msg)
    total = sum(len(g) for g in golden)
    tlog = []

    def watch(fab, last=[0] * n):
        for i in range(n):
            v = fab.counter(i, "timeouts")
            if v != last[i]:
                last[i] = v
                tlog.append((fab.cycle, i))
    if os.environ.get("NIC_DEBUG"):
        fab.hooks.append(watch)

    def done():
        return (fab.posts_idle() and sum(len(x) for x in fab.mem) >= total
                and all(fab.sems[j][:len(want_sems[j])] == want_sems[j]
                        for j in range(n)))
    end = await fab.run(done, max_cycles=max_cycles)
    if tlog:
        dut._log.info(f"timeouts at {tlog}")
        for (i, pp), frames in fab.tx_frames.items():
            for cyc, fr in frames:
                if any(abs(cyc - t) < 2000 for t, _ in tlog):
                    dut._log.info(f"{cyc} {i}.{pp} {atl.Header.unpack(fr[14:])}")
    # Keep running: late duplicates and retransmissions must change nothing.
    stop = fab.cycle + 3000
    await fab.run(lambda: fab.cycle >= stop, max_cycles=4000)

    for j in range(n):
        assert fab.mem[j] == golden[j], f"NIC {j}: memory differs from the golden image"
        multi = {a: c for a, c in fab.mem_writes[j].items() if c != 1}
        assert not multi, f"NIC {j}: bytes written more than once: {list(multi.items())[:5]}"
        assert fab.sems[j][:len(want_sems[j])] == want_sems[j], f"NIC {j}: semaphores"
    check_sem_order(fab, plan, peer, n, flows)
    # The reference model, run on the same traffic, ends in the same state.
    ref = reference_run(plan, peer, n, flows, link=link, payload=p["payload"],
                        mem_bits=p["mem_bits"], n_sems=p["n_sems"], window=p["window"])
    for j in range(n):
        assert {a: ref[j].mem[a] for a in fab.mem[j]} == fab.mem[j], f"NIC {j}: memory != sim.nic"
        assert not any(ref[j].mem[a] for a in range(len(ref[j].mem)) if a not in fab.mem[j])
        assert ref[j].sems == fab.sems[j], f"NIC {j}: semaphores != sim.nic"
        assert all(c == 1 for c in ref[j].applied.values())
    check_frames(fab, n, ports, flows)
    corrupted = sum(link.stats["corrupted"] for link in fab.links.values())
    assert sum(fab.counter(i, "rx_fcs") for i in range(n)) == corrupted
    for i in range(n):
        for name in ("rx_foreign", "rx_errors", "post_errors", "rx_runt", "rx_oversize"):
            assert fab.counter(i, name) == 0, f"NIC {i}: {name}"
    stats = {name: sum(fab.counter(i, name) for i in range(n))
             for name in ("tx_data", "tx_rtx", "tx_ack", "timeouts", "rx_dup", "rx_accept")}
    dut._log.info(f"done at cycle {end}: {stats}; links "
                  f"{ {k: sum(lk.stats[k] for lk in fab.links.values()) for k in ('frames', 'dropped', 'duplicated', 'reordered', 'corrupted')} }")
    sent = sum(len(ms) for ms in plan.values())
    assert stats["tx_data"] == sent and stats["rx_accept"] == sent
    return fab, stats


def reference_run(plan, peer, n, flows, *, link, payload, mem_bits, n_sems, window):
    """The same traffic through the reference model ``sim.nic`` (same link settings)."""
    eps = [atl.Endpoint(mac_of(i), {f: mac_of(peer[i][f]) for f in range(flows)},
                        window=window, payload=payload, mem_size=1 << mem_bits, n_sems=n_sems)
           for i in range(n)]
    links = {}
    for i in range(n):
        for j in set(peer[i]):
            links[(i, j)] = atl.Link(**link, seed=100 + 7 * i + j)
    for (i, f), ms in plan.items():
        for msg in ms:
            if msg[0] == "s":
                eps[i].post_sem(f, msg[1])
            else:
                eps[i].post_write(f, msg[1], msg[2])
    atl.Network(eps, links).run(max_time=10**8)
    return eps


def check_sem_order(fab, plan, peer, n, flows):
    """Semaphore ``f`` at the peer fires only after the earlier WRITEs of flow ``f`` landed."""
    for (i, f), ms in plan.items():
        j = peer[i][f]
        landed = {}
        for cyc, a in fab.mem_log[j]:
            landed.setdefault(a, cyc)
        fires = [cyc for cyc, k, _ in fab.sem_log[j] if k == f]
        last_write = -1
        k = 0
        for msg in ms:
            if msg[0] == "w":
                last_write = max(last_write, max(landed[msg[1] + x] for x in range(len(msg[2]))))
            else:
                assert fires[k] > last_write, f"flow {f} -> NIC {j}: SEM {k} before its writes"
                k += 1


def check_frames(fab, n, ports, flows, *, limit=150):
    """Frames as emitted by the RTL: scapy parses them, FCS = zlib, ATL header sane."""
    for (i, p), frames in fab.tx_frames.items():
        for _, frame in frames[:limit]:
            body, fcs = frame[:-4], frame[-4:]
            assert len(frame) >= 64
            assert int.from_bytes(fcs, "little") == zlib.crc32(body)
            eth = Ether(body)
            assert eth.src == mac_of(i).hex(":")
            assert eth.dst == mac_of(fab.peer[i][p]).hex(":")
            assert eth.type == atl.ETHERTYPE
            h = atl.Header.unpack(bytes(eth.payload))
            assert h is not None and h.op in (1, 2, 3, 4) and h.flow % ports == p
            if h.op == atl.OP_WRITE:
                assert 1 <= h.length
                assert len(body) >= 30 + h.length
            else:
                assert h.length == 0


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def clean(dut):
    _, st = await exchange(dut, link=dict(latency=50), msgs=40)
    assert st["tx_rtx"] == 0 and st["timeouts"] == 0 and st["rx_dup"] == 0


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def lossy(dut):
    _, st = await exchange(dut, link=dict(latency=50, drop=0.05, dup=0.05, reorder=0.05,
                                          corrupt=0.05, reorder_delay=300),
                           msgs=runner.params().get("msgs", 80), mem_ready=0.8, tx_ready=0.95)
    assert st["tx_rtx"] > 0 and st["rx_dup"] > 0


PARAMS = dict(window=8, payload=32, mem_bits=16, n_sems=4, rto=1500)
#: The quad also covers payloads longer than 255 bytes (two-byte len field).
QUAD = {**PARAMS, "payload": 260, "rto": 4000}


def group(n, ports, flows, **kw):
    return NicGroup(n=n, ports=ports, flows=flows, **{**PARAMS, **kw})


def test_two_nics():
    runner.run(group(2, 1, 2), block="nic_pair", test_module="tb.nic.test_nic",
               params=dict(n=2, ports=1, flows=2, **PARAMS))


@pytest.mark.slow
def test_quad():
    runner.run(group(4, 3, 3, payload=260, rto=4000), block="nic_quad", test_module="tb.nic.test_nic",
               testcase="lossy", params=dict(n=4, ports=3, flows=3, msgs=30, **QUAD))


class AcceptDuplicates(RxWindow):
    """Mutant window: the bitmap is ignored, so duplicates inside the window are applied."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        d = (self.i_stream.payload - self.expected)[:self._psn_bits]
        m.d.comb += self.o_stream.payload.accept.eq(~d[-1] & (d < self._w))
        return m


class MutantNic(Nic):
    def __init__(self, **kw):
        super().__init__(**kw)
        for lane in self.lanes:
            for w in lane.windows:
                w._MustUse__silence = True  # replaced below, never elaborated
            lane.windows = [AcceptDuplicates(window=w._w, psn_bits=w._psn_bits)
                            for w in lane.windows]


@pytest.mark.slow
def test_mutant_duplicates_accepted_is_caught():
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(group(2, 1, 2, nic_cls=MutantNic), block="nic_pair_mutant",
                   test_module="tb.nic.test_nic", testcase="lossy",
                   params=dict(n=2, ports=1, flows=2, msgs=40, **PARAMS))
