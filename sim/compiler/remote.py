"""Programs that talk to another chip through the NIC (``hw.chip``, ``docs/chip.md``).

Address helpers for tile DMA descriptors of the REMOTE kind that go to the
chip's NIC node, and the two-chip all-reduce program.
"""
import numpy as np

from .program import TileProgram, word_of_floats

__all__ = ["NODE_SHIFT", "nic_write_address", "nic_doorbell_address", "allreduce_program"]

#: Node id position in NoC byte addresses (``hw.cluster.NODE_SHIFT``).
NODE_SHIFT = 24


def nic_write_address(nic_node, peer_node, byte, *, sram_bits=16):
    """NoC byte address that writes ``byte`` of node ``peer_node``'s SRAM on the peer chip."""
    if not 0 <= byte < 1 << sram_bits:
        raise ValueError(f"byte must be < 2**sram_bits ({1 << sram_bits}), not {byte}")
    return nic_node << NODE_SHIFT | peer_node << sram_bits | byte


def nic_doorbell_address(nic_node, nic_sem, *, word_bytes=16):
    """NoC byte address of the doorbell that increments the peer NIC's semaphore ``nic_sem``."""
    return nic_node << NODE_SHIFT | 1 << (NODE_SHIFT - 1) | nic_sem * word_bytes


def allreduce_program(cfg, x, *, rank, nic_node, peer_node=0, nic_sem=0, ext_sem=8,
                      sram_bits=16):
    """Sum-all-reduce of two chips' FP32 vectors: this chip's half of the program.

    The chip sends its vector ``x`` into the peer tile's receive buffer (the
    same SRAM address on both chips: the programs are built alike), rings the
    peer's doorbell (NIC semaphore ``nic_sem``, which the peer's bridge turns
    into command-processor semaphore ``ext_sem``), waits for the peer's vector
    on its own ``ext_sem`` and adds the two with the TVP. Both chips add in
    rank order (``x0 + x1``), so their results are the same bits.

    Returns ``(program, meta)``; ``meta`` holds the word addresses of ``x``,
    ``recv`` and ``out`` and the word count.
    """
    x = np.asarray(x, np.float32).ravel()
    n = cfg.n
    if x.size == 0 or x.size % n:
        raise ValueError(f"x must hold a positive multiple of {n} values, not {x.size}")
    words = x.size // n
    p = TileProgram(cfg)
    xa = p.sram_data([word_of_floats(x[i:i + n]) for i in range(0, x.size, n)], "x")
    recv = p.alloc(words, "recv")
    out = p.alloc(words, "out")
    wb = cfg.word_bytes
    p.remote_send(xa, words, nic_write_address(nic_node, peer_node, recv * wb,
                                               sram_bits=sram_bits), name="send")
    p.doorbell(nic_doorbell_address(nic_node, nic_sem, word_bytes=wb), name="doorbell")
    p.receive(recv, words, ext_sem)
    first, second = (xa, recv) if rank == 0 else (recv, xa)
    p.vec("ADD", n_beats=words, group=words, a=(first, 1, 0), b=(second, 1, 0),
          o=(out, 1, 0), o_group=words, name="add")
    return p, dict(x=xa, recv=recv, out=out, words=words)
