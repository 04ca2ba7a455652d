"""Tile programs: records in SRAM, per-engine instruction queues, automatic semaphores.

A :class:`TileProgram` collects operations (DMA descriptors, TTU GEMM records,
TVP vector records) in *program order*, a valid sequential order. Each
operation declares the SRAM words (and HBM bytes) it reads and writes; the
builder derives the dependencies (read-after-write, write-after-read,
write-after-write) and turns them into semaphores:

* one counting semaphore per (producer engine, consumer engine) pair
  (the DMA also waits on itself: its descriptors may be in flight together);
* a producer signals the pair's semaphore on completion of an operation some
  later consumer operation needs; the consumer waits for as many counts as
  it has not yet taken up to that operation (engines complete in order, so
  the latest needed operation implies the earlier ones);
* waits beyond three per instruction go into ``NOP`` instructions before the
  ``EXEC``;
* words written from outside the tile (another chip through the NIC, see
  :meth:`TileProgram.receive`) become visible on an *external* semaphore: the
  first later operation that touches them waits for it, and counts as their
  writer for every operation after it.

:meth:`TileProgram.image` returns everything a host loads: the three
instruction queues, the SRAM words (records, constants) and the HBM bytes.
"""
from dataclasses import dataclass, field

import numpy as np

from hw.common.layout import pack
from hw.common.mx import FORMATS
from hw.cp.isa import Opcode, encode
from hw.dma.descriptor import Kind
from hw.tile import ENGINES as _ENGINE_IDS, TileParams
from hw.tvp.isa import OP, REDUCE_CODES
from sim.dma import tile_dma

__all__ = ["TileProgram", "Op", "ENGINES", "word_of_floats", "CompileError"]

#: Engine names in queue order (the tile's numbering, ``hw.tile.ENGINES``).
ENGINES = tuple(sorted(_ENGINE_IDS, key=_ENGINE_IDS.get))
DMA, TTU, TVP = (_ENGINE_IDS[e] for e in ("dma", "ttu", "tvp"))


class CompileError(ValueError):
    """The workload does not fit the tile (SRAM, program memory, shapes)."""


def word_of_floats(values):
    """Pack float32 values (``n`` of them) into one SRAM word integer."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    return sum(int(b) << (32 * i) for i, b in enumerate(bits))


@dataclass
class Op:
    engine: int
    kind: str            # "dma", "gemm", "vec"
    rec: dict            # record fields
    name: str
    reads: set = field(default_factory=set)     # SRAM words
    writes: set = field(default_factory=set)
    hreads: set = field(default_factory=set)    # HBM 16-byte lines
    hwrites: set = field(default_factory=set)
    addr: int = 0        # SRAM word address of the record
    index: int = 0       # position within its engine's queue
    signals: set = field(default_factory=set)   # consumer engines to signal
    waits: list = field(default_factory=list)   # semaphore ids (with repeats)
    ext_waits: list = field(default_factory=list)   # external semaphore ids among waits


class TileProgram:
    """Builder of one tile program (see the module docstring)."""

    def __init__(self, cfg=TileParams(), *, record_words=None, hbm_base=0):
        self.cfg = cfg
        self.desc_layout, self.ttu_layout, self.tvp_layout = cfg.layouts()
        self.desc_words = cfg.desc_words
        self.ops = []
        self.sram_init = {}            # word -> int
        self.hbm_init = {}             # byte address -> bytes
        # Records grow from word 0; data buffers are allocated from the top down.
        self.record_limit = record_words if record_words is not None else cfg.words // 4
        self._rec_ptr = 0
        # Host-initialised words (constants, biases) have their own area: they
        # must never share words with buffers the program writes.
        self.const_limit = self.record_limit + cfg.words // 8
        self._const_ptr = self.record_limit
        self._free = [(self.const_limit, cfg.words - self.const_limit)]
        self._hbm_ptr = hbm_base     # tiles sharing an HBM use disjoint ranges
        self.symbols = {}
        self.externals = []          # see receive()

    # --- allocation --------------------------------------------------------
    def alloc(self, words, name=""):
        """Allocate ``words`` SRAM words for data (first fit); returns the word address.

        Freed space is reused: the dependency tracking orders the new writes
        after every earlier access of those words.
        """
        for i, (a, n) in enumerate(self._free):
            if n >= words:
                self._free[i] = (a + words, n - words)
                self.symbols[name or f"buf{len(self.symbols)}"] = (a, words)
                return a
        raise CompileError(f"tile SRAM full allocating {words} words for {name!r}")

    def free(self, addr, words):
        """Return ``words`` words at ``addr`` to the allocator."""
        self._free.append((addr, words))
        self._free.sort()
        merged = []
        for a, n in self._free:
            if merged and merged[-1][0] + merged[-1][1] == a:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((a, n))
        self._free = [(a, n) for a, n in merged if n]

    def const(self, value, name=""):
        """One SRAM word holding ``value`` (float32) in every lane, set by the host."""
        key = ("const", float(np.float32(value)).hex())
        if key in self.symbols:
            return self.symbols[key][0]
        a = self._host_alloc(1, name or str(value))
        self.symbols[key] = (a, 1)
        self.sram_init[a] = word_of_floats([value] * self.cfg.n)
        return a

    def _host_alloc(self, words, name):
        a = self._const_ptr
        if a + words > self.const_limit:
            raise CompileError(f"tile SRAM constant area full allocating {name!r}")
        self._const_ptr += words
        self.symbols[name] = (a, words)
        return a

    def const_word(self, word, name):
        """One SRAM word set by the host to ``word``."""
        a = self._host_alloc(1, name)
        self.sram_init[a] = int(word)
        return a

    def sram_data(self, words_list, name):
        """SRAM words initialised by the host (biases, layernorm gains)."""
        a = self._host_alloc(len(words_list), name)
        for i, w in enumerate(words_list):
            self.sram_init[a + i] = int(w)
        return a

    def hbm(self, data_bytes, name=""):
        """Place bytes in HBM (4 KiB aligned); returns the byte address."""
        data_bytes = bytes(data_bytes)
        a = self._hbm_ptr
        self._hbm_ptr = (a + len(data_bytes) + 4095) // 4096 * 4096
        if self._hbm_ptr > self.cfg.hbm_size:
            raise CompileError(f"HBM full placing {name!r}")
        self.hbm_init[a] = data_bytes
        self.symbols["hbm:" + (name or str(a))] = (a, len(data_bytes))
        return a

    def zero_hbm(self, nbytes):
        """Byte address of at least ``nbytes`` zero bytes in HBM (shared)."""
        if getattr(self, "_zero", (0, 0))[1] < nbytes:
            self._zero = (self.hbm(bytes(max(nbytes, 4096)), f"zero{nbytes}"), max(nbytes, 4096))
        return self._zero[0]

    def _record(self, words):
        a = self._rec_ptr
        self._rec_ptr += words
        if self._rec_ptr > self.record_limit:
            raise CompileError("tile SRAM record area full")
        return a

    # --- operations --------------------------------------------------------
    def _add(self, op):
        op.index = sum(1 for o in self.ops if o.engine == op.engine)
        self.ops.append(op)
        return op

    def dma(self, desc, name="dma"):
        """A DMA descriptor (``hw.dma.descriptor`` fields; addresses in bytes)."""
        c = self.cfg
        model = tile_dma(c)
        d = dict(desc)
        d.setdefault("dst_mask", 1)
        d.setdefault("sem", 0)
        op = Op(DMA, "dma", d, name)
        wb = c.word_bytes
        for s, t, n in model.rows(d):
            src = set(range(s // wb, (s + n - 1) // wb + 1))
            dst = set(range(t // wb, (t + n - 1) // wb + 1))
            (op.reads if d["src_kind"] == Kind.LOCAL else op.hreads).update(src)
            if d["dst_kind"] != Kind.REMOTE:   # REMOTE writes leave the tile: nothing to order here
                (op.writes if d["dst_kind"] == Kind.LOCAL else op.hwrites).update(dst)
        op.addr = self._record(self.desc_words)
        return self._add(op)

    def remote_send(self, src, words, dst, name="send"):
        """DMA ``words`` SRAM words at word ``src`` to NoC byte address ``dst`` (REMOTE kind).

        ``dst`` names another tile's SRAM or, through the chip's NIC node, the
        peer chip's memory (``sim.compiler.remote.nic_write_address``).
        """
        wb = self.cfg.word_bytes
        return self.dma(dict(src_kind=Kind.LOCAL, dst_kind=Kind.REMOTE, src=src * wb, dst=dst,
                             length=words * wb), name)

    def doorbell(self, dst, name="doorbell"):
        """DMA one word to NoC byte address ``dst`` in a semaphore window.

        Through the NIC node (``sim.compiler.remote.nic_doorbell_address``) it
        increments a peer NIC semaphore after every earlier send of this DMA
        queue; the data is ignored (a host-initialised zero word).
        """
        wb = self.cfg.word_bytes
        if "doorbell" not in self.symbols:
            self.const_word(0, "doorbell")
        src = self.symbols["doorbell"][0]
        return self.dma(dict(src_kind=Kind.LOCAL, dst_kind=Kind.REMOTE, src=src * wb, dst=dst, length=wb), name)

    def receive(self, addr, words, sem, count=1):
        """SRAM words ``addr .. addr + words - 1`` are written from outside the tile.

        They are complete when command-processor semaphore ``sem`` has been
        incremented ``count`` more times (by the NIC bridge, after the data).
        The first operation after this call that touches any of the words
        waits for those counts; it then stands for their writer, so every later
        access is ordered after it. The sender must not write the words while
        an earlier operation of this program still uses them.
        """
        internal = len(ENGINES) ** 2 - (len(ENGINES) - 1)
        if not internal <= sem < self.cfg.n_sems:
            raise CompileError(f"external semaphore {sem} must be in {internal}.."
                               f"{self.cfg.n_sems - 1} (below {internal}: the compiler's own)")
        if count < 1:
            raise CompileError(f"receive count must be >= 1, not {count}")
        self.externals.append(dict(pos=len(self.ops), words=set(range(addr, addr + words)),
                                   sem=sem, count=count))

    def gemm(self, *, w_addr, a_addr, o_addr, o_pitch, k_beats, n_tiles, m_tiles, fmt_a, fmt_b,
             name="gemm"):
        """One TTU GEMM on SRAM beats (see ``hw.tile.TTUFeeder``)."""
        c = self.cfg
        if k_beats > c.max_k_beats or n_tiles > c.max_n_tiles or k_beats % 32:
            raise CompileError(f"{name}: k_beats {k_beats} / n_tiles {n_tiles} out of TTU range")
        rec = dict(fmt_a=FORMATS[fmt_a].select, fmt_b=FORMATS[fmt_b].select, pack=0, block32=1,
                   k_beats=k_beats, n_tiles=n_tiles, m_tiles=m_tiles, w_addr=w_addr,
                   a_addr=a_addr, o_addr=o_addr, o_pitch=o_pitch)
        op = Op(TTU, "gemm", rec, name)
        op.reads |= set(range(w_addr, w_addr + n_tiles * k_beats))
        op.reads |= set(range(a_addr, a_addr + m_tiles * k_beats))
        for r in range(m_tiles * c.n):
            op.writes |= set(range(o_addr + r * o_pitch, o_addr + r * o_pitch + n_tiles))
        op.addr = self._record(1)
        return self._add(op)

    def vec(self, op_name, *, n_beats, group, a, b=None, c=None, o, o_group=1, fmt=0,
            name=None):
        """One TVP record. ``a``/``b``/``c``: ``(base, inner, outer)``; ``o``:
        ``(base, inner, outer)`` with ``o_group``."""
        code = OP[op_name] if isinstance(op_name, str) else op_name
        nsrc = 3 if c is not None else 2 if b is not None else 1
        b = b or (0, 0, 0)
        c = c or (0, 0, 0)
        ag = lambda t: dict(base=t[0], inner=t[1], outer=t[2])
        rec = dict(op=code, fmt=fmt, nsrc=nsrc, n_beats=n_beats, group=group, o_group=o_group,
                   a=ag(a), o_base=o[0], b=ag(b), c=ag(c), o_inner=o[1], o_outer=o[2])
        op = Op(TVP, "vec", rec, name or str(op_name))
        for j, (pa, pb, pc) in enumerate(self.vec_reads(rec)):
            op.reads.add(pa)
            if nsrc > 1:
                op.reads.add(pb)
            if nsrc > 2:
                op.reads.add(pc)
        op.writes |= set(self.vec_writes(rec))
        op.addr = self._record(2)
        return self._add(op)

    @staticmethod
    def _gen(base, inner, outer, group, count):
        for j in range(count):
            g, i = divmod(j, group)
            yield (base + g * outer + i * inner) & 0xFFFF

    @classmethod
    def vec_reads(cls, rec):
        n, g = rec["n_beats"], rec["group"]
        gens = [cls._gen(rec[k]["base"], rec[k]["inner"], rec[k]["outer"], g, n) for k in "abc"]
        return list(zip(*gens))

    @classmethod
    def vec_outputs(cls, rec):
        reduce = rec["op"] in REDUCE_CODES
        return rec["n_beats"] // rec["group"] if reduce else rec["n_beats"]

    @classmethod
    def vec_writes(cls, rec):
        return list(cls._gen(rec["o_base"], rec["o_inner"], rec["o_outer"], rec["o_group"],
                             cls.vec_outputs(rec)))

    # --- synchronisation and emission -----------------------------------
    def _schedule(self):
        """Dependencies -> signals/waits (see the module docstring)."""
        n_eng = len(ENGINES)
        sem = {}
        for p in range(n_eng):
            for q in range(n_eng):
                if p != q or p == DMA:
                    sem[p, q] = len(sem)
        if len(sem) > self.cfg.n_sems:
            raise CompileError("not enough semaphores")
        self.sem_ids = sem
        last_w, readers = {}, {}        # resource -> op idx / [op idx]
        synced = {}                     # (consumer, producer) -> producer signal count taken
        signalled = {}                  # (producer, consumer) -> [(index, ordinal)]
        pending = [dict(e) for e in self.externals]
        for i, op in enumerate(self.ops):
            op.signals, op.waits, op.ext_waits = set(), [], []
            res_r = {("s", w) for w in op.reads} | {("h", w) for w in op.hreads}
            res_w = {("s", w) for w in op.writes} | {("h", w) for w in op.hwrites}
            deps = set()
            for r in res_r | res_w:
                if r in last_w:
                    deps.add(last_w[r])
            for r in res_w:
                deps.update(readers.get(r, ()))
            deps.discard(i)
            latest = {}
            for d in deps:
                p = self.ops[d].engine
                if p == op.engine and p != DMA:
                    continue   # TTU/TVP feeders finish one command before the next
                if self.ops[d].index > latest.get(p, (-1,))[0]:
                    latest[p] = (self.ops[d].index, d)
            for p, (x, d) in latest.items():
                marks = signalled.setdefault((p, op.engine), [])   # [(index, ordinal)]
                later = [o for ix, o in marks if ix >= x]
                if later:
                    ordinal = later[0]
                else:
                    self.ops[d].signals.add(op.engine)
                    ordinal = len(marks) + 1
                    marks.append((x, ordinal))
                need = ordinal - synced.get((op.engine, p), 0)
                if need > 0:
                    op.waits += [sem[p, op.engine]] * need
                    synced[op.engine, p] = ordinal
            for r in res_w:
                last_w[r] = i
                readers[r] = []
            for r in res_r:
                readers.setdefault(r, []).append(i)
            # External writes: this op consumes them and stands for their writer.
            hit = [e for e in pending if e["pos"] <= i and e["words"] & (op.reads | op.writes)]
            for e in hit:
                op.ext_waits += [e["sem"]] * e["count"]
                for w in e["words"]:
                    last_w["s", w] = i
                    readers["s", w] = []
            op.waits += op.ext_waits
            pending = [e for e in pending if e not in hit]
        # Every signal must be consumed (balanced semaphores); a signal that no
        # later op waited for cannot exist by construction.

    def instructions(self):
        """Per engine, the instructions before ``HALT``: ``(waits, op)`` pairs, ``op``
        None for the ``NOP`` s that carry the waits beyond three (derives the
        semaphores first). :meth:`queues` encodes them; ``sim.perf.tile`` replays them."""
        self._schedule()
        qs = [[] for _ in ENGINES]
        for op in self.ops:
            waits = list(op.waits)
            while len(waits) > 3:
                qs[op.engine].append((waits[:3], None))
                waits = waits[3:]
            qs[op.engine].append((waits, op))
        return qs

    def queues(self):
        """The three instruction lists (64-bit words), each ending in HALT."""
        qs = [[encode(Opcode.NOP, waits=waits) if op is None else
               encode(Opcode.EXEC, waits=waits, arg=op.addr,
                      signals=sorted(self.sem_ids[op.engine, c] for c in op.signals))
               for waits, op in q] for q in self.instructions()]
        for q in qs:
            q.append(encode(Opcode.HALT))
            if len(q) > self.cfg.depth:
                raise CompileError(f"program of {len(q)} words exceeds the queue depth "
                                   f"{self.cfg.depth}")
        return qs

    def record_words(self):
        """SRAM words of the records: ``{word address: int}``."""
        wb = 8 * self.cfg.word_bytes
        out = {}
        for op in self.ops:
            if op.kind == "dma":
                v = tile_dma(self.cfg).encode(op.rec)
                nw = self.desc_words
            elif op.kind == "gemm":
                v, nw = pack(self.ttu_layout, op.rec), 1
            else:
                v, nw = pack(self.tvp_layout, op.rec), 2
            for k in range(nw):
                out[op.addr + k] = (v >> (wb * k)) & ((1 << wb) - 1)
        return out

    def image(self):
        """``{"queues", "sram", "hbm"}``: what the host loads before starting."""
        qs = self.queues()
        sram = dict(self.sram_init)
        sram.update(self.record_words())
        return {"queues": qs, "sram": sram, "hbm": dict(self.hbm_init)}
