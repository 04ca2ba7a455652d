"""DMA descriptor layout, endpoint kinds and completion error codes (see docs/dma.md)."""
from amaranth.hdl import signed
from amaranth.lib import data

__all__ = ["KIND_HBM", "KIND_LOCAL", "KIND_REMOTE", "ERR_NAMES", "ERR_OK", "ERR_MALFORMED",
           "ERR_RANGE", "ERR_RD_SLVERR", "ERR_RD_DECERR", "ERR_WR_SLVERR", "ERR_WR_DECERR",
           "MAX_LENGTH", "descriptor_layout", "completion_layout"]

#: Endpoint kinds (``src_kind`` / ``dst_kind``).
KIND_HBM, KIND_LOCAL, KIND_REMOTE = 0, 1, 2

#: Completion error codes; 0 is success. Decode errors (1, 2) mean nothing moved.
ERR_OK, ERR_MALFORMED, ERR_RANGE = 0, 1, 2
ERR_RD_SLVERR, ERR_RD_DECERR, ERR_WR_SLVERR, ERR_WR_DECERR = 3, 4, 5, 6
ERR_NAMES = {0: "OK", 1: "MALFORMED", 2: "RANGE", 3: "RD_SLVERR", 4: "RD_DECERR",
             5: "WR_SLVERR", 6: "WR_DECERR"}

#: Largest innermost (contiguous) length in bytes.
MAX_LENGTH = 65536
LENGTH_BITS = 17
COUNT_BITS = 16
SEM_BITS = 8
ERR_BITS = 3


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
    """
    fields = {
        "src_kind": 2,
        "dst_kind": 2,
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
    """One completion: the semaphore to increment and the error code."""
    return data.StructLayout({"sem": SEM_BITS, "err": ERR_BITS})
