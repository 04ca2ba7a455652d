"""DMA descriptor layout, endpoint kinds and completion codes: the DMA's specification.

Everything a descriptor producer (the compiler, a host driver, the tile's
feeder) or a model needs to agree with the engine on lives here once:
:class:`Kind` (``src_kind`` / ``dst_kind``), :class:`Err` (``o_done.err``),
the field widths and the layouts. See docs/dma.md.
"""
from amaranth.hdl import signed
from amaranth.lib import data, enum

__all__ = ["Kind", "Err", "SRC_KINDS", "DST_KINDS",
           "KIND_HBM", "KIND_LOCAL", "KIND_REMOTE", "ERR_NAMES", "ERR_OK", "ERR_MALFORMED",
           "ERR_RANGE", "ERR_RD_SLVERR", "ERR_RD_DECERR", "ERR_WR_SLVERR", "ERR_WR_DECERR",
           "MAX_LENGTH", "LENGTH_BITS", "COUNT_BITS", "SEM_BITS", "ERR_BITS",
           "descriptor_layout", "completion_layout", "noc_layout"]


class Kind(enum.IntEnum, shape=2):
    """Endpoint kind of a descriptor's ``src_kind`` / ``dst_kind`` field.

    An ``IntEnum``: members are plain integers on the host side (dict keys,
    :func:`hw.common.layout.pack`) and 2-bit constants in hardware.
    """
    HBM = 0      #: HBM behind the AXI4 master (source or destination)
    LOCAL = 1    #: local SRAM(s): ``sram_rd`` as a source, ``sram_wr[dst_mask]`` as a destination
    REMOTE = 2   #: another tile's SRAM through the ``noc`` port (destination only)


#: Kinds valid as a source / as a destination; any other value is MALFORMED.
SRC_KINDS = (Kind.HBM, Kind.LOCAL)
DST_KINDS = (Kind.HBM, Kind.LOCAL, Kind.REMOTE)


class Err(enum.IntEnum, shape=3):
    """Completion code (``o_done.err``); 0 is success.

    Decode errors (MALFORMED, RANGE) mean nothing moved; bus errors (RD_*,
    WR_*) mean the copy ran and its destination bytes are undefined.
    """
    OK = 0
    MALFORMED = 1   #: length 0 or > MAX_LENGTH, a count of 0, a bad kind, an empty local mask
    RANGE = 2       #: a bounding box leaves HBM / the SRAM or goes below 0
    RD_SLVERR = 3   #: an R beat of the descriptor had SLVERR
    RD_DECERR = 4   #: an R beat of the descriptor had DECERR
    WR_SLVERR = 5   #: a B response of the descriptor had SLVERR
    WR_DECERR = 6   #: a B response of the descriptor had DECERR


# Short names kept for existing users; derived from the enums above.
KIND_HBM, KIND_LOCAL, KIND_REMOTE = Kind.HBM, Kind.LOCAL, Kind.REMOTE
ERR_OK, ERR_MALFORMED, ERR_RANGE = Err.OK, Err.MALFORMED, Err.RANGE
ERR_RD_SLVERR, ERR_RD_DECERR = Err.RD_SLVERR, Err.RD_DECERR
ERR_WR_SLVERR, ERR_WR_DECERR = Err.WR_SLVERR, Err.WR_DECERR
ERR_NAMES = {int(e): e.name for e in Err}

#: Largest innermost (contiguous) length in bytes.
MAX_LENGTH = 65536
LENGTH_BITS = MAX_LENGTH.bit_length()
COUNT_BITS = 16
SEM_BITS = 8
KIND_BITS = Kind.as_shape().width
ERR_BITS = Err.as_shape().width


def dim_layout(addr_width):
    """One outer dimension: iteration count and signed byte strides."""
    return data.StructLayout({
        "count": COUNT_BITS,
        "src_stride": signed(addr_width),
        "dst_stride": signed(addr_width),
    })


def descriptor_layout(*, addr_width, dims, n_local):
    """The descriptor: a ``dims``-dimensional copy ``src -> dst``.

    Dimension 0 is contiguous (``length`` bytes, 1 .. 65536); each outer
    dimension ``d`` (``outer[d-1]``) repeats everything inside it ``count``
    times, adding ``src_stride``/``dst_stride`` (signed bytes) each time.
    ``src_kind`` / ``dst_kind`` hold a :class:`Kind` (plain 2-bit fields, so
    that the 2-bit values 3 and, for the source, REMOTE stay representable
    and are reported as MALFORMED).
    """
    fields = {
        "src_kind": KIND_BITS,
        "dst_kind": KIND_BITS,
        "dst_mask": n_local,
        "sem": SEM_BITS,
        "src": addr_width,
        "dst": addr_width,
        "length": LENGTH_BITS,
    }
    if dims > 1:
        fields["outer"] = data.ArrayLayout(dim_layout(addr_width), dims - 1)
    return data.StructLayout(fields)


def completion_layout():
    """One completion: the semaphore to increment and the :class:`Err` code."""
    return data.StructLayout({"sem": SEM_BITS, "err": ERR_BITS})


def noc_layout(addr_width, data_width):
    """A remote write request toward another tile's SRAM (the engine's ``noc`` port).

    ``addr`` is the aligned byte address of the word (see :mod:`hw.dma.remote`
    for its tile / offset split), ``strb`` its byte strobes, ``last`` marks the
    final beat of a descriptor.
    """
    return data.StructLayout({"addr": addr_width, "data": data_width,
                              "strb": data_width // 8, "last": 1})
