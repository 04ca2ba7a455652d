"""The FPGA prototype top (``hw.board.FPGATile``) driven by the host program over its UART.

Testplan (docs/fpga.md): the host code is ``sim.host`` (the one that talks to a
board), its bytes go through :class:`sim.rtl.uart.UARTTransport` onto the
simulated ``rx``/``tx`` pins.

* ``gemm_over_uart``: a compiled ``gemm_layer`` (HBM -> DMA -> quantise (TVP) ->
  MX FP8 GEMM (TTU) -> bias + GELU (TVP) -> DMA -> HBM) loaded over the link into
  the tile SRAM, the CP queues and the block-RAM HBM, started, polled with
  STATUS until DONE, read back over the link: every HBM line it writes (the
  result ``y``) equals the golden model (``sim.tile.TileModel``) bit for bit.
* ``garbage_then_commands``: random garbage bytes, then a resync; PING works,
  words written into the HBM window read back, an address past the HBM window
  and an unknown command get error replies, and the link keeps working.
"""
import random

import cocotb
from cocotb.task import bridge

from hw.board import FPGA_TILE, FPGATile
from hw.board.fpga_tile import fpga_geometry
from hw.host.protocol import Status
from hw.tile import TileParams
from sim.compiler.workloads import gemm_layer
from sim.host import HostLink, LinkError, run_program
from sim.rtl import runner
from sim.rtl.stream import reset
from sim.rtl.uart import UARTTransport

TIMEOUT = dict(timeout_time=200, timeout_unit="ms")
DIVISOR = 4


def _setup(dut):
    p = runner.params()
    cfg = TileParams(**p["cfg"])
    link = HostLink(UARTTransport(dut, divisor=p["divisor"]), fpga_geometry(cfg))
    return cfg, link


@cocotb.test(**TIMEOUT)
async def gemm_over_uart(dut):
    dut.rx.value = 1
    await reset(dut)
    cfg, link = _setup(dut)
    prog, meta = gemm_layer(cfg, M=4, K=32, N=8, seed=7)
    res = await bridge(run_program)(link, prog, hbm_base=cfg.words, compare_sram=False)
    dut._log.info("gemm over UART: %s", res)
    assert res["status"] == ["DONE"] * 3, res
    assert res["hbm_lines"] >= 4 * 8 * 4 // cfg.word_bytes, res    # all of y
    assert res["sram_bad"] == 0 and res["hbm_bad"] == 0, res
    assert res["macs"] > 0, res
    assert int(dut.link_errors.value) == 0


def _garbage_session(link, cfg, rng):
    g = link.g
    link.t.write(bytes(rng.randrange(256) for _ in range(40)))
    link.resync()
    link.ping()
    words = [rng.getrandbits(g.word_bits) for _ in range(5)]
    link.write_words(cfg.words + 3, words)
    assert link.read_words(cfg.words + 3, 5) == words
    sram = [rng.getrandbits(g.word_bits) for _ in range(3)]
    link.write_words(cfg.words - 3, sram)          # the last SRAM words
    assert link.read_words(cfg.words - 3, 3) == sram
    errors = []
    for frame in (link.read_frame(g.words - 1, 2), link.frame(0x7E)):
        try:
            link.transact(frame, 0)
        except LinkError as e:
            errors.append(e.status)
        link.resync()
    link.ping()
    assert link.read_words(cfg.words + 3, 5) == words
    return errors


@cocotb.test(**TIMEOUT)
async def garbage_then_commands(dut):
    dut.rx.value = 1
    await reset(dut)
    cfg, link = _setup(dut)
    errors = await bridge(_garbage_session)(link, cfg, random.Random(11))
    assert errors == [Status.BAD_ADDRESS, Status.UNKNOWN_COMMAND], errors
    assert int(dut.link_errors.value) >= 2


def test_fpga_tile():
    top = FPGATile(params=FPGA_TILE, divisor=DIVISOR, timeout_bytes=16)
    # lean: the test reads only the top's pins and counters.
    runner.run(top, block="fpga_tile", test_module="tb.board.test_fpga_tile", lean=True,
               params={"cfg": FPGA_TILE.as_dict(), "divisor": DIVISOR})
