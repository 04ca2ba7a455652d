from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common import StreamFIFO, check_int
from .isa import ARG_BITS, ERROR_BITS, INSTRUCTION, SEM_ID_BITS, ErrorCode, Opcode

__all__ = ["QueueState", "sem_counts", "CommandQueue"]


class QueueState(enum.Enum, shape=3):
    IDLE = 0
    FETCH = 1
    DECODE = 2   #: also waits for the semaphore acquire
    ISSUE = 3    #: EXEC: offering the command to the engine
    DRAIN = 4    #: HALT: waiting for in-flight commands to complete
    DONE = 5
    ERROR = 6


def sem_counts(n_sems):
    """How many of an instruction's (up to three) waits or signals name each semaphore.

    Queues hand waits and signals to the semaphore unit in this decoded form,
    so that the unit's counters need no id comparators in their paths.
    """
    return data.ArrayLayout(range(4), n_sems)


def _count_ids(target, en, ids):
    """Assignments of the per-semaphore counts of ``(en, ids)`` to ``target``."""
    return [target[s].eq(sum((en[k] & (ids[k] == s)).as_unsigned() for k in range(3)))
            for s in range(len(target))]


class CommandQueue(wiring.Component):
    """One in-order instruction queue in front of one engine.

    Fetches from its own program memory, decodes, acquires semaphores through
    the shared :class:`~hw.cp.CommandProcessor` semaphore unit, dispatches
    EXEC arguments to the engine and signals semaphores when the engine
    reports completion (completions return in order). Malformed instructions
    stop the queue in ``ERROR`` with an :class:`~hw.cp.isa.ErrorCode`.

    Parameters
    ----------
    depth : int
        Program memory words.
    n_sems : int
        Number of semaphores (ids at or above are rejected).
    loop_depth : int
        Nesting depth of LOOP.
    max_inflight : int
        EXEC commands in flight at the engine before the queue stalls.

    Attributes
    ----------
    load : In(stream.Signature(StructLayout({"addr", "data"})))
        Program load (host side); ignored while the queue runs.
    start : In(1)
        Start at pc 0 (from IDLE, DONE or ERROR).
    state, error, pc : Out
        Status.
    need : Out(sem_counts(n_sems))
        Counts the instruction in DECODE takes from each semaphore (its waits),
        from a register.
    acquire_valid : Out(1), acquire_grant : In(1)
        Semaphore acquire request; the unit grants when every count is there.
    signal_now, signal_done : Out(sem_counts(n_sems))
        Semaphore increments (zero when idle): ``signal_now`` the
        cycle after a NOP/LOOP/ENDLOOP/HALT acts, ``signal_done`` with an
        engine completion.
    signal_overflow : In(1)
        The semaphore unit saw this queue's signal overflow a counter in the
        previous cycle (the next instruction does not act).
    deadlock : In(1)
        The watchdog declares a deadlock: a waiting queue stops.
    cmd : Out(stream.Signature(ARG_BITS))
        EXEC arguments to the engine.
    done : In(stream.Signature(1))
        Engine completions in order; payload 1 = the command failed.
    waiting, inflight : Out(1)
        Blocked on an acquire / any command outstanding (for the watchdog).
    """

    def __init__(self, *, depth, n_sems, loop_depth=2, max_inflight=4):
        self._depth = check_int("depth", depth, min=2)
        self._n_sems = check_int("n_sems", n_sems, min=1, max=1 << SEM_ID_BITS)
        self._loop_depth = check_int("loop_depth", loop_depth, min=1)
        self._max_inflight = check_int("max_inflight", max_inflight, min=1)
        super().__init__({
            "load": In(stream.Signature(data.StructLayout({
                "addr": range(depth), "data": INSTRUCTION}))),
            "start": In(1),
            "state": Out(QueueState),
            "error": Out(ERROR_BITS),
            "pc": Out(range(depth + 1)),
            "need": Out(sem_counts(n_sems)),
            "acquire_valid": Out(1),
            "acquire_grant": In(1),
            "signal_now": Out(sem_counts(n_sems)),
            "signal_done": Out(sem_counts(n_sems)),
            "signal_overflow": In(1),
            "deadlock": In(1),
            "cmd": Out(stream.Signature(ARG_BITS)),
            "done": In(stream.Signature(1)),
            "waiting": Out(1),
            "inflight": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.imem = imem = Memory(shape=INSTRUCTION, depth=depth, init=[])
        wp = imem.write_port()
        # Addressed by the next pc, so that an instruction is on rp.data in its
        # FETCH cycle, where its waits are counted into the `need` register:
        # the acquire then starts from flip-flops, not from the block RAM.
        # Transparent, so a load in the cycle of `start` is seen.
        rp = imem.read_port(transparent_for=(wp,))
        pc_next = Signal.like(self.pc)
        m.d.comb += pc_next.eq(self.pc)
        m.d.sync += self.pc.eq(pc_next)
        self._pc_next = pc_next
        m.d.comb += [
            wp.addr.eq(self.load.payload.addr),
            wp.data.eq(self.load.payload.data),
            # A running queue's program is not rewritten under it.
            wp.en.eq(self.load.valid & ((self.state == QueueState.IDLE) |
                                        (self.state == QueueState.DONE) |
                                        (self.state == QueueState.ERROR))),
            self.load.ready.eq(1),
            rp.addr.eq(pc_next),
        ]

        # Signal sets of EXECs in flight, in issue order (completions are in order).
        m.submodules.inflight = inflight = StreamFIFO(payload_shape=sem_counts(self._n_sems),
                                                      depth=self._max_inflight)
        m.d.comb += self.inflight.eq(inflight.o_stream.valid)

        loop_start = [Signal(range(depth + 1), name=f"loop_start{i}") for i in range(self._loop_depth)]
        loop_count = [Signal(ARG_BITS, name=f"loop_count{i}") for i in range(self._loop_depth)]
        sp = Signal(range(self._loop_depth + 1))

        instr = rp.data
        op = instr.opcode
        used_ids = [(instr.wait_en[i], instr.wait[i]) for i in range(3)] + \
                   [(instr.sig_en[i], instr.sig[i]) for i in range(3)]
        bad_sem = Signal()
        if self._n_sems < 1 << SEM_ID_BITS:
            m.d.comb += bad_sem.eq(sum((en & (sid >= self._n_sems)) for en, sid in used_ids) != 0)
        illegal = op > Opcode.HALT
        top_count = Signal(ARG_BITS)
        top_start = Signal(range(depth + 1))
        with m.Switch(sp):
            for i in range(1, self._loop_depth + 1):
                with m.Case(i):
                    m.d.comb += [top_count.eq(loop_count[i - 1]), top_start.eq(loop_start[i - 1])]
        bad_loop = (((op == Opcode.LOOP) & ((instr.arg == 0) | (sp == self._loop_depth))) |
                    ((op == Opcode.ENDLOOP) & (sp == 0)))
        decode_error = Signal(ERROR_BITS)
        has_wait = Signal()

        # The command is latched when dispatched, so its payload is stable
        # while the engine stalls whatever happens to the program memory.
        issue_arg = Signal(ARG_BITS)
        issue_sigs = Signal(sem_counts(self._n_sems))
        # The instruction's signals, decoded once for signal_now and issue_sigs.
        sig_counts = Signal(sem_counts(self._n_sems))
        m.d.comb += [
            self.cmd.payload.eq(issue_arg),
            inflight.i_stream.payload.eq(issue_sigs),
            *_count_ids(sig_counts, instr.sig_en, instr.sig),
        ]
        self._issue = (issue_arg, issue_sigs, sig_counts)

        # Errors found by decode stop the queue at once; errors arriving
        # from outside (engine, semaphore overflow) are held in `abort` while
        # a command is being offered, so the command stream is never cut.
        abort = Signal()

        def fail(code):
            m.d.sync += [self.state.eq(QueueState.ERROR), self.error.eq(code)]

        def fail_later(code):
            with m.If(self.state == QueueState.ISSUE):
                m.d.sync += [abort.eq(1), self.error.eq(code)]
            with m.Else():
                fail(code)

        # NOP/LOOP/ENDLOOP/HALT signal from a register, the cycle after they act:
        # the semaphore unit's increments then never wait on its own acquire grant.
        m.d.sync += self.signal_now.eq(0)
        with m.Switch(self.state):
            with m.Case(QueueState.IDLE, QueueState.DONE, QueueState.ERROR):
                with m.If(self.start):
                    m.d.sync += [self.state.eq(QueueState.FETCH), self.error.eq(ErrorCode.NONE),
                                 sp.eq(0), abort.eq(0)]
                    m.d.comb += pc_next.eq(0)
            with m.Case(QueueState.FETCH):
                # imem[pc] is on rp.data (read with the address pc_next last cycle):
                # decode checks and wait counts go into registers for DECODE.
                m.d.sync += _count_ids(self.need, instr.wait_en, instr.wait)
                m.d.sync += [
                    has_wait.eq(instr.wait_en != 0),
                    decode_error.eq(Mux(illegal, ErrorCode.ILLEGAL_OPCODE,
                                        Mux(bad_sem, ErrorCode.BAD_SEMAPHORE,
                                            Mux(bad_loop, ErrorCode.BAD_LOOP, ErrorCode.NONE)))),
                ]
                with m.If(abort):
                    m.d.sync += [self.state.eq(QueueState.ERROR), abort.eq(0)]
                with m.Elif(self.pc == depth):
                    fail(ErrorCode.PC_OVERFLOW)
                with m.Else():
                    m.d.sync += self.state.eq(QueueState.DECODE)
            with m.Case(QueueState.DECODE):
                with m.If(self.signal_overflow):
                    pass  # the previous instruction's signal overflowed: stop here (below)
                with m.Elif(decode_error != ErrorCode.NONE):
                    fail(decode_error)
                with m.Else():
                    m.d.comb += [
                        self.acquire_valid.eq(has_wait),
                        self.waiting.eq(has_wait & ~self.acquire_grant),
                    ]
                    with m.If(self.deadlock & has_wait):
                        fail(ErrorCode.DEADLOCK)
                    with m.Elif(~has_wait | self.acquire_grant):
                        self._act(m, instr, sp, loop_start, loop_count, top_count, top_start)
            with m.Case(QueueState.ISSUE):
                m.d.comb += [
                    self.cmd.valid.eq(inflight.i_stream.ready),
                    inflight.i_stream.valid.eq(self.cmd.ready & inflight.i_stream.ready),
                ]
                with m.If(self.cmd.valid & self.cmd.ready):
                    m.d.comb += pc_next.eq(self.pc + 1)
                    m.d.sync += self.state.eq(QueueState.FETCH)
            with m.Case(QueueState.DRAIN):
                # HALT's own signal is checked for overflow before DONE.
                with m.If(~inflight.o_stream.valid & (self.signal_now.as_value() == 0)):
                    m.d.sync += self.state.eq(QueueState.DONE)

        # After the state machine, so an error here wins over its transition.
        # Engine completions: pop and signal, unless the command failed.
        m.d.comb += [
            self.done.ready.eq(1),
            inflight.o_stream.ready.eq(self.done.valid),
        ]
        # Completions after an error drain silently: the first error is kept.
        live = (self.state != QueueState.ERROR) & ~abort
        with m.If(self.done.valid & inflight.o_stream.valid & live):
            with m.If(self.done.payload):
                fail_later(ErrorCode.ENGINE_ERROR)
            with m.Else():
                m.d.comb += self.signal_done.eq(inflight.o_stream.payload)

        with m.If(self.signal_overflow & live):
            fail_later(ErrorCode.SEM_OVERFLOW)

        return m

    def _act(self, m, instr, sp, loop_start, loop_count, top_count, top_start):
        """The instruction's waits are held: perform it."""
        op = instr.opcode
        issue_arg, issue_sigs, sig_counts = self._issue
        signal = self.signal_now.eq(sig_counts)
        pc_next = self._pc_next

        def next_pc():
            m.d.comb += pc_next.eq(self.pc + 1)
            m.d.sync += self.state.eq(QueueState.FETCH)
        with m.Switch(op):
            with m.Case(Opcode.NOP):
                m.d.sync += signal
                next_pc()
            with m.Case(Opcode.EXEC):
                m.d.sync += [
                    self.state.eq(QueueState.ISSUE),
                    issue_arg.eq(instr.arg),
                    issue_sigs.eq(sig_counts),
                ]
            with m.Case(Opcode.LOOP):
                m.d.sync += signal
                next_pc()
                m.d.sync += sp.eq(sp + 1)
                with m.Switch(sp):
                    for i in range(self._loop_depth):
                        with m.Case(i):
                            m.d.sync += [loop_start[i].eq(self.pc + 1), loop_count[i].eq(instr.arg)]
            with m.Case(Opcode.ENDLOOP):
                m.d.sync += signal
                with m.If(top_count > 1):
                    m.d.comb += pc_next.eq(top_start)
                    m.d.sync += self.state.eq(QueueState.FETCH)
                    with m.Switch(sp):
                        for i in range(1, self._loop_depth + 1):
                            with m.Case(i):
                                m.d.sync += loop_count[i - 1].eq(top_count - 1)
                with m.Else():
                    next_pc()
                    m.d.sync += sp.eq(sp - 1)
            with m.Case(Opcode.HALT):
                m.d.sync += signal
                m.d.sync += self.state.eq(QueueState.DRAIN)
