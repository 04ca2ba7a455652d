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

__all__ = ["pipeline_cycles", "ttu_gemm_cycles", "dma_copy_cycles", "noc_packet_cycles",
           "nic_message_cycles", "nic_transfer_cycles", "gemm", "attention", "decoder_layer", "tokens_per_second",
           "roofline_points", "LLM_70B"]


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


def _block_sizes(m, n, k, chip, fmt):
    """Largest (Mb, Nb) C block, multiples of the TTU shape, that fits a tile's SRAM.

    Reuse (MACs per byte loaded) grows with Mb and Nb, not with the K chunk,
    so Kb is fixed at 8 TTU steps and Mb, Nb double in turn while two buffers
    of the A and B chunks (double buffering) plus the FP32 accumulators of
    the C block fit in ``tile_sram_bytes``.
    """
    rows, cols, kc = chip.ttu_rows, chip.ttu_cols, chip.ttu_k[fmt]
    cap = lambda x, unit: max(unit, math.ceil(x / unit) * unit)
    kb = min(cap(k, kc), 8 * kc)
    n_blocks = lambda mb, nb: math.ceil(m / mb) * math.ceil(n / nb)
    # Never grow blocks so far that tiles go idle.
    enough = min(chip.tiles, n_blocks(rows, cols))
    fits = lambda mb, nb: (2 * _bytes(mb * kb + kb * nb, fmt) + 4 * mb * nb <= chip.tile_sram_bytes
                           and n_blocks(mb, nb) >= enough)
    mb, nb = rows, cols
    grew = True
    while grew:
        grew = False
        for which in ("m", "n"):
            tm = min(2 * mb, cap(m, rows)) if which == "m" else mb
            tn = min(2 * nb, cap(n, cols)) if which == "n" else nb
            if (tm, tn) != (mb, nb) and fits(tm, tn):
                mb, nb, grew = tm, tn, True
    return mb, nb, kb


def gemm(m, n, k, chip, *, fmt="fp8", out_fmt="bf16", broadcast=True):
    """Predict ``C[m,n] = A[m,k] @ B[k,n]`` on ``chip``.

    Each tile computes C blocks of ``Mb x Nb`` (sized by :func:`_block_sizes`),
    stepping through K in chunks of ``Kb``: load the A and B chunks (double
    buffered) while the TTU computes the previous ones, write C at the end of
    a block. With ``broadcast``, tiles of a cluster that work on different M
    blocks of the same B columns receive B by one cluster-DMA broadcast, so
    each pays a share of the B traffic. Each tile gets an equal share of HBM bandwidth, capped
    by its DMA rate. The per-tile schedule is the event-level pipeline.
    """
    for name, v in (("m", m), ("n", n), ("k", k)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    rows, cols, kc = chip.ttu_rows, chip.ttu_cols, chip.ttu_k[fmt]
    mb, nb, kb = _block_sizes(m, n, k, chip, fmt)
    blocks = math.ceil(m / mb) * math.ceil(n / nb)
    tiles_used = min(chip.tiles, blocks)
    per_tile = math.ceil(blocks / chip.tiles)
    k_steps = math.ceil(k / kb)
    # Tiles working on different M blocks of the same N columns share B.
    sharing = min(chip.tiles_per_cluster, math.ceil(m / mb), tiles_used)
    b_share = 1 / sharing if broadcast else 1
    hbm_share = chip.hbm_bytes_per_cycle() / tiles_used
    rate = min(chip.dma_bytes_per_cycle, hbm_share)

    step_bytes = _bytes(mb * kb, fmt) + b_share * _bytes(kb * nb, fmt)
    step_compute = math.ceil(mb / rows) * math.ceil(nb / cols) * math.ceil(kb / kc)
    c_cycles = _bytes(mb * nb, out_fmt) / rate
    loads, computes = [], []
    for _ in range(per_tile):
        for s in range(k_steps):
            loads.append(step_bytes / rate)
            # The last K step of a block also drains and writes C.
            computes.append(step_compute + (chip.ttu_fill_cycles + c_cycles if s == k_steps - 1 else 0))
    cycles = pipeline_cycles(loads, computes)
    macs = m * n * k
    compute_cycles = sum(computes)
    memory_cycles = sum(loads)
    total_bytes = tiles_used * per_tile * (k_steps * step_bytes + _bytes(mb * nb, out_fmt))
    return {
        "cycles": cycles,
        "seconds": cycles / chip.clock_hz,
        "macs": macs,
        "utilisation": macs / (cycles * chip.macs_per_cycle(fmt)),
        "compute_cycles": compute_cycles,
        "memory_cycles": memory_cycles,
        "bound": "compute" if compute_cycles >= memory_cycles else "memory",
        "hbm_bytes": total_bytes,
        "block": (mb, nb, kb),
    }


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
    are inputs (``sim.atl`` gives their expectation for a loss rate)."""
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


def attention(batch, heads, q_len, kv_len, head_dim, chip, *, fmt="fp8", kv_fmt="fp8"):
    """Scaled dot-product attention: QK^T, softmax on the TVP, PV."""
    qk = gemm(batch * heads * q_len, kv_len, head_dim, chip, fmt=fmt)
    pv = gemm(batch * heads * q_len, head_dim, kv_len, chip, fmt=fmt)
    sm = tvp_cycles(batch * heads * q_len * kv_len, SOFTMAX_OPS, chip)
    # Decode reads the whole KV cache once per token: memory bound.
    kv_bytes = 2 * batch * heads * kv_len * head_dim * ELEMENT_BITS[kv_fmt] / 8
    kv_cycles = kv_bytes / chip.hbm_bytes_per_cycle()
    compute = qk["cycles"] + pv["cycles"] + sm
    cycles = max(compute, kv_cycles)
    return {"cycles": cycles, "qk": qk["cycles"], "pv": pv["cycles"], "softmax": sm,
            "kv_cycles": kv_cycles, "bound": "memory" if kv_cycles > compute else "compute"}


#: A Llama-3-70B-class decoder, the configuration the tokens/s figure is stated for.
LLM_70B = dict(name="70B-class (80 layers, d=8192, ff=28672, 64 heads, 8 KV heads, head 128)",
               layers=80, d_model=8192, d_ff=28672, heads=64, kv_heads=8, head_dim=128)


def decoder_layer(cfg, chip, *, batch, context, phase="decode", fmt="fp4", n_chips=1):
    """One decoder layer (attention + SwiGLU MLP + two norms), weights split over ``n_chips``.

    Tensor parallel: every matrix is split by its output (or input) dimension
    over ``n_chips``; the two all-reduces per layer are costed in
    :func:`tokens_per_second`.
    """
    if phase not in ("decode", "prefill"):
        raise ValueError(f"phase must be 'decode' or 'prefill', not {phase!r}")
    d, ff, h, kvh, hd = cfg["d_model"], cfg["d_ff"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    tokens = batch if phase == "decode" else batch * context
    q_len = 1 if phase == "decode" else context
    split = lambda x: max(1, math.ceil(x / n_chips))
    parts = {
        "qkv": gemm(tokens, split((h + 2 * kvh) * hd), d, chip, fmt=fmt),
        "attn": attention(batch, split(h), q_len, context, hd, chip, fmt="fp8"),
        "out": gemm(tokens, d, split(h * hd), chip, fmt=fmt),
        "mlp_up": gemm(tokens, split(2 * ff), d, chip, fmt=fmt),
        "mlp_down": gemm(tokens, d, split(ff), chip, fmt=fmt),
    }
    norm = 2 * tvp_cycles(tokens * d, NORM_OPS, chip) + tvp_cycles(tokens * split(ff), GELU_OPS, chip)
    cycles = sum(p["cycles"] for p in parts.values()) + norm
    return {"cycles": cycles, "seconds": cycles / chip.clock_hz,
            **{k: v["cycles"] for k, v in parts.items()}, "tvp": norm}


def tokens_per_second(cfg, chip, *, batch, context, n_chips=1, fmt="fp4", link_latency_s=2e-6):
    """Decode throughput of the whole model with tensor parallelism over ``n_chips``.

    Per layer, two ring all-reduces of ``batch x d_model`` BF16 activations
    over the chip's scale-up ports (all ports share the ring traffic).
    """
    layer = decoder_layer(cfg, chip, batch=batch, context=context, fmt=fmt, n_chips=n_chips)
    step = layer["seconds"] * cfg["layers"]
    allreduce = 0.0
    if n_chips > 1:
        data = batch * cfg["d_model"] * 2
        bw = chip.nic_ports * chip.nic_bits_per_s / 8
        allreduce = 2 * (2 * (n_chips - 1) / n_chips * data / bw + (n_chips - 1) * link_latency_s)
        step += allreduce * cfg["layers"]
    return {"tokens_per_s": batch / step, "step_s": step, "layer_s": layer["seconds"],
            "allreduce_s_per_layer": allreduce, "batch": batch, "context": context,
            "n_chips": n_chips}


def roofline_points(chip, fmt):
    """Peak FLOP/s, HBM bytes/s and the ridge point (FLOP/byte) for ``fmt``."""
    peak = chip.peak_flops(fmt)
    return {"peak_flops": peak, "hbm_bytes_per_s": chip.hbm_bytes_per_s,
            "ridge_flop_per_byte": peak / chip.hbm_bytes_per_s}
