"""Transmit scheduler and frame builder of a transport lane."""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


from .ack_engine import ORD_BITS
from .atl_header import (ETH_HDR_BYTES, ETHERTYPE, HEADER_BYTES, SACK_BITS, VERSION, Op,
                         header_bytes)
from .eth import ByteLayout
from .lane_common import check_lane, rr_arbiter, sel, slot_addr

__all__ = ["TxScheduler", "TX_STATS"]

# Op codes as plain integers: the constants keep their natural width in the
# generated Verilog (an ``Op`` member would be cast to 4 bits).
OP_ACK, OP_NACK = Op.ACK.value, Op.NACK.value
#: Header byte 0 without the op code.
VER_BITS = VERSION << 4

#: Stat pulses of the scheduler.
TX_STATS = ("tx_data", "tx_rtx", "tx_ack")


class TxScheduler(wiring.Component):
    """Chooses the next frame of a port and sends it, one byte per cycle.

    At a frame boundary it picks ACK/NACK (a flow with an ACK due) >
    retransmission (the oldest slot of a flow marked for it) > new data
    (``snext != next``), round-robin over flows per class. The frame is the
    Ethernet header followed by the 16-byte ACK header (``expected`` and
    ``sack`` of the flow's receive window) or by the stored slot (header +
    payload) streamed from the retransmit buffer's read port. It owns
    ``snext`` (next PSN to send) and the transmission ordinal of every slot.
    The lane clears the picked slot's retransmit mark (``pick_data``) and the
    flow's due ACK (``ack_taken``).

    Parameters
    ----------
    flow_ids : tuple of int
        Wire flow id of each local flow.
    window, payload, psn_bits : int
        As for :class:`~hw.nic.transport.Lane`.

    Attributes
    ----------
    o_frame : Out(stream.Signature(ByteLayout))
        Frames without FCS, to :class:`EthTx`.
    mac : In(48)
        Own MAC.
    peer_macs : In(data.ArrayLayout(48, flows))
        Peer MAC of each local flow.
    ack_due, nack : In(flows)
        Per flow: an ACK is due / it is a NACK.
    expected, sack : In.array(flows)
        The receive windows' ACK fields.
    rtx : In(window).array(flows)
        Retransmit marks.
    base, next : In(psn_bits).array(flows)
        Oldest unacknowledged and next posted PSN of each flow.
    rd_en, rd_addr : Out
        Retransmit-buffer read port (synchronous, data one cycle later).
    rd_data : In(9)
        Its data.
    snext : Out(psn_bits).array(flows)
        Next PSN to send of each flow.
    pick : Out(1)
        A frame is chosen this cycle.
    pick_data, pick_rtx, pick_flow, pick_slot : Out
        It is a data frame (a retransmission), of this flow and slot.
    ack_taken : Out(1)
        It is the ACK of ``pick_flow``.
    restart : Out(flows)
        A first PSN becomes outstanding: start the flow's timer.
    ord_flow, ord_slot : In
        A slot whose transmission ordinal is wanted (the ACK engine's).
    ord_at : Out(ORD_BITS)
        That ordinal.
    tx_data, tx_rtx, tx_ack : Out(1)
        Stat pulses.
    """

    def __init__(self, *, flow_ids, window, payload, psn_bits):
        self._ids, self._w, self._pl, pb = check_lane(flow_ids=flow_ids, window=window,
                                                      payload=payload, psn_bits=psn_bits)
        self._psn_bits = pb
        L, W = len(self._ids), self._w
        sb = (W - 1).bit_length()
        self._depth = L * W * (HEADER_BYTES + payload)
        super().__init__({
            "o_frame": Out(stream.Signature(ByteLayout)),
            "mac": In(48),
            "peer_macs": In(data.ArrayLayout(48, L)),
            "ack_due": In(L),
            "nack": In(L),
            "expected": In(pb).array(L),
            "sack": In(SACK_BITS).array(L),
            "rtx": In(W).array(L),
            "base": In(pb).array(L),
            "next": In(pb).array(L),
            "rd_en": Out(1),
            "rd_addr": Out(range(self._depth)),
            "rd_data": In(9),
            "snext": Out(pb).array(L),
            "pick": Out(1),
            "pick_data": Out(1),
            "pick_rtx": Out(1),
            "pick_flow": Out(range(max(2, L))),
            "pick_slot": Out(sb),
            "ack_taken": Out(1),
            "restart": Out(L),
            "ord_flow": In(range(max(2, L))),
            "ord_slot": In(sb),
            "ord_at": Out(ORD_BITS),
            **{name: Out(1) for name in TX_STATS},
        })

    def elaborate(self, platform):
        m = Module()
        L, W, PL = len(self._ids), self._w, self._pl
        sb = (W - 1).bit_length()
        stride = HEADER_BYTES + PL
        lb = max(1, (L - 1).bit_length())
        ob = ORD_BITS

        def psn_slot(p):
            return p[:sb]

        def buf_addr(l, s):
            return slot_addr(l, s, sb=sb, lb=lb, stride=stride, depth=self._depth)

        base, nxt, snext, rtx = self.base, self.next, self.snext, self.rtx
        ordc = [Signal(ob, name=f"ord{l}") for l in range(L)]
        sord = [[Signal(ob, name=f"sord{l}_{s}") for s in range(W)] for l in range(L)]
        m.d.comb += self.ord_at.eq(Array([Array(row) for row in sord])[self.ord_flow]
                                   [self.ord_slot])

        o = self.o_frame
        ov = Signal()
        obyte = Signal(8)
        olast = Signal()
        osel = Signal()
        adv = ~ov | o.ready
        m.d.comb += [
            o.valid.eq(ov),
            o.payload.data.eq(Mux(osel, self.rd_data[:8], obyte)),
            o.payload.last.eq(Mux(osel, self.rd_data[8], olast)),
            self.rd_en.eq(adv),
        ]
        rptr = Signal.like(self.rd_addr)
        m.d.comb += self.rd_addr.eq(rptr)
        tf = Signal(range(max(2, L)))
        t_ack = Signal(16)
        t_sack = Signal(32)
        t_nack = Signal()
        t_is_ack = Signal()
        tcnt8 = Signal(5)

        ack_arb = rr_arbiter(m, "ack_arb", L)
        rtx_arb = rr_arbiter(m, "rtx_arb", L)
        new_arb = rr_arbiter(m, "new_arb", L)
        for l in range(L):
            m.d.comb += [
                ack_arb.requests[l].eq(self.ack_due[l]),
                rtx_arb.requests[l].eq(rtx[l].any()),
                new_arb.requests[l].eq(snext[l] != nxt[l]),
            ]
        pick = self.pick            # the scheduler starts a frame this cycle
        pick_data = self.pick_data
        pick_rtx = self.pick_rtx
        pick_f = self.pick_flow
        # Oldest slot marked for retransmission of the chosen flow.
        rtx_rot = Signal(W)
        rtx_base = sel(base, rtx_arb.index)
        rtx_bits = sel(rtx, rtx_arb.index)
        m.d.comb += rtx_rot.eq(Cat(rtx_bits, rtx_bits).bit_select(psn_slot(rtx_base), W))
        rtx_pos = Signal(sb)
        for k in reversed(range(W)):
            with m.If(rtx_rot[k]):
                m.d.comb += rtx_pos.eq(k)
        pick_slot = self.pick_slot

        with m.FSM(name="tx"):
            with m.State("IDLE"):
                with m.If(adv):
                    m.d.sync += ov.eq(0)
                with m.If(ack_arb.valid):
                    m.d.comb += [pick.eq(1), ack_arb.advance.eq(1), pick_f.eq(ack_arb.index)]
                    m.d.sync += [
                        tf.eq(ack_arb.index), t_is_ack.eq(1),
                        t_ack.eq(sel(self.expected, ack_arb.index)),
                        t_sack.eq(sel(self.sack, ack_arb.index)),
                        t_nack.eq(self.nack.bit_select(ack_arb.index, 1)),
                        tcnt8.eq(0),
                    ]
                    m.d.comb += [self.tx_ack.eq(1), self.ack_taken.eq(1)]
                    m.next = "ETH"
                with m.Elif(rtx_arb.valid):
                    m.d.comb += [pick.eq(1), pick_data.eq(1), pick_rtx.eq(1),
                                 rtx_arb.advance.eq(1), pick_f.eq(rtx_arb.index),
                                 pick_slot.eq(psn_slot(rtx_base) + rtx_pos)]
                    m.d.comb += self.tx_rtx.eq(1)
                    m.next = "ETH"
                with m.Elif(new_arb.valid):
                    m.d.comb += [pick.eq(1), pick_data.eq(1), new_arb.advance.eq(1),
                                 pick_f.eq(new_arb.index),
                                 pick_slot.eq(psn_slot(sel(snext, new_arb.index)))]
                    m.d.comb += self.tx_data.eq(1)
                    m.next = "ETH"
                with m.If(pick_data):
                    m.d.sync += [tf.eq(pick_f), t_is_ack.eq(0), tcnt8.eq(0),
                                 rptr.eq(buf_addr(pick_f, pick_slot))]
            with m.State("ETH"):
                peer = Value.cast(sel([self.peer_macs[l] for l in range(L)], tf))
                eth = Cat(*[peer.word_select(5 - i, 8) for i in range(6)],
                          *[self.mac.word_select(5 - i, 8) for i in range(6)],
                          Const(ETHERTYPE >> 8, 8), Const(ETHERTYPE & 0xFF, 8))
                with m.If(adv):
                    m.d.sync += [ov.eq(1), osel.eq(0), olast.eq(0),
                                 obyte.eq(eth.word_select(tcnt8[:4], 8)), tcnt8.eq(tcnt8 + 1)]
                    with m.If(tcnt8 == ETH_HDR_BYTES - 1):
                        m.d.sync += tcnt8.eq(0)
                        with m.If(t_is_ack):
                            m.next = "ACKH"
                        with m.Else():
                            m.next = "BUF"
            with m.State("ACKH"):
                hdr = header_bytes(vo=Const(VER_BITS, 8) | Mux(t_nack, OP_NACK, OP_ACK),
                                   flow=sel([Const(i, 8) for i in self._ids], tf),
                                   ack=t_ack, sack=t_sack)
                with m.If(adv):
                    m.d.sync += [ov.eq(1), osel.eq(0), olast.eq(tcnt8 == HEADER_BYTES - 1),
                                 obyte.eq(hdr.word_select(tcnt8[:4], 8)), tcnt8.eq(tcnt8 + 1)]
                    with m.If(tcnt8 == HEADER_BYTES - 1):
                        m.next = "IDLE"
            with m.State("BUF"):
                with m.If(adv):
                    with m.If(osel & self.rd_data[8]):
                        # The final stored byte is leaving now.
                        m.d.sync += [ov.eq(0), osel.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [ov.eq(1), osel.eq(1), rptr.eq(rptr + 1)]

        # ---- state updates on a data pick --------------------------------
        with m.If(pick_data):
            for k in range(L):
                with m.If(pick_f == k):
                    m.d.sync += ordc[k].eq(ordc[k] + 1)
                    for s in range(W):
                        with m.If(pick_slot == s):
                            m.d.sync += sord[k][s].eq(ordc[k])
                    with m.If(~pick_rtx):
                        m.d.sync += snext[k].eq(snext[k] + 1)
                        with m.If(base[k] == snext[k]):
                            m.d.comb += self.restart[k].eq(1)
        return m
