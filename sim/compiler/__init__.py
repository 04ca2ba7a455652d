"""Tile compiler: NumPy-level operations -> command-processor programs (see docs/sim.md)."""
from .program import CompileError, TileConfig, TileProgram
from . import ops

__all__ = ["CompileError", "TileConfig", "TileProgram", "ops"]
