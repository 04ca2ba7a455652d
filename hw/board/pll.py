"""The ECP5 PLL (``EHXPLLL``) that makes a board's system clock from its oscillator."""
from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, Signal

from hw.common import check_int

__all__ = ["ECP5PLL", "pll_dividers"]

#: ECP5 PLL limits (Lattice TN1263): VCO, phase detector and output ranges in MHz.
VCO_MHZ = (400.0, 800.0)
PFD_MHZ = (3.125, 400.0)
OUT_MHZ = (3.125, 400.0)


def pll_dividers(f_in_mhz, f_out_mhz):
    """``(clki_div, clkfb_div, clkop_div, f_achieved_mhz)`` closest to ``f_out_mhz``.

    ``f_out = f_in * clkfb_div / clki_div`` with the feedback from CLKOP, and the
    VCO ``f_out * clkop_div`` inside its range; ties go to the higher VCO
    (less jitter).
    """
    if not OUT_MHZ[0] <= f_out_mhz <= OUT_MHZ[1]:
        raise ValueError(f"f_out_mhz must be in {OUT_MHZ[0]} .. {OUT_MHZ[1]} MHz, "
                         f"not {f_out_mhz}")
    best = None
    for clki in range(1, 129):
        if not PFD_MHZ[0] <= f_in_mhz / clki <= PFD_MHZ[1]:
            continue
        for clkfb in range(1, 81):
            f = f_in_mhz * clkfb / clki
            for clkop in range(1, 129):
                vco = f * clkop
                if VCO_MHZ[0] <= vco <= VCO_MHZ[1]:
                    key = (abs(f - f_out_mhz), -vco)
                    if best is None or key < best[0]:
                        best = (key, (clki, clkfb, clkop, f))
    if best is None:
        raise ValueError(f"no PLL setting makes {f_out_mhz} MHz from {f_in_mhz} MHz")
    return best[1]


class ECP5PLL(Elaboratable):
    """``EHXPLLL`` from ``clk_in`` to the ``domain`` clock; ``locked`` is its lock output.

    Parameters
    ----------
    f_in_mhz, f_out_mhz : float
        Input (oscillator) and wanted output frequency.
    domain : str
        Clock domain driven by CLKOP.
    """

    def __init__(self, *, f_in_mhz, f_out_mhz, domain="sync"):
        self.clki_div, self.clkfb_div, self.clkop_div, self.f_out_mhz = \
            pll_dividers(f_in_mhz, f_out_mhz)
        self.f_in_mhz = f_in_mhz
        self.domain = domain
        self.clk_in = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        clk = ClockSignal(self.domain)
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.f_in_mhz:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.f_out_mhz:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKI_DIV=self.clki_div, p_CLKFB_DIV=self.clkfb_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=self.clkop_div,
            p_CLKOP_CPHASE=self.clkop_div - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=clk, i_CLKFB=clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=self.locked)
        return m
