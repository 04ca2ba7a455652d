"""Packet spraying: one logical flow's messages over the NIC flows of several ports."""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, check_int, saturating_add

from .post_engine import PostLayout

__all__ = ["Sprayer"]


class Sprayer(wiring.Component):
    """Spreads the messages of ``groups`` logical flows over ``width`` NIC flows each.

    Logical flow ``g`` owns NIC flows ``g * width + j`` (``j < width``); with
    ``width`` = the NIC's ``ports`` these sit on ports ``0 .. width - 1``
    (``hw.nic.Nic``: flow ``f`` on port ``f % ports``), one reliable ATL
    connection per port. A WRITE message (all its beats) goes to one sub-flow,
    chosen round-robin among the ports whose link is up (``port_up``; while none
    is, it waits); the receiver places WRITE payload by offset, so messages of
    different ports may land in any order. A SEM is sent on *every* sub-flow:
    each copy fires at the receiver only after every earlier WRITE of its
    sub-flow has landed, so the receiving program waits for ``width``
    increments (``TileProgram.receive(..., count=width)``) and then has every
    byte sent before the doorbell. The copies for ports that are down when the
    SEM arrives are *owed* (a counter per group, port and semaphore) and posted
    as soon as the port is up again, before the next message; so a dead port
    never blocks the live ones, new data only uses live ports and nothing is
    lost (the connection of the dead port retransmits what it had in flight
    when the link returns).

    Parameters
    ----------
    groups : int
        Logical flows.
    width : int
        NIC flows (ports) per logical flow, 1..8.
    n_sems : int
        Remote semaphores a SEM may name (owed-copy counters; a SEM for a larger
        index is sent on the live ports only and counted in ``errors``).

    Attributes
    ----------
    i_post : In(stream.Signature(PostLayout))
        Messages of logical flow ``i_group``.
    i_group : In(max(1, ceil(log2(groups))))
        Logical flow of the ``i_post`` beat (stable over a message).
    o_posts : Out(stream.Signature(PostLayout)).array(groups * width)
        To ``Nic.i_posts``.
    port_up : In(width)
        Link status per port (1: up).
    port_msgs : Out(data.ArrayLayout(16, width))
        WRITE messages placed on each port (saturating).
    owed : Out(1)
        Some SEM copy is owed to a port that is down.
    errors : Out(16)
        SEM copies lost: index ``>= n_sems`` with a port down, or an owed
        counter full (255 copies; saturating).
    """

    def __init__(self, *, groups=1, width=2, n_sems=4):
        self.groups = check_int("groups", groups, min=1, max=64)
        self.width = check_int("width", width, min=1, max=8)
        self.n_sems = check_int("n_sems", n_sems, min=1, max=256)
        if groups * width > 64:
            raise ValueError(f"groups * width must be <= 64 (NIC flows), not {groups * width}")
        super().__init__({
            "i_post": In(stream.Signature(PostLayout)),
            "i_group": In(max(1, (groups - 1).bit_length())),
            "o_posts": Out(stream.Signature(PostLayout)).array(groups * width),
            "port_up": In(width),
            "port_msgs": Out(data.ArrayLayout(16, width)),
            "owed": Out(1),
            "errors": Out(16),
        })
        # State, created here so that formal wrappers can see it.
        G, W, K = groups, width, n_sems
        #: ``_owed[g][j][k]``: copies of semaphore ``k`` owed to port ``j`` of group ``g``.
        self._owed = [[[Signal(8, name=f"owed_{g}_{j}_{k}") for k in range(K)]
                       for j in range(W)] for g in range(G)]
        self._sem_on = Signal()        # a SEM goes to the ports in `_sem_mask`
        self._sem_mask = Signal(W)
        self._flushing = Signal()      # an owed copy is shown

    #: Copies for down ports are owed (a mutant in ``formal/test_nic.py`` forgets them).
    _owe = True

    def elaborate(self, platform):
        m = Module()
        W, G, K = self.width, self.groups, self.n_sems
        i = self.i_post
        up = self.port_up
        m.submodules.rr = rr = RoundRobinArbiter(n=W)
        # Owed SEM copies: owed[g][j][k] copies of semaphore k for port j of group g.
        owed = self._owed
        # Pick one owed copy whose port is up (a fixed priority is enough: each
        # pick clears a copy and new ones only come with new SEMs).
        fl_any = Signal()
        gbits = max(1, (G - 1).bit_length())
        fl_g, fl_j, fl_k = Signal(gbits), Signal(range(max(2, W))), Signal(range(max(2, K)))
        for g in reversed(range(G)):
            for j in reversed(range(W)):
                for k in reversed(range(K)):
                    with m.If(up[j] & (owed[g][j][k] != 0)):
                        m.d.comb += [fl_any.eq(1), fl_g.eq(g), fl_j.eq(j), fl_k.eq(k)]
        m.d.comb += self.owed.eq(Cat(*[o != 0 for gg in owed for jj in gg for o in jj]).any())
        # State: a registered choice, so that no outgoing beat changes port while it waits.
        chosen = Signal()          # a WRITE message goes to port `cur`
        cur = Signal(range(max(2, W)))
        sem_on, sem_mask, flushing = self._sem_on, self._sem_mask, self._flushing
        fg, fk = Signal(gbits), Signal(range(max(2, K)))
        is_sem = i.payload.sem
        idle = ~chosen & ~sem_on & ~flushing
        m.d.comb += rr.requests.eq(up)
        with m.If(idle & fl_any):
            m.d.sync += [flushing.eq(1), cur.eq(fl_j), fg.eq(fl_g), fk.eq(fl_k)]
        with m.Elif(idle & i.valid & is_sem):
            # Copies for the live ports now, the others owed.
            m.d.sync += [sem_on.eq(1), sem_mask.eq(up)]
            for g in range(G):
                for j in range(W):
                    for k in range(K):
                        with m.If((self.i_group == g) & ~up[j] & (i.payload.addr == k)):
                            with m.If((owed[g][j][k] != 255) & self._owe):
                                m.d.sync += owed[g][j][k].eq(owed[g][j][k] + 1)
                            with m.Else():
                                saturating_add(m, self.errors)
            with m.If(~up.all() & (i.payload.addr >= K)):
                saturating_add(m, self.errors)
        with m.Elif(idle & i.valid & ~is_sem & rr.valid):
            m.d.comb += rr.advance.eq(1)
            m.d.sync += [chosen.eq(1), cur.eq(rr.index)]
            for j in range(W):
                with m.If(rr.index == j):
                    saturating_add(m, self.port_msgs[j])

        took = Signal(W)
        wr_ready = Signal()
        fl_ready = Signal()
        for g in range(G):
            mine = self.i_group == g
            for j in range(W):
                o = self.o_posts[g * W + j]
                fl_here = flushing & (fg == g) & (cur == j)
                with m.If(fl_here):
                    m.d.comb += [o.valid.eq(1), o.payload.sem.eq(1), o.payload.last.eq(1),
                                 o.payload.addr.eq(fk), fl_ready.eq(o.ready)]
                with m.Else():
                    # Inside a WRITE message every beat is data (the NIC takes
                    # `sem` from the first beat only).
                    m.d.comb += [
                        o.payload.eq(i.payload),
                        o.valid.eq(i.valid & mine & Mux(chosen, cur == j,
                                                        sem_on & sem_mask[j])),
                    ]
                with m.If(mine & sem_on):
                    m.d.comb += took[j].eq(o.ready)
                with m.If(mine & chosen & (cur == j)):
                    m.d.comb += wr_ready.eq(o.ready)
        rest = Signal(W)
        m.d.comb += [rest.eq(sem_mask & ~took),
                     i.ready.eq((sem_on & (rest == 0)) | wr_ready)]
        with m.If(sem_on):
            m.d.sync += sem_mask.eq(rest)
            with m.If(rest == 0):
                m.d.sync += sem_on.eq(0)
        with m.If(i.valid & wr_ready & i.payload.last):
            m.d.sync += chosen.eq(0)
        with m.If(flushing & fl_ready):
            m.d.sync += flushing.eq(0)
            for g in range(G):
                for j in range(W):
                    for k in range(K):
                        with m.If((fg == g) & (cur == j) & (fk == k)):
                            m.d.sync += owed[g][j][k].eq(owed[g][j][k] - 1)
        return m
