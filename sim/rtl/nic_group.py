"""Several NICs in one design: the hardware top of the NIC tests and the NIC benchmark.

:class:`NicGroup` holds ``n`` :class:`hw.nic.Nic` instances with constant
MACs (:func:`mac_of`) and peers (:func:`topology`) and brings their ports out
as ``n<i>_...``; the cocotb side that cables them (``tb/nic/fabric.py``,
``Fabric``) lives with the tests.
"""
from amaranth.hdl import Module
from amaranth.lib import wiring

from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from hw.common import forward, prefixed
from hw.nic import Nic
from hw.nic.post_engine import PostLayout
from hw.nic.sprayer import Sprayer


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
    spray : bool
        Put a :class:`hw.nic.sprayer.Sprayer` (one logical flow over all ports;
        needs ``flows == ports``) in front of every NIC: ``n<i>_i_posts`` then has
        one stream, and ``n<i>_port_up`` / ``n<i>_port_msgs`` are its link
        status input and per-port message counters.
    **kw
        Further :class:`hw.nic.Nic` parameters.

    Attributes
    ----------
    n<i>_<member>
        Every member of NIC ``i``'s signature except ``mac``/``peer_macs``.
    """

    def __init__(self, *, n, ports, flows, nic_cls=Nic, spray=False, **kw):
        self.n, self.ports, self.flows = n, ports, flows
        self.spray = spray
        if spray and flows != ports:
            raise ValueError(f"flows must equal ports ({ports}) with spray, not {flows}")
        self.nics = [nic_cls(ports=ports, flows=flows, **kw) for _ in range(n)]
        self.sprayers = ([Sprayer(groups=1, width=ports, n_sems=kw.get("n_sems", 4))
                          for _ in range(n)] if spray else [])
        self.peer = topology(n, ports, flows)
        sig = {}
        skip = ("mac", "peer_macs") + (("i_posts",) if spray else ())
        for i, nic in enumerate(self.nics):
            sig.update(prefixed(nic, f"n{i}_", skip=skip))
            if spray:
                sig[f"n{i}_i_posts"] = In(stream.Signature(PostLayout)).array(1)
                sig[f"n{i}_port_up"] = In(ports)
                sig[f"n{i}_port_msgs"] = Out(self.sprayers[i].port_msgs.shape())
                sig[f"n{i}_spray_owed"] = Out(1)
                sig[f"n{i}_spray_errors"] = Out(16)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        for i, nic in enumerate(self.nics):
            m.submodules[f"nic{i}"] = nic
            m.d.comb += nic.mac.eq(int.from_bytes(mac_of(i), "big"))
            for f in range(self.flows):
                m.d.comb += nic.peer_macs[f].eq(int.from_bytes(mac_of(self.peer[i][f]), "big"))
            if self.spray:
                sp = self.sprayers[i]
                m.submodules[f"spray{i}"] = sp
                forward(m, self, nic, prefix=f"n{i}_", skip=("mac", "peer_macs", "i_posts"))
                wiring.connect(m, wiring.flipped(getattr(self, f"n{i}_i_posts")[0]), sp.i_post)
                for f in range(self.flows):
                    wiring.connect(m, sp.o_posts[f], nic.i_posts[f])
                m.d.comb += [sp.i_group.eq(0), sp.port_up.eq(getattr(self, f"n{i}_port_up")),
                             getattr(self, f"n{i}_port_msgs").eq(sp.port_msgs),
                             getattr(self, f"n{i}_spray_owed").eq(sp.owed),
                             getattr(self, f"n{i}_spray_errors").eq(sp.errors)]
                continue
            forward(m, self, nic, prefix=f"n{i}_", skip=("mac", "peer_macs"))
        return m
