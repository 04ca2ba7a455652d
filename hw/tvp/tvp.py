"""The TVP: an N-lane FP32 / BF16x2 SIMD vector processor on streams."""
from types import SimpleNamespace

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_pow2

from . import fpu
from .isa import in_layout, out_layout
from .microcode import PROGRAMS, Unit
from .output import TVPOutput
from .sequencer import TVPSequencer
from .slots import TVPSlots, act_chain_latency

__all__ = ["TVP", "in_layout", "out_layout"]


class TVP(wiring.Component):
    """Tile vector processor: ``lanes`` 32-bit lanes, FP32 or two BF16 per lane.

    Each input beat is an instruction (``op``, ``fmt``, ``last``) with operand
    vectors ``a``, ``b``, ``c``; it runs as the micro-program
    :func:`hw.tvp.microcode.program` and, unless it is a non-final reduction beat,
    yields one output beat. Micro-ops issue in order, at most one per cycle
    (every slot in parallel), into units pipelined to :attr:`unit_latency`
    stages or into the activation chain (GELU, SiLU, SwiGLU, EXPD; one micro-op,
    :meth:`act_timing`); every opcode's per-beat program is one micro-op, so
    every opcode sustains one beat per cycle. Reductions rotate over
    :attr:`acc_banks` accumulator banks and combine them on ``last``; only those
    combine steps wait for results in flight (:attr:`hazard_gap`), and a non-act
    micro-op waits while an act one could still be overtaken (:meth:`hazard`,
    modelled by :class:`sim.tvp.TimingModel`). The whole pipeline stalls while
    the output register holds a beat that is not taken.

    Structure: ``i_stream`` -> :class:`~hw.tvp.sequencer.TVPSequencer` (holds
    the beat, decodes its micro-program) -> micro-op stream, gated by the
    hazard check -> :class:`~hw.tvp.slots.TVPSlots` (operand select, units,
    ``t``/``acc`` write-back) -> result stream ->
    :class:`~hw.tvp.output.TVPOutput` (packing, output register) ->
    ``o_stream``. The output stage's ``ready`` is the pipeline's advance
    enable. The hazard gate is the only logic here: it joins the registers a
    micro-op reads with the writes the slots still have in flight.

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes, a power of two in ``[1, 64]``.

    Attributes
    ----------
    i_stream : In(stream.Signature(in_layout(lanes)))
        Instruction + operand beats.
    o_stream : Out(stream.Signature(out_layout(lanes)))
        Result beats (registered).
    error : Out(1)
        Sticky: an invalid opcode was seen (such a beat passes ``a`` through).
    errors : Out(16)
        Saturating count of invalid-opcode beats.
    """

    #: The per-slot unit builders (``fma``, ``exp``, ``recip``, ``rsqrt``, ``misc``,
    #: each ``(result, latency)``) and their ``LATENCY`` table; a formal wrapper may
    #: substitute cheap stand-ins to check the sequencer and pipeline control alone.
    UNITS = fpu
    #: Decode through a constant ROM (``TVPSequencer(rom_decoder=True)``); ``False``:
    #: the same table as a ``Switch``, which the formal wrapper uses.
    ROM_DECODER = True
    #: The output stage (a test may substitute a mutant).
    OUTPUT = TVPOutput

    def __init__(self, *, lanes=16):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        self._programs = PROGRAMS(lanes, self.acc_banks)
        self._hazard = Signal(name="hazard")  # issue waits for a result in flight
        self._parts = None
        super().__init__({
            "i_stream": In(stream.Signature(in_layout(lanes))),
            "o_stream": Out(stream.Signature(out_layout(lanes))),
            "error": Out(1),
            "errors": Out(16),
        })

    def _build(self):
        # Built on first use (by elaborate() or invariants()), not in __init__: a TVP
        # constructed only for its timing figures then leaves no unused elaboratables.
        if self._parts is None:
            n = self._lanes
            self._parts = SimpleNamespace(
                sequencer=TVPSequencer(lanes=n, programs=self._programs,
                                       banks=self.acc_banks, rom_decoder=self.ROM_DECODER),
                slots=TVPSlots(lanes=n, programs=self._programs, units=self.UNITS,
                               banks=self.acc_banks),
                output=self.OUTPUT(lanes=n))
        return self._parts

    @property
    def sequencer(self):
        """The :class:`~hw.tvp.sequencer.TVPSequencer` of this TVP."""
        return self._build().sequencer

    @property
    def slots(self):
        """The :class:`~hw.tvp.slots.TVPSlots` of this TVP."""
        return self._build().slots

    @property
    def output(self):
        """The :class:`~hw.tvp.output.TVPOutput` of this TVP."""
        return self._build().output

    @property
    def lanes(self):
        return self._lanes

    @property
    def max_steps(self):
        return max(len(p) for p in self._programs.values())

    @classmethod
    def timing(cls):
        """``(unit_latency, hazard_gap, latency)`` of this class, without building a TVP.

        ``unit_latency``: register stages of the slowest unit (every unit is padded
        to it); ``hazard_gap``: cycles from a micro-op's issue to the first issue
        that may read its result; ``latency``: cycles from a beat's acceptance to its
        output beat (one micro-op, no stalls).
        """
        unit = max(cls.UNITS.LATENCY.values())
        return unit, unit + 2, unit + 3

    @classmethod
    def act_timing(cls):
        """``(act_latency, act_gap, act_out_latency)`` of this class.

        ``act_latency``: register stages of the activation chain; ``act_gap``:
        cycles from an ``act`` micro-op's issue to the first issue of any other
        micro-op (results leave in issue order); ``act_out_latency``: cycles from
        an ``act`` beat's acceptance to its output beat.
        """
        unit = max(cls.UNITS.LATENCY.values())
        chain = act_chain_latency(cls.UNITS.LATENCY)
        return chain, chain - unit + 1, chain + 3

    @property
    def acc_banks(self):
        """Accumulator banks of the reductions (= :attr:`hazard_gap`: rotating over
        them, a reduction beat never waits for the previous one)."""
        return self.timing()[1]

    @property
    def unit_latency(self):
        """Register stages of the slowest unit (every unit is padded to it)."""
        return self.timing()[0]

    @property
    def hazard_gap(self):
        """Cycles from a micro-op's issue to the first issue that may read its result."""
        return self.timing()[1]

    @property
    def latency(self):
        """Cycles from a beat's acceptance to its output beat (one micro-op, no stalls)."""
        return self.timing()[2]

    def invariants(self):
        """The sub-components' invariants (the proofs need no cross-component fact)."""
        return self.sequencer.invariants() + self.slots.invariants()

    def hazard(self, uop, slots):
        """The issue hold of micro-op stream ``uop``: it waits for ``t`` / the
        accumulators while a write of them is in flight, and a non-``act``
        micro-op waits while an ``act`` one is in the first ``act_gap`` stages."""
        u = uop.payload
        return ((u.reads_t & slots.t_pending) | (u.reads_acc & slots.acc_pending)
                | ((u.unit != Unit.ACT) & slots.act_block))

    def elaborate(self, platform):
        m = Module()
        m.submodules.sequencer = seq = self.sequencer
        m.submodules.slots = slots = self.slots
        m.submodules.output = out = self.output

        wiring.connect(m, wiring.flipped(self.i_stream), seq.i_stream)
        # Hazard gate: a micro-op that reads t / the accumulators waits while a write
        # of that register is in flight.
        uop = seq.o_stream
        hazard = self._hazard
        m.d.comb += [
            hazard.eq(self.hazard(uop, slots)),
            slots.i_stream.payload.eq(uop.payload),
            slots.i_stream.valid.eq(uop.valid & ~hazard),
            uop.ready.eq(slots.i_stream.ready & ~hazard),
            seq.enable.eq(slots.i_stream.ready),
            self.error.eq(seq.error),
            self.errors.eq(seq.errors),
        ]
        wiring.connect(m, slots.o_stream, out.i_stream)
        wiring.connect(m, out.o_stream, wiring.flipped(self.o_stream))
        return m
