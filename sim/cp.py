"""Golden model of the tile command processor (:mod:`hw.cp`).

Functional, not cycle-accurate: it executes the per-engine programs with
the ISA's semantics (see ``docs/cp.md``) under a fixed schedule and
returns what must not depend on timing for a well-formed program set:

* the sequence of EXEC arguments each engine receives,
* the final semaphore values,
* each queue's final state (``"done"`` or ``"error"``), error code and pc.

Programs whose outcome depends on the interleaving (two queues racing for
the same count) are outside what it predicts; the tests avoid them.
"""
from dataclasses import dataclass, field

from hw.cp.isa import ErrorCode, Opcode, decode


@dataclass
class Queue:
    program: list
    pc: int = 0
    loops: list = field(default_factory=list)  # [start_pc, remaining]
    state: str = "run"
    error: int = ErrorCode.NONE
    issued: list = field(default_factory=list)
    pending: list = field(default_factory=list)  # signal sets of EXECs in flight


def run(programs, *, n_sems, sem_bits=8, depth=64, loop_depth=2, engine_fails=lambda e, arg: False,
        max_steps=1_000_000):
    """Execute ``programs`` (one list of 64-bit words per engine) to completion.

    ``engine_fails(engine, arg)`` says whether the engine reports an error
    for a command. Engines complete each command immediately after issue in
    this model (completion order per engine is issue order, as in hardware).
    """
    sem_max = (1 << sem_bits) - 1
    sems = [0] * n_sems
    qs = [Queue(list(p)) for p in programs]

    def fail(q, code):
        q.state, q.error = "error", code

    def signal(q, ids):
        for s in ids:
            if sems[s] + 1 > sem_max:
                sems[s] = sem_max
                fail(q, ErrorCode.SEM_OVERFLOW)
            else:
                sems[s] += 1

    for _ in range(max_steps):
        progress = False
        for e, q in enumerate(qs):
            if q.state != "run":
                continue
            if q.pc >= depth:
                fail(q, ErrorCode.PC_OVERFLOW)
                continue
            word = q.program[q.pc] if q.pc < len(q.program) else 0
            op, waits, sigs, arg = decode(word)
            if op > Opcode.HALT:
                fail(q, ErrorCode.ILLEGAL_OPCODE)
                continue
            if any(s >= n_sems for s in waits + sigs):
                fail(q, ErrorCode.BAD_SEMAPHORE)
                continue
            if (op == Opcode.LOOP and (arg == 0 or len(q.loops) == loop_depth)) or \
                    (op == Opcode.ENDLOOP and not q.loops):
                fail(q, ErrorCode.BAD_LOOP)
                continue
            need = {s: waits.count(s) for s in waits}
            if any(sems[s] < k for s, k in need.items()):
                continue  # blocked
            for s, k in need.items():
                sems[s] -= k
            progress = True
            if op == Opcode.EXEC:
                q.issued.append(arg)
                if engine_fails(e, arg):
                    fail(q, ErrorCode.ENGINE_ERROR)
                    continue
                signal(q, sigs)
                q.pc += 1
            elif op == Opcode.LOOP:
                signal(q, sigs)
                q.loops.append([q.pc + 1, arg])
                q.pc += 1
            elif op == Opcode.ENDLOOP:
                signal(q, sigs)
                if q.loops[-1][1] > 1:
                    q.loops[-1][1] -= 1
                    q.pc = q.loops[-1][0]
                else:
                    q.loops.pop()
                    q.pc += 1
            elif op == Opcode.HALT:
                signal(q, sigs)
                if q.state == "run":
                    q.state = "done"
            else:  # NOP
                signal(q, sigs)
                q.pc += 1
        if not progress:
            for q in qs:
                if q.state == "run":
                    fail(q, ErrorCode.DEADLOCK)
            break
    return {
        "issued": [q.issued for q in qs],
        "sems": sems,
        "state": [q.state for q in qs],
        "error": [int(q.error) for q in qs],
        "pc": [q.pc for q in qs],
    }
