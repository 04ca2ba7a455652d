"""The ATL wire format: the one home of the header layout, op codes and constants.

Everything that both the RTL (``hw/nic/transport.py``) and the golden model
(``sim/nic.py``) need to agree on about the bytes of an ATL frame lives here:
the hardware builds and parses headers with these offsets, and the model
packs and unpacks bytes with the same table (``docs/nic.md``).

An ATL frame is a plain Ethernet II frame (``ETH_HDR_BYTES`` of destination
MAC, source MAC and :data:`ETHERTYPE`) whose payload starts with the
16-byte header :data:`HeaderLayout`, then (WRITE only) the payload bytes.
"""
from amaranth.hdl import Cat, Const
from amaranth.lib import data, enum

__all__ = ["ETHERTYPE", "VERSION", "Op", "VerOpLayout", "HeaderLayout", "HEADER_BYTES",
           "HEADER_FIELDS", "ETH_HDR_BYTES", "ETH_FIELDS", "PSN_BITS", "SACK_BITS", "header_bytes"]

#: IEEE 802 "local experimental" EtherType: ATL frames are plain Ethernet II.
ETHERTYPE = 0x88B5
#: Header version (high nibble of byte 0); frames with another version are foreign.
VERSION = 1
#: PSN width on the wire.
PSN_BITS = 16
#: Bits of the SACK field: bit i = PSN ``ack + 1 + i`` received.
SACK_BITS = 32


class Op(enum.Enum, shape=4):
    """ATL op code (low nibble of header byte 0)."""
    #: RDMA write: ``len`` payload bytes placed at byte offset ``addr``.
    WRITE = 1
    #: Increment the receiver's semaphore ``addr`` by one (fires in PSN order).
    SEM = 2
    #: Cumulative ACK (``ack``) with the SACK bitmap (``sack``).
    ACK = 3
    #: Same as ACK, sent when the packet that triggered it was out of order.
    NACK = 4


#: Header byte 0: op code in the low nibble, :data:`VERSION` in the high one.
VerOpLayout = data.StructLayout({"op": Op, "ver": 4})

#: The 16-byte ATL header in wire order: the field at bit ``8 * k`` starts at
#: header byte ``k``. Multi-byte fields are big-endian on the wire (their
#: first byte is their most significant one).
#:
#: ====== ===== =========================================================
#: bytes  field meaning
#: ====== ===== =========================================================
#: 0      vo    version (high nibble, 1) and op code (low nibble)
#: 1      flow  connection id (the same at both ends)
#: 2-3    psn   packet sequence number (data) / 0 (ACK, NACK)
#: 4-5    ack   cumulative ACK: next PSN expected (ACK, NACK) / 0
#: 6-9    sack  bit i: PSN ack+1+i received (ACK, NACK) / 0
#: 10-13  addr  byte offset (WRITE) / semaphore index (SEM) / 0
#: 14-15  len   payload bytes (WRITE) / 0
#: ====== ===== =========================================================
HeaderLayout = data.StructLayout({
    "vo": VerOpLayout,
    "flow": 8,
    "psn": PSN_BITS,
    "ack": PSN_BITS,
    "sack": SACK_BITS,
    "addr": 32,
    "len": 16,
})

HEADER_BYTES = HeaderLayout.size // 8


def _byte_table(layout):
    table = {}
    for name, field in layout:
        assert field.offset % 8 == 0 and field.width % 8 == 0, name
        table[name] = (field.offset // 8, field.width // 8)
    return table


#: ``field -> (byte offset in the header, bytes)``, derived from :data:`HeaderLayout`.
HEADER_FIELDS = _byte_table(HeaderLayout)

#: The Ethernet II header in front of it: ``field -> (byte offset, bytes)``.
ETH_FIELDS = {"dst": (0, 6), "src": (6, 6), "ethertype": (12, 2)}
ETH_HDR_BYTES = sum(n for _, n in ETH_FIELDS.values())

assert HEADER_BYTES == 16 and ETH_HDR_BYTES == 14


def header_bytes(**fields):
    """The ATL header as a 128-bit value, byte ``i`` at bits ``8 i`` (wire order).

    ``fields`` maps :data:`HeaderLayout` field names to values; multi-byte
    fields go out big-endian, absent fields are zero (adjacent ones merged
    into one constant).
    """
    parts, zeros = [], 0
    for name, (_, n) in HEADER_FIELDS.items():
        v = fields.pop(name, None)
        if v is None:
            zeros += 8 * n
            continue
        if zeros:
            parts.append(Const(0, zeros))
            zeros = 0
        parts += [v] if n == 1 else [v[8 * (n - 1 - k):8 * (n - k)] for k in range(n)]
    if zeros:
        parts.append(Const(0, zeros))
    assert not fields, f"unknown header fields {sorted(fields)}"
    hdr = Cat(*parts)
    assert len(hdr) == HeaderLayout.size
    return hdr
