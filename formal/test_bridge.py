"""Formal checks of :class:`hw.nic.bridge.NicBridge` (``docs/chip.md``).

Free inputs: both input streams (obeying the stream rules), both output
``ready`` s and the NIC semaphore values (any value every cycle). Proved: the
stream rules on ``o_post`` and ``o_noc``; the error and byte counters never
decrease (they saturate).
Covers: a WRITE byte closing a message, a SEM post, a full-word NoC write and a
semaphore packet; with coalescing also a word joined to the next.
"""
import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal

from formal import harness
from formal.properties import beat, check_source, drive_sink, drive_source
from hw.nic.bridge import NicBridge

PARAMS = dict(word_bits=16, addr_width=12, node_shift=8, sram_bits=4, n_nodes=2, nic_sems=2,
              node_sems=1, sem_base=8)


class BridgeCheck(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        drive_source(m, dut.i_noc, name="i_noc")
        drive_source(m, dut.i_mem, name="i_mem")
        drive_sink(m, dut.o_post)
        drive_sink(m, dut.o_noc)
        m.d.comb += dut.sems.as_value().eq(AnySeq(len(dut.sems.as_value())))
        check_source(m, dut.o_post, name="o_post")
        check_source(m, dut.o_noc, name="o_noc")
        # Every counter saturates: it never decreases (a wrap would).
        for name in ("tx_errors", "rx_errors", "tx_bytes", "rx_bytes"):
            prev = Signal(len(getattr(dut, name)), name=f"prev_{name}")
            cur = getattr(dut, name)
            m.d.sync += prev.eq(cur)
            m.d.comb += Assert(cur >= prev, f"{name}_monotone")
        ns = dut.node_shift
        m.d.comb += [
            Cover(beat(dut.o_post) & dut.o_post.payload.last & ~dut.o_post.payload.sem,
                  "write_message_end"),
            Cover(beat(dut.o_post) & dut.o_post.payload.sem, "sem_post"),
            Cover(beat(dut.o_noc) & (dut.o_noc.payload.strb == 3), "full_word"),
            Cover(beat(dut.o_noc) & dut.o_noc.payload.addr[ns - 1], "semaphore_packet"),
        ]
        if dut.coalesce > dut.word_bits // 8:
            # Word writes are word aligned on the NoC; then a byte at an odd address
            # is the last of its 2-byte word, and here it does not end the message.
            m.d.comb += Assume(dut.i_noc.payload.addr[0] == 0)
            m.d.comb += Cover(beat(dut.o_post) & ~dut.o_post.payload.last
                              & ~dut.o_post.payload.sem & dut.o_post.payload.addr[0],
                              "word_joined")
        return m


@pytest.mark.parametrize("coalesce", [2, 6])
def test_bridge_formal(coalesce):
    dut = NicBridge(**PARAMS, coalesce=coalesce, coalesce_wait=2)
    harness.check(BridgeCheck(dut), name=f"nic_bridge_c{coalesce}", modes=("prove", "cover"),
                  depth=12)
