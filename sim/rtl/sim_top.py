"""The ``make sim`` top: one tile, its HBM, and the observers that keep Python out of the run.

:class:`SimTile` wraps :class:`hw.tile.Tile` with

* :class:`sim.rtl.hbm.HBMModel` on ``m_axi`` (loaded at time 0, dumped after the run);
* a run counter: ``cycles`` counts clock edges from ``start`` until every queue is
  DONE or ERROR, then ``done`` rises (the cocotb job waits on that edge);
* per-engine busy counters (``busy``: cycles with the engine's ``active`` bit set);
* an event log: every cycle in which ``active``, ``status`` or ``sems`` changes
  writes ``{cycle, active, status, sems}`` into a memory read back after the run
  (``log_addr`` -> ``log_data`` one cycle later, ``log_count`` entries, ``log_lost``
  those that did not fit). From it the driver rebuilds the engine timeline, the
  queues' dispatch cycles and the semaphore changes that the Python-per-cycle
  monitor (:func:`sim.rtl.tile_host.run_tiles`) used to sample.

Counting matches :func:`~sim.rtl.tile_host.run_tiles`: cycle ``k`` is the state
after the ``k``-th edge following the edge that samples ``start``.
"""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common import check_int
from hw.cp import QueueState
from hw.tile import ENGINES, Tile, TileParams

from .hbm import HBMModel

__all__ = ["SimTile", "log_layout"]

#: The tile ports the top passes through unchanged (same names as on ``Tile``).
PASS = ("load", "start", "status", "sems", "sem_inc", "host", "active", "macs", "errors")


def log_layout(tile):
    """Layout of one event-log entry of a top around ``tile``."""
    mem = tile.signature.members
    return data.StructLayout({"cycle": 32, "active": len(ENGINES),
                              "status": mem["status"].shape, "sems": mem["sems"].shape})


class SimTile(wiring.Component):
    """A tile with its HBM model and run observers (simulation only).

    Parameters
    ----------
    params : TileParams
        The tile.
    hbm_bytes : int, optional
        HBM model size (power of two); default the smallest power of two >= ``params.hbm_size``.
    log_depth : int
        Event-log entries.
    """

    def __init__(self, *, params=TileParams(), hbm_bytes=None, log_depth=8192):
        self.tile = Tile(params=params)
        self.params = params
        self.log_depth = check_int("log_depth", log_depth, min=2)
        size = hbm_bytes or 1 << (params.hbm_size - 1).bit_length()
        self.hbm = HBMModel(addr_width=params.addr_width, data_width=params.word_bits, size=size)
        self.entry = log_layout(self.tile)
        members = {k: self.tile.signature.members[k] for k in PASS}
        members.update({
            "hbm_dump": In(1),
            "done": Out(1),
            "cycles": Out(32),
            "busy": Out(data.ArrayLayout(32, len(ENGINES))),
            "log_addr": In(range(log_depth)),
            "log_data": Out(self.entry),
            "log_count": Out(32),
            "log_lost": Out(32),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.tile = tile = self.tile
        m.submodules.hbm = hbm = self.hbm
        wiring.connect(m, tile.m_axi, hbm.axi)
        m.d.comb += hbm.dump.eq(self.hbm_dump)
        for name in PASS:
            port, member = getattr(self, name), self.signature.members[name]
            if member.is_signature:
                wiring.connect(m, wiring.flipped(port), getattr(tile, name))
            elif member.flow == In:
                m.d.comb += getattr(tile, name).eq(port)
            else:
                m.d.comb += port.eq(getattr(tile, name))
        # A lone tile has no network: remote writes are accepted and dropped.
        m.d.comb += tile.noc.ready.eq(1)

        all_done = Signal()
        m.d.comb += all_done.eq(Cat(
            (tile.status[q].state == QueueState.DONE) | (tile.status[q].state == QueueState.ERROR)
            for q in range(len(ENGINES))).all())

        running, first = Signal(), Signal()
        with m.If(self.start.any()):
            m.d.sync += [running.eq(1), first.eq(1), self.cycles.eq(0), self.done.eq(0),
                         self.log_count.eq(0), self.log_lost.eq(0)]
            m.d.sync += [self.busy[e].eq(0) for e in range(len(ENGINES))]
        with m.Elif(running):
            m.d.sync += [self.busy[e].eq(self.busy[e] + tile.active[e])
                         for e in range(len(ENGINES))]
            with m.If(all_done):
                m.d.sync += [running.eq(0), self.done.eq(1)]
            with m.Else():
                m.d.sync += self.cycles.eq(self.cycles + 1)

        # Event log: the state after edge `cycles`, written at the next edge when it changed.
        m.submodules.log = log = Memory(shape=self.entry, depth=self.log_depth, init=[])
        wr = log.write_port()
        rd = log.read_port()
        cur = Signal(self.entry)
        prev = Signal(self.entry)
        m.d.comb += [cur.cycle.eq(self.cycles), cur.active.eq(tile.active),
                     cur.status.eq(tile.status), cur.sems.eq(tile.sems)]
        changed = first | (cur.active != prev.active) | (cur.status != prev.status) \
            | (cur.sems != prev.sems)
        with m.If(running & ~self.start.any() & changed):
            m.d.sync += [prev.eq(cur), first.eq(0)]
            with m.If(self.log_count < self.log_depth):
                m.d.comb += [wr.en.eq(1), wr.addr.eq(self.log_count), wr.data.eq(cur)]
                m.d.sync += self.log_count.eq(self.log_count + 1)
            with m.Else():
                m.d.sync += self.log_lost.eq(self.log_lost + 1)
        m.d.comb += [rd.addr.eq(self.log_addr), self.log_data.eq(rd.data)]
        return m
