"""NIC bridge: the cluster NoC (word writes) <-> the ATL NIC (byte posts, byte writes, semaphores).

Transmit (NoC -> NIC). A word write that reaches the NIC's NoC node (an
``{addr, strb, data}`` packet, ``addr`` = node id above ``node_shift``, byte
offset below) becomes one ATL message:

* offset bit ``node_shift - 1`` clear: a WRITE of the strobed bytes to the
  peer's memory at byte offset ``addr[:node_shift - 1]`` (one message per
  contiguous run of strobed bytes, one post beat per byte). With
  ``coalesce > word_bits / 8``, full words at consecutive addresses join one
  message of up to ``coalesce`` bytes: the last byte of a word is held until
  the next word arrives (or ``coalesce_wait`` cycles pass) to decide whether
  it ends the message;
* offset bit ``node_shift - 1`` set (the *doorbell* window): a SEM post that
  increments the peer NIC's semaphore ``addr[lw:node_shift - 1]`` (the word
  index; ``lw = log2(word_bits / 8)``), data ignored.

Receive (NIC -> NoC). The peer's memory offset space is
``| node : mem_bits - sram_bits | byte : sram_bits |``: NIC byte writes are
gathered into words (byte strobes) and sent as NoC word writes to node
``node``, SRAM byte address ``byte``. A NIC semaphore ``k`` that counts up
becomes a NoC *semaphore packet* to node ``k // node_sems`` for its command
processor's semaphore ``sem_base + k % node_sems`` (address bit
``node_shift - 1`` set, word index = semaphore id, no byte strobes). Before a
semaphore packet leaves, every byte the NIC delivered earlier has left as a
word write on the same in-order path, so a tile that waits on the semaphore
sees the data.

With ``flows > 1`` the NIC flow of a request is ``addr[flow_shift:]`` (the
bridge's ``o_flow``, stable with each post beat; a coalesced message never
mixes flows). ``sem_nodes`` maps a semaphore's node index to the node field of
its NoC address (the chip's ``cluster << 4 | tile``).

Bad requests (doorbell index ``>= nic_sems``, a WRITE offset outside the
NIC memory space, a flow ``>= flows``, a received byte for a node
``>= n_nodes``) are dropped and counted; the bridge keeps working.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, check_pow2, saturating_add

from .transport import PostLayout, mem_layout

__all__ = ["NicBridge", "bridge_packet_layout"]


def bridge_packet_layout(addr_width, word_bits):
    """One NoC word write ``{addr, strb, data}`` (the cluster's packet layout)."""
    return data.StructLayout({"addr": addr_width, "strb": word_bits // 8, "data": word_bits})


class NicBridge(wiring.Component):
    """Word writes on the NoC to and from the byte-oriented ATL NIC.

    Parameters
    ----------
    word_bits : int
        NoC word width (power of two, 16..1024).
    addr_width : int
        NoC byte-address width.
    node_shift : int
        Node id position in NoC addresses; bit ``node_shift - 1`` selects the
        semaphore (doorbell) window.
    sram_bits : int
        Bytes per node in the NIC memory space, as a power of two (``<= node_shift - 1``).
    n_nodes : int
        NoC nodes reachable through the NIC memory space (``0 .. n_nodes - 1``).
    nic_sems : int
        Semaphores of the NIC.
    node_sems : int
        NIC semaphores per node (power of two): NIC semaphore ``k`` increments
        semaphore ``sem_base + k % node_sems`` of node ``k // node_sems``.
    sem_base : int
        First command-processor semaphore reachable from the NIC.
    coalesce : int
        Longest WRITE message in bytes (a multiple of the word bytes, at most the
        NIC's ``payload``); the word size turns coalescing off.
    coalesce_wait : int
        Cycles the last byte of a word waits for a following word.
    flows : int
        NIC flows reachable (``o_flow``); 1: the flow field is ignored.
    flow_shift : int
        Position of the flow field in request addresses (above the node id).
    sem_nodes : tuple of int or None
        Node field of semaphore node ``i``'s NoC address (default ``i``).

    Attributes
    ----------
    i_noc : In(stream.Signature(bridge_packet_layout))
        Word writes addressed to the NIC node (transmit).
    o_post : Out(stream.Signature(PostLayout))
        Posts to the NIC flow ``o_flow``.
    o_flow : Out(range(flows))
        Flow of the ``o_post`` beat.
    i_mem : In(stream.Signature(mem_layout(mem_bits)))
        The NIC's received bytes (``Nic.o_mem``).
    sems : In(data.ArrayLayout(32, nic_sems))
        The NIC's semaphore values (``Nic.sems``).
    o_noc : Out(stream.Signature(bridge_packet_layout))
        Word writes and semaphore packets to local nodes (receive).
    tx_bytes, rx_bytes : Out(32)
        WRITE payload bytes posted / received bytes forwarded (saturating).
    tx_errors, rx_errors : Out(16)
        Dropped bad requests per direction (saturating).
    """

    def __init__(self, *, word_bits=128, addr_width=32, node_shift=24, sram_bits=16, n_nodes=2,
                 nic_sems=4, node_sems=4, sem_base=8, coalesce=None, coalesce_wait=8, flows=1,
                 flow_shift=None, sem_nodes=None):
        self.word_bits = check_pow2("word_bits", word_bits, min=16, max=1024)
        self.addr_width = check_int("addr_width", addr_width, min=8, max=64)
        lw = (word_bits // 8 - 1).bit_length()
        # Room below the doorbell bit for a word index of a 5-bit semaphore id.
        self.node_shift = check_int("node_shift", node_shift, min=lw + 6, max=addr_width - 1)
        self.sram_bits = check_int("sram_bits", sram_bits, min=(word_bits // 8 - 1).bit_length(),
                                   max=node_shift - 1)
        self.n_nodes = check_int("n_nodes", n_nodes, min=1, max=1 << (addr_width - node_shift))
        self.nic_sems = check_int("nic_sems", nic_sems, min=1, max=256)
        self.node_sems = check_pow2("node_sems", node_sems, min=1, max=32)
        self.sem_base = check_int("sem_base", sem_base, min=0, max=31)
        B = word_bits // 8
        self.coalesce = check_int("coalesce", B if coalesce is None else coalesce, min=B,
                                  max=4000)
        if self.coalesce % B:
            raise ValueError(f"coalesce must be a multiple of the word bytes ({B}), "
                             f"not {coalesce}")
        self.coalesce_wait = check_int("coalesce_wait", coalesce_wait, min=1, max=1 << 16)
        if nic_sems > n_nodes * node_sems:
            raise ValueError(f"nic_sems must be <= n_nodes * node_sems ({n_nodes * node_sems}), "
                             f"not {nic_sems}")
        self.flows = check_int("flows", flows, min=1, max=64)
        fbits = (flows - 1).bit_length()
        self.flow_shift = check_int("flow_shift", node_shift + 4 if flow_shift is None
                                    else flow_shift, min=node_shift,
                                    max=addr_width - fbits)
        n_sem_nodes = -(-nic_sems // node_sems)
        sem_nodes = tuple(range(n_sem_nodes)) if sem_nodes is None else tuple(sem_nodes)
        if len(sem_nodes) < n_sem_nodes or not all(
                isinstance(v, int) and 0 <= v < 1 << min(8, addr_width - node_shift)
                for v in sem_nodes):
            raise ValueError(f"sem_nodes must give {n_sem_nodes} node ids that fit the "
                             f"address, not {sem_nodes!r}")
        self.sem_nodes = sem_nodes[:n_sem_nodes]
        #: NIC memory address width this bridge expects (``Nic(mem_bits=...)``).
        self.mem_bits = sram_bits + max(0, (n_nodes - 1).bit_length())
        if self.mem_bits > 32:
            raise ValueError(f"sram_bits must leave room for the node id in 32 bits, "
                             f"not {sram_bits}")
        self.pkt = bridge_packet_layout(addr_width, word_bits)
        super().__init__({
            "i_noc": In(stream.Signature(self.pkt)),
            "o_post": Out(stream.Signature(PostLayout)),
            # At least one bit (a zero-width port does not lint); 0 with one flow.
            "o_flow": Out(max(1, (flows - 1).bit_length())),
            "i_mem": In(stream.Signature(mem_layout(self.mem_bits))),
            "sems": In(data.ArrayLayout(32, nic_sems)),
            "o_noc": Out(stream.Signature(self.pkt)),
            "tx_bytes": Out(32),
            "rx_bytes": Out(32),
            "tx_errors": Out(16),
            "rx_errors": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        self._transmit(m)
        self._receive(m)
        return m

    # --- NoC -> NIC -------------------------------------------------------
    def _transmit(self, m):
        B = self.word_bits // 8
        lw = (B - 1).bit_length()
        ns = self.node_shift
        i, o = self.i_noc, self.o_post
        held = Signal(self.pkt)
        busy = Signal()
        idx = Signal(range(B))
        offset = held.addr[:ns - 1]
        is_bell = held.addr[ns - 1]
        bell = held.addr[lw:ns - 1]
        if self.mem_bits < ns - 1:
            off_bad = offset[self.mem_bits:] != 0
        else:
            off_bad = Const(0)
        bad = Mux(is_bell, bell >= self.nic_sems, off_bad)
        if self.flows == 1:
            m.d.comb += self.o_flow.eq(0)
        else:
            fb = (self.flows - 1).bit_length()
            flow = held.addr[self.flow_shift:self.flow_shift + fb]
            m.d.comb += self.o_flow.eq(flow)
            if self.flows < 1 << fb:
                bad = bad | (flow >= self.flows)
        strb_here = held.strb.bit_select(idx, 1)
        strb_next = Cat(held.strb[1:], Const(0, 1)).bit_select(idx, 1)   # 0 past the last byte
        finishing = Signal()
        # Coalescing: `msg` bytes of the open message precede this word; the last
        # byte of a full word that may be extended waits for `decided`, then
        # carries last = ~join.
        msg = Signal(range(self.coalesce + 1))
        decided = Signal()
        join = Signal()
        wait = Signal(range(self.coalesce_wait + 1))
        nxt = i.payload
        extend = Signal()
        m.d.comb += extend.eq((self.coalesce > B) & held.strb.all() & ~is_bell & (idx == B - 1)
                              & (msg + 2 * B <= self.coalesce))
        joinable = Signal()
        m.d.comb += joinable.eq(i.valid & nxt.strb.all() & (nxt.addr == held.addr + B)
                                & ~nxt.addr[ns - 1]
                                & ((nxt.addr[:ns - 1] >> self.mem_bits) == 0))
        # The next word's beat is stable until taken, so `joinable` is too:
        # deciding in the cycle it appears keeps `last` stable (and costs no cycle).
        join_now = Signal()
        m.d.comb += join_now.eq(Mux(decided, join, joinable))
        m.d.comb += [
            o.payload.data.eq(Mux(is_bell, 0, held.data.word_select(idx, 8))),
            o.payload.sem.eq(is_bell),
            o.payload.addr.eq(Mux(is_bell, bell, offset + idx)),
            o.payload.last.eq(is_bell | Mux(extend, ~join_now, (idx == B - 1) | ~strb_next)),
        ]
        with m.If(busy):
            with m.If(bad):
                m.d.comb += finishing.eq(1)
                saturating_add(m, self.tx_errors)
            with m.Elif(is_bell):
                m.d.comb += [o.valid.eq(1), finishing.eq(o.ready)]
            with m.Elif(extend & ~decided & ~i.valid):
                # Hold the word's last byte until the next word decides `last`.
                with m.If(wait == self.coalesce_wait - 1):
                    m.d.sync += [decided.eq(1), join.eq(0), wait.eq(0)]
                with m.Else():
                    m.d.sync += wait.eq(wait + 1)
            with m.Else():
                with m.If(extend & ~decided):
                    m.d.sync += [decided.eq(1), join.eq(joinable), wait.eq(0)]
                m.d.comb += o.valid.eq(strb_here)
                advance = ~strb_here | o.ready
                with m.If(advance):
                    m.d.sync += idx.eq(idx + 1)
                    m.d.comb += finishing.eq(idx == B - 1)
                with m.If(o.valid & o.ready):
                    saturating_add(m, self.tx_bytes)
        joined = Signal()
        m.d.comb += joined.eq(finishing & extend & join_now)
        # A new word may enter in the cycle the previous one finishes.
        m.d.comb += i.ready.eq(~busy | finishing)
        with m.If(i.valid & i.ready):
            m.d.sync += [held.eq(i.payload), busy.eq(1), idx.eq(0), decided.eq(0),
                         msg.eq(Mux(joined, msg + B, 0))]
        with m.Elif(finishing):
            m.d.sync += [busy.eq(0), decided.eq(0), msg.eq(0)]

    # --- NIC -> NoC -------------------------------------------------------
    def _sem_ready(self, acc, out_free):
        """A semaphore packet may leave: no gathered bytes wait and the output is free."""
        return ~acc & out_free

    def _receive(self, m):
        B = self.word_bits // 8
        lw = (B - 1).bit_length()
        ns, sb, mb = self.node_shift, self.sram_bits, self.mem_bits
        i, o = self.i_mem, self.o_noc
        K = self.nic_sems

        # Semaphores: 8-bit shadows of the NIC counters; the NIC increments a
        # counter at most once per cycle per lane and the bridge drains one
        # per few cycles, so the difference never reaches 256.
        shadow = [Signal(8, name=f"sem_seen{k}") for k in range(K)]
        pend = Cat(*[self.sems[k][:8] != shadow[k] for k in range(K)])
        any_pend = pend.any()
        pk = Signal(range(max(2, K)))
        for k in reversed(range(K)):
            with m.If(pend[k]):
                m.d.comb += pk.eq(k)

        acc = Signal()
        acc_word = Signal(max(1, mb - lw))
        acc_strb = Signal(B)
        acc_data = Signal(self.word_bits)
        in_word = i.payload.addr[lw:]
        in_byte = i.payload.addr[:lw] if lw else Const(0, 1)
        in_node = i.payload.addr[sb:] if mb > sb else Const(0, 1)
        in_bad = Signal()
        m.d.comb += in_bad.eq(in_node >= self.n_nodes)
        full = acc_strb.all()
        same = acc & (acc_word == in_word)
        out_free = ~o.valid | o.ready
        need_flush = acc & (full | any_pend | ~i.valid | (i.valid & ~in_bad & ~same))
        sem_go = Signal()
        m.d.comb += sem_go.eq(any_pend & self._sem_ready(acc, out_free))
        flush = Signal()
        m.d.comb += flush.eq(need_flush & out_free & ~sem_go)
        take = Signal()
        m.d.comb += [
            take.eq(i.valid & ~any_pend & (in_bad | ~acc | (same & ~full) | flush)),
            i.ready.eq(take),
        ]
        byte_strb = Signal(B)
        m.d.comb += byte_strb.eq(1 << in_byte)
        byte_data = Signal(self.word_bits)
        m.d.comb += byte_data.eq(i.payload.data << (in_byte * 8))
        byte_mask = Signal(self.word_bits)
        m.d.comb += byte_mask.eq(Const(0xFF, self.word_bits) << (in_byte * 8))

        with m.If(take):
            with m.If(in_bad):
                saturating_add(m, self.rx_errors)
            with m.Else():
                saturating_add(m, self.rx_bytes)
                with m.If(~acc | flush):
                    m.d.sync += [acc.eq(1), acc_word.eq(in_word), acc_strb.eq(byte_strb),
                                 acc_data.eq(byte_data)]
                with m.Else():
                    m.d.sync += [acc_strb.eq(acc_strb | byte_strb),
                                 acc_data.eq((acc_data & ~byte_mask) | byte_data)]
        with m.If(flush & ~(take & ~in_bad)):
            m.d.sync += acc.eq(0)

        # Output register: word writes, then (when drained) semaphore packets.
        byte_addr = Signal(mb)
        m.d.comb += byte_addr.eq(acc_word << lw)
        node = byte_addr[sb:] if mb > sb else Const(0, 1)
        sem_node = Signal(8)
        sem_id = Signal(5)
        nsb = (self.node_sems - 1).bit_length()
        m.d.comb += sem_id.eq(self.sem_base + (pk & (self.node_sems - 1)))
        with m.Switch(pk >> nsb):
            for i, v in enumerate(self.sem_nodes):
                with m.Case(i):
                    m.d.comb += sem_node.eq(v)
        # sem_go and flush exclude each other (sem_go needs an empty gatherer).
        with m.If(sem_go):
            m.d.sync += [o.valid.eq(1),
                         o.payload.addr.eq(Cat(Const(0, lw), sem_id, Const(0, ns - 1 - lw - 5),
                                               Const(1, 1), sem_node)),
                         o.payload.strb.eq(0),
                         o.payload.data.eq(0)]
            for k in range(K):
                with m.If(pk == k):
                    m.d.sync += shadow[k].eq(shadow[k] + 1)
        with m.Elif(flush):
            m.d.sync += [o.valid.eq(1),
                         o.payload.addr.eq(Cat(byte_addr[:sb], Const(0, ns - sb), node)),
                         o.payload.strb.eq(acc_strb),
                         o.payload.data.eq(acc_data)]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
