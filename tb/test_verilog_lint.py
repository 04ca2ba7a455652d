"""Every registered top block exports to Verilog that Verilator lints clean.

This is the `make verilog` check without the (slow) ECP5 synthesis, so a
lint regression fails `make test`.
"""
import pytest

from hw.tops import all_tops
from scripts.export_verilog import main as export

TOPS = sorted(all_tops())
# Exporting and linting these takes minutes each; `make test-full` and `make verilog` cover them.
SLOW = {"integration_cluster", "integration_chip",
        "ttu_4x4x8"}  # K-wide TTU 4x4x8: about 1 min


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in TOPS])
def test_lint_clean(name):
    assert export(["--out", f"build/lint/{name}", "--only", name, "--no-synth"]) == 0


def test_export_is_reproducible():
    """emit_src=False output depends on nothing but the design."""
    from amaranth.back import verilog
    tops = all_tops()
    name = TOPS[0]
    assert verilog.convert(tops[name](), name=name, emit_src=False) == \
        verilog.convert(tops[name](), name=name, emit_src=False)
