"""Four chips as a fully connected quad (FCQ): the hardware top of ``allreduce --chips 4``.

Port ``f`` of chip ``c`` is cabled to port ``f`` of chip ``c ^ (f + 1)`` (the three
perfect matchings of K4, as :func:`sim.rtl.nic_group.topology`), so NIC flow ``f``
(on port ``f``) has the same wire id at both ends and every chip reaches each
peer on its own port. A tile addresses peer ``p`` through the NIC node with the
cluster field ``flow_to(c, p)`` (``docs/chip.md``).
"""
from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.chip import ChipParams
from hw.cluster import ClusterParams
from hw.common import forward, prefixed
from hw.chip import Chip
from hw.tile import TileParams

from .chip_pair import _idle, mac_of

__all__ = ["CHIP4", "ChipQuad", "flow_to", "peer_of", "WIRES"]

#: The chip of the quad: as the pair's (``sim.rtl.chip_pair.CHIP``), with 3 ports / flows.
CHIP4 = ChipParams(n_clusters=1,
                   cluster=ClusterParams(n_tiles=1, tile=TileParams(deadlock_cycles=1 << 20)),
                   nic=dict(ports=3, flows=3, window=8, payload=64, rto=1024))

#: The six cables ``((chip, port), (chip, port))``.
WIRES = [((c, f), (c ^ (f + 1), f)) for f in range(3) for c in range(4) if c < c ^ (f + 1)]


def peer_of(c, f):
    """The chip flow (= port) ``f`` of chip ``c`` talks to."""
    return c ^ (f + 1)


def flow_to(c, p):
    """The flow of chip ``c`` that reaches chip ``p``."""
    if c == p or not (0 <= c < 4 and 0 <= p < 4):
        raise ValueError(f"flow_to: chips must be two different ranks 0..3, not {c}, {p}")
    return (c ^ p) - 1


class ChipQuad(wiring.Component):
    """Four chips with MACs :func:`sim.rtl.chip_pair.mac_of`, peers by :func:`peer_of`.

    As :class:`sim.rtl.chip_pair.ChipPair`: the NIC ports stay outside for the
    cables (:class:`sim.rtl.cable.Cable` with :data:`WIRES`); HBM, cluster DMA and
    cluster-SRAM host ports stay idle inside.

    Attributes
    ----------
    x<c>__<member>
        Chip ``c``'s ports except HBM, cluster DMA, cluster SRAM host and MACs.
    """

    def __init__(self, *, chip=CHIP4):
        if chip.nic.get("ports") != 3 or chip.nic.get("flows") != 3:
            raise ValueError("chip must have nic ports=3, flows=3 (one per peer)")
        self.chips = [Chip(params=chip) for _ in range(4)]
        members = {}
        for c, ch in enumerate(self.chips):
            members.update(prefixed(ch, f"x{c}__", skip=_idle(ch)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for c, ch in enumerate(self.chips):
            m.submodules[f"chip{c}"] = ch
            m.d.comb += ch.nic__mac.eq(mac_of(c))
            for f in range(3):
                m.d.comb += ch.nic__peer_macs[f].eq(mac_of(peer_of(c, f)))
            forward(m, self, ch, prefix=f"x{c}__", skip=_idle(ch))
        return m
