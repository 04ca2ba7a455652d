"""Host bridge: the command protocol of :mod:`hw.host.protocol` on a byte stream.

Three stream-connected stages (``docs/host.md``)::

    i_bytes -> CommandParser -> ops -> CommandExecutor -> items -> ReplyFramer -> o_bytes
                                          |  host (SRAM), load, start
                                          |  status, sems, errors, macs

The parser checks a frame's command, count and address range before anything
is executed and turns it into *ops* (one per word or instruction, plus one
``REPLY`` op carrying the status byte); the executor performs one op at a
time against the tile's ports and hands *items* (a status byte, a read word,
a status snapshot) to the framer, which sends them byte by byte, LSB first.
Because the executor finishes each op before taking the next, the reply bytes
leave in frame order with no bookkeeping of outstanding reads.
"""
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.common import StreamFIFO, check_int, forward, prefixed, saturating_add
from hw.cp.isa import INSTRUCTION
from hw.mem.sram import SRAMPortSignature

from .protocol import INSTRUCTION_BYTES, Command, Geometry, Status
from .uart import UARTRx, UARTTx

__all__ = ["HostBridge", "HostUARTBridge", "CommandParser", "CommandExecutor", "ReplyFramer",
           "OpKind", "load_layout"]


class OpKind(enum.Enum, shape=3):
    REPLY = 0    #: send ``status`` as the reply's first byte
    WRITE = 1    #: SRAM word ``addr`` <- ``data``
    READ = 2     #: SRAM word ``addr`` -> reply data
    LOAD = 3     #: instruction ``data`` -> queue ``queue`` at ``addr``
    START = 4    #: pulse ``start`` with mask ``data``
    STATUS = 5   #: snapshot of status, sems, errors, macs -> reply data


def load_layout(depth, n_queues):
    """Payload of the command processor's ``load`` stream (``hw.cp.CommandProcessor.load``)."""
    return data.StructLayout({"queue": range(n_queues), "addr": range(depth),
                              "data": INSTRUCTION})


def op_layout(g):
    return data.StructLayout({
        "kind": OpKind,
        "addr": max(g.addr_width, (g.depth - 1).bit_length()),
        "queue": range(g.n_queues),
        "data": max(g.word_bits, INSTRUCTION.size),
        "status": Status,
    })


def item_layout(g):
    item_bytes = max(g.word_bytes, g.status_bytes)
    return data.StructLayout({"data": 8 * item_bytes, "nbytes": range(item_bytes + 1)})


def _geometry(g):
    if not isinstance(g, Geometry):
        raise TypeError(f"geometry must be a hw.host.protocol.Geometry, not {g!r}")
    return g


class CommandParser(wiring.Component):
    """Frames in, checked ops out (see :mod:`hw.host.protocol` for the frames).

    Parameters
    ----------
    geometry : Geometry
        Field sizes and ranges.
    timeout : int
        Idle cycles inside a frame (or while discarding) before it is given up.

    Attributes
    ----------
    i_stream : In(stream.Signature(8))
        Bytes from the host.
    o_stream : Out(stream.Signature(op_layout))
        Ops for the executor; ``valid`` and ``payload`` come from registers.
    """

    def __init__(self, *, geometry, timeout):
        self._g = g = _geometry(geometry)
        self._timeout = check_int("timeout", timeout, min=1)
        self.op_layout = op_layout(g)
        super().__init__({
            "i_stream": In(stream.Signature(8)),
            "o_stream": Out(stream.Signature(self.op_layout)),
        })

    def _range_ok(self, m, cmd, count, addr, queue, pc, mask):
        """Whether the frame's fields name existing words, queue entries and queues."""
        g = self._g
        ok = Signal()
        with m.Switch(cmd):
            with m.Case(Command.WRITE_WORDS, Command.READ_WORDS):
                m.d.comb += ok.eq(addr + count <= g.words)
            with m.Case(Command.LOAD_PROGRAM):
                m.d.comb += ok.eq((queue < g.n_queues) & (pc + count <= g.depth))
            with m.Case(Command.START):
                m.d.comb += ok.eq((mask >> g.n_queues) == 0)
            with m.Default():
                m.d.comb += ok.eq(1)
        return ok

    def elaborate(self, platform):
        m = Module()
        g, i, o = self._g, self.i_stream, self.o_stream
        field_max = max(g.field_bytes(c) for c in Command)
        unit_max = max(g.unit_bytes(c) for c in Command)
        cmd = Signal(8)
        count = Signal(8)
        fields = Signal(8 * field_max)
        nfield = Signal(range(field_max))
        err = Signal(Status)
        cur = Signal(len(o.payload.addr))
        left = Signal(8)
        word = Signal(8 * unit_max)
        nbyte = Signal(range(unit_max))
        drop = Signal(range(unit_max * 255 + 1))
        idle = Signal(range(self._timeout + 1))

        # Per-command sizes, decoded from the latched command.
        known, counted = Signal(), Signal()
        nfields = Signal(range(field_max + 1))
        unit = Signal(range(unit_max + 1))
        with m.Switch(cmd):
            for c in Command:
                with m.Case(c):
                    m.d.comb += [known.eq(1), counted.eq(g.counted(c)),
                                 nfields.eq(g.field_bytes(c)), unit.eq(g.unit_bytes(c))]
        # Fields, little-endian.
        addr = fields[:8 * g.addr_bytes]
        queue = fields[:8]
        pc = fields[8:8 + 8 * g.pc_bytes] if field_max > 1 else Const(0, 1)
        mask = fields[:8]
        ok = self._range_ok(m, cmd, count, addr, queue, pc, mask)

        beat = i.valid & i.ready
        receiving = Signal()
        expired = Signal()
        m.d.comb += expired.eq(idle == self._timeout)
        m.d.comb += i.ready.eq(receiving & ~expired)
        with m.If(~receiving | beat):
            m.d.sync += idle.eq(0)
        with m.Elif(~expired):
            m.d.sync += idle.eq(idle + 1)

        def emit(kind, **fields_):
            m.d.comb += [o.valid.eq(1), o.payload.kind.eq(kind)]
            for k, v in fields_.items():
                m.d.comb += getattr(o.payload, k).eq(v)

        def give_up(status):
            m.d.sync += err.eq(status)
            m.next = "REPLY"

        with m.FSM():
            with m.State("CMD"):
                m.d.comb += i.ready.eq(1)
                with m.If(beat):
                    m.d.sync += [cmd.eq(i.payload), fields.eq(0), nfield.eq(0)]
                    m.next = "LEN"
                    with m.Switch(i.payload):
                        for c in Command:
                            with m.Case(c):
                                pass
                        with m.Default():
                            m.d.sync += err.eq(Status.UNKNOWN_COMMAND)
                            m.next = "DISCARD"
            with m.State("LEN"):
                m.d.comb += receiving.eq(1)
                with m.If(expired):
                    give_up(Status.TRUNCATED)
                with m.Elif(beat):
                    m.d.sync += count.eq(i.payload)
                    with m.If(counted & (i.payload == 0) | ~counted & (i.payload != 0)):
                        m.d.sync += err.eq(Status.BAD_LENGTH)
                        m.next = "DISCARD"
                    with m.Elif(nfields != 0):
                        m.next = "FIELDS"
                    with m.Else():
                        m.next = "DISPATCH"
            with m.State("FIELDS"):
                m.d.comb += receiving.eq(1)
                with m.If(expired):
                    give_up(Status.TRUNCATED)
                with m.Elif(beat):
                    m.d.sync += [fields.word_select(nfield, 8).eq(i.payload),
                                 nfield.eq(nfield + 1)]
                    with m.If(nfield == nfields - 1):
                        m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.sync += [left.eq(count), nbyte.eq(0), word.eq(0),
                             drop.eq(count * unit), err.eq(Status.OK)]
                with m.If(cmd == Command.LOAD_PROGRAM):
                    m.d.sync += cur.eq(pc)
                with m.Else():
                    m.d.sync += cur.eq(addr)
                with m.If(~ok):
                    m.d.sync += err.eq(Status.BAD_ADDRESS)
                with m.Switch(cmd):
                    with m.Case(Command.WRITE_WORDS, Command.LOAD_PROGRAM):
                        with m.If(ok):
                            m.next = "DATA"
                        with m.Else():
                            m.next = "DROP"
                    with m.Case(Command.READ_WORDS):
                        with m.If(ok):
                            m.next = "READ_HDR"
                        with m.Else():
                            m.next = "REPLY"
                    with m.Case(Command.START):
                        with m.If(ok):
                            m.next = "START_OP"
                        with m.Else():
                            m.next = "REPLY"
                    with m.Case(Command.STATUS):
                        m.next = "STATUS_HDR"
                    with m.Default():
                        m.next = "REPLY"
            with m.State("DATA"):
                m.d.comb += receiving.eq(1)
                with m.If(expired):
                    give_up(Status.TRUNCATED)
                with m.Elif(beat):
                    m.d.sync += [word.word_select(nbyte, 8).eq(i.payload), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == unit - 1):
                        m.next = "PUT"
            with m.State("PUT"):
                with m.If(cmd == Command.LOAD_PROGRAM):
                    emit(OpKind.LOAD, addr=cur, queue=queue, data=word)
                with m.Else():
                    emit(OpKind.WRITE, addr=cur, data=word)
                with m.If(o.ready):
                    m.d.sync += [cur.eq(cur + 1), left.eq(left - 1), nbyte.eq(0)]
                    with m.If(left == 1):
                        m.next = "REPLY"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DROP"):
                m.d.comb += receiving.eq(1)
                with m.If(expired):
                    give_up(Status.TRUNCATED)
                with m.Elif(beat):
                    m.d.sync += drop.eq(drop - 1)
                    with m.If(drop == 1):
                        m.next = "REPLY"
            with m.State("DISCARD"):
                # The frame's length is unknown: wait for a quiet link, then answer.
                m.d.comb += receiving.eq(1)
                with m.If(expired):
                    m.next = "REPLY"
            with m.State("READ_HDR"):
                emit(OpKind.REPLY, status=Status.OK)
                with m.If(o.ready):
                    m.next = "READS"
            with m.State("READS"):
                emit(OpKind.READ, addr=cur)
                with m.If(o.ready):
                    m.d.sync += [cur.eq(cur + 1), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.next = "CMD"
            with m.State("STATUS_HDR"):
                emit(OpKind.REPLY, status=Status.OK)
                with m.If(o.ready):
                    m.next = "STATUS_OP"
            with m.State("STATUS_OP"):
                emit(OpKind.STATUS)
                with m.If(o.ready):
                    m.next = "CMD"
            with m.State("START_OP"):
                emit(OpKind.START, data=mask)
                with m.If(o.ready):
                    m.next = "REPLY"
            with m.State("REPLY"):
                emit(OpKind.REPLY, status=err)
                with m.If(o.ready):
                    m.next = "CMD"
        return m


class CommandExecutor(wiring.Component):
    """Performs one op at a time on the tile's ports; reply items out.

    Parameters
    ----------
    geometry : Geometry

    Attributes
    ----------
    i_stream : In(stream.Signature(op_layout))
        Ops from the parser.
    o_stream : Out(stream.Signature(item_layout))
        Reply items (``nbytes`` bytes of ``data``, LSB first) for the framer.
    host : Out(SRAMPortSignature)
        SRAM master port (full-word writes, one read outstanding at a time).
    load : Out(stream.Signature(load_layout))
        Program words into the command processor.
    start : Out(n_queues)
        One-cycle start pulse.
    status, sems, errors, macs : In
        Sampled together for a STATUS reply.
    link_errors : Out(16)
        Saturating count of error replies.
    """

    def __init__(self, *, geometry):
        self._g = g = _geometry(geometry)
        self.op_layout = op_layout(g)
        self.item_layout = item_layout(g)
        super().__init__({
            "i_stream": In(stream.Signature(self.op_layout)),
            "o_stream": Out(stream.Signature(self.item_layout)),
            "host": Out(SRAMPortSignature(addr_width=g.addr_width, data_width=g.word_bits)),
            "load": Out(stream.Signature(load_layout(g.depth, g.n_queues))),
            "start": Out(g.n_queues),
            "status": In(g.status_shape),
            "sems": In(g.sems_shape),
            "errors": In(g.errors_shape),
            "macs": In(g.macs_width),
            "link_errors": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        g, i, o = self._g, self.i_stream, self.o_stream
        op = Signal(self.op_layout)
        item_data = Signal.like(o.payload.data)
        item_n = Signal.like(o.payload.nbytes)
        # STATUS reply: each part little-endian in its own whole bytes.
        parts = []
        for name, _, nbytes in g.status_parts:
            v = getattr(self, name)
            v = v.as_value() if hasattr(v, "as_value") else v
            parts.append(v.as_unsigned() if len(v) == 8 * nbytes
                         else Cat(v, Const(0, 8 * nbytes - len(v))))
        snapshot = Cat(*parts)

        req = self.host.req
        m.d.comb += [
            o.payload.data.eq(item_data), o.payload.nbytes.eq(item_n),
            req.payload.addr.eq(op.addr), req.payload.wdata.eq(op.data),
            self.load.payload.queue.eq(op.queue), self.load.payload.addr.eq(op.addr),
            self.load.payload.data.eq(op.data[:INSTRUCTION.size]),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid):
                    m.d.sync += op.eq(i.payload)
                    with m.Switch(i.payload.kind):
                        with m.Case(OpKind.REPLY):
                            m.d.sync += [item_data.eq(i.payload.status), item_n.eq(1)]
                            with m.If(i.payload.status != Status.OK):
                                saturating_add(m, self.link_errors)
                            m.next = "EMIT"
                        with m.Case(OpKind.WRITE):
                            m.next = "WRITE"
                        with m.Case(OpKind.READ):
                            m.next = "READ"
                        with m.Case(OpKind.LOAD):
                            m.next = "LOAD"
                        with m.Case(OpKind.START):
                            m.next = "START"
                        with m.Case(OpKind.STATUS):
                            m.d.sync += [item_data.eq(snapshot), item_n.eq(g.status_bytes)]
                            m.next = "EMIT"
            with m.State("WRITE"):
                # Full-word writes (strobes set here, not as a constant: a constant
                # output would be an empty always block in the Verilog).
                m.d.comb += [req.valid.eq(1), req.payload.we.eq(1),
                             req.payload.wstrb.eq((1 << g.word_bytes) - 1)]
                with m.If(req.ready):
                    m.next = "IDLE"
            with m.State("READ"):
                m.d.comb += req.valid.eq(1)
                with m.If(req.ready):
                    m.next = "RSP"
            with m.State("RSP"):
                m.d.comb += self.host.rsp.ready.eq(1)
                with m.If(self.host.rsp.valid):
                    m.d.sync += [item_data.eq(self.host.rsp.payload), item_n.eq(g.word_bytes)]
                    m.next = "EMIT"
            with m.State("LOAD"):
                m.d.comb += self.load.valid.eq(1)
                with m.If(self.load.ready):
                    m.next = "IDLE"
            with m.State("START"):
                m.d.comb += self.start.eq(op.data[:g.n_queues])
                m.next = "IDLE"
            with m.State("EMIT"):
                m.d.comb += o.valid.eq(1)
                with m.If(o.ready):
                    m.next = "IDLE"
        return m


class ReplyFramer(wiring.Component):
    """Reply items in, bytes out (``nbytes`` bytes of ``data``, least significant first).

    Parameters
    ----------
    geometry : Geometry

    Attributes
    ----------
    i_stream : In(stream.Signature(item_layout))
    o_stream : Out(stream.Signature(8))
        ``valid`` and ``payload`` come from registers.
    """

    def __init__(self, *, geometry):
        self._g = g = _geometry(geometry)
        self.item_layout = item_layout(g)
        super().__init__({
            "i_stream": In(stream.Signature(self.item_layout)),
            "o_stream": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        shift = Signal.like(i.payload.data)
        left = Signal.like(i.payload.nbytes)
        m.d.comb += [i.ready.eq(left == 0), o.valid.eq(left != 0), o.payload.eq(shift[:8])]
        with m.If(i.valid & i.ready):
            m.d.sync += [shift.eq(i.payload.data), left.eq(i.payload.nbytes)]
        with m.Elif(o.valid & o.ready):
            m.d.sync += [shift.eq(shift[8:]), left.eq(left - 1)]
        return m


class HostBridge(wiring.Component):
    """The host command protocol between a byte stream and a tile's host-facing ports.

    The signature mirrors :class:`hw.tile.Tile`'s host side (``host`` SRAM
    port, ``load``, ``start``, ``status``, ``sems``, ``errors``, ``macs``),
    flipped, so a board top connects them one to one; the shapes are
    parameters, so the bridge needs no Tile. Bad input gets an error reply,
    counts in ``link_errors`` and leaves the bridge ready for the next frame.

    Parameters
    ----------
    word_bits, addr_width, depth, n_queues, words : int
        SRAM word width and word-address width, CP queue depth and count,
        SRAM words (default ``2**addr_width``); see :class:`~hw.host.protocol.Geometry`.
    status_shape, sems_shape, errors_shape : shape-castable or None
        Shapes of the tile's ``status``, ``sems`` and ``errors`` (default:
        the default tile's).
    macs_width : int
        Width of the tile's ``macs``.
    timeout : int
        Idle cycles inside a frame before it is answered TRUNCATED; also the
        quiet time that ends the discarding of an unknown or bad-length frame.

    Attributes
    ----------
    i_bytes : In(stream.Signature(8))
        Bytes from the host.
    o_bytes : Out(stream.Signature(8))
        Reply bytes.
    host : Out(SRAMPortSignature)
        To the tile's ``host`` port.
    load : Out(stream)
        To the tile's ``load`` stream.
    start : Out(n_queues)
        To the tile's ``start``.
    status, sems, errors, macs : In
        From the tile's ports of the same names.
    link_errors : Out(16)
        Saturating count of error replies.
    """

    Parser = CommandParser

    def __init__(self, *, word_bits=128, addr_width=12, depth=256, n_queues=3, words=None,
                 status_shape=None, sems_shape=None, errors_shape=None, macs_width=32,
                 timeout=1024):
        self.geometry = g = Geometry(word_bits=word_bits, addr_width=addr_width, depth=depth,
                                     n_queues=n_queues, words=words, status_shape=status_shape,
                                     sems_shape=sems_shape, errors_shape=errors_shape,
                                     macs_width=macs_width)
        self._timeout = check_int("timeout", timeout, min=1)
        self._parser = self.Parser(geometry=g, timeout=timeout)
        self._executor = CommandExecutor(geometry=g)
        self._framer = ReplyFramer(geometry=g)
        super().__init__({
            "i_bytes": In(stream.Signature(8)),
            "o_bytes": Out(stream.Signature(8)),
            **prefixed(self._executor, "", skip=("i_stream", "o_stream")),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = self._parser
        m.submodules.executor = executor = self._executor
        m.submodules.framer = framer = self._framer
        wiring.connect(m, wiring.flipped(self.i_bytes), parser.i_stream)
        wiring.connect(m, parser.o_stream, executor.i_stream)
        wiring.connect(m, executor.o_stream, framer.i_stream)
        wiring.connect(m, framer.o_stream, wiring.flipped(self.o_bytes))
        forward(m, self, executor, skip=("i_stream", "o_stream"))
        return m


class HostUARTBridge(wiring.Component):
    """:class:`HostBridge` behind an 8N1 UART: the block a board top instantiates.

    ``rx -> UARTRx -> StreamFIFO -> HostBridge -> UARTTx -> tx``. The FIFO
    absorbs bytes that arrive while the bridge is busy with a previous op.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (``f_clk / baud``).
    timeout_bytes : int
        The bridge's timeout in byte times (``10 * divisor`` cycles each).
    fifo_depth : int
        Receive FIFO entries.
    **kwargs
        :class:`HostBridge` parameters (not ``timeout``).

    Attributes
    ----------
    rx : In(1)
        UART receive pin (idle high).
    tx : Out(1)
        UART transmit pin (idle high).
    rx_framing_errors, rx_overruns : Out(16)
        The receiver's counters.
    host, load, start, status, sems, errors, macs, link_errors
        As :class:`HostBridge`.
    """

    def __init__(self, *, divisor, timeout_bytes=64, fifo_depth=16, **kwargs):
        check_int("timeout_bytes", timeout_bytes, min=1)
        check_int("fifo_depth", fifo_depth, min=1)
        if "timeout" in kwargs:
            raise TypeError("timeout is set by timeout_bytes")
        self._rx = UARTRx(divisor=divisor)
        self._tx = UARTTx(divisor=divisor)
        self._fifo = StreamFIFO(payload_shape=8, depth=fifo_depth)
        self._bridge = HostBridge(timeout=timeout_bytes * 10 * divisor, **kwargs)
        self.geometry = self._bridge.geometry
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "rx_framing_errors": Out(16),
            "rx_overruns": Out(16),
            **prefixed(self._bridge, "", skip=("i_bytes", "o_bytes")),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = self._rx
        m.submodules.tx = tx = self._tx
        m.submodules.fifo = fifo = self._fifo
        m.submodules.bridge = bridge = self._bridge
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     self.rx_framing_errors.eq(rx.framing_errors),
                     self.rx_overruns.eq(rx.overruns)]
        wiring.connect(m, rx.o_stream, fifo.i_stream)
        wiring.connect(m, fifo.o_stream, bridge.i_bytes)
        wiring.connect(m, bridge.o_bytes, tx.i_stream)
        forward(m, self, bridge, skip=("i_bytes", "o_bytes"))
        return m
