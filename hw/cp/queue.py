from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common import StreamFIFO, check_int
from .isa import ARG_BITS, ERROR_BITS, INSTRUCTION, SEM_ID_BITS, ErrorCode, Opcode

__all__ = ["QueueState", "SemSet", "CommandQueue"]


class QueueState(enum.Enum, shape=3):
    IDLE = 0
    FETCH = 1
    DECODE = 2   #: also waits for the semaphore acquire
    ISSUE = 3    #: EXEC: offering the command to the engine
    DRAIN = 4    #: HALT: waiting for in-flight commands to complete
    DONE = 5
    ERROR = 6


#: Up to three semaphore ids with enables (an acquire or a signal request).
SemSet = data.StructLayout({
    "en": 3,
    "ids": data.ArrayLayout(SEM_ID_BITS, 3),
})


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
    acquire : Out(SemSet), acquire_valid : Out(1), acquire_grant : In(1)
        Semaphore acquire request; the unit grants when every count is there.
    signal_now, signal_done : Out(SemSet)
        Semaphore increments (enables are zero when idle).
    signal_overflow : In(1)
        The semaphore unit saw this queue's signal overflow a counter.
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
            "acquire": Out(SemSet),
            "acquire_valid": Out(1),
            "acquire_grant": In(1),
            "signal_now": Out(SemSet),
            "signal_done": Out(SemSet),
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
        rp = imem.read_port()
        m.d.comb += [
            wp.addr.eq(self.load.payload.addr),
            wp.data.eq(self.load.payload.data),
            # A running queue's program is not rewritten under it.
            wp.en.eq(self.load.valid & ((self.state == QueueState.IDLE) |
                                        (self.state == QueueState.DONE) |
                                        (self.state == QueueState.ERROR))),
            self.load.ready.eq(1),
            rp.addr.eq(self.pc),
        ]

        # Signal sets of EXECs in flight, in issue order (completions are in order).
        m.submodules.inflight = inflight = StreamFIFO(payload_shape=SemSet, depth=self._max_inflight)
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

        # The command is latched when dispatched, so its payload is stable
        # while the engine stalls whatever happens to the program memory.
        issue_arg = Signal(ARG_BITS)
        issue_sigs = Signal(SemSet)
        m.d.comb += [
            self.acquire.en.eq(instr.wait_en),
            self.acquire.ids.eq(instr.wait),
            self.cmd.payload.eq(issue_arg),
            inflight.i_stream.payload.eq(issue_sigs),
        ]
        self._issue = (issue_arg, issue_sigs)

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

        with m.Switch(self.state):
            with m.Case(QueueState.IDLE, QueueState.DONE, QueueState.ERROR):
                with m.If(self.start):
                    m.d.sync += [self.state.eq(QueueState.FETCH), self.error.eq(ErrorCode.NONE),
                                 self.pc.eq(0), sp.eq(0), abort.eq(0)]
            with m.Case(QueueState.FETCH):
                # The synchronous read of imem[pc] lands next cycle.
                with m.If(abort):
                    m.d.sync += [self.state.eq(QueueState.ERROR), abort.eq(0)]
                with m.Elif(self.pc == depth):
                    fail(ErrorCode.PC_OVERFLOW)
                with m.Else():
                    m.d.sync += self.state.eq(QueueState.DECODE)
            with m.Case(QueueState.DECODE):
                with m.If(illegal):
                    fail(ErrorCode.ILLEGAL_OPCODE)
                with m.Elif(bad_sem):
                    fail(ErrorCode.BAD_SEMAPHORE)
                with m.Elif(bad_loop):
                    fail(ErrorCode.BAD_LOOP)
                with m.Else():
                    need = instr.wait_en != 0
                    m.d.comb += [
                        self.acquire_valid.eq(need),
                        self.waiting.eq(need & ~self.acquire_grant),
                    ]
                    with m.If(self.deadlock & need):
                        fail(ErrorCode.DEADLOCK)
                    with m.Elif(~need | self.acquire_grant):
                        self._act(m, instr, sp, loop_start, loop_count, top_count, top_start)
            with m.Case(QueueState.ISSUE):
                m.d.comb += [
                    self.cmd.valid.eq(inflight.i_stream.ready),
                    inflight.i_stream.valid.eq(self.cmd.ready & inflight.i_stream.ready),
                ]
                with m.If(self.cmd.valid & self.cmd.ready):
                    m.d.sync += [self.pc.eq(self.pc + 1), self.state.eq(QueueState.FETCH)]
            with m.Case(QueueState.DRAIN):
                with m.If(~inflight.o_stream.valid):
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
        signal = [self.signal_now.en.eq(instr.sig_en), self.signal_now.ids.eq(instr.sig)]
        next_pc = [self.pc.eq(self.pc + 1), self.state.eq(QueueState.FETCH)]
        with m.Switch(op):
            with m.Case(Opcode.NOP):
                m.d.comb += signal
                m.d.sync += next_pc
            with m.Case(Opcode.EXEC):
                issue_arg, issue_sigs = self._issue
                m.d.sync += [
                    self.state.eq(QueueState.ISSUE),
                    issue_arg.eq(instr.arg),
                    issue_sigs.en.eq(instr.sig_en),
                    issue_sigs.ids.eq(instr.sig),
                ]
            with m.Case(Opcode.LOOP):
                m.d.comb += signal
                m.d.sync += next_pc + [sp.eq(sp + 1)]
                with m.Switch(sp):
                    for i in range(self._loop_depth):
                        with m.Case(i):
                            m.d.sync += [loop_start[i].eq(self.pc + 1), loop_count[i].eq(instr.arg)]
            with m.Case(Opcode.ENDLOOP):
                m.d.comb += signal
                with m.If(top_count > 1):
                    m.d.sync += [self.pc.eq(top_start), self.state.eq(QueueState.FETCH)]
                    with m.Switch(sp):
                        for i in range(1, self._loop_depth + 1):
                            with m.Case(i):
                                m.d.sync += loop_count[i - 1].eq(top_count - 1)
                with m.Else():
                    m.d.sync += next_pc + [sp.eq(sp - 1)]
            with m.Case(Opcode.HALT):
                m.d.comb += signal
                m.d.sync += self.state.eq(QueueState.DRAIN)
