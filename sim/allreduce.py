"""Two-chip all-reduce over the ATL NIC: golden model and the ``make sim`` workload.

``make sim SIMARGS="--workload allreduce"`` compiles one tile program per chip
(:func:`sim.compiler.remote.allreduce_program`), runs both on two
``hw.chip.Chip`` instances whose NIC ports are joined by lossy Python links
(:class:`sim.rtl.chip_pair.ChipPair`, cocotb job :mod:`sim.rtl.allreduce_job`; Icarus
unless ``ALLREDUCE_SIM=verilator``: it compiles in seconds where Verilator takes many
minutes for two chips) and reports the result against :class:`ChipPairModel` (bit for
bit, on both chips), cycles, bytes over the NIC and retransmissions. It exits non-zero on
any mismatch.

:class:`ChipPairModel` runs the two programs operation by operation on
:class:`sim.tile.TileModel` s: a REMOTE DMA through the NIC node writes the
peer's SRAM (or, in the doorbell window, counts the peer's external
semaphore) at once, and an operation waiting on external semaphores runs only
when the peer has rung enough doorbells: a valid sequential order of the
real, concurrent run.
"""
import json
import os
import pickle
import time
from collections import Counter
from pathlib import Path

import numpy as np

from hw.dma.descriptor import Kind
from sim.compiler.program import ENGINES
from sim.compiler.remote import NODE_SHIFT
from sim.tile import TileModel

__all__ = ["ChipPairModel", "ChipGroupModel", "allreduce_inputs", "fcq_allreduce_program",
           "run_allreduce"]

BUILD = Path(__file__).resolve().parent.parent / "build" / "sim"


class _ChipTile(TileModel):
    """A tile whose REMOTE DMA writes are collected instead of applied locally."""

    def run_op(self, op):
        if op.kind == "dma" and op.rec["dst_kind"] == Kind.REMOTE:
            self.outgoing = {}
            return self.dma.run(op.rec, hbm=self.hbm, local=[self.sram], remote=self.outgoing)
        return super().run_op(op)


class _ChipsModel:
    """The scheduler the chip-group golden models share: each chip's program in
    order, an op whose external (NIC) semaphores have not all arrived waits, and
    the chips take turns; a subclass's ``_deliver`` applies a chip's remote writes."""

    def run(self, progs, images):
        """Run every program to the end (a valid sequential order of the real run)."""
        for t, img in zip(self.tiles, images):
            t.load(img)
        n = len(self.tiles)
        ptr, used = [0] * n, [Counter() for _ in range(n)]
        while any(ptr[c] < len(progs[c].ops) for c in range(n)):
            progress = False
            for c in range(n):
                while ptr[c] < len(progs[c].ops):
                    op = progs[c].ops[ptr[c]]
                    need = Counter(op.ext_waits)
                    if any(self.ext[c][s] - used[c][s] < k for s, k in need.items()):
                        break
                    used[c] += need
                    err = self.tiles[c].run_op(op)
                    if err:
                        raise RuntimeError(f"golden: chip {c} op {op.name} failed with {err}")
                    if op.kind == "dma" and op.rec["dst_kind"] == Kind.REMOTE:
                        self._deliver(c, self.tiles[c].outgoing)
                    ptr[c] += 1
                    progress = True
            if not progress:
                raise RuntimeError(f"golden: every chip waits on external semaphores at {ptr}")
        return self


class ChipPairModel(_ChipsModel):
    """Golden model of two one-tile chips joined by their NICs (see the module docstring).

    Parameters
    ----------
    cfg : TileParams
        Tile parameters (both chips).
    nic_node : int
        NoC node of the NIC bridge (``Chip.nic_node``).
    sram_bits, node_sems, sem_base : int
        As the chip's :class:`hw.nic.bridge.NicBridge`.
    """

    def __init__(self, cfg, *, nic_node, sram_bits=16, node_sems=4, sem_base=8):
        self.cfg, self.nic_node = cfg, nic_node
        self.sram_bits, self.node_sems, self.sem_base = sram_bits, node_sems, sem_base
        self.tiles = [_ChipTile(cfg), _ChipTile(cfg)]
        self.ext = [Counter(), Counter()]      # external semaphore counts received
        self.nic_bytes = [0, 0]                # payload bytes sent by each chip

    def _deliver(self, src, outgoing):
        peer = 1 - src
        lw = (self.cfg.word_bytes - 1).bit_length()
        bell = 1 << (NODE_SHIFT - 1)
        seen_bells = set()
        for a, v in sorted(outgoing.items()):
            if a >> NODE_SHIFT != self.nic_node:
                raise NotImplementedError(f"golden: remote write to node {a >> NODE_SHIFT}")
            off = a & ((1 << NODE_SHIFT) - 1)
            if off & bell:
                k = (off & (bell - 1)) >> lw
                if (a >> lw) not in seen_bells:       # one doorbell per word
                    seen_bells.add(a >> lw)
                    node, sem = k // self.node_sems, self.sem_base + k % self.node_sems
                    if node != 0:
                        raise NotImplementedError(f"golden: doorbell for node {node}")
                    self.ext[peer][sem] += 1
                continue
            node, byte = off >> self.sram_bits, off & ((1 << self.sram_bits) - 1)
            if node != 0:
                raise NotImplementedError(f"golden: NIC write to node {node}")
            self.tiles[peer].sram[byte] = v
            self.nic_bytes[src] += 1



class ChipGroupModel(_ChipsModel):
    """Golden model of ``n`` one-tile chips whose NIC flows join them (the FCQ).

    As :class:`ChipPairModel`, with the NIC flow of a remote write taken from the
    cluster field of its address (``docs/chip.md``) and ``peer(c, flow)`` naming
    the chip it reaches; NIC semaphore ``k`` of the peer increments CP semaphore
    ``sem_base + k`` of its tile 0 (``k < node_sems``).

    Parameters
    ----------
    cfg : TileParams
    n : int
        Chips.
    peer : callable
        ``peer(chip, flow) -> chip``.
    nic_node, sram_bits, node_sems, sem_base : int
        As the chips' bridge.
    """

    def __init__(self, cfg, *, n, peer, nic_node, sram_bits=16, node_sems=4, sem_base=8):
        self.cfg, self.n, self.peer, self.nic_node = cfg, n, peer, nic_node
        self.sram_bits, self.node_sems, self.sem_base = sram_bits, node_sems, sem_base
        self.tiles = [_ChipTile(cfg) for _ in range(n)]
        self.ext = [Counter() for _ in range(n)]
        #: Payload bytes chip ``c`` sent to chip ``p``: ``nic_bytes[c, p]``.
        self.nic_bytes = Counter()

    def _deliver(self, src, outgoing):
        lw = (self.cfg.word_bytes - 1).bit_length()
        bell = 1 << (NODE_SHIFT - 1)
        seen_bells = set()
        for a, v in sorted(outgoing.items()):
            key = a >> NODE_SHIFT
            if key & 15 != self.nic_node:
                raise NotImplementedError(f"golden: remote write to node {key & 15}")
            peer = self.peer(src, key >> 4)
            off = a & ((1 << NODE_SHIFT) - 1)
            if off & bell:
                k = (off & (bell - 1)) >> lw
                if (a >> lw) not in seen_bells:
                    seen_bells.add(a >> lw)
                    if k >= self.node_sems:
                        raise NotImplementedError(f"golden: doorbell {k} for another tile")
                    self.ext[peer][self.sem_base + k] += 1
                continue
            node, byte = off >> self.sram_bits, off & ((1 << self.sram_bits) - 1)
            if node != 0:
                raise NotImplementedError(f"golden: NIC write to node {node}")
            self.tiles[peer].sram[byte] = v
            self.nic_bytes[src, peer] += 1



def fcq_allreduce_program(cfg, x, *, rank, n, flow_to, nic_node, sram_bits=16, ext_sem=8):
    """Direct sum-all-reduce over a fully connected group: chip ``rank``'s program.

    The chip sends its vector to every peer at once (one NIC flow / port per
    peer, ``flow_to(rank, peer)`` in the cluster field of the NIC address), into
    slot ``rank`` of the peer's receive buffer (the same SRAM address on every
    chip), and rings the peer's NIC semaphore ``rank`` (CP semaphore ``ext_sem +
    rank``). It waits for each peer's slot on that peer's semaphore and adds the
    ``n`` vectors in rank order (``((x0 + x1) + x2) + ...``), so every chip gets
    the same bits. Returns ``(program, meta)`` with the word addresses.
    """
    from sim.compiler import TileProgram
    from sim.compiler.program import word_of_floats

    x = np.asarray(x, np.float32).ravel()
    k = cfg.n
    if x.size == 0 or x.size % k:
        raise ValueError(f"x must hold a positive multiple of {k} values, not {x.size}")
    words, wb = x.size // k, cfg.word_bytes
    p = TileProgram(cfg)
    xa = p.sram_data([word_of_floats(x[i:i + k]) for i in range(0, x.size, k)], "x")
    recv = p.alloc(n * words, "recv")
    accs = [p.alloc(words, f"acc{i}") for i in range(n - 1)]
    bell = 1 << (NODE_SHIFT - 1)
    for peer in [q for q in range(n) if q != rank]:
        f = flow_to(rank, peer)
        nic = (f << 4 | nic_node) << NODE_SHIFT
        p.remote_send(xa, words, nic | (recv + rank * words) * wb, name=f"send{peer}")
        p.doorbell(nic | bell | rank * wb, name=f"doorbell{peer}")
    slot = {r: (xa if r == rank else recv + r * words) for r in range(n)}
    for r in range(n):
        if r != rank:
            p.receive(slot[r], words, ext_sem + r)
    prev = slot[0]
    for i in range(1, n):
        p.vec("ADD", n_beats=words, group=words, a=(prev, 1, 0), b=(slot[i], 1, 0),
              o=(accs[i - 1], 1, 0), o_group=words, name=f"add{i}")
        prev = accs[i - 1]
    return p, dict(x=xa, recv=recv, out=accs[-1], words=words)


def allreduce_inputs(n_values, seed):
    """Two FP32 vectors: random normals plus edge cases (zeros, subnormals, max, inf, NaN)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, n_values)).astype(np.float32)
    edge = np.array([[0.0, -0.0, 1e-45, -3e-39, 3.4028235e38, 3.4028235e38, np.inf, 1.0],
                     [-0.0, -0.0, 2e-45, 1e-39, 3.4028235e38, -1.0, 1.0, np.nan]], np.float32)
    k = min(edge.shape[1], n_values)
    x[:, :k] = edge[:, :k]
    return x


def run_allreduce(*, n_values=128, seed=1, drop=0.1, latency=100, sim=None, max_cycles=200_000,
                  raw=False):
    """Compile, run on two chips (RTL) and compare with :class:`ChipPairModel`.

    Returns the report dict, or with ``raw`` ``(report, result)`` where
    ``result`` is what the simulation read back (status, SRAM words, counters).
    """
    from sim.compiler.remote import allreduce_program
    from sim.rtl import runner
    from sim.rtl.chip_pair import CHIP, ChipPair

    pair = ChipPair(chip=CHIP)
    chip = pair.chips[0]
    cfg = chip.clusters[0].tiles[0].params
    x = allreduce_inputs(n_values, seed)
    built = [allreduce_program(cfg, x[r], rank=r, nic_node=chip.nic_node,
                               sram_bits=chip.bridge.sram_bits, ext_sem=chip.bridge.sem_base)
             for r in range(2)]
    progs = [b[0] for b in built]
    meta = built[0][1]
    images = [p.image() for p in progs]
    golden = ChipPairModel(cfg, nic_node=chip.nic_node, sram_bits=chip.bridge.sram_bits,
                           node_sems=chip.bridge.node_sems,
                           sem_base=chip.bridge.sem_base).run(progs, images)
    words = sorted(set().union(*[o.writes for p in progs for o in p.ops])
                   | set(range(meta["recv"], meta["recv"] + meta["words"])))
    BUILD.mkdir(parents=True, exist_ok=True)
    job_path, res_path = BUILD / "allreduce_job.pkl", BUILD / "allreduce_result.json"
    if res_path.exists():
        res_path.unlink()
    with open(job_path, "wb") as f:
        pickle.dump(dict(images=images, words=words, max_cycles=max_cycles,
                         link=dict(latency=latency, drop=drop), seed=seed), f)
    t0 = time.time()
    # Not ``SIM``: the Makefile exports SIM=verilator for every target, and a
    # Verilator build of two chips takes far longer than the whole Icarus run.
    sim = sim or os.environ.get("ALLREDUCE_SIM", "icarus")
    runner.run(pair, block="integration_allreduce", test_module="sim.rtl.allreduce_job",
               params={"cfg": cfg.as_dict()}, sim=sim, testcase="allreduce_job",
               extra_env={"SIM_JOB": str(job_path), "SIM_RESULT": str(res_path)})
    wall = time.time() - t0
    res = json.loads(res_path.read_text())
    rep = {"workload": (f"sum-all-reduce of two {n_values}-value FP32 vectors between two chips "
                        f"(1 cluster x 1 tile each) over the ATL NIC, link drop {drop:.0%}, "
                        f"latency {latency} cycles")}
    ok = not res["timeout"] and all(s["state"] == "DONE" for st in res["status"] for s in st)
    rep["queues"] = " | ".join(
        f"chip{c}: " + ", ".join(f"{e}:{s['state']}" + (f"({s['error']} at pc {s['pc']})"
                                                         if s["state"] == "ERROR" else "")
                                 for e, s in zip(ENGINES, st))
        for c, st in enumerate(res["status"]))
    if res["timeout"]:
        rep["error"] = f"TIMEOUT after {res['cycles']} cycles"
    elif not ok:
        rep["error"] = "a queue stopped with an error"
    bad = [sum(1 for a in words if res["sram"][c][str(a)] != golden.tiles[c].word(a))
           for c in range(2)]
    out = [np.frombuffer(b"".join(res["sram"][c][str(meta["out"] + i)].to_bytes(
        cfg.word_bytes, "little") for i in range(meta["words"])), np.float32) for c in range(2)]
    rep["vs golden"] = ", ".join(
        f"chip{c} {'BIT-EXACT' if bad[c] == 0 else 'MISMATCH'} ({len(words) - bad[c]}/"
        f"{len(words)} SRAM words)" for c in range(2))
    same = out[0].view(np.uint32).tobytes() == out[1].view(np.uint32).tobytes()
    rep["chips agree"] = "yes (identical result bits)" if same else "NO"
    with np.errstate(over="ignore", invalid="ignore"):   # max + max, inf + -inf
        ref = (x[0] + x[1]).astype(np.float32)
    eq = (out[0].view(np.uint32) == ref.view(np.uint32)) | (np.isnan(out[0]) & np.isnan(ref))
    rep["vs numpy float32"] = f"{int(eq.sum())}/{ref.size} values equal (NaN as NaN)"
    rep["cycles"] = res["cycles"]
    rep["NIC payload bytes"] = (f"chip0 -> chip1 {res['bridge'][0]['tx_bytes']}, chip1 -> chip0 "
                                f"{res['bridge'][1]['tx_bytes']} (golden {golden.nic_bytes[0]}, "
                                f"{golden.nic_bytes[1]})")
    rep["wire bytes"] = (f"{res['wire_bytes'][0]} / {res['wire_bytes'][1]} (frames incl. headers, "
                         f"ACKs and retransmissions, per direction)")
    rep["frames"] = (f"{res['link'][0]['frames']} / {res['link'][1]['frames']} sent, "
                     f"{res['link'][0]['dropped']} / {res['link'][1]['dropped']} dropped by "
                     f"the link")
    rep["retransmissions"] = ", ".join(
        f"chip{c} {res['nic'][c]['tx_rtx']} (timeouts {res['nic'][c]['timeouts']}, duplicates "
        f"received {res['nic'][c]['rx_dup']})" for c in range(2))
    errs = [res["bridge"][c]["tx_errors"] + res["bridge"][c]["rx_errors"] + res["noc_errors"][c]
            for c in range(2)]
    rep["errors"] = f"bridge+NoC {errs[0]} / {errs[1]}"
    rep["simulator"] = f"{sim} ({round(wall, 1)} s wall incl. build)"
    rep["bit_exact"] = ok and bad == [0, 0] and same and errs == [0, 0]
    rep["ok"] = ok
    return (rep, res) if raw else rep


def _register():
    # ``python -m sim.run`` runs sim/run.py as ``__main__``: register there, not in
    # a second copy imported as ``sim.run``.
    import sys
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "sim.run":
        workload = main.workload
    else:
        from sim.run import workload

    @workload("allreduce")
    def allreduce(args):
        """FP32 sum-all-reduce over the ATL NIC, lossy links (--chips 2 | 4), every chip vs golden."""
        if args.chips == 2:
            return run_allreduce(n_values=128, seed=args.seed)
        from sim.rtl.fcq import run_allreduce as run_fcq
        rep = run_fcq(chips=args.chips, n_values=64, seed=args.seed)
        # The numbers behind the text lines: --json only ("_" keys are not printed).
        for k in ("cycles_n", "payload_bytes", "wire_bytes", "wire_bytes_dir", "busbw_fraction"):
            rep["_" + k] = rep.pop(k)
        return rep


_register()
