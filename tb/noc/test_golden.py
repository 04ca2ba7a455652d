"""Golden model self-checks (pure Python, fast).

* the rectangle multicast tree reaches every destination exactly once and
  uses no link twice, for every source and rectangle of several meshes;
* unicast routes are XY (X first, then Y; never back from Y to X);
* header/flit packing round-trips; NI splitting.
"""
import itertools

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.noc.packet import header_layout, route_mask as hw_route_mask
from sim.noc import (NORTH, SOUTH, destinations, multicast_tree,
                     pack_flit, pack_header, route_mask, split_packet, unpack_flit,
                     unpack_header)


@pytest.mark.parametrize("kx,ky", [(2, 2), (4, 4), (3, 5)])
def test_multicast_tree_exact(kx, ky):
    for sx, sy in itertools.product(range(kx), range(ky)):
        for x0, x1, y0, y1 in itertools.product(range(kx), range(kx), range(ky), range(ky)):
            if x0 > x1 or y0 > y1:
                assert multicast_tree(kx, ky, (sx, sy), (x0, x1, y0, y1)) == ([], [])
                continue
            ej, links = multicast_tree(kx, ky, (sx, sy), (x0, x1, y0, y1))
            assert sorted(ej) == sorted(destinations(kx, ky, (x0, x1, y0, y1)))
            assert len(set(links)) == len(links)


def test_unicast_is_xy():
    kx = ky = 4
    for (sx, sy), (dx, dy) in itertools.product(itertools.product(range(4), range(4)), repeat=2):
        _, links = multicast_tree(kx, ky, (sx, sy), (dx, dx, dy, dy))
        ports = [o for _, o in links]
        assert len(ports) == abs(sx - dx) + abs(sy - dy)
        seen_y = False
        for o in ports:
            if o in (NORTH, SOUTH):
                seen_y = True
            else:
                assert not seen_y, "turn from Y back to X"


def test_route_mask_matches_hardware():
    """The Amaranth route function and the golden one agree on every input (3x3 centre)."""
    kx = ky = 3
    layout = header_layout(kx, ky)
    hdr = Signal(layout)
    masks = {p: Signal(5, name=f"m{p}") for p in range(5)}
    m = Module()
    for p in range(5):
        m.d.comb += masks[p].eq(hw_route_mask(hdr, in_port=p, x=1, y=1, kx=kx, ky=ky))

    async def bench(ctx):
        for x0, x1, y0, y1 in itertools.product(range(4), repeat=4):
            ctx.set(hdr, {"x0": x0, "x1": x1, "y0": y0, "y1": y1, "src_x": 0, "src_y": 0})
            for p in range(5):
                want = route_mask(dict(x0=x0, x1=x1, y0=y0, y1=y1), in_port=p, x=1, y=1,
                                  kx=kx, ky=ky)
                assert ctx.get(masks[p]) == want, (x0, x1, y0, y1, p)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_packing_round_trip():
    h = dict(x0=1, x1=3, y0=0, y1=2, src_x=2, src_y=1)
    assert unpack_header(4, 4, pack_header(4, 4, **h)) == h
    assert unpack_flit(32, pack_flit(32, 0xDEADBEEF, head=0, tail=1)) == (0xDEADBEEF, 0, 1)
    assert split_packet(list(range(7)), 4) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize("vcs,bulk_vcs", [(2, 1), (2, 4), (3, 2)])
def test_vc_mapping(vcs, bulk_vcs):
    """The hardware's class -> VC policy equals the golden one; classes own disjoint VCs."""
    from hw.noc import packet
    from sim import noc
    assert packet.link_vcs(vcs, bulk_vcs) == noc.link_vcs(vcs, bulk_vcs)
    for v in range(noc.link_vcs(vcs, bulk_vcs)):
        assert packet.vc_class(v, bulk_vcs) == noc.vc_class(v, bulk_vcs)
    for c, x, y, col in itertools.product(range(vcs), range(5), range(5), range(5)):
        v = packet.lane_vc(c, x, y, col, bulk_vcs)
        assert v == noc.lane_vc(c, x, y, col, bulk_vcs)
        assert noc.vc_class(v, bulk_vcs) == c
    # From one source, packets to bulk_vcs consecutive columns use distinct VCs.
    assert len({noc.lane_vc(1, 0, 0, col, bulk_vcs) for col in range(bulk_vcs)}) == bulk_vcs


def test_column_split_covers_rectangle():
    """Column multicasts reach exactly the rectangle, every copy on its column's lane."""
    from sim.noc import injected_packets
    kx, ky = 4, 3
    for rect in itertools.product(range(kx), range(kx), range(ky), range(ky)):
        parts = injected_packets(kx, ky, rect, 1, bulk_vcs=2)
        got = sorted(d for r in parts for d in destinations(kx, ky, r))
        assert got == sorted(destinations(kx, ky, rect))
        assert injected_packets(kx, ky, rect, 0, bulk_vcs=2) == [rect]
        assert injected_packets(kx, ky, rect, 1, bulk_vcs=1) == [rect]
