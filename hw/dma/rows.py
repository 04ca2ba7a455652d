"""What the DMA engine's stages pass each other: rows, read beats, write beats.

A *row* is one contiguous run of dimension 0 of a descriptor, produced by the
:class:`~hw.dma.decode.DescriptorDecoder` and consumed by the read issuer,
the realigner and the write (AW) issuer in the same order. The two helpers
are shared by the issuers: :func:`row_cursor` walks the words of the current
row, :func:`burst_beats` cuts it into AXI bursts.
"""
from amaranth.hdl import Signal
from amaranth.lib import data

from .axi import Resp
from .descriptor import ERR_BITS, KIND_BITS, LENGTH_BITS, SEM_BITS

__all__ = ["PAGE", "row_layout", "entry_layout", "burst_layout", "rbeat_layout", "w_layout", "wbeat_layout", "row_cursor",
           "burst_beats"]

PAGE = 4096  # AXI bursts never cross a 4 KiB boundary


def row_layout(addr_width, n_local):
    """One row: byte addresses, length, first/last row of its descriptor, kinds, local mask."""
    return data.StructLayout({
        "src": addr_width, "dst": addr_width, "len": LENGTH_BITS, "first": 1, "last": 1,
        "src_kind": KIND_BITS, "dst_kind": KIND_BITS, "dst_mask": n_local,
    })


def entry_layout():
    """A descriptor's completion entry, queued at decode in descriptor order.

    ``skip``: the decode checks failed (``err`` is MALFORMED or RANGE) and no
    row was sent; ``hbm``: the destination is HBM, so a B-done is awaited.
    """
    return data.StructLayout({"sem": SEM_BITS, "err": ERR_BITS, "skip": 1, "hbm": 1})


def burst_layout(word_addr_width):
    """An AR / AW request: word address and AXI ``len`` (beats - 1)."""
    return data.StructLayout({"addr": word_addr_width, "len": 8})


def rbeat_layout(data_width):
    """An R beat as buffered: data and the AXI response code."""
    return data.StructLayout({"data": data_width, "resp": Resp.as_shape()})


def w_layout(data_width):
    """A W beat: data, byte strobes, last beat of the burst."""
    return data.StructLayout({"data": data_width, "strb": data_width // 8, "last": 1})


def wbeat_layout(data_width, word_addr_width, n_local):
    """A destination-aligned write beat: data, byte strobes, destination word address,
    last beat of the descriptor, the descriptor's read error so far, destination."""
    return data.StructLayout({
        "data": data_width, "strb": data_width // 8, "addr": word_addr_width, "desc_last": 1,
        "err": ERR_BITS, "dst_kind": KIND_BITS, "dst_mask": n_local,
    })


def row_cursor(m, rows, *, step, amount, done, active, cur, end, addr, span, latch):
    """Word cursor over the current row, shared by the read and write issuers.

    ``cur`` advances by ``amount`` on ``step``; when the row is finished (or
    none is active) the next row is taken from the ``rows`` stream: ``cur`` and
    ``end`` become its first and last word (``addr(row)`` bits ``span``), and
    ``latch(row)`` lists the issuer's own per-row registers.
    """
    lw, aw = span
    with m.If(step):
        m.d.sync += cur.eq(cur + amount)
    with m.If(done):
        m.d.sync += active.eq(0)
    with m.If(~active | done):
        m.d.comb += rows.ready.eq(1)
        with m.If(rows.valid):
            r = rows.payload
            m.d.sync += [
                active.eq(1),
                cur.eq(addr(r)[lw:]),
                end.eq((addr(r) + r.len - 1)[lw:aw]),
                *latch(r),
            ]


def burst_beats(m, cur, end, *, lanes, max_burst, name):
    """Beats of the next burst from word ``cur`` to word ``end`` (inclusive).

    At most ``max_burst``, never past ``end`` and never across a 4 KiB page.
    """
    page_words = PAGE // lanes
    pw_bits = (page_words - 1).bit_length()
    left = Signal(range(1 << 20), name=f"{name}_left")
    to_page = Signal(range(page_words + 1), name=f"{name}_to_page")
    beats = Signal(range(max_burst + 1), name=f"{name}_beats")
    m.d.comb += [
        left.eq(end - cur + 1),
        to_page.eq(page_words - (cur[:pw_bits] if pw_bits else 0)),
        beats.eq(max_burst),
    ]
    with m.If((to_page < max_burst) & (to_page <= left)):
        m.d.comb += beats.eq(to_page)
    with m.Elif(left < max_burst):
        m.d.comb += beats.eq(left)
    return beats
