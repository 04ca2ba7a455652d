"""Cluster: several tiles + cluster SRAM + cluster DMA on a NoC, one AXI4 HBM port.

* Every tile (``hw.tile.Tile``) and the cluster DMA are AXI4 masters; an
  :class:`AXIArbiter` merges them onto the cluster's ``m_axi`` port.
* A 1-D NoC mesh (``hw.noc.Mesh``, ``n_tiles + 1`` nodes) carries remote
  writes: node ``i < n_tiles`` is tile ``i``, node ``n_tiles`` the cluster
  SRAM. A DMA descriptor with ``dst_kind`` REMOTE writes to node
  ``addr >> NODE_SHIFT`` at SRAM byte address ``addr & (2**NODE_SHIFT - 1)``;
  each written word travels as one single-beat packet (address, strobes,
  data) on the bulk class and is written into that node's SRAM.
* The cluster DMA (descriptors from the host on ``cdma_desc``) moves data
  between HBM, the cluster SRAM and (remote) the tiles' SRAMs.
* With ``ext=True`` node ``n_tiles + 1`` is an *external* node: packets for it
  leave on ``ext_o`` and packets entering on ``ext_i`` reach any node (the chip
  puts the NIC bridge there, ``docs/chip.md``). A packet whose in-node address
  has bit ``NODE_SHIFT - 1`` set is then a *semaphore packet*: at a tile it
  increments the command-processor semaphore numbered by its word index
  instead of writing the SRAM.
* With ``cluster_id`` (a cluster of a chip, ``docs/chip.md``) addresses carry
  the cluster in ``addr[CLUSTER_SHIFT:]`` above a ``NODE_BITS`` node field: a
  write for another cluster, for the NIC node ``n_tiles + 1`` of any cluster
  field, or for a node this cluster does not have leaves on ``ext_o`` (the
  chip NoC drops and counts the bad ones). A write entering on ``ext_i`` for
  node ``BCAST_NODE`` is multicast to every tile of the cluster (one mesh
  packet, forked by the routers; the cluster SRAM and the external node
  ignore their copies): the chip's hierarchical broadcast.
"""
from dataclasses import dataclass, replace

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, StreamArbiter, saturate
from hw.common.params import check_choice, check_int, check_pow2
from hw.dma import DMAEngine
from hw.dma.axi import AXI4Signature
from hw.dma.descriptor import completion_layout
from hw.mem.sram import BankedSRAM, SRAMPortSignature
from hw.noc import Mesh

from .tile import Tile, TileParams

__all__ = ["AXIArbiter", "Cluster", "NODE_SHIFT", "NODE_BITS", "CLUSTER_SHIFT", "BCAST_NODE",
           "TOPS"]

#: Remote (NoC) byte addresses: node id above this bit.
NODE_SHIFT = 24
#: Width of the node field in a chip address (``docs/chip.md``).
NODE_BITS = 4
#: Cluster id position in a chip address (above the node field).
CLUSTER_SHIFT = NODE_SHIFT + NODE_BITS
#: Node field of a broadcast to every tile of a cluster (chip addresses).
BCAST_NODE = (1 << NODE_BITS) - 1

_AR = ("arid", "araddr", "arlen", "arsize", "arburst")
_AW = ("awid", "awaddr", "awlen", "awsize", "awburst")


class AXIArbiter(wiring.Component):
    """N AXI4 masters onto one port, one burst at a time per direction.

    Reads: an AR is granted (round-robin) only when no read burst is open;
    the R beats go back to that master until ``rlast``. Writes: an AW is
    granted when no write is open; that master's W beats follow until
    ``wlast`` and its B returns before the next AW. Simple and in order (no
    ID remapping); the tile DMAs keep their own bursts long (16 beats), so the
    lost overlap is small at this scale.
    """

    def __init__(self, *, n, addr_width, data_width):
        self._n = check_int("n", n, min=1, max=16)
        sig = AXI4Signature(addr_width=addr_width, data_width=data_width)
        super().__init__({
            "s_axi": In(sig).array(n),
            "m_axi": Out(sig),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        s, mm = self.s_axi, self.m_axi
        # --- read ---------------------------------------------------------
        m.submodules.rarb = rarb = RoundRobinArbiter(n=n)
        r_open = Signal()
        r_sel = Signal(range(n))
        _address_channel(m, rarb, s, mm, fields=_AR, valid="arvalid", ready="arready",
                         busy=r_open)
        with m.If(mm.arvalid & mm.arready):
            m.d.sync += [r_open.eq(1), r_sel.eq(rarb.index)]
        for i in range(n):
            m.d.comb += [s[i].rid.eq(mm.rid), s[i].rdata.eq(mm.rdata), s[i].rresp.eq(mm.rresp),
                         s[i].rlast.eq(mm.rlast),
                         s[i].rvalid.eq(mm.rvalid & r_open & (r_sel == i))]
        with m.Switch(r_sel):
            for i in range(n):
                with m.Case(i):
                    m.d.comb += mm.rready.eq(s[i].rready & r_open)
        with m.If(mm.rvalid & mm.rready & mm.rlast):
            m.d.sync += r_open.eq(0)
        # --- write --------------------------------------------------------
        m.submodules.warb = warb = RoundRobinArbiter(n=n)
        w_open = Signal()
        w_data = Signal()   # W beats still to pass
        w_sel = Signal(range(n))
        _address_channel(m, warb, s, mm, fields=_AW, valid="awvalid", ready="awready",
                         busy=w_open)
        with m.If(mm.awvalid & mm.awready):
            m.d.sync += [w_open.eq(1), w_data.eq(1), w_sel.eq(warb.index)]
        with m.Switch(w_sel):
            for i in range(n):
                with m.Case(i):
                    m.d.comb += [mm.wdata.eq(s[i].wdata), mm.wstrb.eq(s[i].wstrb),
                                 mm.wlast.eq(s[i].wlast), mm.wvalid.eq(s[i].wvalid & w_data),
                                 mm.bready.eq(s[i].bready & w_open)]
        for i in range(n):
            m.d.comb += [s[i].wready.eq(mm.wready & w_data & (w_sel == i)),
                         s[i].bid.eq(mm.bid), s[i].bresp.eq(mm.bresp),
                         s[i].bvalid.eq(mm.bvalid & w_open & (w_sel == i))]
        with m.If(mm.wvalid & mm.wready & mm.wlast):
            m.d.sync += w_data.eq(0)
        with m.If(mm.bvalid & mm.bready):
            m.d.sync += w_open.eq(0)
        return m


def _address_channel(m, arb, subs, main, *, fields, valid, ready, busy):
    """Round-robin grant of an address channel (AR or AW) while ``busy`` is low.

    The granted master's ``fields`` drive ``main``; only that master sees
    ``ready``. Shared by the read and write halves of :class:`AXIArbiter`.
    """
    n = len(subs)
    m.d.comb += [arb.requests[i].eq(getattr(subs[i], valid) & ~busy) for i in range(n)]
    m.d.comb += arb.advance.eq(getattr(main, valid) & getattr(main, ready))
    with m.Switch(arb.index):
        for i in range(n):
            with m.Case(i):
                m.d.comb += [getattr(main, f).eq(getattr(subs[i], f)) for f in fields]
    m.d.comb += getattr(main, valid).eq(arb.valid & ~busy)
    for i in range(n):
        m.d.comb += getattr(subs[i], ready).eq(
            getattr(main, ready) & ~busy & arb.valid & (arb.index == i))


def _packet_layout(addr_width, data_width):
    return data.StructLayout({"addr": addr_width, "strb": data_width // 8, "data": data_width})


@dataclass(frozen=True)
class ClusterParams:
    """Parameters of one cluster (validated at construction, by name).

    Parameters
    ----------
    n_tiles : int
        Tiles (NoC nodes ``0 .. n_tiles - 1``; the cluster SRAM is node ``n_tiles``).
    sram_size : int
        Cluster SRAM bytes.
    tile : TileParams
        Parameters of every tile.
    """
    n_tiles: int = 2
    sram_size: int = 16384
    tile: TileParams = TileParams()

    def __post_init__(self):
        check_int("n_tiles", self.n_tiles, min=1, max=15)
        check_pow2("sram_size", self.sram_size, min=1024)
        if not isinstance(self.tile, TileParams):
            raise TypeError(f"tile must be a TileParams, not {self.tile!r}")

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)


class Cluster(wiring.Component):
    """``n_tiles`` tiles, a cluster SRAM and a cluster DMA on a NoC; one AXI4 port.

    Parameters
    ----------
    params : ClusterParams
        Tiles, cluster SRAM size and the tiles' parameters.
    ext : bool
        Add the external node ``n_tiles + 1`` (``ext_i``/``ext_o``) and semaphore packets.
    cluster_id : int or None
        (``ext`` only) This cluster's id in chip addresses: writes whose cluster
        field differs, or whose node is not a local tile or the cluster SRAM,
        leave on ``ext_o``. ``None``: route by the node field alone (one cluster).

    Attributes
    ----------
    tiles : list of Tile
    t<i>__load, t<i>__start, t<i>__status, t<i>__host, t<i>__sems, t<i>__active, t<i>__macs
        Tile ``i``'s host-side ports (the tile's names with a ``t<i>__`` prefix).
    cdma_desc : In(stream)
        Cluster DMA descriptors.
    cdma_done : Out(stream)
        Cluster DMA completions ``{sem, err}``.
    chost : In(SRAMPortSignature)
        Host access to the cluster SRAM.
    m_axi : Out(AXI4Signature)
        The HBM port.
    noc_errors : Out(16)
        Malformed NoC packets (summed over nodes, saturating).
    ext_o : Out(stream.Signature(pkt))
        (``ext`` only) Packets for node ``n_tiles + 1``: ``{addr, strb, data}``.
    ext_i : In(stream.Signature(pkt))
        (``ext`` only) Packets into the cluster, routed by ``addr >> NODE_SHIFT``.
    """

    def __init__(self, *, params=ClusterParams(), ext=False, cluster_id=None):
        if not isinstance(params, ClusterParams):
            raise TypeError(f"params must be a ClusterParams, not {params!r}")
        self.params = params
        self.n_tiles = n_tiles = params.n_tiles
        self.ext = check_choice("ext", ext, (False, True))
        if cluster_id is not None:
            check_int("cluster_id", cluster_id, min=0, max=15)
            if not ext:
                raise ValueError("cluster_id needs ext=True (the chip NoC port)")
            if n_tiles + 3 > 1 << NODE_BITS:
                raise ValueError(f"n_tiles must be <= {(1 << NODE_BITS) - 3} in a chip "
                                 f"(node field of {NODE_BITS} bits: tiles, cluster SRAM, "
                                 f"NIC, broadcast), not {n_tiles}")
            if params.tile.addr_width < CLUSTER_SHIFT + NODE_BITS:
                raise ValueError(f"addr_width must be >= {CLUSTER_SHIFT + NODE_BITS} for "
                                 f"chip addresses, not {params.tile.addr_width}")
        self.cluster_id = cluster_id
        self.sram_size = sram_size = params.sram_size
        self.tiles = [Tile(params=params.tile) for _ in range(n_tiles)]
        t0 = params.tile
        self.word_bits = t0.word_bits
        self.addr_width = t0.addr_width
        self.csram = BankedSRAM(size=sram_size, banks=4, width=self.word_bits, ports=4)
        self.cdma = DMAEngine(addr_width=t0.addr_width, data_width=self.word_bits, dims=t0.dims,
                              n_local=1, sram_size=sram_size, hbm_size=t0.hbm_size, queues=2)
        self.pkt = _packet_layout(t0.addr_width, self.word_bits)
        nodes = n_tiles + 1 + self.ext
        self.kx = max(2, -(-nodes // 2))
        self.ky = 2
        self.mesh = Mesh(kx=self.kx, ky=self.ky, vcs=2, data_width=self.pkt.size, vc_depth=4,
                         max_packet_flits=2)
        members = {}
        for i, t in enumerate(self.tiles):
            for name in ("load", "start", "status", "sems", "host", "active", "macs", "errors",
                         "sem_inc"):
                members[f"t{i}__{name}"] = t.signature.members[name]
        cport = SRAMPortSignature(addr_width=self.csram.addr_width, data_width=self.word_bits)
        members.update({
            "cdma_desc": In(stream.Signature(self.cdma.desc_layout)),
            "cdma_done": Out(stream.Signature(completion_layout())),
            "chost": In(cport),
            "m_axi": Out(AXI4Signature(addr_width=t0.addr_width, data_width=self.word_bits)),
            "noc_errors": Out(16),
        })
        if self.ext:
            members["ext_o"] = Out(stream.Signature(self.pkt))
            members["ext_i"] = In(stream.Signature(self.pkt))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n = self.n_tiles
        wb = self.word_bits
        lw = (wb // 8 - 1).bit_length()
        m.submodules.csram = csram = self.csram
        m.submodules.cdma = cdma = self.cdma
        m.submodules.mesh = mesh = self.mesh
        m.submodules.axi = axi = AXIArbiter(n=n + 1, addr_width=self.addr_width, data_width=wb)
        wiring.connect(m, wiring.flipped(self.m_axi), axi.m_axi)
        sinks = []
        sources = []
        for i, t in enumerate(self.tiles):
            m.submodules[f"tile{i}"] = t
            for name in ("load", "host") + (() if self.ext else ("sem_inc",)):
                wiring.connect(m, wiring.flipped(getattr(self, f"t{i}__{name}")), getattr(t, name))
            m.d.comb += t.start.eq(getattr(self, f"t{i}__start"))
            for name in ("status", "sems", "active", "macs", "errors"):
                m.d.comb += getattr(self, f"t{i}__{name}").eq(getattr(t, name))
            wiring.connect(m, t.m_axi, axi.s_axi[i])
            sources.append(t.noc)
            sinks.append(t.noc_in)
        wiring.connect(m, cdma.m_axi, axi.s_axi[n])
        wiring.connect(m, wiring.flipped(self.cdma_desc), cdma.i_desc[0])
        m.d.comb += cdma.i_desc[1].valid.eq(0)
        wiring.connect(m, cdma.o_done, wiring.flipped(self.cdma_done))
        wiring.connect(m, wiring.flipped(self.chost), csram.ports[0])
        wiring.connect(m, cdma.sram_rd, csram.ports[1])
        wiring.connect(m, cdma.sram_wr[0], csram.ports[2])
        sources.append(cdma.noc)
        sinks.append(csram.ports[3])
        if self.ext:
            sources.append(self.ext_i)
            sinks.append(None)

        nb = (len(sources) - 1).bit_length()
        kx = self.kx
        for node in range(len(sources), kx * self.ky):   # unused mesh nodes
            for c in range(2):
                m.d.comb += [mesh.i_streams[node][c].valid.eq(0),
                             mesh.o_streams[node][c].ready.eq(1)]
        for node, (src, dst) in enumerate(zip(sources, sinks)):
            # Injection: one single-beat packet per remote write, bulk class.
            inj = mesh.i_streams[node][1]
            dest = src.payload.addr[NODE_SHIFT:NODE_SHIFT + nb]
            if self.cluster_id is not None and node != n + 1:
                # Chip addresses: only this cluster's tiles and SRAM stay local.
                a = src.payload.addr
                local = ((a[CLUSTER_SHIFT:] == self.cluster_id)
                         & (a[NODE_SHIFT:CLUSTER_SHIFT] <= n))
                dest = Mux(local, a[NODE_SHIFT:CLUSTER_SHIFT], n + 1)
            dx, dy = Signal(range(kx)), Signal(range(self.ky))
            m.d.comb += [dx.eq(dest % kx), dy.eq(dest // kx)]
            p = data.View(self.pkt, inj.payload.data)
            m.d.comb += [
                inj.valid.eq(src.valid), src.ready.eq(inj.ready),
                p.addr.eq(src.payload.addr), p.strb.eq(src.payload.strb),
                p.data.eq(src.payload.data), inj.payload.last.eq(1),
                inj.payload.x0.eq(dx), inj.payload.x1.eq(dx),
                inj.payload.y0.eq(dy), inj.payload.y1.eq(dy),
            ]
            if self.cluster_id is not None and node == n + 1:
                # A broadcast from the chip NoC: one multicast over the whole mesh.
                with m.If(src.payload.addr[NODE_SHIFT:CLUSTER_SHIFT] == BCAST_NODE):
                    m.d.comb += [inj.payload.x0.eq(0), inj.payload.x1.eq(kx - 1),
                                 inj.payload.y0.eq(0), inj.payload.y1.eq(self.ky - 1)]
            m.d.comb += mesh.i_streams[node][0].valid.eq(0)
            ej = mesh.o_streams[node][1]
            q = data.View(self.pkt, ej.payload.data)
            # Chip broadcast copies for the cluster SRAM and the external node
            # (the multicast's own source) are not for them.
            bcast = 0
            if self.cluster_id is not None and node >= n:
                bcast = q.addr[NODE_SHIFT:CLUSTER_SHIFT] == BCAST_NODE
                if node == n + 1:
                    bcast = bcast & (ej.payload.src_x == node % kx) & (ej.payload.src_y
                                                                        == node // kx)
            if dst is None:
                # External node: packets leave the cluster as they are.
                m.d.comb += [
                    self.ext_o.valid.eq(ej.valid & ~bcast),
                    ej.ready.eq(self.ext_o.ready | bcast),
                    self.ext_o.payload.eq(q),
                    mesh.o_streams[node][0].ready.eq(1),
                ]
                continue
            if self.ext and node < n:
                # Semaphore packets to a tile's command processor, merged with
                # the host's increments; the mesh delivers them in order after
                # the same source's earlier writes.
                arb = StreamArbiter(payload_shape=self.tiles[node].sem_inc.payload.shape(), n=2)
                m.submodules[f"sem_arb{node}"] = arb
                wiring.connect(m, wiring.flipped(getattr(self, f"t{node}__sem_inc")),
                               arb.i_streams[0])
                wiring.connect(m, arb.o_stream, self.tiles[node].sem_inc)
                is_sem = q.addr[NODE_SHIFT - 1]
                sem = arb.i_streams[1]
                m.d.comb += [sem.valid.eq(ej.valid & is_sem), sem.payload.eq(q.addr[lw:]),
                             dst.req.valid.eq(ej.valid & ~is_sem),
                             ej.ready.eq(Mux(is_sem, sem.ready, dst.req.ready)),
                             dst.req.payload.addr.eq(q.addr[lw:NODE_SHIFT]),
                             dst.req.payload.we.eq(1), dst.req.payload.wstrb.eq(q.strb),
                             dst.req.payload.wdata.eq(q.data), dst.rsp.ready.eq(1),
                             mesh.o_streams[node][0].ready.eq(1)]
                continue
            # Ejection: write into the node's SRAM.
            req = dst.req
            m.d.comb += [
                req.valid.eq(ej.valid & ~bcast), ej.ready.eq(req.ready | bcast),
                req.payload.addr.eq(q.addr[lw:NODE_SHIFT]), req.payload.we.eq(1),
                req.payload.wstrb.eq(q.strb), req.payload.wdata.eq(q.data),
                dst.rsp.ready.eq(1),
                mesh.o_streams[node][0].ready.eq(1),
            ]
        # Each router saturates on its own; their sum is wide enough never to wrap.
        total = Signal(16 + (kx * self.ky).bit_length())
        m.d.comb += total.eq(sum(mesh.errors[i] for i in range(kx * self.ky)))
        m.d.comb += self.noc_errors.eq(saturate(total, len(self.noc_errors)))
        return m


TOPS = {
    "integration_cluster": lambda: Cluster(),
}
