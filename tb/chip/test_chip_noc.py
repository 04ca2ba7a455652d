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
