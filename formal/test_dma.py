"""Formal checks of the memory system and the DMA engine.

Testplan (docs/dma.md and docs/mem.md, "Testplan"):
* ``QoSArbiter``: stream rules on the output and age invariants (bmc); the
  low class waits for at most ``starve_limit`` grants to the high class while
  it requests (bmc), covers for the worst wait and contention.
* ``BankedSRAM``: per port, reads accepted - responses delivered stays within
  the response buffering (no response lost or duplicated) and the response
  stream rules hold (bmc), covers for a resolved bank conflict and a full port.
* ``DMAEngine`` (small instance, free descriptors and AXI responses): every AR
  and AW burst lies inside HBM and never crosses 4 KiB (address bounds), and an
  R beat is always accepted when offered, so none is lost, as long as the slave
  returns only requested beats (bmc); covers for a split burst and a completion.
* ``ReadIssuer`` (the engine's read stage alone, free rows, an honest AXI
  slave and SRAM): R beats and SRAM responses are always accepted, every AR
  burst has 1 .. ``max_burst`` beats and stays in its 4 KiB page, AR and the
  read-buffer outputs obey the stream rules (bmc) + covers.
* ``RemoteWriter``: stream rules on its output, every input beat is either
  sent, dropped and counted, or held (none lost or duplicated), a packet never
  exceeds ``max_beats`` (prove) + covers.
* Mutant: an arbiter that never promotes the low class fails the bounded wait.
"""
import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal

from formal import harness
from formal.properties import (beat, check_invariants, check_source, drive_sink, drive_source,
                               one_in_one_out)
from hw.dma import DMAEngine, QoSArbiter, ReadIssuer, RemoteWriter
from hw.dma.descriptor import MAX_LENGTH
from hw.mem import BankedSRAM


class QoSCheck(Elaboratable):
    def __init__(self, dut, limit):
        self.dut, self.limit = dut, limit

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        for i, s in enumerate(dut.i_streams):
            drive_source(m, s, name=f"i{i}")
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        check_invariants(m, dut)
        low = dut.i_streams[1]
        fire = beat(dut.o_stream)
        waited = Signal(range(self.limit + 2))
        with m.If(~low.valid | (fire & (dut.o_index == 1))):
            m.d.sync += waited.eq(0)
        with m.Elif(fire):
            m.d.sync += waited.eq(waited + 1)
        m.d.comb += [
            Assert(waited <= self.limit, "bounded_wait"),
            Cover(waited == self.limit, "worst_wait"),
            Cover(dut.i_streams[0].valid & low.valid & fire & (dut.o_index == 1), "low_wins"),
        ]
        return m


class NoAgeing(QoSArbiter):
    """Mutant: ages never grow, so a busy high class starves the low one."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        for a in self.age:
            m.d.sync += a.eq(0)
        return m


def test_qos_arbiter():
    limit = 3
    harness.check(QoSCheck(QoSArbiter(payload_shape=2, n=2, starve_limit=limit), limit),
                  name="dma_qos", modes=("bmc", "cover"), depth=2 * limit + 8)


def test_mutant_qos_starves():
    with pytest.raises(AssertionError, match="prove|bmc"):
        harness.check(QoSCheck(NoAgeing(payload_shape=2, n=2, starve_limit=3), 3),
                      name="dma_qos_mutant", modes=("bmc",), depth=10)


class SRAMCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        for p, port in enumerate(dut.ports):
            drive_source(m, port.req, name=f"req{p}")
            drive_sink(m, port.rsp)
            check_source(m, port.rsp, name=f"rsp{p}")
            # Reads in - responses out == responses held (pipeline + FIFO).
            n = Signal(4, name=f"outstanding{p}")
            rd = beat(port.req) & ~port.req.payload.we
            with m.If(rd & ~beat(port.rsp)):
                m.d.sync += n.eq(n + 1)
            with m.Elif(beat(port.rsp) & ~rd):
                m.d.sync += n.eq(n - 1)
            m.d.comb += Assert(n <= BankedSRAM.RSP_DEPTH, f"outstanding{p}_bounded")
            m.d.comb += Cover(n == BankedSRAM.RSP_DEPTH, f"outstanding{p}_full")
        both = dut.ports[0].req.valid & dut.ports[1].req.valid & \
            (dut.ports[0].req.payload.addr[0] == dut.ports[1].req.payload.addr[0])
        m.d.comb += [
            Cover(both & beat(dut.ports[1].req), "conflict_resolved"),
            Cover(dut.conflicts == 2, "two_conflicts"),
        ]
        return m


def test_banked_sram():
    dut = BankedSRAM(size=32, banks=2, width=8, ports=2)
    harness.check(SRAMCheck(dut), name="mem_sram", modes=("bmc", "cover"), depth=10)


class DMACheck(Elaboratable):
    """Free descriptors and AXI inputs; the slave returns only beats it owes."""

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        lanes = dut.lanes
        for q, s in enumerate(dut.i_desc):
            drive_source(m, s, name=f"desc{q}")
        drive_sink(m, dut.o_done)
        drive_sink(m, dut.noc)
        axi = dut.m_axi
        for name in ("awready", "wready", "arready", "bresp", "rresp", "rdata"):
            sig = getattr(axi, name)
            m.d.comb += sig.eq(AnySeq(len(sig)))
        for port in [dut.sram_rd, *dut.sram_wr]:
            m.d.comb += [port.req.ready.eq(AnySeq(1)), port.rsp.valid.eq(0)]
        # The slave owes the beats of accepted ARs and one B per accepted AW.
        owed_r = Signal(12)
        owed_b = Signal(6)
        m.d.comb += [axi.rvalid.eq(AnySeq(1)), axi.bvalid.eq(AnySeq(1))]
        m.d.comb += [Assume(~axi.rvalid | (owed_r != 0)), Assume(~axi.bvalid | (owed_b != 0))]
        ar = axi.arvalid & axi.arready
        r = axi.rvalid & axi.rready
        m.d.sync += owed_r.eq(owed_r + ar * (axi.arlen + 1) - r)
        m.d.sync += owed_b.eq(owed_b + (axi.awvalid & axi.awready) - (axi.bvalid & axi.bready))
        for pre in ("ar", "aw"):
            valid = getattr(axi, f"{pre}valid")
            addr = getattr(axi, f"{pre}addr")
            length = getattr(axi, f"{pre}len")
            end = addr + (length + 1) * lanes
            m.d.comb += [
                Assert(~valid | (end <= dut.hbm_size), f"{pre}_in_hbm"),
                Assert(~valid | ((addr % 4096) + (length + 1) * lanes <= 4096), f"{pre}_4k"),
                Assert(~valid | (addr % lanes == 0), f"{pre}_aligned"),
            ]
        m.d.comb += [
            Assert(~axi.rvalid | axi.rready, "r_never_dropped"),
            Cover(axi.arvalid & (axi.arlen != dut.max_burst - 1), "short_burst"),
            Cover(beat(dut.o_done), "completion"),
        ]
        return m


def test_dma_bounds():
    # dims=1 keeps the extent multipliers out of the SMT problem (they made BMC stall).
    dut = DMAEngine(addr_width=16, data_width=16, dims=1, n_local=1, sram_size=64,
                    hbm_size=8192, queues=1, queue_depth=1, max_burst=4, read_buffer=8,
                    max_writes=2, inflight=2)
    harness.check(DMACheck(dut), name="dma_bounds", modes=("bmc", "cover"), depth=10)


class ReadIssuerCheck(Elaboratable):
    """The read stage's contract: with a slave that returns only beats it owes, nothing waits."""

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        lanes = dut.lanes
        rows, ar, r, sram = dut.i_rows, dut.o_ar, dut.i_r, dut.sram
        drive_source(m, rows, name="rows")
        # The decoder only sends rows of 1 .. MAX_LENGTH bytes inside the address space
        # (its RANGE check).
        row = rows.payload
        m.d.comb += Assume(~rows.valid | ((row.len >= 1) & (row.len <= MAX_LENGTH) &
                                          (row.src + row.len <= 1 << dut.aw)))
        for s in (ar, dut.o_hbm, dut.o_sram):
            drive_sink(m, s)
        check_source(m, ar, name="ar")
        check_source(m, dut.o_hbm, name="hbm")
        check_source(m, dut.o_sram, name="sram_out")
        owed_r, owed_s = Signal(12), Signal(4)
        m.d.comb += [
            r.valid.eq(AnySeq(1)), r.payload.eq(AnySeq(len(r.payload.as_value()))),
            sram.req.ready.eq(AnySeq(1)),
            sram.rsp.valid.eq(AnySeq(1)), sram.rsp.payload.eq(AnySeq(len(sram.rsp.payload))),
            Assume(~r.valid | (owed_r != 0)), Assume(~sram.rsp.valid | (owed_s != 0)),
        ]
        m.d.sync += [
            owed_r.eq(owed_r + Mux(beat(ar), ar.payload.len + 1, 0) - beat(r)),
            owed_s.eq(owed_s + (beat(sram.req) & ~sram.req.payload.we) - beat(sram.rsp)),
        ]
        # Byte offset in the 4 KiB page and burst bytes, as shifts (no multipliers for the solver).
        lw = (lanes - 1).bit_length()
        first = Cat(Const(0, lw), ar.payload.addr[:12 - lw])
        nbytes = Cat(Const(0, lw), ar.payload.len + 1)
        m.d.comb += [
            Assert(~r.valid | r.ready, "r_never_dropped"),
            Assert(~sram.rsp.valid | sram.rsp.ready, "sram_rsp_never_dropped"),
            Assert(~sram.req.valid | ~sram.req.payload.we, "sram_reads_only"),
            Assert(~ar.valid | (ar.payload.len + 1 <= dut.max_burst), "ar_max_burst"),
            Assert(~ar.valid | (first + nbytes <= 4096), "ar_4k"),
            Cover(beat(ar) & (ar.payload.len != dut.max_burst - 1), "short_burst"),
            Cover(beat(dut.o_hbm), "hbm_word"),
            Cover(beat(dut.o_sram), "sram_word"),
        ]
        return m


def test_read_issuer():
    # read_buffer == max_burst: a second burst must wait for the first one's beats to leave.
    dut = ReadIssuer(addr_width=16, data_width=16, n_local=1, sram_addr_width=5, max_burst=4,
                     read_buffer=4)
    harness.check(ReadIssuerCheck(dut), name="dma_read_issuer", modes=("bmc", "cover"), depth=10)


class RemoteWriterCheck(Elaboratable):
    """Beats in = beats out + beats dropped + beat held; packets of at most ``max_beats``."""

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        one_in_one_out(m, dut)
        n_in, n_out = Signal(8), Signal(8)
        m.d.sync += [n_in.eq(n_in + beat(dut.i_stream)), n_out.eq(n_out + beat(dut.o_stream))]
        held = Signal(8)
        m.d.comb += held.eq(n_in - n_out - dut.errors)
        in_pkt = Signal(range(dut.max_beats + 1))
        with m.If(beat(dut.o_stream)):
            m.d.sync += in_pkt.eq(Mux(dut.o_stream.payload.last, 0, in_pkt + 1))
        m.d.comb += [
            Assume(dut.errors != 0xFFFF),  # the saturating counter stays exact
            Assert(held == dut.held_valid, "beat_lost_or_duplicated"),
            Assert(in_pkt == dut.count, "packet_length_tracked"),
            Assert(in_pkt < dut.max_beats, "packet_too_long"),
            Cover(beat(dut.o_stream) & dut.o_stream.payload.last & (in_pkt == dut.max_beats - 1),
                  "full_packet"),
            Cover(dut.errors == 2, "two_dropped"),
            Cover(beat(dut.o_stream) & ~dut.o_stream.payload.last, "open_packet"),
        ]
        return m


def test_remote_writer():
    dut = RemoteWriter(addr_width=16, data_width=16, sram_size=64, kx=2, ky=2,
                       noc_data_width=24, max_beats=3)
    harness.check(RemoteWriterCheck(dut), name="dma_remote_writer", modes=("prove", "cover"),
                  depth=8)
