"""Cycle predictions: GEMM, attention, decoder layer, tokens/s, roofline.

Two levels, used together:

* **analytical**: compute cycles from the TTU shape, memory cycles from
  bytes moved over HBM, the larger one bounds the kernel (roofline);
* **event-level**: :func:`pipeline_cycles` replays a double-buffered
  load/compute pipeline step by step (load k+1 while computing k, with two
  buffers), which is what the tile programs of the command processor do;
  GEMM uses it so pipeline fill and drain are counted, not guessed.

All functions take a :class:`~sim.perf.config.ChipConfig` and return
plain dicts of numbers so reports and tests can read them.
"""
import math

from .config import ELEMENT_BITS
from .tiling import gemm

__all__ = ["pipeline_cycles", "ttu_gemm_cycles", "dma_copy_cycles", "noc_packet_cycles",
           "nic_message_cycles", "nic_transfer_cycles", "gemm", "batched_gemm", "attention",
           "decoder_layer", "tokens_per_second", "prefill", "roofline_points", "LLM_70B"]


def pipeline_cycles(loads, computes, *, buffers=2):
    """Cycles of a load -> compute pipeline with ``buffers`` SRAM buffers.

    Load ``i`` may start once load ``i-1`` is done and compute ``i-buffers``
    has freed its buffer; compute ``i`` starts when load ``i`` and compute
    ``i-1`` are done.
    """
    if len(loads) != len(computes):
        raise ValueError("loads and computes must have the same length")
    if buffers < 1:
        raise ValueError(f"buffers must be >= 1, not {buffers}")
    load_end, comp_end = [], []
    for i, (ld, cp) in enumerate(zip(loads, computes)):
        start = load_end[-1] if load_end else 0
        if i >= buffers:
            start = max(start, comp_end[i - buffers])
        load_end.append(start + ld)
        comp_end.append(max(load_end[-1], comp_end[-1] if comp_end else 0) + cp)
    return comp_end[-1] if comp_end else 0


def _bytes(elements, fmt):
    return elements * ELEMENT_BITS[fmt] / 8


def ttu_gemm_cycles(m, n, k, chip, *, fmt="fp8", block=32):
    """Cycles of one tile's TTU for ``C[m,n] = A[m,k] @ B[k,n]`` with operands in SRAM.

    The array is output stationary: each ``ttu_rows x ttu_cols`` output tile
    takes ``ceil(k / block) * block / ttu_k[fmt]`` reduction steps (K is padded
    to whole MX blocks) but at least ``max(rows, cols)`` (the skew of the
    wavefront), tiles issue back to back, and the last one drains in
    ``ttu_fill_cycles``. Weight loading is not included.
    """
    for name, v in (("m", m), ("n", n), ("k", k)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    rows, cols = chip.ttu_rows, chip.ttu_cols
    steps = math.ceil(math.ceil(k / block) * block / chip.ttu_k[fmt])
    tiles = math.ceil(m / rows) * math.ceil(n / cols)
    return tiles * max(steps, rows, cols) + chip.ttu_fill_cycles


def dma_copy_cycles(nbytes, chip):
    """Cycles of one DMA descriptor moving ``nbytes`` at ``dma_bytes_per_cycle``."""
    if not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"nbytes must be a positive integer, not {nbytes!r}")
    if chip.dma_bytes_per_cycle is None:
        raise ValueError(f"dma_bytes_per_cycle of {chip.name!r} is not set (no DMA rate to time a copy by)")
    return math.ceil(nbytes / chip.dma_bytes_per_cycle) + chip.dma_latency_cycles


def noc_packet_cycles(hops, beats, chip):
    """Zero-load cycles of one NoC packet: first beat offered at the source interface
    to its last beat taken at the destination, crossing ``hops`` routers with
    ``beats`` data beats behind the head (injection and ejection one cycle each)."""
    if not isinstance(hops, int) or hops < 1:
        raise ValueError(f"hops must be a positive integer, not {hops!r}")
    return 1 + chip.noc_hop_cycles * hops + 1 + beats


def nic_message_cycles(payload, chip, *, link_latency):
    """One WRITE of ``payload`` bytes over a NIC port: post to the last byte placed in
    the peer's memory. The payload streams into the retransmit buffer, the header is
    written, the frame crosses the wire and the link, the receiver stores and forwards
    the whole frame, then places it."""
    rate = chip.nic_bits_per_s / 8 / chip.clock_hz        # bytes per cycle
    frame = max(chip.nic_min_frame_bytes, payload + chip.nic_frame_overhead_bytes) / rate
    return (payload / rate + chip.nic_header_cycles + 2 * frame + link_latency
            + chip.nic_fixed_cycles)


def nic_transfer_cycles(packets, payload, chip, *, link_latency, rto, retransmits=0,
                        timeouts=0):
    """``packets`` WRITEs back to back (window never full): the first message's
    latency, then one frame time per further frame, retransmissions included, plus
    ``rto`` per retransmission timeout. The counts of retransmissions and timeouts
    are inputs (``sim.nic`` gives their expectation for a loss rate)."""
    rate = chip.nic_bits_per_s / 8 / chip.clock_hz
    frame = max(chip.nic_min_frame_bytes, payload + chip.nic_frame_overhead_bytes) / rate
    return (nic_message_cycles(payload, chip, link_latency=link_latency)
            + (packets - 1 + retransmits) * frame + timeouts * rto)


def tvp_cycles(elements, ops_per_element, chip):
    """Cycles of an elementwise pass on every tile's vector unit."""
    return math.ceil(elements * ops_per_element / (chip.tvp_lanes * chip.tiles))


#: Operations per element of the TVP kernels (from the TVP instruction sequences).
SOFTMAX_OPS = 6      # max-reduce, sub, exp (3 ops), sum-reduce, reciprocal-mul
NORM_OPS = 5         # square-sum, rsqrt, mul, mul (gain), add (bias)
GELU_OPS = 6


def batched_gemm(count, m, n, k, chip, *, fmt="fp8", out_fmt="bf16"):
    """``count`` independent GEMMs ``[m,k] @ [k,n]`` (attention heads, sequences).

    The chip is shared out: each problem gets ``max(1, tiles // count)`` tiles
    (whole clusters when it gets at least a cluster) and the same share of HBM
    and cluster SRAM; the problems run in ``rounds`` one after another, each
    round a :func:`gemm` on that slice of the chip.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    per = max(1, chip.tiles // count)
    if per >= chip.tiles_per_cluster:
        clusters, tpc = per // chip.tiles_per_cluster, chip.tiles_per_cluster
    else:
        clusters, tpc = 1, per
    used = clusters * tpc
    share = used / chip.tiles
    sub = chip.with_(clusters=clusters, tiles_per_cluster=tpc,
                     hbm_bytes_per_s=chip.hbm_bytes_per_s * share,
                     cluster_sram_bytes=int(chip.cluster_sram_bytes * min(1.0, tpc / chip.tiles_per_cluster)))
    parallel = chip.tiles // used
    rounds = math.ceil(count / parallel)
    one = gemm(m, n, k, sub, fmt=fmt, out_fmt=out_fmt)
    cycles = rounds * one["cycles"]
    macs = count * m * n * k
    return {"cycles": cycles, "seconds": cycles / chip.clock_hz, "macs": macs,
            "utilisation": macs / (cycles * chip.macs_per_cycle(fmt)), "rounds": rounds,
            "tiles_per_problem": used, "hbm_bytes": count * one["hbm_bytes"],
            "tiling_text": f"{count} problems, {used} tiles each, {rounds} rounds; {one['tiling_text']}"}


def attention(batch, heads, q_len, kv_len, head_dim, chip, *, kv_heads=None, fmt="fp8",
              kv_fmt="fp8", causal=None):
    """Scaled dot-product attention with grouped KV heads: QK^T and PV on the TTU,
    softmax on the TVP, K and V read from HBM (the KV cache in decode).

    One problem per (sequence, KV head): the ``heads / kv_heads`` query heads that
    share a KV head are stacked into the rows of ``Q`` (``q_len * group`` rows),
    so ``S = Q K^T`` is ``[q_len * group, kv_len]`` over ``head_dim`` and ``S V``
    is ``[q_len * group, head_dim]`` over ``kv_len``. Prefill (``q_len > 1``) is
    causal by default: the blocks above the diagonal are skipped (half the
    work). The engines overlap block by block (flash-attention order: the TVP's
    softmax of one KV block under the TTU's products of the next), so the time is
    the busiest of TTU, TVP and the HBM reads of K and V.
    """
    kv_heads = heads if kv_heads is None else kv_heads
    for name, v in (("batch", batch), ("heads", heads), ("q_len", q_len), ("kv_len", kv_len),
                    ("head_dim", head_dim), ("kv_heads", kv_heads)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    if heads % kv_heads:
        raise ValueError(f"heads={heads} must be a multiple of kv_heads={kv_heads}")
    causal = q_len > 1 if causal is None else causal
    group = heads // kv_heads
    problems = batch * kv_heads
    rows = q_len * group
    qk = batched_gemm(problems, rows, kv_len, head_dim, chip, fmt=fmt)
    pv = batched_gemm(problems, rows, head_dim, kv_len, chip, fmt=fmt)
    frac = 0.5 if causal else 1.0
    ttu = frac * (qk["cycles"] + pv["cycles"])
    sm = frac * tvp_cycles(batch * heads * q_len * kv_len, SOFTMAX_OPS, chip)
    kv_bytes = 2 * batch * kv_heads * kv_len * head_dim * ELEMENT_BITS[kv_fmt] / 8
    kv_cycles = kv_bytes / chip.hbm_bytes_per_cycle()
    cycles = max(ttu, sm, kv_cycles)
    bound = {ttu: "ttu", sm: "tvp", kv_cycles: "kv-read"}[cycles]
    return {"cycles": cycles, "seconds": cycles / chip.clock_hz, "qk": frac * qk["cycles"],
            "pv": frac * pv["cycles"], "softmax": sm, "kv_cycles": kv_cycles, "kv_bytes": kv_bytes,
            "bound": bound, "macs": frac * (qk["macs"] + pv["macs"])}


#: A Llama-3-70B-class decoder, the configuration the tokens/s figure is stated for.
LLM_70B = dict(name="70B-class (80 layers, d=8192, ff=28672, 64 heads, 8 KV heads, head 128)",
               layers=80, d_model=8192, d_ff=28672, heads=64, kv_heads=8, head_dim=128)


def _layer_params(cfg):
    d, ff, h, kvh, hd = cfg["d_model"], cfg["d_ff"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    return d * (h + 2 * kvh) * hd + h * hd * d + 3 * d * ff


def decoder_layer(cfg, chip, *, batch, context, phase="decode", fmt="fp4", tp=1, kv_fmt="fp8"):
    """One decoder layer (attention + SwiGLU MLP + two RMS norms), tensor parallel over ``tp``.

    Tensor parallel (Megatron): QKV and the MLP's up/gate split by output
    columns, the output projection and the MLP's down by input rows (heads and
    KV heads split over ``tp``); two all-reduces of ``tokens x d_model`` BF16
    activations per layer, costed in :func:`tokens_per_second`. Decode: one
    new token per sequence against a KV cache of ``context``; prefill: the
    ``context`` tokens of every sequence.
    """
    if phase not in ("decode", "prefill"):
        raise ValueError(f"phase must be 'decode' or 'prefill', not {phase!r}")
    if not isinstance(tp, int) or tp < 1:
        raise ValueError(f"tp must be a positive integer, not {tp!r}")
    d, ff, h, kvh, hd = cfg["d_model"], cfg["d_ff"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    if h % tp or kvh % tp and tp % kvh:
        raise ValueError(f"tp={tp} must divide heads={h} and divide or be a multiple of kv_heads={kvh}")
    tokens = batch if phase == "decode" else batch * context
    q_len = 1 if phase == "decode" else context
    split = lambda x: max(1, math.ceil(x / tp))
    kv_local = max(1, kvh // tp)
    parts = {
        "qkv": gemm(tokens, split(h * hd) + 2 * kv_local * hd, d, chip, fmt=fmt),
        "attn": attention(batch, split(h), q_len, context, hd, chip, kv_heads=kv_local,
                          kv_fmt=kv_fmt),
        "out": gemm(tokens, d, split(h * hd), chip, fmt=fmt),
        "mlp_up": gemm(tokens, split(2 * ff), d, chip, fmt=fmt),
        "mlp_down": gemm(tokens, d, split(ff), chip, fmt=fmt),
    }
    tvp = 2 * tvp_cycles(tokens * d, NORM_OPS, chip) + tvp_cycles(tokens * split(ff), GELU_OPS, chip)
    cycles = sum(p["cycles"] for p in parts.values()) + tvp
    return {"cycles": cycles, "seconds": cycles / chip.clock_hz,
            **{k: v["cycles"] for k, v in parts.items()}, "tvp": tvp,
            "attn_bound": parts["attn"]["bound"]}


def tokens_per_second(cfg, chip, *, batch, context, n_chips=1, tp=None, fmt="fp4", kv_fmt="fp8"):
    """Decode throughput with tensor parallelism inside a group of ``tp`` chips and
    ``n_chips / tp`` data-parallel replicas (``batch`` sequences per replica).

    ``tp`` defaults to ``min(n_chips, fcq_size)``: tensor parallel inside one FCQ,
    replicas across quads over the second tier (decode needs no traffic between
    replicas). Per layer, two all-reduces of ``batch x d_model`` BF16 over the
    ``tp`` chips (:func:`sim.perf.collective.allreduce`, its algorithm). The
    weights (``fmt``) and KV cache (``kv_fmt``) of a chip must fit its HBM.
    """
    from .collective import allreduce
    if not isinstance(n_chips, int) or n_chips < 1:
        raise ValueError(f"n_chips must be a positive integer, not {n_chips!r}")
    tp = min(n_chips, chip.fcq_size) if tp is None else tp
    if not isinstance(tp, int) or tp < 1 or n_chips % tp:
        raise ValueError(f"tp={tp!r} must be a positive divisor of n_chips={n_chips}")
    replicas = n_chips // tp
    weights = cfg["layers"] * _layer_params(cfg) * ELEMENT_BITS[fmt] / 8 / tp
    kv = (2 * cfg["layers"] * cfg["kv_heads"] * cfg["head_dim"] * context * batch
          * ELEMENT_BITS[kv_fmt] / 8 / min(tp, cfg["kv_heads"]))
    if chip.hbm_capacity_bytes and weights + kv > chip.hbm_capacity_bytes:
        raise ValueError(f"batch={batch}, context={context}: weights {weights / 1e9:.1f} GB + KV cache "
                         f"{kv / 1e9:.1f} GB per chip exceed hbm_capacity_bytes="
                         f"{chip.hbm_capacity_bytes / 1e9:.0f} GB")
    layer = decoder_layer(cfg, chip, batch=batch, context=context, fmt=fmt, tp=tp, kv_fmt=kv_fmt)
    step = layer["seconds"] * cfg["layers"]
    ar, algorithm = 0.0, "-"
    if tp > 1:
        r = allreduce(batch * cfg["d_model"] * 2, chip, tp)
        ar, algorithm = 2 * r["seconds"], r["algorithm"]
        step += ar * cfg["layers"]
    return {"tokens_per_s": replicas * batch / step, "step_s": step, "layer_s": layer["seconds"],
            "allreduce_s_per_layer": ar, "allreduce_algorithm": algorithm, "batch": batch,
            "context": context, "n_chips": n_chips, "tp": tp, "replicas": replicas,
            "hbm_bytes_per_chip": weights + kv, "attn_bound": layer["attn_bound"]}


def prefill(cfg, chip, *, batch, context, n_chips=1, fmt="fp4", kv_fmt="fp8"):
    """Prefill of ``batch`` prompts of ``context`` tokens, tensor parallel over ``n_chips``
    (at most one FCQ): every layer's GEMMs on ``batch x context`` tokens, causal attention,
    two all-reduces of ``batch x context x d_model`` BF16. Returns the time to first token
    and the prompt tokens per second."""
    from .collective import allreduce
    if not isinstance(n_chips, int) or not 1 <= n_chips <= chip.fcq_size:
        raise ValueError(f"n_chips must be 1..{chip.fcq_size} (one FCQ), not {n_chips!r}")
    layer = decoder_layer(cfg, chip, batch=batch, context=context, phase="prefill", fmt=fmt,
                          tp=n_chips, kv_fmt=kv_fmt)
    ar = 2 * allreduce(batch * context * cfg["d_model"] * 2, chip, n_chips)["seconds"] if n_chips > 1 else 0.0
    total = cfg["layers"] * (layer["seconds"] + ar)
    return {"seconds": total, "tokens_per_s": batch * context / total, "layer_s": layer["seconds"],
            "allreduce_s_per_layer": ar, "attn_bound": layer["attn_bound"]}


def roofline_points(chip, fmt):
    """Peak FLOP/s, HBM bytes/s and the ridge point (FLOP/byte) for ``fmt``."""
    peak = chip.peak_flops(fmt)
    return {"peak_flops": peak, "hbm_bytes_per_s": chip.hbm_bytes_per_s,
            "ridge_flop_per_byte": peak / chip.hbm_bytes_per_s}
