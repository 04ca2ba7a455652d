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

    Parameters
    ----------
    payload_shape : shape-castable
        Shape of one entry.
    depth : int
        Number of entries, >= 1 (any value, not only powers of two).

    Attributes
    ----------
    i_stream : In(stream.Signature(payload_shape))
        Write side; ``ready`` is low when full.
    o_stream : Out(stream.Signature(payload_shape))
        Read side; ``valid`` is high when not empty.
    level : Out(range(depth + 1))
        Number of entries held.
    """

    def __init__(self, *, payload_shape, depth):
        self._payload_shape = check_shape("payload_shape", payload_shape)
        self._depth = check_int("depth", depth, min=1)
        super().__init__({
            "i_stream": In(stream.Signature(payload_shape)),
            "o_stream": Out(stream.Signature(payload_shape)),
            "level": Out(range(depth + 1)),
        })
        self._w_ptr = Signal(range(depth))

    def invariants(self):
        """Internal facts for k-induction (see ``formal/properties.py``).

        A non-power-of-two pointer has unreachable encodings; stating that
        they are unreachable lets the proof close.
        """
        return [(self._w_ptr < self._depth, "w_ptr_in_range")]

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

        # The read pointer is derived from the write pointer and the level
        # rather than kept in a third register: the three can never disagree,
        # which also makes the formal proof inductive.
        w_ptr = self._w_ptr
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
            # Wrap explicitly so non-power-of-two depths work.
            m.d.sync += w_ptr.eq(Mux(w_ptr == depth - 1, 0, w_ptr + 1))
        with m.If(push & ~pop):
            m.d.sync += self.level.eq(self.level + 1)
        with m.Elif(pop & ~push):
            m.d.sync += self.level.eq(self.level - 1)
        return m
