# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""Command processor against ``sim/cp.py`` with mock engines.

Testplan (docs/cp.md):
* ``double_buffer``: DMA and TTU queues ping-pong two buffers through four
  semaphores; every TTU command starts after the DMA completion it depends
  on, the engines overlap, and results equal the golden model;
* ``random_programs``: random single-queue programs per engine (NOP, EXEC,
  nested LOOP, self-signalled waits) under random engine latency/back-pressure;
* ``errors``: illegal opcode, bad semaphore id, bad loops, pc overflow,
  deadlock, engine error and semaphore overflow each stop only the faulty
  queue with the right code while the other queues finish;
* ``external_increment``: a queue blocked on a semaphore is released by
  ``sem_inc``; an out-of-range id is counted and dropped.
"""
import collections
import random

import cocotb
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from hw.cp import CommandProcessor
from hw.cp.isa import ErrorCode, Opcode as O, encode
from sim import cp as golden
from sim.rtl import runner
from sim.rtl.stream import reset

P = dict(n_engines=4, n_sems=8, depth=32, deadlock_cycles=64, sem_bits=8, loop_depth=2)
FAIL_BIT = 1 << 23  # mock engines fail commands whose arg has this bit
STATE_DONE, STATE_ERROR = 5, 6


def qbits(n):
    return max(1, (n - 1).bit_length())


class Harness:
    def __init__(self, dut, rng, *, latency=(1, 12), ready_prob=0.7):
        self.dut, self.rng = dut, rng
        self.latency, self.ready_prob = latency, ready_prob
        self.n = P["n_engines"]
        self.cycle = 0
        self.issued = [[] for _ in range(self.n)]       # (arg, cycle)
        self.completed = [[] for _ in range(self.n)]    # cycle of each completion
        self.busy = [0] * self.n
        self.trace = []  # per cycle: tuple of busy flags

    async def load(self, queue, program, *, first=0):
        d = self.dut
        abits = (P["depth"] - 1).bit_length()
        for addr, word in enumerate(program[first:], start=first):
            d.load__valid.value = 1
            d.load__payload.value = queue | addr << qbits(self.n) | word << (qbits(self.n) + abits)
            await RisingEdge(d.clk)
        d.load__valid.value = 0

    def status(self, i):
        w = 3 + 3 + (P["depth"]).bit_length()
        v = int(self.dut.status.value) >> (i * w)
        return v & 7, v >> 3 & 7, v >> 6 & ((1 << (w - 6)) - 1)

    async def engines(self):
        d = self.dut
        pending = [collections.deque() for _ in range(self.n)]
        while True:
            for e in range(self.n):
                getattr(d, f"cmd__{e}__ready").value = int(self.rng.random() < self.ready_prob)
                done = getattr(d, f"done__{e}__valid")
                if pending[e] and pending[e][0][0] <= self.cycle:
                    done.value = 1
                    getattr(d, f"done__{e}__payload").value = pending[e][0][1]
                else:
                    done.value = 0
            await ReadOnly()
            for e in range(self.n):
                if int(getattr(d, f"done__{e}__valid").value):
                    pending[e].popleft()
                    self.completed[e].append(self.cycle)
                if int(getattr(d, f"cmd__{e}__valid").value) and int(getattr(d, f"cmd__{e}__ready").value):
                    arg = int(getattr(d, f"cmd__{e}__payload").value)
                    self.issued[e].append((arg, self.cycle))
                    start = max([self.cycle] + [t for t, _ in pending[e]])
                    pending[e].append((start + self.rng.randint(*self.latency), int(bool(arg & FAIL_BIT))))
                self.busy[e] = len(pending[e])
            self.trace.append(tuple(self.busy))
            await RisingEdge(d.clk)
            self.cycle += 1

    async def run(self, programs, *, max_cycles=20_000):
        d = self.dut
        for q, prog in enumerate(programs):
            await self.load(q, prog)
        d.start.value = (1 << len(programs)) - 1
        await RisingEdge(d.clk)
        d.start.value = 0
        self.first_end = {}  # queue -> the first DONE/ERROR state it showed
        for _ in range(max_cycles):
            await RisingEdge(d.clk)
            await ReadOnly()
            for q in range(len(programs)):
                if self.status(q)[0] in (STATE_DONE, STATE_ERROR):
                    self.first_end.setdefault(q, self.status(q)[0])
            if len(self.first_end) == len(programs):
                # let trailing completions drain
                for _ in range(40):
                    await RisingEdge(d.clk)
                return
        raise AssertionError("queues did not finish: " + str([self.status(q) for q in range(len(programs))]))

    def sems(self):
        v = int(self.dut.sems.value)
        return [v >> (8 * i) & 0xFF for i in range(P["n_sems"])]

    def compare(self, programs, *, check_pc=True):
        want = golden.run(programs, n_sems=P["n_sems"], depth=P["depth"], loop_depth=P["loop_depth"],
                          engine_fails=lambda e, a: bool(a & FAIL_BIT))
        got_issued = [[a for a, _ in self.issued[q]] for q in range(len(programs))]
        states = [self.status(q) for q in range(len(programs))]
        for q in range(len(programs)):
            assert got_issued[q] == want["issued"][q], f"queue {q}: issued {got_issued[q]} != {want['issued'][q]}"
            state, err, pc = states[q]
            assert err == want["error"][q], f"queue {q}: error {ErrorCode(err).name} != {ErrorCode(want['error'][q]).name}"
            assert state == (STATE_DONE if want["state"][q] == "done" else STATE_ERROR), f"queue {q}: state {state}"
            assert self.first_end[q] == state, f"queue {q}: showed {self.first_end[q]} before {state}"
            if check_pc and want["error"][q] != ErrorCode.ENGINE_ERROR:
                assert pc == want["pc"][q], f"queue {q}: pc {pc} != {want['pc'][q]}"
        assert self.sems() == want["sems"], f"sems {self.sems()} != {want['sems']}"
        return want


async def setup(dut, **kw):
    await reset(dut)
    dut.start.value = 0
    dut.sem_inc__valid.value = 0
    h = Harness(dut, random.Random(cocotb.RANDOM_SEED), **kw)
    cocotb.start_soon(h.engines())
    return h


def double_buffer_programs(iters):
    # sems: 0/1 buffer A/B full, 2/3 buffer A/B empty
    dma = [encode(O.NOP, signals=[2, 3]), encode(O.LOOP, arg=iters),
           encode(O.EXEC, waits=[2], signals=[0], arg=0x100), encode(O.EXEC, waits=[3], signals=[1], arg=0x101),
           encode(O.ENDLOOP), encode(O.HALT)]
    ttu = [encode(O.LOOP, arg=iters),
           encode(O.EXEC, waits=[0], signals=[2], arg=0x200), encode(O.EXEC, waits=[1], signals=[3], arg=0x201),
           encode(O.ENDLOOP), encode(O.HALT)]
    return [dma, ttu]


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def double_buffer(dut):
    h = await setup(dut, latency=(8, 16), ready_prob=1.0)
    progs = double_buffer_programs(6)
    await h.run(progs)
    h.compare(progs)
    dma_done = h.completed[0]
    for j, (_, t) in enumerate(h.issued[1]):
        assert t > dma_done[j], f"TTU command {j} issued at {t} before DMA completion at {dma_done[j]}"
    overlap = sum(1 for b in h.trace if b[0] and b[1])
    assert overlap > 20, f"DMA and TTU overlapped for only {overlap} cycles"
    dut._log.info(f"double buffering: {len(h.trace)} cycles, DMA/TTU overlap {overlap} cycles")


def random_program(rng, n_sems, engine):
    """A schedule-independent program: waits only on semaphores it signalled itself."""
    own = [engine * 2 % n_sems, (engine * 2 + 1) % n_sems]
    prog, credit = [], {s: 0 for s in own}


    def body(n, credit):
        for _ in range(n):
            kind = rng.choice(["exec", "exec", "nop"])
            sigs = [s for s in own if rng.random() < 0.5]
            waits = [s for s in own if credit[s] > 0 and rng.random() < 0.5]
            for s in waits:
                credit[s] -= 1
            for s in sigs:
                credit[s] += 1
            arg = rng.randrange(1 << 20)
            prog.append(encode(O.EXEC if kind == "exec" else O.NOP, waits=waits, signals=sigs, arg=arg))

    body(rng.randint(1, 4), credit)
    prog.append(encode(O.LOOP, arg=rng.randint(1, 3)))
    # Inside the loop, wait only on what the same iteration signalled before.
    body(rng.randint(1, 4), {s: 0 for s in own})
    prog.append(encode(O.ENDLOOP))
    prog.append(encode(O.HALT, signals=[own[0]]))
    return prog


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def random_programs(dut):
    h = await setup(dut, latency=(1, 6), ready_prob=0.6)
    rng = random.Random(cocotb.RANDOM_SEED + 7)
    for trial in range(8):
        # Each engine uses its own two semaphores, so the programs' outcome
        # does not depend on the interleaving.
        progs = [random_program(rng, P["n_sems"], e) for e in range(P["n_engines"])]
        want = golden.run(progs, n_sems=P["n_sems"], depth=P["depth"])
        assert all(s == "done" for s in want["state"]), "generator made a blocking program"
        before = h.sems()
        h.issued = [[] for _ in range(h.n)]
        await h.run(progs)
        got = [(a for a, _ in h.issued[q]) for q in range(h.n)]
        for q in range(h.n):
            assert list(got[q]) == want["issued"][q], f"trial {trial} queue {q}"
            assert h.status(q)[0] == STATE_DONE
        assert h.sems() == [min(255, b + w) for b, w in zip(before, want["sems"])], "semaphores"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def errors(dut):
    h = await setup(dut)
    ok = [encode(O.EXEC, signals=[7], arg=1), encode(O.HALT)]
    cases = {
        "illegal": [encode(O.NOP), encode(9)],
        "bad_sem": [encode(O.NOP, signals=[P["n_sems"] + 3])],
        "loop0": [encode(O.LOOP, arg=0)],
        "nesting": [encode(O.LOOP, arg=2), encode(O.LOOP, arg=2), encode(O.LOOP, arg=2)],
        "endloop": [encode(O.ENDLOOP)],
        "engine": [encode(O.EXEC, signals=[6], arg=FAIL_BIT | 5), encode(O.HALT)],
        "overflow": [encode(O.LOOP, arg=300), encode(O.NOP, signals=[5]), encode(O.ENDLOOP), encode(O.HALT)],
        # HALT's own signal overflows: ERROR, and never DONE on the way.
        "halt_overflow": [encode(O.LOOP, arg=255), encode(O.NOP, signals=[5]), encode(O.ENDLOOP),
                          encode(O.HALT, signals=[5])],
        "pc_overflow": [encode(O.NOP)] * P["depth"],
        "deadlock": [encode(O.NOP, waits=[4]), encode(O.HALT)],
    }
    for name, bad in cases.items():
        # reset semaphores between cases: a fresh run of the golden model starts at 0
        h.issued = [[] for _ in range(h.n)]
        await reset(dut, clock=False)
        progs = [bad, ok, ok, ok]
        await h.run(progs)
        want = h.compare(progs)
        dut._log.info(f"{name}: queue 0 -> {ErrorCode(want['error'][0]).name}")
        assert want["error"][0] != ErrorCode.NONE


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def load_in_start_cycle(dut):
    """The first word, loaded in the cycle of ``start``, is the one that runs."""
    h = await setup(dut)
    prog = [encode(O.EXEC, arg=77), encode(O.HALT)]
    await h.load(0, prog, first=1)
    # An older word 0 (it would wait forever), overwritten in the start cycle.
    await h.load(0, [encode(O.EXEC, waits=[2], arg=11)])
    dut.start.value = 1
    await h.load(0, prog[:1])
    dut.start.value = 0
    for _ in range(40):
        await RisingEdge(dut.clk)
    assert [a for a, _ in h.issued[0]] == [77]
    assert h.status(0)[0] == STATE_DONE


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def external_increment(dut):
    h = await setup(dut)
    prog = [encode(O.EXEC, waits=[3, 3], arg=42), encode(O.HALT)]
    await h.load(0, prog)
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    for _ in range(20):
        await RisingEdge(dut.clk)
    assert h.issued[0] == [], "ran without its semaphores"
    for sem in (3, 31, 3):  # 31 is out of range for n_sems=8: counted, dropped
        dut.sem_inc__valid.value = 1
        dut.sem_inc__payload.value = sem
        await RisingEdge(dut.clk)
    dut.sem_inc__valid.value = 0
    for _ in range(30):
        await RisingEdge(dut.clk)
    assert [a for a, _ in h.issued[0]] == [42]
    assert int(dut.sem_inc_errors.value) == 1
    assert h.status(0)[0] == STATE_DONE


def test_command_processor():
    runner.run(CommandProcessor(**P), block="cp", test_module="tb.cp.test_cp", params=P)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="n_sems"):
        CommandProcessor(n_sems=33)
    with pytest.raises(ValueError, match="deadlock_cycles"):
        CommandProcessor(deadlock_cycles=1)
