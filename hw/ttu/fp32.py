"""FP32 arithmetic of the tensor unit: an IEEE 754 adder and an exact-integer rounder.

Both are combinational and bit-exact against NumPy float32 (round to nearest
even, subnormals, overflow to Inf). NaN results are always the canonical
``0x7FC00000`` (see ``docs/numerics.md``).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common.params import check_int

__all__ = ["FP32Add", "IntToFP32", "F32_NAN", "F32_INF"]

F32_NAN = 0x7FC00000
F32_INF = 0x7F800000


def _stage(m, value, name, pipelined):
    """``value`` itself, or a register of it when ``pipelined``.

    Pipeline registers hold data only (whoever uses the unit tracks which stage
    is valid), so they have no reset: a reset net to every stage would be the
    widest net of the tensor unit.
    """
    if not pipelined:
        return value
    r = Signal.like(value, name=name, reset_less=True)
    m.d.sync += r.eq(value)
    return r


def _lead_one(m, value, width, name):
    """Index of the most significant set bit of ``value`` (0 when zero)."""
    p = Signal(range(max(width, 2)), name=name)
    for i in range(width):
        with m.If(value[i]):
            m.d.comb += p.eq(i)
    return p


class FP32Add(wiring.Component):
    """FP32 adder, round to nearest even, with subnormals.

    Parameters
    ----------
    pipelined : bool or int
        Register stages (0..3; ``True`` means 1): ``s`` is valid that many cycles
        after ``a``/``b``. Cuts, in the order they are added: after the add, after
        the operand swap (before the alignment shift, which then shares a stage
        with the add), after the normalisation (default: combinational).

    Attributes
    ----------
    a, b : In(32)
        IEEE 754 binary32 operands.
    s : Out(32)
        ``a + b`` rounded once; ``+0`` for an exact zero of opposite-signed
        operands; canonical NaN for any NaN input or ``Inf - Inf``.
    """

    def __init__(self, *, pipelined=False):
        self._latency = check_int("pipelined", int(pipelined), min=0, max=3)
        super().__init__({"a": In(32), "b": In(32), "s": Out(32)})

    @property
    def latency(self):
        return self._latency

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        a_nan = (a[23:31] == 0xFF) & (a[:23] != 0)
        b_nan = (b[23:31] == 0xFF) & (b[:23] != 0)
        a_inf = (a[23:31] == 0xFF) & (a[:23] == 0)
        b_inf = (b[23:31] == 0xFF) & (b[:23] == 0)

        # x is the operand of larger magnitude.
        swap = b[:31] > a[:31]
        x = Mux(swap, b, a)
        y = Mux(swap, a, b)
        sx, sy = x[31], y[31]
        exf, eyf = x[23:31], y[23:31]
        ex = Mux(exf == 0, 1, exf)
        ey = Mux(eyf == 0, 1, eyf)
        # Significands with 3 guard/round/sticky bits below.
        X = Signal(27)
        Y = Signal(27)
        m.d.comb += [X.eq(Cat(Const(0, 3), x[:23], exf != 0)),
                     Y.eq(Cat(Const(0, 3), y[:23], eyf != 0))]
        d = Signal(8)
        dc = Signal(range(28))
        m.d.comb += [d.eq(ex - ey), dc.eq(Mux(d > 27, 27, d))]

        special = Signal(2)  # 0 finite, 1 NaN, 2 a is Inf, 3 b is Inf
        with m.If(a_nan | b_nan | (a_inf & b_inf & (a[31] != b[31]))):
            m.d.comb += special.eq(1)
        with m.Elif(a_inf):
            m.d.comb += special.eq(2)
        with m.Elif(b_inf):
            m.d.comb += special.eq(3)
        same = Signal()
        exs = Signal(8)
        m.d.comb += [same.eq(sx == sy), exs.eq(ex)]
        a_s, b_s = a[31], b[31]
        lat = self._latency

        def cut(name, values):
            return [_stage(m, v, f"add_{name}{i}", True) for i, v in enumerate(values)]

        if lat >= 2:  # after the swap: compare, swap and shift in one cycle do not fit
            X, Y, dc, exs, same, sx, special, a_s, b_s = cut(
                "al", [X, Y, dc, exs, same, sx, special, a_s, b_s])
        ys = Signal(27)
        lost = Signal()
        mask = Signal(27)
        m.d.comb += [
            mask.eq(~(Const((1 << 27) - 1, 27) << dc)[:27]),
            lost.eq((Y & mask) != 0),
            ys.eq((Y >> dc) | lost),  # jam the sticky bit
        ]
        raw = Signal(28)
        m.d.comb += raw.eq(Mux(same, X + ys, X - ys))
        if lat >= 1:  # after the add
            raw, exs, same, sx, special, a_s, b_s = cut(
                "raw", [raw, exs, same, sx, special, a_s, b_s])
        ex = exs

        z = Signal(28)
        e = Signal(signed(11))
        with m.If(same):
            with m.If(raw[27]):
                m.d.comb += [z.eq((raw >> 1) | raw[0]), e.eq(ex + 1)]
            with m.Else():
                m.d.comb += [z.eq(raw), e.eq(ex)]
        with m.Else():
            diff = raw[:27]
            p = _lead_one(m, diff, 27, "add_lead")
            lz = Signal(5)
            m.d.comb += lz.eq(26 - p)
            sh = Signal(8)
            # Stop normalising at exponent 1 (the result is then subnormal).
            m.d.comb += sh.eq(Mux(lz > ex - 1, ex - 1, lz))
            m.d.comb += [z.eq((diff << sh)[:27]), e.eq(ex - sh)]
        if lat >= 3:  # after the normalisation
            z, e, same, sx, special, a_s, b_s = cut("nrm", [z, e, same, sx, special, a_s, b_s])

        q = z[3:27]
        up = z[2] & ((z[:2] != 0) | q[0])
        qr = Signal(25)
        m.d.comb += qr.eq(q + up)
        bits = Signal(signed(34))
        with m.If(z[26]):
            m.d.comb += bits.eq(((e - 1) << 23) + qr)
        with m.Else():
            m.d.comb += bits.eq(qr)
        mag = Mux(bits >= F32_INF, F32_INF, bits[:31])
        # Exact zero from opposite signs is +0; same-signed zeros keep the sign.
        sign = Mux((z == 0) & ~same, 0, sx)

        with m.If(special == 1):
            m.d.comb += self.s.eq(F32_NAN)
        with m.Elif(special == 2):
            m.d.comb += self.s.eq(Cat(Const(F32_INF, 31), a_s))
        with m.Elif(special == 3):
            m.d.comb += self.s.eq(Cat(Const(F32_INF, 31), b_s))
        with m.Else():
            m.d.comb += self.s.eq(Cat(mag[:31], sign))
        return m


class IntToFP32(wiring.Component):
    """Round ``value * 2**exp`` (exact signed integer, signed exponent) to FP32.

    Parameters
    ----------
    width : int
        Width of the two's-complement ``value``, >= 2.
    exp_width : int
        Width of the signed ``exp``.
    pipelined : bool or int
        Register stages (0..4; ``True`` means 1): ``result`` is valid that many
        cycles after the inputs. Cuts, in the order they are added: after the
        normalisation, after the magnitude, after the leading-one search, after
        the rounding shift (default: combinational).

    Attributes
    ----------
    value : In(signed(width))
    exp : In(signed(exp_width))
    nan, pinf, ninf : In(1)
        Overrides: canonical NaN, else +Inf / -Inf (both set: NaN).
    result : Out(32)
        RNE with subnormals; ``|x| >= 2**128`` after rounding -> Inf; zero -> +0.
    """

    def __init__(self, *, width, exp_width=11, pipelined=False):
        self._latency = check_int("pipelined", int(pipelined), min=0, max=4)
        self._width = check_int("width", width, min=2)
        self._exp_width = check_int("exp_width", exp_width, min=2, max=16)
        super().__init__({
            "value": In(signed(width)),
            "exp": In(signed(exp_width)),
            "nan": In(1), "pinf": In(1), "ninf": In(1),
            "result": Out(32),
        })

    @property
    def latency(self):
        return self._latency

    def elaborate(self, platform):
        m = Module()
        w = self._width
        wn = max(w, 26)
        lat = self._latency

        def cut(name, values):
            return [_stage(m, v, f"conv_{name}{i}", True) for i, v in enumerate(values)]

        v = self.value
        sign = v[w - 1]
        mag = Signal(unsigned(wn))
        m.d.comb += mag.eq(Mux(sign, -v, v))
        exp = self.exp
        nan = Signal()
        m.d.comb += nan.eq(self.nan | (self.pinf & self.ninf))
        pinf, ninf = self.pinf, self.ninf
        if lat >= 2:  # after the magnitude
            mag, exp, sign, nan, pinf, ninf = cut("mag", [mag, exp, sign, nan, pinf, ninf])
        # Leading one: its index p and the normalising left shift wn - 1 - p.
        p = Signal(range(max(wn, 2)))
        lsh = Signal(range(wn))
        for k in range(wn):
            with m.If(mag[k]):
                m.d.comb += [p.eq(k), lsh.eq(wn - 1 - k)]
        if lat >= 3:  # after the leading-one search
            mag, p, lsh, exp, sign, nan, pinf, ninf = cut(
                "lead", [mag, p, lsh, exp, sign, nan, pinf, ninf])
        norm = Signal(wn)
        m.d.comb += norm.eq((mag << lsh)[:wn])
        ep = Signal(signed(self._exp_width + 8))
        m.d.comb += ep.eq(exp + p)
        is_zero = Signal()
        m.d.comb += is_zero.eq(mag == 0)
        # Extra right shift for subnormal results, clamped so everything
        # (including the guard bit) falls below the result; computed beside the
        # normalisation so that the rounding stage only shifts.
        sub = Signal(range(27))
        under = Signal(signed(self._exp_width + 9))
        m.d.comb += under.eq(-126 - ep)
        m.d.comb += sub.eq(Mux(under <= 0, 0, Mux(under > 26, 26, under)))
        t = Signal(range(wn + 3))
        t1 = Signal(range(wn + 3))
        normal = Signal()
        e126 = Signal(signed(self._exp_width + 9))
        m.d.comb += [t.eq(wn - 24 + sub), t1.eq(wn - 25 + sub), normal.eq(sub == 0),
                     e126.eq(ep + 126)]
        if lat >= 1:  # after the normalisation
            norm, t, t1, normal, e126, sign, is_zero, nan, pinf, ninf = cut(
                "norm", [norm, t, t1, normal, e126, sign, is_zero, nan, pinf, ninf])
        q = Signal(25)
        guard = Signal()
        sticky = Signal()
        m.d.comb += [
            q.eq(norm >> t),
            guard.eq((norm >> t1)[0]),
            sticky.eq((norm & ~(Const((1 << wn) - 1, wn) << t1)[:wn]) != 0),
        ]
        if lat >= 4:  # after the rounding shift
            q, guard, sticky, normal, e126, sign, is_zero, nan, pinf, ninf = cut(
                "rsh", [q, guard, sticky, normal, e126, sign, is_zero, nan, pinf, ninf])
        qr = Signal(25)
        m.d.comb += qr.eq(q + (guard & (sticky | q[0])))
        bits = Signal(signed(self._exp_width + 40))
        with m.If(normal):
            m.d.comb += bits.eq((e126 << 23) + qr)
        with m.Else():
            m.d.comb += bits.eq(qr)
        mag32 = Mux(bits >= F32_INF, F32_INF, bits[:31])

        with m.If(nan):
            m.d.comb += self.result.eq(F32_NAN)
        with m.Elif(pinf):
            m.d.comb += self.result.eq(F32_INF)
        with m.Elif(ninf):
            m.d.comb += self.result.eq(F32_INF | 0x80000000)
        with m.Elif(is_zero):
            m.d.comb += self.result.eq(0)
        with m.Else():
            m.d.comb += self.result.eq(Cat(mag32[:31], sign))
        return m
