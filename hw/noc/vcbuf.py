"""Virtual-channel input buffer: a FIFO that also shows its second entry."""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common import check_int, check_shape

__all__ = ["VcBuffer"]


class VcBuffer(wiring.Component):
    """First-word-fall-through FIFO with a look-ahead read of the entry behind the head.

    Same storage, timing and handshake as :class:`hw.common.StreamFIFO`
    (``valid``/``ready`` from the occupancy register only; read pointers
    are registers, so the head is read straight from a flip-flop address),
    plus ``o_next``:
    the entry that becomes the head when the current head is popped. The
    router uses it to allocate the next packet's output VCs in the cycle
    its predecessor's tail leaves, so back-to-back packets in one VC leave
    no bubble. (``StreamFIFO`` has no such port, hence this NoC-local
    buffer; the second asynchronous read port costs one more LUT-RAM copy.)

    Parameters
    ----------
    payload_shape : shape-castable
        Shape of one entry.
    depth : int
        Number of entries, >= 2.

    Attributes
    ----------
    i_stream : In(stream.Signature(payload_shape))
        Write side; ``ready`` is low when full.
    o_stream : Out(stream.Signature(payload_shape))
        Read side (the head); ``valid`` is high when not empty.
    o_next : Out(payload_shape)
        The entry behind the head (meaningful when ``next_valid``).
    next_valid : Out(1)
        At least two entries are held.
    level : Out(range(depth + 1))
        Number of entries held.
    """

    def __init__(self, *, payload_shape, depth):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        self._depth = check_int("depth", depth, min=2)
        super().__init__({
            "i_stream": In(stream.Signature(payload_shape)),
            "o_stream": Out(stream.Signature(payload_shape)),
            "o_next": Out(payload_shape),
            "next_valid": Out(1),
            "level": Out(range(depth + 1)),
        })
        self._w_ptr = Signal(range(depth))
        self._r_ptr = Signal(range(depth))
        self._r_next = Signal(range(depth), init=1)

    def _wrap_inc(self, ptr):
        return Mux(ptr == self._depth - 1, 0, ptr + 1)

    def invariants(self):
        """Internal facts for k-induction: pointers in range and consistent with the level."""
        d = self._depth
        w, r, lvl = self._w_ptr, self._r_ptr, self.level
        r_from_w = Mux(w >= lvl, w - lvl, w + d - lvl)
        return [(w < d, "w_ptr_in_range"), (r < d, "r_ptr_in_range"),
                (lvl <= d, "level_in_range"),
                (r == r_from_w, "r_ptr_consistent"),
                (self._r_next == self._wrap_inc(r), "r_next_consistent")]

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = storage = Memory(shape=self._payload_shape, depth=depth,
                                                init=[])
        wp = storage.write_port()
        rp = storage.read_port(domain="comb")
        rn = storage.read_port(domain="comb")

        # Registered read pointers (and the one after): the read address
        # comes straight from a flip-flop, not from w_ptr - level, which
        # shortens the router's FIFO-head -> allocation path.
        w_ptr, r_ptr, r_next = self._w_ptr, self._r_ptr, self._r_next
        push = self.i_stream.valid & self.i_stream.ready
        pop = self.o_stream.valid & self.o_stream.ready

        m.d.comb += [
            self.i_stream.ready.eq(self.level != depth),
            self.o_stream.valid.eq(self.level != 0),
            self.next_valid.eq(self.level >= 2),
            wp.addr.eq(w_ptr),
            wp.data.eq(self.i_stream.payload),
            wp.en.eq(push),
            rp.addr.eq(r_ptr),
            rn.addr.eq(r_next),
            self.o_stream.payload.eq(rp.data),
            self.o_next.eq(rn.data),
        ]
        with m.If(push):
            m.d.sync += w_ptr.eq(self._wrap_inc(w_ptr))
        with m.If(pop):
            m.d.sync += [r_ptr.eq(r_next), r_next.eq(self._wrap_inc(r_next))]
        with m.If(push & ~pop):
            m.d.sync += self.level.eq(self.level + 1)
        with m.Elif(pop & ~push):
            m.d.sync += self.level.eq(self.level - 1)
        return m
