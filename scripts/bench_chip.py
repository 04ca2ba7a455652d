"""Two-chip all-reduce over the ATL NIC (the `make sim` allreduce workload) vs link loss.

Two ``hw.chip.Chip`` (1 cluster x 1 tile each), Icarus + cocotb, links of 100
cycles with the given frame drop probability (``sim.allreduce.run_allreduce``);
every run is checked bit for bit against ``sim.allreduce.ChipPairModel``.
"""
from sim.allreduce import run_allreduce

DROPS = (0.0, 0.1)


def run(quick=False):
    n_values = 64 if quick else 256
    rows = ["| drop | cycles | payload bytes each way | wire bytes (0->1 / 1->0) | payload / wire "
            "| frames (0->1 / 1->0) | dropped | retransmissions (timeouts) | bit-exact |",
            "|---|---|---|---|---|---|---|---|---|"]
    for drop in DROPS:
        rep, res = run_allreduce(n_values=n_values, seed=1, drop=drop, latency=100, raw=True)
        tx = [b["tx_bytes"] for b in res["bridge"]]
        wire = res["wire_bytes"]
        rows.append(
            f"| {drop:.0%} | {res['cycles']} | {tx[0]} / {tx[1]} | {wire[0]} / {wire[1]} "
            f"| {sum(tx) / max(1, sum(wire)):.0%} "
            f"| {res['link'][0]['frames']} / {res['link'][1]['frames']} "
            f"| {res['link'][0]['dropped'] + res['link'][1]['dropped']} "
            f"| {sum(n['tx_rtx'] for n in res['nic'])} ({sum(n['timeouts'] for n in res['nic'])}) "
            f"| {rep['bit_exact']} |")
    return (f"## chip\n\nSum-all-reduce of two {n_values}-value FP32 vectors between two chips "
            "(1 cluster x 1 tile each) over the ATL NIC: each tile DMAs its vector into the peer "
            "tile's SRAM through the NIC bridge, rings the peer's doorbell, waits on its external "
            "semaphore and adds on the TVP (`make sim SIMARGS=\"--workload allreduce\"`, "
            "`docs/chip.md`). Icarus, link latency 100 cycles, NIC window 8, payload 64, "
            "rto 1024; the bridge joins contiguous words into WRITE messages of up to 64 bytes. "
            "Wire bytes count whole frames (Ethernet + 16-byte ATL header, padding, FCS) and "
            "include the ACKs for the other direction's data and the retransmissions.\n\n"
            + "\n".join(rows) + "\n")
