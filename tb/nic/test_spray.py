# amaranth: UnusedElaboratable=no
"""One flow sprayed over two ports, with a port down for part of the run (docs/nic.md).

Two NICs back to back (2 ports, 2 NIC flows), each behind a
:class:`hw.nic.sprayer.Sprayer` (one logical flow over both ports):

* ``port_down``: 60 messages each way (WRITEs of 1..32 bytes to private
  regions, 20 % doorbells), links with 3 % drops; from cycle 300 to 1500 port 1
  is down both ways (the link drops every frame, ``port_up`` is low). Every byte
  lands exactly once and equals the golden image, semaphore 0 counts two
  increments per doorbell (one per port; the copies for the down port are owed
  and sent when it is back, nothing owed at the end); while port 1 is down no WRITE
  message is placed on it and port 0 takes more; frames sent on the down port
  were lost and recovered (retransmissions); the per-port frame counters equal
  the frames seen on each cable.
* ``test_sprayer_parameters``: invalid parameters raise naming the parameter.
"""
import random

import cocotb
import pytest
from cocotb.triggers import RisingEdge

from hw.nic.sprayer import Sprayer
from sim.rtl import runner
from sim.rtl.nic_group import NicGroup
from sim.rtl.stream import reset

from .fabric import Fabric

PARAMS = dict(window=8, payload=32, mem_bits=16, n_sems=4, rto=1500)
DOWN = (300, 1500)


@cocotb.test(timeout_time=300, timeout_unit="ms")
async def port_down(dut):
    n, ports = 2, 2
    await reset(dut)
    rng = random.Random(5)
    peer = [[1 - i] * ports for i in range(n)]
    fab = Fabric(dut, n=n, ports=ports, flows=1, peer=peer, link=dict(latency=40, drop=0.03),
                 rng=rng, mem_bits=PARAMS["mem_bits"], n_sems=PARAMS["n_sems"], seed=3)
    golden = [dict() for _ in range(n)]
    bells = [0] * n
    for i in range(n):
        j, off = 1 - i, i * 0x4000
        for _ in range(60):
            if rng.random() < 0.2:
                fab.post(i, 0, ("s", 0))
                bells[j] += 1
            else:
                body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 32)))
                fab.post(i, 0, ("w", off, body))
                for k, b in enumerate(body):
                    golden[j][off + k] = b
                off += len(body)
    seen = {"up": 0b11}

    async def link_status():
        # The hooks run in the read-only phase: the link status is written here.
        while True:
            for i in range(n):
                getattr(dut, f"n{i}_port_up").value = seen["up"]
            await RisingEdge(dut.clk)
    cocotb.start_soon(link_status())

    def port_msgs(i):
        v = int(getattr(dut, f"n{i}_port_msgs").value)
        return [v >> (16 * p) & 0xFFFF for p in range(ports)]

    def window(fab):
        if fab.cycle == DOWN[0]:
            seen["up"] = 0b01
            for i in range(n):
                fab.links[i, 1].drop = 1.0
        if fab.cycle == DOWN[0] + 2:
            seen["start"] = [port_msgs(i) for i in range(n)]
        if fab.cycle == DOWN[1]:
            seen["end"] = [port_msgs(i) for i in range(n)]
            seen["up"] = 0b11
            for i in range(n):
                fab.links[i, 1].drop = 0.03
    fab.hooks.append(window)
    total = sum(len(g) for g in golden)

    def done():
        return (fab.posts_idle() and sum(len(x) for x in fab.mem) >= total
                and all(fab.sems[j][0] == 2 * bells[j] for j in range(n)))
    end = await fab.run(done, max_cycles=60_000)
    stop = fab.cycle + 2000
    await fab.run(lambda: fab.cycle >= stop, max_cycles=3000)
    assert end > DOWN[1], f"finished at {end}, before the port came back"
    for j in range(n):
        assert fab.mem[j] == golden[j], f"NIC {j}: memory differs from the golden image"
        multi = {a: c for a, c in fab.mem_writes[j].items() if c != 1}
        assert not multi, f"NIC {j}: bytes written more than once: {list(multi.items())[:5]}"
        assert fab.sems[j][0] == 2 * bells[j], (j, fab.sems[j], bells[j])
    for i in range(n):
        s0, s1 = seen["start"][i], seen["end"][i]
        assert s1[1] == s0[1], f"NIC {i}: WRITE messages placed on port 1 while it was down"
        assert s1[0] > s0[0], f"NIC {i}: no traffic moved to port 0"
        lk = fab.links[i, 1]
        assert lk.stats["dropped"] > 0
        for p in range(ports):
            tx = int(getattr(dut, f"n{i}_port_tx_frames").value) >> (16 * p) & 0xFFFF
            assert tx == len(fab.tx_frames[i, p]), (i, p, tx)
            st = fab.links[i, p].stats
            rx = int(getattr(dut, f"n{1 - i}_port_rx_frames").value) >> (16 * p) & 0xFFFF
            assert rx == st["frames"] - st["dropped"] + st["duplicated"], (i, p, rx, st)
        for name in ("rx_foreign", "rx_errors", "post_errors", "rx_runt", "rx_oversize",
                     "spray_owed", "spray_errors"):
            assert fab.counter(i, name) == 0, f"NIC {i}: {name}"
    rtx = sum(fab.counter(i, "tx_rtx") for i in range(n))
    assert rtx > 0
    dut._log.info(f"done at {end}; port msgs {[port_msgs(i) for i in range(n)]}; "
                  f"window {seen}; rtx {rtx}; timeouts "
                  f"{[fab.counter(i, 'timeouts') for i in range(n)]}")


def test_spray_port_down():
    runner.run(NicGroup(n=2, ports=2, flows=2, spray=True, **PARAMS), block="nic_spray",
               test_module="tb.nic.test_spray", testcase="port_down",
               params=dict(n=2, ports=2, flows=2, **PARAMS), sim="icarus")


def test_sprayer_parameters():
    for kw, name in ((dict(groups=0), "groups"), (dict(width=9), "width"),
                     (dict(n_sems=0), "n_sems"),
                     (dict(groups=16, width=8), "groups \\* width")):
        with pytest.raises(ValueError, match=name):
            Sprayer(**kw)
