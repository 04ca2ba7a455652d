"""Address router: word-write packets ``{addr, strb, data}`` -> mesh injection beats.

The entry point of a mesh whose clients address each other by a byte-address
field rather than by mesh coordinates (the chip NoC, ``docs/chip.md``).
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, saturating_add

from .ni import tx_layout

__all__ = ["AddressRouter", "word_packet_layout"]


def word_packet_layout(addr_width, word_bits):
    """One word write ``{addr, strb, data}`` (the cluster's NoC packet)."""
    return data.StructLayout({"addr": addr_width, "strb": word_bits // 8, "data": word_bits})


class AddressRouter(wiring.Component):
    """Looks up the destination node of a word write and injects it as one single-beat packet.

    The *key* of a packet is ``addr[key_shift : key_shift + key_bits]``; ``dests``
    maps keys to mesh nodes (``n = y * kx + x``). A packet whose key is not in
    ``dests`` is a bad destination: it is taken, dropped and counted in
    ``errors``, so the source never blocks on it and the rest keeps flowing.
    A good packet becomes one beat (``last = 1``) with the destination node as
    a unicast rectangle (or, for a key mapped to a rectangle, a multicast to
    every node in it) and the whole word write as data; the lookup is
    combinational (no added latency, stream rules kept from input to output).

    Parameters
    ----------
    addr_width, word_bits : int
        Packet address and data widths.
    key_shift, key_bits : int
        Position and width of the destination key in ``addr``.
    kx, ky : int
        Mesh size.
    dests : dict of int to (int or tuple)
        Key -> mesh node, or -> ``(x0, x1, y0, y1)`` (a multicast rectangle), for
        the keys that exist.

    Attributes
    ----------
    i_stream : In(stream.Signature(word_packet_layout))
        Word writes.
    o_stream : Out(stream.Signature(tx_layout(kx, ky, word_packet_layout.size)))
        Mesh injection beats.
    errors : Out(16)
        Packets dropped for a bad destination (saturating).
    """

    def __init__(self, *, addr_width, word_bits, key_shift, key_bits, kx, ky, dests):
        self.addr_width = check_int("addr_width", addr_width, min=2, max=64)
        self.word_bits = check_int("word_bits", word_bits, min=8)
        self.key_bits = check_int("key_bits", key_bits, min=1, max=12)
        self.key_shift = check_int("key_shift", key_shift, min=0, max=addr_width - key_bits)
        self.kx = check_int("kx", kx, min=1, max=256)
        self.ky = check_int("ky", ky, min=1, max=256)
        if not isinstance(dests, dict):
            raise TypeError(f"dests must be a dict of key -> node, not {dests!r}")
        for k, n in dests.items():
            if not (isinstance(k, int) and 0 <= k < 1 << key_bits):
                raise ValueError(f"dests keys must be ints in 0..{(1 << key_bits) - 1}, not {k!r}")
            if isinstance(n, tuple):
                if not (len(n) == 4 and all(isinstance(v, int) for v in n)
                        and 0 <= n[0] <= n[1] < kx and 0 <= n[2] <= n[3] < ky):
                    raise ValueError(f"dests rectangles must be (x0, x1, y0, y1) inside the "
                                     f"{kx}x{ky} mesh, not {n!r}")
            elif not (isinstance(n, int) and 0 <= n < kx * ky):
                raise ValueError(f"dests nodes must be ints in 0..{kx * ky - 1}, not {n!r}")
        self.dests = dict(sorted(dests.items()))
        self.pkt = word_packet_layout(addr_width, word_bits)
        super().__init__({
            "i_stream": In(stream.Signature(self.pkt)),
            "o_stream": Out(stream.Signature(tx_layout(kx, ky, self.pkt.size))),
            "errors": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        key = i.payload.addr[self.key_shift:self.key_shift + self.key_bits]
        ok = Signal()
        x0, x1 = Signal.like(o.payload.x0), Signal.like(o.payload.x1)
        y0, y1 = Signal.like(o.payload.y0), Signal.like(o.payload.y1)
        with m.Switch(key):
            for k, n in self.dests.items():
                rect = n if isinstance(n, tuple) else (n % self.kx, n % self.kx,
                                                       n // self.kx, n // self.kx)
                with m.Case(k):
                    m.d.comb += [ok.eq(1), x0.eq(rect[0]), x1.eq(rect[1]), y0.eq(rect[2]),
                                 y1.eq(rect[3])]
        m.d.comb += [
            o.valid.eq(i.valid & ok),
            # A bad packet is taken at once (dropped): it never waits for the mesh.
            i.ready.eq(o.ready | ~ok),
            o.payload.data.eq(i.payload),
            o.payload.last.eq(1),
            o.payload.x0.eq(x0), o.payload.x1.eq(x1),
            o.payload.y0.eq(y0), o.payload.y1.eq(y1),
        ]
        with m.If(i.valid & ~ok):
            saturating_add(m, self.errors)
        return m
