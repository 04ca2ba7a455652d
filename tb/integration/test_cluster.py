"""Cluster integration: two tiles running compiled programs, NoC remote writes, shared HBM.

Simulator: Icarus (see :data:`SIM`; ``sim.rtl.runner`` compiles it as Verilog-2005).

Testplan (docs/tile.md):

* ``two_tiles``: tile 0 runs ``GELU(x @ W + b)`` (FP8), tile 1 a different GEMM (FP4
  weights), both from disjoint HBM ranges through the cluster's AXI arbiter at the same
  time, the AXI RAM at full rate: each tile's written SRAM words and HBM bytes equal its
  golden model (``sim.tile.TileModel``) bit for bit; all six queues end DONE.
* ``two_tiles_contention``: the same two programs while the cluster DMA, the third AXI
  master, copies HBM -> tile 1 SRAM (NoC, remote kind) and HBM -> cluster SRAM and then
  keeps copying 1 KiB HBM -> HBM until both tiles are done, and the AXI RAM pauses every
  channel (AW, W, B, AR, R) at random (30 %, fixed seed): the masters contend (cycles
  with two or more ARs, resp. AWs, waiting are counted and must be many), every result
  is still bit-exact and every DMA copy equals its source.
* ``remote_write``: the cluster DMA alone copies HBM -> tile 1 SRAM (NoC, remote kind) and
  HBM -> cluster SRAM; the words read back through the host ports match.
* ``test_mutant_axi_arbiter_is_caught`` (slow): an arbiter that grants a new AR while a
  read burst is open (R beats of the open burst then follow the new grant, and the
  rest of a burst is stranded when ``r_open`` closes early) fails ``two_tiles``: the
  tiles' DMAs stall and the queues do not finish within 30 000 cycles.
"""
import os
import random

import cocotb
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from hw.dma.descriptor import Kind
from hw.cluster import NODE_SHIFT, AXIArbiter, Cluster
from hw.tile import TileParams
from sim.compiler.workloads import gemm_layer
from sim.dma import DMAModel
from sim.rtl import runner
from sim.rtl.image import load_image, make_ram
from sim.rtl.stream import reset
from sim.rtl.tile_host import TileHost, make_host, run_tiles
from sim.tile import TileModel

from .common import compare

TIMEOUT = dict(timeout_time=20, timeout_unit="ms")
#: AXI masters on the cluster's arbiter: tile 0, tile 1, cluster DMA.
MASTERS = 3
#: Cluster-DMA test data: source in HBM (below tile 1's range at ``hbm_size // 2``, above
#: tile 0's), destination words in tile 1's SRAM (unused by its program) and the cluster
#: SRAM byte address; background HBM -> HBM copies of ``COPY_LEN`` bytes from
#: ``CDMA_SRC + 512`` to ``COPY_DST``.
CDMA_SRC = 0x7F000
T1_WORD = 0xE00
CSRAM_BYTE = 0x40
COPY_LEN = 1024
COPY_DST = 0x7F800


def _cfg():
    return TileParams(**runner.params()["cfg"])


def _programs(cfg):
    return [gemm_layer(cfg, M=8, K=32, N=32, seed=5)[0],
            gemm_layer(cfg, M=4, K=64, N=16, wfmt="fp4_e2m1", act=None, seed=6,
                       hbm_base=cfg.hbm_size // 2)[0]]


def _pauses(rng, prob):
    while True:
        yield rng.random() < prob


def throttle(ram, rng, prob):
    """Pause every channel of ``ram`` (an ``AxiRam``) with probability ``prob`` per cycle."""
    for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
               ram.read_if.ar_channel, ram.read_if.r_channel):
        ch.set_pause_generator(_pauses(rng, prob))


async def count_contention(dut, out):
    """Count cycles in which two or more masters wait with an AR (``out["ar"]``) or AW."""
    axi = dut.axi   # the AXIArbiter instance
    out.update(ar=0, aw=0)
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        for ch in ("ar", "aw"):
            if sum(int(getattr(axi, f"s_axi__{i}__{ch}valid").value)
                   for i in range(MASTERS)) >= 2:
                out[ch] += 1


def _cdma_model(cfg, csram):
    return DMAModel(addr_width=cfg.addr_width, data_width=32 * cfg.n, dims=cfg.dims,
                    sram_size=csram, hbm_size=cfg.hbm_size)


def _cdma_descs(cfg, src, t1_word, csram_byte):
    """HBM ``src`` -> tile 1 SRAM word ``t1_word`` (NoC), HBM ``src + 256`` -> cluster SRAM."""
    return [dict(src_kind=Kind.HBM, dst_kind=Kind.REMOTE, src=src,
                 dst=(1 << NODE_SHIFT) | t1_word * cfg.word_bytes, length=256),
            dict(src_kind=Kind.HBM, dst_kind=Kind.LOCAL, dst_mask=1, src=src + 256, dst=csram_byte,
                 length=256)]


async def cdma_run(dut, model, descs, *, max_cycles=20_000, settle=50):
    """Send ``descs`` to the cluster DMA and wait for their completions (no error).

    Handshakes are sampled in the settled phase (``ReadOnly``) before the edge, so the
    result does not depend on the simulator's view of values right after an edge.
    """
    for d in descs:
        dut.cdma_desc__valid.value = 1
        dut.cdma_desc__payload.value = model.encode(d)
        while True:
            await ReadOnly()
            fire = int(dut.cdma_desc__ready.value)
            await RisingEdge(dut.clk)
            if fire:
                break
    dut.cdma_desc__valid.value = 0
    done = 0
    for _ in range(max_cycles):   # cdma_done__ready is held at 1
        await ReadOnly()
        if int(dut.cdma_done__valid.value):
            assert int(dut.cdma_done__payload.value) >> 8 == 0, "cluster DMA error"
            done += 1
        await RisingEdge(dut.clk)
        if done == len(descs):
            break
    assert done == len(descs), f"cluster DMA: {done} of {len(descs)} completions"
    for _ in range(settle):   # the last NoC packets land after the completion
        await RisingEdge(dut.clk)


async def cdma_traffic(dut, model, descs, copy, stop):
    """Run ``descs``, then repeat the HBM -> HBM ``copy`` until ``stop`` is non-empty.

    Returns the number of copies; keeps the cluster DMA reading and writing HBM for as
    long as the tiles run, so all three AXI masters contend.
    """
    await cdma_run(dut, model, descs)
    n = 0
    while not stop:
        await cdma_run(dut, model, [copy], settle=0)
        n += 1
    return n


async def check_cdma(dut, cfg, csram, host1, data, t1_word, csram_byte):
    """Tile 1's SRAM words and the cluster SRAM hold what :func:`_cdma_descs` copied."""
    wb = cfg.word_bytes
    words = await host1.read_sram(range(t1_word, t1_word + 256 // wb))
    got = b"".join(w.to_bytes(wb, "little") for w in words)
    assert got == data[:256], "remote write to tile 1 SRAM"
    chost = TileHost(dut, word_bits=32 * cfg.n, sram_aw=(csram // wb - 1).bit_length(),
                     depth=cfg.depth, prefix="c")   # only its chost__* SRAM port is used
    words = await chost.read_sram(range(csram_byte // wb, (csram_byte + 256) // wb))
    got = b"".join(w.to_bytes(wb, "little") for w in words)
    assert got == data[256:512], "cluster DMA to cluster SRAM"


async def _idle_inputs(dut):
    await reset(dut)
    dut.cdma_desc__valid.value = 0
    dut.cdma_done__ready.value = 1
    dut.chost__req__valid.value = 0


async def _two_tiles(dut, *, pause=0.0, cdma=False):
    cfg = _cfg()
    p = runner.params()
    await _idle_inputs(dut)
    ram = make_ram(dut, cfg)
    rng = random.Random(cocotb.RANDOM_SEED)
    progs = _programs(cfg)
    images = [pr.image() for pr in progs]
    hosts = [make_host(dut, cfg, prefix=f"t{i}__") for i in range(2)]
    await RisingEdge(dut.clk)
    for h, img in zip(hosts, images):
        await load_image(h, ram, img)
    if pause:
        throttle(ram, rng, pause)
    data = bytes(rng.getrandbits(8) for _ in range(512))
    if cdma:
        # The DMA's data must not touch what the programs use.
        wb = cfg.word_bytes
        lines = set(range(CDMA_SRC // wb, (COPY_DST + COPY_LEN) // wb))
        for pr, img in zip(progs, images):
            used = {line for addr, b in img["hbm"].items()
                    for line in range(addr // wb, (addr + len(b) - 1) // wb + 1)}
            for op in pr.ops:
                used |= op.hreads | op.hwrites
            assert not used & lines, "cluster DMA source overlaps a program's HBM"
        words1 = set(images[1]["sram"])
        for op in progs[1].ops:
            words1 |= op.reads | op.writes
        assert not words1 & set(range(T1_WORD, T1_WORD + 256 // wb)), "tile 1 SRAM overlap"
        ram.write(CDMA_SRC, data)
        ram.write(CDMA_SRC + 512, bytes(rng.getrandbits(8) for _ in range(COPY_LEN)))
    stats = {}
    counter = cocotb.start_soon(count_contention(dut, stats))
    stop = []
    if cdma:
        copy = dict(src_kind=Kind.HBM, dst_kind=Kind.HBM, src=CDMA_SRC + 512, dst=COPY_DST,
                    length=COPY_LEN)
        dma = cocotb.start_soon(cdma_traffic(
            dut, _cdma_model(cfg, p["csram"]), _cdma_descs(cfg, CDMA_SRC, T1_WORD, CSRAM_BYTE),
            copy, stop))
    res = await run_tiles(hosts, max_cycles=p.get("max_cycles", 100_000))
    if cdma:
        stop.append(True)
        stats["copies"] = await dma
    counter.cancel()
    for i, r in enumerate(res):
        assert not r["timeout"] and all(s["state"] == "DONE" for s in r["status"]), (i, r)
    for i, (h, pr, img, r) in enumerate(zip(hosts, progs, images, res)):
        golden = TileModel(cfg).run(pr, img)
        c = await compare(h, ram, pr, golden, log=dut._log)
        dut._log.info("tile %d: %d cycles, %s", i, r["cycles"], c)
        assert c["sram_bad"] == 0 and c["hbm_bad"] == 0, (i, c)
    dut._log.info("contention (cycles with >= 2 masters waiting): AR %d, AW %d; %s",
                  stats["ar"], stats["aw"], stats)
    if cdma:
        await check_cdma(dut, cfg, p["csram"], hosts[1], data, T1_WORD, CSRAM_BYTE)
        assert ram.read(COPY_DST, COPY_LEN) == ram.read(CDMA_SRC + 512, COPY_LEN), "HBM copy"
        assert int(dut.noc_errors.value) == 0
    return res, stats


@cocotb.test(**TIMEOUT)
async def two_tiles(dut):
    await _two_tiles(dut)


@cocotb.test(**TIMEOUT)
async def two_tiles_contention(dut):
    _, stats = await _two_tiles(dut, pause=0.3, cdma=True)
    assert stats["copies"] >= 2 and stats["ar"] >= 100 and stats["aw"] >= 10, stats


@cocotb.test(**TIMEOUT)
async def remote_write(dut):
    cfg = _cfg()
    p = runner.params()
    await _idle_inputs(dut)
    ram = make_ram(dut, cfg)
    host1 = make_host(dut, cfg, prefix="t1__")
    data = bytes((7 * i + 3) & 0xFF for i in range(512))
    ram.write(0x1000, data)
    await cdma_run(dut, _cdma_model(cfg, p["csram"]), _cdma_descs(cfg, 0x1000, 0x200, 0x40))
    await check_cdma(dut, cfg, p["csram"], host1, data, 0x200, 0x40)
    assert int(dut.noc_errors.value) == 0


#: Simulator of this test: Icarus. The cluster's Verilator C++ model (about 100 files of
#: ~1 MB) takes well over 20 minutes to build on the shared 2-core machine, while the
#: Verilog export plus ``iverilog`` of the 295k-line design take about 30 s and the three
#: coroutines 35-80 s (quiet / loaded machine). They use only cocotb/cocotbext-axi, so ``CLUSTER_SIM=verilator``
#: runs them under Verilator too (same checks; 6 min 50 s, most of it Verilator and the C++ build).
SIM = os.environ.get("CLUSTER_SIM", "icarus")


def run_cluster(cluster, *, testcase=None, **params):
    """Run this module's coroutines on ``cluster`` (Icarus unless ``CLUSTER_SIM``)."""
    cfg = cluster.tiles[0].params
    params = {"cfg": cfg.as_dict(), "csram": cluster.sram_size, **params}
    runner.run(cluster, block="integration_cluster", sim=SIM, testcase=testcase,
               test_module="tb.integration.test_cluster", params=params)


needs_icarus = pytest.mark.skipif(SIM == "icarus" and "icarus" not in runner.simulators(),
                                  reason="Icarus (iverilog, vvp) not installed")


@needs_icarus
def test_cluster():
    run_cluster(Cluster())


class OverlappingReadsArbiter(AXIArbiter):
    """Mutant: grants a new AR while a read burst is still open.

    The R beats of the open burst are then routed to the newly granted master, and
    ``r_open`` closes at the first ``rlast`` while another burst is outstanding: the
    kind of bug a cluster test with several masters reading HBM must catch.
    """

    def elaborate(self, platform):
        m = super().elaborate(platform)
        rarb = m.submodules.rarb
        s, mm = self.s_axi, self.m_axi
        n = len(s)
        # Later comb assignments win: drop the "no read burst open" condition.
        m.d.comb += [rarb.requests[i].eq(s[i].arvalid) for i in range(n)]
        m.d.comb += mm.arvalid.eq(rarb.valid)
        for i in range(n):
            m.d.comb += s[i].arready.eq(mm.arready & rarb.valid & (rarb.index == i))
        return m


@pytest.mark.slow
@needs_icarus
def test_mutant_axi_arbiter_is_caught(monkeypatch):
    """The cluster test must be able to fail: a read arbiter that overlaps bursts."""
    import hw.cluster
    monkeypatch.setattr(hw.cluster, "AXIArbiter", OverlappingReadsArbiter)
    with pytest.raises((AssertionError, SystemExit)):
        run_cluster(Cluster(), testcase="two_tiles", mutant="overlapping_reads",
                    max_cycles=30_000)
