"""Collectives over the scale-up network: the FCQ and the two-tier topology.

The network (``docs/perf.md``, "Collectives"): each chip has ``nic_ports``
Ethernet ports of ``nic_bits_per_s``; ``fcq_ports_per_peer`` of them go to each
of the other chips of its fully connected quad (tier 1, one hop to every
peer), the rest (:attr:`ChipConfig.tier2_ports`) to the second-tier switches,
which reach every chip, quad peers included. A port carries payload at
:meth:`ChipConfig.port_payload_bytes_per_s` (full ``eth_mtu`` frames, the ATL
header, Ethernet header, FCS, preamble and inter-frame gap on the wire); each
algorithm step costs ``link_latency_s`` more.

Algorithms (the one that suits the topology; ``algorithm="auto"`` takes the
fastest of those that apply and names it):

* **direct** (``n <= fcq_size``): one hop to every peer, all at once:
  all-reduce = reduce-scatter + all-gather (each chip sends ``S/n`` to every
  peer, twice), all-to-all = each chip sends its ``S/n`` block to every peer.
  A peer is reached over its direct ports and, through the switch, over a
  share of the tier-2 ports.
* **ring** (any ``n``): bandwidth-optimal ring, bound by its slowest edge
  (a tier-2 port group between quads).
* **hierarchical** (``n = q * fcq_size`` chips in ``q`` quads): all-reduce =
  reduce-scatter in the quad (direct links), an all-reduce of the chip's
  quarter across the ``q`` quads over the tier-2 ports (direct reduce-scatter +
  all-gather through the switch, with the chips of the same quad position),
  all-gather in the quad; the phases are pipelined over chunks. All-to-all =
  every chip sends ``S/n`` to every chip. In both, bytes for another quad can
  only take the tier-2 ports, bytes for a quad peer take the direct ports or,
  when those are the busier, the tier-2 ports through the switch: the time is
  ``max(remote / tier2, (local + remote) / all ports)``.

Bandwidths are reported as ``algbw = S / time`` and as NCCL's bus bandwidth
(``busbw``: all-reduce ``algbw * 2(n-1)/n``, all-to-all ``algbw * (n-1)/n``),
which is what a link-rate-bound algorithm brings up to the per-chip link rate.
"""
__all__ = ["allreduce", "alltoall", "MAX_CHIPS"]

#: "Supports dense clusters up to 6,144 accelerators" (shared/seeds, the Azure blog).
MAX_CHIPS = 6144


def _check(nbytes, chip, n_chips):
    if not isinstance(nbytes, (int, float)) or isinstance(nbytes, bool) or nbytes <= 0:
        raise ValueError(f"nbytes must be a positive number, not {nbytes!r}")
    if not isinstance(n_chips, int) or isinstance(n_chips, bool) or not 2 <= n_chips <= MAX_CHIPS:
        raise ValueError(f"n_chips must be an integer in 2..{MAX_CHIPS}, not {n_chips!r}")
    q = chip.fcq_size
    if n_chips > q and n_chips % q:
        raise ValueError(f"n_chips={n_chips}: beyond one FCQ the chips come in whole quads "
                         f"(a multiple of fcq_size={q})")
    if n_chips > q and chip.tier2_ports == 0:
        raise ValueError(f"n_chips={n_chips} needs the second tier, but the chip has no tier-2 ports "
                         f"(nic_ports={chip.nic_ports} all go to FCQ peers)")


def _rates(chip, n_chips):
    port = chip.port_payload_bytes_per_s()
    peer = chip.fcq_ports_per_peer * port
    up = chip.tier2_ports * port
    return port, peer, up


def _result(kind, nbytes, n, seconds, algorithm, candidates, quad):
    algbw = nbytes / seconds
    factor = 2 * (n - 1) / n if kind == "allreduce" else (n - 1) / n
    return {"seconds": seconds, "algbw": algbw, "busbw": algbw * factor, "algorithm": algorithm,
            "n_chips": n, "nbytes": nbytes,
            "topology": "FCQ" if n <= quad else f"two-tier ({n // quad} quads)",
            "candidates": candidates}


def _pick(kind, nbytes, n, times, algorithm, quad):
    if algorithm != "auto":
        if algorithm not in times:
            raise ValueError(f"algorithm must be 'auto' or one of {sorted(times)} for {n} chips, "
                             f"not {algorithm!r}")
        return _result(kind, nbytes, n, times[algorithm], algorithm, times, quad)
    best = min(times, key=times.get)
    return _result(kind, nbytes, n, times[best], best, times, quad)


def _two_commodity(local, remote, direct, up):
    """Least time to send ``local`` bytes to quad peers (direct ports, or tier-2 ports
    through the switch) and ``remote`` bytes to other quads (tier-2 ports only)."""
    if up == 0:
        return float("inf")
    return max(remote / up, (local + remote) / (direct + up))


def allreduce(nbytes, chip, n_chips, *, algorithm="auto"):
    """All-reduce of ``nbytes`` per chip over ``n_chips`` (see the module docstring)."""
    _check(nbytes, chip, n_chips)
    n, q, a = n_chips, chip.fcq_size, chip.link_latency_s
    port, peer, up = _rates(chip, n)
    times = {}
    if n <= q:
        per_peer = peer + up / (n - 1)
        times["direct"] = 2 * (nbytes / n) / per_peer + 2 * a
        times["ring"] = 2 * (n - 1) / n * nbytes / per_peer + 2 * (n - 1) * a
    else:
        quads = n // q
        quarter = nbytes / q
        tier1 = 2 * (q - 1) * quarter                 # reduce-scatter + all-gather in the quad
        tier2 = 2 * (quads - 1) / quads * quarter     # all-reduce of the quarter across quads
        times["hierarchical"] = _two_commodity(tier1, tier2, (q - 1) * peer, up) + 4 * a
        # A ring through every chip crosses a tier-2 port group between quads.
        slowest = min(peer, up) if up else 0
        if slowest:
            times["ring"] = 2 * (n - 1) / n * nbytes / slowest + 2 * (n - 1) * a
    return _pick("allreduce", nbytes, n, times, algorithm, q)


def alltoall(nbytes, chip, n_chips, *, algorithm="auto"):
    """All-to-all of ``nbytes`` per chip (``nbytes / n_chips`` to every chip)."""
    _check(nbytes, chip, n_chips)
    n, q, a = n_chips, chip.fcq_size, chip.link_latency_s
    port, peer, up = _rates(chip, n)
    block = nbytes / n
    times = {}
    if n <= q:
        times["direct"] = block / (peer + up / (n - 1)) + a
    else:
        inside = (q - 1) * block                       # blocks for the quad peers
        outside = (n - q) * block                      # blocks for the other quads' chips
        times["hierarchical"] = _two_commodity(inside, outside, (q - 1) * peer, up) + 2 * a
    return _pick("alltoall", nbytes, n, times, algorithm, q)
