"""NumPy-level operations lowered to tile programs.

Data in the tile SRAM:

* :class:`Mat`: an FP32 matrix, row-major, ``n`` floats per word, with a row
  pitch in words (so a column slice such as one attention head is a view);
* :class:`Beats`: an MX operand in TTU beat format: word ``t * k_beats + k``
  holds, for row (activation) / column (weight) tile ``t`` and reduction
  step ``k``, the ``n`` element codes in bytes ``0..n-1`` and their E8M0
  scales in bytes ``n..2n-1``. K is padded with zero codes to a multiple of
  the 32-element scale block.

Weights are quantized by the host (:func:`weight_beats`) and live in HBM in
beat format; activations are quantized on the tile: TVP ``ABS`` -> ``RMAX``
per block -> ``MXQ`` gives ``code | scale << 8`` per element, then two DMA
gathers (codes, scales) transpose them into beats.
"""
from dataclasses import dataclass

import numpy as np

from hw.dma.descriptor import Kind
from sim import mx

from .program import CompileError

__all__ = ["Mat", "Beats", "weight_beats", "load_mat", "store_mat", "quantize", "gemm",
           "bias", "activation", "softmax", "layernorm", "add", "scale"]

HBM, LOCAL = Kind.HBM, Kind.LOCAL


@dataclass(frozen=True)
class Mat:
    addr: int
    rows: int
    cols: int
    pitch: int

    def cols_view(self, c0, cols, n):
        """Columns ``c0 .. c0 + cols`` (multiples of ``n``)."""
        return Mat(self.addr + c0 // n, self.rows, cols, self.pitch)

    def rows_view(self, r0, rows):
        return Mat(self.addr + r0 * self.pitch, rows, self.cols, self.pitch)


@dataclass(frozen=True)
class Beats:
    addr: int
    tiles: int
    k_beats: int
    fmt: str


def _kb(k):
    return -(-k // 32) * 32


def new_mat(prog, rows, cols, name):
    n = prog.cfg.n
    if cols % n or rows % n:
        raise CompileError(f"{name}: {rows}x{cols} is not a multiple of the tile size {n}")
    return Mat(prog.alloc(rows * cols // n, name), rows, cols, cols // n)


def free_mat(prog, m):
    prog.free(m.addr, m.rows * m.pitch)


def weight_beats(w, fmt, n):
    """Host side: quantize ``w [K, N]`` along K and lay it out as beats (bytes).

    Returns ``(bytes, k_beats, tiles, (scales, codes))``: column tile major,
    ``4 n`` bytes per beat word.
    """
    K, N = w.shape
    s, c = mx.quantize(w.astype(np.float32), fmt, block=32, axis=0)
    kb = _kb(K)
    tiles = N // n
    out = np.zeros((tiles, kb, 4 * n), np.uint8)
    for t in range(tiles):
        for k in range(K):
            out[t, k, :n] = c[k, t * n:(t + 1) * n]
            out[t, k, n:2 * n] = s[k // 32, t * n:(t + 1) * n]
        for k in range(K, kb):
            out[t, k, n:2 * n] = s[(k // 32) if k // 32 < s.shape[0] else -1, t * n:(t + 1) * n]
    return out.tobytes(), kb, tiles, (s, c)


def load_mat(prog, hbm_addr, m, name="load"):
    """DMA an FP32 row-major matrix from HBM into SRAM matrix ``m``."""
    wb = prog.cfg.word_bytes
    return prog.dma(dict(src_kind=HBM, dst_kind=LOCAL, src=hbm_addr, dst=m.addr * wb,
                         length=m.cols * 4,
                         outer=[dict(count=m.rows, src_stride=m.cols * 4,
                                     dst_stride=m.pitch * wb)]), name)


def store_mat(prog, m, hbm_addr, name="store"):
    """DMA SRAM matrix ``m`` to HBM, row-major FP32."""
    wb = prog.cfg.word_bytes
    return prog.dma(dict(src_kind=LOCAL, dst_kind=HBM, src=m.addr * wb, dst=hbm_addr,
                         length=m.cols * 4,
                         outer=[dict(count=m.rows, src_stride=m.pitch * wb,
                                     dst_stride=m.cols * 4)]), name)


def _rows(m, n):
    """Address generator of a matrix traversed row by row, one word per beat."""
    return dict(n_beats=m.rows * m.cols // n, group=m.cols // n)


def _ag(m):
    return (m.addr, 1, m.pitch)


def quantize(prog, x, fmt="fp8_e4m3", name="q"):
    """Quantize FP32 ``x [M, K]`` along K to MX beats (zero-padded to 32)."""
    n = prog.cfg.n
    M, K = x.rows, x.cols
    if K > 32 and K % 32:
        raise CompileError(f"{name}: K={K} must be a multiple of 32 or at most 32")
    bpb = min(K, 32) // n            # beats per scale block
    kb = _kb(K)
    tmp = new_mat(prog, M, K, name + ".abs")
    nblk = M * K // n // bpb
    amax = prog.alloc(nblk, name + ".amax")
    q = new_mat(prog, M, K, name + ".mxq")
    fcode = prog.const_word(sum(mx.FORMATS[fmt].select << (32 * i) for i in range(n)),
                            f"fmt:{fmt}:{name}")
    r = _rows(x, n)
    prog.vec("ABS", **r, a=_ag(x), o=_ag(tmp), o_group=r["group"], name=name + ".abs")
    if x.pitch != K // n:
        raise CompileError(f"{name}: quantize needs a dense source (copy the view first)")
    prog.vec("RMAX", n_beats=r["n_beats"], group=bpb, a=(tmp.addr, 1, bpb), o=(amax, 0, 1),
             name=name + ".amax")
    # MXQ: b = the block's amax (broadcast), c = the format code.
    prog.vec("MXQ", n_beats=r["n_beats"], group=bpb, a=(x.addr, 1, bpb), b=(amax, 0, 1),
             c=(fcode, 0, 0), o=(q.addr, 1, bpb), o_group=bpb, name=name + ".mxq")
    prog.free(tmp.addr, M * K // n)
    out = Beats(prog.alloc(M // n * kb, name + ".beats"), M // n, kb, fmt)
    wb = prog.cfg.word_bytes
    if kb != K:
        zero = prog.zero_hbm(M // n * kb * wb)
        prog.dma(dict(src_kind=HBM, dst_kind=LOCAL, src=zero, dst=out.addr * wb,
                      length=M // n * kb * wb), name + ".zero")
    # Codes: K beats (the padding stays zero). Scales: every one of the kb beats
    # (the TTU samples a block's scale on its last beat, which may be padding).
    for byte, off, count, stride in ((0, 0, K, 4), (1, n, kb, 4 if K % 32 == 0 else 0)):
        prog.dma(dict(src_kind=LOCAL, dst_kind=LOCAL, src=q.addr * wb + byte,
                      dst=out.addr * wb + off, length=1,
                      outer=[dict(count=n, src_stride=K * 4, dst_stride=1),
                             dict(count=count, src_stride=stride, dst_stride=wb),
                             dict(count=M // n, src_stride=n * K * 4, dst_stride=kb * wb)]),
                 name + (".codes" if byte == 0 else ".scales"))
    prog.free(q.addr, M * K // n)
    prog.free(amax, nblk)
    return out


def copy(prog, src, name="copy"):
    """A dense copy of a (strided) matrix view (TVP ``ADD`` with -0.0)."""
    n = prog.cfg.n
    dst = new_mat(prog, src.rows, src.cols, name)
    r = _rows(src, n)
    mz = prog.const(-0.0, "-0")
    prog.vec("ADD", **r, a=_ag(src), b=(mz, 0, 0), o=_ag(dst), o_group=r["group"], name=name)
    return dst


def gemm(prog, a, w, out, *, buffers=2, chunk=None, name="gemm"):
    """``out = a @ w``: one operand in SRAM beats, the other in HBM beats.

    ``a`` is :class:`Beats` (activations, SRAM) and ``w`` a dict
    ``{"hbm", "k_beats", "tiles", "fmt"}`` from :func:`weight_beats` placed in
    HBM (weights, streamed); or, with ``w`` in SRAM and ``a`` in HBM (a dict),
    the HBM operand is the left one. The HBM operand is streamed in chunks of
    ``chunk`` tiles through ``buffers`` SRAM buffers (2: double buffering, the
    DMA of chunk ``c+1`` overlaps the TTU on chunk ``c``).
    """
    cfg = prog.cfg
    n, wb = cfg.n, cfg.word_bytes
    left_hbm = isinstance(a, dict)
    hb, sb = (a, w) if left_hbm else (w, a)
    kb = hb["k_beats"]
    if sb.k_beats != kb:
        raise CompileError(f"{name}: K mismatch ({sb.k_beats} vs {kb} beats)")
    tiles = hb["tiles"]
    if chunk is None:
        # Enough chunks to overlap, each as big as the TTU and SRAM allow.
        limit = cfg.max_n_tiles if not left_hbm else 64
        chunk = max(1, min(limit, -(-tiles // 4)))
    chunk = min(chunk, tiles)
    bufs = [prog.alloc(chunk * kb, f"{name}.buf{i}") for i in range(buffers)]
    for c, t0 in enumerate(range(0, tiles, chunk)):
        nt = min(chunk, tiles - t0)
        buf = bufs[c % buffers]
        prog.dma(dict(src_kind=HBM, dst_kind=LOCAL, src=hb["hbm"] + t0 * kb * wb,
                      dst=buf * wb, length=nt * kb * wb), f"{name}.w{c}")
        if left_hbm:   # chunk of row tiles of the left operand
            prog.gemm(w_addr=sb.addr, a_addr=buf, o_addr=out.addr + t0 * n * out.pitch,
                      o_pitch=out.pitch, k_beats=kb, n_tiles=sb.tiles, m_tiles=nt,
                      fmt_a=hb["fmt"], fmt_b=sb.fmt, name=f"{name}.mm{c}")
        else:
            prog.gemm(w_addr=buf, a_addr=sb.addr, o_addr=out.addr + t0, o_pitch=out.pitch,
                      k_beats=kb, n_tiles=nt, m_tiles=sb.tiles, fmt_a=sb.fmt,
                      fmt_b=hb["fmt"], name=f"{name}.mm{c}")
    for b in bufs:
        prog.free(b, chunk * kb)
    return out


def gemm_beats(prog, a, b, out, name="mm"):
    """``out = a @ b`` with both operands as SRAM beats (attention)."""
    if b.tiles > prog.cfg.max_n_tiles:
        raise CompileError(f"{name}: {b.tiles} column tiles > max_n_tiles")
    prog.gemm(w_addr=b.addr, a_addr=a.addr, o_addr=out.addr, o_pitch=out.pitch,
              k_beats=a.k_beats, n_tiles=b.tiles, m_tiles=a.tiles, fmt_a=a.fmt, fmt_b=b.fmt,
              name=name)
    return out


def bias(prog, y, bias_addr, *, per_row=False, name="bias"):
    """``y += bias`` (row vector of ``cols`` at ``bias_addr``; ``per_row``: one
    broadcast word per row)."""
    r = _rows(y, prog.cfg.n)
    b = (bias_addr, 0, 1) if per_row else (bias_addr, 1, 0)
    prog.vec("ADD", **r, a=_ag(y), b=b, o=_ag(y), o_group=r["group"], name=name)
    return y


def activation(prog, y, fn="GELU", name=None):
    r = _rows(y, prog.cfg.n)
    prog.vec(fn, **r, a=_ag(y), o=_ag(y), o_group=r["group"], name=name or fn.lower())
    return y


def scale(prog, y, value, name="scale"):
    r = _rows(y, prog.cfg.n)
    prog.vec("MUL", **r, a=_ag(y), b=(prog.const(value), 0, 0), o=_ag(y), o_group=r["group"],
             name=name)
    return y


def add(prog, x, y, out, name="add"):
    r = _rows(x, prog.cfg.n)
    prog.vec("ADD", **r, a=_ag(x), b=_ag(y), o=_ag(out), o_group=r["group"], name=name)
    return out


def _row_reduce(prog, op, x, name):
    """One broadcast word per row of ``x``."""
    r = _rows(x, prog.cfg.n)
    red = prog.alloc(x.rows, name)
    prog.vec(op, **r, a=_ag(x), o=(red, 0, 1), name=name)
    return red


def softmax(prog, x, name="softmax"):
    """Row softmax in place: ``exp(x - max) / sum``."""
    r = _rows(x, prog.cfg.n)
    g = r["group"]
    mx_ = _row_reduce(prog, "RMAX", x, name + ".max")
    # EXPD = exp(a - b): the subtraction and exp in one pass (hw.tvp activation chain).
    prog.vec("EXPD", **r, a=_ag(x), b=(mx_, 0, 1), o=_ag(x), o_group=g, name=name + ".exp")
    s = _row_reduce(prog, "RSUM", x, name + ".sum")
    prog.vec("RECIP", n_beats=x.rows, group=1, a=(s, 1, 1), o=(s, 1, 1), name=name + ".recip")
    prog.vec("MUL", **r, a=_ag(x), b=(s, 0, 1), o=_ag(x), o_group=g, name=name + ".norm")
    prog.free(mx_, x.rows)
    prog.free(s, x.rows)
    return x


def layernorm(prog, x, gamma, beta, out, eps=1e-5, name="ln"):
    """Row layernorm: ``(x - mean) / sqrt(var + eps) * gamma + beta``."""
    n = prog.cfg.n
    r = _rows(x, n)
    g = r["group"]
    inv = prog.const(1.0 / x.cols)
    s = _row_reduce(prog, "RSUM", x, name + ".sum")
    prog.vec("MUL", n_beats=x.rows, group=1, a=(s, 1, 1), b=(inv, 0, 0), o=(s, 1, 1),
             name=name + ".mean")
    prog.vec("SUB", **r, a=_ag(x), b=(s, 0, 1), o=_ag(out), o_group=g, name=name + ".center")
    v = _row_reduce(prog, "RSUMSQ", out, name + ".var")   # sum of squares in one pass
    prog.vec("FMA", n_beats=x.rows, group=1, a=(v, 1, 1), b=(inv, 0, 0),
             c=(prog.const(eps), 0, 0), o=(v, 1, 1), name=name + ".vareps")
    prog.vec("RSQRT", n_beats=x.rows, group=1, a=(v, 1, 1), o=(v, 1, 1), name=name + ".rsqrt")
    prog.vec("MUL", **r, a=_ag(out), b=(v, 0, 1), o=_ag(out), o_group=g, name=name + ".norm")
    prog.vec("FMA", **r, a=_ag(out), b=(gamma, 1, 0), c=(beta, 1, 0), o=_ag(out), o_group=g,
             name=name + ".affine")
    prog.free(s, x.rows)
    prog.free(v, x.rows)
    return out
