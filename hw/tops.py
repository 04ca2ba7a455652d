"""Registry of top blocks exported by ``make verilog`` and ``make fpga``.

Each block package under ``hw/`` (and each integration module such as
``hw/tile.py``) may define ``TOPS``: a dict mapping an export name to a
zero-argument factory returning the component with its default parameters. This module collects them, so adding a block never
means editing a shared list.
"""
import importlib
import pkgutil
from pathlib import Path

__all__ = ["all_tops", "all_units"]


def _block_modules():
    """Every ``hw.<name>`` package and module except this one, sorted by name."""
    root = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda i: i.name):
        if info.name != "tops":
            yield importlib.import_module(f"hw.{info.name}")


def all_tops():
    """Return ``{name: factory}`` over every ``hw.<block>.TOPS``, sorted by name."""
    tops = {}
    for module in _block_modules():
        for name, factory in getattr(module, "TOPS", {}).items():
            if name in tops:
                raise ValueError(f"duplicate top name {name!r} in {module.__name__}")
            tops[name] = factory
    return dict(sorted(tops.items()))


def all_units():
    """Return ``{name: (unit, count)}`` from every ``UNITS`` dict next to a ``TOPS``.

    A block may say how many replicated units one of its tops holds (e.g.
    ``"ttu_8x8": ("PE", 64)``), so ``make fpga`` can print a per-unit cost a
    user can scale to other sizes.
    """
    units = {}
    for module in _block_modules():
        units.update(getattr(module, "UNITS", {}))
    return units
