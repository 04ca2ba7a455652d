"""Host link: 8N1 UART and the command bridge to a tile's host-facing ports (``docs/host.md``)."""
from .bridge import CommandExecutor, CommandParser, HostBridge, HostUARTBridge, ReplyFramer
from .protocol import Command, Geometry, Status
from .uart import UARTRx, UARTTx

__all__ = ["UARTRx", "UARTTx", "HostBridge", "HostUARTBridge", "CommandParser",
           "CommandExecutor", "ReplyFramer", "Command", "Status", "Geometry"]

#: Exported by ``make verilog`` (see :mod:`hw.tops`): the default tile's host
#: side (128-bit words, 64 KiB / 16 B = 4096 words, 256-entry queues, 3
#: queues) at 115200 baud from a 50 MHz clock.
TOPS = {
    "host_uart_bridge": lambda: HostUARTBridge(divisor=434, word_bits=128, addr_width=12,
                                               depth=256, n_queues=3),
}
