"""ATL NIC: Ethernet framing (8-bit byte stream) and the transport's receive window.

See ``docs/atl.md`` for the wire format and ``sim/atl.py`` for the reference model.
"""
from .eth import ByteLayout, EthRx, EthTx, crc32_byte
from .window import RxWindow, verdict_layout

__all__ = ["ByteLayout", "EthRx", "EthTx", "crc32_byte", "RxWindow", "verdict_layout"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`).
TOPS = {
    "nic_eth_tx": lambda: EthTx(),
    "nic_eth_rx": lambda: EthRx(max_frame=512),
    "nic_rx_window": lambda: RxWindow(window=32),
}
