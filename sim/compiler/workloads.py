"""Compiled workloads: a GEMM layer and a transformer block (``make sim``, integration tests).

Each builder returns ``(program, meta)``: ``meta["out"]`` is ``(hbm address,
shape)`` of the result, ``meta["ref"]`` the float64 reference of the same
computation with the original (unquantized) weights, and ``meta["macs"]`` the
useful multiply-accumulates.
"""
import math

import numpy as np

from . import ops
from hw.tile import TileParams

from .program import TileProgram

__all__ = ["gemm_layer", "mx_gemm", "transformer_block", "bad_program", "check_transformer",
           "check_positive"]


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _place_weight(p, w, fmt, name):
    b, kb, tiles, _ = ops.weight_beats(w, fmt, p.cfg.n)
    return dict(hbm=p.hbm(b, name), k_beats=kb, tiles=tiles, fmt=fmt)


def _bias_words(p, b, name):
    n = p.cfg.n
    from .program import word_of_floats
    return p.sram_data([word_of_floats(b[i:i + n]) for i in range(0, len(b), n)], name)


def gemm_layer(cfg=TileParams(), *, M=8, K=32, N=64, wfmt="fp8_e4m3", act="GELU", buffers=2,
               chunk=None, seed=1, hbm_base=0):
    """``y = act(x @ W + b)``: x from HBM, W (MX) streamed from HBM, y back to HBM."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = (rng.standard_normal((K, N)) / math.sqrt(K)).astype(np.float32)
    b = (0.1 * rng.standard_normal(N)).astype(np.float32)
    p = TileProgram(cfg, hbm_base=hbm_base)
    xh = p.hbm(x.tobytes(), "x")
    W = _place_weight(p, w, wfmt, "w")
    yh = p.hbm(bytes(4 * M * N), "y")
    bias = _bias_words(p, b, "b")
    X = ops.new_mat(p, M, K, "x")
    ops.load_mat(p, xh, X)
    A = ops.quantize(p, X, "fp8_e4m3", "xq")
    Y = ops.new_mat(p, M, N, "y")
    ops.gemm(p, A, W, Y, buffers=buffers, chunk=chunk)
    ops.bias(p, Y, bias)
    if act:
        ops.activation(p, Y, act)
    ops.store_mat(p, Y, yh)
    ref = x.astype(np.float64) @ w + b
    if act == "GELU":
        ref = _gelu(ref)
    return p, dict(out=(yh, (M, N)), ref=ref, macs=M * K * N,
                   desc=f"y = {act or 'id'}(x[{M}x{K}] @ W[{K}x{N}] {wfmt} + b), "
                        f"{buffers} weight buffer(s)")


def transformer_block(cfg=TileParams(), *, seq=8, d_model=32, heads=2, d_ff=64,
                      wfmt="fp8_e4m3", seed=1):
    """One pre-LN transformer block (attention with softmax, MLP with GELU).

    ``h = x + Wo(attn(LN1(x)))``, ``y = h + W2(GELU(W1(LN2(h))))``; weights in
    ``wfmt`` (MX, quantized by the host), activations quantized to MX FP8 on the
    tile. ``V`` is computed transposed (``V^T = Wv^T LN1(x)^T``) so that both
    attention GEMMs read their operands in the same beat layout.
    """
    n = cfg.n
    dh = d_model // heads
    rng = np.random.default_rng(seed)
    f = lambda *s, sc=1.0: (sc * rng.standard_normal(s)).astype(np.float32)
    x = f(seq, d_model)
    Wq, Wk, Wv, Wo = (f(d_model, d_model, sc=1 / math.sqrt(d_model)) for _ in range(4))
    W1 = f(d_model, d_ff, sc=1 / math.sqrt(d_model))
    W2 = f(d_ff, d_model, sc=1 / math.sqrt(d_ff))
    bq, bk, bv, bo, b2 = (f(d_model, sc=0.1) for _ in range(5))
    b1 = f(d_ff, sc=0.1)
    g1, g2 = 1 + f(d_model, sc=0.1), 1 + f(d_model, sc=0.1)
    be1, be2 = f(d_model, sc=0.1), f(d_model, sc=0.1)

    p = TileProgram(cfg)
    xh = p.hbm(x.tobytes(), "x")
    yh = p.hbm(bytes(4 * seq * d_model), "y")
    Wq_, Wk_, Wo_ = (_place_weight(p, w, wfmt, nm) for w, nm in ((Wq, "wq"), (Wk, "wk"),
                                                                  (Wo, "wo")))
    # V^T = Wv^T @ LN1(x)^T: the left (A) operand is Wv^T, i.e. rows of Wv^T as row tiles.
    WvT_ = _place_weight(p, Wv, wfmt, "wvT")   # beats of Wv^T rows == columns of Wv
    W1_, W2_ = _place_weight(p, W1, wfmt, "w1"), _place_weight(p, W2, wfmt, "w2")
    B = {k: _bias_words(p, v, k) for k, v in (("bq", bq), ("bk", bk), ("bo", bo), ("b1", b1),
                                              ("b2", b2), ("g1", g1), ("g2", g2),
                                              ("be1", be1), ("be2", be2))}
    from .program import word_of_floats
    bvT = p.sram_data([word_of_floats([v] * n) for v in bv], "bv_rows")

    X = ops.new_mat(p, seq, d_model, "x")
    ops.load_mat(p, xh, X)
    L1 = ops.new_mat(p, seq, d_model, "ln1")
    ops.layernorm(p, X, B["g1"], B["be1"], L1, name="ln1")
    L1q = ops.quantize(p, L1, "fp8_e4m3", "ln1q")
    Q = ops.new_mat(p, seq, d_model, "q")
    K_ = ops.new_mat(p, seq, d_model, "k")
    ops.gemm(p, L1q, Wq_, Q, name="wq")
    ops.bias(p, Q, B["bq"], name="bq")
    ops.gemm(p, L1q, Wk_, K_, name="wk")
    ops.bias(p, K_, B["bk"], name="bk")
    VT = ops.new_mat(p, d_model, seq, "vT")
    ops.gemm(p, WvT_, L1q, VT, name="wv")      # left operand from HBM
    ops.bias(p, VT, bvT, per_row=True, name="bv")
    O = ops.new_mat(p, seq, d_model, "attn")
    for h in range(heads):
        Qh = ops.copy(p, Q.cols_view(h * dh, dh, n), f"q{h}")
        Kh = ops.copy(p, K_.cols_view(h * dh, dh, n), f"k{h}")
        Qq = ops.quantize(p, Qh, "fp8_e4m3", f"q{h}q")
        Kq = ops.quantize(p, Kh, "fp8_e4m3", f"k{h}q")
        ops.free_mat(p, Qh)
        ops.free_mat(p, Kh)
        S = ops.new_mat(p, seq, seq, f"s{h}")
        ops.gemm_beats(p, Qq, Kq, S, name=f"qk{h}")
        ops.scale(p, S, 1 / math.sqrt(dh), name=f"scale{h}")
        ops.softmax(p, S, name=f"softmax{h}")
        Pq = ops.quantize(p, S, "fp8_e4m3", f"p{h}q")
        Vq = ops.quantize(p, VT.rows_view(h * dh, dh), "fp8_e4m3", f"v{h}q")
        ops.gemm_beats(p, Pq, Vq, O.cols_view(h * dh, dh, n), name=f"pv{h}")
        ops.free_mat(p, S)
        for bt in (Qq, Kq, Pq, Vq):
            p.free(bt.addr, bt.tiles * bt.k_beats)
    Oq = ops.quantize(p, O, "fp8_e4m3", "oq")
    Hm = ops.new_mat(p, seq, d_model, "h")
    ops.gemm(p, Oq, Wo_, Hm, name="wo")
    ops.bias(p, Hm, B["bo"], name="bo")
    ops.add(p, Hm, X, Hm, name="res1")
    L2 = ops.new_mat(p, seq, d_model, "ln2")
    ops.layernorm(p, Hm, B["g2"], B["be2"], L2, name="ln2")
    L2q = ops.quantize(p, L2, "fp8_e4m3", "ln2q")
    F = ops.new_mat(p, seq, d_ff, "ff")
    ops.gemm(p, L2q, W1_, F, name="w1")
    ops.bias(p, F, B["b1"], name="b1")
    ops.activation(p, F, "GELU", name="gelu")
    Fq = ops.quantize(p, F, "fp8_e4m3", "ffq")
    Y = ops.new_mat(p, seq, d_model, "y")
    ops.gemm(p, Fq, W2_, Y, name="w2")
    ops.bias(p, Y, B["b2"], name="b2")
    ops.add(p, Y, Hm, Y, name="res2")
    ops.store_mat(p, Y, yh)

    # float64 reference with the original weights.
    def ln(v, g, b):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + 1e-5) * g + b
    xd = x.astype(np.float64)
    l1 = ln(xd, g1, be1)
    q, k, v = l1 @ Wq + bq, l1 @ Wk + bk, l1 @ Wv + bv
    o = np.zeros_like(xd)
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        s = q[:, sl] @ k[:, sl].T / math.sqrt(dh)
        e = np.exp(s - s.max(-1, keepdims=True))
        o[:, sl] = (e / e.sum(-1, keepdims=True)) @ v[:, sl]
    hm = xd + o @ Wo + bo
    ref = hm + _gelu(ln(hm, g2, be2) @ W1 + b1) @ W2 + b2
    macs = seq * d_model * d_model * 4 + 2 * seq * seq * d_model + 2 * seq * d_model * d_ff
    return p, dict(out=(yh, (seq, d_model)), ref=ref, macs=macs,
                   desc=f"transformer block seq {seq}, d_model {d_model}, {heads} heads, "
                        f"d_ff {d_ff}, {wfmt} weights")


def bad_program(kind, cfg=TileParams()):
    """A small program broken on purpose: ``opcode``, ``deadlock`` or ``address``."""
    from hw.cp.isa import encode
    p, meta = gemm_layer(cfg, M=4, K=32, N=8, act=None)
    if kind == "address":
        # A TVP result written past the end of the tile SRAM.
        p.vec("ABS", n_beats=2, group=2, a=(p.cfg.words - 8, 1, 0), o=(p.cfg.words - 1, 1, 0),
              o_group=2, name="bad_address")
    image = p.image()
    if kind == "opcode":
        image["queues"][1].insert(0, 0xF)                 # opcode 15 on the TTU queue
    elif kind == "deadlock":
        image["queues"][2].insert(0, encode(0, waits=[15]))   # waits on a semaphore nobody signals
    elif kind != "address":
        raise ValueError(f"unknown bad program kind {kind!r}")
    meta["image"] = image
    return p, meta


def check_positive(**sizes):
    """Raise ``ValueError`` naming the first size (``--name``) that is not a positive integer."""
    for k, v in sizes.items():
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"--{k.replace('_', '-')} must be a positive integer, not {v!r}")


def _check_multiple(name, v, of, why):
    if v % of:
        raise ValueError(f"--{name} {v} must be a multiple of {of} ({why})")


def mx_gemm(cfg=TileParams(), *, m=64, n=64, k=64, wfmt="fp8_e4m3", buffers=2, seed=1):
    """A plain MX GEMM ``y = A @ W``: A ``[m, k]`` and W ``[k, n]`` both MX ``wfmt``.

    The host quantizes both operands (along K, blocks of 32) into TTU beats in HBM;
    A is loaded into the tile SRAM once, W streamed through ``buffers`` SRAM buffers
    (:func:`sim.compiler.ops.gemm`), the FP32 result written back to HBM. No TVP
    work: the run is DMA and TTU only.
    """
    check_positive(m=m, n=n, k=k)
    t = cfg.n
    _check_multiple("m", m, t, "the TTU array is n x n")
    _check_multiple("n", n, t, "the TTU array is n x n")
    if k > 32:
        _check_multiple("k", k, 32, "the MX scale block")
    kb = -(-k // 32) * 32
    if kb > cfg.max_k_beats:
        raise ValueError(f"--k {k} exceeds the TTU's K buffer ({cfg.max_k_beats} beats, "
                         f"TileParams.max_k_beats)")
    if buffers not in (1, 2):
        raise ValueError(f"--buffers must be 1 or 2, not {buffers}")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / math.sqrt(k)).astype(np.float32)
    p = TileProgram(cfg)
    A_ = _place_weight(p, a.T, wfmt, "a")           # beats of A^T columns == rows of A
    W_ = _place_weight(p, w, wfmt, "w")
    yh = p.hbm(bytes(4 * m * n), "y")
    A = ops.Beats(p.alloc(A_["tiles"] * A_["k_beats"], "a"), A_["tiles"], A_["k_beats"], wfmt)
    wb = cfg.word_bytes
    p.dma(dict(src_kind=ops.HBM, dst_kind=ops.LOCAL, src=A_["hbm"], dst=A.addr * wb,
               length=A.tiles * A.k_beats * wb), "load_a")
    Y = ops.new_mat(p, m, n, "y")
    ops.gemm(p, A, W_, Y, buffers=buffers)
    ops.store_mat(p, Y, yh)
    ref = a.astype(np.float64) @ w.astype(np.float64)
    return p, dict(out=(yh, (m, n)), ref=ref, macs=m * n * k, wfmt=wfmt,
                   desc=f"y[{m}x{n}] = A[{m}x{k}] @ W[{k}x{n}], both MX {wfmt}, "
                        f"{buffers} weight buffer(s)")


def check_transformer(cfg, *, seq, d_model, heads, d_ff):
    """Raise ``ValueError`` naming the first ``make sim`` option a transformer block cannot take."""
    check_positive(seq=seq, d_model=d_model, heads=heads, d_ff=d_ff)
    t = cfg.n
    if d_model % heads:
        raise ValueError(f"--heads {heads} must divide --d-model {d_model}")
    dh = d_model // heads
    if dh % t:
        raise ValueError(f"--d-model / --heads = {dh} must be a multiple of the tile size {t}")
    for name, v in (("seq", seq), ("d-model", d_model), ("d-ff", d_ff)):
        _check_multiple(name, v, t, "the TTU array is n x n")
    for name, v in (("seq", seq), ("d-model", d_model), ("d-ff", d_ff), ("d-model / --heads", dh)):
        if v > 32:
            _check_multiple(name, v, 32, "a GEMM reduction over it: the MX scale block")
        if -(-v // 32) * 32 > cfg.max_k_beats:
            raise ValueError(f"--{name} {v} exceeds the TTU's K buffer ({cfg.max_k_beats} "
                             f"beats, TileParams.max_k_beats)")
    if seq // t > cfg.max_n_tiles:
        raise ValueError(f"--seq {seq} exceeds {cfg.max_n_tiles * t} (the attention scores' "
                         f"column tiles, TileParams.max_n_tiles {cfg.max_n_tiles})")
