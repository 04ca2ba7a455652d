"""The tile's parameters: one frozen, validated object.

:class:`TileParams` is what :class:`~hw.tile.Tile` is built from, what the
compiler (``sim.compiler``) compiles for and what the performance model's
prototype preset (``sim.perf``) derives its per-tile figures from, so the
three can never disagree about a size.
"""
from dataclasses import asdict, dataclass, replace

from hw.common.mx import ALL_FORMATS
from hw.common.params import check_choice, check_int, check_pow2

__all__ = ["TileParams"]


@dataclass(frozen=True)
class TileParams:
    """Parameters of one tile (all validated at construction, by name).

    Parameters
    ----------
    n : int
        TTU array size (``n x n``) and TVP lanes; the SRAM word is ``32 n`` bits
        (one TVP vector, one TTU result row, one TTU operand beat).
    sram_size : int
        Tile SRAM bytes (power of two).
    banks : int
        SRAM banks.
    addr_width : int
        HBM (AXI) byte-address width.
    hbm_size : int
        HBM bytes reachable (DMA range check).
    dims : int
        DMA descriptor dimensions.
    formats : tuple of str
        TTU element formats.
    max_k_beats, max_n_tiles : int
        TTU buffer sizes.
    n_sems, depth, deadlock_cycles : int
        Command-processor semaphores, program words per queue, watchdog.
    """
    n: int = 4
    sram_size: int = 65536
    banks: int = 4
    addr_width: int = 32
    hbm_size: int = 1 << 20
    dims: int = 4
    formats: tuple = ("fp8_e4m3", "fp4_e2m1")
    max_k_beats: int = 64
    max_n_tiles: int = 8
    n_sems: int = 16
    depth: int = 256
    deadlock_cycles: int = 2048

    def __post_init__(self):
        check_pow2("n", self.n, min=2, max=16)
        check_pow2("banks", self.banks, min=1, max=16)
        check_pow2("sram_size", self.sram_size, min=self.word_bytes * self.banks * 4)
        check_int("addr_width", self.addr_width, min=16, max=48)
        check_int("hbm_size", self.hbm_size, min=4096, max=1 << self.addr_width)
        check_int("dims", self.dims, min=2, max=6)
        # A JSON round trip (tests hand parameters to cocotb) turns the tuple into a list.
        object.__setattr__(self, "formats", tuple(self.formats))
        if not self.formats:
            raise ValueError("formats must name at least one format")
        for f in self.formats:
            check_choice("formats", f, ALL_FORMATS)
        check_int("max_k_beats", self.max_k_beats, min=1, max=4096)
        check_int("max_n_tiles", self.max_n_tiles, min=1, max=255)
        check_int("n_sems", self.n_sems, min=1, max=32)
        check_int("depth", self.depth, min=2)
        check_int("deadlock_cycles", self.deadlock_cycles, min=2)

    @property
    def word_bits(self):
        """Bits of one SRAM word (one TVP vector of FP32 lanes)."""
        return 32 * self.n

    @property
    def word_bytes(self):
        return 4 * self.n

    @property
    def words(self):
        """SRAM words."""
        return self.sram_size // self.word_bytes

    def desc_layout(self):
        """The DMA descriptor layout of this tile's DMA (one local SRAM)."""
        from hw.dma.descriptor import descriptor_layout
        return descriptor_layout(addr_width=self.addr_width, dims=self.dims, n_local=1)

    @property
    def desc_words(self):
        """SRAM words per DMA descriptor record."""
        return -(-self.desc_layout().size // self.word_bits)

    def layouts(self):
        """``(DMA descriptor, TTU record, TVP record)`` layouts of this tile."""
        from .records import ttu_record_layout, tvp_record_layout
        return self.desc_layout(), ttu_record_layout(), tvp_record_layout()

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self):
        """Plain values (JSON-serialisable); ``TileParams(**p.as_dict()) == p``."""
        return asdict(self)
