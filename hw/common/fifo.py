from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .params import check_int, check_shape

__all__ = ["StreamFIFO"]


class StreamFIFO(wiring.Component):
    """Synchronous first-word-fall-through FIFO between two streams.

    Storage is a :class:`~amaranth.lib.memory.Memory` with an asynchronous
    read port (LUT RAM on FPGAs), so the head entry is on ``o_stream`` in
    the cycle after it is written. ``valid`` and ``ready`` come from the
    occupancy register only, never from the other side's handshake.

    With ``lookahead``, the FIFO also shows the entry behind the head
    (``o_next``): the one that becomes the head when the head is popped. The
    NoC router allocates the next packet's output VC with it in the cycle its
    predecessor's tail leaves, so back-to-back packets leave no bubble. The
    read pointers (head and next) are then registers, so the head is read
    straight from a flip-flop address; the second read port costs one more
    LUT-RAM copy.

    Parameters
    ----------
    payload_shape : shape-castable
        Shape of one entry.
    depth : int
        Number of entries, >= 1 (>= 2 with ``lookahead``; any value, not only
        powers of two).
    lookahead : bool
        Add ``o_next`` and ``next_valid``.

    Attributes
    ----------
    i_stream : In(stream.Signature(payload_shape))
        Write side; ``ready`` is low when full.
    o_stream : Out(stream.Signature(payload_shape))
        Read side; ``valid`` is high when not empty.
    level : Out(range(depth + 1))
        Number of entries held.
    o_next : Out(payload_shape)
        With ``lookahead``: the entry behind the head (meaningful when ``next_valid``).
    next_valid : Out(1)
        With ``lookahead``: at least two entries are held.
    """

    def __init__(self, *, payload_shape, depth, lookahead=False):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        self._lookahead = bool(lookahead)
        self._depth = check_int("depth", depth, min=2 if self._lookahead else 1)
        members = {
            "i_stream": In(stream.Signature(payload_shape)),
            "o_stream": Out(stream.Signature(payload_shape)),
            "level": Out(range(depth + 1)),
        }
        if self._lookahead:
            members.update({"o_next": Out(payload_shape), "next_valid": Out(1)})
        super().__init__(members)
        self._w_ptr = Signal(range(depth))
        if self._lookahead:
            self._r_ptr = Signal(range(depth))
            self._r_next = Signal(range(depth), init=1)

    def _wrap_inc(self, ptr):
        # Wrap explicitly so non-power-of-two depths work.
        return Mux(ptr == self._depth - 1, 0, ptr + 1)

    def invariants(self):
        """Internal facts for k-induction (see ``formal/properties.py``).

        A non-power-of-two pointer has unreachable encodings; stating that
        they are unreachable lets the proof close. With ``lookahead`` the
        registered read pointers agree with the write pointer and the level.
        """
        d, w, lvl = self._depth, self._w_ptr, self.level
        facts = [(w < d, "w_ptr_in_range")]
        if self._lookahead:
            r = self._r_ptr
            facts += [(r < d, "r_ptr_in_range"), (lvl <= d, "level_in_range"),
                      (r == Mux(w >= lvl, w - lvl, w + d - lvl), "r_ptr_consistent"),
                      (self._r_next == self._wrap_inc(r), "r_next_consistent")]
        return facts

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        # A depth-1 memory would have a zero-width address, which Verilog
        # renders as an illegal [-1:0] range; one spare word avoids it.
        m.submodules.storage = storage = Memory(shape=self._payload_shape,
                                                depth=max(depth, 2), init=[])
        wp = storage.write_port()
        rp = storage.read_port(domain="comb")

        w_ptr = self._w_ptr
        if self._lookahead:
            # Registered read pointers (and the one after): the read address
            # comes from a flip-flop, not from w_ptr - level, which shortens
            # the router's FIFO-head -> allocation path.
            r_ptr, r_next = self._r_ptr, self._r_next
            rn = storage.read_port(domain="comb")
        else:
            # The read pointer is derived from the write pointer and the level
            # rather than kept in a third register: the three can never disagree,
            # which also makes the formal proof inductive.
            r_ptr = Signal(range(depth))
            with m.If(w_ptr >= self.level):
                m.d.comb += r_ptr.eq(w_ptr - self.level)
            with m.Else():
                m.d.comb += r_ptr.eq(w_ptr + depth - self.level)
        push = self.i_stream.valid & self.i_stream.ready
        pop = self.o_stream.valid & self.o_stream.ready

        m.d.comb += [
            self.i_stream.ready.eq(self.level != depth),
            self.o_stream.valid.eq(self.level != 0),
            wp.addr.eq(w_ptr),
            wp.data.eq(self.i_stream.payload),
            wp.en.eq(push),
            rp.addr.eq(r_ptr),
            self.o_stream.payload.eq(rp.data),
        ]
        with m.If(push):
            m.d.sync += w_ptr.eq(self._wrap_inc(w_ptr))
        if self._lookahead:
            m.d.comb += [rn.addr.eq(r_next), self.o_next.eq(rn.data),
                         self.next_valid.eq(self.level >= 2)]
            with m.If(pop):
                m.d.sync += [r_ptr.eq(r_next), r_next.eq(self._wrap_inc(r_next))]
        with m.If(push & ~pop):
            m.d.sync += self.level.eq(self.level + 1)
        with m.Elif(pop & ~push):
            m.d.sync += self.level.eq(self.level - 1)
        return m
