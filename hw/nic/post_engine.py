"""Post engine of a transport lane: posted messages into their retransmit-buffer slots."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .atl_header import HEADER_BYTES, VERSION, Op, header_bytes
from .lane_common import check_lane, rr_arbiter, sel, slot_addr

__all__ = ["PostEngine", "PostLayout"]

#: One beat of a posted message. ``sem`` and ``addr`` are taken from the first
#: beat: a WRITE carries one payload byte per beat (``last`` on the final
#: one), a SEM is a single beat (``addr`` = semaphore index, ``data`` ignored).
PostLayout = data.StructLayout({"data": 8, "last": 1, "sem": 1, "addr": 32})


class PostEngine(wiring.Component):
    """Copies posted messages into the retransmit buffer and gives them PSNs.

    Round-robin over the flows that have a message waiting and room in their
    window (``next - base < window``): the payload is written into slot
    ``next mod window`` of the flow (one 9-bit word per byte, bit 8 marking
    the last stored byte), then the 16-byte ATL header in front of it (16
    cycles), then ``next`` increments. A WRITE longer than ``payload`` or a
    SEM of more than one beat is cut, the rest dropped, and ``post_errors``
    pulses when its header is written.

    Parameters
    ----------
    flow_ids : tuple of int
        Wire flow id of each local flow (written into the header).
    window : int
        Retransmit slots per flow (power of two).
    payload : int
        Payload bytes per slot.
    psn_bits : int
        PSN width.

    Attributes
    ----------
    i_posts : In(stream.Signature(PostLayout)).array(flows)
        Messages to send, one stream per local flow.
    base : In(psn_bits).array(flows)
        Oldest unacknowledged PSN of each flow (from :class:`AckEngine`).
    next : Out(psn_bits).array(flows)
        Next PSN to give out, per flow.
    buf_we, buf_addr, buf_data : Out
        Write port of the retransmit buffer (``flows x window`` slots of
        ``16 + payload`` 9-bit words).
    flow, psn : Out
        Flow and PSN of the message being stored.
    busy : Out(1)
        A message is being stored.
    post_errors : Out(1)
        Pulse: a message was cut (too long, or a multi-beat SEM).
    """

    def __init__(self, *, flow_ids, window, payload, psn_bits):
        self._ids, self._w, self._pl, pb = check_lane(flow_ids=flow_ids, window=window,
                                                      payload=payload, psn_bits=psn_bits)
        self._psn_bits = pb
        L, W = len(self._ids), self._w
        self._depth = L * W * (HEADER_BYTES + payload)
        super().__init__({
            "i_posts": In(stream.Signature(PostLayout)).array(L),
            "base": In(pb).array(L),
            "next": Out(pb).array(L),
            "buf_we": Out(1),
            "buf_addr": Out(range(self._depth)),
            "buf_data": Out(9),
            "flow": Out(range(max(2, L))),
            "psn": Out(pb),
            "busy": Out(1),
            "post_errors": Out(1),
        })
        #: Slot being written (hidden state, named by :meth:`invariants`).
        self.slot = Signal((W - 1).bit_length())

    def invariants(self):
        """While busy, the slot being written is the free one after ``next`` of its flow."""
        W, pb, L = self._w, self._psn_bits, len(self._ids)
        sb = (W - 1).bit_length()
        out = []
        for l in range(L):
            used = (self.next[l] - self.base[l])[:pb]
            mine = self.busy & (self.flow == l)
            out += [(~mine | ((self.psn == self.next[l]) & (used < W)
                              & (self.slot == self.psn[:sb])), f"post_slot_{l}")]
        out.append((self.flow < L, "post_flow_in_range"))
        return out

    def elaborate(self, platform):
        m = Module()
        L, W, PL, pb = len(self._ids), self._w, self._pl, self._psn_bits
        sb = (W - 1).bit_length()
        lb = max(1, (L - 1).bit_length())
        stride = HEADER_BYTES + PL

        def buf_addr(l, s):
            return slot_addr(l, s, sb=sb, lb=lb, stride=stride, depth=self._depth)

        nxt, base = self.next, self.base
        post_arb = self._arb = rr_arbiter(m, "post_arb", L)
        pf = self.flow
        psem = Signal()
        paddr = Signal(32)
        pcnt = Signal(range(PL + 1))
        pperr = Signal()
        hcnt = Signal(4)
        pslot = self.slot
        ppsn = self.psn
        for l in range(L):
            room = (nxt[l] - base[l])[:pb] < W
            m.d.comb += post_arb.requests[l].eq(self.i_posts[l].valid & room)
        cur_post = sel([p.payload for p in self.i_posts], pf)
        cur_valid = sel([p.valid for p in self.i_posts], pf)
        post_take = Signal()
        for l in range(L):
            m.d.comb += self.i_posts[l].ready.eq(post_take & (pf == l))
        pbeat = cur_valid & post_take
        with m.FSM(name="post") as post_fsm:
            with m.State("IDLE"):
                with m.If(post_arb.valid):
                    m.d.comb += post_arb.advance.eq(1)
                    first = sel([p.payload for p in self.i_posts], post_arb.index)
                    m.d.sync += [pf.eq(post_arb.index), psem.eq(first.sem), paddr.eq(first.addr),
                                 pcnt.eq(0), pperr.eq(0), hcnt.eq(0),
                                 ppsn.eq(sel(nxt, post_arb.index)),
                                 pslot.eq(sel(nxt, post_arb.index)[:sb])]
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
                            self.buf_we.eq(1),
                            self.buf_addr.eq(buf_addr(pf, pslot) + HEADER_BYTES + pcnt),
                            self.buf_data.eq(Cat(cur_post.data, cur_post.last | full)),
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
                # Op codes as plain integers: constants keep their natural width.
                op = Mux(psem, Op.SEM.value, Op.WRITE.value)
                length = Signal(16)
                psn16 = Signal(16)
                m.d.comb += [length.eq(Mux(psem, 0, pcnt)), psn16.eq(ppsn)]
                hdr = header_bytes(vo=Const(VERSION << 4, 8) | op,
                                   flow=sel([Const(i, 8) for i in self._ids], pf),
                                   psn=psn16, addr=paddr, len=length)
                m.d.comb += [
                    self.buf_we.eq(1),
                    self.buf_addr.eq(buf_addr(pf, pslot) + hcnt),
                    self.buf_data.eq(Cat(hdr.word_select(hcnt, 8),
                                         psem & (hcnt == HEADER_BYTES - 1))),
                ]
                m.d.sync += hcnt.eq(hcnt + 1)
                with m.If(hcnt == HEADER_BYTES - 1):
                    m.d.comb += self.post_errors.eq(pperr)
                    for l in range(L):
                        with m.If(pf == l):
                            m.d.sync += nxt[l].eq(nxt[l] + 1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~post_fsm.ongoing("IDLE"))
        return m
