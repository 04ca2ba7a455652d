"""cocotb side of the ``make sim`` all-reduce: two (or four) chips, one program each, lossy cables.

Named ``test_module="sim.rtl.allreduce_job"`` by :func:`sim.allreduce.run_allreduce`
on a :class:`sim.rtl.chip_pair.ChipPair` (and by :func:`sim.rtl.fcq.run_allreduce_fcq`
on a :class:`sim.rtl.chip_quad.ChipQuad`). The job (``SIM_JOB``: a pickle) holds
every program image, the SRAM words to read back, the link parameters, the seed,
a cycle limit and (optional) ``n_chips``, ``ports`` and the cables ``wires``; the result (``SIM_RESULT``: JSON) holds the queue status,
cycles, the words read back and the NIC, bridge, NoC and link counters. As
:mod:`sim.rtl.tile_job`, it never asserts on the outcome: the caller judges.
"""
import json
import os
import pickle

import cocotb
from cocotb.triggers import RisingEdge

from hw.tile import TileParams

from . import runner
from .cable import Cable
from .stream import reset
from .tile_host import make_host, run_tiles


@cocotb.test(timeout_time=5000, timeout_unit="ms")
async def allreduce_job(dut):
    with open(os.environ["SIM_JOB"], "rb") as f:
        job = pickle.load(f)
    cfg = TileParams(**runner.params()["cfg"])
    n, ports = job.get("n_chips", 2), job.get("ports", 1)
    for c in range(n):   # every input defined (Icarus starts at X)
        names = [("c0__t0__load__payload", 0), ("c0__t0__host__req__payload", 0),
                 ("c0__t0__sem_inc__payload", 0)]
        for p in range(ports):
            names += [(f"nic__i_ports__{p}__valid", 0), (f"nic__i_ports__{p}__payload", 0),
                      (f"nic__o_ports__{p}__ready", 1)]
        for name, v in names:
            getattr(dut, f"x{c}__{name}").value = v
    await reset(dut)
    hosts = [make_host(dut, cfg, prefix=f"x{c}__c0__t0__") for c in range(n)]
    await RisingEdge(dut.clk)
    for h, img in zip(hosts, job["images"]):
        await h.load_queues(img["queues"])
        await h.write_sram(img["sram"])
    cable = Cable(dut, link=job["link"], seed=job["seed"], wires=job.get("wires"))
    task = cocotb.start_soon(cable.run())
    res = await run_tiles(hosts, max_cycles=job["max_cycles"], observe=False)
    task.cancel()
    words = job["words"]
    out = dict(cycles=max(r["cycles"] for r in res), timeout=any(r["timeout"] for r in res),
               status=[r["status"] for r in res], sram=[], nic=[], bridge=[], noc_errors=[],
               link=[lk.stats for lk in cable.links], wire_bytes=cable.wire_bytes,
               dirs=cable.dirs)
    for c, h in enumerate(hosts):
        out["sram"].append(dict(zip(words, await h.read_sram(words))))
        out["nic"].append({k: int(getattr(dut, f"x{c}__nic__{k}").value)
                           for k in ("tx_data", "tx_rtx", "tx_ack", "timeouts", "rx_accept",
                                     "rx_dup", "rx_errors", "post_errors")})
        ptx = int(getattr(dut, f"x{c}__nic__port_tx_frames").value)
        out["nic"][-1]["port_tx_frames"] = [ptx >> (16 * p) & 0xFFFF for p in range(ports)]
        out["bridge"].append({k: int(getattr(dut, f"x{c}__bridge__{k}").value)
                              for k in ("tx_bytes", "rx_bytes", "tx_errors", "rx_errors")})
        out["noc_errors"].append(int(getattr(dut, f"x{c}__c0__noc_errors").value)
                                 + int(getattr(dut, f"x{c}__noc__dropped").value)
                                 + int(getattr(dut, f"x{c}__noc__errors").value))
    with open(os.environ["SIM_RESULT"], "w") as f:
        json.dump(out, f)
