"""Ethernet MAC framing on an 8-bit byte stream: padding, FCS generation and checking."""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.common import check_int, saturating_add

__all__ = ["ByteLayout", "crc32_byte", "EthTx", "EthRx"]

#: One beat of a frame: a byte and the end-of-frame marker (8-bit data path,
#: so no ``keep`` is needed).
ByteLayout = data.StructLayout({"data": 8, "last": 1})

CRC_POLY_REFLECTED = 0xEDB88320
#: Register value after a good frame *and* its FCS went through the CRC.
CRC_RESIDUE = 0xDEBB20E3
MIN_FRAME = 64  # bytes on the wire including FCS
FCS_BYTES = 4   # the IEEE CRC-32, least significant byte first


def _crc_step_int(crc, byte):
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ (CRC_POLY_REFLECTED if crc & 1 else 0)
    return crc


# CRC is linear over GF(2): output bit j is the XOR of the input bits
# (32 register bits, then 8 data bits) set in _CRC_TAPS[j].
_CRC_TAPS = [
    sum(1 << k for k in range(40)
        if (_crc_step_int((1 << k) & 0xFFFFFFFF, (1 << k) >> 32) >> j) & 1)
    for j in range(32)
]


def crc32_byte(crc, byte):
    """Next reflected CRC-32 register after ``byte`` (flat XOR network, no final XOR)."""
    bits = Cat(Value.cast(crc)[:32], Value.cast(byte)[:8] if isinstance(byte, Value)
               else Const(byte, 8))
    return Cat(*[Cat(*[bits[k] for k in range(40) if taps >> k & 1]).xor()
                 for taps in _CRC_TAPS])


class EthTx(wiring.Component):
    """Frame transmitter: zero-pads to 60 bytes and appends the FCS.

    The client sends destination MAC, source MAC, EtherType and payload
    (``last`` on the final byte); the frame leaves with padding and the
    IEEE CRC-32 FCS, least-significant byte first, ``last`` on the final FCS
    byte. Data bytes pass through combinationally (``i_stream.ready`` follows
    ``o_stream.ready``); padding and FCS add ``max(0, 60 - n) + 4`` cycles per
    frame, so back-to-back frames leave with no idle cycle between them.

    Attributes
    ----------
    i_stream : In(stream.Signature(ByteLayout))
        Frame without FCS.
    o_stream : Out(stream.Signature(ByteLayout))
        Frame on the wire.
    frames : Out(16)
        Frames sent (saturating).
    """

    def __init__(self):
        super().__init__({
            "i_stream": In(stream.Signature(ByteLayout)),
            "o_stream": Out(stream.Signature(ByteLayout)),
            "frames": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        crc = Signal(32, init=0xFFFFFFFF)
        count = Signal(range(61))  # bytes so far, saturating at 60
        idx = Signal(2)            # FCS byte index
        i, o = self.i_stream, self.o_stream
        beat = o.valid & o.ready
        with m.FSM():
            with m.State("DATA"):
                m.d.comb += [
                    o.valid.eq(i.valid),
                    o.payload.data.eq(i.payload.data),
                    i.ready.eq(o.ready),
                ]
                with m.If(beat):
                    m.d.sync += [
                        crc.eq(crc32_byte(crc, i.payload.data)),
                        count.eq(count + (count != 60)),
                    ]
                    with m.If(i.payload.last):
                        with m.If(count < 59):
                            m.next = "PAD"
                        with m.Else():
                            m.next = "FCS"
            with m.State("PAD"):
                m.d.comb += o.valid.eq(1)
                with m.If(beat):
                    m.d.sync += [crc.eq(crc32_byte(crc, 0)), count.eq(count + 1)]
                    with m.If(count == 59):
                        m.next = "FCS"
            with m.State("FCS"):
                m.d.comb += [
                    o.valid.eq(1),
                    o.payload.data.eq((~crc).word_select(idx, 8)),
                    o.payload.last.eq(idx == 3),
                ]
                with m.If(beat):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == 3):
                        m.d.sync += [crc.eq(0xFFFFFFFF), count.eq(0)]
                        saturating_add(m, self.frames)
                        m.next = "DATA"
        return m


class EthRx(wiring.Component):
    """Store-and-forward frame receiver with FCS, runt and oversize checks.

    Frames (FCS included) are written into one of two buffers; a frame that
    is shorter than 64 bytes (runt), longer than ``max_frame`` (oversize) or
    whose CRC residue is wrong is discarded and counted, so only good frames
    (without their FCS) appear on ``o_stream``. With two buffers one frame
    is read out while the next is received: full rate for frames of at least
    64 bytes.

    Parameters
    ----------
    max_frame : int
        Longest accepted frame including FCS, 64..4096.

    Attributes
    ----------
    i_stream : In(stream.Signature(ByteLayout))
        Bytes from the wire; ``last`` on the final FCS byte.
    o_stream : Out(stream.Signature(ByteLayout))
        Good frames, FCS stripped (padding kept).
    ok, fcs_errors, runts, oversize : Out(16)
        Frame counters (saturating).
    """

    def __init__(self, *, max_frame=512):
        self._max_frame = check_int("max_frame", max_frame, min=64, max=4096)
        super().__init__({
            "i_stream": In(stream.Signature(ByteLayout)),
            "o_stream": Out(stream.Signature(ByteLayout)),
            "ok": Out(16),
            "fcs_errors": Out(16),
            "runts": Out(16),
            "oversize": Out(16),
        })
        self._full = Signal(2)

    def elaborate(self, platform):
        m = Module()
        mf = self._max_frame
        abits = (mf - 1).bit_length()
        m.submodules.mem = mem = Memory(shape=8, depth=2 << abits, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=())
        i, o = self.i_stream, self.o_stream
        full = self._full
        length = [Signal(range(mf + 1), name=f"length{k}") for k in range(2)]
        # -- write side ---------------------------------------------------
        wslot = Signal()
        wcount = Signal(range(mf + 2))  # saturates at mf + 1: "too long"
        crc = Signal(32, init=0xFFFFFFFF)
        accept = i.valid & i.ready
        nxt = crc32_byte(crc, i.payload.data)
        set_full = Signal(2)
        m.d.comb += [
            i.ready.eq(~full.bit_select(wslot, 1)),
            wp.addr.eq(Cat(wcount[:abits], wslot)),
            wp.data.eq(i.payload.data),
            wp.en.eq(accept & (wcount < mf)),
        ]
        with m.If(accept):
            m.d.sync += [crc.eq(nxt), wcount.eq(wcount + (wcount != mf + 1))]
            with m.If(i.payload.last):
                m.d.sync += [crc.eq(0xFFFFFFFF), wcount.eq(0)]
                with m.If(wcount < MIN_FRAME - 1):
                    saturating_add(m, self.runts)
                with m.Elif(wcount >= mf):
                    saturating_add(m, self.oversize)
                with m.Elif(~self._fcs_good(nxt)):
                    saturating_add(m, self.fcs_errors)
                with m.Else():
                    saturating_add(m, self.ok)
                    m.d.sync += wslot.eq(~wslot)
                    m.d.comb += set_full.eq(1 << wslot)
                    for k in range(2):
                        with m.If(wslot == k):
                            # Frame length without the 4 FCS bytes.
                            m.d.sync += length[k].eq(wcount - 3)
        # -- read side ----------------------------------------------------
        rslot = Signal()
        rptr = Signal(range(mf + 1))
        last = Signal()
        clr_full = Signal(2)
        adv = ~o.valid | o.ready
        rlen = Mux(rslot, length[1], length[0])
        m.d.comb += [
            rp.en.eq(adv),
            rp.addr.eq(Cat(rptr[:abits], rslot)),
            o.payload.data.eq(rp.data),
            o.payload.last.eq(last),
        ]
        with m.If(adv):
            with m.If(full.bit_select(rslot, 1)):
                is_last = rptr == rlen - 1
                m.d.sync += [o.valid.eq(1), last.eq(is_last), rptr.eq(rptr + 1)]
                with m.If(is_last):
                    # The byte is now in the read port's register: free the slot.
                    m.d.sync += [rptr.eq(0), rslot.eq(~rslot)]
                    m.d.comb += clr_full.eq(1 << rslot)
            with m.Else():
                m.d.sync += o.valid.eq(0)
        m.d.sync += full.eq((full | set_full) & ~clr_full)
        return m

    def _fcs_good(self, crc):
        """The CRC register after the whole frame (FCS included) is the residue."""
        return crc == CRC_RESIDUE
