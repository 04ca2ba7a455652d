"""Operation records: what an ``EXEC`` argument points at in the tile SRAM.

A TTU record is one SRAM word, a TVP record two (``docs/tile.md``); a DMA
record is a DMA descriptor (``hw.dma.descriptor``). The compiler packs them
with these layouts, the feeders unpack them.
"""
from amaranth.hdl import signed
from amaranth.lib import data

__all__ = ["ADDR", "ttu_record_layout", "tvp_record_layout"]

ADDR = 16  # SRAM word addresses in records


def ttu_record_layout():
    """One TTU record (one SRAM word, >= 128 bits): a GEMM on SRAM operands."""
    return data.StructLayout({
        "fmt_a": 3, "fmt_b": 3, "pack": 1, "block32": 1,
        "k_beats": 16, "n_tiles": 8, "m_tiles": 16,
        "w_addr": ADDR,   # n_tiles * k_beats weight beats (column tile major, then k)
        "a_addr": ADDR,   # m_tiles * k_beats activation beats (row tile major, then k)
        "o_addr": ADDR,   # result: row-major, word o_addr + row * o_pitch + column tile
        "o_pitch": ADDR,  # words per result row
    })


def _agen_layout():
    return data.StructLayout({"base": ADDR, "inner": signed(ADDR), "outer": signed(ADDR)})


def tvp_record_layout():
    """One TVP record (two SRAM words of 128 bits).

    Beat ``j = g * group + i`` reads ``a/b/c`` at ``base + g * outer + i * inner``
    (word addresses, strides signed); output beat ``j'`` goes to
    ``o.base + (j' // o_group) * o.outer + (j' % o_group) * o.inner``.
    ``last`` is set on the last beat of each group (reductions end there).
    """
    return data.StructLayout({
        "op": 5, "fmt": 1, "nsrc": 2, "_pad": 8,
        "n_beats": 16, "group": 16, "o_group": 16,
        "a": _agen_layout(), "o_base": ADDR,
        # second word
        "b": _agen_layout(), "c": _agen_layout(), "o_inner": signed(ADDR), "o_outer": signed(ADDR),
    })
