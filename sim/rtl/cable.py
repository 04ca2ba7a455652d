"""The Ethernet cable between the two chips of a :class:`sim.rtl.chip_pair.ChipPair`, in cocotb."""
import heapq

from cocotb.triggers import ReadOnly, RisingEdge

from sim import nic as atl


class Cable:
    """Port 0 of chip 0 <-> port 0 of chip 1 through two :class:`sim.nic.Link` s.

    Each direction collects the bytes a NIC emits into frames, hands every
    finished frame to its link (latency, random drops with a fixed seed) and
    feeds the frames that have arrived into the other NIC, one byte a cycle.

    Parameters
    ----------
    dut : cocotb handle
        The :class:`sim.rtl.chip_pair.ChipPair` top.
    link : dict
        Keyword arguments of :class:`sim.nic.Link` (both directions).
    seed : int
        Seed of the links' random drops (direction ``c`` uses ``seed + 17 * c``).
    """

    def __init__(self, dut, *, link, seed):
        self.dut = dut
        self.links = [atl.Link(**link, seed=seed + 17 * c) for c in range(2)]
        self.s = {(c, d, f): getattr(dut, f"x{c}__nic__{d}_ports__0__{f}")
                  for c in range(2) for d in ("o", "i") for f in ("valid", "ready", "payload")}
        self.tx = [bytearray(), bytearray()]
        self.rx_queue = [[], []]      # heap (time, seq, frame) arriving at chip c
        self.rx_cur = [None, None]
        self.wire_bytes = [0, 0]
        self.cycle = 0
        self._seq = 0
        for c in range(2):
            self.s[(c, "i", "valid")].value = 0
            self.s[(c, "o", "ready")].value = 1

    async def run(self):
        s = self.s
        while True:
            for c in range(2):
                cur, q = self.rx_cur[c], self.rx_queue[c]
                if cur is None and q and q[0][0] <= self.cycle:
                    cur = self.rx_cur[c] = [heapq.heappop(q)[2], 0]
                if cur is not None:
                    frame, i = cur
                    s[(c, "i", "valid")].value = 1
                    s[(c, "i", "payload")].value = frame[i] | (i == len(frame) - 1) << 8
                else:
                    s[(c, "i", "valid")].value = 0
            await ReadOnly()
            for c in range(2):
                cur = self.rx_cur[c]
                if cur is not None and int(s[(c, "i", "ready")].value):
                    cur[1] += 1
                    if cur[1] == len(cur[0]):
                        self.rx_cur[c] = None
                if int(s[(c, "o", "valid")].value):
                    v = int(s[(c, "o", "payload")].value)
                    self.tx[c].append(v & 0xFF)
                    if v >> 8:
                        frame = bytes(self.tx[c])
                        self.tx[c] = bytearray()
                        self.wire_bytes[c] += len(frame)
                        for t, f in self.links[c].deliveries(frame, self.cycle):
                            heapq.heappush(self.rx_queue[1 - c], (t, self._seq, f))
                            self._seq += 1
            await RisingEdge(self.dut.clk)
            self.cycle += 1
