"""ECP5 PLL dividers (``hw.board.pll``) against Project Trellis' ``ecppll``.

* ``test_pll_matches_ecppll``: for several system clocks, the frequency our
  search achieves equals the one ``yowasp-ecppll`` reports, and our VCO and
  phase-detector frequencies are inside the ECP5 ranges.
* ``test_pll_bad_frequency``: an impossible output frequency raises, naming it.
"""
import re
import subprocess

import pytest

from hw.board.pll import PFD_MHZ, VCO_MHZ, pll_dividers
from scripts.tools import venv_tool


@pytest.mark.parametrize("f_out", [25, 40, 48, 50, 62.5, 75, 100])
def test_pll_matches_ecppll(f_out):
    clki, clkfb, clkop, f = pll_dividers(25, f_out)
    assert f == pytest.approx(25 * clkfb / clki)
    assert VCO_MHZ[0] <= f * clkop <= VCO_MHZ[1]
    assert PFD_MHZ[0] <= 25 / clki <= PFD_MHZ[1]
    out = subprocess.run([venv_tool("yowasp-ecppll"), "-i", "25", "-o", str(f_out)],
                         capture_output=True, text=True).stdout
    ref = float(re.search(r"clkout0 frequency:\s*([\d.]+)", out).group(1))
    assert f == pytest.approx(ref, abs=1e-3), (f, ref, out)


def test_pll_bad_frequency():
    with pytest.raises(ValueError, match="f_out_mhz"):
        pll_dividers(25, 1000)
