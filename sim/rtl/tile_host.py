"""cocotb host driver for ``hw.tile.Tile``: load queues and SRAM, run, observe, read back.

Used by the integration tests and by the ``make sim`` jobs (:mod:`sim.rtl.tile_job`,
:mod:`sim.rtl.allreduce_job`). Port names follow Amaranth's flattening
(``load__valid``, ``host__req__payload``, ``m_axi__awaddr`` ...).
"""
import warnings

from cocotb.triggers import ReadOnly, RisingEdge

from hw.cp.isa import ErrorCode
from hw.common.layout import pack
from hw.mem.sram import sram_request_layout
from sim.compiler.program import ENGINES

# cocotbext-axi (the HBM model beside this driver) still calls cocotb 2's deprecated
# ``setimmediatevalue``; the simulator runs with warnings as errors.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.")

STATES = {0: "IDLE", 1: "FETCH", 2: "DECODE", 3: "ISSUE", 4: "DRAIN", 5: "DONE", 6: "ERROR"}


class TileHost:
    """Drives one tile's host-side ports.

    Parameters
    ----------
    dut : cocotb handle
        The simulated top.
    word_bits, sram_aw, depth : int
        SRAM word width, SRAM address width and CP queue depth of the tile.
    n_queues : int
        CP queues (DMA, TTU, TVP).
    prefix : str
        Selects a tile inside a cluster or chip (``"c0__t1__"``).
    """

    def __init__(self, dut, *, word_bits, sram_aw, depth, n_queues=3, prefix=""):
        self.dut, self.clk = dut, dut.clk
        self.p = prefix
        self.wb = word_bits
        self.req_layout = sram_request_layout(sram_aw, word_bits)
        self.depth = depth
        self.n_queues = n_queues
        self.pc_bits = depth.bit_length()
        self.st_bits = 3 + 3 + self.pc_bits
        for name in ("load__valid", "host__req__valid", "start", "sem_inc__valid"):
            if hasattr(self.dut, self.p + name):   # a bare SRAM host port has only host__*
                self.sig(name).value = 0
        self.sig("host__rsp__ready").value = 1

    def sig(self, name):
        return getattr(self.dut, self.p + name)

    async def _send(self, prefix, payload):
        self.sig(prefix + "__valid").value = 1
        self.sig(prefix + "__payload").value = int(payload)
        while True:
            await ReadOnly()
            fire = int(self.sig(prefix + "__ready").value)
            await RisingEdge(self.clk)
            if fire:
                break
        self.sig(prefix + "__valid").value = 0

    async def load_queues(self, queues):
        lay_addr_bits = (self.depth - 1).bit_length()
        qbits = (self.n_queues - 1).bit_length()
        for q, words in enumerate(queues):
            for a, w in enumerate(words):
                await self._send("load", q | a << qbits | w << (qbits + lay_addr_bits))

    async def write_sram(self, words):
        mask = (1 << (self.wb // 8)) - 1
        for a, v in sorted(words.items()):
            await self._send("host__req", pack(self.req_layout, dict(addr=a, we=1, wstrb=mask,
                                                                     wdata=v)))

    async def read_sram(self, addrs):
        out = []
        for a in addrs:
            await self._send("host__req", pack(self.req_layout, dict(addr=a, we=0)))
            while True:
                await ReadOnly()
                if int(self.sig("host__rsp__valid").value):
                    out.append(int(self.sig("host__rsp__payload").value))
                    await RisingEdge(self.clk)
                    break
                await RisingEdge(self.clk)
        return out

    def status(self):
        v = int(self.sig("status").value)
        out = []
        for q in range(self.n_queues):
            s = v >> (q * self.st_bits)
            out.append(dict(state=STATES.get(s & 7, "?"), error=ErrorCode(s >> 3 & 7).name,
                            pc=s >> 6 & ((1 << self.pc_bits) - 1)))
        return out

    async def start(self):
        self.sig("start").value = (1 << self.n_queues) - 1
        await RisingEdge(self.clk)
        self.sig("start").value = 0


def make_host(dut, cfg, *, prefix=""):
    """:class:`TileHost` of a tile with parameters ``cfg`` (a ``TileParams``)."""
    sram_aw = (cfg.words - 1).bit_length()
    return TileHost(dut, word_bits=32 * cfg.n, sram_aw=sram_aw, depth=cfg.depth, prefix=prefix)


async def run_tiles(hosts, *, max_cycles, observe=True):
    """Start every tile's queues and wait until each queue is DONE or ERROR.

    Returns per tile ``{"cycles", "status", "timeline", "macs", "timeout"}``;
    ``timeline`` is, per engine, a list of ``[start, end)`` busy intervals.
    """
    clk = hosts[0].clk
    for h in hosts:
        await h.start()
    spans = [[[] for _ in ENGINES] for _ in hosts]
    open_at = [[None] * len(ENGINES) for _ in hosts]
    end = [None] * len(hosts)
    cycle = 0
    while cycle < max_cycles and any(e is None for e in end):
        await RisingEdge(clk)
        await ReadOnly()
        cycle += 1
        for t, h in enumerate(hosts):
            if end[t] is not None:
                continue
            if observe:
                act = int(h.sig("active").value)
                for e in range(len(ENGINES)):
                    on = act >> e & 1
                    if on and open_at[t][e] is None:
                        open_at[t][e] = cycle
                    elif not on and open_at[t][e] is not None:
                        spans[t][e].append([open_at[t][e], cycle])
                        open_at[t][e] = None
            st = h.status()
            if all(s["state"] in ("DONE", "ERROR") for s in st):
                end[t] = cycle
    await RisingEdge(clk)
    out = []
    for t, h in enumerate(hosts):
        for e in range(len(ENGINES)):
            if open_at[t][e] is not None:
                spans[t][e].append([open_at[t][e], cycle])
        out.append(dict(cycles=end[t] if end[t] is not None else cycle, status=h.status(),
                        timeline={ENGINES[e]: spans[t][e] for e in range(len(ENGINES))},
                        macs=int(h.sig("macs").value), timeout=end[t] is None))
    return out


def overlap(spans_a, spans_b):
    """Cycles in which both interval lists are active."""
    tot = 0
    for a0, a1 in spans_a:
        for b0, b1 in spans_b:
            tot += max(0, min(a1, b1) - max(a0, b0))
    return tot
