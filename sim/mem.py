"""Golden model of :class:`hw.mem.BankedSRAM`: contents, bank mapping and arbitration."""
from sim.common import RoundRobinModel

__all__ = ["BankedSRAMModel"]


class BankedSRAMModel:
    """Cycle model of the banked SRAM with every response accepted at once.

    Parameters
    ----------
    size, banks, width, ports : int
        As :class:`hw.mem.BankedSRAM`.
    """

    def __init__(self, *, size, banks, width, ports):
        self.size, self.banks, self.width, self.ports = size, banks, width, ports
        self.lanes = width // 8
        self.words = size // self.lanes
        self.mem = bytearray(size)
        self.arbs = [RoundRobinModel(ports) for _ in range(banks)]
        self.conflicts = 0

    def bank(self, addr):
        """Bank of word address ``addr`` (low-order interleaving)."""
        return addr % self.banks

    def access(self, req):
        """Perform one request ``(addr, we, wstrb, wdata)``; return read data or ``None``."""
        addr, we, wstrb, wdata = req
        base = addr * self.lanes
        if we:
            for i in range(self.lanes):
                if wstrb >> i & 1:
                    self.mem[base + i] = wdata >> (8 * i) & 0xFF
            return None
        return int.from_bytes(self.mem[base:base + self.lanes], "little")

    def step(self, heads):
        """One cycle: ``heads[p]`` is port p's offered request or ``None``.

        Returns ``(granted, reads)``: the set of ports served and ``{port: data}``.
        """
        granted, reads = set(), {}
        for b in range(self.banks):
            mask = 0
            for p, r in enumerate(heads):
                if r is not None and self.bank(r[0]) == b:
                    mask |= 1 << p
            g = self.arbs[b].clock(mask, True)
            if g is not None:
                granted.add(g)
                data = self.access(heads[g])
                if data is not None:
                    reads[g] = data
        self.conflicts += sum(1 for p, r in enumerate(heads) if r is not None and p not in granted)
        return granted, reads

    def run(self, queues):
        """Run per-port request lists to completion; return (per-port reads, cycles)."""
        queues = [list(q) for q in queues]
        reads = [[] for _ in queues]
        cycles = 0
        while any(queues):
            heads = [q[0] if q else None for q in queues]
            granted, data = self.step(heads)
            for p in granted:
                queues[p].pop(0)
            for p, d in data.items():
                reads[p].append(d)
            cycles += 1
        return reads, cycles
