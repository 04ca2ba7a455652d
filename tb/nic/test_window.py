"""RxWindow against ``sim.nic.RxWindowModel``: verdicts, ACK and SACK, bit for bit.

Testplan (docs/nic.md): the PSN stream a window-limited sender produces over a
link that drops, duplicates and reorders (plus stale duplicates from far
behind and rogue PSNs beyond the window), under random stalls and
back-pressure; every verdict, ``expected`` and ``sack`` compared with the
model after every packet. Windows 1 and 32 (5 is ``slow``); wrap-around
is proved formally (``formal/test_nic.py``).
"""
import random

import cocotb
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from hw.nic import RxWindow
from sim.nic import RxWindowModel
from sim.rtl import runner
from sim.rtl.stream import reset


def psn_trace(rng, window, n, bits=16):
    """PSNs arriving at a receiver: sender keeps < window outstanding, link is lossy."""
    mod = 1 << bits
    base, nxt, acked = 0, 0, set()
    out = []
    inflight = []
    while len(out) < n:
        if nxt - base < window and rng.random() < 0.6:
            inflight.append(nxt)
            nxt += 1
        elif inflight:
            p = inflight.pop(rng.randrange(len(inflight)) if rng.random() < 0.3 else 0)
            r = rng.random()
            if r < 0.1:
                continue  # dropped: the sender will resend it
            out.append(p % mod)
            if r < 0.2:
                out.append(p % mod)  # duplicated
            acked.add(p)
            while base in acked:
                base += 1
            # Unacked below the head get resent eventually.
            if rng.random() < 0.2:
                for q in range(base, nxt):
                    if q not in acked and q not in inflight:
                        inflight.append(q)
        if rng.random() < 0.02:
            out.append((base - rng.randint(1, 1000)) % mod)  # stale duplicate
        if rng.random() < 0.01:
            out.append((base + window + rng.randint(0, 100)) % mod)  # rogue, outside
    return out


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def random_psns(dut):
    p = runner.params()
    w = p["window"]
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    model = RxWindowModel(window=w)
    trace = psn_trace(rng, w, 3000)  # > 2**16 PSNs would be slow; wrap is in formal
    accepted = 0
    dut.o_stream__ready.value = 0
    for k, psn in enumerate(trace):
        while rng.random() < 0.2:
            dut.i_stream__valid.value = 0
            await RisingEdge(dut.clk)
        dut.i_stream__valid.value = 1
        dut.i_stream__payload.value = psn
        while True:
            dut.o_stream__ready.value = int(rng.random() < 0.7)
            await ReadOnly()
            # Registers hold the state after the previous packet.
            assert int(dut.expected.value) == model.expected, f"packet {k}: expected"
            assert int(dut.sack.value) == model.sack, f"packet {k}: sack"
            if int(dut.o_stream__ready.value):
                break
            await RisingEdge(dut.clk)
        v = int(dut.o_stream__payload.value)
        got = (bool(v >> 16 & 1), bool(v >> 17 & 1), bool(v >> 18 & 1), v >> 19)
        want = model.step(psn)
        assert (v & 0xFFFF) == psn
        assert got == want, f"packet {k} psn {psn}: verdict {got} != model {want}"
        accepted += want[0]
        await RisingEdge(dut.clk)
    dut.i_stream__valid.value = 0
    await ReadOnly()
    assert int(dut.expected.value) == model.expected
    # Every PSN below the final cumulative ACK was accepted exactly once.
    assert accepted == model.expected + bin(model.bits).count("1")


@pytest.mark.parametrize("window", [1, pytest.param(5, marks=pytest.mark.slow), 32])
def test_rx_window(window):
    runner.run(RxWindow(window=window), block="nic_rx_window", test_module="tb.nic.test_window",
               params={"window": window})
