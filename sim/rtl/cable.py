"""Ethernet cables between the chips of a multi-chip top (:mod:`sim.rtl.chip_pair`,
:mod:`sim.rtl.chip_quad`), in cocotb."""
import heapq

from cocotb.triggers import ReadOnly, RisingEdge

from sim import nic as atl


class Cable:
    """NIC ports joined in pairs through :class:`sim.nic.Link` s (one per direction).

    Each direction collects the bytes a NIC port emits into frames, hands every
    finished frame to its link (latency, random drops with a fixed seed) and
    feeds the frames that have arrived into the port at the other end, one byte
    a cycle.

    Parameters
    ----------
    dut : cocotb handle
        The multi-chip top (chip ``c``'s ports as ``x<c>__nic__...``).
    link : dict
        Keyword arguments of :class:`sim.nic.Link` (every direction).
    seed : int
        Seed of the links' random drops (direction ``d`` uses ``seed + 17 * d``).
    wires : list of ((int, int), (int, int))
        Cables as ``((chip, port), (chip, port))``; direction ``2 k`` of cable ``k``
        goes from its first end to its second, ``2 k + 1`` back. Default: port 0
        of chip 0 <-> port 0 of chip 1 (the pair; directions 0 = chip 0 -> 1).
    """

    def __init__(self, dut, *, link, seed, wires=None):
        self.dut = dut
        wires = wires or [((0, 0), (1, 0))]
        #: Directions: (from (chip, port), to (chip, port)).
        self.dirs = [d for a, b in wires for d in ((a, b), (b, a))]
        self.links = [atl.Link(**link, seed=seed + 17 * d) for d in range(len(self.dirs))]
        ends = sorted({e for d in self.dirs for e in d})
        self.s = {(c, p, d, f): getattr(dut, f"x{c}__nic__{d}_ports__{p}__{f}")
                  for c, p in ends for d in ("o", "i") for f in ("valid", "ready", "payload")}
        self.into = {b: k for k, (a, b) in enumerate(self.dirs)}   # end -> direction feeding it
        self.tx = [bytearray() for _ in self.dirs]
        self.rx_queue = [[] for _ in self.dirs]      # heap (time, seq, frame) per direction
        self.rx_cur = [None for _ in self.dirs]
        self.wire_bytes = [0] * len(self.dirs)
        self.cycle = 0
        self._seq = 0
        for c, p in ends:
            self.s[(c, p, "i", "valid")].value = 0
            self.s[(c, p, "o", "ready")].value = 1

    async def run(self):
        s = self.s
        while True:
            for k, (a, (c, p)) in enumerate(self.dirs):
                cur, q = self.rx_cur[k], self.rx_queue[k]
                if cur is None and q and q[0][0] <= self.cycle:
                    cur = self.rx_cur[k] = [heapq.heappop(q)[2], 0]
                if cur is not None:
                    frame, i = cur
                    s[(c, p, "i", "valid")].value = 1
                    s[(c, p, "i", "payload")].value = frame[i] | (i == len(frame) - 1) << 8
                else:
                    s[(c, p, "i", "valid")].value = 0
            await ReadOnly()
            for k, ((c0, p0), (c, p)) in enumerate(self.dirs):
                cur = self.rx_cur[k]
                if cur is not None and int(s[(c, p, "i", "ready")].value):
                    cur[1] += 1
                    if cur[1] == len(cur[0]):
                        self.rx_cur[k] = None
                if int(s[(c0, p0, "o", "valid")].value):
                    v = int(s[(c0, p0, "o", "payload")].value)
                    self.tx[k].append(v & 0xFF)
                    if v >> 8:
                        frame = bytes(self.tx[k])
                        self.tx[k] = bytearray()
                        self.wire_bytes[k] += len(frame)
                        for t, f in self.links[k].deliveries(frame, self.cycle):
                            heapq.heappush(self.rx_queue[k], (t, self._seq, f))
                            self._seq += 1
            await RisingEdge(self.dut.clk)
            self.cycle += 1
