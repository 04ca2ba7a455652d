"""Cluster integration: two tiles running compiled programs, NoC remote writes, shared HBM.

Testplan (docs/tile.md):
* ``two_tiles``: tile 0 runs ``GELU(x @ W + b)`` (FP8), tile 1 a different
  GEMM (FP4 weights), both from disjoint HBM ranges through the cluster's AXI
  arbiter at the same time: each tile's written SRAM words and HBM bytes equal
  its golden model bit for bit.
* ``remote_write``: the cluster DMA copies HBM -> tile 1 SRAM (NoC, remote
  kind) and HBM -> cluster SRAM; the words read back through the host ports match.
"""
import cocotb
import pytest
from cocotb.triggers import RisingEdge

from hw.cluster import NODE_SHIFT, Cluster
from sim.compiler import TileConfig
from sim.compiler.workloads import gemm_layer
from sim.dma import DMAModel
from sim.tile import TileModel
from tb import harness
from tb.stream import reset

from .common import compare, load_image, make_host, make_ram
from .driver import TileHost, run_tiles

TIMEOUT = dict(timeout_time=20, timeout_unit="ms")


def _cfg():
    return TileConfig(**harness.params()["cfg"])


@cocotb.test(**TIMEOUT)
async def two_tiles(dut):
    cfg = _cfg()
    await reset(dut)
    dut.cdma_desc__valid.value = 0
    dut.cdma_done__ready.value = 1
    dut.chost__req__valid.value = 0
    ram = make_ram(dut, cfg)
    progs = [gemm_layer(cfg, M=8, K=32, N=32, seed=5)[0],
             gemm_layer(cfg, M=4, K=64, N=16, wfmt="fp4_e2m1", act=None, seed=6,
                        hbm_base=cfg.hbm_size // 2)[0]]
    hosts = [make_host(dut, cfg, prefix=f"t{i}__") for i in range(2)]
    await RisingEdge(dut.clk)
    images = [p.image() for p in progs]
    for h, img in zip(hosts, images):
        await load_image(h, ram, img)
    res = await run_tiles(hosts, max_cycles=100_000)
    for i, (h, p, img, r) in enumerate(zip(hosts, progs, images, res)):
        assert all(s["state"] == "DONE" for s in r["status"]), (i, r["status"])
        golden = TileModel(cfg).run(p, img)
        c = await compare(h, ram, p, golden, log=dut._log)
        dut._log.info("tile %d: %d cycles, %s", i, r["cycles"], c)
        assert c["sram_bad"] == 0 and c["hbm_bad"] == 0, (i, c)


@cocotb.test(**TIMEOUT)
async def remote_write(dut):
    cfg = _cfg()
    p = harness.params()
    await reset(dut)
    dut.cdma_done__ready.value = 1
    dut.chost__req__valid.value = 0
    ram = make_ram(dut, cfg)
    host1 = make_host(dut, cfg, prefix="t1__")
    data = bytes((7 * i + 3) & 0xFF for i in range(512))
    ram.write(0x1000, data)
    model = DMAModel(addr_width=cfg.addr_width, data_width=32 * cfg.n, dims=cfg.dims,
                     sram_size=p["csram"], hbm_size=cfg.hbm_size)
    wb = cfg.word_bytes
    descs = [dict(src_kind=0, dst_kind=2, src=0x1000, dst=(1 << NODE_SHIFT) | 0x200 * wb,
                  length=256),
             dict(src_kind=0, dst_kind=1, dst_mask=1, src=0x1100, dst=0x40, length=256)]
    for d in descs:
        dut.cdma_desc__valid.value = 1
        dut.cdma_desc__payload.value = model.encode(d)
        await RisingEdge(dut.clk)
        while not int(dut.cdma_desc__ready.value):
            await RisingEdge(dut.clk)
    dut.cdma_desc__valid.value = 0
    done = 0
    for _ in range(2000):
        await RisingEdge(dut.clk)
        if int(dut.cdma_done__valid.value):
            assert int(dut.cdma_done__payload.value) >> 8 == 0, "cluster DMA error"
            done += 1
            if done == 2:
                break
    assert done == 2
    for _ in range(50):   # the last NoC packets land after the completion
        await RisingEdge(dut.clk)
    words = await host1.read_sram(range(0x200, 0x200 + 256 // wb))
    got = b"".join(w.to_bytes(wb, "little") for w in words)
    assert got == data[:256], "remote write to tile 1 SRAM"
    chost = TileHost(dut, word_bits=32 * cfg.n, sram_aw=(p["csram"] // wb - 1).bit_length(),
                     depth=cfg.depth, prefix="c")   # only its chost__* SRAM port is used
    words = await chost.read_sram(range(0x40 // wb, (0x40 + 256) // wb))
    got = b"".join(w.to_bytes(wb, "little") for w in words)
    assert got == data[0x100:0x200], "cluster DMA to cluster SRAM"


@pytest.mark.slow
def test_cluster():
    c = Cluster()
    cfg = TileConfig.of(c.tiles[0])
    harness.run(c, block="integration_cluster", test_module="tb.integration.test_cluster",
                params={"cfg": cfg.__dict__, "csram": c.sram_size})
