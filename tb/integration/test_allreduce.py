# amaranth: UnusedElaboratable=no
"""Two chips joined by their NICs: the ``make sim`` all-reduce and its tests.

The hardware top (:class:`sim.rtl.chip_pair.ChipPair`: two :class:`hw.chip.Chip`
of 1 cluster x 1 tile with constant MACs), the lossy cable between them
(:class:`sim.rtl.cable.Cable`) and the cocotb job (:mod:`sim.rtl.allreduce_job`)
live in ``sim.rtl``, shared with ``make sim``.

* ``test_allreduce_two_chips``: the workload on Icarus with 10 % drops: both
  chips end DONE, their SRAM words equal :class:`sim.allreduce.ChipPairModel`
  bit for bit, the two results are identical, retransmissions happened and
  no bridge or NoC errors.
* ``test_chip_loopback_pysim``: one chip, NIC port looped back to itself, in
  Amaranth's simulator: a tile sends a vector to its own SRAM through the
  bridge and the NIC, rings its own doorbell, waits on the external
  semaphore and adds; the result equals the tile golden model.
* ``test_chip_two_tiles_loopback_pysim``: the same with two tiles: tile 0
  sends to tile 1 (node 1 of the NIC memory space) and rings NIC semaphore 4,
  which becomes tile 1's CP semaphore 8; tile 1 adds; equals the golden model.
"""

import numpy as np

from hw.dma.descriptor import Kind
from hw.chip import Chip
from hw.tile import TileParams
from sim.rtl.chip_pair import CHIP
from tb.chip.harness import run_chip_pysim


def test_allreduce_two_chips():
    from sim.allreduce import run_allreduce
    # The make sim run (128 values, seed 1): drops hit data frames both ways.
    rep, res = run_allreduce(n_values=128, seed=1, drop=0.1, latency=100, sim="icarus", raw=True)
    print("\n".join(f"{k}: {v}" for k, v in rep.items()))
    assert rep["bit_exact"], rep
    assert sum(lk["dropped"] for lk in res["link"]) > 0, "no frame was dropped"
    assert sum(n["tx_rtx"] for n in res["nic"]) > 0, "no retransmission"
    assert [b["tx_bytes"] for b in res["bridge"]] == [512, 512]


def _loopback_pysim(chip, images, reads, *, max_cycles=8000):
    """Run ``chip`` with its NIC port 0 cabled to itself in Amaranth's simulator.

    ``images[t]``: tile ``t`` of cluster 0's program image (or ``None``: idle);
    ``reads[t]``: SRAM words to read back. Returns ``{"cycles", "status", "words",
    "bridge", "noc_errors"}`` keyed by tile (:func:`tb.chip.harness.run_chip_pysim`
    on cluster 0).
    """
    tiles = [t for t, img in enumerate(images) if img is not None]
    res = run_chip_pysim(chip, {(0, t): images[t] for t in tiles},
                         {(0, t): reads[t] for t in tiles}, max_cycles=max_cycles)
    return {"cycles": res["cycles"], "status": {ct[1]: v for ct, v in res["status"].items()},
            "words": {(ct[1], a): v for (ct, a), v in res["words"].items()},
            "bridge": res["bridge"], "noc_errors": res["noc"][2]}


def test_chip_loopback_pysim():
    """One chip, its NIC cabled to itself, in Amaranth's simulator (see the module docstring)."""
    from sim.allreduce import _ChipTile, allreduce_inputs
    from sim.compiler.remote import allreduce_program

    chip = Chip(params=CHIP)
    cfg = chip.clusters[0].tiles[0].params
    x = allreduce_inputs(16, 7)[0]
    prog, meta = allreduce_program(cfg, x, rank=0, nic_node=chip.nic_node)
    img = prog.image()
    golden = _ChipTile(cfg)
    golden.load(img)
    for i in range(meta["words"]):
        golden.set_word(meta["recv"] + i, golden.word(meta["x"] + i))
    for op in prog.ops:
        assert golden.run_op(op) == 0
    words = list(range(meta["recv"], meta["out"] + meta["words"]))
    res = _loopback_pysim(chip, [img], [words])
    print(res["cycles"], res["bridge"])
    assert res["status"] == {0: [5, 5, 5]}, res["status"]
    bad = [a for a in words if res["words"][0, a] != golden.word(a)]
    assert not bad, f"{len(bad)} words differ, e.g. {bad[:3]}"
    n = meta["words"] * cfg.word_bytes
    assert res["bridge"] == [n, n, 0, 0] and res["noc_errors"] == 0, res


def test_chip_two_tiles_loopback_pysim():
    """Two tiles, NIC cabled to itself: tile 0 sends to tile 1 and rings NIC semaphore 4.

    Checks the node field of the NIC memory offset (node 1) and the semaphore map
    (NIC semaphore ``node_sems * 1 + 0`` -> tile 1, CP semaphore ``sem_base``):
    tile 1 waits on it and adds the received vector to its own.
    """
    from sim.allreduce import _ChipTile, allreduce_inputs
    from sim.compiler import TileProgram
    from sim.compiler.program import word_of_floats
    from sim.compiler.remote import nic_doorbell_address, nic_write_address

    chip = Chip(params=CHIP.replace(cluster=CHIP.cluster.replace(n_tiles=2)))
    cfg = chip.clusters[0].tiles[0].params
    n, wb = cfg.n, cfg.word_bytes
    x = allreduce_inputs(32, 9)
    words = x.shape[1] // n
    # Tile 1: receive into `recv`, then out = own + received.
    p1 = TileProgram(cfg)
    own = p1.sram_data([word_of_floats(x[1][i:i + n]) for i in range(0, x.shape[1], n)], "x")
    recv = p1.alloc(words, "recv")
    out = p1.alloc(words, "out")
    sem = chip.bridge.sem_base
    p1.receive(recv, words, sem)
    p1.vec("ADD", n_beats=words, group=words, a=(own, 1, 0), b=(recv, 1, 0), o=(out, 1, 0),
           o_group=words)
    # Tile 0: send its vector to tile 1's `recv` through the NIC, ring tile 1's semaphore.
    p0 = TileProgram(cfg)
    src = p0.sram_data([word_of_floats(x[0][i:i + n]) for i in range(0, x.shape[1], n)], "x")
    p0.remote_send(src, words, nic_write_address(chip.nic_node, 1, recv * wb,
                                                  sram_bits=chip.bridge.sram_bits))
    p0.doorbell(nic_doorbell_address(chip.nic_node, chip.bridge.node_sems * 1, word_bytes=wb))
    imgs = [p0.image(), p1.image()]
    golden = _ChipTile(cfg)
    golden.load(imgs[1])
    for i in range(words):
        golden.set_word(recv + i, word_of_floats(x[0][i * n:(i + 1) * n]))
    for op in p1.ops:
        assert golden.run_op(op) == 0
    reads = list(range(recv, out + words))
    res = _loopback_pysim(chip, imgs, [[], reads])
    print(res["cycles"], res["bridge"])
    assert res["status"] == {0: [5, 5, 5], 1: [5, 5, 5]}, res["status"]
    bad = [a for a in reads if res["words"][1, a] != golden.word(a)]
    assert not bad, f"{len(bad)} words differ, e.g. {bad[:3]}"
    assert res["bridge"] == [words * wb, words * wb, 0, 0] and res["noc_errors"] == 0, res


def test_chip_parameters():
    import gc
    import warnings

    import pytest
    from amaranth.hdl import UnusedElaboratable

    from hw.chip import ChipParams
    from hw.cluster import Cluster, ClusterParams
    one = ClusterParams(n_tiles=1)
    cases = ((lambda: ChipParams(n_clusters=0), "n_clusters"),
             (lambda: ClusterParams(n_tiles=16), "n_tiles"),
             (lambda: ChipParams(cluster=dict(n_tiles=1)), "cluster must be a ClusterParams"),
             (lambda: Chip(params=dict(n_clusters=1)), "params must be a ChipParams"),
             *((lambda kw=kw: Chip(params=ChipParams(n_clusters=1, cluster=one, **kw)), name)
               for kw, name in ((dict(node_sems=3), "node_sems"), (dict(sem_base=40), "sem_base"),
                                (dict(nic=dict(mem_bits=12)), "mem_bits"),
                                (dict(nic=dict(n_sems=2)), "n_sems"))))
    # The blocks a failed Chip() built before raising are never elaborated, and
    # they are created in hw/, which this file's UnusedElaboratable=no does not cover.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        for build, name in cases:
            with pytest.raises((ValueError, TypeError), match=name):
                build()
        with pytest.raises(ValueError, match="ext"):
            Cluster(params=one, ext="yes")
        gc.collect()


def test_compiler_receive():
    """``TileProgram.receive``: the first op touching the words waits on the external
    semaphore and stands for their writer; REMOTE sends write nothing locally."""
    import pytest

    from sim.compiler import CompileError, TileProgram
    from sim.compiler.program import DMA, TVP
    from sim.compiler.remote import nic_doorbell_address, nic_write_address

    cfg = TileParams()
    p = TileProgram(cfg)
    buf = p.alloc(4, "recv")
    other = p.alloc(4, "other")
    send = p.remote_send(other, 4, nic_write_address(2, 0, 0))
    bell = p.doorbell(nic_doorbell_address(2, 0))
    p.receive(buf, 4, 9, count=2)
    unrelated = p.vec("ABS", n_beats=4, group=4, a=(other, 1, 0), o=(other, 1, 0), o_group=4)
    first = p.vec("ABS", n_beats=4, group=4, a=(buf, 1, 0), o=(buf, 1, 0), o_group=4)
    later = p.dma(dict(src_kind=Kind.LOCAL, dst_kind=Kind.LOCAL, src=buf * 16,
                       dst=p.alloc(4, "copy") * 16,
                       length=64))
    p.queues()
    assert send.writes == set() and bell.writes == set()
    assert unrelated.ext_waits == [] and first.ext_waits == [9, 9]
    assert later.ext_waits == []
    # The DMA after the TVP op waits on the TVP -> DMA semaphore (the op stands for
    # the words' writer), not on the external one again.
    assert p.sem_ids[TVP, DMA] in later.waits and 9 not in later.waits
    with pytest.raises(CompileError, match="external semaphore"):
        p.receive(buf, 4, 3)
    with pytest.raises(CompileError, match="external semaphore"):
        p.receive(buf, 4, cfg.n_sems)


def test_chip_bad_requests_pysim():
    """Bad NIC requests are dropped and counted, and the program still completes.

    A send outside the NIC memory space (offset ``2**mem_bits``) and a doorbell for a
    NIC semaphore that does not exist come before a good send + doorbell + wait +
    add on one tile with the NIC cabled to itself: ``bridge__tx_errors`` counts the
    two bad words, every queue ends DONE and the result equals the golden model.
    """
    from sim.allreduce import _ChipTile
    from sim.compiler import TileProgram
    from sim.compiler.program import word_of_floats
    from sim.compiler.remote import NODE_SHIFT, nic_doorbell_address, nic_write_address

    chip = Chip(params=CHIP)
    cfg = chip.clusters[0].tiles[0].params
    n, wb, node = cfg.n, cfg.word_bytes, chip.nic_node
    x = np.arange(4 * n, dtype=np.float32) - 5.5
    p = TileProgram(cfg)
    xa = p.sram_data([word_of_floats(x[i:i + n]) for i in range(0, x.size, n)], "x")
    recv = p.alloc(4, "recv")
    out = p.alloc(4, "out")
    p.remote_send(xa, 1, node << NODE_SHIFT | 1 << chip.bridge.mem_bits, name="bad_send")
    p.doorbell(nic_doorbell_address(node, chip.bridge.nic_sems, word_bytes=wb), name="bad_bell")
    p.remote_send(xa, 4, nic_write_address(node, 0, recv * wb))
    p.doorbell(nic_doorbell_address(node, 0, word_bytes=wb))
    p.receive(recv, 4, chip.bridge.sem_base)
    p.vec("ADD", n_beats=4, group=4, a=(xa, 1, 0), b=(recv, 1, 0), o=(out, 1, 0), o_group=4)
    img = p.image()
    golden = _ChipTile(cfg)
    golden.load(img)
    for i in range(4):
        golden.set_word(recv + i, golden.word(xa + i))
    for op in p.ops:
        assert golden.run_op(op) == 0
    words = list(range(recv, out + 4))
    res = _loopback_pysim(chip, [img], [words])
    assert res["status"] == {0: [5, 5, 5]}, res["status"]
    assert all(res["words"][0, a] == golden.word(a) for a in words)
    assert res["bridge"] == [4 * wb, 4 * wb, 2, 0], res["bridge"]
