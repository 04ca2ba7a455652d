"""On-chip network: credit-based VC routers, network interfaces, mesh generator.

See ``docs/noc.md`` for the packet format, timing and testplan.
"""
from .packet import (LOCAL, NORTH, EAST, SOUTH, WEST, PORTS, PORT_NAMES, LinkSignature,
                     flit_layout, header_layout, route_mask, lane_vc, link_vcs, vc_class)
from .qos import QosArbiter
from .router import Router
from .ni import NetworkInterface
from .mesh import Mesh
from .address_router import AddressRouter, word_packet_layout
from .word_mesh import WordMesh, mesh_shape

__all__ = ["LOCAL", "NORTH", "EAST", "SOUTH", "WEST", "PORTS", "PORT_NAMES",
           "LinkSignature", "flit_layout", "header_layout", "route_mask", "lane_vc",
           "link_vcs", "vc_class", "QosArbiter", "Router", "NetworkInterface",
           "Mesh", "AddressRouter", "word_packet_layout", "WordMesh", "mesh_shape"]

#: Exported by ``make verilog`` / ``make fpga`` (see :mod:`hw.tops`).
TOPS = {
    # Narrow flits (the least the header allows) keep each top's I/O count
    # within an ECP5 package for `make fpga`; see scripts/bench_noc.py for
    # the 32-bit figures.
    "noc_router": lambda: Router(kx=4, ky=4, x=1, y=1, data_width=12),
    "noc_ni": lambda: NetworkInterface(kx=4, ky=4, x=1, y=1, data_width=12),
    "noc_mesh_2x1": lambda: Mesh(kx=2, ky=1, data_width=6),
    # The chip NoC's entry point with the table of a 2-cluster x 1-tile chip.
    "noc_address_router": lambda: AddressRouter(
        addr_width=32, word_bits=32, key_shift=24, key_bits=8, kx=3, ky=1,
        dests={**{c << 4 | n: c for c in range(2) for n in (0, 1, 15)},
               **{f << 4 | 2: 2 for f in range(16)}, 0xFF: (0, 2, 0, 0)}),
}

#: Replicated units of a top, for the per-unit cost of ``make fpga`` (see :func:`hw.tops.all_units`).
UNITS = {"noc_mesh_2x1": ("node of a 2x1 mesh (router with 3 live ports + NI, 6-bit flits)", 2)}
