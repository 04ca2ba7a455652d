"""Formal checks of the K-wide PE (``hw.ttu.KPE``) and unit (``hw.ttu.KTTU``).

Testplan (docs/ttu.md, "K-wide unit"):
* PE (prove + cover, k = 2, FP4 only, block 16): a block leaves the adder tree
  (``blk_valid``) exactly 3 cycles after a beat with ``blk_last`` and never otherwise;
  the result register changes only ``KPE_LATENCY`` cycles after a tile's last beat
  and the FP32 accumulator only after a block end (no result without input); a
  bubble or a beat with an all-zero operand vector leaves the exact block sum
  unchanged; covers a non-zero block sum leaving and a non-zero result;
* unit (slow; bmc from reset + cover; 1 x 2, k = 1, two-row FIFO): stream rules on
  ``o_stream`` under any input and back-pressure, a result row never meets a full
  FIFO, only a tile's last beat waits, the FIFO invariants; covers a result row,
  a stalled result and input back-pressure;
* mutant: a PE that flags a block on a bubble fails.
"""
import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Cat, Cover, Elaboratable, Module, Signal, Value

from formal import harness
from formal.properties import beat, check_invariants, check_source, drive_sink, drive_source
from hw.ttu.kpe import KPE, KPE_LATENCY
from hw.ttu.kterm import KSpec
from hw.ttu.kttu import KTTU

SPEC = dict(k=2, formats=("fp4_e2m1",), packed=False, bf16=False, block=16)


class KPECheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.d.comb += [
            dut.a_in.eq(AnySeq(len(Value.cast(dut.a_in)))),
            dut.b_in.eq(AnySeq(len(Value.cast(dut.b_in)))),
            dut.cfg.eq(AnyConst(len(Value.cast(dut.cfg)))),
        ]
        a, b = dut.a_in, dut.b_in
        L = KPE_LATENCY
        ends = Signal(L, name="ends")
        tiles = Signal(L, name="tiles")
        m.d.sync += [ends.eq(Cat(a.valid & a.blk_last, ends)),
                     tiles.eq(Cat(a.valid & a.blk_last & a.tile_last, tiles))]
        m.d.comb += Assert(dut.blk_valid == ends[2], "blk_iff_block_end")
        started = Signal(L, name="started")
        m.d.sync += started.eq(Cat(1, started))
        prev_res = Signal(32)
        prev_acc = Signal(32)
        m.d.sync += [prev_res.eq(dut.result), prev_acc.eq(dut.acc)]
        with m.If(started[L - 1] & ~tiles[L - 1]):
            m.d.comb += Assert(dut.result == prev_res, "no_result_without_tile_end")
        with m.If(started[L - 1] & ~ends[L - 1]):
            m.d.comb += Assert(dut.acc == prev_acc, "no_accumulation_without_block_end")

        def zero(elems):
            z = 1
            for t in range(dut._spec.terms):
                z = z & (elems[t].mant == 0) & ~elems[t].nan & ~elems[t].inf
            return z
        keep = Signal(3, name="keep")
        m.d.sync += keep.eq(Cat(~a.valid | (~a.blk_last & (zero(a.elems) | zero(b.elems))), keep))
        prev_sum = Signal.like(dut.blk_sum)
        m.d.sync += prev_sum.eq(dut.blk_sum)
        with m.If(started[2] & keep[2]):
            m.d.comb += Assert(dut.blk_sum == prev_sum, "zero_operand_keeps_sum")
        m.d.comb += [
            Cover(dut.blk_valid & (prev_sum != 0), "block_sum_used"),
            Cover(dut.result != 0, "nonzero_result"),
        ]
        return m


class EagerKPE(KPE):
    """Mutant: flags a block on a bubble too."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.blk_valid.eq(1)
        return m


def test_kpe():
    harness.check(KPECheck(KPE(spec=KSpec(**SPEC))), name="ttu_kpe", modes=("prove", "cover"),
                  depth=KPE_LATENCY + 4)


def test_mutant_kpe_fails():
    with pytest.raises(AssertionError):
        harness.check(KPECheck(EagerKPE(spec=KSpec(**SPEC))), name="ttu_kpe_mutant",
                      modes=("bmc",), depth=KPE_LATENCY + 2)


class KTTUCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.d.comb += dut.cfg.eq(AnyConst(len(Value.cast(dut.cfg))))
        drive_source(m, dut.i_stream, name="i")
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        check_invariants(m, dut)
        fifo = dut.out_fifo.i_stream
        m.d.comb += [
            Assert(~fifo.valid | fifo.ready, "no_row_lost"),
            Assert(dut.i_stream.ready | dut.i_stream.payload.tile_last, "only_tile_ends_wait"),
            Cover(beat(dut.o_stream), "result_row"),
            Cover(dut.o_stream.valid & ~dut.o_stream.ready, "result_stalled"),
            Cover(dut.i_stream.valid & ~dut.i_stream.ready, "input_backpressure"),
        ]
        return m


def _kttu():
    return KTTU(rows=1, cols=2, k=1, formats=("fp4_e2m1",), packed=False, bf16=False,
                block=16, depth=2)


@pytest.mark.slow  # about 2.5 minutes (bmc to depth 20 and the covers)
def test_kttu_stream_rules():
    harness.check(KTTUCheck(_kttu()), name="ttu_kttu", modes=("bmc", "cover"), depth=20)
