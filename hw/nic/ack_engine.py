"""ACK engine of a transport lane: cumulative ACK, SACK marks and loss inference."""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, check_pow2

from .atl_header import SACK_BITS
from .lane_common import sel, set_bit

__all__ = ["AckEngine", "ORD_BITS"]

#: Width of the per-transmission ordinals (modular; see ``docs/nic.md``).
ORD_BITS = 16


class AckEngine(wiring.Component):
    """Applies one received ACK/NACK to its flow's sender state, one slot per cycle.

    Owns ``base`` (oldest unacknowledged PSN), the SACK marks and the highest
    delivered transmission ordinal of every flow. On ``start`` (only while
    ``idle``) with ``ack`` in ``[base, snext]`` and something outstanding it
    walks the outstanding slots: pass 1 frees the slots below ``ack``, marks
    the SACKed ones and keeps the highest delivered ordinal; then ``base =
    ack``; pass 2 asks for the retransmission of every un-SACKed slot whose
    ordinal is ``reorder_thresh`` or more below it. Other ACKs are ignored.
    A cycle without ``step`` (the transmit scheduler picking a frame) is a
    stall. The retransmit marks belong to the lane; the engine asks for them
    with ``rtx_clr``/``rtx_set`` on slot ``cur_slot`` of flow ``cur_flow``.

    Parameters
    ----------
    flows : int
        Local flows of the lane.
    window : int
        Retransmit slots per flow (power of two).
    reorder_thresh : int
        A hole is lost once a transmission ``reorder_thresh`` later is acknowledged.
    psn_bits : int
        PSN width.

    Attributes
    ----------
    start, flow, ack, sack : In
        An ACK/NACK to apply (``start`` is a pulse, taken only while ``idle``).
    step : In(1)
        The engine may advance this cycle.
    snext : In(psn_bits).array(flows)
        Next PSN to transmit of each flow.
    cur_sord : In(ORD_BITS)
        Transmission ordinal of slot ``cur_slot`` of flow ``cur_flow``.
    base : Out(psn_bits).array(flows)
        Oldest unacknowledged PSN of each flow.
    sacked : Out(window).array(flows)
        Slots known received out of order.
    idle : Out(1)
        Ready for ``start``.
    cur_flow, cur_slot : Out
        The slot the engine is looking at.
    rtx_clr, rtx_set : Out(1)
        Clear / set the retransmit mark of that slot this cycle.
    restart : Out(flows)
        Progress (``base`` moved or a new SACK bit): restart the flow's timer.
    """

    def __init__(self, *, flows, window, reorder_thresh, psn_bits):
        self._L = check_int("flows", flows, min=1, max=256)
        self._w = check_pow2("window", window, min=2, max=32)
        self._thresh = check_int("reorder_thresh", reorder_thresh, min=1, max=window)
        self._psn_bits = pb = check_int("psn_bits", psn_bits, min=window.bit_length() + 2,
                                        max=16)
        L, W = flows, window
        sb = (W - 1).bit_length()
        super().__init__({
            "start": In(1),
            "flow": In(range(max(2, L))),
            "ack": In(pb),
            "sack": In(SACK_BITS),
            "step": In(1),
            "snext": In(pb).array(L),
            "cur_sord": In(ORD_BITS),
            "base": Out(pb).array(L),
            "sacked": Out(W).array(L),
            "idle": Out(1),
            "cur_flow": Out(range(max(2, L))),
            "cur_slot": Out(sb),
            "rtx_clr": Out(1),
            "rtx_set": Out(1),
            "restart": Out(L),
        })
        # Walk state (hidden; Lane.invariants() names it).
        self.e_f = Signal(range(max(2, L)))
        self.e_ack = Signal(pb)
        self.e_base = Signal(pb)
        self.e_adv = Signal(range(W + 1))
        self.e_n = Signal(range(W + 1))
        self.e_j = Signal(range(W + 1))
        #: In pass 1, at its end, in pass 2.
        self.p1 = Signal()
        self.p1end = Signal()
        self.p2 = Signal()

    def invariants(self):
        """The walk registers agree with the flow being walked.

        Valid in a lane, where ``base`` only moves by the engine and
        ``snext`` only grows past it: while the engine walks flow ``l`` the
        ACK lies ``e_adv`` past the base it started from, at most ``e_n``
        slots are walked, ``e_n`` does not exceed what is outstanding, and
        ``base`` is still the start (pass 1) or already the ACK (pass 2).
        """
        L, pb = self._L, self._psn_bits
        out = []
        for l in range(L):
            busy = (self.p1 | self.p1end | self.p2) & (self.e_f == l)
            ea, eb = self.e_adv, self.e_base
            engine = ((ea == (self.e_ack - eb)[:pb]) & (ea <= self.e_n) & (self.e_n >= 1)
                      & (self.e_n <= (self.snext[l] - eb)[:pb]))
            p1 = (self.base[l] == eb) & (self.e_j < self.e_n)
            p1end = (self.base[l] == eb) & (self.e_j == self.e_n)
            p2 = (self.base[l] == self.e_ack) & (ea <= self.e_j) & (self.e_j < self.e_n)
            out += [(~busy | engine, f"ack_engine_{l}"),
                    (~(busy & self.p1) | p1, f"ack_p1_{l}"),
                    (~(busy & self.p1end) | p1end, f"ack_p1end_{l}"),
                    (~(busy & self.p2) | p2, f"ack_p2_{l}")]
        out.append((self.e_f < L, "ack_flow_in_range"))
        return out

    def elaborate(self, platform):
        m = Module()
        L, W, pb, ob = self._L, self._w, self._psn_bits, ORD_BITS
        sb = (W - 1).bit_length()
        base, snext, sacked = self.base, self.snext, self.sacked
        aord = [Signal(ob, init=(1 << ob) - 1, name=f"aord{l}") for l in range(L)]
        e_f, e_ack, e_base = self.e_f, self.e_ack, self.e_base
        e_adv, e_n, e_j = self.e_adv, self.e_n, self.e_j
        e_sack = Signal(SACK_BITS)
        e_amax = Signal(ob)
        e_prog = Signal()
        step = self.step
        e_slot = (e_base[:sb] + e_j[:sb])[:sb]
        e_sord = self.cur_sord
        e_sacked = sel(sacked, e_f).bit_select(e_slot, 1)
        e_sbit = e_sack.bit_select((e_j - e_adv - 1)[:5], 1)
        later = Signal()  # e_sord is newer than e_amax
        m.d.comb += [later.eq(~(e_sord - e_amax)[ob - 1] & (e_sord != e_amax)),
                     self.cur_flow.eq(e_f), self.cur_slot.eq(e_slot)]

        with m.FSM(name="ack") as ack_fsm:
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.start):
                    b = sel(base, self.flow)
                    adv_v = (self.ack - b)[:pb]
                    n_v = (sel(snext, self.flow) - b)[:pb]
                    m.d.sync += [e_f.eq(self.flow), e_ack.eq(self.ack), e_sack.eq(self.sack),
                                 e_base.eq(b), e_adv.eq(adv_v), e_n.eq(n_v), e_j.eq(0),
                                 e_amax.eq(sel(aord, self.flow)), e_prog.eq(0)]
                    with m.If((adv_v <= n_v) & (n_v != 0)):
                        m.next = "P1"
            with m.State("P1"):
                with m.If(step):
                    with m.If(e_j < e_adv):
                        with m.If(later):
                            m.d.sync += e_amax.eq(e_sord)
                        set_bit(m, sacked, e_f, e_slot, 0)
                        m.d.comb += self.rtx_clr.eq(1)
                    with m.Elif((e_j > e_adv) & e_sbit):
                        with m.If(later):
                            m.d.sync += e_amax.eq(e_sord)
                        with m.If(~e_sacked):
                            m.d.sync += e_prog.eq(1)
                            set_bit(m, sacked, e_f, e_slot, 1)
                            m.d.comb += self.rtx_clr.eq(1)
                    m.d.sync += e_j.eq(e_j + 1)
                    with m.If(e_j == e_n - 1):
                        m.next = "P1END"
            with m.State("P1END"):
                with m.If(step):
                    for k in range(L):
                        with m.If(e_f == k):
                            m.d.sync += [base[k].eq(e_ack), aord[k].eq(e_amax)]
                            # Progress (base moved or a new SACK bit) restarts the timer.
                            m.d.comb += self.restart[k].eq((e_adv != 0) | e_prog)
                    m.d.sync += e_j.eq(e_adv)
                    with m.If(e_adv < e_n):
                        m.next = "P2"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("P2"):
                with m.If(step):
                    gap = (sel(aord, e_f) - e_sord)[:ob]
                    lost = ~gap[ob - 1] & (gap >= self._thresh)
                    with m.If(~e_sacked & lost):
                        m.d.comb += self.rtx_set.eq(1)
                    m.d.sync += e_j.eq(e_j + 1)
                    with m.If(e_j == e_n - 1):
                        m.next = "IDLE"
        m.d.comb += [self.p1.eq(ack_fsm.ongoing("P1")), self.p1end.eq(ack_fsm.ongoing("P1END")),
                     self.p2.eq(ack_fsm.ongoing("P2"))]
        return m
