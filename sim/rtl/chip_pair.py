"""Two chips joined by their NICs: the hardware top of the ``make sim`` all-reduce."""
from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.chip import Chip, ChipParams
from hw.cluster import ClusterParams
from hw.common import forward, prefixed
from hw.tile import TileParams

#: The chip of the all-reduce: one cluster of one tile; no deadlock watchdog
#: during the network wait (it would fire while the link retransmits); a
#: short retransmission timeout so that drops cost little simulation time.
CHIP = ChipParams(n_clusters=1,
                  cluster=ClusterParams(n_tiles=1, tile=TileParams(deadlock_cycles=1 << 20)),
                  nic=dict(ports=1, flows=1, window=8, payload=64, rto=1024))

_IDLE = ("m_axi", "cdma_desc", "cdma_done", "chost", "nic__mac", "nic__peer_macs")


def _idle(chip):
    """``chip``'s members the pair leaves to the testbench or ties off (see :data:`_IDLE`)."""
    return [name for name in chip.signature.members if any(s in name for s in _IDLE)]


def mac_of(c):
    """MAC of chip ``c``."""
    return 0x020000000001 + c


class ChipPair(wiring.Component):
    """Two chips with MACs :func:`mac_of` (chip ``c`` talks to ``1 - c``).

    The NIC ports stay outside so that the testbench can cable them through a
    lossy link (:class:`sim.rtl.cable.Cable`); HBM, cluster DMA and
    cluster-SRAM host ports stay idle inside.

    Parameters
    ----------
    chip : ChipParams
        Parameters of both chips.

    Attributes
    ----------
    x<c>__<member>
        Chip ``c``'s ports except HBM, cluster DMA, cluster SRAM host and MACs.
    """

    def __init__(self, *, chip):
        self.chips = [Chip(params=chip) for _ in range(2)]
        members = {}
        for c, ch in enumerate(self.chips):
            members.update(prefixed(ch, f"x{c}__", skip=_idle(ch)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for c, ch in enumerate(self.chips):
            m.submodules[f"chip{c}"] = ch
            m.d.comb += ch.nic__mac.eq(mac_of(c))
            for f in range(len(ch.nic__peer_macs)):
                m.d.comb += ch.nic__peer_macs[f].eq(mac_of(1 - c))
            forward(m, self, ch, prefix=f"x{c}__", skip=_idle(ch))
        return m
