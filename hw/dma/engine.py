"""Descriptor-based N-D DMA engine: HBM (AXI4), local SRAM(s) and a NoC-facing remote port."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import SkidBuffer, StreamBroadcast, StreamFIFO, check_int, check_pow2, saturating_add
from hw.mem.sram import SRAMPortSignature

from .axi import AXI4Signature, Resp
from .descriptor import (COUNT_BITS, ERR_BITS, KIND_BITS, LENGTH_BITS, MAX_LENGTH, SEM_BITS, Err,
                         Kind, completion_layout, descriptor_layout, noc_layout)
from .qos import QoSArbiter

__all__ = ["DMAEngine", "noc_layout"]

PAGE = 4096  # AXI bursts never cross a 4 KiB boundary


def _row_cursor(m, rows, *, step, amount, done, active, cur, end, addr, span, latch):
    """Word cursor over the current row, shared by the read and write issuers.

    ``cur`` advances by ``amount`` on ``step``; when the row is finished (or
    none is active) the next row is taken from the ``rows`` FIFO: ``cur`` and
    ``end`` become its first and last word (``addr(row)`` bits ``span``), and
    ``latch(row)`` lists the issuer's own per-row registers.
    """
    lw, aw = span
    with m.If(step):
        m.d.sync += cur.eq(cur + amount)
    with m.If(done):
        m.d.sync += active.eq(0)
    with m.If(~active | done):
        m.d.comb += rows.o_stream.ready.eq(1)
        with m.If(rows.o_stream.valid):
            r = rows.o_stream.payload
            m.d.sync += [
                active.eq(1),
                cur.eq(addr(r)[lw:]),
                end.eq((addr(r) + r.len - 1)[lw:aw]),
                *latch(r),
            ]


class DMAEngine(wiring.Component):
    """N-D strided DMA between HBM (AXI4 master), local SRAMs and a remote port.

    Descriptors (``hw.dma.descriptor.descriptor_layout``) enter one of
    ``queues`` priority classes, are decoded (malformed / out-of-range
    descriptors complete at once with an error and move nothing), expanded into
    rows (contiguous runs of dimension 0), and each row is read as aligned words,
    realigned to the destination's byte offset and written with byte strobes.
    HBM reads are split into INCR bursts of at most ``max_burst`` beats that
    never cross 4 KiB; up to ``read_buffer`` beats are in flight (space in the
    read buffer is reserved at AR time, so R never back-pressures). Writes to
    HBM are split the same way with up to ``max_writes`` bursts awaiting B.
    A local destination is a mask over ``n_local`` SRAM write ports: several
    bits broadcast one read to several SRAMs. Completions (semaphore id and
    error code) leave in descriptor order on ``o_done``.

    Parameters
    ----------
    addr_width : int
        HBM / remote byte-address width.
    data_width : int
        AXI, SRAM and internal data width in bits.
    dims : int
        Descriptor dimensions (dimension 0 contiguous), >= 1.
    n_local : int
        Local SRAM write ports (broadcast fan-out), >= 1.
    sram_size : int
        Bytes of each local SRAM (range check, word-address width).
    hbm_size : int
        Bytes of HBM reachable (range check); default ``2**addr_width``.
    queues : int
        Descriptor queues (priority classes, 0 highest).
    queue_depth : int
        Entries per descriptor queue.
    starve_limit : int
        Bound on how many descriptors a higher class passes a waiting lower one.
    max_burst : int
        Beats per AXI burst (power of two, <= 256).
    read_buffer : int
        Read-data buffer in beats (>= ``max_burst``); bounds reads in flight.
    max_writes : int
        Write bursts awaiting B.
    inflight : int
        Descriptors between decode and completion.

    Attributes
    ----------
    i_desc : In(stream.Signature(descriptor_layout)).array(queues)
        Descriptor queues.
    o_done : Out(stream.Signature(completion_layout()))
        Completions, in descriptor order.
    m_axi : Out(AXI4Signature)
        HBM port; flattened names ``m_axi__awaddr`` ... (see ``hw/dma/axi.py``).
    sram_rd : Out(SRAMPortSignature)
        Local SRAM read port (word addresses).
    sram_wr : Out(SRAMPortSignature).array(n_local)
        Local SRAM write ports.
    noc : Out(stream.Signature(noc_layout))
        Remote writes (tile-to-tile copies); ``last`` ends a descriptor.
    errors : Out(16)
        Descriptors completed with an error (saturating).
    busy : Out(1)
        A descriptor is queued or in flight.
    """

    def __init__(self, *, addr_width=32, data_width=64, dims=3, n_local=1, sram_size=65536,
                 hbm_size=None, queues=2, queue_depth=4, starve_limit=4, max_burst=16,
                 read_buffer=64, max_writes=8, inflight=8):
        self.aw = check_int("addr_width", addr_width, min=16, max=48)
        self.dw = check_pow2("data_width", data_width, min=16, max=1024)
        self.lanes = data_width // 8
        self.lw = (self.lanes - 1).bit_length()
        self.dims = check_int("dims", dims, min=1, max=6)
        self.n_local = check_int("n_local", n_local, min=1, max=16)
        self.sram_size = check_pow2("sram_size", sram_size, min=self.lanes * 2, max=1 << addr_width)
        self.hbm_size = check_int("hbm_size", hbm_size if hbm_size is not None else 1 << addr_width,
                                  min=PAGE, max=1 << addr_width)
        self.queues = check_int("queues", queues, min=1, max=8)
        self.queue_depth = check_int("queue_depth", queue_depth, min=1)
        self.starve_limit = check_int("starve_limit", starve_limit, min=1, max=255)
        self.max_burst = check_pow2("max_burst", max_burst, min=1, max=min(256, PAGE // self.lanes))
        self.read_buffer = check_int("read_buffer", read_buffer, min=max_burst)
        self.max_writes = check_int("max_writes", max_writes, min=1)
        self.inflight = check_int("inflight", inflight, min=1)
        self.sram_aw = (self.sram_size // self.lanes - 1).bit_length()
        self.desc_layout = descriptor_layout(addr_width=addr_width, dims=dims, n_local=n_local)
        sram_sig = SRAMPortSignature(addr_width=self.sram_aw, data_width=data_width)
        super().__init__({
            "i_desc": In(stream.Signature(self.desc_layout)).array(queues),
            "o_done": Out(stream.Signature(completion_layout())),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width)),
            "sram_rd": Out(sram_sig),
            "sram_wr": Out(sram_sig).array(n_local),
            "noc": Out(stream.Signature(noc_layout(addr_width, data_width))),
            "errors": Out(16),
            "busy": Out(1),
        })

    # -- helpers -------------------------------------------------------------

    def _burst_beats(self, m, cur, end, name):
        """Beats of the next burst from word ``cur`` to word ``end`` (inclusive)."""
        page_words = PAGE // self.lanes
        pw_bits = (page_words - 1).bit_length()
        left = Signal(range(1 << 20), name=f"{name}_left")
        to_page = Signal(range(page_words + 1), name=f"{name}_to_page")
        beats = Signal(range(self.max_burst + 1), name=f"{name}_beats")
        m.d.comb += [
            left.eq(end - cur + 1),
            to_page.eq(page_words - (cur[:pw_bits] if pw_bits else 0)),
            beats.eq(self.max_burst),
        ]
        with m.If((to_page < self.max_burst) & (to_page <= left)):
            m.d.comb += beats.eq(to_page)
        with m.Elif(left < self.max_burst):
            m.d.comb += beats.eq(left)
        return beats

    def elaborate(self, platform):
        m = Module()
        aw, lw, lanes, dims = self.aw, self.lw, self.lanes, self.dims
        waw = aw - lw  # word-address width
        wide = signed(aw + COUNT_BITS + 4)

        row_layout = data.StructLayout({
            "src": aw, "dst": aw, "len": LENGTH_BITS, "first": 1, "last": 1,
            "src_kind": KIND_BITS, "dst_kind": KIND_BITS, "dst_mask": self.n_local,
        })
        comp_entry = data.StructLayout({"sem": SEM_BITS, "err": ERR_BITS, "skip": 1, "hbm": 1})

        # ---- descriptor queues and QoS arbitration -----------------------------
        m.submodules.qos = qos = QoSArbiter(payload_shape=self.desc_layout, n=self.queues,
                                            starve_limit=self.starve_limit)
        queue_level = []
        for q in range(self.queues):
            fifo = StreamFIFO(payload_shape=self.desc_layout, depth=self.queue_depth)
            m.submodules[f"queue{q}"] = fifo
            wiring.connect(m, wiring.flipped(self.i_desc[q]), fifo.i_stream)
            wiring.connect(m, fifo.o_stream, qos.i_streams[q])
            queue_level.append(fifo.level)

        # ---- decode + row generation --------------------------------------------
        m.submodules.comp_fifo = comp_fifo = StreamFIFO(payload_shape=comp_entry, depth=self.inflight)
        m.submodules.row_bc = row_bc = StreamBroadcast(payload_shape=row_layout, n=3)
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
        row = row_bc.i_stream.payload
        m.d.comb += [
            row.src.eq(ptr_s[0] if dims > 1 else desc.src),
            row.dst.eq(ptr_d[0] if dims > 1 else desc.dst),
            row.len.eq(desc.length),
            row.first.eq(first_row),
            row.last.eq(last_row),
            row.src_kind.eq(desc.src_kind),
            row.dst_kind.eq(desc.dst_kind),
            row.dst_mask.eq(desc.dst_mask),
            # The AW issuer only sees rows written to HBM.
            row_bc.mask.eq(Cat(Const(0b11, 2), row.dst_kind == Kind.HBM)),
        ]
        with m.FSM(name="decode") as decode_fsm:
            with m.State("IDLE"):
                m.d.comb += qos.o_stream.ready.eq(1)
                with m.If(qos.o_stream.valid):
                    m.d.sync += desc.eq(qos.o_stream.payload)
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
                entry = comp_fifo.i_stream.payload
                m.d.comb += [
                    entry.sem.eq(desc.sem),
                    entry.skip.eq(malformed | out_of_range),
                    entry.err.eq(Mux(malformed, Err.MALFORMED.value,
                                     Mux(out_of_range, Err.RANGE.value, Err.OK.value))),
                    entry.hbm.eq(desc.dst_kind == Kind.HBM),
                    comp_fifo.i_stream.valid.eq(1),
                ]
                with m.If(comp_fifo.i_stream.ready):
                    for d in range(dims - 1):
                        m.d.sync += [idx[d].eq(0), ptr_s[d].eq(desc.src), ptr_d[d].eq(desc.dst)]
                    m.d.sync += first_row.eq(1)
                    with m.If(malformed | out_of_range):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "ROWS"
            with m.State("ROWS"):
                m.d.comb += row_bc.i_stream.valid.eq(1)
                with m.If(row_bc.i_stream.ready):
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

        rows_rd = StreamFIFO(payload_shape=row_layout, depth=4)
        rows_al = StreamFIFO(payload_shape=row_layout, depth=16)
        rows_wr = StreamFIFO(payload_shape=row_layout, depth=4)
        m.submodules.rows_rd, m.submodules.rows_al, m.submodules.rows_wr = rows_rd, rows_al, rows_wr
        wiring.connect(m, row_bc.o_streams[0], rows_rd.i_stream)
        wiring.connect(m, row_bc.o_streams[1], rows_al.i_stream)
        wiring.connect(m, row_bc.o_streams[2], rows_wr.i_stream)

        # ---- read issue: AR bursts (HBM) or word reads (local SRAM) ---------------
        axi = self.m_axi
        rbeat_layout = data.StructLayout({"data": self.dw, "resp": Resp.as_shape()})
        m.submodules.rbuf = rbuf = StreamFIFO(payload_shape=rbeat_layout, depth=self.read_buffer)
        m.submodules.sbuf = sbuf = StreamFIFO(payload_shape=self.dw, depth=4)
        ar_layout = data.StructLayout({"addr": waw, "len": 8})
        m.submodules.ar_skid = ar_skid = SkidBuffer(payload_shape=ar_layout)
        m.d.comb += [
            axi.arvalid.eq(ar_skid.o_stream.valid),
            axi.araddr.eq(ar_skid.o_stream.payload.addr << lw),
            axi.arlen.eq(ar_skid.o_stream.payload.len),
            axi.arsize.eq(lw),
            axi.arburst.eq(1),
            axi.arid.eq(0),
            ar_skid.o_stream.ready.eq(axi.arready),
        ]
        r_reserved = Signal(range(self.read_buffer + 1))  # beats requested, not yet buffered
        s_reserved = Signal(range(4 + 1))
        rd_active = Signal()
        rd_cur = Signal(waw)
        rd_end = Signal(waw)
        rd_kind = Signal(KIND_BITS)
        rd_beats = self._burst_beats(m, rd_cur, rd_end, "rd")
        ar_push = Signal()
        s_push = Signal()
        rd_step = Signal()  # the burst / word at rd_cur is issued this cycle
        r_room = Signal()
        m.d.comb += r_room.eq(r_reserved + rbuf.level + rd_beats <= self.read_buffer)
        with m.If(rd_active):
            with m.If(rd_kind == Kind.HBM):
                m.d.comb += [
                    ar_skid.i_stream.valid.eq(r_room),
                    ar_skid.i_stream.payload.addr.eq(rd_cur),
                    ar_skid.i_stream.payload.len.eq(rd_beats - 1),
                    ar_push.eq(r_room & ar_skid.i_stream.ready),
                    rd_step.eq(ar_push),
                ]
            with m.Else():
                room = s_reserved + sbuf.level < 4
                m.d.comb += [
                    self.sram_rd.req.valid.eq(room),
                    s_push.eq(room & self.sram_rd.req.ready),
                    rd_step.eq(s_push),
                ]
        # Outside any If, so the constant fields are plain assigns (lint-clean Verilog).
        m.d.comb += [
            self.sram_rd.req.payload.addr.eq(rd_cur),
            self.sram_rd.req.payload.we.eq(0),
            self.sram_rd.req.payload.wstrb.eq(0),
            self.sram_rd.req.payload.wdata.eq(0),
        ]
        step_words = Mux(rd_kind == Kind.HBM, rd_beats, 1)
        rd_done = rd_step & (rd_cur + step_words > rd_end)
        _row_cursor(m, rows_rd, step=rd_step, amount=step_words, done=rd_done, active=rd_active,
                    cur=rd_cur, end=rd_end, addr=lambda r: r.src, span=(lw, aw),
                    latch=lambda r: [rd_kind.eq(r.src_kind)])
        r_accept = axi.rvalid & axi.rready
        m.d.comb += [
            axi.rready.eq(rbuf.i_stream.ready),
            rbuf.i_stream.valid.eq(axi.rvalid),
            rbuf.i_stream.payload.data.eq(axi.rdata),
            rbuf.i_stream.payload.resp.eq(axi.rresp),
        ]
        m.d.sync += r_reserved.eq(r_reserved + Mux(ar_push, rd_beats, 0) - r_accept)
        wiring.connect(m, wiring.flipped(self.sram_rd.rsp), sbuf.i_stream)
        s_accept = self.sram_rd.rsp.valid & self.sram_rd.rsp.ready
        m.d.sync += s_reserved.eq(s_reserved + s_push - s_accept)

        # ---- realigner: source-aligned words -> destination-aligned words --------
        wbeat_layout = data.StructLayout({
            "data": self.dw, "strb": lanes, "addr": waw, "desc_last": 1, "err": ERR_BITS,
            "dst_kind": KIND_BITS, "dst_mask": self.n_local,
        })
        m.submodules.wskid = wskid = SkidBuffer(payload_shape=wbeat_layout)
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
                src_valid.eq(rbuf.o_stream.valid),
                src_data.eq(rbuf.o_stream.payload.data),
                src_err.eq(Mux(rbuf.o_stream.payload.resp == Resp.SLVERR, Err.RD_SLVERR,
                               Mux(rbuf.o_stream.payload.resp == Resp.DECERR, Err.RD_DECERR, Err.OK))),
                rbuf.o_stream.ready.eq(src_take),
            ]
        with m.Else():
            m.d.comb += [
                src_valid.eq(sbuf.o_stream.valid),
                src_data.eq(sbuf.o_stream.payload),
                sbuf.o_stream.ready.eq(src_take),
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
        with m.If(~al_active | al_end):
            m.d.comb += rows_al.o_stream.ready.eq(1)
            with m.If(rows_al.o_stream.valid):
                r = rows_al.o_stream.payload
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

        # ---- AW issue (HBM destinations) ----------------------------------------
        aw_layout = data.StructLayout({"addr": waw, "len": 8})
        m.submodules.aw_fifo = aw_fifo = StreamFIFO(payload_shape=aw_layout, depth=2)
        m.submodules.wlen_fifo = wlen_fifo = StreamFIFO(payload_shape=8, depth=self.max_writes)
        m.submodules.btrack = btrack = StreamFIFO(payload_shape=1, depth=self.max_writes)
        m.d.comb += [
            axi.awvalid.eq(aw_fifo.o_stream.valid),
            axi.awaddr.eq(aw_fifo.o_stream.payload.addr << lw),
            axi.awlen.eq(aw_fifo.o_stream.payload.len),
            axi.awsize.eq(lw),
            axi.awburst.eq(1),
            axi.awid.eq(0),
            aw_fifo.o_stream.ready.eq(axi.awready),
        ]
        wr_active = Signal()
        wr_cur = Signal(waw)
        wr_end = Signal(waw)
        wr_last_row = Signal()
        wr_beats = self._burst_beats(m, wr_cur, wr_end, "wr")
        wr_step = Signal()
        wr_is_last = wr_cur + wr_beats > wr_end
        with m.If(wr_active):
            ok = aw_fifo.i_stream.ready & wlen_fifo.i_stream.ready & btrack.i_stream.ready
            m.d.comb += [
                wr_step.eq(ok),
                aw_fifo.i_stream.valid.eq(ok),
                aw_fifo.i_stream.payload.addr.eq(wr_cur),
                aw_fifo.i_stream.payload.len.eq(wr_beats - 1),
                wlen_fifo.i_stream.valid.eq(ok),
                wlen_fifo.i_stream.payload.eq(wr_beats - 1),
                btrack.i_stream.valid.eq(ok),
                btrack.i_stream.payload.eq(wr_last_row & wr_is_last),
            ]
        wr_done = wr_step & wr_is_last
        _row_cursor(m, rows_wr, step=wr_step, amount=wr_beats, done=wr_done, active=wr_active,
                    cur=wr_cur, end=wr_end, addr=lambda r: r.dst, span=(lw, aw),
                    latch=lambda r: [wr_last_row.eq(r.last)])

        # ---- B responses ----------------------------------------------------------
        m.submodules.bdone = bdone = StreamFIFO(payload_shape=ERR_BITS, depth=self.inflight)
        berr = Signal(ERR_BITS)
        b_code = Mux(axi.bresp == Resp.SLVERR, Err.WR_SLVERR,
                     Mux(axi.bresp == Resp.DECERR, Err.WR_DECERR, Err.OK))
        b_err_next = Mux(berr == 0, b_code, berr)
        m.d.comb += [
            axi.bready.eq(btrack.o_stream.valid & bdone.i_stream.ready),
            btrack.o_stream.ready.eq(axi.bvalid & axi.bready),
            bdone.i_stream.payload.eq(b_err_next),
            bdone.i_stream.valid.eq(axi.bvalid & axi.bready & btrack.o_stream.payload),
        ]
        with m.If(axi.bvalid & axi.bready):
            m.d.sync += berr.eq(Mux(btrack.o_stream.payload, 0, b_err_next))

        # ---- write routing: W channel, local SRAM ports (broadcast), NoC -------------
        m.submodules.rdone = rdone = StreamFIFO(payload_shape=ERR_BITS, depth=self.inflight)
        req_layout = self.sram_wr[0].req.payload.shape()
        m.submodules.local_bc = local_bc = StreamBroadcast(payload_shape=req_layout, n=self.n_local)
        for i in range(self.n_local):
            wiring.connect(m, local_bc.o_streams[i], wiring.flipped(self.sram_wr[i].req))
            m.d.comb += self.sram_wr[i].rsp.ready.eq(1)
        wb = wskid.o_stream
        can = ~wb.payload.desc_last | rdone.i_stream.ready
        wcnt = Signal(8)
        wlast = wcnt == wlen_fifo.o_stream.payload
        m.d.comb += [
            axi.wdata.eq(wb.payload.data),
            axi.wstrb.eq(wb.payload.strb),
            axi.wlast.eq(wlast),
            local_bc.mask.eq(wb.payload.dst_mask),
            local_bc.i_stream.payload.addr.eq(wb.payload.addr),
            local_bc.i_stream.payload.we.eq(1),
            local_bc.i_stream.payload.wstrb.eq(wb.payload.strb),
            local_bc.i_stream.payload.wdata.eq(wb.payload.data),
            self.noc.payload.addr.eq(wb.payload.addr << lw),
            self.noc.payload.data.eq(wb.payload.data),
            self.noc.payload.strb.eq(wb.payload.strb),
            self.noc.payload.last.eq(wb.payload.desc_last),
        ]
        with m.Switch(wb.payload.dst_kind):
            with m.Case(Kind.HBM):
                m.d.comb += [
                    axi.wvalid.eq(wb.valid & can & wlen_fifo.o_stream.valid),
                    wb.ready.eq(axi.wready & can & wlen_fifo.o_stream.valid),
                ]
            with m.Case(Kind.LOCAL):
                m.d.comb += [
                    local_bc.i_stream.valid.eq(wb.valid & can),
                    wb.ready.eq(local_bc.i_stream.ready & can),
                ]
            with m.Default():
                m.d.comb += [
                    self.noc.valid.eq(wb.valid & can),
                    wb.ready.eq(self.noc.ready & can),
                ]
        w_fire = axi.wvalid & axi.wready
        with m.If(w_fire):
            m.d.sync += wcnt.eq(Mux(wlast, 0, wcnt + 1))
        m.d.comb += wlen_fifo.o_stream.ready.eq(w_fire & wlast)
        m.d.comb += [
            rdone.i_stream.valid.eq(wb.valid & wb.ready & wb.payload.desc_last),
            rdone.i_stream.payload.eq(wb.payload.err),
        ]

        # ---- completion (in descriptor order) ---------------------------------------
        head = comp_fifo.o_stream.payload
        ready_to_complete = comp_fifo.o_stream.valid & (
            head.skip | (rdone.o_stream.valid & (~head.hbm | bdone.o_stream.valid)))
        done_fire = self.o_done.valid & self.o_done.ready
        m.d.comb += [
            self.o_done.valid.eq(ready_to_complete),
            self.o_done.payload.sem.eq(head.sem),
            self.o_done.payload.err.eq(
                Mux(head.skip, head.err,
                    Mux(rdone.o_stream.payload != 0, rdone.o_stream.payload,
                        Mux(head.hbm, bdone.o_stream.payload, 0)))),
            comp_fifo.o_stream.ready.eq(done_fire),
            rdone.o_stream.ready.eq(done_fire & ~head.skip),
            bdone.o_stream.ready.eq(done_fire & ~head.skip & head.hbm),
        ]
        with m.If(done_fire & (self.o_done.payload.err != 0)):
            saturating_add(m, self.errors)

        m.d.comb += self.busy.eq(Cat(*[lv != 0 for lv in queue_level]).any() |
                                 ~decode_fsm.ongoing("IDLE") | comp_fifo.o_stream.valid)
        return m
