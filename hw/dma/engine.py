"""Descriptor-based N-D DMA engine: HBM (AXI4), local SRAM(s) and a NoC-facing remote port.

The engine is a pipeline of stream-connected stages (docs/dma.md, "Structure")::

    queues -> QoSArbiter -> DescriptorDecoder -+-> rows -> ReadIssuer --- AR / R, sram_rd
                                               |          Realigner <-- read buffers
                                               |            -> WriteRouter -> W, sram_wr, noc
                                               |  rows -> WriteIssuer --- AW, W lengths, B tracking
                                               +-> CompletionTracker <- B, write-done -> o_done

This module instantiates and connects them and maps their streams onto the
flat AXI4 port.
"""
from amaranth.hdl import Cat, Const, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import StreamBroadcast, StreamFIFO, check_int, check_pow2
from hw.mem.sram import SRAMPortSignature

from .axi import AXI4Signature
from .completion import CompletionTracker
from .decode import DescriptorDecoder
from .descriptor import Kind, completion_layout, descriptor_layout, noc_layout
from .qos import QoSArbiter
from .read import ReadIssuer
from .realign import Realigner
from .rows import PAGE, row_layout
from .write import WriteIssuer, WriteRouter

__all__ = ["DMAEngine", "noc_layout"]


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

    def elaborate(self, platform):
        m = Module()
        lw = self.lw
        rows = row_layout(self.aw, self.n_local)

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

        # ---- the stages ---------------------------------------------------------
        common = dict(addr_width=self.aw, data_width=self.dw, n_local=self.n_local)
        m.submodules.decoder = dec = DescriptorDecoder(
            addr_width=self.aw, dims=self.dims, n_local=self.n_local,
            sram_size=self.sram_size, hbm_size=self.hbm_size)
        m.submodules.reader = rd = ReadIssuer(**common, sram_addr_width=self.sram_aw,
                                              max_burst=self.max_burst,
                                              read_buffer=self.read_buffer)
        m.submodules.realigner = al = Realigner(**common)
        m.submodules.aw_issuer = wr = WriteIssuer(**common, max_burst=self.max_burst,
                                                  max_writes=self.max_writes)
        m.submodules.router = rt = WriteRouter(**common, sram_addr_width=self.sram_aw,
                                               inflight=self.inflight)
        m.submodules.completion = cpl = CompletionTracker(inflight=self.inflight)

        # ---- rows: one copy each for the read issuer, the realigner and (HBM
        # destinations only) the AW issuer, buffered so that they run apart ----------
        wiring.connect(m, qos.o_stream, dec.i_stream)
        wiring.connect(m, dec.o_entry, cpl.i_entry)
        m.submodules.row_bc = row_bc = StreamBroadcast(payload_shape=rows, n=3)
        wiring.connect(m, dec.o_rows, row_bc.i_stream)
        m.d.comb += row_bc.mask.eq(Cat(Const(0b11, 2), row_bc.i_stream.payload.dst_kind == Kind.HBM))
        for i, (name, depth, stage) in enumerate([("rows_rd", 4, rd), ("rows_al", 16, al),
                                                  ("rows_wr", 4, wr)]):
            m.submodules[name] = fifo = StreamFIFO(payload_shape=rows, depth=depth)
            wiring.connect(m, row_bc.o_streams[i], fifo.i_stream)
            wiring.connect(m, fifo.o_stream, stage.i_rows)

        # ---- data path and completion ----------------------------------------------
        wiring.connect(m, rd.o_hbm, al.i_hbm)
        wiring.connect(m, rd.o_sram, al.i_sram)
        wiring.connect(m, al.o_stream, rt.i_stream)
        wiring.connect(m, wr.o_wlen, rt.i_wlen)
        wiring.connect(m, wr.o_btrack, cpl.i_btrack)
        wiring.connect(m, rt.o_wdone, cpl.i_wdone)
        wiring.connect(m, cpl.o_done, wiring.flipped(self.o_done))
        wiring.connect(m, rd.sram, wiring.flipped(self.sram_rd))
        for i in range(self.n_local):
            wiring.connect(m, rt.sram_wr[i], wiring.flipped(self.sram_wr[i]))
        wiring.connect(m, rt.o_noc, wiring.flipped(self.noc))

        # ---- the flat AXI4 port: INCR bursts of full words, ID 0 ---------------------
        axi = self.m_axi
        for pre, req in (("ar", rd.o_ar), ("aw", wr.o_aw)):
            m.d.comb += [
                getattr(axi, f"{pre}valid").eq(req.valid),
                getattr(axi, f"{pre}addr").eq(req.payload.addr << lw),
                getattr(axi, f"{pre}len").eq(req.payload.len),
                getattr(axi, f"{pre}size").eq(lw),
                getattr(axi, f"{pre}burst").eq(1),
                getattr(axi, f"{pre}id").eq(0),
                req.ready.eq(getattr(axi, f"{pre}ready")),
            ]
        m.d.comb += [
            rd.i_r.valid.eq(axi.rvalid),
            rd.i_r.payload.data.eq(axi.rdata),
            rd.i_r.payload.resp.eq(axi.rresp),
            axi.rready.eq(rd.i_r.ready),
            axi.wvalid.eq(rt.o_w.valid),
            axi.wdata.eq(rt.o_w.payload.data),
            axi.wstrb.eq(rt.o_w.payload.strb),
            axi.wlast.eq(rt.o_w.payload.last),
            rt.o_w.ready.eq(axi.wready),
            cpl.i_b.valid.eq(axi.bvalid),
            cpl.i_b.payload.eq(axi.bresp),
            axi.bready.eq(cpl.i_b.ready),
        ]

        m.d.comb += [
            self.errors.eq(cpl.errors),
            self.busy.eq(Cat(*[lv != 0 for lv in queue_level]).any() | dec.busy | cpl.pending),
        ]
        return m
