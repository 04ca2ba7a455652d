"""Two-chip and four-chip (FCQ) all-reduce over the ATL NIC vs link loss.

Two ``hw.chip.Chip`` (1 cluster x 1 tile each), Icarus + cocotb, links of 100
cycles with the given frame drop probability (``sim.allreduce.run_allreduce``);
every run is checked bit for bit against ``sim.allreduce.ChipPairModel``. The quad
(``sim.rtl.fcq.run_allreduce``: four chips, every chip cabled to the other three, one
NIC port per peer) is checked against ``sim.allreduce.ChipGroupModel`` and reports
the all-reduce bus bandwidth as a fraction of a chip's line rate.
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
            + "\n".join(rows) + "\n" + _quad(quick))


def _quad(quick):
    from sim.rtl.fcq import run_allreduce as run_fcq
    n_values = 64 if quick else 256
    rows = ["| drop | cycles | payload bytes per chip | wire bytes (6 cables, both ways) "
            "| payload / wire | dropped | retransmissions (timeouts) | bus bandwidth "
            "(fraction of 3 B/cycle) | bit-exact |", "|---|---|---|---|---|---|---|---|---|"]
    for drop in DROPS:
        rep, res = run_fcq(chips=4, n_values=n_values, seed=1, drop=drop, latency=100, raw=True)
        pay = rep["payload_bytes"]
        rows.append(
            f"| {drop:.0%} | {rep['cycles_n']} | {pay[0]} | {rep['wire_bytes']} "
            f"| {sum(pay) / max(1, rep['wire_bytes']):.0%} "
            f"| {sum(lk['dropped'] for lk in res['link'])} "
            f"| {sum(n['tx_rtx'] for n in res['nic'])} ({sum(n['timeouts'] for n in res['nic'])}) "
            f"| {rep['busbw_fraction']:.1%} | {rep['bit_exact']} |")
    return (f"\nFour chips as a fully connected quad (`sim.rtl.fcq.run_allreduce`, "
            f"`docs/chip.md`): {n_values}-value FP32 vectors, direct algorithm (every chip "
            "sends its vector to its three peers, one NIC port each, and adds the four in rank "
            "order). Bus bandwidth = 2 (n - 1) / n x vector bytes / cycles; a chip's line rate "
            "is 3 ports x 1 byte/cycle.\n\n" + "\n".join(rows) + "\n")
