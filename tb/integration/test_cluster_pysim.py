"""Cluster integration in Amaranth's simulator (fast; the Verilator/cocotb version is ``slow``).

``test_cluster_two_tiles_pysim``: ``hw.cluster.Cluster`` (2 tiles + cluster SRAM +
cluster DMA + NoC + AXI arbiter) with a small Python AXI4 RAM as HBM. Tile 0 runs a
compiled FP8 GEMM, tile 1 a compiled FP4 GEMM + GELU from another HBM range, both at
once through the AXI arbiter, while the cluster DMA writes 256 bytes from HBM into tile
1's SRAM over the NoC (remote kind). Every SRAM word and HBM line each program writes
equals its golden model (``sim.tile.TileModel``) bit for bit, the remote words equal
the HBM source, all six queues end DONE, no NoC errors.
"""
import sys

from amaranth.sim import Simulator

from hw.dma.descriptor import Kind
from hw.cluster import Cluster, NODE_SHIFT
from hw.mem.sram import sram_request_layout
from hw.common.layout import pack
from sim.compiler.workloads import gemm_layer
from sim.dma import DMAModel
from sim.tile import TileModel


def test_cluster_two_tiles_pysim():
    # Amaranth's Python simulator prints wide constants as decimal literals.
    sys.set_int_max_str_digits(0)
    result = {}
    cl = Cluster()
    cfg = cl.tiles[0].params
    progs = [gemm_layer(cfg, M=4, K=32, N=8, act=None, seed=5)[0],
             gemm_layer(cfg, M=4, K=32, N=8, wfmt="fp4_e2m1", act="GELU", seed=6, hbm_base=cfg.hbm_size // 2)[0]]
    imgs = [p.image() for p in progs]
    hbm = bytearray(cfg.hbm_size)
    for img in imgs:
        for a, b in img["hbm"].items(): hbm[a:a+len(b)] = b
    hbm[0x80000 - 4096:0x80000 - 4096 + 256] = bytes((7*i+3) & 255 for i in range(256))
    goldens = [TileModel(cfg).run(p, img) for p, img in zip(progs, imgs)]
    req = sram_request_layout(cl.tiles[0].sram.addr_width, 128)
    ax = cl.m_axi
    sim = Simulator(cl); sim.add_clock(1e-8)
    async def axi_read(ctx):
        while True:
            ctx.set(ax.arready, 1)
            *_, v, addr, ln = await ctx.tick().sample(ax.arvalid, ax.araddr, ax.arlen)
            if not v: continue
            ctx.set(ax.arready, 0)
            for i in range(ln + 1):
                a = addr + 16 * i
                ctx.set(ax.rdata, int.from_bytes(hbm[a:a+16], "little")); ctx.set(ax.rvalid, 1); ctx.set(ax.rlast, i == ln); ctx.set(ax.rresp, 0)
                await ctx.tick().until(ax.rready)
            ctx.set(ax.rvalid, 0)
    async def axi_write(ctx):
        while True:
            ctx.set(ax.awready, 1)
            *_, v, addr, ln = await ctx.tick().sample(ax.awvalid, ax.awaddr, ax.awlen)
            if not v: continue
            ctx.set(ax.awready, 0); ctx.set(ax.wready, 1)
            i = 0
            while i <= ln:
                *_, wv, d, st = await ctx.tick().sample(ax.wvalid, ax.wdata, ax.wstrb)
                if wv:
                    a = addr + 16 * i
                    for b in range(16):
                        if st >> b & 1: hbm[a + b] = d >> (8 * b) & 255
                    i += 1
            ctx.set(ax.wready, 0); ctx.set(ax.bvalid, 1); ctx.set(ax.bresp, 0)
            await ctx.tick().until(ax.bready)
            ctx.set(ax.bvalid, 0)
    def T(i, name): return getattr(cl, f"t{i}__{name}")
    async def tb(ctx):
        for i, img in enumerate(imgs):
            for q, words in enumerate(img["queues"]):
                for a, wd in enumerate(words):
                    ctx.set(T(i, "load").valid, 1); ctx.set(T(i, "load").payload.as_value(), q | a << 2 | wd << 10)
                    await ctx.tick()
            ctx.set(T(i, "load").valid, 0)
            for a, v in sorted(img["sram"].items()):
                ctx.set(T(i, "host").req.valid, 1); ctx.set(T(i, "host").req.payload.as_value(), pack(req, dict(addr=a, we=1, wstrb=0xFFFF, wdata=v)))
                await ctx.tick().until(T(i, "host").req.ready)
            ctx.set(T(i, "host").req.valid, 0)
        # cluster DMA: HBM -> tile 1 SRAM word 0xE00 via the NoC
        m = DMAModel(addr_width=32, data_width=128, dims=4, sram_size=cl.sram_size, hbm_size=cfg.hbm_size)
        ctx.set(cl.cdma_done.ready, 1)
        ctx.set(cl.cdma_desc.valid, 1); ctx.set(cl.cdma_desc.payload.as_value(), m.encode(dict(src_kind=Kind.HBM, dst_kind=Kind.REMOTE, src=0x80000 - 4096, dst=(1 << NODE_SHIFT) | 0xE00 * 16, length=256)))
        await ctx.tick().until(cl.cdma_desc.ready)
        ctx.set(cl.cdma_desc.valid, 0)
        for i in range(2): ctx.set(T(i, "start"), 7)
        await ctx.tick()
        for i in range(2): ctx.set(T(i, "start"), 0)
        for cyc in range(20000):
            await ctx.tick()
            sts = [[(ctx.get(T(i, "status").as_value()) >> (15*q)) & 7 for q in range(3)] for i in range(2)]
            if all(s in (5, 6) for st in sts for s in st): break
        assert all(s == 5 for st in sts for s in st), sts
        assert ctx.get(cl.noc_errors) == 0
        result["cycles"] = cyc
        for i in range(2):
            h = T(i, "host"); ctx.set(h.rsp.ready, 1)
            written = sorted(set().union(*[o.writes for o in progs[i].ops]))
            bad = 0
            for a in written + ([] if i == 0 else list(range(0xE00, 0xE10))):
                ctx.set(h.req.valid, 1); ctx.set(h.req.payload.as_value(), pack(req, dict(addr=a, we=0)))
                await ctx.tick().until(h.req.ready)
                ctx.set(h.req.valid, 0)
                while True:
                    *_, v, d = await ctx.tick().sample(h.rsp.valid, h.rsp.payload)
                    if v: break
                exp = goldens[i].word(a) if a < 0xE00 or i == 0 else int.from_bytes(bytes(hbm[0x80000-4096+(a-0xE00)*16:][:16]), "little")
                if d != exp:
                    bad += 1
            assert bad == 0, (i, bad)
            assert len(written) > 0
        for i, p in enumerate(progs):
            hl = sorted(set().union(*[o.hwrites for o in p.ops]))
            badh = sum(bytes(hbm[a*16:(a+1)*16]) != bytes(goldens[i].hbm[a*16:(a+1)*16]) for a in hl)
            assert badh == 0 and hl, (i, badh)
        result["checked"] = True
    sim.add_process(axi_read); sim.add_process(axi_write)
    sim.add_testbench(tb)
    sim.run()
    assert result.get("checked"), result
