"""Tile: command processor + DMA + TTU + TVP around one banked tile SRAM.

One file per concept: the records (``records``), what the feeders share
(``feeder``), one feeder per engine, and the tile that connects them
(``tile``). See ``docs/tile.md``.
"""
from .records import ADDR, ttu_record_layout, tvp_record_layout
from .dma_feeder import DMAFeeder
from .ttu_feeder import TTUFeeder
from .tvp_feeder import TVPFeeder
from .params import TileParams
from .tile import ENGINES, SRAM_PORTS, Tile

__all__ = ["Tile", "TileParams", "SRAM_PORTS", "DMAFeeder", "TTUFeeder", "TVPFeeder", "ttu_record_layout",
           "tvp_record_layout", "ENGINES", "ADDR", "TOPS"]

TOPS = {
    "integration_tile": lambda: Tile(),
}
