"""DMA descriptor decoder: checks, bounding boxes and the N-D row generator."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .descriptor import COUNT_BITS, MAX_LENGTH, Err, Kind, descriptor_layout
from .rows import entry_layout, row_layout

__all__ = ["DescriptorDecoder"]


class DescriptorDecoder(wiring.Component):
    """Checks one descriptor at a time and expands it into rows.

    A descriptor is latched (IDLE), its extents ``(count - 1) * stride`` are
    computed into registers (EXTENT: the multipliers stay off the row path),
    then checked (CHECK): a completion entry leaves on ``o_entry`` for every
    descriptor, with ``skip`` set and the code MALFORMED or RANGE when a check
    fails, in which case no row is sent. A good descriptor then leaves as one
    row per cycle on ``o_rows`` (ROWS), innermost dimension first (an
    odometer over the outer dimensions).

    Parameters
    ----------
    addr_width : int
        Byte-address width.
    dims : int
        Descriptor dimensions, >= 1.
    n_local : int
        Local SRAM write ports (width of ``dst_mask``).
    sram_size, hbm_size : int
        Bytes of a local SRAM / of HBM, for the range check; a REMOTE
        destination is checked against ``2**addr_width``.

    Attributes
    ----------
    i_stream : In(stream.Signature(descriptor_layout(...)))
        Descriptors (from the QoS arbiter).
    o_entry : Out(stream.Signature(entry_layout()))
        One completion entry per descriptor, in order (to the completion tracker).
    o_rows : Out(stream.Signature(row_layout(addr_width, n_local)))
        Rows of the good descriptors, ``first``/``last`` marking a descriptor's ends.
    busy : Out(1)
        A descriptor is being decoded or expanded.
    """

    def __init__(self, *, addr_width, dims, n_local, sram_size, hbm_size):
        self.aw, self.dims, self.n_local = addr_width, dims, n_local
        self.sram_size, self.hbm_size = sram_size, hbm_size
        self.desc_layout = descriptor_layout(addr_width=addr_width, dims=dims, n_local=n_local)
        super().__init__({
            "i_stream": In(stream.Signature(self.desc_layout)),
            "o_entry": Out(stream.Signature(entry_layout())),
            "o_rows": Out(stream.Signature(row_layout(addr_width, n_local))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        aw, dims = self.aw, self.dims
        wide = signed(aw + COUNT_BITS + 4)
        desc = Signal(self.desc_layout)
        ext_s = [Signal(wide, name=f"ext_s{d}") for d in range(1, dims)]
        ext_d = [Signal(wide, name=f"ext_d{d}") for d in range(1, dims)]
        idx = [Signal(COUNT_BITS, name=f"idx{d}") for d in range(1, dims)]
        ptr_s = [Signal(aw, name=f"ptr_s{d}") for d in range(1, dims)]
        ptr_d = [Signal(aw, name=f"ptr_d{d}") for d in range(1, dims)]
        first_row = Signal()
        outer = [desc.outer[d] for d in range(dims - 1)] if dims > 1 else []

        def space(kind):
            return Mux(kind == Kind.HBM, self.hbm_size,
                       Mux(kind == Kind.LOCAL, self.sram_size, 1 << aw))

        malformed = Signal()
        m.d.comb += malformed.eq((desc.length == 0) | (desc.length > MAX_LENGTH) |
                                 (desc.src_kind > Kind.LOCAL) | (desc.dst_kind > Kind.REMOTE) |
                                 ((desc.dst_kind == Kind.LOCAL) & (desc.dst_mask == 0)) |
                                 Cat(*[o.count == 0 for o in outer], Const(0, 1)).any())
        lo_s, hi_s = Signal(wide), Signal(wide)
        lo_d, hi_d = Signal(wide), Signal(wide)
        m.d.comb += [
            lo_s.eq(desc.src + sum((Mux(e < 0, e, 0) for e in ext_s), Const(0, wide))),
            hi_s.eq(desc.src + desc.length - 1 + sum((Mux(e > 0, e, 0) for e in ext_s), Const(0, wide))),
            lo_d.eq(desc.dst + sum((Mux(e < 0, e, 0) for e in ext_d), Const(0, wide))),
            hi_d.eq(desc.dst + desc.length - 1 + sum((Mux(e > 0, e, 0) for e in ext_d), Const(0, wide))),
        ]
        out_of_range = Signal()
        m.d.comb += out_of_range.eq((lo_s < 0) | (hi_s >= space(desc.src_kind)) |
                                    (lo_d < 0) | (hi_d >= space(desc.dst_kind)))

        last_row = Signal()
        m.d.comb += last_row.eq(Cat(*[idx[d] == outer[d].count - 1 for d in range(dims - 1)],
                                    Const(1, 1)).all())
        row = self.o_rows.payload
        m.d.comb += [
            row.src.eq(ptr_s[0] if dims > 1 else desc.src),
            row.dst.eq(ptr_d[0] if dims > 1 else desc.dst),
            row.len.eq(desc.length),
            row.first.eq(first_row),
            row.last.eq(last_row),
            row.src_kind.eq(desc.src_kind),
            row.dst_kind.eq(desc.dst_kind),
            row.dst_mask.eq(desc.dst_mask),
        ]
        with m.FSM(name="decode") as fsm:
            with m.State("IDLE"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    m.d.sync += desc.eq(self.i_stream.payload)
                    m.next = "EXTENT"
            with m.State("EXTENT"):
                # Registered products keep the multipliers off the row path.
                for d in range(dims - 1):
                    cnt = outer[d].count - 1
                    m.d.sync += [
                        ext_s[d].eq(cnt * outer[d].src_stride),
                        ext_d[d].eq(cnt * outer[d].dst_stride),
                    ]
                m.next = "CHECK"
            with m.State("CHECK"):
                entry = self.o_entry.payload
                m.d.comb += [
                    entry.sem.eq(desc.sem),
                    entry.skip.eq(malformed | out_of_range),
                    entry.err.eq(Mux(malformed, Err.MALFORMED, Mux(out_of_range, Err.RANGE, Err.OK))),
                    entry.hbm.eq(desc.dst_kind == Kind.HBM),
                    self.o_entry.valid.eq(1),
                ]
                with m.If(self.o_entry.ready):
                    for d in range(dims - 1):
                        m.d.sync += [idx[d].eq(0), ptr_s[d].eq(desc.src), ptr_d[d].eq(desc.dst)]
                    m.d.sync += first_row.eq(1)
                    with m.If(malformed | out_of_range):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "ROWS"
            with m.State("ROWS"):
                m.d.comb += self.o_rows.valid.eq(1)
                with m.If(self.o_rows.ready):
                    m.d.sync += first_row.eq(0)
                    with m.If(last_row):
                        m.next = "IDLE"
                    # Odometer: bump the innermost dimension not at its end and
                    # restart every dimension inside it at the new position.
                    for d in range(dims - 1):
                        inner_done = Cat(*[idx[e] == outer[e].count - 1 for e in range(d)],
                                         Const(1, 1)).all()
                        with m.If(inner_done & (idx[d] != outer[d].count - 1)):
                            ns = ptr_s[d] + outer[d].src_stride
                            nd = ptr_d[d] + outer[d].dst_stride
                            m.d.sync += [idx[d].eq(idx[d] + 1), ptr_s[d].eq(ns), ptr_d[d].eq(nd)]
                            for e in range(d):
                                m.d.sync += [idx[e].eq(0), ptr_s[e].eq(ns), ptr_d[e].eq(nd)]
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
