"""Network interface: stream packets <-> flits on a router's local port."""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import StreamFIFO, check_int

from .packet import LinkSignature, check_noc_params, coord_bits, flit_layout, header_layout
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

    Ejection: each VC has a ``vc_depth`` FIFO (the router's credits for its
    local port assume exactly that); the head flit is consumed into a source
    register and every body flit becomes one beat on ``o_streams[c]``,
    ``last`` on the tail flit (so a split packet arrives as several packets).

    Parameters
    ----------
    kx, ky, x, y, vcs, data_width, vc_depth, max_packet_flits, qos_burst
        As for :class:`~hw.noc.router.Router`.

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
                 max_packet_flits=4, qos_burst=4):
        check_noc_params(kx=kx, ky=ky, vcs=vcs, data_width=data_width, vc_depth=vc_depth,
                         max_packet_flits=max_packet_flits, qos_burst=qos_burst)
        check_int("x", x, min=0, max=kx - 1)
        check_int("y", y, min=0, max=ky - 1)
        self.kx, self.ky, self.x, self.y = kx, ky, x, y
        self.vcs, self.data_width, self.vc_depth = vcs, data_width, vc_depth
        self.max_packet_flits, self.qos_burst = max_packet_flits, qos_burst
        link = LinkSignature(vcs=vcs, data_width=data_width)
        super().__init__({
            "i_streams": In(stream.Signature(tx_layout(kx, ky, data_width))).array(vcs),
            "o_streams": Out(stream.Signature(rx_layout(kx, ky, data_width))).array(vcs),
            "o_link": Out(link),
            "i_link": In(link),
        })
        self.credits = [Signal(range(vc_depth + 1), init=vc_depth, name=f"cred_{c}")
                        for c in range(vcs)]

    def elaborate(self, platform):
        m = Module()
        V, D, L = self.vcs, self.vc_depth, self.max_packet_flits
        hdr_layout = header_layout(self.kx, self.ky)
        flayout = flit_layout(self.data_width)

        # --- injection
        m.submodules.arb = arb = QosArbiter(n=V, burst=self.qos_burst)
        flits = []
        for c in range(V):
            s = self.i_streams[c]
            in_pkt = Signal(name=f"in_pkt_{c}")
            count = Signal(range(L), name=f"count_{c}")
            flit = Signal(flayout, name=f"tx_flit_{c}")
            hdr = Signal(hdr_layout, name=f"tx_hdr_{c}")
            m.d.comb += [
                hdr.x0.eq(s.payload.x0), hdr.x1.eq(s.payload.x1),
                hdr.y0.eq(s.payload.y0), hdr.y1.eq(s.payload.y1),
                hdr.src_x.eq(self.x), hdr.src_y.eq(self.y),
            ]
            with m.If(in_pkt):
                m.d.comb += [
                    flit.data.eq(s.payload.data),
                    flit.tail.eq(s.payload.last | (count == L - 1)),
                ]
            with m.Else():
                m.d.comb += [flit.data.eq(hdr), flit.head.eq(1)]
            flits.append(flit)
            m.d.comb += arb.requests[c].eq(s.valid & (self.credits[c] != 0))
            send = arb.valid & (arb.index == c)
            m.d.comb += s.ready.eq(send & in_pkt)
            with m.If(send):
                with m.If(in_pkt & flit.tail):
                    m.d.sync += [in_pkt.eq(0), count.eq(0)]
                with m.Else():
                    m.d.sync += [in_pkt.eq(1), count.eq(count + 1)]
            m.d.sync += self.credits[c].eq(self.credits[c] - send + self.o_link.credit[c])
        m.d.comb += arb.fire.eq(arb.valid)
        m.d.sync += [self.o_link.valid.eq(arb.valid), self.o_link.vc.eq(arb.index)]
        with m.Switch(arb.index):
            for c in range(V):
                with m.Case(c):
                    m.d.sync += self.o_link.flit.eq(flits[c])

        # --- ejection
        for c in range(V):
            m.submodules[f"rx_fifo_{c}"] = fifo = StreamFIFO(payload_shape=flayout, depth=D)
            o = self.o_streams[c]
            src_x = Signal(self.o_streams[c].payload.src_x.shape(), name=f"rx_src_x_{c}")
            src_y = Signal(self.o_streams[c].payload.src_y.shape(), name=f"rx_src_y_{c}")
            head = fifo.o_stream.payload
            hdr = hdr_layout(head.data[:hdr_layout.size])
            m.d.comb += [
                fifo.i_stream.valid.eq(self.i_link.valid & (self.i_link.vc == c)),
                fifo.i_stream.payload.eq(self.i_link.flit),
                o.valid.eq(fifo.o_stream.valid & ~head.head),
                o.payload.data.eq(head.data),
                o.payload.last.eq(head.tail),
                o.payload.src_x.eq(src_x),
                o.payload.src_y.eq(src_y),
                fifo.o_stream.ready.eq(head.head | o.ready),
            ]
            with m.If(fifo.o_stream.valid & head.head):
                m.d.sync += [src_x.eq(hdr.src_x), src_y.eq(hdr.src_y)]
            m.d.sync += self.i_link.credit[c].eq(fifo.o_stream.valid & fifo.o_stream.ready)
        return m
