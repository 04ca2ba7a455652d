"""Chip top: several clusters, each with its own AXI4 HBM port, and the ATL NIC.

Every cluster's host ports and HBM port are brought out with a ``c<k>__``
prefix, the NIC's configuration, wire and status ports with ``nic__``.
Cluster 0 has the external NoC node (``hw.cluster.Cluster(ext=True)``, node
``tiles_per_cluster + 1``) where a :class:`hw.nic.bridge.NicBridge` joins the
NoC to NIC flow 0:

* a tile DMA descriptor with ``dst_kind`` REMOTE and ``dst = (tiles_per_cluster
  + 1) << NODE_SHIFT | offset`` sends words to the peer chip: ``offset`` is the
  peer's memory offset ``node << sram_bits | byte`` (a WRITE), or, with bit
  ``NODE_SHIFT - 1`` set, the *doorbell* of peer NIC semaphore ``offset >> lw``
  (a SEM, ordered after every earlier WRITE of the flow);
* received bytes become word writes into the addressed node's SRAM, and peer
  NIC semaphore ``k`` increments command-processor semaphore ``sem_base + k %
  node_sems`` of tile ``k // node_sems`` once the bytes before it are written.

See ``docs/chip.md`` for the address map, timing and the two-chip all-reduce.
"""
from dataclasses import dataclass, field, replace

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.common import check_int, forward, prefixed
from hw.nic import Nic
from hw.nic.bridge import NicBridge

from .cluster import NODE_SHIFT, Cluster, ClusterParams

__all__ = ["Chip", "ChipParams", "TOPS", "NODE_SHIFT"]

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
        check_int("n_clusters", self.n_clusters, min=1, max=16)
        if not isinstance(self.cluster, ClusterParams):
            raise TypeError(f"cluster must be a ClusterParams, not {self.cluster!r}")
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
    """``n_clusters`` clusters of ``tiles_per_cluster`` tiles, plus a NIC on cluster 0's NoC.

    Parameters
    ----------
    params : ChipParams
        Clusters, their tiles, the NIC and the NIC-to-tile semaphore mapping.

    Attributes
    ----------
    c<k>__<member>
        Cluster ``k``'s ports (without ``ext_i``/``ext_o``, wired to the bridge).
    nic__<member>
        NIC ports except ``i_posts``/``o_mem`` (wired to the bridge; flows
        other than 0 are idle): ``mac``, ``peer_macs``, ``o_ports``,
        ``i_ports``, ``sems`` and the event counters.
    bridge__tx_bytes, bridge__rx_bytes, bridge__tx_errors, bridge__rx_errors : Out
        The bridge's counters.
    """

    def __init__(self, *, params=ChipParams()):
        if not isinstance(params, ChipParams):
            raise TypeError(f"params must be a ChipParams, not {params!r}")
        self.params = params
        self.n_clusters = params.n_clusters
        self.tiles_per_cluster = tiles_per_cluster = params.tiles_per_cluster
        node_sems, sem_base, nic = params.node_sems, params.sem_base, params.nic
        self.clusters = [Cluster(params=params.cluster, ext=(k == 0))
                         for k in range(params.n_clusters)]
        c0 = self.clusters[0]
        t0 = c0.tiles[0]
        #: NoC node of the NIC bridge in cluster 0.
        self.nic_node = tiles_per_cluster + 1
        sram_bits = (max(t0.params.sram_size, c0.sram_size) - 1).bit_length()
        kw = dict(ports=2, flows=2, window=8, payload=64)
        kw.update(nic or {})
        wbytes = c0.word_bits // 8
        # WRITE messages of whole words, as long as the NIC payload allows.
        self.bridge = NicBridge(word_bits=c0.word_bits, addr_width=c0.addr_width,
                                node_shift=NODE_SHIFT, sram_bits=sram_bits,
                                n_nodes=tiles_per_cluster + 1,
                                nic_sems=tiles_per_cluster * node_sems, node_sems=node_sems,
                                sem_base=sem_base,
                                coalesce=max(wbytes, kw["payload"] // wbytes * wbytes))
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
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for k, c in enumerate(self.clusters):
            m.submodules[f"cluster{k}"] = c
            forward(m, self, c, prefix=f"c{k}__", skip=("ext_i", "ext_o"))
        m.submodules.nic = nic = self.nic
        forward(m, self, nic, prefix="nic__", skip=_NIC_INTERNAL)
        m.submodules.bridge = br = self.bridge
        c0 = self.clusters[0]
        wiring.connect(m, c0.ext_o, br.i_noc)
        wiring.connect(m, br.o_noc, c0.ext_i)
        wiring.connect(m, br.o_post, nic.i_posts[0])
        for f in range(1, len(nic.i_posts)):
            m.d.comb += nic.i_posts[f].valid.eq(0)
        wiring.connect(m, nic.o_mem, br.i_mem)
        m.d.comb += br.sems.eq(nic.sems)
        for name in _BRIDGE_STATUS:
            m.d.comb += getattr(self, f"bridge__{name}").eq(getattr(br, name))
        return m


TOPS = {
    "integration_chip": lambda: Chip(),
    "nic_bridge": lambda: NicBridge(coalesce=64),
}
