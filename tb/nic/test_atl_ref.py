"""Pure-Python checks of the ATL reference model (``sim/nic.py``).

Testplan (docs/nic.md): framing against scapy and zlib, the FCS residue
and runt/oversize/bad-FCS classification; header round trip; two and four
(fully connected) endpoints over links that drop, duplicate, reorder and
corrupt frames, with memory equal to the golden writes, semaphores exact and
every packet applied exactly once, across PSN wrap-around; goodput at 1 %
loss >= 90 % of the loss-free figure, and go-back-N measurably worse.
"""
import random
import zlib

import pytest
from scapy.layers.l2 import Ether

from sim import nic as atl

MACS = [bytes.fromhex(f"02000000000{i + 1}") for i in range(4)]


def test_frame_matches_scapy_and_zlib():
    rng = random.Random(1)
    for n in [0, 1, 45, 46, 47, 100, 300]:
        payload = bytes(rng.getrandbits(8) for _ in range(n))
        frame = atl.eth_frame(MACS[1], MACS[0], payload)
        assert len(frame) == max(64, 18 + n)
        e = Ether(frame[:-4])
        assert e.dst == "02:00:00:00:00:02" and e.src == "02:00:00:00:00:01"
        assert e.type == atl.ETHERTYPE
        assert bytes(e.payload)[:n] == payload
        assert int.from_bytes(frame[-4:], "little") == zlib.crc32(frame[:-4]) == atl.fcs(frame[:-4])
        assert atl.eth_check(frame) == ("ok", frame[:-4])


def test_rx_classification():
    frame = bytearray(atl.eth_frame(MACS[1], MACS[0], bytes(100)))
    for bit in range(0, len(frame) * 8, 37):
        bad = bytearray(frame)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert atl.eth_check(bytes(bad))[0] == "fcs"
    assert atl.eth_check(bytes(frame[:63]))[0] == "runt"
    big = atl.eth_frame(MACS[1], MACS[0], bytes(1600))
    assert atl.eth_check(big)[0] == "oversize"
    assert atl.eth_check(big, max_frame=2000)[0] == "ok"


def test_header_round_trip():
    h = atl.Header(atl.OP_ACK, 7, psn=0xFFFF, ack=0x1234, sack=0x80000001, addr=0xDEADBEEF,
                   length=256)
    raw = h.pack()
    assert len(raw) == atl.HEADER_BYTES and raw[0] == 0x13
    g = atl.Header.unpack(raw)
    assert vars(g) == vars(h)
    assert atl.Header.unpack(b"\x23" + raw[1:]) is None  # wrong version


def _traffic(eps, pairs, rng, n_msgs, payload):
    """Post random writes and semaphore increments; return the golden memories/sems."""
    gold_mem = {i: bytearray(len(ep.mem)) for i, ep in enumerate(eps)}
    gold_sem = {i: [0] * len(ep.sems) for i, ep in enumerate(eps)}
    slots = len(eps[0].mem) // payload
    for k in range(n_msgs):
        src, dst, flow = rng.choice(pairs)
        if rng.random() < 0.2:
            idx = rng.randrange(len(eps[dst].sems))
            eps[src].post_sem(flow, idx)
            gold_sem[dst][idx] += 1
        else:
            n = rng.randint(1, payload)
            # Each destination slot is written once, so final memory is order-free.
            addr = (k % slots) * payload
            data = bytes(rng.getrandbits(8) for _ in range(n))
            eps[src].post_write(flow, addr, data)
            gold_mem[dst][addr:addr + n] = data
    return gold_mem, gold_sem


def _check(eps, gold_mem, gold_sem, n_msgs):
    for i, ep in enumerate(eps):
        assert ep.mem == gold_mem[i], f"endpoint {i}: memory differs from golden"
        assert ep.sems == gold_sem[i], f"endpoint {i}: semaphores {ep.sems} != {gold_sem[i]}"
        assert all(v == 1 for v in ep.applied.values()), f"endpoint {i}: packet applied twice"
    assert sum(len(ep.applied) for ep in eps) == n_msgs


@pytest.mark.parametrize("rates", [(0, 0, 0, 0), (0.05, 0.05, 0.1, 0.05), (0.2, 0.1, 0.2, 0.1)])
def test_two_endpoints_exactly_once(rates):
    drop, dup, reorder, corrupt = rates
    rng = random.Random(7)
    payload, n_msgs = 64, 400
    eps = [atl.Endpoint(MACS[0], {0: MACS[1]}, window=8, payload=payload, mem_size=400 * 64,
                        rto=2000),
           atl.Endpoint(MACS[1], {0: MACS[0]}, window=8, payload=payload, mem_size=400 * 64,
                        rto=2000)]
    # Messages in both directions at once.
    # Unique slots per direction: writes from 0 land in 1 and vice versa.
    gold_mem, gold_sem = _traffic(eps, [(0, 1, 0), (1, 0, 0)], rng, n_msgs, payload)
    links = {(a, b): atl.Link(latency=100, drop=drop, dup=dup, reorder=reorder, corrupt=corrupt,
                              reorder_delay=500, seed=10 + a) for a, b in [(0, 1), (1, 0)]}
    atl.Network(eps, links).run(max_time=10**7)
    _check(eps, gold_mem, gold_sem, n_msgs)
    if drop:
        assert eps[0].stats["tx_rtx"] > 0 and eps[1].stats["rx_fcs"] > 0
        assert eps[1].stats["rx_dup"] > 0


def test_fully_connected_quad():
    rng = random.Random(3)
    payload, n_msgs = 32, 600
    # One flow per pair of NICs, with the same id at both ends.
    flow = {}
    for i in range(4):
        for j in range(i + 1, 4):
            flow[i, j] = flow[j, i] = len(flow) // 2
    eps = [atl.Endpoint(MACS[i], {flow[i, j]: MACS[j] for j in range(4) if j != i}, window=4,
                        payload=payload, mem_size=600 * 32, rto=1500) for i in range(4)]
    pairs = [(i, j, flow[i, j]) for i in range(4) for j in range(4) if i != j]
    gold_mem, gold_sem = _traffic(eps, pairs, rng, n_msgs, payload)
    links = {(i, j): atl.Link(latency=80, drop=0.05, dup=0.05, reorder=0.1, corrupt=0.05,
                              reorder_delay=300, seed=100 + 4 * i + j)
             for i in range(4) for j in range(4) if i != j}
    atl.Network(eps, links).run(max_time=10**7)
    _check(eps, gold_mem, gold_sem, n_msgs)


def test_psn_wraps():
    payload = 16
    eps = [atl.Endpoint(MACS[0], {0: MACS[1]}, window=8, payload=payload, mem_size=4096,
                        rto=1000),
           atl.Endpoint(MACS[1], {0: MACS[0]}, window=8, payload=payload, mem_size=4096,
                        rto=1000)]
    start = atl.PSN_MOD - 20
    eps[0].tx[0].base = eps[0].tx[0].next = start
    eps[1].rx[0].expected = start
    gold_mem, gold_sem = _traffic(eps, [(0, 1, 0)], random.Random(5), 100, payload)
    links = {(0, 1): atl.Link(latency=50, drop=0.1, dup=0.1, reorder=0.1, seed=1),
             (1, 0): atl.Link(latency=50, drop=0.1, seed=2)}
    atl.Network(eps, links).run(max_time=10**7)
    _check(eps, gold_mem, gold_sem, 100)
    assert eps[0].tx[0].base == (start + 100) % atl.PSN_MOD


def test_goodput_vs_go_back_n():
    ceiling = 256 / (256 + 34)
    g0, _ = atl.goodput(loss=0.0, n_packets=500)
    assert g0 == pytest.approx(ceiling, rel=0.01)
    g1, st = atl.goodput(loss=0.01, n_packets=1500)
    assert g1 >= 0.9 * g0, f"selective repeat at 1 % loss: {g1 / g0:.3f} of loss-free"
    gbn, _ = atl.goodput(loss=0.01, n_packets=1500, mode="gbn")
    assert gbn < g1, "go-back-N should lose to selective repeat at 1 % loss"


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="window"):
        atl.Endpoint(MACS[0], {0: MACS[1]}, window=33)
    with pytest.raises(ValueError, match="mode"):
        atl.Endpoint(MACS[0], {0: MACS[1]}, mode="tcp")
