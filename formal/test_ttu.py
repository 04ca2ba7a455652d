"""Formal checks of the TTU processing element and systolic array.

Testplan (docs/ttu.md):
* PE (prove + cover): a result appears exactly ``LATENCY`` cycles after a beat
  with ``blk_last & tile_last`` and never otherwise (no result without input);
  a beat with an all-zero operand lane, or no valid beat, leaves the block sum
  unchanged; covers a non-zero result;
* array (prove + cover): stream rules on ``o_stream`` under arbitrary input and
  back-pressure, ``i_stream.ready`` drops only while a result row is offered;
  covers a result beat and a stalled result;
* mutant: a PE that flags a result on a bubble breaks the no-result-without-input property.
"""
import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Cat, Cover, Elaboratable, Module, Signal, Value

from formal import harness
from formal.properties import beat, check_source, drive_sink, drive_source
from hw.ttu.array import SystolicArray
from hw.ttu.pe import LATENCY, PE

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
            dut.fmt_a.eq(AnyConst(3)),
            dut.fmt_b.eq(AnyConst(3)),
            dut.pack.eq(AnyConst(1)),
        ]
        a, b = dut.a_in, dut.b_in
        # No result without input: result_valid is the tile-end beat, delayed.
        ends = Signal(LATENCY)
        m.d.sync += ends.eq((ends << 1) | (a.valid & a.blk_last & a.tile_last))
        m.d.comb += Assert(dut.result_valid == ends[LATENCY - 1], "result_iff_tile_end")

        # Zero operand or no beat: the exact block sum is unchanged (the beat's
        # products are registered once, so the sum moves two cycles after the beat).
        keep = Signal(2)
        prev_sum = Signal.like(dut.blk_sum)
        m.d.sync += [
            keep.eq(Cat(~a.valid | (~a.blk_last & ((a.data == 0) | (b.data == 0))), keep[0])),
            prev_sum.eq(dut.blk_sum),
        ]
        started = Signal(2)
        m.d.sync += started.eq(Cat(1, started[0]))
        with m.If(started[1] & keep[1]):
            m.d.comb += Assert(dut.blk_sum == prev_sum, "zero_operand_keeps_sum")
        m.d.comb += [
            Cover(dut.result_valid & (dut.result != 0), "nonzero_result"),
            Cover(dut.blk_sum != 0, "block_sum_used"),
        ]
        return m


class EagerResultPE(PE):
    """Mutant: flags a result on any ``tile_last``, even on a bubble."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.result_valid.eq(self.a_in.tile_last)
        return m


def test_pe():
    harness.check(PECheck(PE(**PE_ARGS)), name="ttu_pe", modes=("prove", "cover"),
                  depth=LATENCY + 3)


def test_mutant_pe_fails():
    with pytest.raises(AssertionError):
        harness.check(PECheck(EagerResultPE(**PE_ARGS)), name="ttu_pe_mutant",
                      modes=("bmc",), depth=LATENCY + 2)


class ArrayCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.d.comb += [dut.fmt_a.eq(AnyConst(3)), dut.fmt_b.eq(AnyConst(3)),
                     dut.pack.eq(AnyConst(1))]
        drive_source(m, dut.i_stream, name="i")
        drive_sink(m, dut.o_stream)
        check_source(m, dut.o_stream, name="o")
        m.d.comb += [
            Cover(beat(dut.o_stream), "result_row"),
            Cover(dut.o_stream.valid & ~dut.o_stream.ready, "result_stalled"),
            Cover(dut.i_stream.valid & ~dut.i_stream.ready, "input_backpressure"),
        ]
        return m


def test_array():
    dut = SystolicArray(rows=1, cols=2, **PE_ARGS)
    harness.check(ArrayCheck(dut), name="ttu_array", modes=("prove", "cover"), depth=14)
