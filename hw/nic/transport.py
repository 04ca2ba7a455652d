"""One ATL transport lane: the reliable sender and receiver of the flows on one port.

A lane owns every piece of per-flow state of its flows (``docs/nic.md``), so
lanes never share state and a NIC is just ``ports`` lanes side by side. A
lane has five engines that run concurrently:

* :class:`~hw.nic.post_engine.PostEngine`: copies a posted message into its
  retransmit-buffer slot (PSN ``p`` in slot ``p mod window``, only when
  ``next - base < window``), then writes the stored 16-byte ATL header in
  front of it;
* :class:`~hw.nic.tx_scheduler.TxScheduler` (scheduler + frame builder):
  ACK/NACK > retransmission > new data, round-robin over flows; a data frame
  is the Ethernet header followed by the stored slot (header + payload)
  streamed from the buffer;
* :class:`~hw.nic.ack_engine.AckEngine`: walks the outstanding slots (one
  per cycle) to free the cumulatively acknowledged ones, mark SACKed ones
  and, by transmission ordinal, mark holes lost for selective retransmission;
* :class:`~hw.nic.timers.RetransmitTimers`: one retransmission timer per flow;
* :class:`~hw.nic.rx_parser.RxParser`: header -> verdict of the flow's
  :class:`RxWindow`, payload placed by offset on the memory port, window
  committed at the end of the frame, then the semaphores whose PSNs became
  in-order fire.

:meth:`Lane.elaborate` instantiates and connects them. The lane itself owns
the retransmit buffer, the receive windows and the two pieces of state that
several engines update: the retransmit marks (``rtx``: cleared and set by
the ACK engine, cleared by the scheduler on a pick, set by a timer expiry,
applied in that order so the later one wins) and the due ACKs (cleared by
the scheduler, set by the receive parser, which wins).
"""
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common import check_int

from .ack_engine import AckEngine
from .atl_header import ETHERTYPE, HEADER_BYTES
from .eth import ByteLayout
from .lane_common import check_lane, sel, set_bit
from .post_engine import PostEngine, PostLayout
from .rx_parser import RX_STATS, RxParser, mem_layout
from .timers import RetransmitTimers
from .tx_scheduler import TX_STATS, TxScheduler
from .window import RxWindow

__all__ = ["Lane", "PostLayout", "mem_layout", "ETHERTYPE", "HEADER_BYTES"]

#: Stat pulses a lane reports (one cycle each); the NIC counts them.
STATS = ("tx_data", "tx_rtx", "tx_ack", "timeouts", "rx_accept", "rx_dup", "rx_outside",
         "rx_foreign", "rx_errors", "post_errors")


class Lane(wiring.Component):
    """Reliable transport of the flows that share one Ethernet port.

    Parameters
    ----------
    flow_ids : tuple of int
        Wire flow id (0..255) of each local flow; the same id at both ends.
    window : int
        Retransmit slots / receive window per flow, power of two 2..32.
    payload : int
        Maximum WRITE payload bytes per packet, 1..4000.
    mem_bits : int
        Address width of the local memory WRITEs land in.
    n_sems : int
        Number of semaphores.
    rto : int
        Retransmission timeout in cycles.
    reorder_thresh : int
        A hole is lost once a transmission ``reorder_thresh`` later is acknowledged.
    psn_bits : int
        PSN width (16 on the wire; smaller only for formal proofs).

    Attributes
    ----------
    i_posts : In(stream.Signature(PostLayout)).array(flows)
        Messages to send, one stream per local flow.
    o_frame : Out(stream.Signature(ByteLayout))
        Frames without FCS, to :class:`EthTx`.
    i_frame : In(stream.Signature(ByteLayout))
        Good frames without FCS, from :class:`EthRx`.
    o_mem : Out(stream.Signature(mem_layout(mem_bits)))
        Payload bytes placed by offset.
    sem_inc, sem_idx : Out
        Pulse: increment semaphore ``sem_idx``.
    mac : In(48)
        Own MAC (first byte on the wire in the top bits).
    peer_macs : In(data.ArrayLayout(48, flows))
        Peer MAC of each local flow.
    """

    #: Class of the post engine (a formal mutant swaps it).
    _post_engine_cls = PostEngine

    def __init__(self, *, flow_ids, window=8, payload=64, mem_bits=16, n_sems=4, rto=4096,
                 reorder_thresh=2, psn_bits=16):
        self._ids, self._w, self._pl, self._psn_bits = check_lane(
            flow_ids=flow_ids, window=window, payload=payload, psn_bits=psn_bits)
        if not self._ids or len(set(self._ids)) != len(self._ids):
            raise ValueError(f"flow_ids must be distinct and non-empty, not {flow_ids!r}")
        self._mem_bits = check_int("mem_bits", mem_bits, min=1, max=32)
        self._n_sems = check_int("n_sems", n_sems, min=1, max=256)
        self._rto = check_int("rto", rto, min=2, max=1 << 24)
        self._thresh = check_int("reorder_thresh", reorder_thresh, min=1, max=window)
        n = len(self._ids)
        super().__init__({
            "i_posts": In(stream.Signature(PostLayout)).array(n),
            "o_frame": Out(stream.Signature(ByteLayout)),
            "i_frame": In(stream.Signature(ByteLayout)),
            "o_mem": Out(stream.Signature(mem_layout(mem_bits))),
            "sem_inc": Out(1),
            "sem_idx": Out(range(max(2, n_sems))),
            "mac": In(48),
            "peer_macs": In(data.ArrayLayout(48, n)),
            **{name: Out(1) for name in STATS},
        })
        L, W, pb = n, self._w, self._psn_bits
        #: The engines (created here so that invariants() can name their state;
        #: a subclass may swap an engine class, e.g. for a mutant).
        self.post_engine = self._post_engine_cls(flow_ids=self._ids, window=W, payload=self._pl,
                                                 psn_bits=pb)
        self.ack_engine = AckEngine(flows=L, window=W, reorder_thresh=self._thresh, psn_bits=pb)
        self.timers = RetransmitTimers(flows=L, rto=self._rto)
        self.scheduler = TxScheduler(flow_ids=self._ids, window=W, payload=self._pl, psn_bits=pb)
        self.rx_parser = RxParser(flow_ids=self._ids, window=W, payload=self._pl,
                                  mem_bits=self._mem_bits, n_sems=self._n_sems, psn_bits=pb)
        #: Sender state per flow (visible for formal checks).
        self.base = list(self.ack_engine.base)
        self.next = list(self.post_engine.next)
        self.snext = list(self.scheduler.snext)
        self.rtx = [Signal(W, name=f"rtx{l}") for l in range(L)]
        self.sacked = list(self.ack_engine.sacked)
        #: Retransmit-buffer write strobe and the flow/PSN it writes (formal).
        self.buf_we = Signal()
        self.buf_flow = Signal(range(max(2, L)))
        self.buf_psn = Signal(pb)
        #: Receive windows, one per flow.
        self.windows = [RxWindow(window=W, psn_bits=pb) for _ in range(L)]

    def outstanding_mask(self, l):
        """Slots of flow ``l`` holding a sent, unacknowledged PSN (``[base, snext)``)."""
        W, pb = self._w, self._psn_bits
        cnt = (self.snext[l] - self.base[l])[:pb]
        sb = (W - 1).bit_length()
        bits = []
        for s in range(W):
            pos = (Const(s, sb) - self.base[l][:sb])[:sb]
            bits.append(pos < cnt)
        return Cat(*bits)

    def invariants(self):
        """Facts about the sender state, asserted (and proved) by ``formal/test_nic.py``.

        Per flow: at most ``window`` PSNs posted and not acknowledged, sent ones
        among them; retransmit and SACK marks only on sent, unacknowledged
        slots; the slots the ACK engine has freed carry no mark. Gathered
        from the sub-components: timers within ``rto``
        (:class:`RetransmitTimers`), the post engine writing the free slot
        after ``next`` (:class:`PostEngine`), the ACK engine's registers
        consistent with the flow it walks (:class:`AckEngine`), and each
        receive window's own invariant.
        """
        W, pb, L = self._w, self._psn_bits, len(self._ids)
        sb = (W - 1).bit_length()
        eng = self.ack_engine
        sub = {name: expr for part in (self.timers, self.post_engine, eng)
               for expr, name in part.invariants()}
        out = []
        for l in range(L):
            used = (self.next[l] - self.base[l])[:pb]
            sent = (self.snext[l] - self.base[l])[:pb]
            out += [(used <= W, f"window_{l}"), (sent <= used, f"sent_le_posted_{l}"),
                    ((self.rtx[l] & ~self.outstanding_mask(l)) == 0, f"rtx_outstanding_{l}"),
                    ((self.sacked[l] & ~self.outstanding_mask(l)) == 0,
                     f"sacked_outstanding_{l}"),
                    (sub.pop(f"timer_{l}"), f"timer_{l}")]
            for expr, name in self.windows[l].invariants():
                out.append((expr, f"rx{l}_{name}"))
            out.append((sub.pop(f"post_slot_{l}"), f"post_slot_{l}"))
            out += [(sub.pop(name), name) for name in
                    (f"ack_engine_{l}", f"ack_p1_{l}", f"ack_p1end_{l}", f"ack_p2_{l}")]
            # Slots freed by the ACK engine's pass 1 carry no retransmit or SACK mark.
            busy = (eng.p1 | eng.p1end | eng.p2) & (eng.e_f == l)
            cleared = []
            for s in range(W):
                pos = (Const(s, sb) - eng.e_base[:sb])[:sb]
                done = (pos < eng.e_adv) & (pos < eng.e_j)
                cleared.append(~done | (~self.rtx[l][s] & ~self.sacked[l][s]))
            out.append((~(busy & (eng.p1 | eng.p1end)) | Cat(*cleared).all(),
                        f"ack_freed_clear_{l}"))
        out += [(sub.pop("ack_flow_in_range"), "ack_flow_in_range"),
                (sub.pop("post_flow_in_range"), "post_flow_in_range")]
        assert not sub, f"sub-component invariants not gathered: {sorted(sub)}"
        return out

    # ------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        L, W = len(self._ids), self._w
        sb = (W - 1).bit_length()          # slot index bits
        depth = L * W * (HEADER_BYTES + self._pl)
        stat = {name: getattr(self, name) for name in STATS}   # one-cycle stat pulses
        base, nxt, snext, rtx = self.base, self.next, self.snext, self.rtx
        # Lane-owned state: the ACK due per flow (set by the receive parser,
        # cleared by the scheduler) and the retransmit marks (set and cleared
        # by the ACK engine, the scheduler and the timers).
        ack_due = Signal(L)
        nack = Signal(L)

        m.submodules.buf = buf = Memory(shape=9, depth=depth, init=[])
        wp = buf.write_port()
        rp = buf.read_port(transparent_for=())
        for l, win in enumerate(self.windows):
            m.submodules[f"win{l}"] = win
        m.submodules.post = post = self.post_engine
        m.submodules.sched = sched = self.scheduler
        m.submodules.ack = ack = self.ack_engine
        m.submodules.timers = timers = self.timers
        m.submodules.rx = rx = self.rx_parser

        # ---- post engine -> retransmit buffer ----------------------------
        for l in range(L):
            wiring.connect(m, wiring.flipped(self.i_posts[l]), post.i_posts[l])
            m.d.comb += post.base[l].eq(base[l])
        m.d.comb += [wp.en.eq(post.buf_we), wp.addr.eq(post.buf_addr), wp.data.eq(post.buf_data),
                     stat["post_errors"].eq(post.post_errors),
                     self.buf_flow.eq(post.flow), self.buf_psn.eq(post.psn),
                     self.buf_we.eq(wp.en)]

        # ---- retransmit buffer -> transmit scheduler -> o_frame ----------
        wiring.connect(m, sched.o_frame, wiring.flipped(self.o_frame))
        m.d.comb += [sched.mac.eq(self.mac), sched.peer_macs.eq(self.peer_macs),
                     sched.ack_due.eq(ack_due), sched.nack.eq(nack),
                     rp.en.eq(sched.rd_en), rp.addr.eq(sched.rd_addr), sched.rd_data.eq(rp.data)]
        m.d.comb += [stat[name].eq(getattr(sched, name)) for name in TX_STATS]
        for l, win in enumerate(self.windows):
            m.d.comb += [sched.expected[l].eq(win.expected), sched.sack[l].eq(win.sack),
                         sched.rtx[l].eq(rtx[l]), sched.base[l].eq(base[l]),
                         sched.next[l].eq(nxt[l])]
        with m.If(sched.ack_taken):
            # (the receive parser's set, below, wins)
            m.d.sync += ack_due.bit_select(sched.pick_flow, 1).eq(0)

        # ---- ACK engine (stalls for the one cycle of a pick) -------------
        m.d.comb += [ack.step.eq(~sched.pick),
                     sched.ord_flow.eq(ack.cur_flow), sched.ord_slot.eq(ack.cur_slot),
                     ack.cur_sord.eq(sched.ord_at)]
        for l in range(L):
            m.d.comb += ack.snext[l].eq(snext[l])

        # ---- retransmit marks: ACK engine, then the scheduler, then the timers
        with m.If(ack.rtx_clr):
            set_bit(m, rtx, ack.cur_flow, ack.cur_slot, 0)
        with m.If(ack.rtx_set):
            set_bit(m, rtx, ack.cur_flow, ack.cur_slot, 1)
        with m.If(sched.pick_data):
            set_bit(m, rtx, sched.pick_flow, sched.pick_slot, 0)
        # Timers expire only while neither the scheduler nor the ACK engine
        # updates the marks.
        m.d.comb += [timers.restart.eq(ack.restart | sched.restart),
                     timers.allow.eq(ack.idle & ~ack.start & ~sched.pick)]
        for l in range(L):
            m.d.comb += timers.busy[l].eq(base[l] != snext[l])
            with m.If(timers.expire[l]):
                # The oldest unacknowledged slot (base: never SACKed) is resent.
                m.d.sync += rtx[l].bit_select(base[l][:sb], 1).eq(1)
        m.d.comb += stat["timeouts"].eq(timers.expire.any())

        # ---- i_frame -> receive parser -> o_mem, windows, ACK engine -----
        wiring.connect(m, wiring.flipped(self.i_frame), rx.i_frame)
        wiring.connect(m, rx.o_mem, wiring.flipped(self.o_mem))
        m.d.comb += [rx.mac.eq(self.mac), rx.peer_macs.eq(self.peer_macs),
                     ack.start.eq(rx.ack_start), rx.ack_idle.eq(ack.idle),
                     ack.flow.eq(rx.flow), ack.ack.eq(rx.ack_ack), ack.sack.eq(rx.ack_sack),
                     self.sem_inc.eq(rx.sem_inc), self.sem_idx.eq(rx.sem_idx)]
        m.d.comb += [stat[name].eq(getattr(rx, name)) for name in RX_STATS]
        # The addressed flow's window gives the verdict, committed at the end of the frame.
        for l, win in enumerate(self.windows):
            m.d.comb += [win.i_stream.valid.eq(rx.win_valid & (rx.flow == l)),
                         win.i_stream.payload.eq(rx.win_psn),
                         win.o_stream.ready.eq(rx.win_ready & (rx.flow == l))]
        m.d.comb += [rx.verdict.eq(sel([w.o_stream.payload for w in self.windows], rx.flow)),
                     rx.expected.eq(sel([w.expected for w in self.windows], rx.flow))]
        # The ACK becomes due only at the end of the frame, so it carries the
        # updated window.
        with m.If(rx.ack_due):
            m.d.sync += [ack_due.bit_select(rx.flow, 1).eq(1),
                         nack.bit_select(rx.flow, 1).eq(rx.nack)]
        return m
