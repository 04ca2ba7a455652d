"""Golden model of :class:`hw.nic.bridge.NicBridge` (see its docstring for the address map).

Transmit without coalescing is a pure function of the word writes:
:meth:`BridgeModel.posts` returns the exact post beats (``PostLayout``
integers), the dropped requests and the payload bytes. With coalescing, where
a message ends depends on when the next word arrives, so
:meth:`BridgeModel.check_coalesced` checks that the RTL's messages carry the
same bytes at the same offsets and join only joinable words.

Receive is checked by effect, because how bytes are gathered into words
depends on timing: :meth:`BridgeModel.decode` turns each NoC output packet
into a word write or a semaphore increment, and :meth:`BridgeModel.expected`
gives the memories and semaphore counts the received bytes and NIC semaphore
increments must produce.
"""

from hw.nic.post_engine import PostLayout

__all__ = ["BridgeModel", "post_beat", "post_fields"]

# (offset, mask) of each PostLayout field, taken from the hardware's layout.
_POST = {name: (f.offset, (1 << f.width) - 1) for name, f in PostLayout}


def post_beat(**fields):
    """One :data:`hw.nic.post_engine.PostLayout` beat as an integer (absent fields 0)."""
    unknown = set(fields) - set(_POST)
    if unknown:
        raise TypeError(f"not PostLayout fields: {sorted(unknown)}")
    return sum((int(v) & _POST[k][1]) << _POST[k][0] for k, v in fields.items())


def post_fields(beat):
    """The inverse of :func:`post_beat`: ``{field: value}`` of one beat."""
    return {k: beat >> off & mask for k, (off, mask) in _POST.items()}


class BridgeModel:
    """Reference behaviour of a bridge with the given parameters (same names as the RTL)."""

    def __init__(self, *, word_bits=128, addr_width=32, node_shift=24, sram_bits=16, n_nodes=2,
                 nic_sems=4, node_sems=4, sem_base=8, coalesce=None, coalesce_wait=8):
        self.B = word_bits // 8
        self.lw = (self.B - 1).bit_length()
        self.aw, self.ns, self.sb = addr_width, node_shift, sram_bits
        self.n_nodes, self.nic_sems, self.node_sems, self.sem_base = (
            n_nodes, nic_sems, node_sems, sem_base)
        self.mem_bits = sram_bits + max(0, (n_nodes - 1).bit_length())
        self.coalesce = coalesce or self.B

    # --- transmit ----------------------------------------------------------
    def posts(self, words):
        """``words``: ``[(addr, strb, data)]`` -> ``(beats, errors, payload_bytes)``."""
        beats, errors, nbytes = [], 0, 0
        bell_bit = 1 << (self.ns - 1)
        for addr, strb, data in words:
            off = addr & (bell_bit - 1)
            if addr & bell_bit:
                idx = off >> self.lw
                if idx >= self.nic_sems:
                    errors += 1
                else:
                    beats.append(post_beat(last=1, sem=1, addr=idx))
                continue
            if off >> self.mem_bits:
                errors += 1
                continue
            for i in range(self.B):
                if strb >> i & 1:
                    last = i == self.B - 1 or not strb >> (i + 1) & 1
                    beats.append(post_beat(data=data >> (8 * i), last=last, addr=off + i))
                    nbytes += 1
        return beats, errors, nbytes

    @staticmethod
    def messages(beats):
        """Post beats -> ``[(sem, addr, [bytes])]`` (``addr`` from the first beat)."""
        out, cur = [], None
        for b in beats:
            f = post_fields(b)
            data, last, sem, addr = f["data"], f["last"], f["sem"], f["addr"]
            if cur is None:
                cur = (sem, addr, [])
            cur[2].append(data)
            if last:
                out.append(cur)
                cur = None
        if cur is not None:
            raise AssertionError("post stream ends inside a message")
        return out

    def check_coalesced(self, beats, words):
        """Raise ``AssertionError`` unless ``beats`` is a valid coalescing of ``words``.

        Same bytes at the same offsets in the same order as :meth:`posts`; each
        message is one uncoalesced message or consecutive full words at
        consecutive addresses, at most ``coalesce`` bytes. Returns the number of
        messages saved by joining.
        """
        ref = self.messages(self.posts(words)[0])
        got = self.messages(beats)
        flat = lambda ms: [(sm, a + k if not sm else a, d) for sm, a, bs in ms
                           for k, d in enumerate(bs)]
        assert flat(got) == flat(ref), "coalesced posts carry other bytes"
        j = 0
        for sm, a, bs in got:
            group = [ref[j]]
            total = len(ref[j][2])
            j += 1
            while total < len(bs):
                group.append(ref[j])
                total += len(ref[j][2])
                j += 1
            assert total == len(bs), "a message ends inside a word"
            if len(group) > 1:
                assert len(bs) <= self.coalesce, f"message of {len(bs)} bytes"
                for (s0, a0, b0), (s1, a1, b1) in zip(group, group[1:]):
                    assert not s0 and not s1 and len(b0) == len(b1) == self.B \
                        and a0 % self.B == 0 and a1 == a0 + self.B, \
                        f"joined words at {a0:#x} and {a1:#x} are not contiguous full words"
        return len(ref) - len(got)

    # --- receive -----------------------------------------------------------
    def node_addr(self, k):
        """NIC semaphore ``k`` -> ``(node, command-processor semaphore id)``."""
        return k // self.node_sems, self.sem_base + k % self.node_sems

    def expected(self, nbytes, sem_incs):
        """``nbytes``: ``[(mem_addr, value)]`` received; ``sem_incs``: NIC semaphore indices.

        Returns ``(mem, sems, errors)``: ``{(node, byte): value}``, ``{(node, id): count}``
        and the number of dropped bytes.
        """
        mem, sems, errors = {}, {}, 0
        for a, v in nbytes:
            node, byte = a >> self.sb, a & ((1 << self.sb) - 1)
            if node >= self.n_nodes:
                errors += 1
            else:
                mem[(node, byte)] = v & 0xFF
        for k in sem_incs:
            key = self.node_addr(k)
            sems[key] = sems.get(key, 0) + 1
        return mem, sems, errors

    def decode(self, addr, strb, data):
        """One NoC output packet -> ``("sem", node, id)`` or ``("write", node, {byte: value})``."""
        node = addr >> self.ns
        off = addr & ((1 << self.ns) - 1)
        if off >> (self.ns - 1):
            return ("sem", node, (off >> self.lw) & 31)
        return ("write", node, {off + i: data >> (8 * i) & 0xFF
                                for i in range(self.B) if strb >> i & 1})
