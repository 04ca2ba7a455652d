# amaranth: UnusedElaboratable=no
# (the parameter tests build blocks that are never elaborated; the shape test builds a Tile)
"""hw.host: UART and host bridge under Amaranth's simulator, driven by ``sim.host.HostLink``.

Testplan (``docs/host.md``):

* ``test_uart_loopback[div]``: UARTTx -> UARTRx at two divisors, random bytes with random
  gaps, received bit-exact, no errors.
* ``test_uart_framing_error``: a low stop bit is counted and dropped, a start glitch is
  ignored, the next byte arrives.
* ``test_bridge_write_read``: random words written then read back (bit-exact), with
  back-pressure on ``o_bytes`` and on the SRAM port, and gaps between input bytes.
* ``test_bridge_load_start_status``: program words checked on the ``load`` stream, the
  start pulse, the STATUS reply decoded against the driven ports.
* ``test_bridge_errors``: unknown command, bad length, out-of-range address (SRAM, queue,
  pc, start mask) and a truncated frame each get their status, ``link_errors`` counts
  them, and valid commands work afterwards.
* ``test_bridge_garbage_then_valid``: random garbage, resync, then valid commands.
* ``test_uart_bridge_end_to_end``: the same HostLink through HostUARTBridge and a
  host-side UART pair.
* ``test_mutant_no_range_check_is_caught``: a parser that skips the range check fails
  ``test_bridge_errors``' address checks.
* ``test_shapes_match_tile``: the default bridge connects to a default Tile.
* ``test_parameters``: bad parameters raise naming the parameter.
"""
import gc
import random
import warnings
from collections import deque

import pytest
from amaranth.hdl import Const, Module, Shape
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.common.layout import pack
from hw.cp.isa import Opcode, encode
from hw.host import Command, HostBridge, HostUARTBridge, Status, UARTRx, UARTTx
from hw.host.bridge import CommandParser
from sim.host import HostLink, LinkError, MemoryTransport

SMALL = dict(word_bits=32, addr_width=6, depth=16, n_queues=3, words=48, timeout=40,
             macs_width=20)


# --- UART -------------------------------------------------------------------------------

class Loopback(wiring.Component):
    def __init__(self, divisor):
        self.tx, self.rx = UARTTx(divisor=divisor), UARTRx(divisor=divisor)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx = self.tx, self.rx
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


@pytest.mark.parametrize("divisor", [4, 13])
def test_uart_loopback(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(40)] + [0x00, 0xFF, 0x55]
    dut = Loopback(divisor)
    got = []

    async def send(ctx):
        for b in data:
            ctx.set(dut.tx.i_stream.valid, 1)
            ctx.set(dut.tx.i_stream.payload, b)
            await ctx.tick().until(dut.tx.i_stream.ready)
            ctx.set(dut.tx.i_stream.valid, 0)
            await ctx.tick().repeat(rng.choice([1, 1, 3, 17]))

    async def receive(ctx):
        ctx.set(dut.rx.o_stream.ready, 1)
        while len(got) < len(data):
            _, _, v, p = await ctx.tick().sample(dut.rx.o_stream.valid, dut.rx.o_stream.payload)
            if v:
                got.append(p)
        assert ctx.get(dut.rx.framing_errors) == 0 and ctx.get(dut.rx.overruns) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(send, background=True)
    sim.add_testbench(receive)
    sim.run_until(len(data) * 10 * divisor * 3 * 1e-6)
    assert got == data


def test_uart_framing_error():
    d = 8
    dut = UARTRx(divisor=d)
    got = []

    def bits(byte, stop=1):
        return [0] + [byte >> i & 1 for i in range(8)] + [stop]

    async def drive(ctx):
        ctx.set(dut.o_stream.ready, 1)
        line = [1] * 20 + bits(0xA5, stop=0) + [0] * 5 + [1] * 3
        for level in line:
            ctx.set(dut.rx, level)
            await ctx.tick().repeat(d)
        ctx.set(dut.rx, 0)       # a one-cycle glitch is no start bit
        await ctx.tick()
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * d)
        for level in bits(0x3C) + [1] * 3:
            ctx.set(dut.rx, level)
            await ctx.tick().repeat(d)
        assert ctx.get(dut.framing_errors) == 1
        assert got == [0x3C]

    async def watch(ctx):
        async for _, _, v, p in ctx.tick().sample(dut.o_stream.valid, dut.o_stream.payload):
            if v:
                got.append(p)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(watch, background=True)
    sim.add_testbench(drive)
    sim.run()


# --- bridge bench -----------------------------------------------------------------------

class Bench:
    """Runs a bridge (or a UART top) and models the tile's ports around it.

    ``i_bytes``/``o_bytes`` are the byte streams the host side drives; ``HostLink``
    reaches them through a :class:`MemoryTransport` whose pump steps the simulator.
    """

    def __init__(self, dut, *, bridge=None, i_bytes=None, o_bytes=None, ready_prob=1.0,
                 req_ready_prob=1.0, gap=0, seed=1, max_cycles=200_000):
        self.dut = dut
        self.b = bridge or dut
        self.i_bytes = i_bytes or dut.i_bytes
        self.o_bytes = o_bytes or dut.o_bytes
        self.g = self.b.geometry
        self.rng = random.Random(seed)
        self.ready_prob, self.req_ready_prob, self.gap = ready_prob, req_ready_prob, gap
        self.mem, self.loads, self.starts = {}, [], []
        self.inputs = {"status": 0, "sems": 0, "errors": 0, "macs": 0}
        self.transport = MemoryTransport(pump=self.pump)
        self.link = HostLink(self.transport, self.g)
        self.cycle, self.max_cycles = 0, max_cycles
        self.sim = Simulator(dut)
        self.sim.add_clock(1e-6)
        self.sim.add_testbench(self._bench, background=True)

    def pump(self, cycles=64):
        if self.cycle >= self.max_cycles:
            return False
        self.cycle += cycles
        self.sim.run_until(self.cycle * 1e-6)
        return True

    def idle(self, cycles):
        """Let the bridge run with no host traffic (e.g. past its timeout)."""
        self.pump(cycles)

    def get(self, sig):
        return self._ctx.get(sig)

    async def _bench(self, ctx):
        self._ctx = ctx
        b, i, o = self.b, self.i_bytes, self.o_bytes
        req, rsp = b.host.req, b.host.rsp
        rng, t = self.rng, self.transport
        byte, wait, pending, now = None, 0, deque(), 0
        wmask = (1 << self.g.word_bits) - 1
        while True:
            now += 1
            if byte is None and t.to_device and wait == 0:
                byte = t.to_device.popleft()
            ctx.set(i.valid, byte is not None)
            if byte is not None:
                ctx.set(i.payload, byte)
            ctx.set(o.ready, rng.random() < self.ready_prob)
            ctx.set(req.ready, rng.random() < self.req_ready_prob)
            ctx.set(b.load.ready, rng.random() < self.req_ready_prob)
            ready_rsp = bool(pending) and pending[0][0] <= now
            ctx.set(rsp.valid, ready_rsp)
            if ready_rsp:
                ctx.set(rsp.payload, pending[0][1])
            for name, value in self.inputs.items():
                sig = getattr(b, name)
                ctx.set(sig.as_value() if hasattr(sig, "as_value") else sig, value)
            (_, _, iv, ir, ov, orr, op, qv, qr, qp, sv, sr, lv, lr, lp, st) = \
                await ctx.tick().sample(i.valid, i.ready, o.valid, o.ready, o.payload,
                                        req.valid, req.ready, req.payload, rsp.valid,
                                        rsp.ready, b.load.valid, b.load.ready, b.load.payload,
                                        b.start)
            wait = max(0, wait - 1)
            if iv and ir:
                byte, wait = None, self.gap and rng.randrange(self.gap + 1)
            if ov and orr:
                t.to_host.append(op)
            if sv and sr:
                pending.popleft()
            if qv and qr:
                assert qp.addr < self.g.words, f"SRAM access out of range: {qp.addr}"
                if qp.we:
                    strobe = sum(0xFF << (8 * k) for k in range(self.g.word_bytes)
                                 if qp.wstrb >> k & 1)
                    old = self.mem.get(qp.addr, 0)
                    self.mem[qp.addr] = (old & ~strobe | qp.wdata & strobe) & wmask
                else:
                    pending.append((now + 2, self.mem.get(qp.addr, 0)))
            if lv and lr:
                self.loads.append((lp.queue, lp.addr, Const.cast(lp.data.as_value()).value))
            if st:
                self.starts.append(st)


def test_bridge_write_read():
    dut = HostBridge(**SMALL)
    bench = Bench(dut, ready_prob=0.4, req_ready_prob=0.5, gap=3)
    rng = random.Random(7)
    link, g = bench.link, dut.geometry
    link.ping()
    words = [0, (1 << 32) - 1] + [rng.getrandbits(32) for _ in range(30)]
    link.write_words(3, words)
    assert link.read_words(3, len(words)) == words
    assert [bench.mem[3 + k] for k in range(len(words))] == words
    link.write_words(g.words - 1, [0x12345678])            # the last word
    assert link.read_words(g.words - 1, 1) == [0x12345678]
    assert bench.get(dut.link_errors) == 0


def test_bridge_default_width():
    dut = HostBridge(word_bits=128, addr_width=12, depth=256, n_queues=3, timeout=64)
    bench = Bench(dut, ready_prob=0.7)
    rng = random.Random(3)
    words = [rng.getrandbits(128) for _ in range(6)] + [(1 << 128) - 1]
    bench.link.write_words(4090, words[:6])
    bench.link.write_words(0, words[6:])
    assert bench.link.read_words(4090, 6) == words[:6]
    assert bench.link.read_words(0, 1) == words[6:]


def test_bridge_load_start_status():
    dut = HostBridge(**SMALL)
    bench = Bench(dut, ready_prob=0.5, req_ready_prob=0.3)
    link, g = bench.link, dut.geometry
    prog = [encode(Opcode.EXEC, waits=[1], signals=[2], arg=0x123456),
            encode(Opcode.NOP), encode(Opcode.HALT), (1 << 64) - 1]
    link.load_program(2, prog, pc=g.depth - len(prog))
    link.load_program(0, prog[:1])
    assert bench.loads == [(2, g.depth - len(prog) + k, w) for k, w in enumerate(prog)] + \
        [(0, 0, prog[0])]
    link.start(0b101)
    assert bench.starts == [0b101]
    st = {"status": [{"state": 5, "error": 0, "pc": 16}, {"state": 6, "error": 6, "pc": 3},
                     {"state": 0, "error": 0, "pc": 0}],
          "sems": list(range(200, 216)), "errors": {"dma": 0xBEEF, "ttu": 0x5A, "tvp": 1},
          "macs": 0xABCDE}
    for name, shape, _ in g.status_parts:
        bench.inputs[name] = pack(shape, st[name])
    assert link.status() == st
    assert bench.get(dut.link_errors) == 0


def check_errors(dut):
    bench = Bench(dut, ready_prob=0.6)
    link, g = bench.link, dut.geometry
    errors = 0

    def expect(frame, status, *, wait=False):
        nonlocal errors
        if wait:
            link.t.write(frame)
            bench.idle(3 * 40)
            got = link.t.read(1)
        else:
            with pytest.raises(LinkError) as e:
                link.transact(frame, 0)
            got = bytes([e.value.status])
        assert got == bytes([status]), f"{frame.hex()}: {got.hex()} != {status.name}"
        errors += 1
        assert bench.get(dut.link_errors) == errors
        link.ping()                                        # still working

    link.write_words(0, [0x11, 0x22])
    expect(link.frame(0x7E, 3, b"\x01\x02"), Status.UNKNOWN_COMMAND)
    expect(link.frame(Command.READ_WORDS, 0, b"\x00"), Status.BAD_LENGTH)
    expect(link.frame(Command.PING, 2), Status.BAD_LENGTH)
    expect(link.frame(Command.START, 1, b"\x01"), Status.BAD_LENGTH)
    expect(link.read_frame(g.words - 1, 2), Status.BAD_ADDRESS)
    expect(link.read_frame(0xC0, 1), Status.BAD_ADDRESS)          # beyond addr_width too
    expect(link.write_frame(g.words, [0xDEAD]), Status.BAD_ADDRESS)
    expect(link.load_frame(3, 0, [1]), Status.BAD_ADDRESS)        # no queue 3
    expect(link.load_frame(0, g.depth - 1, [1, 2]), Status.BAD_ADDRESS)
    expect(link.frame(Command.START, 0, b"\x08"), Status.BAD_ADDRESS)
    expect(link.write_frame(1, [0x33, 0x44])[:-3], Status.TRUNCATED, wait=True)
    expect(link.frame(Command.READ_WORDS, 1), Status.TRUNCATED, wait=True)
    assert bench.loads == [] and bench.starts == []
    assert bench.mem == {0: 0x11, 1: 0x33}      # the truncated write's first word landed
    assert link.read_words(0, 2) == [0x11, 0x33]


def test_bridge_errors():
    check_errors(HostBridge(**SMALL))


def test_bridge_garbage_then_valid():
    dut = HostBridge(**SMALL)
    bench = Bench(dut, ready_prob=0.5)
    rng = random.Random(11)
    link = bench.link
    for trial in range(4):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        link.t.write(junk)
        bench.idle(20 * 40)              # past any frame the junk might have started
        link.resync()
        assert not link.t.to_device
        words = [rng.getrandbits(32) for _ in range(3)]
        link.write_words(8 * trial, words)
        assert link.read_words(8 * trial, 3) == words
    assert bench.get(dut.link_errors) >= 1


class HostSide(wiring.Component):
    """A bridge behind its UART and a host-side UART pair, for an end-to-end run."""

    def __init__(self, **kw):
        self.bridge = HostUARTBridge(**kw)
        d = self.bridge.divisor
        self.htx, self.hrx = UARTTx(divisor=d), UARTRx(divisor=d)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge, m.submodules.htx, m.submodules.hrx = self.bridge, self.htx, self.hrx
        m.d.comb += [self.bridge.rx.eq(self.htx.tx), self.hrx.rx.eq(self.bridge.tx)]
        return m


def test_uart_bridge_end_to_end():
    kw = {k: v for k, v in SMALL.items() if k != "timeout"}
    dut = HostSide(divisor=4, timeout_bytes=3, **kw)
    bench = Bench(dut, bridge=dut.bridge, i_bytes=dut.htx.i_stream, o_bytes=dut.hrx.o_stream)
    link = bench.link
    link.ping()
    words = [0xCAFEF00D, 0x01234567, 0]
    link.write_words(5, words)
    assert link.read_words(5, 3) == words
    link.start(0b010)
    assert bench.starts == [0b010]
    link.t.write(b"\xff\x00")
    bench.idle(10 * 10 * 4)
    assert link.resync() == bytes([Status.UNKNOWN_COMMAND])
    link.ping()
    assert bench.get(dut.bridge.link_errors) == 1
    assert bench.get(dut.bridge.rx_framing_errors) == 0


class NoRangeCheckParser(CommandParser):
    """Mutant: every address, queue, pc and mask is accepted."""

    def _range_ok(self, m, *args):
        return Const(1, 1)


class NoRangeCheckBridge(HostBridge):
    Parser = NoRangeCheckParser


def test_mutant_no_range_check_is_caught():
    with pytest.raises(AssertionError):
        check_errors(NoRangeCheckBridge(**SMALL))


def test_shapes_match_tile():
    # The Tile and the bridge are never elaborated; their sub-blocks (built in hw/, where
    # this file's UnusedElaboratable pragma does not reach) are collected here, silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_shapes()
        gc.collect()


def _check_shapes():
    from hw.tile import Tile
    from hw.tile.params import TileParams
    p = TileParams()
    tile = Tile(params=p)
    bridge = HostUARTBridge(divisor=434, word_bits=p.word_bits, addr_width=tile.sram.addr_width,
                            depth=p.depth, n_queues=3)
    m = Module()
    wiring.connect(m, bridge.host, tile.host)
    wiring.connect(m, bridge.load, tile.load)
    for name in ("status", "sems", "errors", "macs"):
        a, b = tile.signature.members[name].shape, bridge.signature.members[name].shape
        assert a == b or Shape.cast(a) == Shape.cast(b), name
    assert len(bridge.start) == len(tile.start)


@pytest.mark.parametrize("kw, name", [
    (dict(word_bits=12), "word_bits"), (dict(addr_width=0), "addr_width"),
    (dict(depth=1), "depth"), (dict(n_queues=9), "n_queues"), (dict(timeout=0), "timeout"),
    (dict(words=1 << 13), "words"), (dict(macs_width=0), "macs_width")])
def test_parameters(kw, name):
    with pytest.raises((TypeError, ValueError), match=name):
        HostBridge(**kw)


@pytest.mark.parametrize("cls", [UARTRx, UARTTx])
def test_uart_parameters(cls):
    for bad in (3, 1 << 21, 4.5):
        with pytest.raises((TypeError, ValueError), match="divisor"):
            cls(divisor=bad)
