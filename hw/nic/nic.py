"""ATL NIC top: ``ports`` Ethernet ports, each with its transport lane."""
from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import StreamArbiter, check_int, saturating_add

from .eth import ByteLayout, EthRx, EthTx
from .transport import STATS, Lane, PostLayout, mem_layout

__all__ = ["Nic", "COUNTERS"]

#: Event counters of the NIC (16 bits, saturating): the lane stats plus EthRx drops.
COUNTERS = STATS + ("rx_fcs", "rx_runt", "rx_oversize")


class Nic(wiring.Component):
    """ATL NIC: reliable RDMA writes and remote semaphores over Ethernet ports.

    Flow ``f`` (wire id ``f``, the same at both ends) uses port ``f % ports``;
    each port has its own :class:`EthTx`, :class:`EthRx` and
    :class:`~hw.nic.transport.Lane`, so ports run independently and share
    only the memory write port (round-robin) and the semaphores.

    Parameters
    ----------
    ports : int
        Ethernet ports, 1..8.
    flows : int
        Connections, a multiple of ``ports``, up to 64.
    window : int
        Retransmit slots and receive window per flow, power of two 2..32.
    payload : int
        Maximum WRITE payload per packet (bytes), 1..1400.
    mem_bits : int
        Address width of the local memory.
    n_sems : int
        Number of 32-bit semaphores.
    rto : int
        Retransmission timeout (cycles).

    Attributes
    ----------
    mac : In(48)
        Own MAC address (first wire byte in bits 40..47).
    peer_macs : In(data.ArrayLayout(48, flows))
        Peer of each flow.
    i_posts : In(stream.Signature(PostLayout)).array(flows)
        Messages to send: WRITE (one payload byte per beat, ``addr`` = remote
        byte offset) or SEM (one beat, ``sem=1``, ``addr`` = remote semaphore).
    o_ports : Out(stream.Signature(ByteLayout)).array(ports)
        Frames to the wire (FCS included).
    i_ports : In(stream.Signature(ByteLayout)).array(ports)
        Frames from the wire (FCS included).
    o_mem : Out(stream.Signature(mem_layout(mem_bits)))
        Received payload bytes placed by offset, each exactly once.
    sems : Out(data.ArrayLayout(32, n_sems))
        Semaphore values (incremented exactly once per remote SEM).
    tx_data, tx_rtx, ... : Out(16)
        Event counters, see :data:`COUNTERS`; they stop at 0xFFFF (lanes may
        count in the same cycle: the events are added, then clamped).
    port_tx_frames, port_rx_frames : Out(data.ArrayLayout(16, ports))
        Per port: frames sent to the wire / frames taken from it (good or not),
        saturating.
    """

    def __init__(self, *, ports=1, flows=1, window=8, payload=64, mem_bits=16, n_sems=4,
                 rto=4096):
        self._ports = check_int("ports", ports, min=1, max=8)
        self._flows = check_int("flows", flows, min=1, max=64)
        if flows % ports:
            raise ValueError(f"flows must be a multiple of ports ({ports}), not {flows}")
        self._payload = check_int("payload", payload, min=1, max=1400)
        self._kw = dict(window=window, payload=payload, mem_bits=mem_bits, n_sems=n_sems,
                        rto=rto)
        self._n_sems = check_int("n_sems", n_sems, min=1, max=256)
        self._mem_bits = check_int("mem_bits", mem_bits, min=1, max=32)
        # Validates the remaining parameters with their names.
        self.lanes = [Lane(flow_ids=tuple(range(p, flows, ports)), **self._kw)
                      for p in range(ports)]
        super().__init__({
            "mac": In(48),
            "peer_macs": In(data.ArrayLayout(48, flows)),
            "i_posts": In(stream.Signature(PostLayout)).array(flows),
            "o_ports": Out(stream.Signature(ByteLayout)).array(ports),
            "i_ports": In(stream.Signature(ByteLayout)).array(ports),
            "o_mem": Out(stream.Signature(mem_layout(mem_bits))),
            "sems": Out(data.ArrayLayout(32, n_sems)),
            **{name: Out(16) for name in COUNTERS},
            "port_tx_frames": Out(data.ArrayLayout(16, ports)),
            "port_rx_frames": Out(data.ArrayLayout(16, ports)),
        })

    def elaborate(self, platform):
        m = Module()
        P, F = self._ports, self._flows
        max_frame = max(64, self._payload + 34)
        txs, rxs = [], []
        for p, lane in enumerate(self.lanes):
            m.submodules[f"lane{p}"] = lane
            m.submodules[f"tx{p}"] = tx = EthTx()
            m.submodules[f"rx{p}"] = rx = EthRx(max_frame=max_frame)
            txs.append(tx)
            rxs.append(rx)
            wiring.connect(m, lane.o_frame, tx.i_stream)
            wiring.connect(m, tx.o_stream, wiring.flipped(self.o_ports[p]))
            wiring.connect(m, wiring.flipped(self.i_ports[p]), rx.i_stream)
            wiring.connect(m, rx.o_stream, lane.i_frame)
            op, ip = self.o_ports[p], self.i_ports[p]
            with m.If(op.valid & op.ready & op.payload.last):
                saturating_add(m, self.port_tx_frames[p])
            with m.If(ip.valid & ip.ready & ip.payload.last):
                saturating_add(m, self.port_rx_frames[p])
            m.d.comb += lane.mac.eq(self.mac)
            for k, f in enumerate(range(p, F, P)):
                m.d.comb += lane.peer_macs[k].eq(self.peer_macs[f])
                wiring.connect(m, wiring.flipped(self.i_posts[f]), lane.i_posts[k])
        if P == 1:
            wiring.connect(m, self.lanes[0].o_mem, wiring.flipped(self.o_mem))
        else:
            m.submodules.mem_arb = arb = StreamArbiter(
                payload_shape=mem_layout(self._mem_bits), n=P)
            for p, lane in enumerate(self.lanes):
                wiring.connect(m, lane.o_mem, arb.i_streams[p])
            wiring.connect(m, arb.o_stream, wiring.flipped(self.o_mem))
        # Semaphores: lanes may fire in the same cycle; add them all.
        for k in range(self._n_sems):
            hits = Cat(*[lane.sem_inc & (lane.sem_idx == k) for lane in self.lanes])
            inc = sum(hits[p] for p in range(P))
            m.d.sync += self.sems[k].eq(self.sems[k] + inc)
        for name in COUNTERS:
            if name.startswith("rx_") and name[3:] in ("fcs", "runt", "oversize"):
                attr = {"fcs": "fcs_errors", "runt": "runts", "oversize": "oversize"}[name[3:]]
                # Sum of the ports' saturating counters, clamped so that it cannot wrap.
                total = sum(getattr(rx, attr) for rx in rxs)
                top = (1 << len(getattr(self, name))) - 1
                m.d.comb += getattr(self, name).eq(Mux(total > top, top, total) if P > 1
                                                   else total)
            else:
                ev = Cat(*[getattr(lane, name) for lane in self.lanes])
                saturating_add(m, getattr(self, name), sum(ev[p] for p in range(P)))
        return m
