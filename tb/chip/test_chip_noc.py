# amaranth: UnusedElaboratable=no
"""A chip of two clusters on its chip NoC, whole tiles, Amaranth simulator (docs/chip.md).

* ``test_chip_cross_cluster_pysim``: tile (0, 0) writes its vector straight into
  the SRAM of tile (1, 0) over the chip NoC and increments that tile's CP
  semaphore 8 with a direct semaphore write (no NIC); it also sends three
  words to bad destinations (cluster 5, which does not exist, and node 7 of
  cluster 0). Tile (1, 0) waits, adds, and sends the sum back through the NIC
  (looped back to itself) to tile (0, 0), ringing NIC semaphore 0 (chip tile 0,
  CP semaphore 8); tile (0, 0) adds again. Both results equal the tile golden
  model; ``noc__dropped`` = 3, no other NoC error, the bridge moved exactly the
  returned bytes, every queue is DONE.
"""

from hw.chip import Chip, chip_address
from sim.rtl.chip_pair import CHIP
from tb.chip.harness import run_chip_pysim

SEM_WINDOW = 1 << 23


def _golden(cfg, img, prog, recv, words):
    from sim.allreduce import _ChipTile
    g = _ChipTile(cfg)
    g.load(img)
    for i, w in enumerate(words):
        g.set_word(recv + i, w)
    for op in prog.ops:
        assert g.run_op(op) == 0
    return g


def test_chip_cross_cluster_pysim():
    from sim.allreduce import allreduce_inputs
    from sim.compiler import TileProgram
    from sim.compiler.program import word_of_floats

    chip = Chip(params=CHIP.replace(n_clusters=2))
    cfg = chip.clusters[0].tiles[0].params
    n, wb, br = cfg.n, cfg.word_bytes, chip.bridge
    x = allreduce_inputs(32, 5)
    words = x.shape[1] // n
    vec = lambda v: [word_of_floats(v[i:i + n]) for i in range(0, v.size, n)]
    sem = br.sem_base
    # Tile B = (1, 0): receive A's vector, add its own, send the sum to A through the NIC.
    pb = TileProgram(cfg)
    xb = pb.sram_data(vec(x[1]), "x")
    recv_b = pb.alloc(words, "recv")
    out_b = pb.alloc(words, "out")
    pb.receive(recv_b, words, sem)
    pb.vec("ADD", n_beats=words, group=words, a=(recv_b, 1, 0), b=(xb, 1, 0), o=(out_b, 1, 0),
           o_group=words)
    # Tile A = (0, 0): the same layout, so B knows A's buffers.
    pa = TileProgram(cfg)
    xa = pa.sram_data(vec(x[0]), "x")
    recv_a = pa.alloc(words, "recv")
    out_a = pa.alloc(words, "out")
    assert (xa, recv_a, out_a) == (xb, recv_b, out_b)
    pa.remote_send(xa, 2, chip_address(5, 0, 0), name="bad_cluster")
    pa.remote_send(xa, 1, chip_address(0, 7, 0), name="bad_node")
    pa.remote_send(xa, words, chip_address(1, 0, recv_b * wb))
    pa.doorbell(chip_address(1, 0, SEM_WINDOW | sem * wb))
    pa.receive(recv_a, words, sem)
    pa.vec("ADD", n_beats=words, group=words, a=(recv_a, 1, 0), b=(xa, 1, 0), o=(out_a, 1, 0),
           o_group=words)
    # B's return path: the NIC node, reached from cluster 1; NIC memory key 0 =
    # cluster 0 node 0; NIC semaphore 0 = chip tile 0, CP semaphore sem_base.
    pb.remote_send(out_b, words, chip_address(1, chip.nic_node,
                                              0 << br.sram_bits | recv_a * wb))
    pb.doorbell(chip_address(1, chip.nic_node, SEM_WINDOW | 0 * wb))
    imgs = {(0, 0): pa.image(), (1, 0): pb.image()}
    gb = _golden(cfg, imgs[1, 0], pb, recv_b, vec(x[0]))
    ga = _golden(cfg, imgs[0, 0], pa, recv_a, [gb.word(out_b + i) for i in range(words)])
    reads = list(range(recv_a, out_a + words))
    res = run_chip_pysim(chip, imgs, {(0, 0): reads, (1, 0): reads})
    print(res["cycles"], res["bridge"], res["noc"])
    assert res["status"] == {(0, 0): [5, 5, 5], (1, 0): [5, 5, 5]}, res["status"]
    for ct, g in (((0, 0), ga), ((1, 0), gb)):
        bad = [a for a in reads if res["words"][ct, a] != g.word(a)]
        assert not bad, f"tile {ct}: {len(bad)} words differ, e.g. {bad[:3]}"
    assert res["bridge"] == [words * wb, words * wb, 0, 0], res["bridge"]
    assert res["noc"] == [3, 0, 0, 0], res["noc"]


def test_chip_hbm_broadcast_pysim():
    """Hierarchical broadcast: one HBM read to every tile of every cluster, one completion.

    A chip of 2 clusters x 2 tiles. Cluster 0's DMA reads 256 bytes from HBM (a
    Python AXI4 RAM on ``c0__m_axi``) with the destination ``chip_address(BCAST_CLUSTER,
    BCAST_NODE, 0x300 words)``: each word leaves once, the chip NoC multicasts it to
    both clusters and each cluster's mesh to both its tiles. A second descriptor
    (one word) to the broadcast semaphore window increments CP semaphore 8 of all
    four tiles after the data. Checked: every tile's SRAM words equal the HBM
    bytes, every tile's semaphore 8 is 1, exactly two completions (err 0), the
    AXI port saw one read burst per descriptor, the cluster SRAMs and the NIC
    bridge got nothing, no NoC drop or error.
    """
    import sys

    from amaranth.sim import Simulator

    from hw.chip import BCAST_CLUSTER, BCAST_NODE, ChipParams
    from hw.cluster import ClusterParams
    from hw.dma.descriptor import Kind
    from hw.mem.sram import sram_request_layout
    from hw.common.layout import pack
    from sim.dma import DMAModel

    sys.set_int_max_str_digits(0)
    chip = Chip(params=CHIP.replace(n_clusters=2, cluster=ClusterParams(
        n_tiles=2, tile=CHIP.cluster.tile)))
    cfg = chip.clusters[0].tiles[0].params
    wb = cfg.word_bytes
    hbm = bytearray(cfg.hbm_size)
    src = 0x4000
    hbm[src:src + 256] = bytes((11 * i + 5) & 255 for i in range(256))
    base = 0x300
    ax = chip.c0__m_axi
    res = {"bursts": 0, "done": []}

    async def axi_read(ctx):
        while True:
            ctx.set(ax.arready, 1)
            *_, v, addr, ln = await ctx.tick().sample(ax.arvalid, ax.araddr, ax.arlen)
            if not v:
                continue
            res["bursts"] += 1
            ctx.set(ax.arready, 0)
            for i in range(ln + 1):
                a = addr + wb * i
                ctx.set(ax.rdata, int.from_bytes(hbm[a:a + wb], "little"))
                ctx.set(ax.rvalid, 1)
                ctx.set(ax.rlast, i == ln)
                ctx.set(ax.rresp, 0)
                await ctx.tick().until(ax.rready)
            ctx.set(ax.rvalid, 0)

    t0 = chip.clusters[0].tiles[0]
    req = sram_request_layout(t0.sram.addr_width, t0.word_bits)
    dma = DMAModel(addr_width=32, data_width=t0.word_bits, dims=cfg.dims,
                   sram_size=chip.clusters[0].sram_size, hbm_size=cfg.hbm_size)

    async def tb(ctx):
        ctx.set(chip.c0__cdma_done.ready, 1)
        for d in (dict(src_kind=Kind.HBM, dst_kind=Kind.REMOTE, src=src,
                       dst=chip_address(BCAST_CLUSTER, BCAST_NODE, base * wb), length=256),
                  dict(src_kind=Kind.HBM, dst_kind=Kind.REMOTE, src=src,
                       dst=chip_address(BCAST_CLUSTER, BCAST_NODE, SEM_WINDOW | 8 * wb),
                       length=wb, sem=3)):
            ctx.set(chip.c0__cdma_desc.valid, 1)
            ctx.set(chip.c0__cdma_desc.payload.as_value(), dma.encode(d))
            await ctx.tick().until(chip.c0__cdma_desc.ready)
        ctx.set(chip.c0__cdma_desc.valid, 0)
        for cyc in range(3000):
            *_, v, p = await ctx.tick().sample(chip.c0__cdma_done.valid,
                                               chip.c0__cdma_done.payload)
            if v:
                res["done"].append((p.sem, p.err))
            sems = [ctx.get(getattr(chip, f"c{c}__t{t}__sems").as_value()) >> 8 * 8 & 0xFF
                    for c in range(2) for t in range(2)]
            if len(res["done"]) == 2 and all(s == 1 for s in sems):
                break
        for _ in range(100):
            await ctx.tick()
        res["cycles"], res["sems"] = cyc, [
            ctx.get(getattr(chip, f"c{c}__t{t}__sems").as_value()) for c in range(2)
            for t in range(2)]
        for c in range(2):
            for t in range(2):
                h = getattr(chip, f"c{c}__t{t}__host")
                ctx.set(h.rsp.ready, 1)
                for a in range(base, base + 256 // wb):
                    ctx.set(h.req.valid, 1)
                    ctx.set(h.req.payload.as_value(), pack(req, dict(addr=a, we=0)))
                    await ctx.tick().until(h.req.ready)
                    ctx.set(h.req.valid, 0)
                    while True:
                        *_, v, d = await ctx.tick().sample(h.rsp.valid, h.rsp.payload)
                        if v:
                            break
                    res[c, t, a] = d
            ch = getattr(chip, f"c{c}__chost")
            ctx.set(ch.rsp.ready, 1)
            ctx.set(ch.req.valid, 1)
            ctx.set(ch.req.payload.addr, base % (chip.clusters[c].sram_size // wb))
            ctx.set(ch.req.payload.we, 0)
            await ctx.tick().until(ch.req.ready)
            ctx.set(ch.req.valid, 0)
            while True:
                *_, v, d = await ctx.tick().sample(ch.rsp.valid, ch.rsp.payload)
                if v:
                    break
            res["csram", c] = d
        res["bridge"] = [ctx.get(getattr(chip, f"bridge__{k}"))
                         for k in ("tx_bytes", "rx_bytes", "tx_errors", "rx_errors")]
        res["noc"] = [ctx.get(chip.noc__dropped), ctx.get(chip.noc__errors)] + [
            ctx.get(getattr(chip, f"c{k}__noc_errors")) for k in range(2)]

    sim = Simulator(chip)
    sim.add_clock(1e-8)
    sim.add_process(axi_read)
    sim.add_testbench(tb)
    sim.run()
    print(res["cycles"], res["done"], res["bursts"], res["noc"])
    for c in range(2):
        for t in range(2):
            bad = [a for a in range(base, base + 256 // wb)
                   if res[c, t, a] != int.from_bytes(hbm[src + (a - base) * wb:][:wb], "little")]
            assert not bad, f"tile ({c}, {t}): {len(bad)} words differ"
    assert [s >> 8 * 8 & 0xFF for s in res["sems"]] == [1, 1, 1, 1], res["sems"]
    assert sorted(res["done"]) == [(0, 0), (3, 0)], res["done"]
    assert res["bursts"] == 2, res["bursts"]
    assert res["csram", 0] == 0 and res["csram", 1] == 0
    assert res["bridge"] == [0, 0, 0, 0] and res["noc"] == [0, 0, 0, 0], res
