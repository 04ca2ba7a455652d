"""Run a whole :class:`hw.chip.Chip` in Amaranth's simulator, NIC port 0 cabled to itself.

Shared by the chip NoC tests: load tile programs into any (cluster, tile), start
them together, wait until every queue is DONE or ERROR, read SRAM words back.
"""
import sys

from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.common.layout import pack
from hw.mem.sram import sram_request_layout
from sim.rtl.chip_pair import mac_of

__all__ = ["run_chip_pysim"]


def run_chip_pysim(chip, images, reads, *, max_cycles=12000):
    """Run ``chip``; ``images[(c, t)]``: program image of tile ``t`` of cluster ``c``.

    ``reads[(c, t)]``: SRAM word addresses to read back. Returns ``{"cycles",
    "status", "words", "bridge", "noc"}`` (``noc``: ``[dropped, errors]`` of the
    chip NoC, then every cluster's ``noc_errors``).
    """
    from amaranth.sim import Simulator

    sys.set_int_max_str_digits(0)
    top = Module()
    top.submodules.chip = chip
    wiring.connect(top, chip.nic__o_ports[0], chip.nic__i_ports[0])
    for p in range(1, len(chip.nic__o_ports)):
        top.d.comb += [chip.nic__o_ports[p].ready.eq(1), chip.nic__i_ports[p].valid.eq(0)]
    top.d.comb += chip.nic__mac.eq(mac_of(0))
    for f in range(len(chip.nic__peer_macs)):
        top.d.comb += chip.nic__peer_macs[f].eq(mac_of(0))
    t0 = chip.clusters[0].tiles[0]
    req = sram_request_layout(t0.sram.addr_width, t0.word_bits)
    mask = (1 << (t0.word_bits // 8)) - 1
    qbits, abits = 2, (t0.params.depth - 1).bit_length()
    T = lambda ct, name: getattr(chip, f"c{ct[0]}__t{ct[1]}__{name}")
    tiles = sorted(images)
    out = {"words": {}}

    async def tb(ctx):
        for ct in tiles:
            img = images[ct]
            for q, words in enumerate(img["queues"]):
                for a, wd in enumerate(words):
                    ctx.set(T(ct, "load").valid, 1)
                    ctx.set(T(ct, "load").payload.as_value(),
                            q | a << qbits | wd << (qbits + abits))
                    await ctx.tick()
            ctx.set(T(ct, "load").valid, 0)
            for a, v in sorted(img["sram"].items()):
                ctx.set(T(ct, "host").req.valid, 1)
                ctx.set(T(ct, "host").req.payload.as_value(),
                        pack(req, dict(addr=a, we=1, wstrb=mask, wdata=v)))
                await ctx.tick().until(T(ct, "host").req.ready)
            ctx.set(T(ct, "host").req.valid, 0)
        for ct in tiles:
            ctx.set(T(ct, "start"), 7)
        await ctx.tick()
        for ct in tiles:
            ctx.set(T(ct, "start"), 0)
        st_bits = 6 + abits + 1
        for cyc in range(max_cycles):
            await ctx.tick()
            st = {ct: [(ctx.get(T(ct, "status").as_value()) >> (st_bits * q)) & 7
                       for q in range(3)] for ct in tiles}
            if all(s in (5, 6) for v in st.values() for s in v):
                break
        out["cycles"], out["status"] = cyc, st
        for ct, addrs in reads.items():
            h = T(ct, "host")
            ctx.set(h.rsp.ready, 1)
            for a in addrs:
                ctx.set(h.req.valid, 1)
                ctx.set(h.req.payload.as_value(), pack(req, dict(addr=a, we=0)))
                await ctx.tick().until(h.req.ready)
                ctx.set(h.req.valid, 0)
                while True:
                    *_, v, d = await ctx.tick().sample(h.rsp.valid, h.rsp.payload)
                    if v:
                        break
                out["words"][ct, a] = d
        out["bridge"] = [ctx.get(getattr(chip, f"bridge__{k}"))
                         for k in ("tx_bytes", "rx_bytes", "tx_errors", "rx_errors")]
        out["noc"] = [ctx.get(chip.noc__dropped), ctx.get(chip.noc__errors)] + [
            ctx.get(getattr(chip, f"c{k}__noc_errors")) for k in range(chip.n_clusters)]

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out
