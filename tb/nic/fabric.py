"""Several NICs in one simulation, joined by lossy Python links.

The test top is :class:`sim.rtl.nic_group.NicGroup`: ``n`` :class:`hw.nic.Nic`
instances with constant MACs whose ports are brought out as ``n<i>_...``.
:class:`Fabric` is the cocotb side: one coroutine that, every cycle, takes the
bytes each port emits, hands finished frames to a :class:`sim.nic.Link` (drop,
duplicate, reorder, corrupt with a fixed seed) and feeds the frames that
have arrived into the receiving port; it also drives the message posts,
applies back-pressure on the memory ports and records every memory write
and semaphore change.
"""
import heapq

from cocotb.triggers import ReadOnly, RisingEdge

from sim import nic as atl


def post_beats(msg):
    """Beats (ints, :data:`PostLayout`) of ``("w", addr, data)`` or ``("s", index)``."""
    if msg[0] == "s":
        return [1 << 8 | 1 << 9 | msg[1] << 10]
    _, addr, body = msg
    return [b | (k == len(body) - 1) << 8 | addr << 10 for k, b in enumerate(body)]


class Fabric:
    """Drive a :class:`sim.rtl.nic_group.NicGroup` (see module docstring).

    Parameters
    ----------
    dut : cocotb handle of the NicGroup top.
    n, ports, flows, peer : the group's shape (``peer`` as :func:`sim.rtl.nic_group.topology`).
    link : dict
        Keyword arguments of :class:`sim.nic.Link` (same for every cable).
    mem_ready : float
        Probability the memory port accepts a byte in a cycle.
    tx_ready : float
        Probability a port's transmitter may send in a cycle (a PHY pause).
    mem_bits : int
    """

    def __init__(self, dut, *, n, ports, flows, peer, link, rng, mem_bits, n_sems,
                 mem_ready=1.0, tx_ready=1.0, seed=1):
        self.dut, self.n, self.ports, self.flows, self.peer = dut, n, ports, flows, peer
        self.rng, self.mem_bits, self.n_sems = rng, mem_bits, n_sems
        self.mem_ready, self.tx_ready = mem_ready, tx_ready
        self.cycle = 0
        self.links = {}
        self.wire = {}     # (i, p) -> (j, p): cable from port p of NIC i
        for i in range(n):
            for p in range(ports):
                j = peer[i][p]
                self.wire[(i, p)] = (j, p)
                self.links[(i, p)] = atl.Link(**link, seed=seed + 17 * i + p)
        self.tx_cur = {k: bytearray() for k in self.wire}
        self.tx_frames = {k: [] for k in self.wire}     # (cycle, frame) as emitted
        self.rx_queue = {k: [] for k in self.wire}      # heap of (time, seq, frame)
        self.rx_cur = {k: None for k in self.wire}      # [frame, index]
        self._seq = 0
        self.posts = {(i, f): [] for i in range(n) for f in range(flows)}  # beat lists
        self.post_done = {(i, f): 0 for i in range(n) for f in range(flows)}  # beats taken
        self.mem = [dict() for _ in range(n)]           # addr -> value (last write)
        self.mem_writes = [dict() for _ in range(n)]    # addr -> times written
        self.mem_log = [[] for _ in range(n)]           # (cycle, addr)
        self.sems = [[0] * n_sems for _ in range(n)]
        self.sem_log = [[] for _ in range(n)]           # (cycle, index, value)
        self.hooks = []
        self._sem_raw = [0] * n
        s = self._s = {}
        for i in range(n):
            for p in range(ports):
                for d in ("o", "i"):
                    for f in ("valid", "ready", "payload"):
                        s[(i, d, p, f)] = getattr(dut, f"n{i}_{d}_ports__{p}__{f}")
            for f in range(flows):
                for x in ("valid", "ready", "payload"):
                    s[(i, "post", f, x)] = getattr(dut, f"n{i}_i_posts__{f}__{x}")
            for x in ("valid", "ready", "payload"):
                s[(i, "mem", x)] = getattr(dut, f"n{i}_o_mem__{x}")
            s[(i, "sems")] = getattr(dut, f"n{i}_sems")

    def post(self, i, f, msg):
        self.posts[(i, f)].extend(post_beats(msg))

    def counter(self, i, name):
        return int(getattr(self.dut, f"n{i}_{name}").value)

    def posts_idle(self):
        return all(self.post_done[k] == len(v) for k, v in self.posts.items())

    async def run(self, until, *, max_cycles):
        """Clock the fabric until ``until()`` is true; fail after ``max_cycles``."""
        s, rng, dut = self._s, self.rng, self.dut
        mask = (1 << self.mem_bits) - 1
        for _ in range(max_cycles):
            if until():
                return self.cycle
            # ---- drive ---------------------------------------------------
            for k in self.wire:
                i, p = k
                cur = self.rx_cur[k]
                q = self.rx_queue[k]
                if cur is None and q and q[0][0] <= self.cycle:
                    cur = self.rx_cur[k] = [heapq.heappop(q)[2], 0]
                if cur is not None:
                    frame, idx = cur
                    s[(i, "i", p, "valid")].value = 1
                    s[(i, "i", p, "payload")].value = frame[idx] | (idx == len(frame) - 1) << 8
                else:
                    s[(i, "i", p, "valid")].value = 0
                s[(i, "o", p, "ready")].value = int(self.tx_ready >= 1 or
                                                    rng.random() < self.tx_ready)
            for (i, f), beats in self.posts.items():
                d = self.post_done[(i, f)]
                if d < len(beats):
                    s[(i, "post", f, "valid")].value = 1
                    s[(i, "post", f, "payload")].value = beats[d]
                else:
                    s[(i, "post", f, "valid")].value = 0
            for i in range(self.n):
                s[(i, "mem", "ready")].value = int(self.mem_ready >= 1 or
                                                   rng.random() < self.mem_ready)
            await ReadOnly()
            # ---- sample --------------------------------------------------
            for k in self.wire:
                i, p = k
                cur = self.rx_cur[k]
                if cur is not None and s[(i, "i", p, "ready")].value:
                    cur[1] += 1
                    if cur[1] == len(cur[0]):
                        self.rx_cur[k] = None
                if s[(i, "o", p, "valid")].value and s[(i, "o", p, "ready")].value:
                    v = int(s[(i, "o", p, "payload")].value)
                    self.tx_cur[k].append(v & 0xFF)
                    if v >> 8:
                        frame = bytes(self.tx_cur[k])
                        self.tx_cur[k] = bytearray()
                        self.tx_frames[k].append((self.cycle, frame))
                        for t, f in self.links[k].deliveries(frame, self.cycle):
                            heapq.heappush(self.rx_queue[self.wire[k]], (t, self._seq, f))
                            self._seq += 1
            for (i, f), beats in self.posts.items():
                d = self.post_done[(i, f)]
                if d < len(beats) and s[(i, "post", f, "ready")].value:
                    self.post_done[(i, f)] = d + 1
            for i in range(self.n):
                if s[(i, "mem", "valid")].value and s[(i, "mem", "ready")].value:
                    v = int(s[(i, "mem", "payload")].value)
                    a = v & mask
                    self.mem[i][a] = v >> self.mem_bits
                    self.mem_writes[i][a] = self.mem_writes[i].get(a, 0) + 1
                    self.mem_log[i].append((self.cycle, a))
                v = int(s[(i, "sems")].value)
                if v == self._sem_raw[i]:
                    continue
                self._sem_raw[i] = v
                for k in range(self.n_sems):
                    x = v >> (32 * k) & 0xFFFFFFFF
                    if x != self.sems[i][k]:
                        self.sems[i][k] = x
                        self.sem_log[i].append((self.cycle, k, x))
            for h in self.hooks:
                h(self)
            await RisingEdge(dut.clk)
            self.cycle += 1
        raise AssertionError(f"fabric did not finish in {max_cycles} cycles")


__all__ = ["Fabric", "post_beats"]
