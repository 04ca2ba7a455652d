"""Chip top: several clusters joined by a chip NoC, each with its own AXI4 HBM port, and the ATL NIC.

Every cluster's host ports and HBM port are brought out with a ``c<k>__``
prefix, the NIC's configuration, wire and status ports with ``nic__``.
Every cluster has its external NoC node (``hw.cluster.Cluster(ext=True,
cluster_id=k)``, node ``tiles_per_cluster + 1``); a chip NoC
(:class:`hw.noc.WordMesh`, the same routers, credits, VCs and QoS classes as a
cluster's) joins these nodes and a :class:`hw.nic.bridge.NicBridge` in front of
the NIC. A chip NoC address is ``cluster << CLUSTER_SHIFT | node << NODE_SHIFT
| offset`` (``docs/chip.md``):

* node ``< tiles_per_cluster``: tile SRAM (or, with offset bit ``NODE_SHIFT - 1``,
  a command-processor semaphore), node ``tiles_per_cluster``: cluster SRAM, of
  that cluster; any tile's DMA (``dst_kind`` REMOTE) reaches any of them;
* node ``tiles_per_cluster + 1`` (whatever the cluster field): the NIC, with the
  cluster field as NIC flow: ``offset`` is the peer's memory offset ``key <<
  sram_bits | byte`` (a WRITE; ``key`` = the peer's ``cluster << 4 | node``), or,
  with bit ``NODE_SHIFT - 1`` set, the *doorbell* of peer NIC semaphore ``offset
  >> lw`` (a SEM, ordered after every earlier WRITE of the flow);
* anything else is a bad destination: dropped and counted (``noc__dropped``).

Received bytes become word writes into the addressed node's SRAM, and peer
NIC semaphore ``k`` increments command-processor semaphore ``sem_base + k %
node_sems`` of chip tile ``k // node_sems`` (tile ``t`` of cluster ``c`` is chip
tile ``c * tiles_per_cluster + t``) once the bytes before it are written.
"""
from dataclasses import dataclass, field, replace

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.common import check_int, forward, prefixed
from hw.nic import Nic
from hw.nic.bridge import NicBridge
from hw.noc.word_mesh import WordMesh

from .cluster import BCAST_NODE, CLUSTER_SHIFT, NODE_BITS, NODE_SHIFT, Cluster, ClusterParams

__all__ = ["Chip", "ChipParams", "TOPS", "NODE_SHIFT", "CLUSTER_SHIFT", "BCAST_NODE",
           "BCAST_CLUSTER", "chip_address", "chip_dests"]

#: Cluster field of a broadcast to every cluster (with node ``BCAST_NODE``).
BCAST_CLUSTER = (1 << NODE_BITS) - 1


def chip_address(cluster, node, offset=0):
    """Chip NoC byte address of ``offset`` in ``node`` of ``cluster`` (see the module doc)."""
    return cluster << CLUSTER_SHIFT | node << NODE_SHIFT | offset


def chip_dests(n_clusters, tiles_per_cluster, *, nic=True):
    """Chip NoC routing table: key ``cluster << NODE_BITS | node`` -> chip NoC client.

    Client ``c < n_clusters`` is cluster ``c`` (its tiles and cluster SRAM,
    and ``BCAST_NODE``: all its tiles), client ``n_clusters`` the NIC bridge (node
    ``tiles_per_cluster + 1`` with any cluster field, the flow), left out with
    ``nic=False``. Key ``BCAST_CLUSTER << NODE_BITS | BCAST_NODE`` (every tile of
    every cluster) maps to the rectangle of the whole chip mesh.
    """
    from hw.noc.word_mesh import mesh_shape
    d = {c << NODE_BITS | node: c for c in range(n_clusters)
         for node in (*range(tiles_per_cluster + 1), BCAST_NODE)}
    kx, ky = mesh_shape(n_clusters + 1)
    d[BCAST_CLUSTER << NODE_BITS | BCAST_NODE] = (0, kx - 1, 0, ky - 1)
    if nic:
        d.update({f << NODE_BITS | tiles_per_cluster + 1: n_clusters
                  for f in range(1 << NODE_BITS)})
    return d

#: NIC ports that the chip wires internally (to the bridge).
_NIC_INTERNAL = ("i_posts", "o_mem")
#: Bridge counters brought out as ``bridge__<name>``.
_BRIDGE_STATUS = ("tx_bytes", "rx_bytes", "tx_errors", "rx_errors")


@dataclass(frozen=True)
class ChipParams:
    """Parameters of one chip (validated at construction, by name).

    Parameters
    ----------
    n_clusters : int
        Clusters (each with its own ``c<k>__m_axi`` HBM port).
    cluster : ClusterParams
        Parameters of every cluster (and through it, of every tile).
    nic : dict
        Keyword parameters of the NIC beyond the defaults ``ports=2, flows=2,
        window=8, payload=64``; ``mem_bits`` and ``n_sems`` default to what the
        bridge needs (and must equal it if given).
    node_sems : int
        NIC semaphores per tile (power of two).
    sem_base : int
        First command-processor semaphore the NIC can increment.
    """
    n_clusters: int = 2
    cluster: ClusterParams = ClusterParams(n_tiles=1)
    nic: dict = field(default_factory=dict)
    node_sems: int = 4
    sem_base: int = 8

    def __post_init__(self):
        check_int("n_clusters", self.n_clusters, min=1, max=15)
        if not isinstance(self.cluster, ClusterParams):
            raise TypeError(f"cluster must be a ClusterParams, not {self.cluster!r}")
        if self.cluster.n_tiles + 3 > 1 << NODE_BITS:
            raise ValueError(f"cluster n_tiles must be <= {(1 << NODE_BITS) - 3} in a chip "
                             f"(the NIC is node n_tiles + 1, broadcast node "
                             f"{(1 << NODE_BITS) - 1}), not {self.cluster.n_tiles}")
        object.__setattr__(self, "nic", dict(self.nic))

    @property
    def tiles_per_cluster(self):
        return self.cluster.n_tiles

    @property
    def tile(self):
        """The parameters of every tile."""
        return self.cluster.tile

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)


class Chip(wiring.Component):
    """``n_clusters`` clusters of ``tiles_per_cluster`` tiles and a NIC on one chip NoC.

    Parameters
    ----------
    params : ChipParams
        Clusters, their tiles, the NIC and the NIC-to-tile semaphore mapping.

    Attributes
    ----------
    c<k>__<member>
        Cluster ``k``'s ports (without ``ext_i``/``ext_o``, wired to the chip NoC).
    nic__<member>
        NIC ports except ``i_posts``/``o_mem`` (wired to the bridge, every flow):
        ``mac``, ``peer_macs``, ``o_ports``, ``i_ports``, ``sems`` and the event
        counters.
    bridge__tx_bytes, bridge__rx_bytes, bridge__tx_errors, bridge__rx_errors : Out
        The bridge's counters.
    noc__dropped : Out(16)
        Chip NoC writes dropped for a bad destination (saturating).
    noc__errors : Out(16)
        Chip NoC router drops (malformed flits; never expected).
    """

    def __init__(self, *, params=ChipParams()):
        if not isinstance(params, ChipParams):
            raise TypeError(f"params must be a ChipParams, not {params!r}")
        self.params = params
        self.n_clusters = params.n_clusters
        self.tiles_per_cluster = tiles_per_cluster = params.tiles_per_cluster
        node_sems, sem_base, nic = params.node_sems, params.sem_base, params.nic
        nc = params.n_clusters
        self.clusters = [Cluster(params=params.cluster, ext=True, cluster_id=k)
                         for k in range(nc)]
        c0 = self.clusters[0]
        t0 = c0.tiles[0]
        #: NoC node of the NIC bridge (in every cluster field).
        self.nic_node = tiles_per_cluster + 1
        sram_bits = (max(t0.params.sram_size, c0.sram_size) - 1).bit_length()
        kw = dict(ports=2, flows=2, window=8, payload=64)
        kw.update(nic or {})
        wbytes = c0.word_bits // 8
        # WRITE messages of whole words, as long as the NIC payload allows.
        # Received bytes reach any key ``cluster << 4 | node`` up to the last
        # cluster's SRAM; NIC semaphore k -> chip tile k // node_sems.
        self.bridge = NicBridge(word_bits=c0.word_bits, addr_width=c0.addr_width,
                                node_shift=NODE_SHIFT, sram_bits=sram_bits,
                                n_nodes=((nc - 1) << NODE_BITS) + tiles_per_cluster + 1,
                                nic_sems=nc * tiles_per_cluster * node_sems, node_sems=node_sems,
                                sem_base=sem_base,
                                coalesce=max(wbytes, kw["payload"] // wbytes * wbytes),
                                flows=kw["flows"], flow_shift=CLUSTER_SHIFT,
                                sem_nodes=[c << NODE_BITS | t for c in range(nc)
                                           for t in range(tiles_per_cluster)])
        # Chip NoC: client k = cluster k's external node, client nc = the bridge.
        self.noc = WordMesh(n=nc + 1, addr_width=c0.addr_width, word_bits=c0.word_bits,
                            key_shift=NODE_SHIFT, key_bits=8,
                            dests=[chip_dests(nc, tiles_per_cluster)] * nc
                            + [chip_dests(nc, tiles_per_cluster, nic=False)])
        for name, need in (("mem_bits", self.bridge.mem_bits),
                           ("n_sems", self.bridge.nic_sems)):
            if kw.setdefault(name, need) != need:
                raise ValueError(f"nic {name} must be {need} (the bridge's), not {kw[name]}")
        self.nic_params = kw
        self.nic = Nic(**kw)
        members = {}
        for k, c in enumerate(self.clusters):
            members.update(prefixed(c, f"c{k}__", skip=("ext_i", "ext_o")))
        members.update(prefixed(self.nic, "nic__", skip=_NIC_INTERNAL))
        for name in _BRIDGE_STATUS:
            members[f"bridge__{name}"] = Out(self.bridge.signature.members[name].shape)
        members["noc__dropped"] = Out(16)
        members["noc__errors"] = Out(16)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for k, c in enumerate(self.clusters):
            m.submodules[f"cluster{k}"] = c
            forward(m, self, c, prefix=f"c{k}__", skip=("ext_i", "ext_o"))
        m.submodules.nic = nic = self.nic
        forward(m, self, nic, prefix="nic__", skip=_NIC_INTERNAL)
        m.submodules.bridge = br = self.bridge
        m.submodules.noc = noc = self.noc
        nc = self.n_clusters
        for k, c in enumerate(self.clusters):
            wiring.connect(m, c.ext_o, noc.i_streams[k])
            wiring.connect(m, noc.o_streams[k], c.ext_i)
        wiring.connect(m, br.o_noc, noc.i_streams[nc])
        # The bridge's copy of a chip-wide broadcast is not for the NIC.
        to_br = noc.o_streams[nc]
        bcast = to_br.payload.addr[NODE_SHIFT:CLUSTER_SHIFT] == BCAST_NODE
        m.d.comb += [br.i_noc.valid.eq(to_br.valid & ~bcast), br.i_noc.payload.eq(to_br.payload),
                     to_br.ready.eq(br.i_noc.ready | bcast)]
        # The bridge's posts go to the flow named by the request's cluster field.
        post = br.o_post
        for f, ip in enumerate(nic.i_posts):
            sel = (br.o_flow == f) if len(nic.i_posts) > 1 else 1
            m.d.comb += [ip.valid.eq(post.valid & sel), ip.payload.eq(post.payload)]
            with m.If(sel):
                m.d.comb += post.ready.eq(ip.ready)
        wiring.connect(m, nic.o_mem, br.i_mem)
        m.d.comb += [self.noc__dropped.eq(noc.dropped), self.noc__errors.eq(noc.errors)]
        m.d.comb += br.sems.eq(nic.sems)
        for name in _BRIDGE_STATUS:
            m.d.comb += getattr(self, f"bridge__{name}").eq(getattr(br, name))
        return m


TOPS = {
    "integration_chip": lambda: Chip(),
    "nic_bridge": lambda: NicBridge(coalesce=64),
}
