"""The FPGA tile's memory path in the Amaranth simulator.

Testplan (docs/fpga.md):
* ``test_axi_ram_bursts``: :class:`hw.mem.axi_ram.AXIRam` answers random INCR read
  and write bursts with random ``rready``/``wvalid``/``bready`` stalls; every read
  beat equals a byte-array model (partial ``wstrb`` included), ``rlast`` and the
  IDs are right.
* ``test_host_window``: :class:`~hw.mem.port_axi.PortSplit` +
  :class:`~hw.mem.port_axi.PortToAXI` + ``AXIArbiter`` + ``AXIRam``: random host
  reads/writes over both windows (the low window a Python SRAM model with random
  latency) come back in request order with the model's data, each window at its
  own offset.
"""
import random

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.cluster import AXIArbiter
from hw.dma.axi import AXI4Signature
from hw.mem.axi_ram import AXIRam
from hw.mem.port_axi import PortSplit, PortToAXI
from hw.mem.sram import SRAMPortSignature

DW = 64
BEAT = DW // 8
PATIENCE = 200   # cycles one handshake may take before the test fails (no hang)


async def _until(ctx, cond, *samples):
    """``ctx.tick().sample(*samples).until(cond)``, failing after PATIENCE cycles."""
    for _ in range(PATIENCE):
        got = await ctx.tick().sample(cond, *samples)
        if got[2]:
            return got[3:]
    raise AssertionError(f"no handshake in {PATIENCE} cycles")


def test_axi_ram_bursts():
    dut = AXIRam(addr_width=16, data_width=DW, size=4096)
    model = bytearray(4096)
    rng = random.Random(3)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    axi = dut.axi
    checked = []

    async def tb(ctx):
        for _ in range(40):
            length = rng.randrange(1, 9)
            start = rng.randrange(0, 4096 // BEAT - length)
            ident = rng.randrange(2)
            if rng.random() < 0.5:
                ctx.set(axi.awvalid, 1)
                ctx.set(axi.awaddr, start * BEAT)
                ctx.set(axi.awlen, length - 1)
                ctx.set(axi.awid, ident)
                await _until(ctx, axi.awready)
                ctx.set(axi.awvalid, 0)
                for i in range(length):
                    while rng.random() < 0.3:
                        ctx.set(axi.wvalid, 0)
                        await ctx.tick()
                    word, strb = rng.getrandbits(DW), rng.getrandbits(BEAT)
                    ctx.set(axi.wvalid, 1)
                    ctx.set(axi.wdata, word)
                    ctx.set(axi.wstrb, strb)
                    ctx.set(axi.wlast, i == length - 1)
                    await _until(ctx, axi.wready)
                    for b in range(BEAT):
                        if strb >> b & 1:
                            model[(start + i) * BEAT + b] = word >> (8 * b) & 0xFF
                ctx.set(axi.wvalid, 0)
                while rng.random() < 0.5:
                    await ctx.tick()
                ctx.set(axi.bready, 1)
                bid, = await _until(ctx, axi.bvalid, axi.bid)
                assert bid == ident
                ctx.set(axi.bready, 0)
            else:
                ctx.set(axi.arvalid, 1)
                ctx.set(axi.araddr, start * BEAT)
                ctx.set(axi.arlen, length - 1)
                ctx.set(axi.arid, ident)
                await _until(ctx, axi.arready)
                ctx.set(axi.arvalid, 0)
                for i in range(length):
                    while rng.random() < 0.3:
                        ctx.set(axi.rready, 0)
                        await ctx.tick()
                    ctx.set(axi.rready, 1)
                    data, last, rid = await _until(ctx, axi.rvalid, axi.rdata, axi.rlast, axi.rid)
                    want = int.from_bytes(model[(start + i) * BEAT:(start + i + 1) * BEAT],
                                          "little")
                    assert (data, last, rid) == (want, i == length - 1, ident), (start, i)
                    checked.append(data)
                ctx.set(axi.rready, 0)

    sim.add_testbench(tb)
    sim.run()
    assert len(checked) > 50 and any(checked)


class _Window(wiring.Component):
    """The FPGA tile's host path without the tile: the low window is exposed."""

    def __init__(self):
        super().__init__({"port": In(SRAMPortSignature(addr_width=10, data_width=DW)),
                          "low": Out(SRAMPortSignature(addr_width=9, data_width=DW)),
                          "dma": In(AXI4Signature(addr_width=16, data_width=DW))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.split = s = PortSplit(addr_width=10, split=512, low_width=9, high_width=8,
                                           data_width=DW)
        m.submodules.p2a = p = PortToAXI(addr_width=8, data_width=DW, axi_addr_width=16)
        m.submodules.arb = a = AXIArbiter(n=2, addr_width=16, data_width=DW)
        m.submodules.ram = r = AXIRam(addr_width=16, data_width=DW, size=256 * BEAT)
        wiring.connect(m, wiring.flipped(self.port), s.port)
        wiring.connect(m, s.low, wiring.flipped(self.low))
        wiring.connect(m, s.high, p.port)
        wiring.connect(m, wiring.flipped(self.dma), a.s_axi[0])
        wiring.connect(m, p.m_axi, a.s_axi[1])
        wiring.connect(m, a.m_axi, r.axi)
        return m


def test_host_window():
    dut = _Window()
    rng = random.Random(5)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    req, rsp, low = dut.port.req, dut.port.rsp, dut.low
    expected, got = [], []

    async def low_side(ctx):
        # A Python SRAM: accepts at random, answers reads after a random delay, in order.
        sram, queue = {}, []
        while True:
            ready = rng.random() < 0.7
            ctx.set(low.req.ready, ready)
            ctx.set(low.rsp.valid, bool(queue) and queue[0][0] <= 0)
            ctx.set(low.rsp.payload, queue[0][1] if queue else 0)
            _, _, rv, rr, qv, a, we, wd = await ctx.tick().sample(
                low.rsp.valid, low.rsp.ready, low.req.valid, low.req.payload.addr,
                low.req.payload.we, low.req.payload.wdata)
            if rv and rr:
                queue.pop(0)
            for q in queue:
                q[0] -= 1
            if qv and ready:
                if we:
                    sram[a] = wd
                else:
                    queue.append([rng.randrange(3), sram.get(a, 0)])

    async def sink(ctx):
        while True:
            ready = rng.random() < 0.8
            ctx.set(rsp.ready, ready)
            _, _, valid, value = await ctx.tick().sample(rsp.valid, rsp.payload)
            if valid and ready:
                got.append(value)

    async def host(ctx):
        model = {}
        for _ in range(150):
            a = rng.randrange(512, 768) if rng.random() < 0.5 else rng.randrange(0, 512)
            we = rng.random() < 0.5
            word = rng.getrandbits(DW)
            ctx.set(req.valid, 1)
            ctx.set(req.payload.addr, a)
            ctx.set(req.payload.we, we)
            ctx.set(req.payload.wstrb, (1 << BEAT) - 1)
            ctx.set(req.payload.wdata, word)
            await _until(ctx, req.ready)
            if we:
                model[a] = word
            else:
                expected.append(model.get(a, 0))
        ctx.set(req.valid, 0)
        for _ in range(200):
            await ctx.tick()

    sim.add_testbench(low_side, background=True)
    sim.add_testbench(sink, background=True)
    sim.add_testbench(host)
    sim.run()
    assert len(expected) > 40
    assert got == expected
