"""DMA realigner: source-aligned words -> destination-aligned words with byte strobes."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import SkidBuffer

from .axi import Resp
from .descriptor import ERR_BITS, KIND_BITS, LENGTH_BITS, Err, Kind
from .rows import rbeat_layout, row_layout, wbeat_layout

__all__ = ["Realigner"]


class Realigner(wiring.Component):
    """Shifts every row's source words to its destination's byte offset.

    For each row (taken the cycle the previous one ends) the source words
    arrive on ``i_hbm`` or ``i_sram`` (by ``src_kind``); a two-word window and
    one barrel shift give one destination-aligned word per cycle, with byte
    strobes for the row's first and last word. When the source offset is at
    least the destination offset one source word is taken first ("prime").
    Each write beat carries the descriptor's first read error so far (RD_*
    codes from the R responses; cleared at a descriptor's first row).

    Parameters
    ----------
    addr_width, data_width, n_local :
        As :class:`~hw.dma.DMAEngine`.

    Attributes
    ----------
    i_rows : In(stream.Signature(row_layout(addr_width, n_local)))
        Rows, in descriptor order.
    i_hbm : In(stream.Signature(rbeat_layout(data_width)))
        HBM source words with their AXI response.
    i_sram : In(stream.Signature(data_width))
        Local SRAM source words.
    o_stream : Out(stream.Signature(wbeat_layout(...)))
        Destination-aligned write beats (a registered stage).
    """

    def __init__(self, *, addr_width, data_width, n_local):
        self.aw, self.dw, self.n_local = addr_width, data_width, n_local
        self.lanes = data_width // 8
        self.lw = (self.lanes - 1).bit_length()
        self.beat_layout = wbeat_layout(data_width, addr_width - self.lw, n_local)
        super().__init__({
            "i_rows": In(stream.Signature(row_layout(addr_width, n_local))),
            "i_hbm": In(stream.Signature(rbeat_layout(data_width))),
            "i_sram": In(stream.Signature(data_width)),
            "o_stream": Out(stream.Signature(self.beat_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        lw, lanes = self.lw, self.lanes
        waw = self.aw - lw
        m.submodules.wskid = wskid = SkidBuffer(payload_shape=self.beat_layout)
        wiring.connect(m, wskid.o_stream, wiring.flipped(self.o_stream))
        al_active = Signal()
        al_prime = Signal()
        al_shift = Signal(range(lanes))
        al_src_left = Signal(LENGTH_BITS)
        al_dst_left = Signal(LENGTH_BITS)
        al_first = Signal()
        al_addr = Signal(waw)
        al_first_mask = Signal(lanes)
        al_last_mask = Signal(lanes)
        al_kind = Signal(KIND_BITS)
        al_dst_kind = Signal(KIND_BITS)
        al_dst_mask = Signal(self.n_local)
        al_desc_last = Signal()
        err_acc = Signal(ERR_BITS)
        lo = Signal(self.dw)

        src_valid = Signal()
        src_data = Signal(self.dw)
        src_err = Signal(ERR_BITS)
        src_take = Signal()
        with m.If(al_kind == Kind.HBM):
            m.d.comb += [
                src_valid.eq(self.i_hbm.valid),
                src_data.eq(self.i_hbm.payload.data),
                src_err.eq(Mux(self.i_hbm.payload.resp == Resp.SLVERR, Err.RD_SLVERR,
                               Mux(self.i_hbm.payload.resp == Resp.DECERR, Err.RD_DECERR, Err.OK))),
                self.i_hbm.ready.eq(src_take),
            ]
        with m.Else():
            m.d.comb += [
                src_valid.eq(self.i_sram.valid),
                src_data.eq(self.i_sram.payload),
                self.i_sram.ready.eq(src_take),
            ]
        err_next = Signal(ERR_BITS)
        m.d.comb += err_next.eq(Mux((err_acc == 0) & src_take, src_err, err_acc))
        m.d.sync += err_acc.eq(err_next)

        need = al_src_left != 0
        out = wskid.i_stream
        out_fire = Signal()
        al_end = Signal()
        window = Cat(lo, Mux(need, src_data, 0))
        ones = (1 << lanes) - 1
        last_beat = al_dst_left == 1
        with m.If(al_active):
            with m.If(al_prime):
                m.d.comb += src_take.eq(src_valid)
                with m.If(src_valid):
                    m.d.sync += [lo.eq(src_data), al_prime.eq(0), al_src_left.eq(al_src_left - 1)]
            with m.Else():
                m.d.comb += [
                    out.valid.eq(~need | src_valid),
                    out.payload.data.eq(window.bit_select(al_shift * 8, self.dw)),
                    out.payload.strb.eq(Mux(al_first, al_first_mask, ones) &
                                        Mux(last_beat, al_last_mask, ones)),
                    out.payload.addr.eq(al_addr),
                    out.payload.desc_last.eq(al_desc_last & last_beat),
                    out.payload.err.eq(err_next),
                    out.payload.dst_kind.eq(al_dst_kind),
                    out.payload.dst_mask.eq(al_dst_mask),
                    out_fire.eq(out.valid & out.ready),
                    src_take.eq(out_fire & need),
                    al_end.eq(out_fire & last_beat),
                ]
                with m.If(out_fire):
                    m.d.sync += [al_dst_left.eq(al_dst_left - 1), al_first.eq(0),
                                 al_addr.eq(al_addr + 1)]
                    with m.If(need):
                        m.d.sync += [lo.eq(src_data), al_src_left.eq(al_src_left - 1)]
                    with m.If(last_beat):
                        m.d.sync += al_active.eq(0)
        rows = self.i_rows
        with m.If(~al_active | al_end):
            m.d.comb += rows.ready.eq(1)
            with m.If(rows.valid):
                r = rows.payload
                so = Signal(lw, name="al_so")
                do = Signal(lw, name="al_do")
                m.d.comb += [so.eq(r.src[:lw]), do.eq(r.dst[:lw])]
                m.d.sync += [
                    al_active.eq(1),
                    al_prime.eq(so >= do),
                    al_shift.eq(so - do),  # modulo the lane count
                    al_src_left.eq(((so + r.len - 1) >> lw) + 1),
                    al_dst_left.eq(((do + r.len - 1) >> lw) + 1),
                    al_first.eq(1),
                    al_addr.eq(r.dst[lw:]),
                    al_first_mask.eq((Const(ones, lanes) << do)[:lanes]),
                    al_last_mask.eq(Const(ones, lanes) >> (~(do + r.len - 1)[:lw])[:lw]),
                    al_kind.eq(r.src_kind),
                    al_dst_kind.eq(r.dst_kind),
                    al_dst_mask.eq(r.dst_mask),
                    al_desc_last.eq(r.last),
                ]
                with m.If(r.first):
                    # A new descriptor: its read errors start from scratch.
                    m.d.sync += err_acc.eq(0)
        return m
