"""``allreduce --chips 4`` on the fully connected quad (docs/chip.md).

* ``test_allreduce_four_chips`` (slow: the Verilog export and Icarus build of four
  chips dominate): :func:`sim.rtl.fcq.run_allreduce` at 64 values, 10 % drops, seed 1:
  every chip DONE and bit-exact against :class:`sim.allreduce.ChipGroupModel`, the
  four results identical, frames dropped and retransmitted, every chip sent its
  vector to each of its three peers (3 x 256 payload bytes), no bridge / NoC error.
* ``test_fcq_golden_and_wiring``: the golden model's order of the sum and the
  quad's cabling (every chip reaches each peer on its own port, the same flow id
  at both ends), without RTL.
"""
import numpy as np
import pytest


@pytest.mark.slow
def test_allreduce_four_chips():
    from sim.rtl.fcq import run_allreduce
    rep, res = run_allreduce(chips=4, n_values=64, seed=1, drop=0.1, latency=100, raw=True)
    print("\n".join(f"{k}: {v}" for k, v in rep.items()))
    assert rep["bit_exact"], rep
    assert sum(lk["dropped"] for lk in res["link"]) > 0, "no frame was dropped"
    assert sum(n["tx_rtx"] for n in res["nic"]) > 0, "no retransmission"
    assert rep["payload_bytes"] == [3 * 256] * 4, rep["payload_bytes"]


def test_fcq_golden_and_wiring():
    from hw.tile import TileParams
    from sim.allreduce import ChipGroupModel, fcq_allreduce_program
    from sim.rtl.chip_quad import WIRES, flow_to, peer_of
    from sim.rtl.fcq import quad_inputs

    assert sorted(e for w in WIRES for e in w) == [(c, p) for c in range(4) for p in range(3)]
    for c in range(4):
        for f in range(3):
            p = peer_of(c, f)
            assert p != c and peer_of(p, f) == c and flow_to(c, p) == f
    with pytest.raises(ValueError, match="flow_to"):
        flow_to(1, 1)
    cfg = TileParams()
    x = quad_inputs(16, 3)
    built = [fcq_allreduce_program(cfg, x[r], rank=r, n=4, flow_to=flow_to, nic_node=2)
             for r in range(4)]
    progs = [b[0] for b in built]
    g = ChipGroupModel(cfg, n=4, peer=peer_of, nic_node=2).run(progs, [p.image() for p in progs])
    out = built[0][1]["out"]
    with np.errstate(over="ignore", invalid="ignore"):
        ref = ((x[0] + x[1]) + x[2]) + x[3]
    for c in range(4):
        got = np.frombuffer(b"".join(g.tiles[c].word(out + i).to_bytes(16, "little")
                                     for i in range(4)), np.float32)
        assert ((got.view(np.uint32) == ref.view(np.uint32))
                | (np.isnan(got) & np.isnan(ref))).all(), c
        assert sum(v for (s, _), v in g.nic_bytes.items() if s == c) == 3 * 64
