"""Formal checks of the command processor (small instance: 2 engines, 2 semaphores).

Testplan (docs/cp.md): with a free host (program loads, starts, external
increments) and free engines (any ready, any completion), BMC shows
* the command streams obey the stream rules,
* a queue is DONE only with nothing in flight, and never has more than
  ``max_inflight`` commands outstanding at its engine,
* a semaphore never exceeds its counter range,
and covers show a command issued, a queue finishing, a deadlock detected and
an engine error reported, so the checks are not vacuous.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal

from hw.cp import CommandProcessor, QueueState
from hw.cp.isa import ErrorCode
from formal import harness
from formal.properties import beat, check_source, drive_sink, drive_source

P = dict(n_engines=2, n_sems=2, sem_bits=2, depth=4, loop_depth=1, max_inflight=2, deadlock_cycles=3)


class CommandProcessorCheck(Elaboratable):
    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = CommandProcessor(**P)
        drive_source(m, dut.load, name="load")
        drive_source(m, dut.sem_inc, name="sem_inc")
        m.d.comb += dut.start.eq(AnySeq(P["n_engines"]))
        for e in range(P["n_engines"]):
            drive_sink(m, dut.cmd[e])
            check_source(m, dut.cmd[e], name=f"cmd{e}")
            m.d.comb += [dut.done[e].valid.eq(AnySeq(1)), dut.done[e].payload.eq(AnySeq(1))]
            # Commands outstanding at engine e, as the engine sees them.
            out = Signal(range(8), name=f"outstanding{e}")
            popped = dut.done[e].valid & (out != 0)
            with m.If(beat(dut.cmd[e]) & ~popped):
                m.d.sync += out.eq(out + 1)
            with m.Elif(popped & ~beat(dut.cmd[e])):
                m.d.sync += out.eq(out - 1)
            st = dut.status[e].state
            m.d.comb += [
                Assert(out <= P["max_inflight"], f"inflight_bound{e}"),
                Assert((st != QueueState.DONE) | (out == 0), f"done_means_drained{e}"),
                Cover(beat(dut.cmd[e]), f"issued{e}"),
            ]
        for s in range(P["n_sems"]):
            m.d.comb += Assert(dut.sems[s] <= (1 << P["sem_bits"]) - 1, f"sem_range{s}")
        status0 = dut.status[0]
        m.d.comb += [
            Cover(status0.state == QueueState.DONE, "finished"),
            Cover((status0.state == QueueState.ERROR) & (status0.error == ErrorCode.DEADLOCK), "deadlock"),
            Cover((status0.state == QueueState.ERROR) & (status0.error == ErrorCode.ENGINE_ERROR), "engine_error"),
        ]
        return m


def test_command_processor():
    harness.check(CommandProcessorCheck(), name="cp", modes=("bmc", "cover"), depth=10)
