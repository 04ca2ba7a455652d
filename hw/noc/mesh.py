"""Mesh generator: ``kx`` x ``ky`` routers, each with a network interface."""
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .ni import NetworkInterface, rx_layout, tx_layout
from .packet import EAST, LOCAL, NORTH, SOUTH, WEST, check_noc_params
from .router import Router

__all__ = ["Mesh"]


class Mesh(wiring.Component):
    """A ``kx`` x ``ky`` mesh of :class:`Router` + :class:`NetworkInterface` nodes.

    Node ``n = y * kx + x``. East/west links join ``(x, y)`` and ``(x + 1, y)``,
    north/south links join ``(x, y)`` and ``(x, y + 1)``. Ports at the mesh
    edge stay unconnected (XY routing never selects them).

    Parameters
    ----------
    kx, ky : int
        Mesh size.
    vcs, data_width, vc_depth, max_packet_flits, qos_burst, bulk_vcs
        As for :class:`~hw.noc.router.Router` (``vcs``: QoS classes).

    Attributes
    ----------
    i_streams : In(stream.Signature(tx_layout)).array(kx * ky, vcs)
        Injection stream of node ``n``, class ``c``.
    o_streams : Out(stream.Signature(rx_layout)).array(kx * ky, vcs)
        Ejection stream of node ``n``, class ``c``.
    errors : Out(16).array(kx * ky)
        Per-router dropped-packet counters.
    """

    def __init__(self, *, kx, ky, vcs=2, data_width=32, vc_depth=8, max_packet_flits=4,
                 qos_burst=4, bulk_vcs=1):
        self.params = dict(kx=kx, ky=ky, vcs=vcs, data_width=data_width, vc_depth=vc_depth,
                           max_packet_flits=max_packet_flits, qos_burst=qos_burst,
                           bulk_vcs=bulk_vcs)
        check_noc_params(**self.params)
        self.kx, self.ky, self.vcs = kx, ky, vcs
        n = kx * ky
        super().__init__({
            "i_streams": In(stream.Signature(tx_layout(kx, ky, data_width))).array(n, vcs),
            "o_streams": Out(stream.Signature(rx_layout(kx, ky, data_width))).array(n, vcs),
            "errors": Out(16).array(n),
        })

    def elaborate(self, platform):
        m = Module()
        kx, ky = self.kx, self.ky
        routers = {}
        for y in range(ky):
            for x in range(kx):
                n = y * kx + x
                r = routers[x, y] = Router(x=x, y=y, **self.params)
                ni = NetworkInterface(x=x, y=y, **self.params)
                m.submodules[f"router_{x}_{y}"] = r
                m.submodules[f"ni_{x}_{y}"] = ni
                wiring.connect(m, ni.o_link, r.i_links[LOCAL])
                wiring.connect(m, r.o_links[LOCAL], ni.i_link)
                for c in range(self.vcs):
                    wiring.connect(m, wiring.flipped(self.i_streams[n][c]), ni.i_streams[c])
                    wiring.connect(m, ni.o_streams[c], wiring.flipped(self.o_streams[n][c]))
                m.d.comb += self.errors[n].eq(r.errors)
        for y in range(ky):
            for x in range(kx):
                r = routers[x, y]
                if x + 1 < kx:
                    e = routers[x + 1, y]
                    wiring.connect(m, r.o_links[EAST], e.i_links[WEST])
                    wiring.connect(m, e.o_links[WEST], r.i_links[EAST])
                if y + 1 < ky:
                    s = routers[x, y + 1]
                    wiring.connect(m, r.o_links[SOUTH], s.i_links[NORTH])
                    wiring.connect(m, s.o_links[NORTH], r.i_links[SOUTH])
        return m
