# amaranth: UnusedElaboratable=no
"""The chip NoC fabric (:class:`hw.noc.WordMesh`) under random traffic, Amaranth simulator.

Testplan (docs/noc.md, docs/chip.md):

* ``test_word_mesh_random``: four clients laid out as the chip's (three
  clusters, each with tile/SRAM keys ``c << 4 | node``, and the NIC bridge, reached
  by node 3 with any cluster field; key ``0xFF``: a multicast to the whole
  mesh), random word writes from every client at random destinations, 10 % of
  them to keys that do not exist; random source
  stalls and 50 % sink back-pressure. A scoreboard per (source, destination)
  flow: every good write arrives exactly once at each client its key names
  (every client of the rectangle for a multicast),
  intact and in order (nothing lost, duplicated or reordered); ``dropped``
  equals the number of bad writes and ``errors`` stays 0; the run drains (no
  deadlock) while bad writes never block their source.
* ``test_word_mesh_parameters``: invalid parameters raise naming the parameter.
"""
import random

import pytest
from amaranth.sim import Simulator

from hw.chip import chip_dests
from hw.noc import AddressRouter, WordMesh

AW, WB, SHIFT = 16, 16, 8
N_CLUSTERS, TILES = 3, 2


def _mesh():
    dests = [chip_dests(N_CLUSTERS, TILES)] * N_CLUSTERS + [chip_dests(N_CLUSTERS, TILES,
                                                                        nic=False)]
    # The table's keys are cluster << 4 | node: 8 bits above SHIFT.
    return WordMesh(n=N_CLUSTERS + 1, addr_width=AW, word_bits=WB, key_shift=SHIFT,
                    key_bits=8, dests=dests), dests


def test_word_mesh_random():
    rng = random.Random(21)
    dut, dests = _mesh()
    n = dut.n
    per_src = 150

    def targets(dest):
        """Clients a write for ``dest`` (client, rectangle or None) reaches."""
        if dest is None:
            return ()
        if isinstance(dest, tuple):
            x0, x1, y0, y1 = dest
            return tuple(j for j in range(n) if x0 <= j % dut.kx <= x1
                         and y0 <= j // dut.kx <= y1)
        return (dest,)
    plan = []       # per source: list of (addr, strb, data, dest or None)
    for s in range(n):
        good = sorted(dests[s])
        items = []
        for i in range(per_src):
            if rng.random() < 0.1:
                key = rng.choice([k for k in range(256) if k not in dests[s]])
            else:
                key = rng.choice(good)
            # The low address byte and the data identify the write: source, sequence.
            addr = key << SHIFT | rng.randrange(256)
            word = (s << 12 | i) & 0xFFFF
            items.append((addr, rng.randrange(4), word, targets(dests[s].get(key))))
        plan.append(items)
    expect = {(s, d): [it[:3] for it in plan[s] if d in it[3]]
              for s in range(n) for d in range(n)}
    got = {k: [] for k in expect}
    n_bad = sum(not it[3] for items in plan for it in items)
    n_multi = sum(len(it[3]) > 1 for items in plan for it in items)
    n_good = sum(len(v) for v in expect.values())
    state = {"rx": 0}

    async def source(ctx, s):
        st = dut.i_streams[s]
        for addr, strb, word, _ in plan[s]:
            while rng.random() < 0.3:
                ctx.set(st.valid, 0)
                await ctx.tick()
            ctx.set(st.valid, 1)
            ctx.set(st.payload.addr, addr)
            ctx.set(st.payload.strb, strb)
            ctx.set(st.payload.data, word)
            await ctx.tick().until(st.ready)
        ctx.set(st.valid, 0)

    async def sink(ctx, d):
        st = dut.o_streams[d]
        r = random.Random(d)
        async for clk, rst, valid, ready, payload in ctx.tick().sample(st.valid, st.ready,
                                                                        st.payload):
            if valid and ready:
                src = payload.data >> 12
                got[src, d].append((payload.addr, payload.strb, payload.data))
                state["rx"] += 1
            ctx.set(st.ready, r.random() < 0.5)

    async def watchdog(ctx):
        for cyc in range(20000):
            await ctx.tick()
            if state["rx"] == n_good:
                break
        for _ in range(50):     # nothing extra arrives
            await ctx.tick()
        state["cycles"] = cyc
        state["dropped"] = ctx.get(dut.dropped)
        state["errors"] = ctx.get(dut.errors)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    def bind(fn, j):
        async def run(ctx):
            await fn(ctx, j)
        return run

    for s in range(n):
        sim.add_testbench(bind(source, s))
        sim.add_process(bind(sink, s))
    sim.add_testbench(watchdog)
    sim.run()
    for k in expect:
        assert got[k] == expect[k], f"flow {k}: {len(got[k])} of {len(expect[k])} writes, " \
                                    f"first difference at " \
                                    f"{next((i for i, (a, b) in enumerate(zip(got[k], expect[k])) if a != b), None)}"
    assert state["dropped"] == n_bad and n_bad > 0, (state, n_bad)
    assert state["errors"] == 0
    assert n_multi > 0
    print(f"{n_good} writes delivered ({n_multi} multicast), {n_bad} dropped, "
          f"{state['cycles']} cycles")


def test_word_mesh_parameters():
    ok = dict(addr_width=AW, word_bits=WB, key_shift=SHIFT, key_bits=8, kx=2, ky=1, dests={})
    cases = [(dict(key_bits=0), "key_bits"), (dict(key_shift=12), "key_shift"),
             (dict(dests={256: 0}), "dests keys"), (dict(dests={1: 2}), "dests nodes"),
             (dict(dests=[1]), "dests must be a dict")]
    for kw, name in cases:
        with pytest.raises((ValueError, TypeError), match=name):
            AddressRouter(**{**ok, **kw})
    with pytest.raises(ValueError, match="dests"):
        WordMesh(n=2, addr_width=AW, word_bits=WB, key_shift=SHIFT, key_bits=8, dests=[{}])
    with pytest.raises(ValueError, match="dests must name clients"):
        WordMesh(n=2, addr_width=AW, word_bits=WB, key_shift=SHIFT, key_bits=8,
                 dests=[{0: 5}, {}])
