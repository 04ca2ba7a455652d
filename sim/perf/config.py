"""Chip parameters for the performance model, with two presets.

``MAIA200`` uses only the published architectural figures (the Maia 200
descriptions in ``shared/seeds`` and the figures issue 22 quotes; each field's
source is in ``docs/perf.md``, table "Maia 200 preset"). Where the sources give
no number the field is either derived from published ones (the tile count from
the peak rate, the cluster SRAM from the SRAM total) or left without a limit
(``dma_bytes_per_cycle=None``: the on-die fabric's rate is not published), and
``docs/perf.md`` says which. ``PROTOTYPE`` is the RTL as built here:
:func:`prototype` derives it from the hardware's parameter object
(``hw.cluster.ClusterParams``) and latencies.

Every preset is validated at construction: a zero rate, a non-positive size or
a tile SRAM that cannot hold one double-buffered TTU block raises
``ValueError`` naming the parameter.
"""
import math
from dataclasses import dataclass, field, replace

#: Bits per element of each operand format, including the E8M0 block scale
#: amortised over a block of 32 (8 bits / 32 elements = 0.25 bit).
ELEMENT_BITS = {
    "fp4": 4 + 0.25,
    "fp6": 6 + 0.25,
    "fp8": 8 + 0.25,
    "bf16": 16,
    "fp32": 32,
}

#: Elements sharing one E8M0 scale: K is padded to whole blocks.
MX_BLOCK = 32


@dataclass(frozen=True)
class ChipConfig:
    """Parameters of one chip (all rates per chip unless named per tile).

    ``ttu_k`` maps an operand format to the TTU's reduction depth per cycle:
    a tile does ``ttu_rows * ttu_k[fmt] * ttu_cols`` MACs per cycle.
    ``dma_bytes_per_cycle`` is the rate at which one tile's SRAM is filled
    (``None``: not a limit of the model, only HBM is).
    """
    name: str
    clusters: int
    tiles_per_cluster: int
    ttu_rows: int
    ttu_cols: int
    ttu_k: dict
    clock_hz: float
    tile_sram_bytes: int
    total_sram_bytes: int
    hbm_bytes_per_s: float
    tvp_lanes: int               # FP32 elementwise lanes per tile
    nic_ports: int
    nic_bits_per_s: float        # per port
    dma_bytes_per_cycle: object  # per tile (SRAM fill bandwidth); None = no limit
    cluster_sram_bytes: int = 0  # per cluster (0: none)
    hbm_capacity_bytes: float = 0  # 0: not checked
    fcq_size: int = 4            # chips of a fully connected quad (tier 1)
    fcq_ports_per_peer: int = 7  # NIC ports from a chip to each FCQ peer; the rest go to tier 2
    eth_mtu: int = 1500          # Ethernet payload bytes per frame (ATL header included)
    eth_wire_overhead_bytes: int = 38  # preamble+SFD 8, header 14, FCS 4, inter-frame gap 12
    atl_header_bytes: int = 16
    link_latency_s: float = 2e-6  # per collective step (message latency); see docs/perf.md
    ttu_fill_cycles: int = 0     # pipeline fill + drain of one output tile
    dma_latency_cycles: int = 0  # descriptor in -> completion out, beyond the data beats
    ttu_pe_latency: int = 0      # TTU beat-to-result latency beyond the array's skew
    # Tile-level timing for the schedule replay (sim.perf.tile); see docs/perf.md.
    cp_dispatch_cycles: int = 0  # command processor: instruction to next instruction
    cp_halt_cycles: int = 0      # last completion to every queue DONE
    ttu_cmd_cycles: int = 0      # TTU feeder: record fetch, command, done handshake
    tvp_hazard_gap: int = 0      # TVP: issue to the first dependent issue
    tvp_latency: int = 0         # TVP: issue to result
    tvp_act_latency: int = 0     # TVP: issue to result of an activation-chain op (GELU, ...)
    tvp_cmd_cycles: int = 0      # TVP feeder: record fetch and done handshake
    dma_fetch_cycles: int = 0    # DMA feeder: descriptor fetch from SRAM
    dma_row_cycles: float = 0    # DMA engine: least cycles per row (short rows)
    dma_gap_cycles: int = 0      # DMA engine: between back-to-back descriptors' data
    noc_hop_cycles: int = 0      # NoC: cycles per router crossed by a head flit
    nic_frame_overhead_bytes: int = 34   # Ethernet header 14 + ATL header 16 + FCS 4
    nic_min_frame_bytes: int = 64
    nic_header_cycles: int = 0   # NIC: header write into the retransmit buffer
    nic_fixed_cycles: int = 0    # NIC: post accept, receive checks and placement
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        def positive(name, integer=True, allow_none=False, allow_zero=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if integer:
                ok = ok and float(v).is_integer()
            if not ok or v < 0 or (v == 0 and not allow_zero):
                raise ValueError(f"{name} must be {'a non-negative' if allow_zero else 'a positive'} "
                                 f"{'integer' if integer else 'number'}, not {v!r}")
        for name in ("clusters", "tiles_per_cluster", "ttu_rows", "ttu_cols", "tile_sram_bytes",
                     "total_sram_bytes", "tvp_lanes", "nic_ports", "fcq_size", "eth_mtu"):
            positive(name)
        for name in ("clock_hz", "hbm_bytes_per_s", "nic_bits_per_s"):
            positive(name, integer=False)
        positive("dma_bytes_per_cycle", integer=False, allow_none=True)
        positive("cluster_sram_bytes", allow_zero=True)
        positive("hbm_capacity_bytes", integer=False, allow_zero=True)
        positive("fcq_ports_per_peer", allow_zero=True)
        positive("link_latency_s", integer=False, allow_zero=True)
        if not isinstance(self.ttu_k, dict) or not self.ttu_k:
            raise ValueError(f"ttu_k must map formats to K, not {self.ttu_k!r}")
        for f, kv in self.ttu_k.items():
            if f not in ELEMENT_BITS:
                raise ValueError(f"ttu_k: unknown format {f!r} (of {sorted(ELEMENT_BITS)})")
            if not isinstance(kv, int) or isinstance(kv, bool) or kv < 1:
                raise ValueError(f"ttu_k[{f!r}] must be a positive integer, not {kv!r}")
        if self.fcq_size > 1 and (self.fcq_size - 1) * self.fcq_ports_per_peer > self.nic_ports:
            raise ValueError(f"fcq_ports_per_peer={self.fcq_ports_per_peer}: {self.fcq_size - 1} peers "
                             f"need more than nic_ports={self.nic_ports}")
        if self.eth_mtu <= self.atl_header_bytes:
            raise ValueError(f"eth_mtu={self.eth_mtu} must exceed atl_header_bytes={self.atl_header_bytes}")
        for f in self.ttu_k:
            need = self.min_block_bytes(f)
            if need > self.tile_sram_bytes:
                raise ValueError(f"tile_sram_bytes={self.tile_sram_bytes} cannot hold one TTU block "
                                 f"({self.ttu_rows} x {self.ttu_k[f]} x {self.ttu_cols} {f}, double "
                                 f"buffered, with its FP32 accumulators and output: {need:.0f} bytes)")

    def min_block_bytes(self, fmt, out_fmt="bf16"):
        """Tile SRAM bytes of the smallest GEMM block: one TTU step of A and B, double
        buffered (K padded to an MX block), FP32 accumulators and a double output buffer."""
        r, c = self.ttu_rows, self.ttu_cols
        kt = math.ceil(self.ttu_k[fmt] / MX_BLOCK) * MX_BLOCK
        return (2 * (r + c) * kt * ELEMENT_BITS[fmt] / 8 + 4 * r * c
                + 2 * r * c * ELEMENT_BITS[out_fmt] / 8)

    @property
    def tiles(self):
        return self.clusters * self.tiles_per_cluster

    def macs_per_cycle(self, fmt):
        """MACs per cycle of the whole chip for operands in ``fmt``."""
        if fmt not in self.ttu_k:
            raise ValueError(f"fmt must be one of {sorted(self.ttu_k)}, not {fmt!r}")
        return self.tiles * self.ttu_rows * self.ttu_k[fmt] * self.ttu_cols

    def peak_flops(self, fmt):
        """Dense peak FLOP/s (2 FLOPs per MAC)."""
        return 2 * self.macs_per_cycle(fmt) * self.clock_hz

    def hbm_bytes_per_cycle(self):
        return self.hbm_bytes_per_s / self.clock_hz

    def port_payload_bytes_per_s(self):
        """Payload bytes per second of one NIC port with full frames (``eth_mtu``)."""
        payload = self.eth_mtu - self.atl_header_bytes
        wire = self.eth_mtu + self.eth_wire_overhead_bytes
        return self.nic_bits_per_s / 8 * payload / wire

    @property
    def tier2_ports(self):
        """NIC ports of a chip that go to the second tier (not to FCQ peers)."""
        return self.nic_ports - (self.fcq_size - 1) * self.fcq_ports_per_peer

    def with_(self, **kw):
        return replace(self, **kw)


def maia200():
    """The Maia 200 preset: every figure's source is in docs/perf.md ("Maia 200 preset")."""
    from hw.ttu.array import PIPELINE_LATENCY
    return ChipConfig(
        name="maia200",
        clusters=4,
        tiles_per_cluster=10,
        ttu_rows=32,
        ttu_cols=32,
        ttu_k={"fp4": 64, "fp6": 32, "fp8": 32, "bf16": 8},
        clock_hz=2.0e9,
        tile_sram_bytes=3 * 2**20,
        total_sram_bytes=272 * 10**6,
        # The SRAM that is not tile SRAM, split over the clusters: (272 MB - 40 x 3 MiB) / 4.
        cluster_sram_bytes=(272 * 10**6 - 40 * 3 * 2**20) // 4,
        hbm_bytes_per_s=7.0e12,
        hbm_capacity_bytes=216e9,
        tvp_lanes=64,
        nic_ports=28,
        nic_bits_per_s=400e9,
        # The on-die NoC / DMA rates are not published: no per-tile fill limit.
        dma_bytes_per_cycle=None,
        fcq_size=4,
        # Not published: 28 ports = 4 groups of 7, one group to each FCQ peer and one to tier 2.
        fcq_ports_per_peer=7,
        # Not published: the drain of hw.ttu's output-stationary wavefront at the published
        # shape (rows + cols skew + the PE pipeline latency).
        ttu_fill_cycles=32 + 32 + PIPELINE_LATENCY,
        notes={"published": "10+ PFLOPS FP4, 5+ PFLOPS FP8, 216 GB HBM3e at 7 TB/s, "
                            "272 MB SRAM, 2.8 TB/s bidirectional scale-up, 6,144 chips in two tiers"},
    )


def ttu_k_of(formats, packed):
    """MACs per PE and cycle for each format of a TTU built with ``formats``/``packed``.

    A packed TTU takes two narrow (FP6/FP4) elements per lane and cycle; every
    other format, and every format of an unpacked TTU, one.
    """
    from hw.common.mx import narrow_of
    narrow = narrow_of(formats) if packed else ()
    k = {"fp4": 1, "fp6": 1, "fp8": 1, "bf16": 1}
    for f in narrow:
        k[f.split("_")[0]] = 2
    return k


def tvp_timing():
    """``(hazard_gap, latency)`` of ``hw.tvp.TVP``, read from the hardware class."""
    from hw.tvp import TVP
    _, gap, latency = TVP.timing()
    return gap, latency


def prototype(cluster=None, *, clock_hz=100e6):
    """The preset of the RTL built from ``cluster`` (``hw.cluster.ClusterParams``).

    Sizes come from the parameter object and latencies from the hardware
    classes; the remaining constants are cycle counts of the RTL's state
    machines or measured once (each says which), never fitted to the results
    they are checked against.
    """
    from hw.cluster import ClusterParams
    from hw.nic.atl_header import ETH_HDR_BYTES, HEADER_BYTES
    from hw.nic.eth import FCS_BYTES, MIN_FRAME
    from hw.noc.router import HOP_CYCLES
    from hw.ttu.array import PIPELINE_LATENCY
    cluster = ClusterParams() if cluster is None else cluster
    tile = cluster.tile
    gap, tvp_latency = tvp_timing()
    from hw.tvp import TVP
    return ChipConfig(
        name="prototype",
        clusters=1,
        tiles_per_cluster=cluster.n_tiles,
        ttu_rows=tile.n,
        ttu_cols=tile.n,
        # The tile's TTU is built unpacked (hw.tile.Tile): one element per lane and cycle.
        ttu_k=ttu_k_of(tile.formats, packed=False),
        clock_hz=clock_hz,
        tile_sram_bytes=tile.sram_size,
        total_sram_bytes=cluster.n_tiles * tile.sram_size + cluster.sram_size,
        cluster_sram_bytes=cluster.sram_size,
        # One AXI beat of one SRAM word per cycle.
        hbm_bytes_per_s=tile.word_bytes * clock_hz,
        tvp_lanes=tile.n,
        nic_ports=3,
        # A quad of prototypes: one port to each peer, no second tier.
        fcq_ports_per_peer=1,
        # hw.nic: one byte per cycle per port.
        nic_bits_per_s=8 * clock_hz,
        dma_bytes_per_cycle=tile.word_bytes,
        # Descriptor decode (3), AR issue, the AXI read round trip, realignment,
        # the W/B round trip and the completion FIFO: measured 15 at every size.
        dma_latency_cycles=15,
        # An accepted activation beat reaches PE (0, 0)'s result PIPELINE_LATENCY
        # cycles later (input register, edge decode, multiply, block sum, shared FP32 tail).
        ttu_pe_latency=PIPELINE_LATENCY,
        ttu_fill_cycles=2 * tile.n + PIPELINE_LATENCY,
        # hw.cp: 2 cycles fetch/decode + 1 acquire/act (docs/cp.md).
        cp_dispatch_cycles=3,
        cp_halt_cycles=3,
        # hw.tile.TTUFeeder: IDLE, FETCH (read round trip), SIZE, CMD, CHECK, DONE.
        ttu_cmd_cycles=10,
        # hw.tvp.TVP: issue to the first dependent issue, and issue to result.
        tvp_hazard_gap=gap,
        tvp_latency=tvp_latency,
        tvp_act_latency=TVP.act_timing()[2],
        # hw.tile.TVPFeeder: IDLE, FETCH (2 reads), START, DONE, output write.
        tvp_cmd_cycles=8,
        # Tile DMA, measured in make sim: an HBM -> SRAM descriptor completes
        # 18 cycles + its beats after dispatch (CP act 1, the engine's 15 as in the
        # block bench, so the feeder's fetch adds 2); back-to-back descriptors
        # complete beats + 2 apart; one-byte SRAM -> SRAM rows (MX code gathers)
        # take 1.2 to 1.8 cycles each (bank conflicts), 1.7 used.
        dma_fetch_cycles=2,
        dma_row_cycles=1.7,
        dma_gap_cycles=2,
        # hw.noc router: route + VC/switch allocation + link register (docs/noc.md).
        noc_hop_cycles=HOP_CYCLES,
        # hw.nic: the ATL header is written into the retransmit buffer a byte a cycle
        # before a frame leaves; EthRx stores and forwards a whole frame; 42 cycles of
        # post/receive/placement pipeline measured on the 8-byte message (docs/nic.md).
        nic_frame_overhead_bytes=ETH_HDR_BYTES + HEADER_BYTES + FCS_BYTES,
        nic_min_frame_bytes=MIN_FRAME,
        nic_header_cycles=HEADER_BYTES,
        nic_fixed_cycles=42,
    )


#: The RTL prototype: the default cluster (``hw.cluster.ClusterParams()``) at 100 MHz.
PROTOTYPE = prototype()

#: The published Maia 200 figures (docs/perf.md).
MAIA200 = maia200()


def presets():
    return {"prototype": PROTOTYPE, "maia200": MAIA200}
