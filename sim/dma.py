"""Golden model of :class:`hw.dma.DMAEngine`: descriptor packing, decode checks and the copy.

The model is functional (byte-exact): it says what every descriptor does to
the memories and which completion code it returns. Bus errors are modelled
from the same poison sets the testbench gives the AXI RAM: a read error when
any aligned word the engine reads is poisoned, a write error when any written
byte is. Read errors take precedence over write errors (the code of the first
failing beat in stream order).
"""
from hw.common.layout import pack, unpack
from hw.dma.descriptor import DST_KINDS, MAX_LENGTH, SRC_KINDS, Err, Kind, completion_layout, \
    descriptor_layout

__all__ = ["DMAModel", "pack", "unpack_completion", "tile_dma"]


def unpack_completion(word):
    """``(sem, err)`` from an ``o_done`` payload.

    ``err`` is an :class:`~hw.dma.descriptor.Err` (a code outside it, which the
    engine never returns, stays a plain ``int`` so that a mismatch still reports).
    """
    c = unpack(completion_layout(), word)
    return c["sem"], Err(c["err"]) if c["err"] in set(Err) else c["err"]


class DMAModel:
    """Byte-exact model of the DMA engine.

    Parameters
    ----------
    addr_width, data_width, dims, n_local, sram_size, hbm_size :
        As :class:`hw.dma.DMAEngine`.
    """

    def __init__(self, *, addr_width=32, data_width=64, dims=3, n_local=1, sram_size=65536,
                 hbm_size=None):
        self.aw, self.lanes, self.dims = addr_width, data_width // 8, dims
        self.n_local, self.sram_size = n_local, sram_size
        self.hbm_size = hbm_size if hbm_size is not None else 1 << addr_width
        self.layout = descriptor_layout(addr_width=addr_width, dims=dims, n_local=n_local)

    def encode(self, d):
        """Descriptor dict -> the integer presented on ``i_desc``."""
        v = dict(d)
        v["outer"] = [dict(o) for o in d.get("outer", [])]
        v["outer"] += [dict(count=1, src_stride=0, dst_stride=0)] * (self.dims - 1 - len(v["outer"]))
        if self.dims == 1:
            del v["outer"]
        return pack(self.layout, v)

    def outer(self, d):
        o = list(d.get("outer", []))
        return o + [dict(count=1, src_stride=0, dst_stride=0)] * (self.dims - 1 - len(o))

    def _space(self, kind):
        return {Kind.HBM: self.hbm_size, Kind.LOCAL: self.sram_size}.get(kind, 1 << self.aw)

    def decode_error(self, d):
        """Error code of the decode checks (0 when the descriptor will run)."""
        outer = self.outer(d)
        if not 1 <= d["length"] <= MAX_LENGTH or d["src_kind"] not in SRC_KINDS or \
                d["dst_kind"] not in DST_KINDS or \
                (d["dst_kind"] == Kind.LOCAL and d["dst_mask"] == 0) or \
                any(o["count"] == 0 for o in outer):
            return Err.MALFORMED
        for side in ("src", "dst"):
            lo = d[side] + sum(min(0, (o["count"] - 1) * o[f"{side}_stride"]) for o in outer)
            hi = d[side] + d["length"] - 1 + \
                sum(max(0, (o["count"] - 1) * o[f"{side}_stride"]) for o in outer)
            if lo < 0 or hi >= self._space(d[f"{side}_kind"]):
                return Err.RANGE
        return Err.OK

    def rows(self, d):
        """The contiguous runs ``(src, dst, length)`` in engine order (innermost first)."""
        outer = self.outer(d)
        idx = [0] * len(outer)
        while True:
            s = d["src"] + sum(i * o["src_stride"] for i, o in zip(idx, outer))
            t = d["dst"] + sum(i * o["dst_stride"] for i, o in zip(idx, outer))
            yield s, t, d["length"]
            for k, o in enumerate(outer):
                if idx[k] != o["count"] - 1:
                    idx[k] += 1
                    break
                idx[k] = 0
            else:
                return

    def run(self, d, *, hbm, local, remote=None, rd_poison=None, wr_poison=None):
        """Apply descriptor ``d``; return its completion code (an :class:`~hw.dma.descriptor.Err`).

        Parameters
        ----------
        hbm : bytearray
            HBM contents (modified).
        local : list of bytearray
            Local SRAMs; reads come from ``local[0]``.
        remote : dict, optional
            Remote byte address -> value (NoC writes).
        rd_poison, wr_poison : dict, optional
            HBM word address (read) / byte address (write) -> :class:`~hw.dma.descriptor.Err`.
        """
        err = self.decode_error(d)
        if err:
            return err
        rd_poison, wr_poison = rd_poison or {}, wr_poison or {}
        rd_err = wr_err = Err.OK
        for s, t, n in self.rows(d):
            if d["src_kind"] == Kind.HBM:
                for w in range(s // self.lanes, (s + n - 1) // self.lanes + 1):
                    if not rd_err and w in rd_poison:
                        rd_err = rd_poison[w]
                chunk = bytes(hbm[s:s + n])
            else:
                chunk = bytes(local[0][s:s + n])
            if d["dst_kind"] == Kind.HBM:
                for a in range(t, t + n):
                    if not wr_err and a in wr_poison:
                        wr_err = wr_poison[a]
                hbm[t:t + n] = chunk
            elif d["dst_kind"] == Kind.LOCAL:
                for i in range(self.n_local):
                    if d["dst_mask"] >> i & 1:
                        local[i][t:t + n] = chunk
            else:
                for k, b in enumerate(chunk):
                    remote[t + k] = b
        return rd_err or wr_err

    def touched(self, d):
        """Destination byte addresses written by ``d`` (for masking error cases)."""
        out = set()
        for _, t, n in self.rows(d):
            out.update(range(t, t + n))
        return out


def tile_dma(params):
    """The DMA golden model of a tile built from :class:`hw.tile.TileParams` ``params``."""
    return DMAModel(addr_width=params.addr_width, data_width=params.word_bits, dims=params.dims,
                    sram_size=params.sram_size, hbm_size=params.hbm_size)
