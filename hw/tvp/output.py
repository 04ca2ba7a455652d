"""TVP output stage: packs one micro-op result into the registered output beat."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common.mx import FORMAT_SELECT
from hw.common.params import check_pow2

from . import fpu
from .isa import out_layout
from .microcode import Dst
from .slots import result_layout

__all__ = ["TVPOutput"]


class TVPOutput(wiring.Component):
    """The output register and the packing in front of it.

    Per result: ``OUT`` gives every slot's word, ``OUTB`` broadcasts slot 0;
    in BF16x2 mode (``fmt``) slot ``i`` and slot ``lanes + i`` are rounded to
    BF16 (RNE) into the low / high half of lane ``i``. ``OUTP`` packs the MX
    codes densely (the width from slot 0's format select, the scale in the top
    byte; :func:`sim.tvp.mx_pack`). ``i_stream.ready`` is
    ``~o_stream.valid | o_stream.ready``: it does not depend on
    ``i_stream.valid``, so the TVP's pipeline uses it as its advance enable.

    Parameters
    ----------
    lanes : int
        Number of 32-bit lanes (a power of two in ``[1, 64]``).

    Attributes
    ----------
    i_stream : In(stream.Signature(result_layout(lanes)))
        Results bound for the output.
    o_stream : Out(stream.Signature(out_layout(lanes)))
        Output beats (registered).
    """

    def __init__(self, *, lanes):
        self._lanes = check_pow2("lanes", lanes, min=1, max=64)
        super().__init__({
            "i_stream": In(stream.Signature(result_layout(lanes))),
            "o_stream": Out(stream.Signature(out_layout(lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        slots = 2 * n
        i, o = self.i_stream, self.o_stream
        p = i.payload
        res = [p.res[j] for j in range(slots)]
        word = [Mux(p.dst == Dst.OUTB, res[0], res[j]) for j in range(slots)]
        packed = Signal(32 * n)
        m.d.comb += packed.eq(Cat(*[Mux(p.fmt, Cat(fpu.rne_bf16(word[k]),
                                                   fpu.rne_bf16(word[n + k])),
                                        word[k]) for k in range(n)]))
        # MXQP: dense codes (width from slot 0's format select), scale in the top byte.
        msel = res[0][16:19]
        codes = {w: Cat(*[res[k][0:w] for k in range(n)]) for w in (8, 6, 4)}
        mxp = Signal(32 * n)
        fp4 = msel == FORMAT_SELECT["fp4_e2m1"]
        fp6 = (msel == FORMAT_SELECT["fp6_e3m2"]) | (msel == FORMAT_SELECT["fp6_e2m3"])
        m.d.comb += mxp.eq(Cat(Mux(fp4, codes[4], Mux(fp6, codes[6], codes[8])),
                               Const(0, 24 * n - 8), res[0][8:16]))
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += [o.valid.eq(1),
                         o.payload.data.eq(Mux(p.dst == Dst.OUTP, mxp, packed)),
                         o.payload.last.eq(p.last)]
        return m
