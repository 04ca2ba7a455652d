"""Tile compiler: NumPy-level operations -> command-processor programs (see docs/sim.md)."""
from .program import CompileError, TileProgram
from . import ops

__all__ = ["CompileError", "TileProgram", "ops"]
