"""Tile command processor: per-engine instruction queues synchronised by semaphores."""
from .isa import ARG_BITS, INSTRUCTION, SEM_ID_BITS, ErrorCode, Opcode, decode, encode
from .queue import CommandQueue, QueueState
from .processor import CommandProcessor

__all__ = ["CommandProcessor", "CommandQueue", "QueueState", "Opcode", "ErrorCode",
           "INSTRUCTION", "ARG_BITS", "SEM_ID_BITS", "encode", "decode"]

TOPS = {
    "cp_command_processor": lambda: CommandProcessor(),
}
