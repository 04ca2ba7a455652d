"""One ATL transport lane: the reliable sender and receiver of the flows on one port.

A lane owns every piece of per-flow state of its flows (``docs/atl.md``), so
lanes never share state and a NIC is just ``ports`` lanes side by side. A
lane has four engines that run concurrently:

* post engine: copies a posted message into its retransmit-buffer slot
  (PSN ``p`` in slot ``p mod window``, only when ``next - base < window``),
  then writes the stored 16-byte ATL header in front of it;
* transmit scheduler + byte generator: ACK/NACK > retransmission > new data,
  round-robin over flows; a data frame is the Ethernet header followed by
  the stored slot (header + payload) streamed from the buffer;
* ACK engine: walks the outstanding slots (one per cycle) to free the
  cumulatively acknowledged ones, mark SACKed ones and, by transmission
  ordinal, mark holes lost for selective retransmission;
* receive parser: header -> verdict of the flow's :class:`RxWindow`,
  payload placed by offset on the memory port, window committed at the end
  of the frame, then the semaphores whose PSNs became in-order fire.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, check_int, check_pow2

from .atl_header import (ETH_FIELDS, ETH_HDR_BYTES, ETHERTYPE, HEADER_BYTES, HEADER_FIELDS,
                         HeaderLayout, Op, VERSION)
from .eth import ByteLayout
from .window import RxWindow

__all__ = ["Lane", "PostLayout", "mem_layout", "ETHERTYPE", "HEADER_BYTES"]

# Op codes as plain integers: the constants keep their natural width in the
# generated Verilog (an ``Op`` member would be cast to 4 bits).
OP_WRITE, OP_SEM, OP_ACK, OP_NACK = (Op.WRITE.value, Op.SEM.value, Op.ACK.value,
                                     Op.NACK.value)
#: Header byte 0 without the op code.
VER_BITS = VERSION << 4


def header_bytes(**fields):
    """The ATL header as a 128-bit value, byte ``i`` at bits ``8 i`` (wire order).

    ``fields`` maps :data:`HeaderLayout` field names to values; multi-byte
    fields go out big-endian, absent fields are zero (adjacent ones merged
    into one constant).
    """
    parts, zeros = [], 0
    for name, (_, n) in HEADER_FIELDS.items():
        v = fields.pop(name, None)
        if v is None:
            zeros += 8 * n
            continue
        if zeros:
            parts.append(Const(0, zeros))
            zeros = 0
        parts += [v] if n == 1 else [v[8 * (n - 1 - k):8 * (n - k)] for k in range(n)]
    if zeros:
        parts.append(Const(0, zeros))
    assert not fields, f"unknown header fields {sorted(fields)}"
    hdr = Cat(*parts)
    assert len(hdr) == HeaderLayout.size
    return hdr

#: One beat of a posted message. ``sem`` and ``addr`` are taken from the first
#: beat: a WRITE carries one payload byte per beat (``last`` on the final
#: one), a SEM is a single beat (``addr`` = semaphore index, ``data`` ignored).
PostLayout = data.StructLayout({"data": 8, "last": 1, "sem": 1, "addr": 32})

#: Stat pulses a lane reports (one cycle each); the NIC counts them.
STATS = ("tx_data", "tx_rtx", "tx_ack", "timeouts", "rx_accept", "rx_dup", "rx_outside",
         "rx_foreign", "rx_errors", "post_errors")


class _Single:
    """Stand-in for a one-requester :class:`RoundRobinArbiter` (no zero-width index)."""

    def __init__(self, m):
        self.requests = Signal(1)
        self.advance = Signal()
        self.valid = self.requests[0]
        self.index = Const(0, 1)


def _rr(m, name, n):
    if n == 1:
        return _Single(m)
    m.submodules[name] = arb = RoundRobinArbiter(n=n)
    return arb


def mem_layout(mem_bits):
    """Byte write into the local memory: ``addr`` (``mem_bits``) and ``data``."""
    return data.StructLayout({"addr": mem_bits, "data": 8})


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

    def __init__(self, *, flow_ids, window=8, payload=64, mem_bits=16, n_sems=4, rto=4096,
                 reorder_thresh=2, psn_bits=16):
        self._ids = tuple(check_int("flow_ids", f, min=0, max=255) for f in flow_ids)
        if not self._ids or len(set(self._ids)) != len(self._ids):
            raise ValueError(f"flow_ids must be distinct and non-empty, not {flow_ids!r}")
        self._w = check_pow2("window", window, min=2, max=32)
        self._pl = check_int("payload", payload, min=1, max=4000)
        self._mem_bits = check_int("mem_bits", mem_bits, min=1, max=32)
        self._n_sems = check_int("n_sems", n_sems, min=1, max=256)
        self._rto = check_int("rto", rto, min=2, max=1 << 24)
        self._thresh = check_int("reorder_thresh", reorder_thresh, min=1, max=window)
        self._psn_bits = check_int("psn_bits", psn_bits, min=window.bit_length() + 2, max=16)
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
        #: Sender state per flow (visible for formal checks).
        self.base = [Signal(pb, name=f"base{l}") for l in range(L)]
        self.next = [Signal(pb, name=f"next{l}") for l in range(L)]
        self.snext = [Signal(pb, name=f"snext{l}") for l in range(L)]
        self.rtx = [Signal(W, name=f"rtx{l}") for l in range(L)]
        self.sacked = [Signal(W, name=f"sacked{l}") for l in range(L)]
        #: Retransmit-buffer write strobe and the flow/PSN it writes (formal).
        self.buf_we = Signal()
        self.buf_flow = Signal(range(max(2, L)))
        self.buf_psn = Signal(pb)
        # Engine state, created here so that invariants() can name it.
        sb = (W - 1).bit_length()
        self._tcnt = [Signal(self._rto.bit_length(), name=f"tcnt{l}") for l in range(L)]
        self._pf = Signal(range(max(2, L)))
        self._pslot = Signal(sb)
        self._ppsn = Signal(pb)
        self._e_f = Signal(range(max(2, L)))
        self._e_ack = Signal(pb)
        self._e_base = Signal(pb)
        self._e_adv = Signal(range(W + 1))
        self._e_n = Signal(range(W + 1))
        self._e_j = Signal(range(W + 1))
        self._post_busy = Signal()
        self._p1 = Signal()
        self._p1end = Signal()
        self._p2 = Signal()
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
        slots; timers within ``rto``. The ACK engine's and the post engine's
        registers are consistent with the flow state they are working on.
        """
        W, pb, L = self._w, self._psn_bits, len(self._ids)
        sb = (W - 1).bit_length()
        out = []
        for l in range(L):
            used = (self.next[l] - self.base[l])[:pb]
            sent = (self.snext[l] - self.base[l])[:pb]
            out += [(used <= W, f"window_{l}"), (sent <= used, f"sent_le_posted_{l}"),
                    ((self.rtx[l] & ~self.outstanding_mask(l)) == 0, f"rtx_outstanding_{l}"),
                    ((self.sacked[l] & ~self.outstanding_mask(l)) == 0,
                     f"sacked_outstanding_{l}"),
                    (self._tcnt[l] <= self._rto, f"timer_{l}")]
            for k, (expr, name) in enumerate(self.windows[l].invariants()):
                out.append((expr, f"rx{l}_{name}"))
            # Post engine: the slot being written is the free one after `next`.
            mine = self._post_busy & (self._pf == l)
            out += [(~mine | ((self._ppsn == self.next[l]) & (used < W)
                              & (self._pslot == self._ppsn[:sb])), f"post_slot_{l}")]
            # ACK engine working on flow l.
            busy = (self._p1 | self._p1end | self._p2) & (self._e_f == l)
            ea, eb = self._e_adv, self._e_base
            engine = ((ea == (self._e_ack - eb)[:pb]) & (ea <= self._e_n) & (self._e_n >= 1)
                      & (self._e_n <= (self.snext[l] - eb)[:pb]))
            p1 = (self.base[l] == eb) & (self._e_j < self._e_n)
            p1end = (self.base[l] == eb) & (self._e_j == self._e_n)
            p2 = (self.base[l] == self._e_ack) & (ea <= self._e_j) & (self._e_j < self._e_n)
            cleared = []
            for s in range(W):
                pos = (Const(s, sb) - eb[:sb])[:sb]
                done = (pos < ea) & (pos < self._e_j)
                cleared.append(~done | (~self.rtx[l][s] & ~self.sacked[l][s]))
            out += [(~busy | engine, f"ack_engine_{l}"),
                    (~(busy & self._p1) | p1, f"ack_p1_{l}"),
                    (~(busy & self._p1end) | p1end, f"ack_p1end_{l}"),
                    (~(busy & self._p2) | p2, f"ack_p2_{l}"),
                    (~(busy & (self._p1 | self._p1end)) | Cat(*cleared).all(),
                     f"ack_freed_clear_{l}")]
        out.append((self._e_f < L, "ack_flow_in_range"))
        out.append((self._pf < L, "post_flow_in_range"))
        return out

    # ------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        L, W, PL, pb = len(self._ids), self._w, self._pl, self._psn_bits
        sb = (W - 1).bit_length()          # slot index bits
        stride = HEADER_BYTES + PL         # buffer bytes per slot
        depth = L * W * stride
        lb = max(1, (L - 1).bit_length())
        ob = 16                            # transmission ordinal bits
        tb = self._rto.bit_length()

        def psn_slot(p):
            return p[:sb]

        def buf_addr(l, s):
            return (Cat(s[:sb], Const(0, lb) | l) * stride)[:(depth - 1).bit_length() + 1]

        def sel(signals, idx):
            return Array(signals)[idx]

        # One-cycle stat pulses.
        stat = {name: getattr(self, name) for name in STATS}

        base, nxt, snext = self.base, self.next, self.snext
        rtx, sacked = self.rtx, self.sacked
        ordc = [Signal(ob, name=f"ord{l}") for l in range(L)]
        aord = [Signal(ob, init=(1 << ob) - 1, name=f"aord{l}") for l in range(L)]
        sord = [[Signal(ob, name=f"sord{l}_{s}") for s in range(W)] for l in range(L)]
        tcnt = self._tcnt
        ack_due = Signal(L)
        nack = Signal(L)

        m.submodules.buf = buf = Memory(shape=9, depth=depth, init=[])
        wp = buf.write_port()
        rp = buf.read_port(transparent_for=())
        for l, win in enumerate(self.windows):
            m.submodules[f"win{l}"] = win

        # ================= post engine =================================
        post_arb = self._post_arb = _rr(m, "post_arb", L)
        pf = self._pf
        psem = Signal()
        paddr = Signal(32)
        pcnt = Signal(range(PL + 1))
        pperr = Signal()
        hcnt = Signal(4)
        pslot = self._pslot
        ppsn = self._ppsn
        for l in range(L):
            room = (nxt[l] - base[l])[:pb] < W
            m.d.comb += post_arb.requests[l].eq(self.i_posts[l].valid & room)
        cur_post = sel([p.payload for p in self.i_posts], pf)
        cur_valid = sel([p.valid for p in self.i_posts], pf)
        post_take = Signal()
        for l in range(L):
            m.d.comb += self.i_posts[l].ready.eq(post_take & (pf == l))
        pbeat = cur_valid & post_take
        m.d.comb += [self.buf_flow.eq(pf), self.buf_psn.eq(ppsn), self.buf_we.eq(wp.en)]
        with m.FSM(name="post") as post_fsm:
            with m.State("IDLE"):
                with m.If(post_arb.valid):
                    m.d.comb += post_arb.advance.eq(1)
                    first = sel([p.payload for p in self.i_posts], post_arb.index)
                    m.d.sync += [pf.eq(post_arb.index), psem.eq(first.sem), paddr.eq(first.addr),
                                 pcnt.eq(0), pperr.eq(0), hcnt.eq(0),
                                 ppsn.eq(sel(nxt, post_arb.index)),
                                 pslot.eq(psn_slot(sel(nxt, post_arb.index)))]
                    m.next = "COPY"
            with m.State("COPY"):
                m.d.comb += post_take.eq(1)
                with m.If(pbeat):
                    with m.If(psem):
                        with m.If(~cur_post.last):
                            m.d.sync += pperr.eq(1)
                            m.next = "DISCARD"
                        with m.Else():
                            m.next = "HDR"
                    with m.Else():
                        full = pcnt == PL - 1
                        m.d.comb += [
                            wp.en.eq(1),
                            wp.addr.eq(buf_addr(pf, pslot) + HEADER_BYTES + pcnt),
                            wp.data.eq(Cat(cur_post.data, cur_post.last | full)),
                        ]
                        m.d.sync += pcnt.eq(pcnt + 1)
                        with m.If(cur_post.last):
                            m.next = "HDR"
                        with m.Elif(full):
                            m.d.sync += pperr.eq(1)
                            m.next = "DISCARD"
            with m.State("DISCARD"):
                # Too long (WRITE) or multi-beat SEM: the excess is dropped and counted.
                m.d.comb += post_take.eq(1)
                with m.If(pbeat & cur_post.last):
                    m.next = "HDR"
            with m.State("HDR"):
                op = Mux(psem, OP_SEM, OP_WRITE)
                length = Signal(16)
                psn16 = Signal(16)
                m.d.comb += [length.eq(Mux(psem, 0, pcnt)), psn16.eq(ppsn)]
                hdr = header_bytes(vo=Const(VER_BITS, 8) | op,
                                   flow=sel([Const(i, 8) for i in self._ids], pf),
                                   psn=psn16, addr=paddr, len=length)
                m.d.comb += [
                    wp.en.eq(1),
                    wp.addr.eq(buf_addr(pf, pslot) + hcnt),
                    wp.data.eq(Cat(hdr.word_select(hcnt, 8), psem & (hcnt == HEADER_BYTES - 1))),
                ]
                m.d.sync += hcnt.eq(hcnt + 1)
                with m.If(hcnt == HEADER_BYTES - 1):
                    m.d.comb += stat["post_errors"].eq(pperr)
                    for l in range(L):
                        with m.If(pf == l):
                            m.d.sync += nxt[l].eq(nxt[l] + 1)
                    m.next = "IDLE"

        # ================= transmit scheduler ==========================
        o = self.o_frame
        ov = Signal()
        obyte = Signal(8)
        olast = Signal()
        osel = Signal()
        adv = ~ov | o.ready
        m.d.comb += [
            o.valid.eq(ov),
            o.payload.data.eq(Mux(osel, rp.data[:8], obyte)),
            o.payload.last.eq(Mux(osel, rp.data[8], olast)),
            rp.en.eq(adv),
        ]
        rptr = Signal.like(rp.addr)
        m.d.comb += rp.addr.eq(rptr)
        tf = Signal(range(max(2, L)))
        t_ack = Signal(16)
        t_sack = Signal(32)
        t_nack = Signal()
        t_is_ack = Signal()
        tcnt8 = Signal(5)

        ack_arb = _rr(m, "ack_arb", L)
        rtx_arb = _rr(m, "rtx_arb", L)
        new_arb = _rr(m, "new_arb", L)
        for l in range(L):
            m.d.comb += [
                ack_arb.requests[l].eq(ack_due[l]),
                rtx_arb.requests[l].eq(rtx[l].any()),
                new_arb.requests[l].eq(snext[l] != nxt[l]),
            ]
        pick = Signal()       # the scheduler starts a frame this cycle
        pick_data = Signal()
        pick_rtx = Signal()
        pick_f = Signal(range(max(2, L)))
        # Oldest slot marked for retransmission of the chosen flow.
        rtx_rot = Signal(W)
        rtx_base = sel(base, rtx_arb.index)
        rtx_bits = sel(rtx, rtx_arb.index)
        m.d.comb += rtx_rot.eq(Cat(rtx_bits, rtx_bits).bit_select(psn_slot(rtx_base), W))
        rtx_pos = Signal(sb)
        for k in reversed(range(W)):
            with m.If(rtx_rot[k]):
                m.d.comb += rtx_pos.eq(k)
        pick_slot = Signal(sb)

        with m.FSM(name="tx"):
            with m.State("IDLE"):
                with m.If(adv):
                    m.d.sync += ov.eq(0)
                with m.If(ack_arb.valid):
                    m.d.comb += [pick.eq(1), ack_arb.advance.eq(1), pick_f.eq(ack_arb.index)]
                    m.d.sync += [
                        tf.eq(ack_arb.index), t_is_ack.eq(1),
                        t_ack.eq(sel([w.expected for w in self.windows], ack_arb.index)),
                        t_sack.eq(sel([w.sack for w in self.windows], ack_arb.index)),
                        t_nack.eq(nack.bit_select(ack_arb.index, 1)),
                        tcnt8.eq(0),
                        # (the receive parser's set, later in the code, wins)
                        ack_due.bit_select(ack_arb.index, 1).eq(0),
                    ]
                    m.d.comb += stat["tx_ack"].eq(1)
                    m.next = "ETH"
                with m.Elif(rtx_arb.valid):
                    m.d.comb += [pick.eq(1), pick_data.eq(1), pick_rtx.eq(1),
                                 rtx_arb.advance.eq(1), pick_f.eq(rtx_arb.index),
                                 pick_slot.eq(psn_slot(rtx_base) + rtx_pos)]
                    m.d.comb += stat["tx_rtx"].eq(1)
                    m.next = "ETH"
                with m.Elif(new_arb.valid):
                    m.d.comb += [pick.eq(1), pick_data.eq(1), new_arb.advance.eq(1),
                                 pick_f.eq(new_arb.index),
                                 pick_slot.eq(psn_slot(sel(snext, new_arb.index)))]
                    m.d.comb += stat["tx_data"].eq(1)
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
                    with m.If(osel & rp.data[8]):
                        # The final stored byte is leaving now.
                        m.d.sync += [ov.eq(0), osel.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [ov.eq(1), osel.eq(1), rptr.eq(rptr + 1)]

        # ================= ACK engine ==================================
        ack_start = Signal()
        ack_f = Signal(range(max(2, L)))
        ack_val = Signal(pb)
        ack_sack = Signal(32)
        e_f = self._e_f
        e_ack = self._e_ack
        e_sack = Signal(32)
        e_base = self._e_base
        e_adv = self._e_adv
        e_n = self._e_n
        e_j = self._e_j
        e_amax = Signal(ob)
        e_prog = Signal()
        step = ~pick
        e_slot = (e_base[:sb] + e_j[:sb])[:sb]
        e_sord = Array([Array(row) for row in sord])[e_f][e_slot]
        e_sacked = sel(sacked, e_f).bit_select(e_slot, 1)
        e_sbit = e_sack.bit_select((e_j - e_adv - 1)[:5], 1)
        later = Signal()  # e_sord is newer than e_amax
        m.d.comb += later.eq(~(e_sord - e_amax)[ob - 1] & (e_sord != e_amax))

        def set_bit(vecs, l, s, value):
            for k in range(L):
                with m.If(l == k):
                    m.d.sync += vecs[k].bit_select(s, 1).eq(value)

        eng_idle = Signal()
        restart = Signal(L)   # timer restarts (applied after the increments)
        with m.FSM(name="ack") as ack_fsm:
            with m.State("IDLE"):
                m.d.comb += eng_idle.eq(1)
                with m.If(ack_start):
                    b = sel(base, ack_f)
                    adv_v = (ack_val - b)[:pb]
                    n_v = (sel(snext, ack_f) - b)[:pb]
                    m.d.sync += [e_f.eq(ack_f), e_ack.eq(ack_val), e_sack.eq(ack_sack),
                                 e_base.eq(b), e_adv.eq(adv_v), e_n.eq(n_v), e_j.eq(0),
                                 e_amax.eq(sel(aord, ack_f)), e_prog.eq(0)]
                    with m.If((adv_v <= n_v) & (n_v != 0)):
                        m.next = "P1"
            with m.State("P1"):
                with m.If(step):
                    with m.If(e_j < e_adv):
                        with m.If(later):
                            m.d.sync += e_amax.eq(e_sord)
                        set_bit(sacked, e_f, e_slot, 0)
                        set_bit(rtx, e_f, e_slot, 0)
                    with m.Elif((e_j > e_adv) & e_sbit):
                        with m.If(later):
                            m.d.sync += e_amax.eq(e_sord)
                        with m.If(~e_sacked):
                            m.d.sync += e_prog.eq(1)
                            set_bit(sacked, e_f, e_slot, 1)
                            set_bit(rtx, e_f, e_slot, 0)
                    m.d.sync += e_j.eq(e_j + 1)
                    with m.If(e_j == e_n - 1):
                        m.next = "P1END"
            with m.State("P1END"):
                with m.If(step):
                    for k in range(L):
                        with m.If(e_f == k):
                            m.d.sync += [base[k].eq(e_ack), aord[k].eq(e_amax)]
                            # Progress (base moved or a new SACK bit) restarts the timer.
                            m.d.comb += restart[k].eq((e_adv != 0) | e_prog)
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
                        set_bit(rtx, e_f, e_slot, 1)
                    m.d.sync += e_j.eq(e_j + 1)
                    with m.If(e_j == e_n - 1):
                        m.next = "IDLE"
        m.d.comb += [self._post_busy.eq(~post_fsm.ongoing("IDLE")),
                     self._p1.eq(ack_fsm.ongoing("P1")), self._p1end.eq(ack_fsm.ongoing("P1END")),
                     self._p2.eq(ack_fsm.ongoing("P2"))]

        # ---- scheduler state updates on a data pick ----------------------
        with m.If(pick_data):
            set_bit(rtx, pick_f, pick_slot, 0)
            for k in range(L):
                with m.If(pick_f == k):
                    m.d.sync += ordc[k].eq(ordc[k] + 1)
                    for s in range(W):
                        with m.If(pick_slot == s):
                            m.d.sync += sord[k][s].eq(ordc[k])
                    with m.If(~pick_rtx):
                        m.d.sync += snext[k].eq(snext[k] + 1)
                        with m.If(base[k] == snext[k]):
                            m.d.comb += restart[k].eq(1)

        # ---- timers ------------------------------------------------------
        for l in range(L):
            busy = base[l] != snext[l]
            expire = busy & (tcnt[l] == self._rto) & eng_idle & ~ack_start & ~pick
            with m.If(busy & (tcnt[l] != self._rto)):
                m.d.sync += tcnt[l].eq(tcnt[l] + 1)
            with m.If(~busy | restart[l]):
                m.d.sync += tcnt[l].eq(0)
            with m.If(expire):
                # The oldest unacknowledged slot (base: never SACKed) is resent.
                m.d.sync += [tcnt[l].eq(0), rtx[l].bit_select(psn_slot(base[l]), 1).eq(1)]
        m.d.comb += stat["timeouts"].eq(Cat(
            *[(base[l] != snext[l]) & (tcnt[l] == self._rto) for l in range(L)]).any()
            & eng_idle & ~ack_start & ~pick)

        # ================= receive parser ==============================
        i = self.i_frame
        n_hdr = ETH_HDR_BYTES + HEADER_BYTES   # bytes captured before the verdict
        hb = Signal(8 * n_hdr)
        rcnt = Signal(5)
        saw_last = Signal()

        def be(start, n):
            return Cat(*[hb.word_select(start + n - 1 - k, 8) for k in range(n)])

        def eth_field(name):
            return be(*ETH_FIELDS[name])

        def atl_field(name):
            off, n = HEADER_FIELDS[name]
            return be(ETH_HDR_BYTES + off, n)

        dst, src, etype = eth_field("dst"), eth_field("src"), eth_field("ethertype")
        vo, wflow, psn = atl_field("vo"), atl_field("flow"), atl_field("psn")
        r_ack, r_sack, r_addr, r_len = (atl_field("ack"), atl_field("sack"), atl_field("addr"),
                                        atl_field("len"))
        rf = Signal(range(max(2, L)))
        match = Signal()
        for l in reversed(range(L)):
            with m.If(wflow == self._ids[l]):
                m.d.comb += [rf.eq(l), match.eq(1)]
        op = vo[:4]
        peer_ok = Value.cast(sel([self.peer_macs[l] for l in range(L)], rf)) == src
        good = (etype == ETHERTYPE) & (dst == self.mac) & (vo[4:] == VERSION) & match & peer_ok
        is_ack = (op == OP_ACK) | (op == OP_NACK)
        is_data = (op == OP_WRITE) | (op == OP_SEM)
        m.d.comb += [ack_f.eq(rf), ack_val.eq(r_ack[:pb]), ack_sack.eq(r_sack)]
        # Verdict of the addressed flow's window (combinational, state fixed
        # until the commit handshake at the end of the frame).
        win_valid = Signal()
        win_ready = Signal()
        for l, win in enumerate(self.windows):
            m.d.comb += [win.i_stream.valid.eq(win_valid & (rf == l)),
                         win.i_stream.payload.eq(psn[:pb]),
                         win.o_stream.ready.eq(win_ready & (rf == l))]
        verdict = sel([w.o_stream.payload for w in self.windows], rf)
        expected = sel([w.expected for w in self.windows], rf)
        sem_pend = [Signal(W, name=f"sem_pend{l}") for l in range(L)]
        sem_ix = [[Signal(range(self._n_sems), name=f"sem_ix{l}_{s}") for s in range(W)]
                  for l in range(L)]
        mem_end = Const(1 << self._mem_bits, self._mem_bits + 2)
        len_ok = (r_len != 0) & (r_len <= PL)
        addr_ok = (r_addr + r_len) <= mem_end
        pay_cnt = Signal(range(PL + 1))
        c_adv = Signal(range(W + 1))
        c_exp = Signal(pb)
        c_k = Signal(range(W + 1))
        do_write = Signal()
        mem_addr = Signal(32)
        with m.FSM(name="rx"):
            with m.State("HDR"):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid):
                    m.d.sync += [hb.word_select(rcnt, 8).eq(i.payload.data), rcnt.eq(rcnt + 1)]
                    with m.If(i.payload.last):
                        # Cannot happen after EthRx (>= 60 bytes): drop and count.
                        m.d.sync += rcnt.eq(0)
                        m.d.comb += stat["rx_errors"].eq(1)
                    with m.Elif(rcnt == n_hdr - 1):
                        m.d.sync += [rcnt.eq(0), saw_last.eq(0)]
                        m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(~good | ~(is_ack | is_data)):
                    m.d.comb += stat["rx_foreign"].eq(1)
                    m.next = "DRAIN"
                with m.Elif(is_ack):
                    with m.If(eng_idle):
                        m.d.comb += ack_start.eq(1)
                        m.next = "DRAIN"
                with m.Else():
                    m.d.comb += win_valid.eq(1)
                    m.d.comb += [stat["rx_accept"].eq(verdict.accept),
                                 stat["rx_dup"].eq(verdict.dup),
                                 stat["rx_outside"].eq(verdict.outside)]
                    m.d.sync += [pay_cnt.eq(0), mem_addr.eq(r_addr)]
                    with m.If(verdict.accept & (op == OP_WRITE)):
                        with m.If(len_ok & addr_ok):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.d.comb += stat["rx_errors"].eq(1)
                            m.next = "COMMIT"
                    with m.Elif(verdict.accept):  # SEM: fires once in order
                        with m.If(r_addr < self._n_sems):
                            for l in range(L):
                                with m.If(rf == l):
                                    m.d.sync += sem_pend[l].bit_select(psn_slot(psn), 1).eq(1)
                                    for s in range(W):
                                        with m.If(psn_slot(psn) == s):
                                            m.d.sync += sem_ix[l][s].eq(r_addr)
                        with m.Else():
                            m.d.comb += stat["rx_errors"].eq(1)
                        m.next = "COMMIT"
                    with m.Else():
                        m.next = "COMMIT"
            with m.State("PAYLOAD"):
                m.d.comb += [
                    win_valid.eq(1),
                    self.o_mem.valid.eq(i.valid),
                    self.o_mem.payload.addr.eq(mem_addr),
                    self.o_mem.payload.data.eq(i.payload.data),
                    i.ready.eq(self.o_mem.ready),
                ]
                with m.If(i.valid & i.ready):
                    m.d.sync += [pay_cnt.eq(pay_cnt + 1), mem_addr.eq(mem_addr + 1)]
                    with m.If(i.payload.last):
                        m.d.sync += saw_last.eq(1)
                    with m.If(pay_cnt == r_len - 1):
                        m.next = "COMMIT"
                    with m.Elif(i.payload.last):
                        # Truncated payload (malformed frame): counted.
                        m.d.comb += stat["rx_errors"].eq(1)
                        m.next = "COMMIT"
            with m.State("COMMIT"):
                m.d.comb += [win_valid.eq(1), win_ready.eq(1)]
                # The ACK becomes due only now, so it carries the updated window.
                m.d.sync += [
                    ack_due.bit_select(rf, 1).eq(1),
                    nack.bit_select(rf, 1).eq(
                        verdict.outside | (verdict.accept & (psn[:pb] != expected))),
                ]
                m.d.sync += [c_adv.eq(verdict.advance), c_exp.eq(expected), c_k.eq(0)]
                with m.If(verdict.advance != 0):
                    m.next = "SEM"
                with m.Elif(saw_last):
                    m.next = "HDR"
                with m.Else():
                    m.next = "DRAIN"
            with m.State("SEM"):
                # Every PSN that became in order: fire its recorded semaphore.
                slot = (c_exp[:sb] + c_k[:sb])[:sb]
                pend = sel(sem_pend, rf).bit_select(slot, 1)
                with m.If(pend):
                    m.d.comb += [self.sem_inc.eq(1),
                                 self.sem_idx.eq(Array([Array(r) for r in sem_ix])[rf][slot])]
                    for l in range(L):
                        with m.If(rf == l):
                            m.d.sync += sem_pend[l].bit_select(slot, 1).eq(0)
                m.d.sync += c_k.eq(c_k + 1)
                with m.If(c_k == c_adv - 1):
                    with m.If(saw_last):
                        m.next = "HDR"
                    with m.Else():
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid & i.payload.last):
                    m.next = "HDR"
        return m
