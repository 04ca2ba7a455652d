"""Tile-to-tile writes over the NoC: the DMA's ``noc`` port -> packets -> a remote SRAM port.

Remote byte address (what a descriptor with ``dst_kind = REMOTE`` names)::

    | zero ... | y : clog2(ky) | x : clog2(kx) | offset : clog2(sram_size) |

so the destination tile is a mesh coordinate and ``offset`` a byte address in
that tile's SRAM. Each beat travels self-described (``remote_beat_layout``:
word address, strobes, data), so a packet may hold any run of beats; the
writer closes a packet at the descriptor's last beat, at ``max_beats`` beats
(the NoC would split a longer packet) or when the next beat goes to another
tile. Beats whose tile is not in the mesh are dropped and counted.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, check_pow2, saturating_add
from hw.mem import SRAMPortSignature
from hw.noc.ni import rx_layout, tx_layout
from hw.noc.packet import coord_bits

from .descriptor import noc_layout

__all__ = ["remote_beat_layout", "RemoteWriter", "RemoteSink"]


def remote_beat_layout(word_addr_width, data_width):
    """One write beat as it crosses the NoC (LSB first: data, strobes, word address)."""
    return data.StructLayout({"data": data_width, "strb": data_width // 8,
                              "addr": word_addr_width})


def _word_addr_width(sram_size, data_width):
    return max(1, (sram_size // (data_width // 8) - 1).bit_length())


class RemoteWriter(wiring.Component):
    """Turns the DMA engine's remote-write stream into NoC packets.

    Parameters
    ----------
    addr_width, data_width : int
        As the :class:`~hw.dma.DMAEngine` feeding it.
    sram_size : int
        Bytes of each tile's SRAM (power of two): the width of ``offset``.
    kx, ky : int
        Mesh size.
    noc_data_width : int
        Payload width of the NoC; at least ``remote_beat_layout(...).size``.
    max_beats : int
        Longest packet in beats: the NoC's ``max_packet_flits - 1``.

    Attributes
    ----------
    i_stream : In(stream.Signature(noc_layout(addr_width, data_width)))
        The DMA's ``noc`` port.
    o_stream : Out(stream.Signature(tx_layout(kx, ky, noc_data_width)))
        To one injection stream (QoS class) of a :class:`~hw.noc.NetworkInterface`.
    errors : Out(16)
        Beats dropped for a tile outside the mesh (saturating).
    """

    def __init__(self, *, addr_width=32, data_width=64, sram_size=65536, kx, ky,
                 noc_data_width, max_beats=3):
        self.aw = check_int("addr_width", addr_width, min=8, max=64)
        self.dw = check_pow2("data_width", data_width, min=16, max=1024)
        self.sram_size = check_pow2("sram_size", sram_size, min=data_width // 8)
        self.kx = check_int("kx", kx, min=1, max=256)
        self.ky = check_int("ky", ky, min=1, max=256)
        self.max_beats = check_int("max_beats", max_beats, min=1)
        self.beat_layout = remote_beat_layout(_word_addr_width(sram_size, data_width), data_width)
        need = self.beat_layout.size
        check_int("noc_data_width", noc_data_width, min=need)
        self.local_bits = (sram_size - 1).bit_length()
        self.bx, self.by = coord_bits(kx), coord_bits(ky)
        if self.local_bits + self.bx + self.by > addr_width:
            raise ValueError(f"addr_width must be >= {self.local_bits + self.bx + self.by} "
                             f"(SRAM offset + tile coordinates), not {addr_width}")
        self.noc_data_width = noc_data_width
        # One beat is held back so its packet's `last` can depend on the next beat;
        # `count` is the number of beats of the open packet already sent.
        self.held_valid = Signal()
        self.count = Signal(range(self.max_beats))
        super().__init__({
            "i_stream": In(stream.Signature(noc_layout(addr_width, data_width))),
            "o_stream": Out(stream.Signature(tx_layout(kx, ky, noc_data_width))),
            "errors": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        lb, bx, by = self.local_bits, self.bx, self.by
        lw = (self.dw // 8 - 1).bit_length()
        i, o = self.i_stream, self.o_stream

        def tile(addr):
            return addr[lb:]

        def valid_tile(addr):
            x, y = addr[lb:lb + bx], addr[lb + bx:lb + bx + by]
            return (x < self.kx) & (y < self.ky) & (addr[lb + bx + by:] == 0)

        held = Signal.like(i.payload)
        held_valid, count = self.held_valid, self.count
        held_ok = valid_tile(held.addr)
        close = (held.last | (count == self.max_beats - 1)
                 | (i.valid & (tile(i.payload.addr) != tile(held.addr))))
        beat = Signal(self.beat_layout)
        m.d.comb += [
            beat.data.eq(held.data),
            beat.strb.eq(held.strb),
            beat.addr.eq(held.addr[lw:lb]),
            o.payload.data.eq(beat),
            o.payload.last.eq(close),
            o.payload.x0.eq(held.addr[lb:lb + bx]),
            o.payload.x1.eq(held.addr[lb:lb + bx]),
            o.payload.y0.eq(held.addr[lb + bx:lb + bx + by]),
            o.payload.y1.eq(held.addr[lb + bx:lb + bx + by]),
            # Wait for the next beat unless the packet closes anyway.
            o.valid.eq(held_valid & held_ok & (held.last | (count == self.max_beats - 1) | i.valid)),
        ]
        out = o.valid & o.ready
        drop = held_valid & ~held_ok
        empty = ~held_valid | out | drop
        m.d.comb += i.ready.eq(empty)
        with m.If(out):
            with m.If(close):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(drop):
            saturating_add(m, self.errors)
        with m.If(empty):
            m.d.sync += held_valid.eq(i.valid)
            with m.If(i.valid):
                m.d.sync += held.eq(i.payload)
        return m


class RemoteSink(wiring.Component):
    """Writes the beats of remote-write packets into a local SRAM port.

    Parameters
    ----------
    data_width, sram_size, kx, ky, noc_data_width
        As for :class:`RemoteWriter`.

    Attributes
    ----------
    i_stream : In(stream.Signature(rx_layout(kx, ky, noc_data_width)))
        From one ejection stream of a :class:`~hw.noc.NetworkInterface`.
    sram : Out(SRAMPortSignature)
        Write requests (word address, strobes, data); reads are never issued.
    writes : Out(32)
        Beats written (saturating), for status and tests.
    """

    def __init__(self, *, data_width=64, sram_size=65536, kx, ky, noc_data_width):
        self.dw = check_pow2("data_width", data_width, min=16, max=1024)
        check_pow2("sram_size", sram_size, min=data_width // 8)
        word_aw = _word_addr_width(sram_size, data_width)
        self.beat_layout = remote_beat_layout(word_aw, data_width)
        check_int("noc_data_width", noc_data_width, min=self.beat_layout.size)
        super().__init__({
            "i_stream": In(stream.Signature(rx_layout(kx, ky, noc_data_width))),
            "sram": Out(SRAMPortSignature(addr_width=word_aw,
                                          data_width=data_width)),
            "writes": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        i, req = self.i_stream, self.sram.req
        beat = self.beat_layout(i.payload.data[:self.beat_layout.size])
        m.d.comb += [
            req.valid.eq(i.valid),
            req.payload.addr.eq(beat.addr),
            req.payload.we.eq(1),
            req.payload.wstrb.eq(beat.strb),
            req.payload.wdata.eq(beat.data),
            i.ready.eq(req.ready),
            self.sram.rsp.ready.eq(1),
        ]
        with m.If(req.valid & req.ready):
            saturating_add(m, self.writes)
        return m
