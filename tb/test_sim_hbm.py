"""The ``make sim`` HBM model (sim/rtl/hbm.py) against a byte array, under back-pressure.

Testplan (docs/sim.md): the image loaded at time 0 (``+HBM_INIT``) reads back
through AXI; fixed-seed random reads and writes of random length and byte
alignment (partial strobes) from cocotbext-axi's ``AxiMaster`` with random
W-valid gaps and R/B-ready stalls match a byte-array model; the dump
(``hbm_dump``, ``+HBM_DUMP``) holds the final contents.
"""
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sim.rtl import runner

SIZE = 1 << 14
WIDTH = 128
BEAT = WIDTH // 8


def _image():
    rng = random.Random(7)
    return bytes(rng.randrange(256) for _ in range(SIZE // 4))   # the first quarter


def _pause(rng, p):
    while True:
        yield rng.random() < p


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def hbm_random(dut):
    import warnings
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.")
    from cocotbext.axi import AxiBus, AxiMaster
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    dut.dump.value = 0
    master = AxiMaster(AxiBus.from_prefix(dut, "axi", bus_separator="__"), dut.clk, dut.rst)
    rng = random.Random(1)
    master.write_if.w_channel.set_pause_generator(_pause(rng, 0.3))
    master.write_if.b_channel.set_pause_generator(_pause(rng, 0.3))
    master.read_if.r_channel.set_pause_generator(_pause(rng, 0.4))
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    model = bytearray(SIZE)
    img = _image()
    model[:len(img)] = img
    got = await master.read(0, len(img))
    assert got.data == img, "image loaded with +HBM_INIT differs"
    for i in range(60):
        a = rng.randrange(SIZE - 600)
        n = rng.randrange(1, 600)
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(n))
            await master.write(a, data)
            model[a:a + n] = data
        else:
            got = await master.read(a, n)
            assert got.data == bytes(model[a:a + n]), f"read {i} at {a:#x}+{n}"
    # Reads issued back to back (several bursts in flight) and the final dump.
    reads = [cocotb.start_soon(master.read(a, 256)) for a in range(0, 4096, 256)]
    for a, r in zip(range(0, 4096, 256), reads):
        assert (await r).data == bytes(model[a:a + 256]), f"concurrent read at {a:#x}"
    dut.dump.value = 1
    await RisingEdge(dut.clk)
    dut.dump.value = 0
    await RisingEdge(dut.clk)
    words = [line for line in Path(os.environ["HBM_DUMP_FILE"]).read_text().split()
             if not line.startswith(("//", "@"))]
    dumped = b"".join(int(w, 16).to_bytes(BEAT, "little") for w in words)
    assert dumped == bytes(model), "dump differs from the model"


def test_hbm_model(tmp_path):
    from sim.rtl.hbm import HBMModel, STORAGE_V
    img = _image()
    init = tmp_path / "init.hex"
    init.write_text("".join(f"{int.from_bytes(img[i:i + BEAT], 'little'):032x}\n"
                            for i in range(0, len(img), BEAT)))
    dump = tmp_path / "dump.hex"
    runner.run(HBMModel(addr_width=32, data_width=WIDTH, size=SIZE), block="sim_hbm",
               test_module="tb.test_sim_hbm", extra_sources=[STORAGE_V],
               plusargs=[f"+HBM_INIT={init}", f"+HBM_DUMP={dump}"],
               extra_env={"HBM_DUMP_FILE": str(dump)})
