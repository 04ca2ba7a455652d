"""Several NICs in one design: the hardware top of the NIC tests and the NIC benchmark.

:class:`NicGroup` holds ``n`` :class:`hw.nic.Nic` instances with constant
MACs (:func:`mac_of`) and peers (:func:`topology`) and brings their ports out
as ``n<i>_...``; the cocotb side that cables them (``tb/nic/fabric.py``,
``Fabric``) lives with the tests.
"""
from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.common import forward, prefixed
from hw.nic import Nic


def mac_of(i):
    """MAC of NIC ``i`` as bytes."""
    return bytes([0x02, 0, 0, 0, 0, i + 1])


def topology(n, ports, flows):
    """``peer[i][f]``: the NIC flow ``f`` of NIC ``i`` talks to.

    Two NICs: every flow joins 0 and 1. Four NICs (a quad, 3 ports): port
    ``k`` of NIC ``i`` is cabled to port ``k`` of NIC ``i ^ (k + 1)`` (the
    three perfect matchings of K4), so a flow has the same id at both ends.
    """
    if n == 2:
        return [[1 - i] * flows for i in range(n)]
    if n == 4 and ports == 3:
        return [[i ^ (f % ports + 1) for f in range(flows)] for i in range(n)]
    raise ValueError("topology: 2 NICs, or 4 NICs with 3 ports")


class NicGroup(wiring.Component):
    """Test top: ``n`` NICs with MACs ``mac_of(i)`` and peers from :func:`topology`.

    Parameters
    ----------
    n, ports, flows : int
        Number of NICs and the shape of each.
    nic_cls : type
        NIC class (a mutant in mutation tests).
    **kw
        Further :class:`hw.nic.Nic` parameters.

    Attributes
    ----------
    n<i>_<member>
        Every member of NIC ``i``'s signature except ``mac``/``peer_macs``.
    """

    def __init__(self, *, n, ports, flows, nic_cls=Nic, **kw):
        self.n, self.ports, self.flows = n, ports, flows
        self.nics = [nic_cls(ports=ports, flows=flows, **kw) for _ in range(n)]
        self.peer = topology(n, ports, flows)
        sig = {}
        for i, nic in enumerate(self.nics):
            sig.update(prefixed(nic, f"n{i}_", skip=("mac", "peer_macs")))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        for i, nic in enumerate(self.nics):
            m.submodules[f"nic{i}"] = nic
            m.d.comb += nic.mac.eq(int.from_bytes(mac_of(i), "big"))
            for f in range(self.flows):
                m.d.comb += nic.peer_macs[f].eq(int.from_bytes(mac_of(self.peer[i][f]), "big"))
            forward(m, self, nic, prefix=f"n{i}_", skip=("mac", "peer_macs"))
        return m
