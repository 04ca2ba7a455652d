# amaranth: UnusedElaboratable=no
"""cocotb tests of :class:`hw.nic.bridge.NicBridge` against :class:`sim.nic_bridge.BridgeModel`.

* ``transmit``: 300 random word writes (full, partial, empty strobes, doorbells in
  and out of range, offsets outside the NIC memory) with a stalling source and a
  back-pressured post sink: the post beats equal the model's bit for bit; error and
  byte counters match.
* ``transmit_rate``: back-to-back full words leave at one post byte per cycle.
* ``test_bridge_coalescing`` runs the three with ``coalesce`` = 4 words: runs of
  contiguous full words are added to ``transmit``; the posts carry the model's
  bytes in order, messages join only contiguous full words up to ``coalesce``
  bytes, and some do join; the rate stays one byte per cycle.
* ``receive``: random byte runs (some for a missing node) and semaphore increments,
  stalling input and back-pressured output: the NoC writes rebuild exactly the
  model's memory, every semaphore packet goes to the model's (node, id), and when
  it leaves, every byte delivered before its increment has already been written.
"""
import random

import cocotb
import pytest
from cocotb.triggers import RisingEdge

from hw.nic.bridge import NicBridge
from sim.nic_bridge import BridgeModel
from sim.rtl import runner
from sim.rtl.stream import StreamSink, StreamSource, reset

PARAMS = dict(word_bits=64, addr_width=32, node_shift=12, sram_bits=8, n_nodes=3, nic_sems=5,
              node_sems=2, sem_base=8)


def _pack_word(p, addr, strb, data):
    B = p["word_bits"] // 8
    return addr | strb << p["addr_width"] | data << (p["addr_width"] + B)


def _unpack_word(p, v):
    B = p["word_bits"] // 8
    aw = p["addr_width"]
    return v & ((1 << aw) - 1), v >> aw & ((1 << B) - 1), v >> (aw + B)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def transmit(dut):
    p = runner.params()
    model = BridgeModel(**p)
    rng = random.Random(cocotb.RANDOM_SEED)
    B, ns = p["word_bits"] // 8, p["node_shift"]
    dut.i_mem__valid.value = 0
    dut.sems.value = 0
    dut.o_noc__ready.value = 1
    await reset(dut)
    words = []
    for n in range(300):
        node = rng.randrange(4) << ns
        kind = rng.random()
        if n < 4:       # edge cases first: empty, full, lowest and highest doorbell
            strb = [0, (1 << B) - 1, 0, 0][n]
            addr = node | [0, (1 << model.mem_bits) - B, 1 << (ns - 1),
                           1 << (ns - 1) | (model.nic_sems - 1) << model.lw][n]
        elif kind < 0.1:    # doorbell, sometimes out of range
            addr = node | 1 << (ns - 1) | rng.randrange(model.nic_sems + 2) << model.lw
            strb = rng.randrange(1 << B)
        elif kind < 0.15:   # offset outside the NIC memory
            addr = node | rng.randrange(1 << model.mem_bits, 1 << (ns - 1)) & ~(B - 1)
            strb = (1 << B) - 1
        else:
            addr = node | rng.randrange(1 << model.mem_bits) & ~(B - 1)
            strb = (1 << B) - 1 if rng.random() < 0.5 else rng.randrange(1 << B)
        words.append((addr, strb, rng.getrandbits(8 * B)))
    if p.get("coalesce"):   # runs of contiguous full words, so that words can join
        for k in range(40, 300, 50):
            base = words[k][0] & ~((1 << ns) - 1) | rng.randrange(64) * B
            for j in range(8):
                words[k + j] = (base + j * B, (1 << B) - 1, rng.getrandbits(8 * B))
    beats, errors, nbytes = model.posts(words)
    src = StreamSource(dut, "i_noc", dut.clk, valid_prob=0.7, rng=rng)
    sink = StreamSink(dut, "o_post", dut.clk, ready_prob=0.5, rng=rng)
    sink.start()
    await src.send([_pack_word(p, *w) for w in words])
    got = await sink.wait_for(len(beats), max_cycles=50_000)
    for _ in range(50):
        await RisingEdge(dut.clk)
    assert len(sink.beats) == len(beats), f"{len(sink.beats)} beats, expected {len(beats)}"
    if p.get("coalesce"):
        saved = model.check_coalesced(got, words)
        dut._log.info("coalescing saved %d of %d messages", saved,
                      len(model.messages(beats)))
        assert saved > 0, "no words were joined"
    else:
        for k, (g, e) in enumerate(zip(got, beats)):
            assert g == e, f"post beat {k}: {g:#x} != {e:#x}"
    assert int(dut.tx_errors.value) == errors
    assert int(dut.tx_bytes.value) == nbytes


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def transmit_rate(dut):
    p = runner.params()
    B = p["word_bits"] // 8
    dut.i_mem__valid.value = 0
    dut.sems.value = 0
    dut.o_noc__ready.value = 1
    await reset(dut)
    n = 16
    src = StreamSource(dut, "i_noc", dut.clk)
    sink = StreamSink(dut, "o_post", dut.clk)
    sink.start()
    cocotb.start_soon(src.send([_pack_word(p, i * B, (1 << B) - 1, i) for i in range(n)]))
    cycles = 0
    while len(sink.beats) < n * B:
        await RisingEdge(dut.clk)
        cycles += 1
    dut._log.info("transmit: %d bytes in %d cycles", n * B, cycles)
    assert cycles <= n * B + 3, f"{n * B} post bytes took {cycles} cycles"


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def receive(dut):
    p = runner.params()
    model = BridgeModel(**p)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    K, mb = p["nic_sems"], model.mem_bits
    dut.i_noc__valid.value = 0
    dut.o_post__ready.value = 1
    dut.sems.value = 0
    await reset(dut)
    # Distinct addresses (the NIC places each byte once); node 3 does not exist.
    free = list(range(1 << mb))
    rng.shuffle(free)
    events, used = [], set()
    for _ in range(120):
        if rng.random() < 0.3:
            events.append(("sem", rng.randrange(K)))
            if rng.random() < 0.3:
                events.append(("sem", rng.randrange(K)))   # back-to-back increments
            continue
        start = free.pop()
        run = [a for a in range(start, min(start + rng.randint(1, 24), 1 << mb))
               if a not in used]
        run = run[:next((i for i in range(1, len(run)) if run[i] != run[i - 1] + 1), len(run))]
        used.update(run)
        events.append(("bytes", [(a, rng.randrange(256)) for a in run]))
    all_bytes = [b for e in events if e[0] == "bytes" for b in e[1]]
    sem_incs = [e[1] for e in events if e[0] == "sem"]
    exp_mem, exp_sems, exp_err = model.expected(all_bytes, sem_incs)

    src = StreamSource(dut, "i_mem", dut.clk, valid_prob=0.8, rng=rng)
    sink = StreamSink(dut, "o_noc", dut.clk, ready_prob=0.5, rng=rng)
    sink.start()
    counts = [0] * K
    before = {k: [] for k in range(K)}    # per NIC semaphore: bytes delivered before each increment
    delivered = []
    for kind, arg in events:
        if kind == "bytes":
            await src.send([a | v << mb for a, v in arg])
            delivered += arg
        else:
            counts[arg] += 1
            dut.sems.value = sum(c << (32 * k) for k, c in enumerate(counts))
            before[arg].append(list(delivered))
            await RisingEdge(dut.clk)
    n_sem = len(sem_incs)
    for _ in range(20_000):
        await RisingEdge(dut.clk)
        nsem = sum(1 for b in sink.beats
                   if model.decode(*_unpack_word(p, b))[0] == "sem")
        if nsem >= n_sem and not int(dut.o_noc__valid.value) and not int(dut.i_mem__valid.value):
            break
    for _ in range(20):
        await RisingEdge(dut.clk)
    # Replay the NoC output in order.
    mem, sems, seen = {}, {}, {k: 0 for k in range(K)}
    key_of = {model.node_addr(k): k for k in range(K)}
    for b in sink.beats:
        kind, node, x = model.decode(*_unpack_word(p, b))
        if kind == "write":
            assert node < p["n_nodes"], f"write to missing node {node}"
            for byte, v in x.items():
                mem[(node, byte)] = v
            continue
        assert (node, x) in key_of, f"semaphore packet to unmapped ({node}, {x})"
        k = key_of[(node, x)]
        sems[(node, x)] = sems.get((node, x), 0) + 1
        assert seen[k] < len(before[k]), f"extra semaphore packet for NIC semaphore {k}"
        want, _, _ = model.expected(before[k][seen[k]], [])
        missing = [a for a, v in want.items() if mem.get(a) != v]
        assert not missing, (f"semaphore {k} #{seen[k]} overtook {len(missing)} bytes, "
                             f"e.g. {missing[:3]}")
        seen[k] += 1
    assert sems == exp_sems, f"semaphores {sems} != {exp_sems}"
    assert mem == exp_mem, (f"{sum(1 for a in exp_mem if mem.get(a) != exp_mem[a])} bytes differ, "
                            f"{len(set(mem) - set(exp_mem))} extra")
    assert int(dut.rx_errors.value) == exp_err
    assert int(dut.rx_bytes.value) == len(all_bytes) - exp_err
    dut._log.info("receive: %d bytes, %d words, %d semaphores, %d dropped", len(all_bytes),
                  len(sink.beats) - n_sem, n_sem, exp_err)


def test_bridge():
    runner.run(NicBridge(**PARAMS), block="nic_bridge", test_module="tb.nic.test_bridge",
               params=PARAMS)


def test_bridge_coalescing():
    params = dict(PARAMS, coalesce=32)
    runner.run(NicBridge(**params), block="nic_bridge", test_module="tb.nic.test_bridge",
               params=params)


class EagerSemBridge(NicBridge):
    """Mutant: a semaphore packet may leave while received bytes are still gathered."""

    def _sem_ready(self, acc, out_free):
        return out_free


def test_mutant_semaphore_overtakes_data_is_caught():
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(EagerSemBridge(**PARAMS), block="nic_bridge_mutant",
                   test_module="tb.nic.test_bridge", params=PARAMS, testcase="receive")


def test_bridge_parameters():
    for kw, name in ((dict(word_bits=48), "word_bits"), (dict(node_shift=8), "node_shift"),
                     (dict(sram_bits=30), "sram_bits"), (dict(nic_sems=0), "nic_sems"),
                     (dict(nic_sems=9, n_nodes=2, node_sems=4), "nic_sems"),
                     (dict(node_sems=3), "node_sems"), (dict(sem_base=32), "sem_base"),
                     (dict(n_nodes=0), "n_nodes"), (dict(coalesce=20), "coalesce"),
                     (dict(coalesce=8), "coalesce"), (dict(coalesce_wait=0), "coalesce_wait")):
        with pytest.raises((ValueError, TypeError), match=name):
            NicBridge(**kw)
