"""Multi-banked single-port SRAM with word interleaving and per-bank round-robin arbitration."""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common import RoundRobinArbiter, StreamFIFO, check_int, check_pow2, saturating_add

__all__ = ["SRAMPortSignature", "sram_request_layout", "BankedSRAM"]


def sram_request_layout(addr_width, data_width):
    """Payload of an SRAM request: word address, write enable, byte strobes, write data."""
    return data.StructLayout({
        "addr": addr_width,
        "we": 1,
        "wstrb": data_width // 8,
        "wdata": data_width,
    })


class SRAMPortSignature(wiring.Signature):
    """One SRAM access port, seen from the initiator (the TTU feed, a DMA, ...).

    ``req`` carries reads (``we=0``) and writes (``we=1``, bytes selected by
    ``wstrb``); every read returns exactly one ``rsp`` beat, in request order.
    Writes return nothing (posted).

    Parameters
    ----------
    addr_width : int
        Word-address width.
    data_width : int
        Word width in bits, a multiple of 8.
    """

    def __init__(self, *, addr_width, data_width):
        self.addr_width = check_int("addr_width", addr_width, min=1)
        self.data_width = check_int("data_width", data_width, min=8)
        if data_width % 8:
            raise ValueError(f"data_width must be a multiple of 8, not {data_width}")
        super().__init__({
            "req": Out(stream.Signature(sram_request_layout(addr_width, data_width))),
            "rsp": In(stream.Signature(data_width)),
        })


class BankedSRAM(wiring.Component):
    """Banked SRAM shared by ``ports`` initiators (tile SRAM, cluster SRAM).

    Word ``a`` lives in bank ``a % banks`` at row ``a // banks`` (low-order
    interleaving), so sequential streams from different ports spread over the
    banks. Each bank does one access per cycle (single-port macro); a
    round-robin arbiter per bank picks among the ports addressing it, so a port
    that keeps requesting waits for at most ``ports - 1`` other grants.

    A read is accepted only while its port has room for the response (a
    3-entry response FIFO per port), so a stalled ``rsp`` never blocks a bank
    and a port streams one read per cycle when its ``rsp.ready`` is high.
    Read latency is two cycles (request accepted -> ``rsp.valid``).

    Parameters
    ----------
    size : int
        Capacity in bytes, a power of two.
    banks : int
        Number of banks, a power of two.
    width : int
        Word width in bits, a power of two >= 8.
    ports : int
        Number of access ports, >= 1.

    Attributes
    ----------
    ports : In(SRAMPortSignature).array(ports)
        Access ports (word addresses).
    conflicts : Out(32)
        Saturating count of port-cycles lost to arbitration: a port offered a
        request it could have issued and another port won its bank.
    """

    RSP_DEPTH = 3

    def __init__(self, *, size, banks, width, ports):
        self._width = check_pow2("width", width, min=8)
        self._banks = check_pow2("banks", banks)
        self._size = check_pow2("size", size, min=(width // 8) * banks)
        self._nports = check_int("ports", ports, min=1)
        self._words = size // (width // 8)
        self._addr_width = max(1, (self._words - 1).bit_length())
        super().__init__({
            "ports": In(SRAMPortSignature(addr_width=self._addr_width, data_width=width)).array(ports),
            "conflicts": Out(32),
        })

    @property
    def addr_width(self):
        return self._addr_width

    def elaborate(self, platform):
        m = Module()
        nb, npo = self._banks, self._nports
        bank_bits = (nb - 1).bit_length()
        depth = self._words // nb

        # Per-port response FIFO and read-credit check.
        pending = [Signal(name=f"pending{p}") for p in range(npo)]
        pending_bank = [Signal(range(nb), name=f"pending_bank{p}") for p in range(npo)]
        eligible = Signal(npo)
        fifos = []
        for p in range(npo):
            fifo = StreamFIFO(payload_shape=self._width, depth=self.RSP_DEPTH)
            m.submodules[f"rsp_fifo{p}"] = fifo
            fifos.append(fifo)
            wiring.connect(m, fifo.o_stream, wiring.flipped(self.ports[p].rsp))
            req = self.ports[p].req.payload
            # Writes never need response room.
            m.d.comb += eligible[p].eq(req.we | (fifo.level + pending[p] < self.RSP_DEPTH))

        granted = Signal(npo)
        read_data = []
        for b in range(nb):
            mem = Memory(shape=self._width, depth=depth, init=[])
            m.submodules[f"bank{b}"] = mem
            wp = mem.write_port(granularity=8)
            rp = mem.read_port(transparent_for=())
            read_data.append(rp.data)
            arb = RoundRobinArbiter(n=npo)
            m.submodules[f"arb{b}"] = arb
            for p in range(npo):
                req = self.ports[p].req
                bank = req.payload.addr[:bank_bits] if bank_bits else 0
                m.d.comb += arb.requests[p].eq(req.valid & eligible[p] & (bank == b))
            m.d.comb += arb.advance.eq(1)
            with m.Switch(arb.index):
                for p in range(npo):
                    with m.Case(p):
                        req = self.ports[p].req.payload
                        row = req.addr[bank_bits:]
                        m.d.comb += [
                            wp.addr.eq(row),
                            rp.addr.eq(row),
                            wp.data.eq(req.wdata),
                        ]
                        with m.If(arb.valid):
                            with m.If(req.we):
                                m.d.comb += wp.en.eq(req.wstrb)
                            with m.Else():
                                m.d.comb += rp.en.eq(1)
            for p in range(npo):
                with m.If(arb.grant[p]):
                    m.d.comb += granted[p].eq(1)

        lost = Signal(range(npo + 1))
        m.d.comb += lost.eq(sum((self.ports[p].req.valid & eligible[p] & ~granted[p])
                                for p in range(npo)))
        saturating_add(m, self.conflicts, lost)

        for p in range(npo):
            req = self.ports[p].req
            m.d.comb += req.ready.eq(granted[p])
            bank = req.payload.addr[:bank_bits] if bank_bits else 0
            m.d.sync += [
                pending[p].eq(granted[p] & ~req.payload.we),
                pending_bank[p].eq(bank),
            ]
            # The bank's read port holds the word the cycle after the grant.
            m.d.comb += fifos[p].i_stream.valid.eq(pending[p])
            with m.Switch(pending_bank[p]):
                for b in range(nb):
                    with m.Case(b):
                        m.d.comb += fifos[p].i_stream.payload.eq(read_data[b])
        return m
