"""Pipelined FP32 units of a TVP slot: FMA, misc (incl. MX encode), exp / recip / rsqrt.

Each unit is ``unit(p, ...operands, name=...) -> (result, latency)``: it adds
logic to the pipeline module ``p`` (a :class:`amaranth.hdl.Module` whose
``sync`` domain the TVP gates with its stall enable), takes operands that are
registers of pipeline stage 0 and returns its result ``latency`` registered
stages later. The TVP pads every unit to the slowest one, so results come
back in issue order.

The units mirror :mod:`sim.fp32` (FMA, exact IEEE RNE) and :mod:`sim.tvp`
(the approximations, modelled there as integer operations on the tables of
:mod:`hw.tvp.microcode`) bit for bit; the
FMA is an independent hardware algorithm (aligned window, one rounding),
checked against the exact Python-integer model. The stage cuts put about
one wide multiplier, one barrel shifter or one long carry chain in each stage.
"""
from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Mux, Signal, Value, signed

from hw.common import mx as mxf

from . import microcode as mc
from .microcode import MISC_FNS

__all__ = ["fma", "misc", "exp", "recip", "rsqrt", "rne_bf16", "stage", "MISC_FNS"]

NAN = 0x7FC00000


def stage(p, name, **values):
    """Register ``values`` (one pipeline stage); returns a namespace of the registers."""
    out = {}
    for k, v in values.items():
        v = Value.cast(v)
        r = Signal(v.shape(), name=f"{name}_{k}")
        p.d.sync += r.eq(v)
        out[k] = r
    return SimpleNamespace(**out)


def delay(p, v, n, name):
    """``v`` delayed by ``n`` pipeline stages."""
    for i in range(n):
        v = stage(p, f"{name}_d{i}", v=v).v
    return v


def _fields(x):
    return x[31], x[23:31], x[0:23]


def _is_nan(x):
    return (x[23:31] == 0xFF) & (x[0:23] != 0)


def _is_inf(x):
    return (x[23:31] == 0xFF) & (x[0:23] == 0)


def msb_index(v):
    """``(index of the leading one, v != 0)`` of ``v`` as a balanced tree of muxes.

    (A ``for``/``If`` priority chain is as deep as ``v`` is wide; this is log2 deep.)
    """
    v = Value.cast(v)
    w = len(v)
    if w == 1:
        return Const(0, 1), v[0]
    half = 1 << ((w - 1).bit_length() - 1)
    lo_i, lo_nz = msb_index(v[:half])
    hi_i, hi_nz = msb_index(v[half:])
    bits = (half - 1).bit_length() if half > 1 else 0
    lo_i = lo_i[:bits] if bits else Const(0, 0)
    hi_w = Cat(hi_i, Const(0, max(0, bits - len(hi_i))))[:bits] if bits else Const(0, 0)
    idx = Mux(hi_nz, Cat(hi_w, Const(1, 1)), Cat(lo_i, Const(0, 1)))
    return idx, lo_nz | hi_nz


def fma(p, a, b, c, *, name="fma"):
    """``round(a * b + c)`` (IEEE, RNE, subnormals; NaN results are ``0x7FC00000``). 6 stages.

    Window (LSB weight ``2**(ep - 176)``): the 48-bit product at bits 3..50,
    the addend shifted by ``sh = ec - ep + 26`` clamped to ``[-27, 53]`` (below:
    its lost bits become a sticky bit; above: the product is < 1/4 ulp of
    the addend, so only its sign and non-zeroness matter, which the clamped
    position preserves). An exact zero product returns ``c`` directly (or the
    IEEE signed zero), since a clamped addend may have left the window.
    """
    # --- S0: multiply, exponent difference, special cases ---------------
    sa, ea, fa = _fields(a)
    sb, eb, fb = _fields(b)
    sc, ec, fc = _fields(c)
    ma, mb, mc = Cat(fa, ea != 0), Cat(fb, eb != 0), Cat(fc, ec != 0)
    eae, ebe, ece = Mux(ea == 0, 1, ea), Mux(eb == 0, 1, eb), Mux(ec == 0, 1, ec)
    sp = sa ^ sb
    ep = Signal(signed(12), name=f"{name}_ep")
    sh = Signal(signed(13), name=f"{name}_sh")
    p.d.comb += [ep.eq(eae + ebe - 127), sh.eq(ece - ep + 26)]
    camt = Mux(sh > 53, 80, Mux(sh < -27, 0, sh + 27))[:7]  # clamped shift + 27, in [0, 80]
    a_zero, b_zero = a[0:31] == 0, b[0:31] == 0
    a_inf, b_inf, c_inf = _is_inf(a), _is_inf(b), _is_inf(c)
    any_nan = _is_nan(a) | _is_nan(b) | _is_nan(c)
    p_inf = a_inf | b_inf
    spec, spec_val = _special(p, name, [
        (any_nan | (a_inf & b_zero) | (b_inf & a_zero) | (p_inf & c_inf & (sc != sp)), NAN),
        (p_inf, Cat(Const(0x7F800000, 31), sp)),
        (c_inf, c),
        # An exact zero product: the sum is c (the window may have dropped it).
        (a_zero | b_zero, Mux(c[0:31] == 0, Cat(Const(0, 31), sp & sc), c)),
    ])
    # With the addend clamped at the top its own scale sets the window weight.
    epw = Mux(sh > 53, ece - 27, ep)
    s1 = stage(p, f"{name}_s1", prod=ma * mb, camt=camt, mc=mc, sp=sp, sc=sc,
               sub=sp ^ sc, epw=epw.as_signed()[:12].as_signed(), spec=spec, spec_val=spec_val)

    # --- S1: align the addend --------------------------------------------
    cwide = Signal(104, name=f"{name}_cwide")
    p.d.comb += cwide.eq(s1.mc << s1.camt)
    s2 = stage(p, f"{name}_s2", pwin=Cat(Const(0, 3), s1.prod), cwin=cwide[27:],
               cst=cwide[:27] != 0, sub=s1.sub, sp=s1.sp, sc=s1.sc, epw=s1.epw,
               spec=s1.spec, spec_val=s1.spec_val)

    # --- S2: add / subtract (both differences in parallel) ----------------
    d1 = Signal(signed(80), name=f"{name}_d1")
    d2 = Signal(signed(80), name=f"{name}_d2")
    p.d.comb += [d1.eq(s2.pwin - s2.cwin - s2.cst), d2.eq(s2.cwin + s2.cst - s2.pwin)]
    r = Signal(78, name=f"{name}_r")
    sr = Signal(name=f"{name}_sr")
    with p.If(~s2.sub):
        p.d.comb += [r.eq(s2.pwin + s2.cwin), sr.eq(s2.sp)]
    with p.Elif(d1 < 0):
        p.d.comb += [r.eq(d2), sr.eq(s2.sc)]
    with p.Else():
        p.d.comb += [r.eq(d1), sr.eq(s2.sp)]
    s3 = stage(p, f"{name}_s3", r=r, sr=sr, cst=s2.cst, epw=s2.epw, zs=s2.sp & s2.sc,
               spec=s2.spec, spec_val=s2.spec_val)

    # --- S3: leading one, rounding position -------------------------------
    k, _ = msb_index(s3.r)
    lsb = Signal(signed(13), name=f"{name}_lsb")
    p.d.comb += lsb.eq(Mux(k - 23 > 27 - s3.epw, k - 23, 27 - s3.epw))
    amt1 = Mux(lsb > 79, 102, lsb + 23)[:7]  # lsb + 23 in [0, 102]: shift to the round bit
    s4 = stage(p, f"{name}_s4", r=s3.r, amt1=amt1, ebase=(lsb + s3.epw - 26)[:14].as_signed(),
               sr=s3.sr, cst=s3.cst, zs=s3.zs, zero_r=(s3.r == 0) & ~s3.cst,
               spec=s3.spec, spec_val=s3.spec_val)

    # --- S4: normalising shift, round and sticky bits ---------------------
    rext = Signal(102, name=f"{name}_rext")
    shifted = Signal(102, name=f"{name}_shifted")
    low = Signal(102, name=f"{name}_low")
    p.d.comb += [rext.eq(Cat(Const(0, 24), s4.r)), shifted.eq(rext >> s4.amt1),
                 low.eq(rext & ~(Const((1 << 102) - 1, 102) << s4.amt1)[:102])]
    s5 = stage(p, f"{name}_s5", q=shifted[1:26], rnd=shifted[0], st=(low != 0) | s4.cst,
               ebase=s4.ebase, sr=s4.sr, zs=s4.zs, zero_r=s4.zero_r,
               spec=s4.spec, spec_val=s4.spec_val)

    # --- S5: round, exponent, result selection ----------------------------
    qr = Signal(26, name=f"{name}_qr")
    p.d.comb += qr.eq(s5.q + (s5.rnd & (s5.st | s5.q[0])))
    bits = Signal(signed(40), name=f"{name}_bits")
    p.d.comb += bits.eq(((s5.ebase - 1) << 23) + qr)
    out = Signal(32, name=f"{name}_out")
    with p.If(s5.spec):
        p.d.comb += out.eq(s5.spec_val)
    with p.Elif(s5.zero_r):
        p.d.comb += out.eq(Cat(Const(0, 31), s5.zs))
    with p.Elif(qr == 0):
        p.d.comb += out.eq(Cat(Const(0, 31), s5.sr))
    with p.Elif(bits >= 0x7F800000):
        p.d.comb += out.eq(Cat(Const(0x7F800000, 31), s5.sr))
    with p.Else():
        p.d.comb += out.eq(Cat(bits[:31], s5.sr))
    return stage(p, f"{name}_s6", out=out).out, 6


def rne_bf16(x):
    """FP32 -> BF16 (RNE on the bit pattern; NaN -> ``0x7FC0``) as an expression."""
    rounded = (x + 0x7FFF + x[16])[16:32]
    return Mux(_is_nan(x), 0x7FC0, rounded)


def _ordered(x):
    """Signed key with IEEE order on non-NaN values and -0 < +0."""
    mag = x[0:31]
    key = Cat(mag, Const(0, 2)).as_signed()
    return Mux(x[31], -key - 1, key)


#: Pipeline depth of the misc unit (set by the MX encoder).
MISC_LATENCY = 4


def misc(p, fn, x, y, z, *, name="misc"):
    """Misc unit: ``fn`` indexes :data:`MISC_FNS` (see :func:`sim.tvp.misc`). 4 stages."""
    out = Signal(32, name=f"{name}_out")
    kx, ky = Signal(signed(34), name=f"{name}_kx"), Signal(signed(34), name=f"{name}_ky")
    p.d.comb += [kx.eq(_ordered(x)), ky.eq(_ordered(y))]
    nan = _is_nan(x) | _is_nan(y)
    zeros = (x[0:31] == 0) & (y[0:31] == 0)
    gt = kx > ky
    lt = ~nan & ~zeros & (kx < ky)
    eq = ~nan & ((x == y) | zeros)
    one = 0x3F800000
    with p.Switch(fn):
        for i, f in enumerate(MISC_FNS):
            with p.Case(i):
                if f == "max":
                    p.d.comb += out.eq(Mux(nan, NAN, Mux(gt, x, y)))
                elif f == "min":
                    p.d.comb += out.eq(Mux(nan, NAN, Mux(gt, y, x)))
                elif f == "clt":
                    p.d.comb += out.eq(Mux(lt, one, 0))
                elif f == "cle":
                    p.d.comb += out.eq(Mux(lt | eq, one, 0))
                elif f == "ceq":
                    p.d.comb += out.eq(Mux(eq, one, 0))
                elif f == "sel":
                    p.d.comb += out.eq(Mux(x[0:31] != 0, y, z))
                elif f == "abs":
                    p.d.comb += out.eq(Cat(x[0:31], Const(0, 1)))
                elif f == "neg":
                    p.d.comb += out.eq(Cat(x[0:31], ~x[31]))
                elif f == "f2b":
                    p.d.comb += out.eq(Cat(rne_bf16(x), rne_bf16(y)))
                elif f == "b2flo":
                    p.d.comb += out.eq(Cat(Const(0, 16), x[0:16]))
                elif f == "b2fhi":
                    p.d.comb += out.eq(Cat(Const(0, 16), x[16:32]))
                elif f == "mov":
                    p.d.comb += out.eq(x)
    is_mx = (fn == MISC_FNS.index("mxq")) | (fn == MISC_FNS.index("mxqp"))
    with_sel = fn == MISC_FNS.index("mxqp")
    simple = delay(p, out, MISC_LATENCY, f"{name}_simple")
    is_mx = delay(p, is_mx, MISC_LATENCY, f"{name}_ismx")
    with_sel = delay(p, with_sel, MISC_LATENCY - 1, f"{name}_wsel")
    mx = _mx_encode(p, x, y, z, with_sel, name=f"{name}_mxq")
    return Mux(is_mx, mx, simple), MISC_LATENCY


def _special(p, name, cases):
    """Special-operand results of a unit: ``cases`` = ``[(condition, result), ...]``
    in priority order; returns ``(spec, spec_val)`` (``spec`` low when none holds)."""
    spec = Signal(name=f"{name}_spec0")
    spec_val = Signal(32, name=f"{name}_specv0")
    p.d.comb += spec.eq(1)
    for k, (cond, value) in enumerate(cases):
        with (p.If if k == 0 else p.Elif)(cond):
            p.d.comb += spec_val.eq(value)
    with p.Else():
        p.d.comb += spec.eq(0)
    return spec, spec_val


def _rom(table, width):
    return Array([Const(v, width) for v in table])


def exp(p, x, *, name="exp"):
    """``exp(x)``: the integer algorithm of :func:`sim.tvp.exp_f32`. 7 stages."""
    s, e, frac = _fields(x)
    sig = Cat(frac, Const(1, 1))
    spec, spec_val = _special(p, name, [
        (_is_nan(x), NAN),
        ((e == 0xFF) | (e >= 134), Mux(s, 0, 0x7F800000)),
        (e == 0, 0x3F800000),
    ])
    s1 = stage(p, f"{name}_s1", prod=sig * Const(mc.EXP_LOG2E, 35), e=e, s=s,
               spec=spec, spec_val=spec_val)
    # S1: t = x log2(e) in fixed point, n = floor(t), f = t - n.
    mag = Signal(40, name=f"{name}_mag")
    p.d.comb += mag.eq(Mux(s1.e > 90, s1.prod >> (154 - s1.e)[:6], 0))
    t = Signal(signed(41), name=f"{name}_t")
    p.d.comb += t.eq(Mux(s1.s, -mag, mag))
    s2 = stage(p, f"{name}_s2", n=(t >> 30)[:11].as_signed(), f=t[0:30],
               spec=s1.spec, spec_val=s1.spec_val)
    r = s2.f[0:24]
    # S2..S4: Horner for 2**r - 1.
    s3 = stage(p, f"{name}_s3", pp=((Const(mc.EXP_C3, 30) * r) >> 30)[:30], r=r,
               i=s2.f[24:30], n=s2.n, spec=s2.spec, spec_val=s2.spec_val)
    s4 = stage(p, f"{name}_s4", pp=(((mc.EXP_C2 + s3.pp) * s3.r) >> 30)[:30], r=s3.r,
               i=s3.i, n=s3.n, spec=s3.spec, spec_val=s3.spec_val)
    s5 = stage(p, f"{name}_s5", pp=(((mc.EXP_C1 + s4.pp) * s4.r) >> 30)[:30],
               i=s4.i, n=s4.n, spec=s4.spec, spec_val=s4.spec_val)
    # S5: table value times (1 + p).
    s6 = stage(p, f"{name}_s6",
               y=((_rom(mc.EXP_TABLE, 31)[s5.i] * ((1 << 30) + s5.pp)) >> 30)[:32],
               n=s5.n, spec=s5.spec, spec_val=s5.spec_val)
    # S6: round to 24 bits, exponent, result selection.
    mm = Signal(25, name=f"{name}_mm")
    p.d.comb += mm.eq((s6.y + 64) >> 7)
    ex = Signal(signed(12), name=f"{name}_ex")
    man = Signal(23, name=f"{name}_man")
    p.d.comb += [ex.eq(s6.n + 127 + mm[24]), man.eq(Mux(mm[24], mm[1:24], mm[0:23]))]
    out = Signal(32, name=f"{name}_out")
    with p.If(s6.spec):
        p.d.comb += out.eq(s6.spec_val)
    with p.Elif(ex >= 255):
        p.d.comb += out.eq(0x7F800000)
    with p.Elif(ex <= 0):
        p.d.comb += out.eq(0)
    with p.Else():
        p.d.comb += out.eq(Cat(man, ex[:8], Const(0, 1)))
    return stage(p, f"{name}_s7", out=out).out, 7


def _normalize_q32(p, sign, y, exp_hi, name):
    """Hardware :func:`sim.tvp._normalize_q32`."""
    mm = Signal(25, name=f"{name}_mm")
    ex = Signal(signed(12), name=f"{name}_ex")
    p.d.comb += mm.eq(Mux(y[31:] != 0, (y + (1 << 7)) >> 8, (y + (1 << 6)) >> 7))
    p.d.comb += ex.eq(exp_hi - (y[31:] == 0) + mm[24])
    man = Mux(mm[24], mm[1:24], mm[0:23])
    return Mux(ex <= 0, Cat(Const(0, 31), sign), Cat(man, ex[:8], sign))


def recip(p, x, *, name="recip"):
    """``1/x``: :func:`sim.tvp.recip_f32` (table seed + two Newton steps). 5 stages."""
    s, e, frac = _fields(x)
    sig = Cat(frac, Const(1, 1))
    spec, spec_val = _special(p, name, [
        (_is_nan(x), NAN),
        (e == 0xFF, Cat(Const(0, 31), s)),
        (e == 0, Cat(Const(0x7F800000, 31), s)),
    ])
    seed = _rom(mc.RECIP_TABLE, 11)[frac[16:23]]
    y0 = Cat(Const(0, 22), seed)[:33]
    st = stage(p, f"{name}_s1", y=y0, my=((sig * seed) >> 1)[:35], sig=sig,
               exp_hi=(253 - e)[:12].as_signed(), s=s, spec=spec, spec_val=spec_val)
    for k in range(2):
        keep = dict(sig=st.sig, exp_hi=st.exp_hi, s=st.s, spec=st.spec, spec_val=st.spec_val)
        yn = ((st.y * ((1 << 33) - st.my)[:35]) >> 32)[:33]
        if k == 0:
            st = stage(p, f"{name}_y{k + 1}", y=yn, **keep)
            st = stage(p, f"{name}_m{k + 1}", y=st.y, my=((st.sig * st.y) >> 23)[:35],
                       **{kk: getattr(st, kk) for kk in keep})
        else:
            st = stage(p, f"{name}_y{k + 1}", y=yn, **keep)
    norm = _normalize_q32(p, st.s, st.y, st.exp_hi, name)
    return stage(p, f"{name}_s5", out=Mux(st.spec, st.spec_val, norm)).out, 5


def rsqrt(p, x, *, name="rsqrt"):
    """``1/sqrt(x)``: :func:`sim.tvp.rsqrt_f32` (table seed + two Newton steps). 7 stages."""
    s, e, frac = _fields(x)
    sig = Cat(frac, Const(1, 1))
    odd = ~e[0]  # unbiased exponent e - 127 is odd
    spec, spec_val = _special(p, name, [
        (_is_nan(x), NAN),
        (e == 0, Cat(Const(0x7F800000, 31), s)),
        (s, NAN),
        (e == 0xFF, 0),
    ])
    seed = _rom(mc.RSQRT_TABLE, 11)[Cat(frac[16:23], odd)]
    half = Signal(signed(10), name=f"{name}_half")
    p.d.comb += half.eq((e - 127 - odd) >> 1)
    st = stage(p, f"{name}_s1", y=Cat(Const(0, 22), seed)[:33],
               ysq=((seed * seed) << 12)[:34], mm=Mux(odd, sig << 1, sig)[:25],
               exp_hi=(126 - half)[:12].as_signed(), spec=spec, spec_val=spec_val)
    def keep(st):
        return dict(exp_hi=st.exp_hi, spec=st.spec, spec_val=st.spec_val, mm=st.mm)
    for k in range(2):
        st = stage(p, f"{name}_my{k}", y=st.y, my=((st.mm * st.ysq) >> 23)[:36], **keep(st))
        st = stage(p, f"{name}_y{k + 1}", y=((st.y * ((3 << 32) - st.my)[:36]) >> 33)[:33],
                   **keep(st))
        if k == 0:
            st = stage(p, f"{name}_ysq{k + 1}", y=st.y, ysq=((st.y * st.y) >> 32)[:34],
                       **keep(st))
    norm = _normalize_q32(p, Const(0, 1), st.y, st.exp_hi, name)
    return stage(p, f"{name}_s7", out=Mux(st.spec, st.spec_val, norm)).out, 7


def _mx_encode(p, x, amax, sel, with_sel, *, name="mxq"):
    """MX quantization of one element (:func:`sim.tvp.mxq`): ``code | scale << 8``. 4 stages.

    With ``with_sel`` (MXQP, a stage-3 signal) the word also carries the format
    select in bits [18:16] for the output packer (:func:`sim.tvp.mxqp`).
    Scale exponent ``X = floor(log2(amax)) - emax`` (clamped); the element is
    rounded to nearest-even on the format's grid (``q = max(k - mbits, lsb)``
    for a value ``2**k <= |x / 2**X| < 2**(k+1)``) and saturated to the largest
    finite code; NaN/Inf follow :func:`sim.mx.encode`.
    """
    def S(suffix, shape):
        return Signal(shape, name=f"{name}_{suffix}")

    # --- S0: per-format constants, shared exponent, element leading one ---
    mbits, lsb, emax = S("mbits", 4), S("lsb", signed(7)), S("emax", signed(6))
    bits, max_e, max_m = S("bits", 4), S("max_e", 6), S("max_m", 4)
    nan_code, has_inf, is_int, ok = S("nan_code", 8), S("has_inf", 1), S("is_int", 1), S("ok", 1)
    with p.Switch(sel[0:3]):
        for fname, f in mxf.FORMATS.items():
            with p.Case(f.select):
                p.d.comb += [mbits.eq(f.mbits), lsb.eq(f.lsb), emax.eq(f.emax), bits.eq(f.bits),
                             max_e.eq(f.max_exp_field), max_m.eq(f.max_mant_field),
                             nan_code.eq(mxf.nan_code(f)), has_inf.eq(f.has_inf),
                             is_int.eq(f.ebits == 0), ok.eq(1)]
    ea, fa = amax[23:31], amax[0:23]
    amsb, _ = msb_index(fa)
    fl = S("fl", signed(10))
    p.d.comb += fl.eq(Mux(ea != 0, ea - 127, amsb - 149))
    xs = S("xs", signed(11))
    p.d.comb += xs.eq(fl - emax)
    X = S("X", signed(9))
    p.d.comb += X.eq(Mux(amax[0:31] == 0, -127, Mux(xs < -127, -127, Mux(xs > 127, 127, xs))))
    s, e, frac = x[31], x[23:31], x[0:23]
    sig = Cat(frac, e != 0)
    smsb, _ = msb_index(sig)
    fmtc = dict(mbits=mbits, lsb=lsb, emax=emax, bits=bits, max_e=max_e, max_m=max_m,
                nan_code=nan_code, has_inf=has_inf, is_int=is_int, ok=ok, sel=sel[0:3])
    s1 = stage(p, f"{name}_s1", X=X, bad=ea == 0xFF, s=s, sig=sig, smsb=smsb,
               e1=Mux(e == 0, 1, e), x_nan=(e == 0xFF) & (frac != 0),
               x_inf=(e == 0xFF) & (frac == 0), **fmtc)

    # --- S1: exponent of the element on the format's grid -----------------
    t = S("t", signed(12))
    p.d.comb += t.eq(s1.e1 - 150 - s1.X)
    k = S("k", signed(12))
    p.d.comb += k.eq(s1.smsb + t)
    q = S("q", signed(12))
    p.d.comb += q.eq(Mux(k - s1.mbits > s1.lsb, k - s1.mbits, s1.lsb))
    shift = S("shift", signed(13))
    p.d.comb += shift.eq(q - t)
    amt1 = Mux(shift > 27, 35, Mux(shift < -8, 0, shift + 8))[:6]  # round bit in sig << 9
    fmtc = {kk: getattr(s1, kk) for kk in fmtc}
    s2 = stage(p, f"{name}_s2", X=s1.X, bad=s1.bad, s=s1.s, sig=s1.sig, amt1=amt1, q=q,
               huge=(k > s1.emax + 1) | s1.x_inf, x_nan=s1.x_nan, x_inf=s1.x_inf, **fmtc)

    # --- S2: shift and round -----------------------------------------------
    ext = S("ext", 33)
    p.d.comb += ext.eq(s2.sig << 9)
    shifted = S("shifted", 33)
    p.d.comb += shifted.eq(ext >> s2.amt1)
    st = (ext & ~(Const((1 << 33) - 1, 33) << s2.amt1)[:33]) != 0
    n = shifted[1:12] + (shifted[0] & (st | shifted[1]))
    fmtc = {kk: getattr(s2, kk) for kk in fmtc}
    s3 = stage(p, f"{name}_s3", X=s2.X, bad=s2.bad, s=s2.s, n=n[:12], q=s2.q, huge=s2.huge,
               x_nan=s2.x_nan, x_inf=s2.x_inf, **fmtc)

    # --- S3: renormalise, saturate, assemble the code ---------------------
    mbits, lsb = s3.mbits, s3.lsb
    n = s3.n
    carry = (n >> (mbits + 1)) != 0  # a rounding carry: n == 2**(mbits+1)
    nn = S("nn", 12)
    qq = S("qq", signed(12))
    p.d.comb += [nn.eq(Mux(carry, n >> 1, n)), qq.eq(s3.q + carry)]
    ef = S("ef", signed(12))
    p.d.comb += ef.eq(Mux((nn >> mbits) != 0, qq - lsb + 1, 0))
    mf = S("mf", 8)
    p.d.comb += mf.eq(nn & ((Const(1, 9) << mbits) - 1))
    sat = s3.huge | (ef > s3.max_e) | ((ef == s3.max_e) & (mf > s3.max_m))
    magc = S("magc", 8)
    p.d.comb += magc.eq(Mux(sat, (s3.max_e << mbits) | s3.max_m, (ef[:6] << mbits) | mf))
    fpcode = S("fpcode", 8)
    with p.If(s3.x_nan):
        p.d.comb += fpcode.eq(s3.nan_code)
    with p.Elif(s3.x_inf & s3.has_inf):
        p.d.comb += fpcode.eq(Mux(s3.s, 0xFC, 0x7C))
    with p.Else():
        p.d.comb += fpcode.eq(magc | (s3.s << (s3.bits - 1)[:4]))
    imag = S("imag", 8)
    p.d.comb += imag.eq(Mux(s3.huge | (n > 127), 127, n))
    icode = S("icode", 8)
    p.d.comb += icode.eq(Mux(s3.x_nan, 0, Mux(s3.s, -imag, imag)))
    out = S("out", 32)
    with p.If(~s3.ok):
        p.d.comb += out.eq(0)
    with p.Elif(s3.bad):
        p.d.comb += out.eq(Cat(Const(0, 8), Const(0xFF, 8), Mux(with_sel, s3.sel, 0)))
    with p.Else():
        p.d.comb += out.eq(Cat(Mux(s3.is_int, icode, fpcode), (s3.X + 127)[:8],
                               Mux(with_sel, s3.sel, 0)))
    return stage(p, f"{name}_s4", out=out).out


#: Register stages of each unit (``fma``, ``exp``, ``recip``, ``rsqrt``, ``misc``).
LATENCY = {"fma": 6, "exp": 7, "recip": 5, "rsqrt": 7, "misc": MISC_LATENCY}
