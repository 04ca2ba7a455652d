"""Golden model of the TTU: the MX GEMM it computes and its cycle count.

The numerics are :func:`sim.mx.mx_gemm` (bit-exact, see ``docs/numerics.md``).
:class:`CycleModel` is the cycle-accurate timing of ``hw.ttu.TTU`` for a GEMM
with an always-valid activation source and an always-ready result sink; the
cocotb tests check it against the RTL cycle for cycle (``tb/ttu/test_ttu.py``),
and the benchmark uses it for sizes too large to simulate.
"""
from hw.common.mx import NARROW_FORMATS as NARROW
from hw.ttu.array import PIPELINE_LATENCY

from . import mx

__all__ = ["gemm", "bf16_gemm", "quantized_gemm", "CycleModel", "PE_LATENCY"]

#: Cycles from an accepted array input beat to PE (0, 0)'s result register, from
#: the hardware (``hw.ttu.array.PIPELINE_LATENCY``: input register, edge decode,
#: ``hw.ttu.pe.LATENCY``).
PE_LATENCY = PIPELINE_LATENCY



def gemm(a_scales, a_codes, fmt_a, b_scales, b_codes, fmt_b, block=32):
    """The TTU result for MX operands: :func:`sim.mx.mx_gemm` (FP32)."""
    return mx.mx_gemm(a_scales, a_codes, fmt_a, b_scales, b_codes, fmt_b, block)


def bf16_gemm(a_codes, b_codes):
    """The BF16 x BF16 result (:func:`sim.mx.bf16_gemm`, FP32); independent of K."""
    return mx.bf16_gemm(a_codes, b_codes)


def quantized_gemm(a, b, fmt_a, fmt_b, block=32):
    """Quantize FP32 ``a [M, K]`` (blocks along K) and ``b [K, N]``, then :func:`gemm`."""
    sa, ca = mx.quantize(a, fmt_a, block=block, axis=1)
    sb, cb = mx.quantize(b, fmt_b, block=block, axis=0)
    return gemm(sa, ca, fmt_a, sb, cb, fmt_b, block)


class CycleModel:
    """Cycle count of ``hw.ttu.TTU(rows, cols)`` for one GEMM.

    Phases: command (1 cycle), weight load (one beat per cycle,
    ``n_tiles * k_beats`` beats), then compute: tiles issue back to back,
    ``max(k_beats, rows, cols)`` cycles each, and the last result row leaves
    ``rows + cols + PE_LATENCY`` cycles after the last beat (counting from the first accepted activation beat to the last result beat, inclusive).
    """

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols

    def run(self, M, N, K, fmt_a, fmt_b, block=32):
        R, C = self.rows, self.cols
        packed = fmt_a in NARROW and fmt_b in NARROW
        lanes = 2 if packed else 1
        kp = -(-K // block) * block
        k_beats = kp // lanes
        m_tiles, n_tiles = -(-M // R), -(-N // C)
        tile = max(k_beats, R, C)
        tiles = m_tiles * n_tiles
        compute = (tiles - 1) * tile + k_beats + R + C + PE_LATENCY
        load = n_tiles * k_beats
        macs = M * N * K
        peak = R * C * lanes
        return {
            "packed": packed, "k_beats": k_beats, "tiles": tiles,
            "load_cycles": load, "compute_cycles": compute, "total_cycles": 1 + load + compute,
            "macs": macs, "peak_macs_per_cycle": peak,
            "utilisation": macs / (compute * peak),
            "steady_utilisation": (M * N * kp) / (tiles * tile * peak),
        }
