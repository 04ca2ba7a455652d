"""Word-write network: a :class:`~hw.noc.mesh.Mesh` whose clients speak ``{addr, strb, data}``."""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, saturate

from .address_router import AddressRouter, word_packet_layout
from .mesh import Mesh

__all__ = ["WordMesh", "mesh_shape"]


def mesh_shape(nodes):
    """``(kx, ky)`` of the smallest mesh used for ``nodes`` clients: one row up to 3,
    then two rows (every node then is at most ``kx`` hops from every other)."""
    check_int("nodes", nodes, min=1, max=256)
    ky = 1 if nodes <= 3 else 2
    return max(2, -(-nodes // ky)), ky


class WordMesh(wiring.Component):
    """``n`` clients exchanging word writes over a mesh, routed by an address key.

    Client ``j`` is mesh node ``j``. Its writes enter through an
    :class:`~hw.noc.address_router.AddressRouter` with table ``dests[j]`` (key ->
    client) and travel on the bulk class (class 1) as single-beat packets; the
    mesh keeps one source's packets to one destination in order (XY routing,
    one VC per class). Class 0 (control) is unused here. Writes with a key not in
    the table are dropped and counted (``dropped``); malformed flits counted by the
    routers add to ``errors``.

    Parameters
    ----------
    n : int
        Clients.
    addr_width, word_bits : int
        Packet widths.
    key_shift, key_bits : int
        Destination key position in ``addr``.
    dests : list of dict
        Per client, key -> destination client, or -> a rectangle ``(x0, x1, y0,
        y1)`` of the mesh (:func:`mesh_shape`) for a multicast.
    vc_depth : int
        Flits per VC buffer in the routers (4: one packet plus the credit round trip).

    Attributes
    ----------
    i_streams : In(stream.Signature(word_packet_layout)).array(n)
        Writes from client ``j``.
    o_streams : Out(stream.Signature(word_packet_layout)).array(n)
        Writes to client ``j``.
    dropped : Out(16)
        Bad destinations (summed over clients, saturating).
    errors : Out(16)
        Packets dropped by the routers (never for packets this block builds).
    """

    def __init__(self, *, n, addr_width, word_bits, key_shift, key_bits, dests, vc_depth=4):
        self.n = check_int("n", n, min=1, max=64)
        if not isinstance(dests, (list, tuple)) or len(dests) != n:
            raise ValueError(f"dests must be a list of {n} dicts, not {dests!r}")
        for d in dests:
            for k, j in dict(d).items():
                if isinstance(j, tuple):
                    continue    # a rectangle of mesh nodes (checked by the router)
                if not isinstance(j, int) or not 0 <= j < n:
                    raise ValueError(f"dests must name clients 0..{n - 1}, not {j!r} (key {k})")
        self.kx, self.ky = mesh_shape(n)
        self.pkt = word_packet_layout(addr_width, word_bits)
        self.routers = [AddressRouter(addr_width=addr_width, word_bits=word_bits,
                                      key_shift=key_shift, key_bits=key_bits, kx=self.kx,
                                      ky=self.ky, dests=d) for d in dests]
        self.mesh = Mesh(kx=self.kx, ky=self.ky, vcs=2, data_width=self.pkt.size,
                         vc_depth=vc_depth, max_packet_flits=2)
        super().__init__({
            "i_streams": In(stream.Signature(self.pkt)).array(n),
            "o_streams": Out(stream.Signature(self.pkt)).array(n),
            "dropped": Out(16),
            "errors": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mesh = mesh = self.mesh
        nodes = self.kx * self.ky
        for j in range(nodes):
            # Class 0 is unused; nodes without a client never receive a packet.
            m.d.comb += [mesh.i_streams[j][0].valid.eq(0), mesh.o_streams[j][0].ready.eq(1)]
            if j >= self.n:
                m.d.comb += [mesh.i_streams[j][1].valid.eq(0), mesh.o_streams[j][1].ready.eq(1)]
        for j, r in enumerate(self.routers):
            m.submodules[f"route{j}"] = r
            wiring.connect(m, wiring.flipped(self.i_streams[j]), r.i_stream)
            wiring.connect(m, r.o_stream, mesh.i_streams[j][1])
            ej, o = mesh.o_streams[j][1], self.o_streams[j]
            m.d.comb += [o.valid.eq(ej.valid), ej.ready.eq(o.ready),
                         o.payload.eq(data.View(self.pkt, ej.payload.data))]
        drop = Signal(16 + self.n.bit_length())
        m.d.comb += drop.eq(sum(r.errors for r in self.routers))
        err = Signal(16 + nodes.bit_length())
        m.d.comb += err.eq(sum(mesh.errors[j] for j in range(nodes)))
        m.d.comb += [self.dropped.eq(saturate(drop, 16)), self.errors.eq(saturate(err, 16))]
        return m
