"""Formal checks of the TVP stream protocol (``hw/tvp``).

Testplan (docs/tvp.md):
* the output stream obeys the stream rules (``valid`` held, ``payload``
  stable until ``ready``) for any input beats and any ``ready`` (prove);
  checked on :class:`SequencerTVP`, the real TVP with the FP units replaced
  by cheap stand-ins (``TVP.UNITS``): control never depends on unit results,
  and the multipliers would make the SMT model intractable; for the same
  reason its decoder is the ``Switch`` form of the decode table
  (``TVP.ROM_DECODER = False``) instead of the constant ROM;
* the sequencer never leaves its micro-program (``step_in_program``,
  ``TVPSequencer.invariants()``, prove);
* no beat is lost or made up: accepted beats = output beats + beats still
  inside + non-final reduction beats (prove, via a counter relation);
* the in-flight write counters of ``t`` / the accumulators equal the
  pipeline contents (``TVPSlots.invariants()``, prove);
* a short micro-op never runs closer than ``act_latency - latency + 1``
  stages behind an activation-chain one (``act_order``, prove);
* covers: an output beat, a stalled output, a reduction result, an input
  accepted in the cycle the previous beat finishes, a multi-step program, a
  hazard stall, an activation-chain result, a stall behind the chain;
* mutant: output ``valid`` dropped while stalled must fail.
"""
from types import SimpleNamespace

import pytest
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal

from formal import harness
from formal.properties import beat, one_in_one_out
from hw.tvp import TVP
from hw.tvp.fpu import delay
from hw.tvp.isa import is_reduce
from hw.tvp.output import TVPOutput


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
        produces = ~(is_reduce(p.op) & ~p.last)
        pending = Signal(8)
        with m.If(beat(i) & produces & ~beat(o)):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(beat(o) & ~(beat(i) & produces)):
            m.d.sync += pending.eq(pending - 1)
        # A producing beat is in the sequencer, in the pipeline or in the output register.
        seq, slots = dut.sequencer, dut.slots
        inside = Signal(6)
        in_pipe = 0
        for v, d in zip(slots.stage_valid, slots.stage_dst):
            in_pipe = in_pipe + (v & (d >= 2))
        for v in slots.act_valid:  # act micro-ops always produce an output
            in_pipe = in_pipe + v
        m.d.comb += inside.eq(o.valid + (seq.busy & seq.produces) + in_pipe)
        m.d.comb += Assert(pending == inside, "no_loss_no_duplication")
        m.d.comb += [
            Cover(beat(o), "output"),
            Cover(o.valid & ~o.ready, "stalled"),
            Cover(beat(o) & o.payload.last, "last_out"),
            Cover(beat(i) & seq.busy, "back_to_back"),
            Cover(seq.busy & (seq.step == 2), "long_program"),
            Cover(dut._hazard, "hazard_stall"),
            Cover(slots.act_valid[3] & ~o.ready, "act_in_chain_stalled"),
            Cover(slots.act_block & seq.o_stream.valid & dut._hazard, "act_order_stall"),
        ]
        return m


def test_tvp_stream():
    harness.check(TVPCheck(SequencerTVP(lanes=2)), name="tvp", modes=("prove", "cover"), depth=8)


class DropValidOutput(TVPOutput):
    """Mutant output stage: ``valid`` is cleared while stalled."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(~self.o_stream.ready & self.o_stream.valid):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


class DropValid(SequencerTVP):
    """Mutant: output ``valid`` is dropped while stalled."""
    OUTPUT = DropValidOutput


def test_mutant_drop_valid_fails():
    with pytest.raises(AssertionError, match="prove"):
        harness.check(TVPCheck(DropValid(lanes=1)), name="tvp_mutant", modes=("prove",), depth=6)
