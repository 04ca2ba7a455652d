"""Golden model of a tile (``hw.tile.Tile``) running a compiled program.

Executes the operations of a :class:`sim.compiler.TileProgram` in program
order (a valid sequential order of the semaphore-synchronised queues) on a
byte image of the tile SRAM and of HBM, with the block golden models:
:class:`sim.dma.DMAModel`, :func:`sim.mx.mx_gemm` (TTU, fed beat by beat as
``hw.tile.TTUFeeder`` does) and :class:`sim.tvp.TVPModel`. For a program whose
semaphores order every conflicting access, the RTL's final memories equal
this model's bit for bit, whatever the timing.
"""
import numpy as np

from sim import mx
from sim.dma import tile_dma
from sim.tvp import TVPModel

__all__ = ["TileModel"]


class TileModel:
    """Functional tile: SRAM + HBM bytes, DMA / TTU / TVP golden models."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.wb = cfg.word_bytes
        self.sram = bytearray(cfg.sram_size)
        self.hbm = bytearray(cfg.hbm_size)
        self.dma = tile_dma(cfg)
        self.tvp = TVPModel(lanes=cfg.n)
        self.macs = 0

    # --- memory helpers ---------------------------------------------------
    def word(self, a):
        a &= 0xFFFF
        return int.from_bytes(self.sram[a * self.wb:(a + 1) * self.wb], "little")

    def set_word(self, a, v):
        self.sram[a * self.wb:(a + 1) * self.wb] = int(v).to_bytes(self.wb, "little")

    def load(self, image):
        for a, v in image["sram"].items():
            self.set_word(a, v)
        for a, b in image["hbm"].items():
            self.hbm[a:a + len(b)] = b

    def read_f32(self, word_addr, rows, cols, pitch):
        """``rows x cols`` float32 matrix at SRAM ``word_addr`` with row pitch in words."""
        out = np.zeros((rows, cols), np.uint32)
        n = self.cfg.n
        for r in range(rows):
            for cw in range(cols // n):
                v = self.word(word_addr + r * pitch + cw)
                out[r, cw * n:(cw + 1) * n] = [(v >> (32 * i)) & 0xFFFFFFFF for i in range(n)]
        return out.view(np.float32)

    # --- engines ---------------------------------------------------------
    def run_op(self, op):
        if op.kind == "dma":
            return self.dma.run(op.rec, hbm=self.hbm, local=[self.sram])
        if op.kind == "gemm":
            return self._gemm(op.rec)
        return self._vec(op.rec)

    def _beats(self, addr, tiles, kb):
        """Operand beats -> codes [tiles*n, kb] and block scales [tiles*n, kb//32]."""
        n = self.cfg.n
        codes = np.zeros((tiles * n, kb), np.uint8)
        scales = np.zeros((tiles * n, kb // 32), np.uint8)
        for t in range(tiles):
            for kk in range(kb):
                v = self.word(addr + t * kb + kk)
                for i in range(n):
                    codes[t * n + i, kk] = v >> (8 * i) & 0xFF
                    if kk % 32 == 31:
                        scales[t * n + i, kk // 32] = v >> (8 * (n + i)) & 0xFF
        return codes, scales

    def _gemm(self, r):
        n = self.cfg.n
        kb, nt, mt = r["k_beats"], r["n_tiles"], r["m_tiles"]
        fa, fb = mx.FORMAT_CODES[r["fmt_a"]], mx.FORMAT_CODES[r["fmt_b"]]
        a_c, a_s = self._beats(r["a_addr"], mt, kb)
        b_c, b_s = self._beats(r["w_addr"], nt, kb)
        c = mx.mx_gemm(a_s, a_c, fa, b_s.T, b_c.T, fb, 32)
        bits = np.asarray(c, np.float32).view(np.uint32)
        for row in range(mt * n):
            for t in range(nt):
                v = sum(int(bits[row, t * n + i]) << (32 * i) for i in range(n))
                self.set_word(r["o_addr"] + row * r["o_pitch"] + t, v)
        self.macs += mt * n * nt * n * kb
        return 0

    def _vec(self, r):
        from sim.compiler.program import TileProgram
        n = self.cfg.n
        lanes = lambda v: [(v >> (32 * i)) & 0xFFFFFFFF for i in range(n)]
        outs = TileProgram.vec_writes(r)
        k = 0
        for j, (pa, pb, pc) in enumerate(TileProgram.vec_reads(r)):
            ops = [lanes(self.word(pa)),
                   lanes(self.word(pb)) if r["nsrc"] > 1 else [0] * n,
                   lanes(self.word(pc)) if r["nsrc"] > 2 else [0] * n]
            last = int(j % r["group"] == r["group"] - 1)
            res = self.tvp.step(r["op"], r["fmt"], last, *ops)
            if res is not None:
                self.set_word(outs[k], sum(w << (32 * i) for i, w in enumerate(res[0])))
                k += 1
        return 0

    def run(self, program, image=None):
        """Load ``image`` (default ``program.image()``) and execute every op."""
        image = image or program.image()
        self.load(image)
        for op in program.ops:
            err = self.run_op(op)
            if err:
                raise RuntimeError(f"golden: op {op.name} failed with {err}")
        return self
