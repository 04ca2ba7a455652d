"""Chip top: several clusters, each with its own AXI4 HBM port, and the ATL NIC.

The clusters (``hw.cluster.Cluster``) and the NIC (``hw.nic.Nic``) sit side by
side; every cluster's host ports and HBM port are brought out with a
``c<k>__`` prefix, the NIC's ports with ``nic__``. Not yet wired: NIC
received payload (``nic__o_mem``) into a cluster SRAM and NIC semaphores into
tile command processors (see ``docs/tile.md``, "Not done").
"""
from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.common.params import check_int
from hw.nic import Nic

from .cluster import Cluster

__all__ = ["Chip", "TOPS"]


class Chip(wiring.Component):
    """``n_clusters`` clusters of ``tiles_per_cluster`` tiles, plus a NIC.

    Parameters
    ----------
    n_clusters : int
        Clusters (each with its own ``c<k>__m_axi`` HBM port).
    tiles_per_cluster : int
        Tiles per cluster.
    tile : dict
        Keyword parameters of every tile.
    nic : dict
        Keyword parameters of the NIC.
    """

    def __init__(self, *, n_clusters=2, tiles_per_cluster=1, tile=None, nic=None):
        self.n_clusters = check_int("n_clusters", n_clusters, min=1, max=16)
        self.tiles_per_cluster = check_int("tiles_per_cluster", tiles_per_cluster, min=1, max=15)
        self.clusters = [Cluster(n_tiles=tiles_per_cluster, tile=tile)
                         for _ in range(n_clusters)]
        self.nic = Nic(**(nic or dict(ports=2, flows=2, window=8, payload=64)))
        members = {}
        for k, c in enumerate(self.clusters):
            for name, mem in c.signature.members.items():
                members[f"c{k}__{name}"] = mem
        for name, mem in self.nic.signature.members.items():
            members[f"nic__{name}"] = mem
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for k, c in enumerate(self.clusters):
            m.submodules[f"cluster{k}"] = c
            self._forward(m, c, f"c{k}__")
        m.submodules.nic = self.nic
        self._forward(m, self.nic, "nic__")
        return m

    def _forward(self, m, sub, prefix):
        for name, mem in sub.signature.members.items():
            outer, inner = getattr(self, prefix + name), getattr(sub, name)
            if mem.is_port:
                if mem.flow == wiring.In:
                    m.d.comb += inner.eq(outer)
                else:
                    m.d.comb += outer.eq(inner)
            elif mem.is_signature and not isinstance(inner, list):
                if mem.flow == wiring.In:
                    wiring.connect(m, wiring.flipped(outer), inner)
                else:
                    wiring.connect(m, inner, wiring.flipped(outer))
            else:   # arrays of interfaces
                for o, i in zip(_flat(outer), _flat(inner)):
                    if mem.flow == wiring.In:
                        wiring.connect(m, wiring.flipped(o), i)
                    else:
                        wiring.connect(m, i, wiring.flipped(o))


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [y for e in x for y in _flat(e)]
    return [x]


TOPS = {
    "integration_chip": lambda: Chip(),
}
