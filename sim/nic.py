"""Reference model of the ATL NIC: Ethernet framing, the ATL transport, a lossy link.

Everything here is pure Python and is the golden model for ``hw/nic``:

* :func:`crc32_step`, :func:`eth_frame`, :func:`eth_check` mirror
  :class:`hw.nic.EthTx` / :class:`hw.nic.EthRx` byte for byte (padding to
  60 bytes, FCS = IEEE CRC-32 sent least-significant byte first).
* :class:`Header` packs/unpacks the 16-byte ATL header (``docs/nic.md``)
  with the byte offsets of the hardware's layout
  (:data:`hw.nic.atl_header.HeaderLayout`); the op codes, EtherType and
  Ethernet constants are imported from ``hw/nic``, never restated here.
* :class:`Endpoint` is one NIC: per-flow sender (retransmit buffer of
  ``window`` slots, cumulative ACK + SACK bitmap, ordinal-based loss
  detection, retransmission timer) and receiver (out-of-order placement by
  offset into a local memory, exactly-once apply, semaphores applied in
  PSN order).
* :class:`Link` drops, duplicates, reorders and corrupts frames with a
  fixed-seed RNG; :class:`Network` runs endpoints joined by links as a
  discrete-event simulation whose time unit is one byte on the 8-bit
  MAC-client interface (one clock cycle of the RTL).
"""
import heapq
import random
import struct
import zlib

from hw.nic.atl_header import (ETH_FIELDS, ETH_HDR_BYTES, ETHERTYPE, HEADER_BYTES, HEADER_FIELDS,
                               PSN_BITS, SACK_BITS, VERSION, Op, VerOpLayout)
from hw.nic.eth import CRC_POLY_REFLECTED, CRC_RESIDUE, MIN_FRAME

__all__ = [
    "ETHERTYPE", "OP_WRITE", "OP_SEM", "OP_ACK", "OP_NACK", "HEADER_BYTES", "PSN_BITS",
    "MIN_FRAME", "crc32_step", "fcs", "eth_frame", "eth_check", "Header", "Endpoint",
    "Link", "Network", "goodput",
]

OP_WRITE, OP_SEM, OP_ACK, OP_NACK = Op.WRITE.value, Op.SEM.value, Op.ACK.value, Op.NACK.value
PSN_MOD = 1 << PSN_BITS
ETH_HDR = ETH_HDR_BYTES
# Header byte 0: where the version and op code sit (from the hardware's layout).
_VER_SHIFT = VerOpLayout["ver"].offset
_OP_MASK = (1 << VerOpLayout["op"].width) - 1
_ETYPE_OFF, _ETYPE_LEN = ETH_FIELDS["ethertype"]


def crc32_step(crc, byte):
    """One byte of the reflected CRC-32 register (no final XOR), as the RTL does it."""
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ (CRC_POLY_REFLECTED if crc & 1 else 0)
    return crc


def fcs(data):
    """Ethernet FCS of ``data`` as an int (equals ``zlib.crc32``)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = crc32_step(crc, b)
    return crc ^ 0xFFFFFFFF


def eth_frame(dst, src, payload, *, ethertype=ETHERTYPE):
    """Bytes :class:`hw.nic.EthTx` emits for one frame: header, payload, pad to 60, FCS."""
    body = dst + src + struct.pack(">H", ethertype) + bytes(payload)
    body += bytes(max(0, 60 - len(body)))
    return body + struct.pack("<I", zlib.crc32(body))


def eth_check(frame, *, max_frame=1518):
    """What :class:`hw.nic.EthRx` does with ``frame`` (FCS included).

    Returns ``("ok", frame_without_fcs)``, ``("runt", None)``,
    ``("oversize", None)`` or ``("fcs", None)``.
    """
    if len(frame) < MIN_FRAME:
        return "runt", None
    if len(frame) > max_frame:
        return "oversize", None
    crc = 0xFFFFFFFF
    for b in frame:
        crc = crc32_step(crc, b)
    if crc != CRC_RESIDUE:
        return "fcs", None
    return "ok", bytes(frame[:-4])


class Header:
    """The 16-byte ATL header that follows the Ethernet header (big-endian fields).

    The field offsets and widths are those of
    :data:`hw.nic.atl_header.HeaderLayout` (``HEADER_FIELDS``): ``vo``
    (version in the high nibble, op code in the low one), ``flow``, ``psn``,
    ``ack``, ``sack``, ``addr``, ``len`` (``length`` here).
    """

    def __init__(self, op, flow, psn=0, ack=0, sack=0, addr=0, length=0):
        self.op, self.flow, self.psn, self.ack = op, flow, psn, ack
        self.sack, self.addr, self.length = sack, addr, length

    def _fields(self):
        return dict(vo=VERSION << _VER_SHIFT | self.op, flow=self.flow, psn=self.psn,
                    ack=self.ack, sack=self.sack, addr=self.addr, len=self.length)

    def pack(self):
        raw = bytearray(HEADER_BYTES)
        for name, value in self._fields().items():
            off, n = HEADER_FIELDS[name]
            raw[off:off + n] = value.to_bytes(n, "big")
        return bytes(raw)

    @classmethod
    def unpack(cls, data):
        raw = bytes(data[:HEADER_BYTES])
        if len(raw) < HEADER_BYTES:
            raise ValueError(f"an ATL header has {HEADER_BYTES} bytes, not {len(raw)}")
        f = {name: int.from_bytes(raw[off:off + n], "big")
             for name, (off, n) in HEADER_FIELDS.items()}
        if f["vo"] >> _VER_SHIFT != VERSION:
            return None
        return cls(f["vo"] & _OP_MASK, f["flow"], f["psn"], f["ack"], f["sack"], f["addr"],
                   f["len"])

    def __repr__(self):
        return (f"Header(op={self.op}, flow={self.flow}, psn={self.psn}, ack={self.ack}, "
                f"sack={self.sack:#x}, addr={self.addr}, len={self.length})")


def psn_diff(a, b):
    """``a - b`` modulo the PSN space, as a signed distance in [-2**15, 2**15)."""
    d = (a - b) % PSN_MOD
    return d - PSN_MOD if d >= PSN_MOD // 2 else d


class _Slot:
    __slots__ = ("psn", "op", "addr", "data", "ordinal", "sacked", "rtx", "msg_id")

    def __init__(self, psn, op, addr, data, msg_id):
        self.psn, self.op, self.addr, self.data, self.msg_id = psn, op, addr, data, msg_id
        self.ordinal = -1
        self.sacked = False
        self.rtx = False


class _TxFlow:
    def __init__(self):
        self.base = 0          # oldest unacknowledged PSN
        self.next = 0          # next new PSN
        self.slots = {}        # psn -> _Slot, the retransmit buffer
        self.queue = []        # messages not yet given a PSN
        self.ordinal = 0       # transmission counter
        self.acked_ord = -1    # highest ordinal known delivered
        self.timer = None      # time the retransmission timer was (re)started
        self.gbn_next = None   # go-back-N resend pointer


class _RxFlow:
    def __init__(self, window):
        self.expected = 0      # next in-order PSN
        self.expected_abs = 0  # same, not wrapped (for bookkeeping only)
        self.got = set()       # PSNs in (expected, expected + window) already applied
        self.sems = {}         # PSN -> semaphore index, applied when in order
        self.ack_due = False
        self.nack = False


class Endpoint:
    """One ATL NIC: per-flow reliable sender and receiver over Ethernet.

    Parameters
    ----------
    mac : bytes
        Own 6-byte MAC address.
    peers : dict
        ``flow -> peer mac``: flow ``f`` of this NIC talks to flow ``f`` of the peer.
    window : int
        Retransmit-buffer slots per flow (outstanding PSNs), 1..32.
    payload : int
        Maximum WRITE payload bytes per packet.
    mem_size : int
        Bytes of local memory that WRITEs land in.
    n_sems : int
        Number of 32-bit semaphores.
    rto : int
        Retransmission timeout in cycles.
    mode : str
        ``"sack"`` (selective repeat, the ATL protocol) or ``"gbn"``
        (go-back-N, for comparison only).
    reorder_thresh : int
        A hole is declared lost once a packet sent ``reorder_thresh`` or
        more transmissions after it is acknowledged.
    """

    def __init__(self, mac, peers, *, window=32, payload=256, mem_size=1 << 16, n_sems=16,
                 rto=4000, mode="sack", reorder_thresh=2):
        if not 1 <= window <= SACK_BITS:
            raise ValueError(f"window must be in 1..{SACK_BITS}, not {window}")
        if mode not in ("sack", "gbn"):
            raise ValueError(f"mode must be 'sack' or 'gbn', not {mode!r}")
        self.mac, self.peers, self.window, self.payload = mac, dict(peers), window, payload
        self.rto, self.mode, self.reorder_thresh = rto, mode, reorder_thresh
        self.mem = bytearray(mem_size)
        self.sems = [0] * n_sems
        self.tx = {f: _TxFlow() for f in self.peers}
        self.rx = {f: _RxFlow(window) for f in self.peers}
        self.applied = {}      # (flow, absolute psn) -> times applied
        self.stats = dict(tx_data=0, tx_rtx=0, tx_ack=0, rx_ok=0, rx_fcs=0, rx_runt=0,
                          rx_oversize=0, rx_dup=0, rx_outside=0, rx_foreign=0, timeouts=0,
                          delivered_bytes=0)
        self._rr = 0
        self._msg = 0

    # -- application side -------------------------------------------------
    def post_write(self, flow, addr, data):
        """Queue a remote write of ``data`` (<= ``payload`` bytes) at ``addr`` of the peer."""
        if not 0 < len(data) <= self.payload:
            raise ValueError(f"write of {len(data)} bytes; payload is {self.payload}")
        self.tx[flow].queue.append((OP_WRITE, addr, bytes(data)))

    def post_sem(self, flow, index):
        """Queue a remote increment of the peer's semaphore ``index``."""
        self.tx[flow].queue.append((OP_SEM, index, b""))

    def idle(self):
        """No message queued or unacknowledged on any flow."""
        return all(not t.queue and t.base == t.next for t in self.tx.values())

    # -- transmit ----------------------------------------------------------
    def _frame(self, flow, hdr, data=b""):
        return eth_frame(self.peers[flow], self.mac, hdr.pack() + data)

    def _data_frame(self, flow, t, slot, now):
        slot.ordinal = t.ordinal
        t.ordinal += 1
        if t.timer is None:
            t.timer = now
        h = Header(slot.op, flow, psn=slot.psn, addr=slot.addr, length=len(slot.data))
        return self._frame(flow, h, slot.data)

    def next_frame(self, now, can_send=None):
        """The next frame to transmit at time ``now`` or ``None``.

        Priority: ACK/NACK, then retransmissions, then new data; flows are
        served round-robin within each class. ``can_send(peer_mac)`` says
        whether the port towards that peer is free (default: always).
        """
        flows = [f for f in self.peers if can_send is None or can_send(self.peers[f])]
        if not flows:
            return None
        allflows = list(self.peers)
        order = sorted(flows, key=lambda f: (allflows.index(f) - self._rr) % len(allflows))
        for f in order:
            r = self.rx[f]
            if r.ack_due:
                r.ack_due = False
                self.stats["tx_ack"] += 1
                return self._frame(f, Header(OP_NACK if r.nack else OP_ACK, f,
                                             ack=r.expected, sack=self._sack_bits(r)))
        self._timers(now)
        for f in order:
            t = self.tx[f]
            if self.mode == "gbn":
                if t.gbn_next is not None and t.gbn_next != t.next:
                    slot = t.slots[t.gbn_next]
                    t.gbn_next = (t.gbn_next + 1) % PSN_MOD
                    self.stats["tx_rtx"] += 1
                    self._rr = (allflows.index(f) + 1) % len(allflows)
                    return self._data_frame(f, t, slot, now)
                continue
            for slot in self._unacked(t):
                if slot.rtx:
                    slot.rtx = False
                    self.stats["tx_rtx"] += 1
                    self._rr = (allflows.index(f) + 1) % len(allflows)
                    return self._data_frame(f, t, slot, now)
        for f in order:
            t = self.tx[f]
            if t.queue and psn_diff(t.next, t.base) < self.window:
                op, addr, data = t.queue.pop(0)
                slot = _Slot(t.next, op, addr, data, self._msg)
                self._msg += 1
                t.slots[t.next] = slot
                t.next = (t.next + 1) % PSN_MOD
                if t.gbn_next is not None:
                    t.gbn_next = t.next
                self.stats["tx_data"] += 1
                self._rr = (allflows.index(f) + 1) % len(allflows)
                return self._data_frame(f, t, slot, now)
        return None

    def _unacked(self, t):
        p = t.base
        while p != t.next:
            yield t.slots[p]
            p = (p + 1) % PSN_MOD

    def _timers(self, now):
        for t in self.tx.values():
            if t.base == t.next or t.timer is None or now - t.timer < self.rto:
                continue
            self.stats["timeouts"] += 1
            t.timer = now
            if self.mode == "gbn":
                t.gbn_next = t.base
                continue
            for slot in self._unacked(t):
                if not slot.sacked:
                    slot.rtx = True
                    break

    def next_timer(self):
        """Earliest time a retransmission timer may fire, or ``None``."""
        times = [t.timer + self.rto for t in self.tx.values()
                 if t.base != t.next and t.timer is not None]
        return min(times) if times else None

    # -- receive -----------------------------------------------------------
    def receive(self, frame, now):
        """Process one frame arriving from the wire (FCS included)."""
        status, body = eth_check(frame)
        if status != "ok":
            self.stats["rx_" + status] += 1
            return
        self.stats["rx_ok"] += 1
        dst, src = (body[o:o + n] for o, n in (ETH_FIELDS["dst"], ETH_FIELDS["src"]))
        etype = int.from_bytes(body[_ETYPE_OFF:_ETYPE_OFF + _ETYPE_LEN], "big")
        h = Header.unpack(body[ETH_HDR:]) if etype == ETHERTYPE and dst == self.mac else None
        if h is None or h.flow not in self.peers or self.peers[h.flow] != src:
            self.stats["rx_foreign"] += 1
            return
        if h.op in (OP_ACK, OP_NACK):
            self._on_ack(h, now)
        elif h.op in (OP_WRITE, OP_SEM):
            data = body[ETH_HDR + HEADER_BYTES:ETH_HDR + HEADER_BYTES + h.length]
            self._on_data(h, data)
        else:
            self.stats["rx_foreign"] += 1

    def _sack_bits(self, r):
        bits = 0
        for i in range(SACK_BITS):
            if (r.expected + 1 + i) % PSN_MOD in r.got:
                bits |= 1 << i
        return bits

    def _on_data(self, h, data):
        r = self.rx[h.flow]
        d = psn_diff(h.psn, r.expected)
        r.ack_due = True
        r.nack = False
        if d < 0 or (d > 0 and h.psn in r.got):
            self.stats["rx_dup"] += 1
            return
        if d >= self.window or (self.mode == "gbn" and d != 0):
            self.stats["rx_outside"] += 1
            r.nack = True
            return
        key = (h.flow, r.expected_abs + d)
        self.applied[key] = self.applied.get(key, 0) + 1
        if h.op == OP_WRITE:
            self.mem[h.addr:h.addr + h.length] = data
            self.stats["delivered_bytes"] += h.length
        else:
            r.sems[h.psn] = h.addr
        r.got.add(h.psn)
        r.nack = d != 0
        while r.expected in r.got:
            r.got.discard(r.expected)
            sem = r.sems.pop(r.expected, None)
            if sem is not None:
                # Semaphores fire in PSN order: every earlier write has landed.
                self.sems[sem] += 1
            r.expected = (r.expected + 1) % PSN_MOD
            r.expected_abs += 1

    def _on_ack(self, h, now):
        t = self.tx[h.flow]
        adv = psn_diff(h.ack, t.base)
        if adv < 0 or psn_diff(t.next, h.ack) < 0:
            return  # stale or bogus ACK: ignore it entirely
        progress = adv > 0
        while t.base != h.ack:
            slot = t.slots.pop(t.base)
            t.acked_ord = max(t.acked_ord, slot.ordinal)
            t.base = (t.base + 1) % PSN_MOD
        if t.gbn_next is not None and psn_diff(t.gbn_next, t.base) < 0:
            t.gbn_next = t.base
        if self.mode == "sack":
            for i in range(SACK_BITS):
                p = (h.ack + 1 + i) % PSN_MOD
                if h.sack >> i & 1 and psn_diff(p, t.next) < 0:
                    slot = t.slots[p]
                    if not slot.sacked:
                        slot.sacked = True
                        progress = True
                    t.acked_ord = max(t.acked_ord, slot.ordinal)
            # Loss inference: a hole sent well before something delivered is lost.
            for slot in self._unacked(t):
                if not slot.sacked and slot.ordinal + self.reorder_thresh <= t.acked_ord:
                    slot.rtx = True
        if progress:
            t.timer = now if t.base != t.next else None


class Link:
    """One direction of a cable: latency plus random drop/dup/reorder/corrupt.

    Parameters
    ----------
    latency : int
        Cycles from the end of transmission to the end of reception.
    drop, dup, reorder, corrupt : float
        Per-frame probabilities.
    reorder_delay : int
        Extra delay (uniform in ``1..reorder_delay``) of a reordered frame.
    seed : int
        Seed of the link's private RNG.
    """

    def __init__(self, *, latency=200, drop=0.0, dup=0.0, reorder=0.0, corrupt=0.0,
                 reorder_delay=2000, seed=1):
        self.latency, self.drop, self.dup, self.reorder = latency, drop, dup, reorder
        self.corrupt, self.reorder_delay = corrupt, reorder_delay
        self.rng = random.Random(seed)
        self.stats = dict(frames=0, dropped=0, duplicated=0, reordered=0, corrupted=0)

    def deliveries(self, frame, t_end):
        """``[(arrival_time, frame), ...]`` for a frame whose last byte leaves at ``t_end``."""
        rng = self.rng
        self.stats["frames"] += 1
        if rng.random() < self.drop:
            self.stats["dropped"] += 1
            return []
        copies = 2 if rng.random() < self.dup else 1
        self.stats["duplicated"] += copies - 1
        out = []
        for _ in range(copies):
            f = bytearray(frame)
            t = t_end + self.latency
            if rng.random() < self.corrupt:
                i = rng.randrange(len(f) * 8)
                f[i // 8] ^= 1 << (i % 8)
                self.stats["corrupted"] += 1
            if rng.random() < self.reorder:
                t += rng.randint(1, self.reorder_delay)
                self.stats["reordered"] += 1
            out.append((t, bytes(f)))
        return out


class Network:
    """Endpoints joined by point-to-point links; discrete-event, 1 byte per cycle.

    Parameters
    ----------
    endpoints : list of Endpoint
    links : dict
        ``(i, j) -> Link`` for the cable from endpoint ``i`` to ``j`` (a port of each).
    ifg : int
        Idle cycles between frames on one port (the RTL inserts none).
    """

    def __init__(self, endpoints, links, *, ifg=0):
        self.eps, self.links, self.ifg = endpoints, links, ifg
        self.now = 0
        self._events = []
        self._seq = 0
        self._tx_free = {k: 0 for k in links}
        macs = {ep.mac: i for i, ep in enumerate(endpoints)}
        # Which port (link) carries frames from endpoint i to a peer mac.
        self._route = {(i, mac): (i, macs[mac]) for i, ep in enumerate(endpoints)
                       for mac in ep.peers.values()}

    def _push(self, t, kind, *args):
        heapq.heappush(self._events, (t, self._seq, kind, args))
        self._seq += 1

    def _kick(self):
        """Start transmissions on every idle port that has something to send."""
        for i, ep in enumerate(self.eps):
            def can_send(mac, i=i):
                return self._tx_free[self._route[(i, mac)]] <= self.now
            while (frame := ep.next_frame(self.now, can_send)) is not None:
                self._send(self._route[(i, frame[0:6])], frame)

    def _send(self, port, frame):
        start = max(self.now, self._tx_free[port])
        end = start + len(frame)
        self._tx_free[port] = end + self.ifg
        for t, f in self.links[port].deliveries(frame, end):
            self._push(t, "rx", port[1], f)
        self._push(end + self.ifg, "free")

    def run(self, *, until=None, max_time=10**9):
        """Run until every endpoint is idle (or ``until()`` is true); return the time."""
        self._kick()
        while True:
            if until is not None and until():
                return self.now
            if until is None and all(ep.idle() for ep in self.eps) and not any(
                    k == "rx" for _, _, k, _ in self._events):
                return self.now
            # A timer already due waits for its port's next "free" event.
            timers = [t for ep in self.eps if (t := ep.next_timer()) is not None and t > self.now]
            t_next = min([e[0] for e in self._events[:1]] + timers, default=None)
            if t_next is None:
                return self.now
            if t_next > max_time:
                raise RuntimeError(f"network did not settle by t={max_time}")
            self.now = max(self.now, t_next)
            while self._events and self._events[0][0] <= self.now:
                _, _, kind, args = heapq.heappop(self._events)
                if kind == "rx":
                    self.eps[args[0]].receive(args[1], self.now)
            self._kick()


def goodput(*, loss, n_packets=2000, payload=256, window=32, latency=200, rto=None,
            mode="sack", seed=1, reorder=0.0, dup=0.0):
    """Goodput of one flow A->B over a link dropping each frame with ``loss``.

    Returns ``(fraction_of_line_rate, stats)``: unique payload bytes delivered
    per cycle (line rate = 1 byte per cycle). Loss applies to both the data
    and the ACK direction. The loss-free ceiling is
    ``payload / (payload + 34)`` (Ethernet header 14, ATL header 16, FCS 4).
    """
    a_mac, b_mac = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    overhead = ETH_HDR_BYTES + HEADER_BYTES + 4   # Ethernet + ATL headers, FCS
    rtt = 2 * latency + 2 * (payload + overhead) + 64
    rto = rto or 4 * rtt
    a = Endpoint(a_mac, {0: b_mac}, window=window, payload=payload, rto=rto, mode=mode,
                 mem_size=n_packets * payload)
    b = Endpoint(b_mac, {0: a_mac}, window=window, payload=payload, rto=rto, mode=mode,
                 mem_size=n_packets * payload)
    links = {(0, 1): Link(latency=latency, drop=loss, reorder=reorder, dup=dup, seed=seed),
             (1, 0): Link(latency=latency, drop=loss, seed=seed + 1)}
    rng = random.Random(seed)
    for k in range(n_packets):
        a.post_write(0, k * payload, bytes(rng.getrandbits(8) for _ in range(payload)))
    net = Network([a, b], links)
    target = n_packets * payload
    end = net.run(until=lambda: b.stats["delivered_bytes"] >= target)
    return target / end, dict(a=a.stats, b=b.stats, time=end, link=links[(0, 1)].stats)


class RxWindowModel:
    """Bit-exact model of :class:`hw.nic.RxWindow` (the receiver rule of :class:`Endpoint`)."""

    def __init__(self, window=32, psn_bits=PSN_BITS):
        self.w, self.n = window, psn_bits
        self.expected = 0
        self.bits = 0  # bit i: PSN expected + i applied

    def step(self, psn):
        """Verdict ``(accept, dup, outside, advance)`` for ``psn``; updates the state."""
        mod = 1 << self.n
        d = (psn - self.expected) % mod
        behind = d >= mod // 2
        in_window = not behind and d < self.w
        seen = in_window and bool(self.bits >> d & 1)
        accept = in_window and not seen
        new = self.bits | (1 << d if accept else 0)
        run = 0
        while run < self.w and new >> run & 1:
            run += 1
        self.bits = new >> run
        self.expected = (self.expected + run) % mod
        return accept, behind or seen, not behind and d >= self.w, run

    @property
    def sack(self):
        return self.bits >> 1
