"""Host-side packing of GEMMs for ``hw.ttu.KTTU`` (K-wide array) and a pysim runner.

K is zero-padded to a whole number of beats and blocks (the defined padding:
zero codes, scale 127 for padded blocks; the golden models treat a short last
block / group as zero padding, and whole zero blocks add +0 to an accumulator
that is never -0).
"""
import random

import numpy as np
from amaranth.sim import Simulator

from hw.common.layout import pack
from hw.ttu.kttu import kwave_layout
from sim import mx

__all__ = ["KGemm", "run_pysim"]


class KGemm:
    """One GEMM for a KTTU: ``mode`` is ``"bf16"`` or an MX pair ``(fa, fb)``."""

    def __init__(self, dut, *, a, b, fa=None, fb=None, sa=None, sb=None, bf16=False):
        sp = dut.spec
        self.R, self.C, self.sp = dut._rows, dut._cols, sp
        self.bf16 = bf16
        M, K = a.shape
        N = b.shape[1]
        assert M % self.R == 0 and N % self.C == 0
        if bf16:
            self.E, self.G, self.packed = sp.n_bf16, mx.BF16_GROUP, False
            self.expected = mx.bf16_gemm(a, b)
            self.fa = self.fb = None
        else:
            narrow = ("fp6_e3m2", "fp6_e2m3", "fp4_e2m1")
            self.packed = sp.packed and fa in narrow and fb in narrow
            self.E, self.G = (2 * sp.k if self.packed else sp.k), sp.block
            self.expected = mx.mx_gemm(sa, a, fa, sb, b, fb, sp.block)
            self.fa, self.fb = fa, fb
        step = max(self.E, self.G)
        Kp = -(-K // step) * step
        self.a = np.zeros((M, Kp), np.int64)
        self.a[:, :K] = a
        self.b = np.zeros((Kp, N), np.int64)
        self.b[:K] = b
        nbp = Kp // self.G
        self.sa = np.full((M, nbp), 127, np.int64)
        self.sb = np.full((nbp, N), 127, np.int64)
        if not bf16:
            self.sa[:, :sa.shape[1]] = sa
            self.sb[:sb.shape[0]] = sb
        self.beats_per_tile = Kp // self.E
        self.m_tiles, self.n_tiles = M // self.R, N // self.C
        self.layout = kwave_layout(sp, self.R, self.C)

    def cfg(self):
        if self.bf16:
            return {"fmt_a": 0, "fmt_b": 0, "pack": 0, "bf16": 1}
        return {"fmt_a": mx.FORMATS[self.fa].select, "fmt_b": mx.FORMATS[self.fb].select,
                "pack": int(self.packed), "bf16": 0}

    def _lanes(self, codes, kb):
        sp, E = self.sp, self.E
        c = codes[kb * E:(kb + 1) * E]
        word = 0
        if self.bf16:
            for e in range(E):
                word |= (int(c[e]) & 0xFFFF) << (16 * e)
        elif self.packed:
            for lane in range(sp.k):
                word |= ((int(c[2 * lane]) & 0x3F) | ((int(c[2 * lane + 1]) & 0x3F) << 6)) \
                    << (sp.lane * lane)
        else:
            for lane in range(sp.k):
                word |= (int(c[lane]) & 0xFF) << (sp.lane * lane)
        return word

    def _scales(self, s, kb):
        return [int(s((kb * self.E + j * self.G) // self.G)) if
                (kb * self.E + j * self.G) // self.G < self.a.shape[1] // self.G else 127
                for j in range(self.sp.slots)]

    def tiles(self):
        """Per tile: list of packed payload ints."""
        out = []
        for mt in range(self.m_tiles):
            for nt in range(self.n_tiles):
                rows = range(mt * self.R, (mt + 1) * self.R)
                cols = range(nt * self.C, (nt + 1) * self.C)
                beats = []
                for kb in range(self.beats_per_tile):
                    beats.append(pack(self.layout, {
                        "a_data": [self._lanes(self.a[i], kb) for i in rows],
                        "a_scale": [self._scales(lambda q, i=i: self.sa[i, q], kb) for i in rows],
                        "b_data": [self._lanes(self.b[:, j], kb) for j in cols],
                        "b_scale": [self._scales(lambda q, j=j: self.sb[q, j], kb) for j in cols],
                        "blk_last": int(((kb + 1) * self.E) % self.G == 0),
                        "tile_last": int(kb == self.beats_per_tile - 1)}))
                out.append(beats)
        return out


def run_pysim(dut, gemms, *, valid_prob=1.0, ready_prob=1.0, seed=0, max_cycles=20000):
    """Run ``gemms`` (KGemm list) through ``dut``; return (results, cycles, errors).

    ``results`` is a list of ``[M, N]`` uint32 arrays. Tiles are spaced at least
    ``max(rows, cols)`` beats apart (idle beats in between), as the unit requires.
    """
    rng = random.Random(seed)
    R, C = dut._rows, dut._cols
    out = {"rows": [], "cycles": 0, "errors": 0}

    async def source(ctx):
        for g in gemms:
            ctx.set(dut.cfg, g.cfg())
            for beats in g.tiles():
                sent = 0
                for n, w in enumerate(beats):
                    while rng.random() > valid_prob:
                        ctx.set(dut.i_stream.valid, 0)
                        await ctx.tick()
                        sent += 1
                    ctx.set(dut.i_stream.valid, 1)
                    ctx.set(dut.i_stream.payload.as_value(), w)
                    await ctx.tick().until(dut.i_stream.ready)
                    sent += 1
                ctx.set(dut.i_stream.valid, 0)
                for _ in range(max(0, max(R, C) - sent)):
                    await ctx.tick()
            # Configuration stays until this GEMM's rows are out.
            want = sum(gg.m_tiles * gg.n_tiles * R for gg in gemms[:gemms.index(g) + 1])
            while len(out["rows"]) < want:
                await ctx.tick()

    async def sink(ctx):
        total = sum(g.m_tiles * g.n_tiles * R for g in gemms)
        cycles = 0
        while len(out["rows"]) < total:
            ready = rng.random() < ready_prob
            ctx.set(dut.o_stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o_stream.valid,
                                                           dut.o_stream.payload)
            cycles += 1
            assert cycles < max_cycles, "timeout"
            if valid and ready:
                out["rows"].append(([int(x) for x in payload.data], int(payload.row),
                                    int(payload.last)))
        out["cycles"] = cycles
        out["errors"] = ctx.get(dut.errors)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    results, i = [], 0
    for g in gemms:
        M, N = g.expected.shape
        res = np.zeros((M, N), np.uint32)
        for mt in range(g.m_tiles):
            for nt in range(g.n_tiles):
                for r in range(R):
                    data, row, last = out["rows"][i]
                    i += 1
                    assert row == r and last == int(r == R - 1), (row, r, last)
                    res[mt * R + r, nt * C:(nt + 1) * C] = data
        results.append(res)
    return results, out["cycles"], out["errors"]
