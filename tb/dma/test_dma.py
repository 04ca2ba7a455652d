# amaranth: UnusedElaboratable=no
# (bad-parameter tests construct blocks that raise before they can be used)
"""DMAEngine with cocotbext-axi ``AxiRam`` as HBM, against :class:`sim.dma.DMAModel`.

Testplan (docs/dma.md, "Testplan"):
* ``aligned_1d``: 1-D HBM->HBM copies over every source/destination lane offset
  and lengths 1 .. 3 words + a 4 KiB-crossing copy.
* ``random_nd``: random 3-D descriptors of every kind (HBM/local -> HBM/local
  (broadcast masks)/remote), sizes 1 B .. 4 KiB, random alignment and signed
  strides, AxiRam pause generators on all five channels and random NoC /
  completion back-pressure; HBM, both SRAMs and the remote image compared byte
  for byte; every completion (semaphore, code) in order.
* ``errors``: SLVERR/DECERR on reads and writes, malformed and out-of-range
  descriptors interleaved with good ones: right codes, the good ones land.
* ``broadcast``: one HBM read written to both SRAMs, one completion.
* ``qos``: both queues full; the low class is served within ``starve_limit``.
* ``big_64k`` (slow): one 64 KiB copy HBM->HBM under back-pressure.
"""
import itertools
import logging
import random
import warnings

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiRam
from cocotbext.axi.constants import AxiResp

from hw.dma import DMAEngine
from hw.dma.descriptor import Err, Kind, noc_layout
from hw.mem import sram_request_layout
from hw.common.layout import pack, unpack
from sim.dma import DMAModel, unpack_completion
from sim.rtl import runner
from sim.rtl.blocks import run_dma
from sim.rtl.stream import StreamSink, StreamSource, reset

# cocotbext-axi 0.1.28 still calls cocotb 2's deprecated ``setimmediatevalue``;
# the simulator runs with warnings as errors, so exempt that library only.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.")

HBM_SRC, HBM_DST = (0, 1 << 16), (1 << 16, 1 << 16)
LOC_SRC, LOC_DST = (0, 4096), (4096, 4096)
REM_DST = (0, 1 << 16)


class Env:
    """DUT + AxiRam + model + back-door helpers."""

    def __init__(self, dut, p, rng):
        self.dut, self.p, self.rng = dut, p, rng
        self.lanes = p["data_width"] // 8
        self.model = DMAModel(**{k: p[k] for k in ("addr_width", "data_width", "dims", "n_local",
                                                    "sram_size", "hbm_size")})
        bus = AxiBus.from_prefix(dut, "m_axi", bus_separator="__")
        self.ram = AxiRam(bus, dut.clk, dut.rst, size=p["hbm_size"])
        logging.getLogger("cocotb.top.m_axi").setLevel(logging.WARNING)
        self.hbm = bytearray(p["hbm_size"])
        self.local = [bytearray(p["sram_size"]) for _ in range(p["n_local"])]
        self.remote = {}      # model image of the remote tile
        self.remote_got = {}  # what the NoC port delivered
        self.rd_poison, self.wr_poison = {}, {}
        self._install_errors()
        self.done = StreamSink(dut, "o_done", dut.clk, rng=rng)
        # Tops that route the NoC port on-chip (tb/dma/remote_top.py) say so with
        # `noc_on_chip`: probing for `noc__valid` would find their internal wire on
        # simulators that expose internal signals (Icarus), and drive its ready.
        self.noc = None if p.get("noc_on_chip") else StreamSink(dut, "noc", dut.clk, rng=rng)
        self.tasks = [self.done.start()] + ([self.noc.start()] if self.noc else [])
        self.srcs = [StreamSource(dut, f"i_desc__{q}", dut.clk, rng=rng) for q in range(2)]
        self.noc_seen = 0
        self.expected = []  # (sem, err) in issue order

    def _install_errors(self):
        lanes, state = self.lanes, {"rd": 0, "wr": 0}
        rd, wr = self.ram.read_if, self.ram.write_if
        orig_read, orig_write = rd._read, wr._write
        orig_r, orig_b = rd.r_channel.send, wr.b_channel.send

        async def _read(address, length):
            code = self.rd_poison.get(address // lanes)
            if code:
                state["rd"] = code
                raise IOError("poisoned read")
            return await orig_read(address, length)

        async def _write(address, data):
            for a in range(address, address + len(data)):
                code = self.wr_poison.get(a)
                if code:
                    state["wr"] = code
                    raise IOError("poisoned write")
            return await orig_write(address, data)

        async def send_r(r):
            if int(r.rresp) == AxiResp.SLVERR and state["rd"] == Err.RD_DECERR:
                r.rresp = AxiResp.DECERR
            await orig_r(r)

        async def send_b(b):
            if int(b.bresp) == AxiResp.SLVERR and state["wr"] == Err.WR_DECERR:
                b.bresp = AxiResp.DECERR
            await orig_b(b)

        rd._read, wr._write = _read, _write
        rd.r_channel.send, wr.b_channel.send = send_r, send_b

    def backpressure(self, prob):
        """Pause every AXI channel and the NoC / completion sinks with ``prob``."""
        r = self.rng
        for ch in (self.ram.read_if.ar_channel, self.ram.read_if.r_channel,
                   self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                   self.ram.write_if.b_channel):
            if prob:
                ch.set_pause_generator(itertools.cycle([r.random() < prob for _ in range(97)]))
            else:
                # Clearing the generator keeps its last value: un-pause explicitly.
                ch.clear_pause_generator()
                ch.pause = False
        self.done.ready_prob = 1 - prob / 2
        if self.noc:
            self.noc.ready_prob = self.done.ready_prob

    def fill_hbm(self, lo, n):
        data = bytes(self.rng.getrandbits(8) for _ in range(n))
        self.ram.write(lo, data)
        self.hbm[lo:lo + n] = data

    async def fill_local(self, i, lo, n, zero=False):
        data = bytes(n) if zero else bytes(self.rng.getrandbits(8) for _ in range(n))
        self.local[i][lo:lo + n] = data
        L = self.lanes
        layout = sram_request_layout(self.p["sram_aw"], self.p["data_width"])
        reqs = []
        for a in range(lo // L, (lo + n) // L):
            word = int.from_bytes(self.local[i][a * L:(a + 1) * L], "little")
            reqs.append(pack(layout, dict(addr=a, we=1, wstrb=(1 << L) - 1, wdata=word)))
        await StreamSource(self.dut, f"tb__{i}__req", self.dut.clk).send(reqs)

    async def read_local(self, i):
        L = self.lanes
        words = self.p["sram_size"] // L
        sink = StreamSink(self.dut, f"tb__{i}__rsp", self.dut.clk)
        task = sink.start()
        await StreamSource(self.dut, f"tb__{i}__req", self.dut.clk).send(range(words))
        beats = await sink.wait_for(words)
        task.cancel()
        sink.ready.value = 0
        return b"".join(b.to_bytes(L, "little") for b in beats)

    def drain_noc(self):
        if self.noc is None:
            return
        layout = noc_layout(self.p["addr_width"], self.p["data_width"])
        for word in self.noc.beats[self.noc_seen:]:
            beat = unpack(layout, word)
            for k in range(self.lanes):
                if beat["strb"] >> k & 1:
                    self.remote_got[beat["addr"] + k] = beat["data"] >> (8 * k) & 0xFF
        self.noc_seen = len(self.noc.beats)

    async def issue(self, descs, queue=0, valid_prob=1.0):
        """Send descriptors; update the model; remember the expected completions."""
        self.srcs[queue].valid_prob = valid_prob
        for d in descs:
            err = self.model.run(d, hbm=self.hbm, local=self.local, remote=self.remote,
                                 rd_poison=self.rd_poison, wr_poison=self.wr_poison)
            self.expected.append((d["sem"], err))
        task = cocotb.start_soon(self.srcs[queue].send([self.model.encode(d) for d in descs]))
        for _ in range(100_000):
            if task.done():
                break
            await RisingEdge(self.dut.clk)
        else:
            self.dump()
            raise AssertionError("descriptor queue stuck")

    def dump(self):
        """Log the engine's sequencing state (debug aid when a test stalls)."""
        d = self.dut.dma
        regs = {"decoder": ["decode_state"],
                "reader": ["rd_active", "rd_kind", "r_reserved", "s_reserved"],
                "realigner": ["al_active", "al_prime", "al_kind", "al_src_left", "al_dst_left"],
                "aw_issuer": ["wr_active"]}
        self.dut._log.error("engine: %s", {f"{s}.{n}": int(getattr(getattr(d, s), n).value)
                                           for s, names in regs.items() for n in names})
        fifos = [("reader", "rbuf"), ("reader", "sbuf"), ("completion", "comp_fifo"),
                 ("router", "rdone"), ("completion", "bdone"), (None, "rows_rd"),
                 (None, "rows_al"), (None, "rows_wr"), ("aw_issuer", "wlen_fifo"),
                 ("aw_issuer", "btrack"), ("aw_issuer", "aw_fifo")]
        for stage, f in fifos:
            sub = getattr(d if stage is None else getattr(d, stage), f)
            self.dut._log.error("%s: in v%s r%s out v%s r%s", f,
                                *(int(getattr(sub, x).value) for x in
                                  ("i_stream__valid", "i_stream__ready", "o_stream__valid",
                                   "o_stream__ready")))

    async def wait_done(self, max_cycles=60_000):
        try:
            got = await self.done.wait_for(len(self.expected), max_cycles=max_cycles)
        except AssertionError:
            self.dump()
            self.dut._log.error("stuck: done=%s expected=%s", [unpack_completion(w) for w in self.done.beats],
                                self.expected)
            raise
        return [unpack_completion(w) for w in got]

    async def check_all(self, ignore=()):
        """Compare every memory with the model byte for byte (minus ``ignore`` addresses)."""
        got = self.ram.read(0, self.p["hbm_size"])
        bad = [a for a in range(len(got)) if got[a] != self.hbm[a] and ("hbm", a) not in ignore]
        assert not bad, f"HBM differs at {len(bad)} bytes, first {bad[:8]}"
        for i in range(self.p["n_local"]):
            got = await self.read_local(i)
            bad = [a for a in range(len(got)) if got[a] != self.local[i][a]]
            assert not bad, f"SRAM{i} differs at {len(bad)} bytes, first {bad[:8]}"
        self.drain_noc()
        assert self.remote_got == self.remote, "remote (NoC) writes differ"
        return True


def region_desc(rng, model, src_kind, dst_kind, max_total, *, nd=True, mask=None, sem=0,
                rem_dst=REM_DST):
    """A random descriptor whose bounding boxes fit the kind's test regions."""
    regions = {("src", Kind.HBM): HBM_SRC, ("src", Kind.LOCAL): LOC_SRC,
               ("dst", Kind.HBM): HBM_DST, ("dst", Kind.LOCAL): LOC_DST,
               ("dst", Kind.REMOTE): rem_dst}
    while True:
        length = rng.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, 511, 512, 1000,
                             rng.randint(1, max_total)])
        outer = []
        for _ in range(model.dims - 1):
            c = rng.randint(1, 4) if nd and rng.random() < 0.6 else 1
            outer.append(dict(count=c, src_stride=rng.randint(-2 * length - 40, 2 * length + 40),
                              dst_stride=rng.randint(-2 * length - 40, 2 * length + 40)))
        total = length
        for o in outer:
            total *= o["count"]
        if total > max_total:
            continue
        d = dict(src_kind=src_kind, dst_kind=dst_kind, length=length, outer=outer, sem=sem,
                 dst_mask=mask if mask is not None else rng.randint(1, (1 << model.n_local) - 1))
        ok = True
        for side in ("src", "dst"):
            base, size = regions[(side, d[f"{side}_kind"])]
            lo = sum(min(0, (o["count"] - 1) * o[f"{side}_stride"]) for o in outer)
            hi = length - 1 + sum(max(0, (o["count"] - 1) * o[f"{side}_stride"]) for o in outer)
            if hi - lo + 1 > size:
                ok = False
                break
            d[side] = rng.randint(base - lo, base + size - 1 - hi)
        if ok:
            return d


async def start(dut, prob=0.0):
    p = runner.params()
    await reset(dut)
    env = Env(dut, p, random.Random(cocotb.RANDOM_SEED))
    env.backpressure(prob)
    # SRAM contents survive between coroutines (no reset): start from zero like the model.
    for i in range(p["n_local"]):
        await env.fill_local(i, 0, p["sram_size"], zero=True)
    return env


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def aligned_1d(dut):
    env = await start(dut)
    env.fill_hbm(*HBM_SRC)
    L = env.lanes
    descs = []
    sem = 0
    for so in range(L):
        for do in range(L):
            for n in (1, L - 1, L + 1, 3 * L - 2):
                descs.append(dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=64 * sem + so,
                                  dst=HBM_DST[0] + 64 * sem + do, length=n, sem=sem % 256))
                sem += 1
    # Crosses a 4 KiB page on both sides, misaligned.
    descs.append(dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=4096 - 300 + 3,
                      dst=HBM_DST[0] + 8192 - 100 + 5, length=1500, sem=7))
    await env.issue(descs)
    got = await env.wait_done()
    assert got == env.expected
    await env.check_all()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def random_nd(dut):
    env = await start(dut, prob=0.3)
    env.fill_hbm(*HBM_SRC)
    await env.fill_local(0, *LOC_SRC)
    rng = env.rng
    kinds = [(Kind.HBM, Kind.HBM), (Kind.HBM, Kind.LOCAL), (Kind.LOCAL, Kind.HBM),
             (Kind.HBM, Kind.REMOTE), (Kind.LOCAL, Kind.LOCAL), (Kind.LOCAL, Kind.REMOTE)]
    descs = [region_desc(rng, env.model, *kinds[i % len(kinds)], 4096, sem=i) for i in range(36)]
    dut._log.info("local SRAM filled")
    for phase, prob in enumerate((0.3, 0.0, 0.6)):
        dut._log.info("phase %d: %s", phase, [(d["src_kind"], d["dst_kind"], d["length"],
                                               [o["count"] for o in d["outer"]])
                                              for d in descs[12 * phase:12 * (phase + 1)]])
        env.backpressure(prob)
        await env.issue(descs[12 * phase:12 * (phase + 1)], queue=phase % 2, valid_prob=0.7)
        got = await env.wait_done()
        assert got == env.expected, f"completions differ in phase {phase}"
    await env.check_all()


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def errors(dut):
    env = await start(dut, prob=0.2)
    env.fill_hbm(*HBM_SRC)
    L = env.lanes
    # Poisoned HBM words (reads) and bytes (writes).
    for w in range(1000 // L, 1000 // L + 2):
        env.rd_poison[w] = Err.RD_SLVERR
    for w in range(3000 // L, 3000 // L + 1):
        env.rd_poison[w] = Err.RD_DECERR
    for a in range(HBM_DST[0] + 20000, HBM_DST[0] + 20010):
        env.wr_poison[a] = Err.WR_SLVERR
    for a in range(HBM_DST[0] + 30000, HBM_DST[0] + 30004):
        env.wr_poison[a] = Err.WR_DECERR
    good = lambda s, t, n, sem: dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=s, dst=HBM_DST[0] + t,
                                     length=n, sem=sem)
    descs = [
        good(100, 0, 300, 1),
        good(990, 1000, 100, 2),             # reads the SLVERR words
        good(5000, 2000, 500, 3),
        good(2990, 3000, 40, 4),             # DECERR read
        dict(good(0, 4000, 0, 5)),           # length 0: malformed
        dict(good(0, 4000, 10, 6), src_kind=3),  # bad kind: malformed
        dict(good(0, 4000, 10, 7), dst_kind=Kind.LOCAL, dst_mask=0),  # empty mask
        dict(good(0, 4000, 10, 8), outer=[dict(count=0, src_stride=0, dst_stride=0)]),
        good((1 << 17) - 5, 4000, 10, 9),    # source past the end of HBM
        dict(good(100, 4000, 10, 10), outer=[dict(count=3, src_stride=-80, dst_stride=0)]),
        dict(good(0, 0, 10, 11), dst_kind=Kind.LOCAL, dst=8190, dst_mask=1),  # past the SRAM
        good(6000, 19990, 64, 12),           # write SLVERR
        good(7000, 29990, 64, 13),           # write DECERR
        good(8000, 5000, 777, 14),
    ]
    await env.issue(descs)
    got = await env.wait_done()
    codes = [e for _, e in got]
    assert codes == [Err.OK, Err.RD_SLVERR, Err.OK, Err.RD_DECERR, Err.MALFORMED, Err.MALFORMED,
                     Err.MALFORMED, Err.MALFORMED, Err.RANGE, Err.RANGE, Err.RANGE, Err.WR_SLVERR,
                     Err.WR_DECERR, Err.OK], codes
    assert got == env.expected
    assert int(dut.errors.value) == sum(1 for c in codes if c)
    # Bytes a failed copy wrote are undefined; everything else must match.
    ignore = set()
    for d, (_, e) in zip(descs, got):
        if e in (Err.RD_SLVERR, Err.RD_DECERR, Err.WR_SLVERR, Err.WR_DECERR):
            ignore |= {("hbm", a) for a in env.model.touched(d)}
    await env.check_all(ignore=ignore)
    # The engine carries on: a later transfer completes cleanly.
    await env.issue([good(4000, 6000, 999, 15)])
    got = await env.wait_done()
    assert got[-1] == (15, Err.OK)


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def broadcast(dut):
    env = await start(dut, prob=0.2)
    env.fill_hbm(*HBM_SRC)
    d = dict(src_kind=Kind.HBM, dst_kind=Kind.LOCAL, dst_mask=0b11, src=123, dst=LOC_DST[0] + 5,
             length=1800, sem=42, outer=[dict(count=2, src_stride=2000, dst_stride=1900)])
    await env.issue([d])
    got = await env.wait_done()
    assert got == [(42, Err.OK)]
    await ClockCycles(dut.clk, 20)
    assert len(env.done.beats) == 1, "broadcast must complete once"
    await env.check_all()


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def qos(dut):
    """Queue 0 (high) holds many descriptors, queue 1 (low) a few: low is served
    at least once every ``starve_limit + 1`` completions while both wait."""
    env = await start(dut)
    p = env.p
    env.fill_hbm(*HBM_SRC)
    mk = lambda i, sem: dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=64 * i,
                             dst=HBM_DST[0] + 64 * i, length=64, sem=sem)
    env.done.ready_prob = 0.0
    high = [mk(i, i) for i in range(20)]
    low = [mk(100 + i, 200 + i) for i in range(4)]
    for d in high + low:
        env.model.run(d, hbm=env.hbm, local=env.local)
    t_hi = cocotb.start_soon(env.srcs[0].send([env.model.encode(d) for d in high]))
    t_lo = cocotb.start_soon(env.srcs[1].send([env.model.encode(d) for d in low]))
    await ClockCycles(dut.clk, 300)  # both queues and the in-flight window fill up
    env.done.ready_prob = 1.0
    got = await env.done.wait_for(len(high) + len(low))
    await t_hi
    await t_lo
    sems = [unpack_completion(w)[0] for w in got]
    last_low = -1
    for k, s in enumerate(sems):
        if s >= 200:
            gap = k - last_low - 1
            assert gap <= p["starve_limit"] + 1, f"low class waited {gap} descriptors: {sems}"
            last_low = k
    assert sorted(sems) == sorted(d["sem"] for d in high + low)
    assert sems.index(200) < len(high), "low class ran only after the high queue drained"
    await env.check_all()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def big_64k(dut):
    env = await start(dut, prob=0.1)
    env.fill_hbm(*HBM_SRC)
    await env.issue([dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=1, dst=HBM_DST[0] + 1,
                          length=65535, sem=1)])
    assert await env.wait_done() == [(1, Err.OK)]
    await env.check_all()


FAST = ["aligned_1d", "random_nd", "errors", "broadcast", "qos"]


def test_dma():
    run_dma(test_module="tb.dma.test_dma", testcase=FAST)


@pytest.mark.slow
def test_dma_64k():
    run_dma(test_module="tb.dma.test_dma", testcase="big_64k")


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="max_burst"):
        DMAEngine(max_burst=3)
    with pytest.raises(ValueError, match="dims"):
        DMAEngine(dims=0)
    with pytest.raises(ValueError, match="read_buffer"):
        DMAEngine(max_burst=16, read_buffer=8)
    with pytest.raises(ValueError, match="sram_size"):
        DMAEngine(sram_size=1000)


@cocotb.test(timeout_time=500, timeout_unit="ms")
async def bench_sweep(dut):
    """Not part of the regression: bus utilisation for ``scripts/bench_dma.py``.

    Utilisation = payload bytes / (bus bytes per beat x cycles), cycles from the
    first descriptor offered to the last completion; reads and writes use
    separate AXI channels, so 100 % means one beat per cycle on both at once.
    """
    import json
    import os
    env = await start(dut)
    p = env.p
    env.fill_hbm(*HBM_SRC)
    L = env.lanes
    quick = os.environ.get("BENCH_QUICK", "0") == "1"
    sizes = [64, 256, 1024, 4096, 16384] + ([] if quick else [32768, 65536])
    out = {"lanes": L, "rows": []}

    async def timed(descs):
        env.expected = []
        env.done.beats.clear()
        t0 = cocotb.utils.get_sim_time("ns")
        await env.issue(descs)
        await env.wait_done(max_cycles=2_000_000)
        return (cocotb.utils.get_sim_time("ns") - t0) / 10

    for size in sizes:
        one = await timed([dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=0, dst=HBM_DST[0],
                                length=size, sem=1)])
        # Back-to-back descriptors over disjoint ranges inside the 64 KiB regions.
        n = min(16, HBM_SRC[1] // size)
        many = None
        if n >= 2:
            cycles = await timed([dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=i * size,
                                       dst=HBM_DST[0] + i * size, length=size, sem=i)
                                  for i in range(n)])
            many = n * size / (L * cycles)
        assert all(e == Err.OK for _, e in env.expected)
        out["rows"].append(dict(size=size, one=size / (L * one), many=many, n=n))
    # Broadcast: one HBM read written to every local SRAM vs one SRAM.
    size = 4096
    single = await timed([dict(src_kind=Kind.HBM, dst_kind=Kind.LOCAL, dst_mask=1, src=0,
                               dst=0, length=size, sem=1)])
    bcast = await timed([dict(src_kind=Kind.HBM, dst_kind=Kind.LOCAL,
                              dst_mask=(1 << p["n_local"]) - 1, src=0, dst=0, length=size, sem=2)])
    out["broadcast"] = dict(size=size, n=p["n_local"], single_cycles=single, bcast_cycles=bcast)
    path = os.environ.get("BENCH_OUT")
    if path:
        with open(path, "w") as f:
            json.dump(out, f)
    dut._log.info("bench: %s", out)
