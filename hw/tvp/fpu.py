"""Combinational FP32 units of a TVP slot: FMA, misc, exp / recip / rsqrt.

Each function adds combinational logic to module ``m`` and returns the
32-bit result signal. They mirror :mod:`sim.fp32` (FMA, exact IEEE RNE) and
:mod:`sim.tvp` (the approximations, defined there as integer operations) bit
for bit; the FMA is an independent hardware algorithm (aligned window, one
rounding), checked against the exact Python-integer model.
"""
from amaranth.hdl import Array, Cat, Const, Mux, Signal, signed

from sim import tvp as golden

__all__ = ["fma", "misc", "exp", "recip", "rsqrt", "rne_bf16", "mx_encode", "MISC_FNS"]

#: Misc unit function codes.
MISC_FNS = ["max", "min", "clt", "cle", "ceq", "sel", "abs", "neg", "f2b", "b2flo", "b2fhi",
            "mov", "mxq"]

NAN = 0x7FC00000


def _fields(x):
    e = x[23:31]
    frac = x[0:23]
    return x[31], e, frac


def _is_nan(x):
    return (x[23:31] == 0xFF) & (x[0:23] != 0)


def _is_inf(x):
    return (x[23:31] == 0xFF) & (x[0:23] == 0)


def fma(m, a, b, c, *, name="fma"):
    """``round(a * b + c)`` (IEEE, RNE, subnormals; NaN results are ``0x7FC00000``).

    Window (LSB weight ``2**(ep - 176)``): the 48-bit product at bits 3..50,
    the addend shifted by ``sh = ec - ep + 26`` clamped to ``[-27, 53]`` (below:
    its lost bits become a sticky bit; above: the product is < 1/4 ulp of
    the addend, so only its sign and non-zeroness matter, which the clamped
    position preserves). An exact zero product returns ``c`` directly (or the
    IEEE signed zero), since a clamped addend may have left the window.
    """
    def S(suffix, shape):
        return Signal(shape, name=f"{name}_{suffix}")

    sa, ea, fa = _fields(a)
    sb, eb, fb = _fields(b)
    sc, ec, fc = _fields(c)
    ma, mb, mc = Cat(fa, ea != 0), Cat(fb, eb != 0), Cat(fc, ec != 0)
    eae, ebe, ece = Mux(ea == 0, 1, ea), Mux(eb == 0, 1, eb), Mux(ec == 0, 1, ec)
    sp = S("sp", 1)
    m.d.comb += sp.eq(sa ^ sb)
    prod = S("prod", 48)
    m.d.comb += prod.eq(ma * mb)
    ep = S("ep", signed(12))
    m.d.comb += ep.eq(eae + ebe - 127)
    sh = S("sh", signed(13))
    m.d.comb += sh.eq(ece - ep + 26)
    camt = S("camt", 7)  # clamped shift + 27, in [0, 80]
    m.d.comb += camt.eq(Mux(sh > 53, 80, Mux(sh < -27, 0, sh + 27)))
    cwide = S("cwide", 104)
    m.d.comb += cwide.eq(mc << camt)
    cwin = S("cwin", 77)
    cst = S("cst", 1)
    m.d.comb += [cwin.eq(cwide[27:]), cst.eq(cwide[:27] != 0)]
    pwin = S("pwin", 51)
    m.d.comb += pwin.eq(prod << 3)

    sub = S("sub", 1)
    m.d.comb += sub.eq(sp ^ sc)
    diff = S("diff", signed(80))
    m.d.comb += diff.eq(pwin - cwin - cst)
    r = S("r", 78)
    sr = S("sr", 1)
    with m.If(~sub):
        m.d.comb += [r.eq(pwin + cwin), sr.eq(sp)]
    with m.Elif(diff < 0):
        m.d.comb += [r.eq(-diff), sr.eq(sc)]
    with m.Else():
        m.d.comb += [r.eq(diff), sr.eq(sp)]

    k = S("k", 7)  # index of the leading one of r
    for i in range(78):
        with m.If(r[i]):
            m.d.comb += k.eq(i)
    # With the addend clamped at the top its own scale sets the window weight.
    epw = S("epw", signed(12))
    m.d.comb += epw.eq(Mux(sh > 53, ece - 27, ep))
    lsb = S("lsb", signed(13))
    m.d.comb += lsb.eq(Mux(k - 23 > 27 - epw, k - 23, 27 - epw))
    amt1 = S("amt1", 7)  # lsb + 23 in [0, 102]: shift to the round bit
    m.d.comb += amt1.eq(Mux(lsb > 79, 102, lsb + 23))
    rext = S("rext", 102)
    m.d.comb += rext.eq(Cat(Const(0, 24), r))
    shifted = S("shifted", 102)
    m.d.comb += shifted.eq(rext >> amt1)
    low = S("low", 102)
    m.d.comb += low.eq(rext & ~(Const((1 << 102) - 1, 102) << amt1)[:102])
    q = S("q", 25)
    rnd = S("rnd", 1)
    st = S("st", 1)
    m.d.comb += [q.eq(shifted[1:26]), rnd.eq(shifted[0]), st.eq((low != 0) | cst)]
    qr = S("qr", 26)
    m.d.comb += qr.eq(q + (rnd & (st | q[0])))
    ebase = S("ebase", signed(14))
    m.d.comb += ebase.eq(lsb + epw - 26)
    bits = S("bits", signed(40))
    m.d.comb += bits.eq(((ebase - 1) << 23) + qr)

    out = S("out", 32)
    a_zero, b_zero = a[0:31] == 0, b[0:31] == 0
    a_inf, b_inf, c_inf = _is_inf(a), _is_inf(b), _is_inf(c)
    any_nan = _is_nan(a) | _is_nan(b) | _is_nan(c)
    p_inf = a_inf | b_inf
    with m.If(any_nan | (a_inf & b_zero) | (b_inf & a_zero) | (p_inf & c_inf & (sc != sp))):
        m.d.comb += out.eq(NAN)
    with m.Elif(p_inf):
        m.d.comb += out.eq(Cat(Const(0x7F800000, 31), sp))
    with m.Elif(c_inf):
        m.d.comb += out.eq(c)
    with m.Elif(a_zero | b_zero):
        # An exact zero product: the sum is c (the window may have dropped it).
        m.d.comb += out.eq(Mux(c[0:31] == 0, Cat(Const(0, 31), sp & sc), c))
    with m.Elif((r == 0) & ~cst):
        m.d.comb += out.eq(Cat(Const(0, 31), sp & sc))
    with m.Elif(qr == 0):
        m.d.comb += out.eq(Cat(Const(0, 31), sr))
    with m.Elif(bits >= 0x7F800000):
        m.d.comb += out.eq(Cat(Const(0x7F800000, 31), sr))
    with m.Else():
        m.d.comb += out.eq(Cat(bits[:31], sr))
    return out


def rne_bf16(x):
    """FP32 -> BF16 (RNE on the bit pattern; NaN -> ``0x7FC0``) as an expression."""
    rounded = (x + 0x7FFF + x[16])[16:32]
    return Mux(_is_nan(x), 0x7FC0, rounded)


def _ordered(x):
    """Signed key with IEEE order on non-NaN values and -0 < +0."""
    mag = x[0:31]
    key = Cat(mag, Const(0, 2)).as_signed()
    return Mux(x[31], -key - 1, key)


def misc(m, fn, x, y, z, *, name="misc"):
    """Misc unit: ``fn`` is a signal indexing :data:`MISC_FNS` (see :func:`sim.tvp.misc`)."""
    out = Signal(32, name=f"{name}_out")
    kx, ky = Signal(signed(34), name=f"{name}_kx"), Signal(signed(34), name=f"{name}_ky")
    m.d.comb += [kx.eq(_ordered(x)), ky.eq(_ordered(y))]
    nan = _is_nan(x) | _is_nan(y)
    zeros = (x[0:31] == 0) & (y[0:31] == 0)
    gt = kx > ky
    lt = ~nan & ~zeros & (kx < ky)
    eq = ~nan & ((x == y) | zeros)
    one = 0x3F800000
    with m.Switch(fn):
        for i, f in enumerate(MISC_FNS):
            with m.Case(i):
                if f == "max":
                    m.d.comb += out.eq(Mux(nan, NAN, Mux(gt, x, y)))
                elif f == "min":
                    m.d.comb += out.eq(Mux(nan, NAN, Mux(gt, y, x)))
                elif f == "clt":
                    m.d.comb += out.eq(Mux(lt, one, 0))
                elif f == "cle":
                    m.d.comb += out.eq(Mux(lt | eq, one, 0))
                elif f == "ceq":
                    m.d.comb += out.eq(Mux(eq, one, 0))
                elif f == "sel":
                    m.d.comb += out.eq(Mux(x[0:31] != 0, y, z))
                elif f == "abs":
                    m.d.comb += out.eq(Cat(x[0:31], Const(0, 1)))
                elif f == "neg":
                    m.d.comb += out.eq(Cat(x[0:31], ~x[31]))
                elif f == "f2b":
                    m.d.comb += out.eq(Cat(rne_bf16(x), rne_bf16(y)))
                elif f == "b2flo":
                    m.d.comb += out.eq(Cat(Const(0, 16), x[0:16]))
                elif f == "b2fhi":
                    m.d.comb += out.eq(Cat(Const(0, 16), x[16:32]))
                elif f == "mxq":
                    m.d.comb += out.eq(mx_encode(m, x, y, z, name=f"{name}_mxq"))
                else:  # mov
                    m.d.comb += out.eq(x)
    return out


def _rom(table, width):
    return Array([Const(v, width) for v in table])


def exp(m, x, *, name="exp"):
    """``exp(x)``: the integer algorithm of :func:`sim.tvp.exp_f32`."""
    def S(suffix, shape):
        return Signal(shape, name=f"{name}_{suffix}")
    s, e, frac = _fields(x)
    sig = Cat(frac, Const(1, 1))
    prod = S("prod", 59)
    m.d.comb += prod.eq(sig * Const(golden.EXP_LOG2E, 35))
    mag = S("mag", 40)
    m.d.comb += mag.eq(Mux(e > 90, prod >> (154 - e)[:6], 0))
    t = S("t", signed(41))
    m.d.comb += t.eq(Mux(s, -mag, mag))
    n = S("n", signed(11))
    f = S("f", 30)
    m.d.comb += [n.eq(t >> 30), f.eq(t[0:30])]
    i, r = f[24:30], f[0:24]
    p3 = S("p3", 30)
    p2 = S("p2", 30)
    p1 = S("p1", 30)
    m.d.comb += p3.eq((Const(golden.EXP_C3, 30) * r) >> 30)
    m.d.comb += p2.eq(((golden.EXP_C2 + p3) * r) >> 30)
    m.d.comb += p1.eq(((golden.EXP_C1 + p2) * r) >> 30)
    y = S("y", 32)
    m.d.comb += y.eq((_rom(golden.EXP_TABLE, 31)[i] * ((1 << 30) + p1)) >> 30)
    mm = S("mm", 25)
    m.d.comb += mm.eq((y + 64) >> 7)
    ex = S("ex", signed(12))
    man = S("man", 23)
    m.d.comb += [ex.eq(n + 127 + mm[24]), man.eq(Mux(mm[24], mm[1:24], mm[0:23]))]
    out = S("out", 32)
    with m.If(_is_nan(x)):
        m.d.comb += out.eq(NAN)
    with m.Elif((e == 0xFF) | (e >= 134)):
        m.d.comb += out.eq(Mux(s, 0, 0x7F800000))
    with m.Elif(e == 0):
        m.d.comb += out.eq(0x3F800000)
    with m.Elif(ex >= 255):
        m.d.comb += out.eq(0x7F800000)
    with m.Elif(ex <= 0):
        m.d.comb += out.eq(0)
    with m.Else():
        m.d.comb += out.eq(Cat(man, ex[:8], Const(0, 1)))
    return out


def _normalize_q32(m, sign, y, exp_hi, name):
    """Hardware :func:`sim.tvp._normalize_q32`."""
    mm = Signal(25, name=f"{name}_mm")
    ex = Signal(signed(12), name=f"{name}_ex")
    m.d.comb += mm.eq(Mux(y[31:] != 0, (y + (1 << 7)) >> 8, (y + (1 << 6)) >> 7))
    m.d.comb += ex.eq(exp_hi - (y[31:] == 0) + mm[24])
    man = Mux(mm[24], mm[1:24], mm[0:23])
    return Mux(ex <= 0, Cat(Const(0, 31), sign), Cat(man, ex[:8], sign))


def recip(m, x, *, name="recip"):
    """``1/x``: :func:`sim.tvp.recip_f32` (table seed + two Newton steps)."""
    s, e, frac = _fields(x)
    sig = Cat(frac, Const(1, 1))
    y = Signal(33, name=f"{name}_y0")
    m.d.comb += y.eq(_rom(golden.RECIP_TABLE, 11)[frac[16:23]] << 22)
    for step in range(2):
        my = Signal(35, name=f"{name}_my{step}")
        m.d.comb += my.eq((sig * y) >> 23)
        yn = Signal(33, name=f"{name}_y{step + 1}")
        m.d.comb += yn.eq((y * ((1 << 33) - my)[:35]) >> 32)
        y = yn
    exp_hi = Signal(signed(12), name=f"{name}_exphi")
    m.d.comb += exp_hi.eq(253 - e)
    norm = _normalize_q32(m, s, y, exp_hi, name)
    out = Signal(32, name=f"{name}_out")
    with m.If(_is_nan(x)):
        m.d.comb += out.eq(NAN)
    with m.Elif(e == 0xFF):
        m.d.comb += out.eq(Cat(Const(0, 31), s))
    with m.Elif(e == 0):
        m.d.comb += out.eq(Cat(Const(0x7F800000, 31), s))
    with m.Else():
        m.d.comb += out.eq(norm)
    return out


def rsqrt(m, x, *, name="rsqrt"):
    """``1/sqrt(x)``: :func:`sim.tvp.rsqrt_f32` (table seed + two Newton steps)."""
    s, e, frac = _fields(x)
    sig = Cat(frac, Const(1, 1))
    odd = ~e[0]  # unbiased exponent e - 127 is odd
    mm = Signal(25, name=f"{name}_mmant")
    m.d.comb += mm.eq(Mux(odd, sig << 1, sig))
    y = Signal(33, name=f"{name}_y0")
    m.d.comb += y.eq(_rom(golden.RSQRT_TABLE, 11)[Cat(frac[16:23], odd)] << 22)
    for step in range(2):
        y2 = Signal(34, name=f"{name}_ysq{step}")
        m.d.comb += y2.eq((y * y) >> 32)
        my2 = Signal(36, name=f"{name}_my{step}")
        m.d.comb += my2.eq((mm * y2) >> 23)
        yn = Signal(33, name=f"{name}_y{step + 1}")
        m.d.comb += yn.eq((y * ((3 << 32) - my2)[:36]) >> 33)
        y = yn
    half = Signal(signed(10), name=f"{name}_half")
    m.d.comb += half.eq((e - 127 - odd) >> 1)
    exp_hi = Signal(signed(12), name=f"{name}_exphi")
    m.d.comb += exp_hi.eq(126 - half)
    norm = _normalize_q32(m, Const(0, 1), y, exp_hi, name)
    out = Signal(32, name=f"{name}_out")
    with m.If(_is_nan(x)):
        m.d.comb += out.eq(NAN)
    with m.Elif(e == 0):
        m.d.comb += out.eq(Cat(Const(0x7F800000, 31), s))
    with m.Elif(s):
        m.d.comb += out.eq(NAN)
    with m.Elif(e == 0xFF):
        m.d.comb += out.eq(0)
    with m.Else():
        m.d.comb += out.eq(norm)
    return out


def _msb(m, v, width, name):
    """Index of the leading one of ``v`` (0 when ``v == 0``)."""
    k = Signal(range(max(2, width)), name=name)
    for i in range(width):
        with m.If(v[i]):
            m.d.comb += k.eq(i)
    return k


def mx_encode(m, x, amax, sel, *, name="mxq"):
    """MX quantization of one element (:func:`sim.tvp.mxq`): ``code | scale << 8``.

    Scale exponent ``X = floor(log2(amax)) - emax`` (clamped); the element is
    rounded to nearest-even on the format's grid (``q = max(k - mbits, lsb)``
    for a value ``2**k <= |x / 2**X| < 2**(k+1)``) and saturated to the largest
    finite code; NaN/Inf follow :func:`sim.mx.encode`.
    """
    from sim import mx as mxg

    def S(suffix, shape):
        return Signal(shape, name=f"{name}_{suffix}")

    # Per-format constants, selected at run time.
    mbits, lsb, emax = S("mbits", 4), S("lsb", signed(7)), S("emax", signed(6))
    bits, max_e, max_m = S("bits", 4), S("max_e", 6), S("max_m", 4)
    nan_code, has_inf, is_int, ok = S("nan_code", 8), S("has_inf", 1), S("is_int", 1), S("ok", 1)
    with m.Switch(sel[0:3]):
        for fname, f in mxg.FORMATS.items():
            with m.Case(f.select):
                top = (1 << f.ebits) - 1
                if f.has_inf:
                    me, mm_ = top - 1, (1 << f.mbits) - 1
                elif f.has_nan:
                    me, mm_ = top, (1 << f.mbits) - 2
                else:
                    me, mm_ = top, (1 << f.mbits) - 1
                m.d.comb += [mbits.eq(f.mbits), lsb.eq(f.lsb), emax.eq(f.emax), bits.eq(f.bits),
                             max_e.eq(me), max_m.eq(mm_ if f.ebits else 0),
                             nan_code.eq(mxg._nan_code(f)), has_inf.eq(f.has_inf),
                             is_int.eq(f.ebits == 0), ok.eq(1)]

    # Shared exponent from amax.
    ea, fa = amax[23:31], amax[0:23]
    bad = ea == 0xFF
    amsb = _msb(m, fa, 23, f"{name}_amsb")
    fl = S("fl", signed(10))
    m.d.comb += fl.eq(Mux(ea != 0, ea - 127, amsb - 149))
    xs = S("xs", signed(11))
    m.d.comb += xs.eq(fl - emax)
    X = S("X", signed(9))
    m.d.comb += X.eq(Mux(amax[0:31] == 0, -127, Mux(xs < -127, -127, Mux(xs > 127, 127, xs))))

    # Element.
    s, e, frac = x[31], x[23:31], x[0:23]
    sig = Cat(frac, e != 0)
    x_nan = (e == 0xFF) & (frac != 0)
    x_inf = (e == 0xFF) & (frac == 0)
    smsb = _msb(m, sig, 24, f"{name}_smsb")
    t = S("t", signed(12))
    m.d.comb += t.eq(Mux(e == 0, 1, e) - 150 - X)
    k = S("k", signed(12))
    m.d.comb += k.eq(smsb + t)
    huge = S("huge", 1)
    m.d.comb += huge.eq((k > emax + 1) | x_inf)
    q = S("q", signed(12))
    m.d.comb += q.eq(Mux(k - mbits > lsb, k - mbits, lsb))
    shift = S("shift", signed(13))
    m.d.comb += shift.eq(q - t)
    amt1 = S("amt1", 6)  # position of the round bit in sig << 9
    m.d.comb += amt1.eq(Mux(shift > 27, 35, Mux(shift < -8, 0, shift + 8)))
    ext = S("ext", 33)
    m.d.comb += ext.eq(sig << 9)
    shifted = S("shifted", 33)
    m.d.comb += shifted.eq(ext >> amt1)
    st = S("st", 1)
    m.d.comb += st.eq((ext & ~(Const((1 << 33) - 1, 33) << amt1)[:33]) != 0)
    n = S("n", 12)
    m.d.comb += n.eq(shifted[1:12] + (shifted[0] & (st | shifted[1])))
    # Renormalise a rounding carry (n == 2**(mbits+1)).
    carry = (n >> (mbits + 1)) != 0
    nn = S("nn", 12)
    qq = S("qq", signed(12))
    m.d.comb += [nn.eq(Mux(carry, n >> 1, n)), qq.eq(q + carry)]
    ef = S("ef", signed(12))
    m.d.comb += ef.eq(Mux((nn >> mbits) != 0, qq - lsb + 1, 0))
    mf = S("mf", 8)
    m.d.comb += mf.eq(nn & ((Const(1, 9) << mbits) - 1))
    sat = huge | (ef > max_e) | ((ef == max_e) & (mf > max_m))
    magc = S("magc", 8)
    m.d.comb += magc.eq(Mux(sat, (max_e << mbits) | max_m, (ef[:6] << mbits) | mf))
    fpcode = S("fpcode", 8)
    with m.If(x_nan):
        m.d.comb += fpcode.eq(nan_code)
    with m.Elif(x_inf & has_inf):
        m.d.comb += fpcode.eq(Mux(s, 0xFC, 0x7C))
    with m.Else():
        m.d.comb += fpcode.eq(magc | (s << (bits - 1)[:4]))
    imag = S("imag", 8)
    m.d.comb += imag.eq(Mux(huge | (n > 127), 127, n))
    icode = S("icode", 8)
    m.d.comb += icode.eq(Mux(x_nan, 0, Mux(s, -imag, imag)))
    out = S("out", 32)
    with m.If(~ok):
        m.d.comb += out.eq(0)
    with m.Elif(bad):
        m.d.comb += out.eq(0xFF << 8)
    with m.Else():
        m.d.comb += out.eq(Cat(Mux(is_int, icode, fpcode), (X + 127)[:8]))
    return out
