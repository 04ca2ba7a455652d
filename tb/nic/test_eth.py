"""EthTx / EthRx: framing checked by scapy and zlib, FCS/runt/oversize drops.

Testplan (docs/nic.md): ``tx_frames`` sends random frames (1..300-byte
payloads, so padding and no padding) under random stalls and back-pressure,
compares every emitted frame bit for bit with ``sim.nic.eth_frame``, parses
it with scapy and checks its FCS with ``zlib.crc32``; ``tx_full_rate``
checks back-to-back frames leave with no idle cycle; ``rx_frames`` feeds good,
bit-flipped, runt and oversize frames under back-pressure and compares the
delivered frames and the four counters with ``sim.nic.eth_check``. A mutant
that skips the FCS check must fail.
"""
import random
import zlib

import cocotb
import pytest
from cocotb.triggers import ClockCycles
from amaranth.hdl import Const, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from scapy.layers.l2 import Ether

from hw.nic import ByteLayout, EthRx, EthTx
from sim import nic as atl
from sim.rtl import runner
from sim.rtl.stream import StreamSink, StreamSource, reset

MAX_FRAME = 512
A, B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


class EthPair(wiring.Component):
    """Test top: an independent EthTx and EthRx side by side."""

    def __init__(self, rx=None):
        self._rx = rx or EthRx(max_frame=MAX_FRAME)
        super().__init__({
            "tx_i": In(stream.Signature(ByteLayout)),
            "tx_o": Out(stream.Signature(ByteLayout)),
            "rx_i": In(stream.Signature(ByteLayout)),
            "rx_o": Out(stream.Signature(ByteLayout)),
            "tx_frames": Out(16),
            "rx_ok": Out(16), "rx_fcs": Out(16), "rx_runt": Out(16), "rx_oversize": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = tx = EthTx()
        m.submodules.rx = rx = self._rx
        wiring.connect(m, wiring.flipped(self.tx_i), tx.i_stream)
        wiring.connect(m, tx.o_stream, wiring.flipped(self.tx_o))
        wiring.connect(m, wiring.flipped(self.rx_i), rx.i_stream)
        wiring.connect(m, rx.o_stream, wiring.flipped(self.rx_o))
        m.d.comb += [self.tx_frames.eq(tx.frames), self.rx_ok.eq(rx.ok),
                     self.rx_fcs.eq(rx.fcs_errors), self.rx_runt.eq(rx.runts),
                     self.rx_oversize.eq(rx.oversize)]
        return m


def beats(frame):
    return [b | (i == len(frame) - 1) << 8 for i, b in enumerate(frame)]


def frames_of(beat_list):
    out, cur = [], bytearray()
    for v in beat_list:
        cur.append(v & 0xFF)
        if v >> 8 & 1:
            out.append(bytes(cur))
            cur = bytearray()
    return out, bytes(cur)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def tx_frames(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    lengths = [1, 45, 46, 47, 300] + [rng.randint(1, 300) for _ in range(25)]
    bodies = [A[::-1] if k % 2 else B for k in range(len(lengths))]
    sent = []
    for k, n in enumerate(lengths):
        payload = bytes(rng.getrandbits(8) for _ in range(n))
        sent.append((bodies[k], payload))
    stream_in = []
    for dst, payload in sent:
        stream_in += beats(dst + A + atl.ETHERTYPE.to_bytes(2, "big") + payload)
    src = StreamSource(dut, "tx_i", dut.clk, valid_prob=0.7, rng=rng)
    sink = StreamSink(dut, "tx_o", dut.clk, ready_prob=0.6, rng=rng)
    task = sink.start()
    await src.send(stream_in)
    expect = [atl.eth_frame(dst, A, payload) for dst, payload in sent]
    await sink.wait_for(sum(map(len, expect)), max_cycles=100_000)
    await ClockCycles(dut.clk, 10)
    task.cancel()
    got, rest = frames_of(sink.beats)
    assert rest == b"", "trailing bytes without last"
    assert len(got) == len(expect)
    for k, (g, e, (dst, payload)) in enumerate(zip(got, expect, sent)):
        assert g == e, f"frame {k}: differs from the golden model"
        # Independent checks: scapy parses it, zlib agrees with the FCS.
        eth = Ether(g[:-4])
        assert eth.dst == dst.hex(":") and eth.src == A.hex(":") and eth.type == atl.ETHERTYPE
        assert bytes(eth.payload)[:len(payload)] == payload
        assert len(g) >= 64
        assert int.from_bytes(g[-4:], "little") == zlib.crc32(g[:-4])
    assert int(dut.tx_frames.value) == len(expect)


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def tx_full_rate(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))) for _ in range(10)]
    stream_in = []
    for p in payloads:
        stream_in += beats(B + A + atl.ETHERTYPE.to_bytes(2, "big") + p)
    total = sum(len(atl.eth_frame(B, A, p)) for p in payloads)
    src = StreamSource(dut, "tx_i", dut.clk)
    sink = StreamSink(dut, "tx_o", dut.clk)
    task = sink.start()
    cocotb.start_soon(src.send(stream_in))
    start = cocotb.utils.get_sim_time("ns")
    await sink.wait_for(total)
    cycles = (cocotb.utils.get_sim_time("ns") - start) / 10
    task.cancel()
    assert cycles <= total + 3, f"{total} bytes took {cycles} cycles"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def rx_frames(dut):
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 2)
    frames = []
    for k in range(60):
        kind = rng.choice(["ok", "ok", "ok", "flip", "runt", "oversize"])
        n = {"ok": rng.randint(0, 480), "flip": rng.randint(0, 300), "runt": 0,
             "oversize": rng.randint(MAX_FRAME - 17, MAX_FRAME + 40)}[kind]
        f = bytearray(atl.eth_frame(B, A, bytes(rng.getrandbits(8) for _ in range(n))))
        if kind == "flip":
            bit = rng.randrange(len(f) * 8)
            f[bit // 8] ^= 1 << (bit % 8)
        if kind == "runt":
            f = f[:rng.randint(1, 63)]
        frames.append(bytes(f))
    frames += [atl.eth_frame(B, A, bytes(MAX_FRAME - 18)),       # exactly max_frame
               atl.eth_frame(B, A, bytes(MAX_FRAME - 17)),       # one byte too long
               atl.eth_frame(B, A, b"")[:63], atl.eth_frame(B, A, b"")]  # 63 and 64
    results = [atl.eth_check(f, max_frame=MAX_FRAME) for f in frames]
    expect = [body for status, body in results if status == "ok"]
    src = StreamSource(dut, "rx_i", dut.clk, valid_prob=0.8, rng=rng)
    sink = StreamSink(dut, "rx_o", dut.clk, ready_prob=0.7, rng=rng)
    task = sink.start()
    for f in frames:
        await src.send(beats(f))
    await sink.wait_for(sum(map(len, expect)), max_cycles=200_000)
    await ClockCycles(dut.clk, 20)
    task.cancel()
    got, rest = frames_of(sink.beats)
    assert rest == b""
    assert got == expect, "delivered frames differ from the golden model"
    count = {s: sum(1 for r, _ in results if r == s) for s in ("ok", "fcs", "runt", "oversize")}
    assert int(dut.rx_ok.value) == count["ok"]
    assert int(dut.rx_fcs.value) == count["fcs"]
    assert int(dut.rx_runt.value) == count["runt"]
    assert int(dut.rx_oversize.value) == count["oversize"]
    assert min(count.values()) > 0


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def rx_full_rate(dut):
    """Two buffers: back-to-back equal-length frames are absorbed at one byte per cycle.

    (A long frame followed by a much shorter one stalls the input for the
    length difference: the short one cannot overtake the long one's read-out.)
    """
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 3)
    frames = [atl.eth_frame(B, A, bytes(rng.getrandbits(8) for _ in range(n)))
              for n in [46] * 10 + [290] * 10]
    src = StreamSource(dut, "rx_i", dut.clk)
    sink = StreamSink(dut, "rx_o", dut.clk)
    task = sink.start()
    start = cocotb.utils.get_sim_time("ns")
    await src.send([b for f in frames for b in beats(f)])
    cycles = (cocotb.utils.get_sim_time("ns") - start) / 10
    await sink.wait_for(sum(len(f) - 4 for f in frames))
    task.cancel()
    total = sum(map(len, frames))
    assert cycles <= total + 2, f"input of {total} bytes took {cycles} cycles"


def test_eth():
    runner.run(EthPair(), block="nic_eth", test_module="tb.nic.test_eth")


class NoFcsCheckRx(EthRx):
    """Mutant: every frame's CRC residue is taken as good."""

    def _fcs_good(self, crc):
        return Const(1)


def test_mutant_no_fcs_check_is_caught():
    with pytest.raises((AssertionError, SystemExit)):
        runner.run(EthPair(rx=NoFcsCheckRx(max_frame=MAX_FRAME)), block="nic_eth_mutant",
                   test_module="tb.nic.test_eth", testcase="rx_frames")
