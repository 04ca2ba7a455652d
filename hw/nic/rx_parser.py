"""Receive parser of a transport lane: header checks, placement by offset, semaphores."""
from amaranth.hdl import Array, Cat, Const, Module, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int

from .atl_header import (ETH_FIELDS, ETH_HDR_BYTES, ETHERTYPE, HEADER_BYTES, HEADER_FIELDS, Op,
                         SACK_BITS, VERSION)
from .eth import ByteLayout
from .lane_common import check_lane, sel
from .window import verdict_layout

__all__ = ["RxParser", "mem_layout", "RX_STATS"]

# Op codes as plain integers: the constants keep their natural width in the
# generated Verilog (an ``Op`` member would be cast to 4 bits).
OP_WRITE, OP_SEM, OP_ACK, OP_NACK = (Op.WRITE.value, Op.SEM.value, Op.ACK.value,
                                     Op.NACK.value)

#: Stat pulses of the receive parser.
RX_STATS = ("rx_accept", "rx_dup", "rx_outside", "rx_foreign", "rx_errors")


def mem_layout(mem_bits):
    """Byte write into the local memory: ``addr`` (``mem_bits``) and ``data``."""
    return data.StructLayout({"addr": mem_bits, "data": 8})


class RxParser(wiring.Component):
    """Receives the frames of one port: checks, window verdicts, payload placement.

    Captures the Ethernet and ATL headers (30 bytes), checks EtherType,
    destination, version, flow id and the flow's peer MAC (else
    ``rx_foreign``). An ACK/NACK is handed to the ACK engine (``ack_start``,
    waiting for ``ack_idle``). For data it asks the flow's receive window
    for a verdict (``win_valid`` held, the window's state unchanged), places
    an accepted WRITE's payload at ``addr + i`` on ``o_mem`` (bad length or
    range: ``rx_errors``, not placed, still acknowledged), records an
    accepted SEM in a per-slot pending bit, and only at the end of the frame
    commits the window (``win_ready``), makes the flow's ACK due
    (``ack_due``, with ``nack`` if the packet was out of order or outside)
    and walks the PSNs that became in order, firing their pending semaphores
    (``sem_inc``). Committing after the payload keeps "a semaphore fires only
    after every earlier WRITE of its flow has landed" true.

    Parameters
    ----------
    flow_ids : tuple of int
        Wire flow id of each local flow.
    window, payload, mem_bits, n_sems, psn_bits : int
        As for :class:`~hw.nic.transport.Lane`.

    Attributes
    ----------
    i_frame : In(stream.Signature(ByteLayout))
        Good frames without FCS, from :class:`EthRx`.
    o_mem : Out(stream.Signature(mem_layout(mem_bits)))
        Payload bytes placed by offset.
    mac : In(48)
        Own MAC.
    peer_macs : In(data.ArrayLayout(48, flows))
        Peer MAC of each local flow.
    flow : Out
        Local flow of the frame being parsed.
    win_valid, win_psn : Out
        Verdict request to the window of ``flow`` (held until ``win_ready``).
    win_ready : Out(1)
        Commit the verdict (the window's handshake).
    verdict, expected : In
        That window's verdict and ``expected``.
    ack_idle : In(1)
        The ACK engine is ready.
    ack_start, ack_ack, ack_sack : Out
        An ACK/NACK of ``flow`` for the ACK engine.
    ack_due, nack : Out(1)
        Pulse: an ACK (a NACK if ``nack``) of ``flow`` is now due.
    sem_inc, sem_idx : Out
        Pulse: increment semaphore ``sem_idx``.
    rx_accept, rx_dup, rx_outside, rx_foreign, rx_errors : Out(1)
        Stat pulses.
    """

    def __init__(self, *, flow_ids, window, payload, mem_bits, n_sems, psn_bits):
        self._ids, self._w, self._pl, pb = check_lane(flow_ids=flow_ids, window=window,
                                                      payload=payload, psn_bits=psn_bits)
        self._psn_bits = pb
        self._mem_bits = check_int("mem_bits", mem_bits, min=1, max=32)
        self._n_sems = check_int("n_sems", n_sems, min=1, max=256)
        L = len(self._ids)
        super().__init__({
            "i_frame": In(stream.Signature(ByteLayout)),
            "o_mem": Out(stream.Signature(mem_layout(mem_bits))),
            "mac": In(48),
            "peer_macs": In(data.ArrayLayout(48, L)),
            "flow": Out(range(max(2, L))),
            "win_valid": Out(1),
            "win_psn": Out(pb),
            "win_ready": Out(1),
            "verdict": In(verdict_layout(pb)),
            "expected": In(pb),
            "ack_idle": In(1),
            "ack_start": Out(1),
            "ack_ack": Out(pb),
            "ack_sack": Out(SACK_BITS),
            "ack_due": Out(1),
            "nack": Out(1),
            "sem_inc": Out(1),
            "sem_idx": Out(range(max(2, n_sems))),
            **{name: Out(1) for name in RX_STATS},
        })

    def elaborate(self, platform):
        m = Module()
        L, W, PL, pb = len(self._ids), self._w, self._pl, self._psn_bits
        sb = (W - 1).bit_length()

        def psn_slot(p):
            return p[:sb]

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
        m.d.comb += [self.flow.eq(rf), self.ack_ack.eq(r_ack[:pb]), self.ack_sack.eq(r_sack),
                     self.win_psn.eq(psn[:pb])]
        # Verdict of the addressed flow's window (combinational, state fixed
        # until the commit handshake at the end of the frame).
        win_valid = self.win_valid
        win_ready = self.win_ready
        verdict = self.verdict
        expected = self.expected
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
        mem_addr = Signal(32)
        with m.FSM(name="rx"):
            with m.State("HDR"):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid):
                    m.d.sync += [hb.word_select(rcnt, 8).eq(i.payload.data), rcnt.eq(rcnt + 1)]
                    with m.If(i.payload.last):
                        # Cannot happen after EthRx (>= 60 bytes): drop and count.
                        m.d.sync += rcnt.eq(0)
                        m.d.comb += self.rx_errors.eq(1)
                    with m.Elif(rcnt == n_hdr - 1):
                        m.d.sync += [rcnt.eq(0), saw_last.eq(0)]
                        m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(~good | ~(is_ack | is_data)):
                    m.d.comb += self.rx_foreign.eq(1)
                    m.next = "DRAIN"
                with m.Elif(is_ack):
                    with m.If(self.ack_idle):
                        m.d.comb += self.ack_start.eq(1)
                        m.next = "DRAIN"
                with m.Else():
                    m.d.comb += win_valid.eq(1)
                    m.d.comb += [self.rx_accept.eq(verdict.accept),
                                 self.rx_dup.eq(verdict.dup),
                                 self.rx_outside.eq(verdict.outside)]
                    m.d.sync += [pay_cnt.eq(0), mem_addr.eq(r_addr)]
                    with m.If(verdict.accept & (op == OP_WRITE)):
                        with m.If(len_ok & addr_ok):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.d.comb += self.rx_errors.eq(1)
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
                            m.d.comb += self.rx_errors.eq(1)
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
                        m.d.comb += self.rx_errors.eq(1)
                        m.next = "COMMIT"
            with m.State("COMMIT"):
                m.d.comb += [win_valid.eq(1), win_ready.eq(1)]
                # The ACK becomes due only now, so it carries the updated window.
                m.d.comb += [
                    self.ack_due.eq(1),
                    self.nack.eq(verdict.outside | (verdict.accept & (psn[:pb] != expected))),
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
