"""Command-processor instruction encoding (the single source of truth).

One 64-bit instruction (least significant bit first)::

    [3:0]    opcode     NOP, EXEC, LOOP, ENDLOOP, HALT
    [6:4]    wait_en    which of wait0..2 are used
    [9:7]    sig_en     which of sig0..2 are used
    [14:10]  wait0      semaphore ids (5 bits: up to 32 semaphores)
    [19:15]  wait1
    [24:20]  wait2
    [29:25]  sig0
    [34:30]  sig1
    [39:35]  sig2
    [63:40]  arg        EXEC: engine argument (descriptor pointer/op id); LOOP: count

Every instruction first *acquires* its waits (each used wait takes one count
from its semaphore; all at once, only when every count is available), then
acts, then *signals* (each used sig adds one) when it is done: at once for
NOP/LOOP/ENDLOOP/HALT, when the engine reports completion for EXEC.
See ``docs/cp.md``.
"""
from amaranth.lib import data, enum

from hw.common.layout import pack, unpack

__all__ = ["Opcode", "ErrorCode", "INSTRUCTION", "ARG_BITS", "ERROR_BITS", "SEM_ID_BITS",
           "encode", "decode"]

SEM_ID_BITS = 5
ARG_BITS = 24
ERROR_BITS = 3


class Opcode(enum.IntEnum, shape=4):
    NOP = 0       #: only wait and signal
    EXEC = 1      #: send ``arg`` to the queue's engine; signal on its completion
    LOOP = 2      #: repeat the body up to the matching ENDLOOP ``arg`` times (arg >= 1)
    ENDLOOP = 3
    HALT = 4      #: end of program: the queue becomes DONE


class ErrorCode(enum.IntEnum, shape=ERROR_BITS):
    NONE = 0
    ILLEGAL_OPCODE = 1    #: opcode not in :class:`Opcode`
    BAD_SEMAPHORE = 2     #: a used wait/sig names a semaphore >= n_sems
    BAD_LOOP = 3          #: LOOP count 0, nesting too deep, or ENDLOOP without LOOP
    PC_OVERFLOW = 4       #: ran past the end of the program memory
    DEADLOCK = 5          #: waiting with nothing in flight anywhere for too long
    ENGINE_ERROR = 6      #: the engine completed a command with an error
    SEM_OVERFLOW = 7      #: a signal would overflow a semaphore counter


INSTRUCTION = data.StructLayout({
    "opcode": 4,
    "wait_en": 3,
    "sig_en": 3,
    "wait": data.ArrayLayout(SEM_ID_BITS, 3),
    "sig": data.ArrayLayout(SEM_ID_BITS, 3),
    "arg": ARG_BITS,
})
assert INSTRUCTION.size == 64


def encode(opcode, *, waits=(), signals=(), arg=0):
    """Pack one instruction into a 64-bit integer.

    ``waits``/``signals`` are up to three semaphore ids each; ``opcode`` may be
    any 4-bit value (tests use illegal ones on purpose).
    """
    waits, signals = list(waits), list(signals)
    if len(waits) > 3 or len(signals) > 3:
        raise ValueError("at most 3 waits and 3 signals per instruction")
    if not 0 <= arg < 1 << ARG_BITS:
        raise ValueError(f"arg must fit in {ARG_BITS} bits, not {arg}")
    if not 0 <= int(opcode) < 16:
        raise ValueError(f"opcode must fit in 4 bits, not {opcode}")
    for s in waits + signals:
        if not 0 <= s < 1 << SEM_ID_BITS:
            raise ValueError(f"semaphore id must fit in {SEM_ID_BITS} bits, not {s}")
    return pack(INSTRUCTION, {
        "opcode": int(opcode), "wait_en": (1 << len(waits)) - 1,
        "sig_en": (1 << len(signals)) - 1, "wait": waits, "sig": signals, "arg": arg})


def decode(word):
    """Unpack a 64-bit instruction into ``(opcode, waits, signals, arg)``."""
    f = unpack(INSTRUCTION, word)
    ids = lambda en, sems: [s for i, s in enumerate(sems) if en >> i & 1]
    return f["opcode"], ids(f["wait_en"], f["wait"]), ids(f["sig_en"], f["sig"]), f["arg"]
