"""Flit and header formats, link signature and the XY / rectangle-multicast route function.

Everything that crosses a router boundary is defined here once, so the
router, the network interface, the mesh generator, the golden model
(:mod:`sim.noc`) and the testbenches agree on one format.

Flit (``flit_layout``), LSB first::

    data : data_width   head flit: the header below; body/tail flit: payload
    head : 1            first flit of a packet
    tail : 1            last flit of a packet (a packet is >= 2 flits: head + data)

Header (``header_layout``, in the low bits of a head flit's ``data``)::

    x0, x1 : clog2(kx)  destination columns x0..x1 (inclusive)
    y0, y1 : clog2(ky)  destination rows    y0..y1 (inclusive)
    src_x  : clog2(kx)  source column
    src_y  : clog2(ky)  source row

A unicast packet has ``x0 == x1`` and ``y0 == y1``; any other rectangle is a
multicast. The QoS class is the virtual channel the packet travels on (the
``vc`` field of the link), so it is not repeated in the header.
"""
from amaranth.hdl import Cat, Const, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int

__all__ = ["LOCAL", "NORTH", "EAST", "SOUTH", "WEST", "PORTS", "PORT_NAMES",
           "coord_bits", "flit_layout", "header_layout", "LinkSignature", "route_mask",
           "check_noc_params", "link_vcs", "vc_class", "lane_vc"]

#: Router port indices. North is towards y - 1, south towards y + 1.
LOCAL, NORTH, EAST, SOUTH, WEST = range(5)
PORTS = 5
PORT_NAMES = ("local", "north", "east", "south", "west")


def coord_bits(k):
    """Bits of one coordinate of a ``k``-wide mesh dimension (at least 1)."""
    return max(1, (k - 1).bit_length())


def header_layout(kx, ky):
    """:class:`~amaranth.lib.data.StructLayout` of the head-flit header."""
    bx, by = coord_bits(kx), coord_bits(ky)
    return data.StructLayout({
        "x0": bx, "x1": bx, "y0": by, "y1": by, "src_x": bx, "src_y": by,
    })


def flit_layout(data_width):
    """:class:`~amaranth.lib.data.StructLayout` of one flit."""
    return data.StructLayout({"data": data_width, "head": 1, "tail": 1})


class LinkSignature(wiring.Signature):
    """One direction of a router-to-router link, credit-based (no ``ready``).

    Members (as seen by the sender, ``Out``): ``valid``, ``vc`` and ``flit``
    go forward; ``credit`` (one bit per VC, ``In``) comes back, one credit per
    flit the receiver has taken out of that VC's buffer. A sender never sends
    on a VC without a credit, so the receiver never has to refuse a flit.
    """

    def __init__(self, *, vcs, data_width):
        self.vcs = check_int("vcs", vcs, min=1)
        self.data_width = check_int("data_width", data_width, min=1)
        super().__init__({
            "valid": Out(1),
            "vc": Out(range(vcs)),
            "flit": Out(flit_layout(data_width)),
            "credit": In(vcs),
        })


def link_vcs(vcs, bulk_vcs=1):
    """Virtual channels on a link: one control VC, ``bulk_vcs`` per bulk class."""
    return 1 + (vcs - 1) * bulk_vcs


def vc_class(vc, bulk_vcs=1):
    """QoS class of link VC ``vc`` (a Python int)."""
    return 0 if vc == 0 else 1 + (vc - 1) // bulk_vcs


def lane_vc(cls, x, y, col, bulk_vcs=1):
    """Link VC of a class-``cls`` packet from node ``(x, y)`` to destination column ``col``.

    Class 0 (control) has VC 0. A bulk class has ``bulk_vcs`` VCs, and a
    packet uses lane ``(col + x + y) % bulk_vcs`` of its class end to end.
    Every packet of a (source, destination, class) flow, multicast copies
    included (the network interface sends one multicast per destination
    column), rides one VC, so plain FIFOs keep flows in order; on a row,
    packets of one source to different columns use different VCs (no
    head-of-line blocking between them), and in a column packets of
    different sources are spread over the VCs.
    """
    if cls == 0:
        return 0
    return 1 + (cls - 1) * bulk_vcs + (col + x + y) % bulk_vcs


def check_noc_params(*, kx, ky, vcs, data_width, vc_depth, max_packet_flits, qos_burst,
                     bulk_vcs=1, x=None, y=None):
    """Validate the parameters every NoC block shares; raise naming the bad one.

    ``x``, ``y`` (a node's coordinates, for the router and the NI) must lie in the mesh.
    """
    check_int("kx", kx, min=1, max=256)
    check_int("ky", ky, min=1, max=256)
    if x is not None:
        check_int("x", x, min=0, max=kx - 1)
    if y is not None:
        check_int("y", y, min=0, max=ky - 1)
    check_int("vcs", vcs, min=2, max=16)
    check_int("bulk_vcs", bulk_vcs, min=1, max=16)
    if link_vcs(vcs, bulk_vcs) > 32:
        raise ValueError(f"bulk_vcs must keep 1 + (vcs - 1) * bulk_vcs <= 32, not {bulk_vcs}")
    check_int("data_width", data_width, min=1)
    check_int("vc_depth", vc_depth, min=2)
    check_int("max_packet_flits", max_packet_flits, min=2)
    check_int("qos_burst", qos_burst, min=1, max=255)
    hdr = header_layout(kx, ky).size
    if data_width < hdr:
        raise ValueError(f"data_width must be >= {hdr} (the header of a {kx}x{ky} mesh), "
                         f"not {data_width}")
    if max_packet_flits > vc_depth:
        raise ValueError(f"max_packet_flits must be <= vc_depth ({vc_depth}): a VC is only "
                         f"allocated when the whole packet fits, not {max_packet_flits}")


def route_mask(hdr, *, in_port, x, y, kx, ky):
    """Output-port bitmask (bit ``LOCAL`` .. ``WEST``) for a header arriving on ``in_port``.

    Dimension-ordered (X then Y) tree multicast to the rectangle
    ``[x0, x1] x [y0, y1]``. A packet in the X phase (injected locally or
    arriving from east/west) keeps going east/west while destination columns
    remain on that side, and in every destination column forks north/south
    (and to the local port if the row is in range). A packet in the Y phase
    (arriving from north/south) only keeps its direction. For a unicast
    rectangle this is plain XY routing. A malformed rectangle (``x0 > x1``,
    ``y0 > y1`` or outside the mesh) gives an empty mask: the router drops
    the packet and counts an error.

    Works on Amaranth values (``hdr`` a view of :func:`header_layout`) and
    returns a 5-bit value.
    """
    x0, x1, y0, y1 = (Value.cast(hdr.x0), Value.cast(hdr.x1),
                      Value.cast(hdr.y0), Value.cast(hdr.y1))

    # Comparisons against constants that are decided by the field width are
    # folded here, so the Verilog has no constant comparisons (lint-clean).
    def lt(a, c):  # a < c
        if c <= 0:
            return Const(0, 1)
        if c >= 1 << len(a):
            return Const(1, 1)
        return a < c

    def gt(a, c):  # a > c
        if c < 0:
            return Const(1, 1)
        if c >= (1 << len(a)) - 1:
            return Const(0, 1)
        return a > c

    ok = (x0 <= x1) & (y0 <= y1) & lt(x1, kx) & lt(y1, ky)
    col = ~gt(x0, x) & ~lt(x1, x)
    row = ~gt(y0, y) & ~lt(y1, y)
    zero = Const(0, 1)
    if in_port in (LOCAL, EAST, WEST):
        east = gt(x1, x) if in_port != EAST else zero
        west = lt(x0, x) if in_port != WEST else zero
        north = col & lt(y0, y)
        south = col & gt(y1, y)
        local = col & row
    else:
        east = west = zero
        north = lt(y0, y) if in_port == SOUTH else zero
        south = gt(y1, y) if in_port == NORTH else zero
        local = row
    return Cat(local, north, east, south, west) & ok.replicate(PORTS)
