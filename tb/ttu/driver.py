"""Host-side packing of MX GEMMs for the TTU ports (used by the tests and the bench).

Payload integers follow Amaranth's ``lib.data`` packing (first field in the
LSBs, array element 0 lowest).
"""
import numpy as np
from amaranth.hdl import Shape

from hw.common.layout import pack

from sim import mx


def field(layout, word, name):
    f = layout[name]
    w = Shape.cast(f.shape).width
    return (word >> f.offset) & ((1 << w) - 1)


def can_pack(fa, fb):
    return fa in ("fp6_e3m2", "fp6_e2m3", "fp4_e2m1") and fb in ("fp6_e3m2", "fp6_e2m3", "fp4_e2m1")


class Gemm:
    """One GEMM prepared for the TTU ports: the command, weight and activation beats.

    ``K`` is zero-padded to a multiple of ``block`` (the defined padding of the
    golden model) and, when packed, two consecutive k share one lane.
    """

    def __init__(self, rows, cols, sa, ca, fa, sb, cb, fb, *, block=32, packed=None):
        M, K = ca.shape
        N = cb.shape[1]
        if M % rows or N % cols:
            raise ValueError("M and N must be multiples of the array size")
        self.rows, self.cols, self.block = rows, cols, block
        self.fa, self.fb = fa, fb
        self.packed = can_pack(fa, fb) if packed is None else packed
        lanes = 2 if self.packed else 1
        kp = -(-K // block) * block
        self.ca = np.zeros((M, kp), np.uint8)
        self.ca[:, :K] = ca
        self.cb = np.zeros((kp, N), np.uint8)
        self.cb[:K] = cb
        self.sa, self.sb = np.asarray(sa, np.uint8), np.asarray(sb, np.uint8)
        self.k_beats = kp // lanes
        self.m_tiles, self.n_tiles = M // rows, N // cols
        self.expected = mx.mx_gemm(sa, ca, fa, sb, cb, fb, block)

    def cmd(self, layout):
        return pack(layout, {
            "fmt_a": mx.FORMATS[self.fa].select, "fmt_b": mx.FORMATS[self.fb].select,
            "pack": int(self.packed), "block32": int(self.block == 32),
            "k_beats": self.k_beats, "n_tiles": self.n_tiles, "m_tiles": self.m_tiles})

    def _lane(self, codes, k):
        if self.packed:
            return int(codes[2 * k]) | (int(codes[2 * k + 1]) << 6)
        return int(codes[k])

    def _blk(self, kb):
        lanes = 2 if self.packed else 1
        return (kb * lanes) // self.block

    def weights(self, layout):
        beats = []
        for nt in range(self.n_tiles):
            cols = range(nt * self.cols, (nt + 1) * self.cols)
            for kb in range(self.k_beats):
                beats.append(pack(layout, {
                    "data": [self._lane(self.cb[:, j], kb) for j in cols],
                    "scale": [int(self.sb[self._blk(kb), j]) for j in cols]}))
        return beats

    def activations(self, layout):
        beats = []
        for mt in range(self.m_tiles):
            rows = range(mt * self.rows, (mt + 1) * self.rows)
            for kb in range(self.k_beats):
                beats.append(pack(layout, {
                    "data": [self._lane(self.ca[i], kb) for i in rows],
                    "scale": [int(self.sa[i, self._blk(kb)]) for i in rows]}))
        return beats

    def n_rows_out(self):
        return self.m_tiles * self.n_tiles * self.rows

    def unpack_results(self, layout, beats):
        """Assemble ``[M, N]`` uint32 results from result-row beats (checks row/last)."""
        M, N = self.expected.shape
        out = np.zeros((M, N), np.uint32)
        data_f = dict(iter(layout))["data"]
        i = 0
        for mt in range(self.m_tiles):
            for nt in range(self.n_tiles):
                for r in range(self.rows):
                    w = beats[i]
                    i += 1
                    assert field(layout, w, "row") == r, f"row {field(layout, w, 'row')} != {r}"
                    assert field(layout, w, "last") == int(r == self.rows - 1)
                    d = (w >> data_f.offset)
                    for c in range(self.cols):
                        out[mt * self.rows + r, nt * self.cols + c] = (d >> (32 * c)) & 0xFFFFFFFF
        return out
