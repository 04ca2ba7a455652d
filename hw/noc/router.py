"""Five-port mesh router: credit-based, virtual channels, QoS, rectangle multicast."""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, StreamFIFO, saturating_add

from .packet import (PORTS, LinkSignature, check_noc_params, flit_layout,
                     header_layout, link_vcs, route_mask)
from .qos import QosArbiter

__all__ = ["Router", "HOP_CYCLES"]

#: Cycles from a head flit on a router's input link to it on the output link: FIFO
#: write, route + VC allocation, switch allocation into the output register. The
#: golden model's latency and the performance model use it; the router tests check
#: the RTL against it.
HOP_CYCLES = 3


class Router(wiring.Component):
    """Input-queued virtual-channel router for a ``kx`` x ``ky`` mesh, at ``(x, y)``.

    Ports are ``LOCAL, NORTH, EAST, SOUTH, WEST`` (see :mod:`hw.noc.packet`).
    Every input port has one FIFO of ``vc_depth`` flits per VC. A packet
    keeps its VC end to end; VC 0 is the control/latency class, each bulk
    class has ``bulk_vcs`` VCs (see :func:`~hw.noc.packet.lane_vc`).

    Pipeline per hop (3 cycles for a head flit, then one flit per cycle):

    1. the flit arrives on the link and is written into its VC FIFO;
    2. at the FIFO head, a head flit computes its output set
       (:func:`~hw.noc.packet.route_mask`) and requests *VC allocation*: per
       VC a round-robin arbiter over the input ports grants one packet whose
       every output VC is free and has at least ``max_packet_flits`` credits
       (virtual cut-through reservation: once allocated, the whole packet fits
       in every downstream buffer, which makes synchronous multicast forks
       deadlock-free);
    3. *switch allocation*: each output port picks one of the VCs that own it
       and have a flit it has not sent yet (:class:`~hw.noc.qos.QosArbiter`:
       VC 0 first, bounded by ``qos_burst``) and copies the flit into its
       registered output link. A flit leaves its FIFO once every output of
       its set has sent it; multicast branches progress independently, and
       an output VC is released (and may be re-allocated in the same cycle)
       when the tail flit leaves through it. The packet behind a tail that
       leaves its FIFO is allocated in that same cycle (look-ahead read of
       the FIFO's second entry, ``StreamFIFO(lookahead=True)``), so
       back-to-back packets of one VC leave no bubble.

    A flit popped from an input FIFO returns a credit (registered) upstream.
    Each output keeps a credit counter per VC, starting at ``vc_depth``.
    Because the FIFOs of one input port are separate, several VCs of one
    input may move in the same cycle towards different outputs.

    Parameters
    ----------
    kx, ky : int
        Mesh size.
    x, y : int
        This router's coordinates.
    vcs : int
        QoS classes, >= 2 (class 0: control/latency).
    bulk_vcs : int
        Virtual channels per bulk class (default 1); a link carries
        ``1 + (vcs - 1) * bulk_vcs`` VCs, available as the attribute ``vcs``
        after construction.
    data_width : int
        Flit payload bits; at least the header size.
    vc_depth : int
        Flits per VC buffer; size it to ``max_packet_flits`` plus the credit
        round trip (4 cycles) for full throughput on one VC.
    max_packet_flits : int
        Longest packet (head included), <= ``vc_depth``.
    qos_burst : int
        Consecutive VC-0 switch grants allowed while a bulk VC waits.

    Attributes
    ----------
    i_links : In(LinkSignature).array(5)
        Incoming links (flits in, credits out).
    o_links : Out(LinkSignature).array(5)
        Outgoing links (flits out, credits in).
    errors : Out(16)
        Packets dropped for a malformed header or a missing head flit (saturating).
    """

    def __init__(self, *, kx, ky, x, y, vcs=2, data_width=32, vc_depth=8,
                 max_packet_flits=4, qos_burst=4, bulk_vcs=1):
        check_noc_params(kx=kx, ky=ky, x=x, y=y, vcs=vcs, data_width=data_width,
                         vc_depth=vc_depth, max_packet_flits=max_packet_flits,
                         qos_burst=qos_burst, bulk_vcs=bulk_vcs)
        self.kx, self.ky, self.x, self.y = kx, ky, x, y
        self.classes, self.bulk_vcs = vcs, bulk_vcs
        vcs = link_vcs(vcs, bulk_vcs)
        self.vcs, self.data_width, self.vc_depth = vcs, data_width, vc_depth
        self.max_packet_flits, self.qos_burst = max_packet_flits, qos_burst
        link = LinkSignature(vcs=vcs, data_width=data_width)
        super().__init__({
            "i_links": In(link).array(PORTS),
            "o_links": Out(link).array(PORTS),
            "errors": Out(16),
        })
        # Created here so that formal wrappers can see the hidden state.
        self.fifos = [[StreamFIFO(payload_shape=flit_layout(data_width), depth=vc_depth,
                                  lookahead=True)
                       for _ in range(vcs)] for _ in range(PORTS)]
        self.credits = [[Signal(range(vc_depth + 1), init=vc_depth, name=f"cred_{o}_{v}")
                         for v in range(vcs)] for o in range(PORTS)]
        self.busy = [[Signal(name=f"busy_{o}_{v}") for v in range(vcs)] for o in range(PORTS)]
        self.owner = [[Signal(range(PORTS), name=f"owner_{o}_{v}") for v in range(vcs)]
                      for o in range(PORTS)]
        self.routed = [[Signal(name=f"routed_{p}_{v}") for v in range(vcs)] for p in range(PORTS)]
        self.omask = [[Signal(PORTS, name=f"omask_{p}_{v}") for v in range(vcs)]
                      for p in range(PORTS)]
        self.done = [[Signal(PORTS, name=f"done_{p}_{v}") for v in range(vcs)]
                     for p in range(PORTS)]
        self.sent_now = [[Signal(PORTS, name=f"sent_now_{p}_{v}") for v in range(vcs)]
                         for p in range(PORTS)]
        self.drop_start = [[Signal(name=f"drop_start_{p}_{v}") for v in range(vcs)]
                           for p in range(PORTS)]
        self.pop = [[Signal(name=f"pop_{p}_{v}") for v in range(vcs)] for p in range(PORTS)]
        self.look = [[Signal(name=f"look_{p}_{v}") for v in range(vcs)] for p in range(PORTS)]
        self.sent = [[Signal(name=f"sent_{o}_{v}") for v in range(vcs)] for o in range(PORTS)]
        self.va_arbiters = [RoundRobinArbiter(n=PORTS) for _ in range(vcs)]
        self.sa_arbiters = [QosArbiter(n=vcs, burst=qos_burst) for _ in range(PORTS)]

    def invariants(self):
        """Ownership bookkeeping the k-induction proof needs (all asserted)."""
        inv = []
        for o in range(PORTS):
            for v in range(self.vcs):
                inv.append((self.credits[o][v] <= self.vc_depth, f"credits_le_depth_{o}_{v}"))
                # An owned output VC belongs to a routed input VC that lists it.
                own_ok = 0
                for p in range(PORTS):
                    own_ok = own_ok | ((self.owner[o][v] == p) & self.routed[p][v]
                                       & self.omask[p][v][o])
                inv.append((~self.busy[o][v] | own_ok, f"owner_consistent_{o}_{v}"))
        for p in range(PORTS):
            for v in range(self.vcs):
                for o in range(PORTS):
                    # A routed input VC owns every output VC of its mask.
                    inv.append((~(self.routed[p][v] & self.omask[p][v][o])
                                | (self.busy[o][v] & (self.owner[o][v] == p)),
                                f"mask_owned_{p}_{v}_{o}"))
                # An idle input VC holds no route and no partial multicast.
                inv.append((self.routed[p][v] | ((self.omask[p][v] == 0) &
                                                 (self.done[p][v] == 0)),
                            f"idle_clean_{p}_{v}"))
                # Branches already sent belong to a body flit still at the FIFO head.
                # (a tail's finished branches leave the mask instead).
                inv.append(((self.done[p][v] == 0) | ((self.fifos[p][v].level != 0) &
                                                      ~self.fifos[p][v].o_stream.payload.tail),
                            f"done_has_flit_{p}_{v}"))
                missing = ((1 << PORTS) - 1) ^ self.existing_ports()
                inv.append(((self.omask[p][v] & missing) == 0, f"mask_exists_{p}_{v}"))
                inv += [(e, f"fifo_{p}_{v}_{n}") for e, n in self.fifos[p][v].invariants()]
        for o in range(PORTS):
            inv += [(e, f"qos_{o}_{n}") for e, n in self.sa_arbiters[o].invariants()]
        return inv

    def existing_ports(self):
        """Bitmask of ports that have a neighbour (always includes LOCAL)."""
        x, y = self.x, self.y
        return (1 | (y > 0) << 1 | (x < self.kx - 1) << 2 | (y < self.ky - 1) << 3
                | (x > 0) << 4)

    def elaborate(self, platform):
        m = Module()
        V, L = self.vcs, self.max_packet_flits
        hdr_layout = header_layout(self.kx, self.ky)

        for p in range(PORTS):
            for v in range(V):
                m.submodules[f"fifo_{p}_{v}"] = self.fifos[p][v]
        for v in range(V):
            m.submodules[f"va_{v}"] = self.va_arbiters[v]
        for o in range(PORTS):
            m.submodules[f"sa_{o}"] = self.sa_arbiters[o]

        heads = [[self.fifos[p][v].o_stream.payload for v in range(V)] for p in range(PORTS)]
        nexts = [[self.fifos[p][v].o_next for v in range(V)] for p in range(PORTS)]
        avail = [[self.fifos[p][v].o_stream.valid for v in range(V)] for p in range(PORTS)]

        # --- input: write the flit into its VC FIFO (credits guarantee room).
        for p in range(PORTS):
            link = self.i_links[p]
            for v in range(V):
                f = self.fifos[p][v]
                m.d.comb += [
                    f.i_stream.valid.eq(link.valid & (link.vc == v)),
                    f.i_stream.payload.eq(link.flit),
                ]

        drop_start = self.drop_start

        # --- switch allocation: each output picks one owning VC whose current
        # flit it has not sent yet. Branches of a multicast flit leave
        # independently (the flit stays at the FIFO head until every branch
        # took it, as in StreamBroadcast): no output ever waits for another
        # output's grant, so grants cannot form a cycle.
        owner_flit = [[Signal.like(heads[0][0], name=f"owner_flit_{o}_{v}") for v in range(V)]
                      for o in range(PORTS)]
        for o in range(PORTS):
            sa = self.sa_arbiters[o]
            for v in range(V):
                ready = Signal(name=f"sa_req_{o}_{v}")
                with m.Switch(self.owner[o][v]):
                    for p in range(PORTS):
                        with m.Case(p):
                            m.d.comb += [
                                ready.eq(avail[p][v] & ~self.done[p][v][o]),
                                owner_flit[o][v].eq(heads[p][v]),
                            ]
                m.d.comb += sa.requests[v].eq(self.busy[o][v] & ready &
                                              (self.credits[o][v] != 0))
                m.d.comb += self.sent[o][v].eq(sa.valid & (sa.index == v) & sa.requests[v])
            m.d.comb += sa.fire.eq(Cat(self.sent[o]).any())

        # The tail leaving through an output frees that output VC at once (its
        # next owner may be allocated in the same cycle, see below).
        releasing = [[Signal(name=f"releasing_{o}_{v}") for v in range(V)] for o in range(PORTS)]
        for o in range(PORTS):
            for v in range(V):
                m.d.comb += releasing[o][v].eq(self.sent[o][v] & owner_flit[o][v].tail)
                with m.If(releasing[o][v]):
                    m.d.sync += self.busy[o][v].eq(0)

        for p in range(PORTS):
            for v in range(V):
                sent_now = self.sent_now[p][v]
                for o in range(PORTS):
                    m.d.comb += sent_now[o].eq(self.sent[o][v] & (self.owner[o][v] == p) &
                                               self.busy[o][v])
                left = self.omask[p][v] & ~self.done[p][v] & ~sent_now
                dropping = self.routed[p][v] & ~self.omask[p][v].any()
                m.d.comb += self.pop[p][v].eq(
                    avail[p][v] & ((self.routed[p][v] & self.omask[p][v].any() & ~left.any())
                                   | drop_start[p][v] | dropping))
                m.d.comb += self.fifos[p][v].o_stream.ready.eq(self.pop[p][v])
                with m.If(self.pop[p][v]):
                    m.d.sync += self.done[p][v].eq(0)
                with m.Elif(heads[p][v].tail):
                    # Finished branches leave the mask (their output VC is free).
                    m.d.sync += [self.done[p][v].eq(self.done[p][v] & ~sent_now),
                                 self.omask[p][v].eq(self.omask[p][v] & ~sent_now)]
                with m.Else():
                    m.d.sync += self.done[p][v].eq(self.done[p][v] | sent_now)
                with m.If(self.pop[p][v] & heads[p][v].tail):
                    m.d.sync += [self.routed[p][v].eq(0), self.omask[p][v].eq(0)]
                with m.If(drop_start[p][v] & ~heads[p][v].tail):
                    # Swallow the rest of the packet: routed with an empty mask.
                    m.d.sync += [self.routed[p][v].eq(1), self.omask[p][v].eq(0)]

        # --- route computation and VC allocation (after the release above:
        # a grant in the release cycle must win over the busy clear).
        for v in range(V):
            va = self.va_arbiters[v]
            rmasks = []
            looks = []
            for p in range(PORTS):
                fifo = self.fifos[p][v]

                def route(flit, name):
                    hdr = hdr_layout(flit.data[:hdr_layout.size])
                    rmask = Signal(PORTS, name=name)
                    m.d.comb += rmask.eq(route_mask(hdr, in_port=p, x=self.x, y=self.y,
                                                    kx=self.kx, ky=self.ky))
                    free = 1
                    for o in range(PORTS):
                        # An output VC whose owner sends its tail this cycle is free
                        # already (one credit less): no bubble between packets.
                        ok = ((~self.busy[o][v] & (self.credits[o][v] >= L)) |
                              (releasing[o][v] & (self.credits[o][v] >= L + 1)))
                        free = free & (~rmask[o] | ok)
                    return rmask, free

                head, nxt = heads[p][v], nexts[p][v]
                rmask_h, free_h = route(head, f"rmask_{p}_{v}")
                rmask_n, free_n = route(nxt, f"rmask_next_{p}_{v}")
                waiting = avail[p][v] & ~self.routed[p][v]
                # Look-ahead: the tail at the FIFO head leaves now and the next
                # entry is a head: allocate it in this cycle.
                look = self.look[p][v]
                m.d.comb += look.eq(self.pop[p][v] & head.tail & fifo.next_valid & nxt.head
                                    & rmask_n.any() & free_n)
                rmask = Signal(PORTS, name=f"va_mask_{p}_{v}")
                m.d.comb += rmask.eq(Mux(look, rmask_n, rmask_h))
                rmasks.append(rmask)
                looks.append(look)
                m.d.comb += [
                    va.requests[p].eq((waiting & head.head & rmask_h.any() & free_h) | look),
                    drop_start[p][v].eq(waiting & (~head.head | ~rmask_h.any())),
                ]
            m.d.comb += va.advance.eq(1)
            for p in range(PORTS):
                # `& requests[p]` only matters in states k-induction invents (the
                # shared arbiter's pointer out of range); it costs one gate.
                with m.If(va.valid & (va.index == p) & va.requests[p]):
                    m.d.sync += [self.routed[p][v].eq(1), self.omask[p][v].eq(rmasks[p])]
                    for o in range(PORTS):
                        with m.If(rmasks[p][o]):
                            m.d.sync += [self.busy[o][v].eq(1), self.owner[o][v].eq(p)]

        # Error counter: one count per packet dropped (saturating).
        any_drop = 0
        for p in range(PORTS):
            for v in range(V):
                any_drop = any_drop + drop_start[p][v]
        saturating_add(m, self.errors, any_drop)   # up to PORTS * V drops a cycle

        # --- crossbar and registered output links; credit counters.
        for o in range(PORTS):
            sa = self.sa_arbiters[o]
            out = self.o_links[o]
            with m.Switch(sa.index):
                for v in range(V):
                    with m.Case(v):
                        m.d.sync += out.flit.eq(owner_flit[o][v])
            m.d.sync += [out.valid.eq(Cat(self.sent[o]).any()), out.vc.eq(sa.index)]
            for v in range(V):
                m.d.sync += self.credits[o][v].eq(self.credits[o][v] - self.sent[o][v]
                                                  + out.credit[v])

        # --- credits back upstream, one per flit popped (registered).
        for p in range(PORTS):
            for v in range(V):
                m.d.sync += self.i_links[p].credit[v].eq(self.pop[p][v])
        return m
