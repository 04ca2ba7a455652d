"""Network interface: stream packets <-> flits on a router's local port."""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, StreamFIFO

from .packet import (LinkSignature, check_noc_params, coord_bits, flit_layout, header_layout,
                     lane_vc, link_vcs, vc_class)
from .qos import QosArbiter

__all__ = ["NetworkInterface", "tx_layout", "rx_layout"]


def tx_layout(kx, ky, data_width):
    """Payload of the injection streams: a data beat plus the destination rectangle.

    The rectangle is sampled on the first beat of a packet (it should be the
    same on every beat of the packet).
    """
    bx, by = coord_bits(kx), coord_bits(ky)
    return data.StructLayout({"data": data_width, "last": 1,
                              "x0": bx, "x1": bx, "y0": by, "y1": by})


def rx_layout(kx, ky, data_width):
    """Payload of the ejection streams: a data beat and the source node."""
    return data.StructLayout({"data": data_width, "last": 1,
                              "src_x": coord_bits(kx), "src_y": coord_bits(ky)})


class NetworkInterface(wiring.Component):
    """Packetiser / depacketiser between ``lib.stream`` ports and a router's local port.

    One injection and one ejection stream per QoS class (= VC), so a control
    packet never waits behind bulk data, even inside the interface.

    Injection: a packet (beats up to ``last``) on ``i_streams[c]`` becomes a
    head flit (header: rectangle and source) and one body flit per beat on
    VC ``c``. A packet of more than ``max_packet_flits - 1`` beats is split
    into several network packets with the same header. Classes share the
    link flit by flit (:class:`~hw.noc.qos.QosArbiter`, class 0 first);
    a flit is only sent with a credit for its VC.

    With ``bulk_vcs > 1`` a bulk class has one *lane* (VC) per destination
    column, :func:`~hw.noc.packet.lane_vc`: every packet from this node to
    column ``x`` travels on the same VC end to end, so flows stay in order
    while packets to different columns do not block each other. A rectangle
    spanning several columns is then sent as one column multicast per
    column (the network packet's beats are kept in a ``max_packet_flits - 1``
    word buffer and replayed), so each copy rides the lane of its column.

    Ejection: each VC has a ``vc_depth`` FIFO (the router's credits for its
    local port assume exactly that); the head flit is consumed into a source
    register and every body flit becomes one beat on ``o_streams[c]``,
    ``last`` on the tail flit (so a split packet arrives as several packets).
    The VCs of one class are merged packet by packet (round-robin; a packet
    is never interleaved with another on the stream).

    Parameters
    ----------
    kx, ky, x, y, vcs, data_width, vc_depth, max_packet_flits, qos_burst, bulk_vcs
        As for :class:`~hw.noc.router.Router` (``vcs`` is the number of classes).

    Attributes
    ----------
    i_streams : In(stream.Signature(tx_layout)).array(vcs)
        Injection, one per class.
    o_streams : Out(stream.Signature(rx_layout)).array(vcs)
        Ejection, one per class.
    o_link : Out(LinkSignature)
        To the router's local input.
    i_link : In(LinkSignature)
        From the router's local output.
    """

    def __init__(self, *, kx, ky, x, y, vcs=2, data_width=32, vc_depth=8,
                 max_packet_flits=4, qos_burst=4, bulk_vcs=1):
        check_noc_params(kx=kx, ky=ky, x=x, y=y, vcs=vcs, data_width=data_width,
                         vc_depth=vc_depth, max_packet_flits=max_packet_flits,
                         qos_burst=qos_burst, bulk_vcs=bulk_vcs)
        self.kx, self.ky, self.x, self.y = kx, ky, x, y
        self.vcs, self.data_width, self.vc_depth = vcs, data_width, vc_depth
        self.max_packet_flits, self.qos_burst = max_packet_flits, qos_burst
        self.bulk_vcs = bulk_vcs
        self.link_vcs = link_vcs(vcs, bulk_vcs)
        #: Link VC of each class's packets when the class has one VC.
        self.tx_vc = [lane_vc(c, x, y, 0, 1) if c == 0 or bulk_vcs == 1 else None
                      for c in range(vcs)]
        link = LinkSignature(vcs=self.link_vcs, data_width=data_width)
        super().__init__({
            "i_streams": In(stream.Signature(tx_layout(kx, ky, data_width))).array(vcs),
            "o_streams": Out(stream.Signature(rx_layout(kx, ky, data_width))).array(vcs),
            "o_link": Out(link),
            "i_link": In(link),
        })
        self.credits = [Signal(range(vc_depth + 1), init=vc_depth, name=f"cred_{v}")
                        for v in range(self.link_vcs)]

    def elaborate(self, platform):
        m = Module()
        V, D, L = self.vcs, self.vc_depth, self.max_packet_flits
        hdr_layout = header_layout(self.kx, self.ky)
        flayout = flit_layout(self.data_width)

        # --- injection
        m.submodules.arb = arb = QosArbiter(n=V, burst=self.qos_burst)
        bx = coord_bits(self.kx)
        flits, vcs_now, sends = [], [], []
        for c in range(V):
            s = self.i_streams[c]
            # Bulk classes with several VCs: one lane per destination column
            # (see lane_vc); a rectangle spanning several columns is sent as
            # one column multicast per column, replayed from `buf`.
            split = c != 0 and self.bulk_vcs > 1
            in_pkt = Signal(name=f"in_pkt_{c}")
            count = Signal(range(L), name=f"count_{c}")
            flit = Signal(flayout, name=f"tx_flit_{c}")
            hdr = Signal(hdr_layout, name=f"tx_hdr_{c}")
            vc_now = Signal(range(self.link_vcs), name=f"tx_vc_{c}")
            send = Signal(name=f"tx_send_{c}")
            m.d.comb += [
                hdr.src_x.eq(self.x), hdr.src_y.eq(self.y),
                send.eq(arb.valid & (arb.index == c)),
            ]
            if not split:
                m.d.comb += [hdr.x0.eq(s.payload.x0), hdr.x1.eq(s.payload.x1),
                             hdr.y0.eq(s.payload.y0), hdr.y1.eq(s.payload.y1)]
                m.d.comb += vc_now.eq(self.tx_vc[c])
                with m.If(in_pkt):
                    m.d.comb += [
                        flit.data.eq(s.payload.data),
                        flit.tail.eq(s.payload.last | (count == L - 1)),
                    ]
                with m.Else():
                    m.d.comb += [flit.data.eq(hdr), flit.head.eq(1)]
                m.d.comb += s.ready.eq(send & in_pkt)
                with m.If(send):
                    with m.If(in_pkt & flit.tail):
                        m.d.sync += [in_pkt.eq(0), count.eq(0)]
                    with m.Else():
                        m.d.sync += [in_pkt.eq(1), count.eq(count + 1)]
                want = s.valid
            else:
                replay = Signal(name=f"tx_replay_{c}")
                multi = Signal(name=f"tx_multi_{c}")
                col = Signal(bx, name=f"tx_col_{c}")
                x1r = Signal(bx, name=f"tx_x1_{c}")
                y0r = Signal.like(hdr.y0, name=f"tx_y0_{c}")
                y1r = Signal.like(hdr.y1, name=f"tx_y1_{c}")
                nbeats = Signal(range(L), name=f"tx_nbeats_{c}")
                buf = [Signal(self.data_width, name=f"tx_buf_{c}_{i}") for i in range(L - 1)]
                p = s.payload
                ok = (p.x0 <= p.x1) & (p.y0 <= p.y1)
                # (no comparison against a constant the field width decides: lint-clean)
                if self.kx < 1 << len(p.x1):
                    ok = ok & (p.x1 < self.kx)
                if self.ky < 1 << len(p.y1):
                    ok = ok & (p.y1 < self.ky)
                col_now = Signal(bx, name=f"tx_col_now_{c}")
                m.d.comb += col_now.eq(Mux(in_pkt | replay, col, p.x0))
                with m.Switch(col_now):
                    for k in range(1 << bx):
                        with m.Case(k):
                            m.d.comb += vc_now.eq(lane_vc(c, self.x, self.y, k, self.bulk_vcs))
                beat = Signal(self.data_width, name=f"tx_beat_{c}")
                with m.Switch(count):
                    for i in range(1, L):
                        with m.Case(i):
                            m.d.comb += beat.eq(buf[i - 1])
                with m.If(in_pkt):
                    with m.If(replay):
                        m.d.comb += [flit.data.eq(beat), flit.tail.eq(count == nbeats)]
                    with m.Else():
                        m.d.comb += [
                            flit.data.eq(p.data),
                            flit.tail.eq(p.last | (count == L - 1)),
                        ]
                with m.Else():
                    m.d.comb += [flit.head.eq(1), flit.data.eq(hdr)]
                # Header: the replayed column, or the rectangle's first column.
                m.d.comb += [
                    hdr.x0.eq(Mux(replay, col, p.x0)),
                    hdr.x1.eq(Mux(replay, col, Mux(ok, p.x0, p.x1))),
                    hdr.y0.eq(Mux(replay, y0r, p.y0)),
                    hdr.y1.eq(Mux(replay, y1r, p.y1)),
                ]
                m.d.comb += s.ready.eq(send & in_pkt & ~replay)
                with m.If(send):
                    with m.If(~in_pkt):
                        m.d.sync += [in_pkt.eq(1), count.eq(1)]
                        with m.If(~replay):
                            m.d.sync += [col.eq(p.x0), x1r.eq(p.x1), y0r.eq(p.y0),
                                         y1r.eq(p.y1), multi.eq(ok & (p.x0 < p.x1))]
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
                        with m.If(~replay):
                            with m.Switch(count):
                                for i in range(1, L):
                                    with m.Case(i):
                                        m.d.sync += buf[i - 1].eq(p.data)
                        with m.If(flit.tail):
                            m.d.sync += [in_pkt.eq(0), count.eq(0)]
                            with m.If(~replay):
                                m.d.sync += nbeats.eq(count)
                            with m.If(multi & (col < x1r)):
                                m.d.sync += [replay.eq(1), col.eq(col + 1)]
                            with m.Else():
                                m.d.sync += replay.eq(0)
                want = s.valid | replay
            flits.append(flit)
            vcs_now.append(vc_now)
            sends.append(send)
            cred_ok = 0
            for v in range(self.link_vcs):
                if vc_class(v, self.bulk_vcs) == c:
                    cred_ok = cred_ok | ((vc_now == v) & (self.credits[v] != 0))
            m.d.comb += arb.requests[c].eq(want & cred_ok)
        for v in range(self.link_vcs):
            used = 0
            for c in range(V):
                if vc_class(v, self.bulk_vcs) == c:
                    used = used | (sends[c] & (vcs_now[c] == v))
            m.d.sync += self.credits[v].eq(self.credits[v] - used + self.o_link.credit[v])
        m.d.comb += arb.fire.eq(arb.valid)
        m.d.sync += self.o_link.valid.eq(arb.valid)
        with m.Switch(arb.index):
            for c in range(V):
                with m.Case(c):
                    m.d.sync += [self.o_link.flit.eq(flits[c]), self.o_link.vc.eq(vcs_now[c])]

        # --- ejection: one FIFO per link VC; the VCs of a class merge packet by packet.
        for c in range(V):
            o = self.o_streams[c]
            vcs = [v for v in range(self.link_vcs) if vc_class(v, self.bulk_vcs) == c]
            n = len(vcs)
            reqs, grants, fifos, srcs = [], [], [], []
            for v in vcs:
                m.submodules[f"rx_fifo_{v}"] = fifo = StreamFIFO(payload_shape=flayout, depth=D)
                src_x = Signal(o.payload.src_x.shape(), name=f"rx_src_x_{v}")
                src_y = Signal(o.payload.src_y.shape(), name=f"rx_src_y_{v}")
                head = fifo.o_stream.payload
                hdr = hdr_layout(head.data[:hdr_layout.size])
                m.d.comb += [
                    fifo.i_stream.valid.eq(self.i_link.valid & (self.i_link.vc == v)),
                    fifo.i_stream.payload.eq(self.i_link.flit),
                ]
                # The head flit is absorbed into the source register at once.
                with m.If(fifo.o_stream.valid & head.head):
                    m.d.sync += [src_x.eq(hdr.src_x), src_y.eq(hdr.src_y)]
                m.d.sync += self.i_link.credit[v].eq(fifo.o_stream.valid & fifo.o_stream.ready)
                reqs.append(fifo.o_stream.valid & ~head.head)
                fifos.append(fifo)
                srcs.append((src_x, src_y))
            if n == 1:
                grants = [1]
            else:
                # Choose a VC when its first beat is shown, keep it until the
                # last beat is taken (stream rule: payload stable while valid).
                m.submodules[f"rx_arb_{c}"] = rr = RoundRobinArbiter(n=n)
                locked = Signal(name=f"rx_locked_{c}")
                cur = Signal(range(n), name=f"rx_cur_{c}")
                sel = Signal(range(n), name=f"rx_sel_{c}")
                m.d.comb += [
                    rr.requests.eq(Cat(*reqs)),
                    sel.eq(Mux(locked, cur, rr.index)),
                    rr.advance.eq(o.valid & ~locked),
                ]
                grants = [sel == i for i in range(n)]
                with m.If(o.valid):
                    m.d.sync += [locked.eq(~(o.ready & o.payload.last)), cur.eq(sel)]
            valid = 0
            for i in range(n):
                fifo, head = fifos[i], fifos[i].o_stream.payload
                valid = valid | (grants[i] & reqs[i])
                with m.If(grants[i]):
                    m.d.comb += [
                        o.payload.data.eq(head.data),
                        o.payload.last.eq(head.tail),
                        o.payload.src_x.eq(srcs[i][0]),
                        o.payload.src_y.eq(srcs[i][1]),
                    ]
                m.d.comb += fifo.o_stream.ready.eq(head.head | (grants[i] & o.ready))
            m.d.comb += o.valid.eq(valid)
        return m
