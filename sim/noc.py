"""Golden model of the on-chip network (:mod:`hw.noc`).

Bit-exact for everything a test can compare: header and flit encodings,
the route function (output-port mask of every router, multicast tree
included), the packetisation done by the network interface, the set and
order of deliveries, and the zero-load latency in cycles.
"""
from collections import defaultdict

from hw.common.layout import pack, unpack
from hw.noc.packet import (EAST, LOCAL, NORTH, PORTS, SOUTH, WEST, coord_bits, flit_layout,
                           header_layout, lane_vc, link_vcs, vc_class)
from hw.noc.router import HOP_CYCLES

__all__ = ["LOCAL", "NORTH", "EAST", "SOUTH", "WEST", "PORTS", "coord_bits",
           "header_fields", "pack_header", "unpack_header", "pack_flit", "unpack_flit",
           "route_mask", "multicast_tree", "destinations", "split_packet", "Expected",
           "HOP_CYCLES", "zero_load_latency", "link_vcs", "lane_vc", "vc_class",
           "injected_packets"]

#: (dx, dy) of the neighbour behind each port.
STEP = {NORTH: (0, -1), EAST: (1, 0), SOUTH: (0, 1), WEST: (-1, 0)}
#: Input port on the neighbour for a flit leaving through each port.
OPPOSITE = {NORTH: SOUTH, SOUTH: NORTH, EAST: WEST, WEST: EAST}



def header_fields(kx, ky):
    """``[(name, width), ...]`` LSB first, of :func:`hw.noc.packet.header_layout`."""
    return [(name, f.width) for name, f in header_layout(kx, ky)]


def pack_header(kx, ky, **fields):
    for name, width in header_fields(kx, ky):
        assert 0 <= fields[name] < 1 << width, (name, fields[name])
    return pack(header_layout(kx, ky), fields)


def unpack_header(kx, ky, value):
    return unpack(header_layout(kx, ky), value)


def pack_flit(data_width, data, *, head, tail):
    """Integer of one :func:`hw.noc.packet.flit_layout` flit."""
    assert 0 <= data < 1 << data_width
    return pack(flit_layout(data_width), {"data": data, "head": int(head), "tail": int(tail)})


def unpack_flit(data_width, value):
    """``(data, head, tail)`` of a flit integer."""
    f = unpack(flit_layout(data_width), value)
    return f["data"], f["head"], f["tail"]


def route_mask(hdr, *, in_port, x, y, kx, ky):
    """Output-port bitmask, as :func:`hw.noc.packet.route_mask`."""
    x0, x1, y0, y1 = hdr["x0"], hdr["x1"], hdr["y0"], hdr["y1"]
    if not (x0 <= x1 and y0 <= y1 and x1 < kx and y1 < ky):
        return 0
    col = x0 <= x <= x1
    row = y0 <= y <= y1
    if in_port in (LOCAL, EAST, WEST):
        east = x1 > x and in_port != EAST
        west = x0 < x and in_port != WEST
        north = col and y0 < y
        south = col and y1 > y
        local = col and row
    else:
        east = west = False
        north = in_port == SOUTH and y0 < y
        south = in_port == NORTH and y1 > y
        local = row
    return sum(int(b) << i for i, b in enumerate([local, north, east, south, west]))


def multicast_tree(kx, ky, src, rect):
    """Walk the route function from ``src``; return ``(ejections, links)``.

    ``ejections`` lists the nodes ``(x, y)`` a packet is delivered to (with
    repetitions, if any); ``links`` lists ``((x, y), out_port)`` traversed.
    """
    hdr = dict(zip(("x0", "x1", "y0", "y1"), rect))
    ejections, links = [], []
    todo = [(src, LOCAL)]
    while todo:
        (x, y), port = todo.pop()
        mask = route_mask(hdr, in_port=port, x=x, y=y, kx=kx, ky=ky)
        for o in range(PORTS):
            if not mask >> o & 1:
                continue
            if o == LOCAL:
                ejections.append((x, y))
                continue
            dx, dy = STEP[o]
            nx, ny = x + dx, y + dy
            assert 0 <= nx < kx and 0 <= ny < ky, "route leaves the mesh"
            links.append(((x, y), o))
            todo.append(((nx, ny), OPPOSITE[o]))
    return ejections, links


def destinations(kx, ky, rect):
    """Nodes of the rectangle ``(x0, x1, y0, y1)``; empty when malformed."""
    x0, x1, y0, y1 = rect
    if not (x0 <= x1 and y0 <= y1 and x1 < kx and y1 < ky):
        return []
    return [(x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]


def split_packet(beats, max_packet_flits):
    """How the network interface cuts a stream packet into network packets."""
    n = max_packet_flits - 1
    return [beats[i:i + n] for i in range(0, len(beats), n)]


def injected_packets(kx, ky, rect, cls, bulk_vcs=1):
    """Rectangles the network interface sends for one network packet.

    With several VCs per bulk class, a well-formed rectangle spanning several
    columns becomes one column multicast per column (each on its column's
    lane); otherwise the rectangle is sent as is.
    """
    x0, x1, y0, y1 = rect
    ok = x0 <= x1 and y0 <= y1 and x1 < kx and y1 < ky
    if cls == 0 or bulk_vcs == 1 or not ok:
        return [rect]
    return [(x, x, y0, y1) for x in range(x0, x1 + 1)]


def zero_load_latency(hops, beats):
    """Cycles from a packet's first beat offered (``valid``) to the source
    interface to its last beat taken from the destination interface, with an
    empty network and ready sinks.

    ``hops`` routers are crossed (``hops = manhattan distance + 1``): the head
    flit leaves the source interface in the cycle its first beat is offered,
    spends one cycle on the injection link, :data:`HOP_CYCLES` per router and
    one cycle in the ejection FIFO, where it is consumed; then one beat per
    cycle follows (the first beat in the cycle after the head).
    """
    return 1 + HOP_CYCLES * hops + 1 + beats


class Expected:
    """Scoreboard: what every destination must receive, in order per (src, dst, class).

    ``send(src, rect, cls, beats)`` records a stream packet; ``receive(dst,
    cls, src, beats)`` checks one delivered network packet against the oldest
    outstanding one of that (src, dst, class). :meth:`check_done` asserts
    nothing is outstanding.
    """

    def __init__(self, kx, ky, max_packet_flits):
        self.kx, self.ky, self.L = kx, ky, max_packet_flits
        self.pending = defaultdict(list)  # (src, dst, cls) -> [beats, ...] in order
        self.sent = 0
        self.received = 0

    def send(self, src, rect, cls, beats):
        for dst in destinations(self.kx, self.ky, rect):
            for part in split_packet(list(beats), self.L):
                self.pending[src, dst, cls].append(part)
                self.sent += 1

    def receive(self, dst, cls, src, beats):
        queue = self.pending.get((src, dst, cls))
        assert queue, f"unexpected packet at {dst} class {cls} from {src}: {beats}"
        want = queue.pop(0)
        assert list(beats) == want, \
            f"packet {src}->{dst} class {cls}: got {list(beats)}, expected {want}"
        self.received += 1

    def outstanding(self):
        return sum(len(q) for q in self.pending.values())

    def check_done(self):
        left = {k: len(v) for k, v in self.pending.items() if v}
        assert not left, f"packets never delivered: {left}"
