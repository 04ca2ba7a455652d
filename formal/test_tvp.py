"""Formal checks of the TVP stream protocol (``hw/tvp``).

Testplan (docs/tvp.md):
* the output stream obeys the stream rules (``valid`` held, ``payload``
  stable until ``ready``) for any input beats and any ``ready`` (prove);
  checked on :class:`SequencerTVP`, the real TVP with the FP units replaced
  by cheap stand-ins (``TVP.UNITS``): control never depends on unit results,
  and the multipliers would make the SMT model intractable; for the same
  reason its decoder is the ``Switch`` form of the decode table
  (``TVP.ROM_DECODER = False``) instead of the constant ROM;
* the sequencer never leaves its micro-program (``step_in_program``, prove);
* no beat is lost or made up: accepted beats = output beats + beats still
  inside + non-final reduction beats (prove, via a counter relation);
* the in-flight write counters of ``t`` / the accumulators equal the
  pipeline contents (``invariants()``, prove);
* covers: an output beat, a stalled output, a reduction result, an input
  accepted in the cycle the previous beat finishes, a multi-step program, a
  hazard stall;
* mutant: output ``valid`` dropped while stalled must fail.
"""
from types import SimpleNamespace

import pytest
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal

from formal import harness
from formal.properties import beat, one_in_one_out
from hw.tvp import TVP
from hw.tvp.fpu import delay
from hw.tvp.isa import OP


def _stub_units():
    """Cheap stand-ins for the FP units: the sequencer, operand muxes, T/ACC
    registers and output packing stay real, the multipliers go (they make the
    SMT model intractable and never influence control)."""
    return SimpleNamespace(
        fma=lambda p, x, y, z, name: (delay(p, x ^ y ^ z, 1, name), 1),
        exp=lambda p, x, name: (~x, 0),
        recip=lambda p, x, name: (x.rotate_left(1), 0),
        rsqrt=lambda p, x, name: (x.rotate_right(1), 0),
        misc=lambda p, fn, x, y, z, name: (x + fn, 0),
        LATENCY={"fma": 1, "exp": 0, "recip": 0, "rsqrt": 0, "misc": 0},
    )


class SequencerTVP(TVP):
    UNITS = _stub_units()
    ROM_DECODER = False  # the same decode table as a Switch: tractable for the solver


class TVPCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        one_in_one_out(m, dut)
        i, o = dut.i_stream, dut.o_stream
        p = i.payload
        # Count beats that must produce an output: everything except
        # non-final reduction beats.
        produces = ~(((p.op == OP["RSUM"]) | (p.op == OP["RMAX"])) & ~p.last)
        pending = Signal(8)
        with m.If(beat(i) & produces & ~beat(o)):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(beat(o) & ~(beat(i) & produces)):
            m.d.sync += pending.eq(pending - 1)
        # A producing beat is in the sequencer, in the pipeline or in the output register.
        inside = Signal(4)
        in_pipe = 0
        for v, d in zip(dut._sv, dut._sdst):
            in_pipe = in_pipe + (v & (d >= 2))
        m.d.comb += inside.eq(o.valid + (dut._busy & dut._produces) + in_pipe)
        m.d.comb += Assert(pending == inside, "no_loss_no_duplication")
        m.d.comb += [
            Cover(beat(o), "output"),
            Cover(o.valid & ~o.ready, "stalled"),
            Cover(beat(o) & o.payload.last, "last_out"),
            Cover(beat(i) & dut._busy, "back_to_back"),
            Cover(dut._busy & (dut._step == 2), "long_program"),
            Cover(dut._hazard, "hazard_stall"),
        ]
        return m


def test_tvp_stream():
    harness.check(TVPCheck(SequencerTVP(lanes=2)), name="tvp", modes=("prove", "cover"), depth=8)


class DropValid(SequencerTVP):
    """Mutant: output ``valid`` is cleared every cycle, even when stalled."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(~self.o_stream.ready & self.o_stream.valid & self._busy):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


def test_mutant_drop_valid_fails():
    with pytest.raises(AssertionError, match="prove"):
        harness.check(TVPCheck(DropValid(lanes=1)), name="tvp_mutant", modes=("prove",), depth=6)
