"""ATL NIC: Ethernet framing (8-bit byte stream) and the reliable ATL transport.

The wire format (header layout, op codes, EtherType) is specified once, in
:mod:`hw.nic.atl_header`; ``docs/nic.md`` describes it and ``sim/nic.py`` (the
reference model) imports it.
"""
from .atl_header import ETHERTYPE, HEADER_BYTES, HeaderLayout, Op
from .eth import ByteLayout, EthRx, EthTx, crc32_byte
from .window import RxWindow, verdict_layout
from .post_engine import PostEngine
from .tx_scheduler import TxScheduler
from .ack_engine import AckEngine
from .timers import RetransmitTimers
from .rx_parser import RxParser
from .transport import Lane, PostLayout, mem_layout
from .nic import COUNTERS, Nic
from .sprayer import Sprayer

__all__ = ["ETHERTYPE", "HEADER_BYTES", "HeaderLayout", "Op", "ByteLayout", "EthRx", "EthTx",
           "crc32_byte", "RxWindow", "verdict_layout",
           "PostEngine", "TxScheduler", "AckEngine", "RetransmitTimers", "RxParser",
           "Lane", "PostLayout", "mem_layout", "COUNTERS", "Nic", "Sprayer"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "nic_eth_tx": lambda: EthTx(),
    "nic_eth_rx": lambda: EthRx(max_frame=512),
    "nic_rx_window": lambda: RxWindow(window=32),
    "nic": lambda: Nic(ports=2, flows=2, window=8, payload=64),
    "nic_sprayer": lambda: Sprayer(groups=1, width=2, n_sems=4),
}
