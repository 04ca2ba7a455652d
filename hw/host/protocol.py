"""Host link command protocol (the single specification; see ``docs/host.md``).

A frame from the host is::

    [cmd: 1 byte][count: 1 byte][fields: field_bytes(cmd)][payload: payload_bytes(cmd, count)]

and every frame gets exactly one reply that starts with a :class:`Status` byte::

    [status: 1 byte][data: reply_data_bytes(cmd, count) if status == OK, else nothing]

All multi-byte values (addresses, words, instructions, status words) are
little-endian: byte 0 carries bits [7:0]. The fields per command:

==============  =========  ===============================  ========================  ===================
command         count      fields                           payload                   reply data (OK)
==============  =========  ===============================  ========================  ===================
PING            0          -                                -                         -
WRITE_WORDS     1..255     SRAM word address (addr_bytes)   count x word_bytes        -
READ_WORDS      1..255     SRAM word address (addr_bytes)   -                         count x word_bytes
LOAD_PROGRAM    1..255     queue (1), pc (pc_bytes)         count x 8 (instructions)  -
START           0          queue mask (1)                   -                         -
STATUS          0          -                                -                         status_bytes
==============  =========  ===============================  ========================  ===================

Errors: an unknown ``cmd`` (UNKNOWN_COMMAND) or a ``count`` out of the
command's range (BAD_LENGTH) leave the frame's length unknown, so the bridge
drops every byte until the link has been idle for the timeout and then
replies. An address range error (BAD_ADDRESS: words past the SRAM, a queue
>= n_queues, pc + count > depth, a start mask naming a missing queue) is
known with the fields; the bridge consumes the frame's payload, does nothing
and replies. A frame that stops for the timeout mid-way gets TRUNCATED
(the words of a WRITE/LOAD completed before the stop have been written).
"""
from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib import data, enum

from hw.common.params import check_int
from hw.cp.isa import ERROR_BITS, INSTRUCTION
from hw.cp.queue import QueueState

__all__ = ["Command", "Status", "Geometry", "MAX_COUNT", "INSTRUCTION_BYTES",
           "status_layout", "errors_layout"]

#: Largest ``count`` of one frame (the field is one byte).
MAX_COUNT = 255
#: Bytes of one command-processor instruction on the link.
INSTRUCTION_BYTES = INSTRUCTION.size // 8


class Command(enum.IntEnum, shape=8):
    PING = 0x01           #: liveness; replies OK
    WRITE_WORDS = 0x02    #: write ``count`` SRAM words from ``addr``
    READ_WORDS = 0x03     #: read ``count`` SRAM words from ``addr``
    LOAD_PROGRAM = 0x04   #: load ``count`` instructions into ``queue`` from ``pc``
    START = 0x05          #: start the queues of ``mask``
    STATUS = 0x06         #: queue status, semaphores, error counters, MAC count


class Status(enum.IntEnum, shape=8):
    OK = 0x00
    UNKNOWN_COMMAND = 0x01   #: ``cmd`` is not a :class:`Command`
    BAD_LENGTH = 0x02        #: ``count`` out of range for the command
    BAD_ADDRESS = 0x03       #: address, queue, pc or mask out of range
    TRUNCATED = 0x04         #: the frame stopped for the idle timeout


def status_layout(depth, n_queues):
    """The command processor's per-queue status (``hw.cp.CommandProcessor.status``)."""
    return data.ArrayLayout(data.StructLayout({
        "state": QueueState, "error": ERROR_BITS, "pc": range(depth + 1)}), n_queues)


def errors_layout():
    """The tile's ``errors`` port (``hw.tile.Tile.errors``)."""
    return data.StructLayout({"dma": 16, "ttu": 8, "tvp": 1})


def _bytes(bits):
    return max(1, -(-bits // 8))


@dataclass(frozen=True)
class Geometry:
    """Sizes of the link's fields, derived from the tile-facing shapes.

    The bridge (``hw.host.bridge``) and the host (``sim.host``) both build
    frames from one ``Geometry``, so they cannot disagree on a byte count.

    Parameters
    ----------
    word_bits : int
        SRAM word width (multiple of 8).
    addr_width : int
        SRAM word-address width.
    depth : int
        Program words per command-processor queue.
    n_queues : int
        Command-processor queues (1..8: the START mask is one byte).
    words : int or None
        SRAM words (default ``2**addr_width``).
    status_shape, sems_shape, errors_shape : shape-castable or None
        Shapes of the ``status``/``sems``/``errors`` inputs (default: the
        default tile's: :func:`status_layout`, 16 x 8-bit semaphores,
        :func:`errors_layout`).
    macs_width : int
        Width of the ``macs`` input.
    """
    word_bits: int = 128
    addr_width: int = 12
    depth: int = 256
    n_queues: int = 3
    words: int = None
    status_shape: object = None
    sems_shape: object = None
    errors_shape: object = None
    macs_width: int = 32

    def __post_init__(self):
        check_int("word_bits", self.word_bits, min=8)
        if self.word_bits % 8:
            raise ValueError(f"word_bits must be a multiple of 8, not {self.word_bits}")
        check_int("addr_width", self.addr_width, min=1, max=32)
        check_int("depth", self.depth, min=2, max=1 << 16)
        check_int("n_queues", self.n_queues, min=1, max=8)
        if self.words is None:
            object.__setattr__(self, "words", 1 << self.addr_width)
        check_int("words", self.words, min=1, max=1 << self.addr_width)
        if self.status_shape is None:
            object.__setattr__(self, "status_shape", status_layout(self.depth, self.n_queues))
        if self.sems_shape is None:
            object.__setattr__(self, "sems_shape", data.ArrayLayout(8, 16))
        if self.errors_shape is None:
            object.__setattr__(self, "errors_shape", errors_layout())
        check_int("macs_width", self.macs_width, min=1, max=64)

    @staticmethod
    def bits(shape):
        return Shape.cast(shape).width

    @property
    def word_bytes(self):
        return self.word_bits // 8

    @property
    def addr_bytes(self):
        return _bytes(self.addr_width)

    @property
    def pc_bytes(self):
        return _bytes((self.depth - 1).bit_length())

    @property
    def status_parts(self):
        """``(name, shape, bytes)`` of the STATUS reply, in order (each field byte aligned)."""
        return tuple((name, shape, _bytes(self.bits(shape))) for name, shape in (
            ("status", self.status_shape), ("sems", self.sems_shape),
            ("errors", self.errors_shape), ("macs", self.macs_width)))

    @property
    def status_bytes(self):
        return sum(b for _, _, b in self.status_parts)

    def field_bytes(self, cmd):
        """Bytes between ``count`` and the payload."""
        return {Command.WRITE_WORDS: self.addr_bytes, Command.READ_WORDS: self.addr_bytes,
                Command.LOAD_PROGRAM: 1 + self.pc_bytes, Command.START: 1}.get(cmd, 0)

    @staticmethod
    def counted(cmd):
        """Commands whose ``count`` is a number of words (1..255); the others need 0."""
        return cmd in (Command.WRITE_WORDS, Command.READ_WORDS, Command.LOAD_PROGRAM)

    def unit_bytes(self, cmd):
        """Payload bytes per counted item of ``cmd``."""
        return {Command.WRITE_WORDS: self.word_bytes,
                Command.LOAD_PROGRAM: INSTRUCTION_BYTES}.get(cmd, 0)

    def payload_bytes(self, cmd, count):
        return self.unit_bytes(cmd) * count

    def reply_data_bytes(self, cmd, count):
        if cmd == Command.READ_WORDS:
            return self.word_bytes * count
        if cmd == Command.STATUS:
            return self.status_bytes
        return 0

    def frame_bytes(self, cmd, count):
        """Bytes of a whole frame on the link (host to bridge)."""
        return 2 + self.field_bytes(cmd) + self.payload_bytes(cmd, count)
