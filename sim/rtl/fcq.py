"""``allreduce --chips 4``: FP32 sum-all-reduce on a fully connected quad of chips, RTL.

:func:`run_allreduce` compiles one program per chip
(:func:`sim.allreduce.fcq_allreduce_program`: every chip sends its vector to the
three others at once, one NIC port per peer, and adds the four in rank order),
runs them on :class:`sim.rtl.chip_quad.ChipQuad` under cocotb
(:mod:`sim.rtl.allreduce_job`, six lossy cables with a fixed seed; Icarus unless
``ALLREDUCE_SIM=verilator``) and compares every chip's SRAM with
:class:`sim.allreduce.ChipGroupModel` bit for bit. The report gives the cycles,
payload and wire bytes per direction and the bus bandwidth as a fraction of the
links' line rate (one byte per cycle per direction per port).
"""
import json
import os
import pickle
import time

import numpy as np

__all__ = ["run_allreduce", "quad_inputs"]


def quad_inputs(n_values, seed, n=4):
    """``n`` FP32 vectors: random normals with edge cases in front (+-0, subnormals,
    FLT_MAX + FLT_MAX, inf, NaN)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_values)).astype(np.float32)
    edge = np.array([[0.0, -0.0, 1e-45, -3e-39, 3.4028235e38, 3.4028235e38, np.inf, 1.0],
                     [-0.0, -0.0, 2e-45, 1e-39, 3.4028235e38, -1.0, 1.0, np.nan],
                     [-0.0, 0.0, -1e-45, 2e-39, 1.0, 3.4028235e38, -np.inf, 2.0],
                     [-0.0, -0.0, 1e-45, 0.0, -3.4028235e38, 1.0, 1.0, 3.0]], np.float32)
    k = min(edge.shape[1], n_values)
    x[:, :k] = edge[:n, :k]
    return x


def run_allreduce(*, chips=4, n_values=64, seed=1, drop=0.1, latency=100, sim=None,
                  max_cycles=200_000, raw=False):
    """Run the quad all-reduce; returns a report dict (with ``raw``: ``(report, result)``).

    Report numbers: ``cycles`` (start to every chip DONE), ``payload_bytes`` (per chip
    sent), ``wire_bytes`` (all six cables, both directions, frames with headers, ACKs
    and retransmissions), ``busbw_fraction`` (all-reduce bus bandwidth ``2 (n - 1) / n
    * S / cycles`` over the line rate of the 3 ports of a chip, ``3`` bytes/cycle),
    ``bit_exact`` (every chip equals the golden model and the others), and the
    text lines of the ``make sim`` report.
    """
    from sim.allreduce import BUILD, ChipGroupModel, fcq_allreduce_program
    from sim.compiler.program import ENGINES
    from sim.rtl import runner
    from sim.rtl.chip_quad import CHIP4, WIRES, ChipQuad, flow_to, peer_of

    if chips != 4:
        raise ValueError(f"chips must be 4 (the fully connected quad), not {chips}")
    n = chips
    quad = ChipQuad(chip=CHIP4)
    chip = quad.chips[0]
    cfg = chip.clusters[0].tiles[0].params
    br = chip.bridge
    x = quad_inputs(n_values, seed, n)
    built = [fcq_allreduce_program(cfg, x[r], rank=r, n=n, flow_to=flow_to,
                                   nic_node=chip.nic_node, sram_bits=br.sram_bits,
                                   ext_sem=br.sem_base) for r in range(n)]
    progs, meta = [b[0] for b in built], built[0][1]
    images = [p.image() for p in progs]
    golden = ChipGroupModel(cfg, n=n, peer=peer_of, nic_node=chip.nic_node,
                            sram_bits=br.sram_bits, node_sems=br.node_sems,
                            sem_base=br.sem_base).run(progs, images)
    words = sorted(set().union(*[o.writes for p in progs for o in p.ops])
                   | set(range(meta["recv"], meta["recv"] + n * meta["words"])))
    BUILD.mkdir(parents=True, exist_ok=True)
    job_path, res_path = BUILD / "allreduce4_job.pkl", BUILD / "allreduce4_result.json"
    if res_path.exists():
        res_path.unlink()
    with open(job_path, "wb") as f:
        pickle.dump(dict(images=images, words=words, max_cycles=max_cycles,
                         link=dict(latency=latency, drop=drop), seed=seed, n_chips=n,
                         ports=3, wires=WIRES), f)
    t0 = time.time()
    sim = sim or os.environ.get("ALLREDUCE_SIM", "icarus")
    runner.run(quad, block="integration_allreduce4", test_module="sim.rtl.allreduce_job",
               params={"cfg": cfg.as_dict()}, sim=sim, testcase="allreduce_job",
               extra_env={"SIM_JOB": str(job_path), "SIM_RESULT": str(res_path)})
    wall = time.time() - t0
    res = json.loads(res_path.read_text())
    ok = not res["timeout"] and all(s["state"] == "DONE" for st in res["status"] for s in st)
    bad = [sum(1 for a in words if res["sram"][c][str(a)] != golden.tiles[c].word(a))
           for c in range(n)]
    out = [np.frombuffer(b"".join(res["sram"][c][str(meta["out"] + i)].to_bytes(
        cfg.word_bytes, "little") for i in range(meta["words"])), np.float32) for c in range(n)]
    same = all(o.view(np.uint32).tobytes() == out[0].view(np.uint32).tobytes() for o in out)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x[0].copy()
        for r in range(1, n):
            ref = (ref + x[r]).astype(np.float32)
    eq = (out[0].view(np.uint32) == ref.view(np.uint32)) | (np.isnan(out[0]) & np.isnan(ref))
    errs = [res["bridge"][c]["tx_errors"] + res["bridge"][c]["rx_errors"] + res["noc_errors"][c]
            for c in range(n)]
    size = n_values * 4
    cycles = res["cycles"]
    payload = [res["bridge"][c]["tx_bytes"] for c in range(n)]
    wire = sum(res["wire_bytes"])
    busbw = 2 * (n - 1) / n * size / max(cycles, 1)
    rep = {
        "workload": (f"sum-all-reduce of four {n_values}-value FP32 vectors on a fully "
                     f"connected quad (1 cluster x 1 tile per chip, one NIC port per peer), "
                     f"link drop {drop:.0%}, latency {latency} cycles, seed {seed}"),
        "queues": " | ".join(f"chip{c}: " + ", ".join(f"{e}:{s['state']}"
                                                      for e, s in zip(ENGINES, st))
                             for c, st in enumerate(res["status"])),
        "vs golden": ", ".join(f"chip{c} {'BIT-EXACT' if bad[c] == 0 else 'MISMATCH'}"
                               for c in range(n)),
        "chips agree": "yes (identical result bits)" if same else "NO",
        "vs numpy float32": f"{int(eq.sum())}/{ref.size} values equal (NaN as NaN)",
        "cycles": cycles,
        "NIC payload bytes": (", ".join(f"chip{c} {payload[c]}" for c in range(n))
                              + f" (golden {[sum(v for (s, _), v in golden.nic_bytes.items() if s == c) for c in range(n)]})"),
        "wire bytes": (f"{wire} on the six cables ({min(res['wire_bytes'])}.."
                       f"{max(res['wire_bytes'])} per direction; frames incl. headers, ACKs, "
                       f"retransmissions)"),
        "frames": (f"{sum(lk['frames'] for lk in res['link'])} sent, "
                   f"{sum(lk['dropped'] for lk in res['link'])} dropped by the links"),
        "retransmissions": ", ".join(f"chip{c} {res['nic'][c]['tx_rtx']} (timeouts "
                                     f"{res['nic'][c]['timeouts']})" for c in range(n)),
        "per-port frames": " | ".join(f"chip{c} {res['nic'][c]['port_tx_frames']}"
                                      for c in range(n)),
        "bus bandwidth": (f"{busbw:.3f} B/cycle = {busbw / 3:.1%} of a chip's 3-port line "
                          f"rate (2(n-1)/n x {size} B / {cycles} cycles)"),
        "errors": "bridge+NoC " + " / ".join(str(e) for e in errs),
        "simulator": f"{sim} ({round(wall, 1)} s wall incl. build)",
    }
    if res["timeout"]:
        rep["error"] = f"TIMEOUT after {cycles} cycles"
    rep.update(cycles_n=cycles, payload_bytes=payload, wire_bytes=wire,
               wire_bytes_dir=res["wire_bytes"], busbw_fraction=busbw / 3,
               bit_exact=ok and bad == [0] * n and same and not any(errs), ok=ok)
    return (rep, res) if raw else rep
