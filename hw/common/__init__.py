"""Shared building blocks: parameter checks, stream helpers, FIFOs, arbiters.

Every block in ``hw/`` uses these; nothing here is copied elsewhere.
"""
from .params import check_int, check_pow2, check_choice, check_shape
from .skid import SkidBuffer
from .fifo import StreamFIFO
from .arbiter import RoundRobinArbiter, PriorityArbiter
from .stream import StreamArbiter, StreamBroadcast, select_stream
from .forward import forward, prefixed
from .counter import saturating_add, saturate

__all__ = [
    "check_int", "check_pow2", "check_choice", "check_shape",
    "SkidBuffer", "StreamFIFO",
    "RoundRobinArbiter", "PriorityArbiter",
    "StreamArbiter", "StreamBroadcast", "select_stream", "forward", "prefixed",
    "saturating_add", "saturate",
]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "common_skid_buffer": lambda: SkidBuffer(payload_shape=32),
    "common_stream_fifo": lambda: StreamFIFO(payload_shape=32, depth=16),
    "common_rr_arbiter": lambda: RoundRobinArbiter(n=8),
    "common_priority_arbiter": lambda: PriorityArbiter(n=8),
    "common_stream_arbiter": lambda: StreamArbiter(payload_shape=32, n=4),
    "common_stream_broadcast": lambda: StreamBroadcast(payload_shape=32, n=4),
}
