from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common import RoundRobinArbiter, check_int
from .isa import ARG_BITS, ERROR_BITS, INSTRUCTION, SEM_ID_BITS
from .queue import CommandQueue, QueueState

__all__ = ["CommandProcessor"]


class CommandProcessor(wiring.Component):
    """Tile command processor: per-engine instruction queues + hardware semaphores.

    Each engine (DMA, TTU, TVP, network, ...) has an in-order
    :class:`CommandQueue`. Instructions wait on up to three semaphores and
    signal up to three when done (see :mod:`hw.cp.isa`), so engines overlap,
    e.g. double buffering, with no host in the loop.

    The semaphore unit applies every increment of a cycle (any number of
    queues, plus one external increment) and at most one acquire, chosen
    round-robin among the queues whose counts are all available. A watchdog
    declares a deadlock when some queue waits, nothing is in flight anywhere,
    and no semaphore changed for ``deadlock_cycles`` cycles.

    Parameters
    ----------
    n_engines : int
        Number of queues/engines.
    n_sems : int
        Number of semaphores (at most 32).
    sem_bits : int
        Width of a semaphore counter; a signal that would overflow it stops
        the signalling queue with ``SEM_OVERFLOW``.
    depth : int
        Program memory words per queue.
    loop_depth : int
        LOOP nesting depth.
    max_inflight : int
        EXEC commands outstanding per engine.
    deadlock_cycles : int
        Watchdog timeout.

    Attributes
    ----------
    load : In(stream.Signature(StructLayout({"queue", "addr", "data"})))
        Program load.
    start : In(n_engines)
        Start queues at pc 0 (one bit per queue).
    status : Out(ArrayLayout(StructLayout({"state", "error", "pc"}), n_engines))
        Per-queue status.
    sem_inc : In(stream.Signature(SEM_ID_BITS))
        External semaphore increments (remote NIC, other tiles); ids out of
        range are dropped and counted in ``sem_inc_errors``.
    sems : Out(ArrayLayout(sem_bits, n_sems))
        Semaphore values.
    cmd : Out(stream.Signature(ARG_BITS)).array(n_engines)
        Commands to the engines.
    done : In(stream.Signature(1)).array(n_engines)
        Completions from the engines (payload 1 = failed).
    """

    def __init__(self, *, n_engines=4, n_sems=16, sem_bits=8, depth=64, loop_depth=2,
                 max_inflight=4, deadlock_cycles=256):
        self._n_engines = check_int("n_engines", n_engines, min=1, max=16)
        self._n_sems = check_int("n_sems", n_sems, min=1, max=1 << SEM_ID_BITS)
        self._sem_bits = check_int("sem_bits", sem_bits, min=1, max=32)
        self._depth = check_int("depth", depth, min=2)
        self._loop_depth = check_int("loop_depth", loop_depth, min=1)
        self._max_inflight = check_int("max_inflight", max_inflight, min=1)
        self._deadlock_cycles = check_int("deadlock_cycles", deadlock_cycles, min=2)
        status = data.StructLayout({
            "state": QueueState, "error": ERROR_BITS, "pc": range(depth + 1)})
        super().__init__({
            "load": In(stream.Signature(data.StructLayout({
                "queue": range(n_engines), "addr": range(depth), "data": INSTRUCTION}))),
            "start": In(n_engines),
            "status": Out(data.ArrayLayout(status, n_engines)),
            "sem_inc": In(stream.Signature(SEM_ID_BITS)),
            "sem_inc_errors": Out(16),
            "sems": Out(data.ArrayLayout(sem_bits, n_sems)),
            "cmd": Out(stream.Signature(ARG_BITS)).array(n_engines),
            "done": In(stream.Signature(1)).array(n_engines),
        })

    def elaborate(self, platform):
        m = Module()
        n, n_sems = self._n_engines, self._n_sems
        sem_max = (1 << self._sem_bits) - 1
        queues = []
        for i in range(n):
            q = CommandQueue(depth=self._depth, n_sems=n_sems, loop_depth=self._loop_depth,
                             max_inflight=self._max_inflight)
            m.submodules[f"queue{i}"] = q
            queues.append(q)
            wiring.connect(m, wiring.flipped(self.cmd[i]), q.cmd)
            wiring.connect(m, wiring.flipped(self.done[i]), q.done)
            m.d.comb += [
                q.load.payload.addr.eq(self.load.payload.addr),
                q.load.payload.data.eq(self.load.payload.data),
                q.load.valid.eq(self.load.valid & (self.load.payload.queue == i)),
                q.start.eq(self.start[i]),
                self.status[i].state.eq(q.state),
                self.status[i].error.eq(q.error),
                self.status[i].pc.eq(q.pc),
            ]
        m.d.comb += self.load.ready.eq(1)

        # --- semaphore unit -------------------------------------------------
        m.d.comb += self.sem_inc.ready.eq(1)
        ext_ok = self.sem_inc.valid & (self.sem_inc.payload < n_sems)
        with m.If(self.sem_inc.valid & ~ext_ok):
            m.d.sync += self.sem_inc_errors.eq(self.sem_inc_errors + 1)

        # Which queues could acquire now (every wait's count is present).
        need = [q.need for q in queues]
        m.submodules.arbiter = arbiter = RoundRobinArbiter(n=n)
        for i, q in enumerate(queues):
            ok = Signal(name=f"acquire_ok{i}")
            m.d.comb += ok.eq(1)
            for s in range(n_sems):
                with m.If(need[i][s] > self.sems[s]):
                    m.d.comb += ok.eq(0)
            m.d.comb += arbiter.requests[i].eq(q.acquire_valid & ok)
        m.d.comb += arbiter.advance.eq(arbiter.valid)
        for i, q in enumerate(queues):
            m.d.comb += q.acquire_grant.eq(arbiter.grant[i])

        # The grant arrives last in the cycle, so each counter's next value is
        # prepared for every possible decrement (0..3) and the grant only
        # selects: increments come from registers, completions and sem_inc.
        signals = [q.signal_now for q in queues] + [q.signal_done for q in queues]
        overflow = Signal(n_sems)
        changed = Signal()
        for s in range(n_sems):
            inc = Signal(range(2 * 3 * n + 2), name=f"inc{s}")
            dec = Signal(range(4), name=f"dec{s}")
            up = Signal(range(sem_max + 2 * 3 * n + 2), name=f"up{s}")
            m.d.comb += [
                inc.eq(sum(st[s] for st in signals) + (ext_ok & (self.sem_inc.payload == s))),
                dec.eq(0),
                up.eq(self.sems[s] + inc),
            ]
            for i in range(n):
                with m.If(arbiter.grant[i]):
                    m.d.comb += dec.eq(need[i][s])
            with m.Switch(dec):
                for d in range(4):
                    with m.Case(d):
                        with m.If(up > sem_max + d):
                            m.d.comb += overflow[s].eq(1)
                            m.d.sync += self.sems[s].eq(sem_max)
                        with m.Else():
                            m.d.sync += self.sems[s].eq(up - d)
            with m.If((inc != 0) | (dec != 0)):
                m.d.comb += changed.eq(1)
        # Overflow reaches the queue a cycle later, from registers (off the
        # acquire and completion paths); a queue does not act in that cycle
        # (see CommandQueue.signal_overflow).
        overflow_q = Signal(n_sems)
        m.d.sync += overflow_q.eq(overflow)
        for i, q in enumerate(queues):
            hit = Signal(name=f"overflow_hit{i}")
            for j, st in enumerate((q.signal_now, q.signal_done)):
                st_q = Signal.like(st, name=f"signalled{i}_{j}")
                m.d.sync += st_q.eq(st)
                for s in range(n_sems):
                    with m.If((st_q[s] != 0) & overflow_q[s]):
                        m.d.comb += hit.eq(1)
            m.d.comb += q.signal_overflow.eq(hit)

        # --- deadlock watchdog ----------------------------------------------
        stuck = Signal(range(self._deadlock_cycles + 1))
        waiting = Signal()
        busy = Signal()
        m.d.comb += [
            waiting.eq(sum(q.waiting.as_unsigned() for q in queues) != 0),
            busy.eq(sum((q.inflight | (q.state == QueueState.ISSUE)
                         | (q.state == QueueState.FETCH)).as_unsigned() for q in queues) != 0),
        ]
        # `deadlock` comes from the register only: the queues' signals feed
        # `changed`, so a combinational term here would close a loop.
        deadlock = Signal()
        m.d.comb += deadlock.eq(stuck == self._deadlock_cycles)
        with m.If(~waiting | busy | changed | self.start.any() | deadlock):
            m.d.sync += stuck.eq(0)
        with m.Else():
            m.d.sync += stuck.eq(stuck + 1)
        for q in queues:
            m.d.comb += q.deadlock.eq(deadlock)
        return m
