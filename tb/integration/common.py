"""Shared pieces of the integration tests: run a compiled program on a tile and compare.

The host driver, HBM model and image loader they build on are in ``sim.rtl``
(shared with ``make sim``).
"""
import numpy as np
from cocotb.triggers import RisingEdge

from sim.rtl.image import load_image, make_ram
from sim.rtl.stream import reset
from sim.rtl.tile_host import make_host, run_tiles
from sim.tile import TileModel


def written_words(prog):
    out = set()
    for op in prog.ops:
        out |= op.writes
    return sorted(out)


async def compare(host, ram, prog, golden, *, log=None):
    """RTL vs golden: every SRAM word the program writes and every HBM byte it writes."""
    words = written_words(prog)
    got = await host.read_sram(words)
    bad = [(a, g) for a, g in zip(words, got) if g != golden.word(a)]
    hb = set()
    for op in prog.ops:
        hb |= op.hwrites
    wb = prog.cfg.word_bytes
    bad_h = [a for a in sorted(hb)
             if ram.read(a * wb, wb) != bytes(golden.hbm[a * wb:(a + 1) * wb])]
    if log and (bad or bad_h):
        for a, g in bad[:5]:
            log.error("SRAM word %d: rtl %032x golden %032x", a, g, golden.word(a))
        for a in bad_h[:5]:
            log.error("HBM line %#x: rtl %s golden %s", a * wb, ram.read(a * wb, wb).hex(),
                      bytes(golden.hbm[a * wb:(a + 1) * wb]).hex())
    return dict(sram_words=len(words), sram_bad=len(bad), hbm_lines=len(hb), hbm_bad=len(bad_h))


async def run_program(dut, cfg, prog, *, max_cycles=200_000, check=True, observe=True,
                      clock=True, ram=None):
    """Reset, load, run and (optionally) compare one program on a single tile.

    ``clock``: start the clock; ``ram``: the test's AxiRam. Only the first run
    of a cocotb test starts a clock and an AxiRam (``res["ram"]`` for the next).
    """
    await reset(dut, clock=clock)
    ram = ram or make_ram(dut, cfg)
    host = make_host(dut, cfg)
    await RisingEdge(dut.clk)
    image = prog.image()
    await load_image(host, ram, image)
    res = (await run_tiles([host], max_cycles=max_cycles, observe=observe))[0]
    res["cmp"] = None
    if check:
        golden = TileModel(cfg).run(prog, image)
        res["cmp"] = await compare(host, ram, prog, golden, log=dut._log)
        res["golden"] = golden
    res["ram"] = ram
    return res


def f32(ram, addr, shape):
    n = int(np.prod(shape))
    return np.frombuffer(ram.read(addr, 4 * n), np.float32).reshape(shape)
