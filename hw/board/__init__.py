"""FPGA prototype: a whole tile with its host link and HBM stand-in, and board tops."""
from .fpga_tile import FPGA_TILE, FPGATile
from .pll import ECP5PLL, pll_dividers

__all__ = ["FPGATile", "FPGA_TILE", "ECP5PLL", "pll_dividers"]
