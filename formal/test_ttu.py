"""Formal checks of the TTU processing element and systolic array.

Testplan (docs/ttu.md):
* PE (prove + cover): a finished block appears on ``blk`` exactly
  ``BLOCK_LATENCY`` cycles after a beat with ``blk_last`` and never otherwise (no
  output without input), and ``blk`` is all zero in every other cycle (the tail
  ORs a group's outputs); a beat with an all-zero operand lane, or no valid beat,
  leaves the block sum unchanged; covers a non-zero block sum at a tile end;
* array (prove at depth 4, covers at depth 22; a 1x2 array with a two-row FIFO so
  that it fills): stream rules on ``o_stream`` under arbitrary input and
  back-pressure; the reservation counter equals the rows in the FIFO plus the rows of
  every tile end still in the pipeline; a result row never meets a full FIFO;
  ``i_stream.ready`` drops only for a tile's last beat; covers a result beat, a stalled
  result and input back-pressure;
* mutant: an array that takes tile ends without reserving room fails (bmc from reset);
* mutant: a PE that flags a block on a bubble breaks the no-output-without-input property.
"""
import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Cat, Cover, Elaboratable, Fragment, Module, Mux, Signal, Value

from formal import harness
from formal.properties import beat, check_invariants, check_source, drive_sink, drive_source
from hw.ttu.array import SystolicArray
from hw.ttu.pe import BLOCK_LATENCY, PE

# Small format sets keep the multipliers and the exact sum narrow for the solver.
PE_ARGS = dict(formats=("fp8_e4m3", "fp4_e2m1"), block=16, packed=True)


class PECheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.d.comb += [
            dut.a_in.eq(AnySeq(len(Value.cast(dut.a_in)))),
            dut.b_in.eq(AnySeq(len(Value.cast(dut.b_in)))),
        ]
        a, b = dut.a_in, dut.b_in
        L = BLOCK_LATENCY
        # No output without input: blk.valid is the block-end beat, delayed.
        ends = Signal(L)
        m.d.sync += ends.eq((ends << 1) | (a.valid & a.blk_last))
        m.d.comb += Assert(dut.blk.valid == ends[L - 1], "blk_iff_block_end")
        m.d.comb += Assert(dut.blk.valid | (dut.blk.as_value() == 0), "blk_zero_when_idle")

        # Zero operand lane (both elements decoded to 0) or no beat: the exact block
        # sum is unchanged (it moves L cycles after the beat).
        keep = Signal(L)
        prev_sum = Signal.like(dut.blk_sum)
        m.d.sync += [
            keep.eq(Cat(~a.valid | (~a.blk_last & (((a.op.m0 == 0) & (a.op.m1 == 0))
                                                   | ((b.op.m0 == 0) & (b.op.m1 == 0)))), keep)),
            prev_sum.eq(dut.blk_sum),
        ]
        started = Signal(L)
        m.d.sync += started.eq(Cat(1, started))
        with m.If(started[L - 1] & keep[L - 1]):
            m.d.comb += Assert(dut.blk_sum == prev_sum, "zero_operand_keeps_sum")
        m.d.comb += [
            Cover(dut.blk.valid & dut.blk.tile_last & (dut.blk.sum != 0), "nonzero_tile_end"),
            Cover(dut.blk_sum != 0, "block_sum_used"),
        ]
        return m


class EagerResultPE(PE):
    """Mutant: flags a block on any ``blk_last``, even on a bubble."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.blk.valid.eq(self.a_in.blk_last)
        return m


def test_pe():
    harness.check(PECheck(PE(**PE_ARGS)), name="ttu_pe", modes=("prove", "cover"),
                  depth=BLOCK_LATENCY + 4)


def test_mutant_pe_fails():
    with pytest.raises(AssertionError):
        harness.check(PECheck(EagerResultPE(**PE_ARGS)), name="ttu_pe_mutant",
                      modes=("bmc",), depth=BLOCK_LATENCY + 2)


class ArrayCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        dut = self.dut
        # Elaborated here, first, so that the array's tile-end stages exist.
        m.submodules.dut = Fragment.get(dut, platform)
        m.d.comb += [dut.fmt_a.eq(AnyConst(3)), dut.fmt_b.eq(AnyConst(3)),
                     dut.pack.eq(AnyConst(1))]
        drive_source(m, dut.i_stream, name="i")
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        check_invariants(m, dut)
        fifo = dut.out_fifo.i_stream
        # The reservation is exact: rows held plus the rows of every tile end still
        # in the pipeline (one row per tile end here, so two can never meet).
        in_flight = sum(Mux(flag, rows, 0) for flag, rows in dut._core.tile_end_stages)
        m.d.comb += [
            Assert(dut.reserved == dut.out_fifo.level + in_flight, "reserved_counts_rows"),
            Assert(~fifo.valid | fifo.ready, "no_row_lost"),
            Assert(dut.i_stream.ready | dut.i_stream.payload.tile_last, "only_tile_ends_wait"),
        ]
        m.d.comb += [
            Cover(beat(dut.o_stream), "result_row"),
            Cover(dut.o_stream.valid & ~dut.o_stream.ready, "result_stalled"),
            Cover(dut.i_stream.valid & ~dut.i_stream.ready, "input_backpressure"),
        ]
        return m


def test_array():
    # The properties do not depend on the numbers: one narrow format keeps the
    # solver off wide multipliers; a two-row FIFO fills within the depth.
    def dut():
        return SystolicArray(rows=1, cols=2, depth=2, formats=("fp4_e2m1",), block=16,
                             packed=False)
    # With the exact reservation count the proof is shallow; the covers need the
    # 17-cycle path from an input beat to a result row.
    harness.check(ArrayCheck(dut()), name="ttu_array", modes=("prove",), depth=4)
    harness.check(ArrayCheck(dut()), name="ttu_array_cover", modes=("cover",), depth=22)


class GreedyArray(SystolicArray):
    """Mutant: takes a tile end with no FIFO room reserved for its rows."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i_stream.ready.eq(1)
        return m


def test_mutant_array_fails():
    """From reset, tile ends taken without room break the reservation within a few cycles."""
    dut = GreedyArray(rows=1, cols=2, depth=2, formats=("fp4_e2m1",), block=16, packed=False)
    with pytest.raises(AssertionError):
        harness.check(ArrayCheck(dut), name="ttu_array_mutant", modes=("bmc",), depth=24)
