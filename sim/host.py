"""Host side of the host link (``hw.host``): the golden model of the command protocol.

:class:`HostLink` encodes commands into frames and decodes replies over any
byte transport (an object with ``write(bytes)`` and ``read(n) -> bytes``):

* :class:`SerialTransport`: a real board's serial port (pyserial, imported
  only when one is opened);
* :class:`MemoryTransport`: two in-memory byte queues; a ``pump`` callable
  runs the other side (e.g. steps a simulator) while ``read`` waits for bytes.

Frame sizes come from :class:`hw.host.protocol.Geometry`, the same object the
bridge is built from. ``python -m sim.host --port /dev/ttyUSB0 ping`` talks to
a board.
"""
import argparse
import time
from collections import deque

from hw.common.layout import unpack
from hw.cp.queue import QueueState
from hw.host.protocol import MAX_COUNT, Command, Geometry, Status

__all__ = ["HostLink", "LinkError", "SerialTransport", "MemoryTransport", "run_program",
           "written"]


class LinkError(Exception):
    """The bridge answered with a status other than OK (``.status``)."""

    def __init__(self, status, cmd):
        self.status, self.cmd = status, cmd
        name = Command(cmd).name if cmd in set(Command) else f"command {cmd:#04x}"
        super().__init__(f"{name}: bridge replied {status.name}")


class MemoryTransport:
    """In-memory byte transport.

    The host writes into :attr:`to_device` and reads from :attr:`to_host`;
    the device side pops and appends. ``read`` calls ``pump()`` while fewer
    than ``n`` bytes are there; it returns what it has (like a serial port's
    read timeout) when ``pump`` returns False or ``patience`` calls in a row
    brought no byte.
    """

    def __init__(self, pump=None, patience=200):
        self.to_device = deque()
        self.to_host = deque()
        self.pump = pump
        self.patience = patience

    def write(self, data):
        self.to_device.extend(bytes(data))

    def read(self, n):
        idle = 0
        while len(self.to_host) < n and idle < self.patience:
            had = len(self.to_host)
            if self.pump is None or self.pump() is False:
                break
            idle = 0 if len(self.to_host) > had else idle + 1
        return bytes(self.to_host.popleft() for _ in range(min(n, len(self.to_host))))


class SerialTransport:
    """A serial port through pyserial (``serial.Serial``), 8N1.

    Parameters
    ----------
    port : str
        Device (``/dev/ttyUSB0``, ``COM3``).
    baud : int
        Must match the bridge's ``f_clk / divisor``.
    timeout : float
        Seconds a ``read`` waits.
    """

    def __init__(self, port, baud=115200, timeout=2.0):
        try:
            import serial
        except ImportError as e:
            raise ImportError("SerialTransport needs the 'pyserial' package "
                              "(pip install pyserial); it is not installed") from e
        self.port = serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                  timeout=timeout)

    def write(self, data):
        self.port.write(bytes(data))
        self.port.flush()

    def read(self, n):
        return self.port.read(n)

    def close(self):
        self.port.close()


def _le(value, nbytes):
    return int(value).to_bytes(nbytes, "little")


class HostLink:
    """Commands of :mod:`hw.host.protocol` over ``transport``.

    Every method sends one frame and reads its whole reply; a non-OK status
    raises :class:`LinkError`, a short reply ``TimeoutError``.

    Parameters
    ----------
    transport : object
        ``write(bytes)``, ``read(n) -> bytes``.
    geometry : Geometry
        The bridge's geometry (default: the default tile's).
    """

    def __init__(self, transport, geometry=None):
        self.t = transport
        self.g = geometry or Geometry()

    # --- frames ----------------------------------------------------------
    def frame(self, cmd, count=0, fields=b"", payload=b""):
        """The bytes of one frame (no checks: tests send bad frames on purpose)."""
        return bytes([int(cmd) & 0xFF, count & 0xFF]) + bytes(fields) + bytes(payload)

    def write_frame(self, addr, words):
        g = self.g
        return self.frame(Command.WRITE_WORDS, len(words), _le(addr, g.addr_bytes),
                          b"".join(_le(w, g.word_bytes) for w in words))

    def read_frame(self, addr, n):
        return self.frame(Command.READ_WORDS, n, _le(addr, self.g.addr_bytes))

    def load_frame(self, queue, pc, instructions):
        return self.frame(Command.LOAD_PROGRAM, len(instructions),
                          bytes([queue]) + _le(pc, self.g.pc_bytes),
                          b"".join(_le(i, 8) for i in instructions))

    # --- replies ---------------------------------------------------------
    def transact(self, frame, data_bytes):
        """Send ``frame``; return the reply's data (``data_bytes`` long when OK)."""
        self.t.write(frame)
        head = self.t.read(1)
        if len(head) != 1:
            raise TimeoutError("no reply from the bridge")
        status = Status(head[0])
        if status != Status.OK:
            raise LinkError(status, frame[0])
        body = self.t.read(data_bytes) if data_bytes else b""
        if len(body) != data_bytes:
            raise TimeoutError(f"reply short: {len(body)} of {data_bytes} bytes")
        return body

    def _chunks(self, n):
        for start in range(0, n, MAX_COUNT):
            yield start, min(MAX_COUNT, n - start)

    # --- commands --------------------------------------------------------
    def ping(self):
        self.transact(self.frame(Command.PING), 0)

    def write_words(self, addr, words):
        """Write SRAM words (ints) from word address ``addr``."""
        words = list(words)
        for start, n in self._chunks(len(words)):
            self.transact(self.write_frame(addr + start, words[start:start + n]), 0)

    def read_words(self, addr, n):
        """Read ``n`` SRAM words from word address ``addr`` (a list of ints)."""
        out, wb = [], self.g.word_bytes
        for start, k in self._chunks(n):
            body = self.transact(self.read_frame(addr + start, k), k * wb)
            out += [int.from_bytes(body[j * wb:(j + 1) * wb], "little") for j in range(k)]
        return out

    def load_program(self, queue, instructions, pc=0):
        """Load 64-bit instructions (``hw.cp.isa.encode``) into ``queue`` from ``pc``."""
        instructions = list(instructions)
        for start, n in self._chunks(len(instructions)):
            self.transact(self.load_frame(queue, pc + start, instructions[start:start + n]), 0)

    def start(self, mask):
        """Start the queues whose bits are set in ``mask``."""
        self.transact(self.frame(Command.START, 0, bytes([mask])), 0)

    def status(self):
        """``{"status": [{state, error, pc}...], "sems": [...], "errors": {...}, "macs": int}``."""
        body = self.transact(self.frame(Command.STATUS), self.g.status_bytes)
        out, at = {}, 0
        for name, shape, nbytes in self.g.status_parts:
            out[name] = unpack(shape, int.from_bytes(body[at:at + nbytes], "little"))
            at += nbytes
        return out

    def resync(self):
        """Read whatever is left (after garbage): every pending byte until a read times out."""
        got = b""
        while True:
            b = self.t.read(1)
            if not b:
                return got
            got += b


def written(prog):
    """``(SRAM words, HBM lines)`` a compiled program writes (sorted word/line numbers)."""
    words, lines = set(), set()
    for op in prog.ops:
        words |= op.writes
        lines |= op.hwrites
    return sorted(words), sorted(lines)


def _hbm_words(hbm, wb):
    """``{line: int}`` of an image's HBM bytes (``{byte address: bytes}``); a partly
    covered line is zero elsewhere (the HBM starts zeroed, like the golden model's)."""
    lines = {}
    for a, b in hbm.items():
        for i, byte in enumerate(bytes(b)):
            line, off = divmod(a + i, wb)
            lines.setdefault(line, bytearray(wb))[off] = byte
    return {k: int.from_bytes(v, "little") for k, v in lines.items()}


def _runs(words):
    """Consecutive runs of ``{address: word}`` as ``(first address, [words])``."""
    run = []
    for a in sorted(words):
        if run and a != run[0] + len(run[1]):
            yield run
            run = []
        if not run:
            run = [a, []]
        run[1].append(words[a])
    if run:
        yield run


def run_program(link, prog, *, hbm_base, compare_sram=True, timeout_s=60.0, poll_s=0.0,
                sleep=time.sleep):
    """Load a compiled program over ``link``, run it, compare with the golden model.

    ``hbm_base`` is the word address of HBM line 0 on the link (the FPGA tile maps
    HBM after the tile SRAM, ``hw.board.FPGATile``). ``compare_sram=False`` reads back
    only the HBM lines the program writes (its results), not its SRAM scratch words. Returns ``{"status",
    "sram_words", "sram_bad", "hbm_lines", "hbm_bad", "polls"}``; a run that is not
    DONE on every queue within ``timeout_s`` raises ``TimeoutError``.
    """
    from sim.tile import TileModel   # the golden model; only this entry point needs it
    cfg = prog.cfg
    image = prog.image()
    wb = cfg.word_bytes
    for a, ws in _runs(_hbm_words(image["hbm"], wb)):
        link.write_words(hbm_base + a, ws)
    for q, instructions in enumerate(image["queues"]):
        link.load_program(q, instructions)
    for a, ws in _runs(image["sram"]):
        link.write_words(a, ws)
    link.start((1 << len(image["queues"])) - 1)
    end = time.monotonic() + timeout_s
    polls = 0
    while True:
        st = link.status()
        polls += 1
        states = [QueueState(q["state"]) for q in st["status"]]
        if all(s in (QueueState.DONE, QueueState.ERROR) for s in states):
            break
        if time.monotonic() > end:
            raise TimeoutError(f"queues not done after {timeout_s} s: {states}")
        sleep(poll_s)
    golden = TileModel(cfg).run(prog, image)
    words, lines = written(prog)
    if not compare_sram:
        words = []
    sram = {a: w for a0, ws in _runs({a: 0 for a in words})
            for a, w in zip(range(a0, a0 + len(ws)), link.read_words(a0, len(ws)))}
    hbm = {a: w for a0, ws in _runs({a: 0 for a in lines})
           for a, w in zip(range(a0, a0 + len(ws)), link.read_words(hbm_base + a0, len(ws)))}
    sram_bad = [a for a in words if sram[a] != golden.word(a)]
    hbm_bad = [a for a in lines
               if hbm[a] != int.from_bytes(golden.hbm[a * wb:(a + 1) * wb], "little")]
    return dict(status=[s.name for s in states], sram_words=len(words), sram_bad=len(sram_bad),
                hbm_lines=len(lines), hbm_bad=len(hbm_bad), polls=polls, macs=st["macs"])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sim.host",
                                 description="Talk to an openmaia FPGA tile over its UART host link.")
    ap.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("command", choices=("ping", "status", "read", "gemm"))
    ap.add_argument("--addr", type=lambda s: int(s, 0), default=0, help="read: word address")
    ap.add_argument("--count", type=int, default=1, help="read: words")
    ap.add_argument("--m", type=int, default=4, help="gemm: rows of x")
    ap.add_argument("--k", type=int, default=32, help="gemm: inner dimension")
    ap.add_argument("--n", type=int, default=8, help="gemm: columns of W")
    ap.add_argument("--fp4", action="store_true", help="gemm: MX FP4 weights (default FP8)")
    args = ap.parse_args(argv)
    from hw.board.fpga_tile import FPGA_TILE, fpga_geometry
    cfg = FPGA_TILE
    link = HostLink(SerialTransport(args.port, args.baud), fpga_geometry(cfg))
    if args.command == "ping":
        link.ping()
        print("OK")
    elif args.command == "status":
        print(link.status())
    elif args.command == "read":
        for i, w in enumerate(link.read_words(args.addr, args.count)):
            print(f"{args.addr + i:#06x}: {w:#0{2 + link.g.word_bytes * 2}x}")
    else:
        from sim.compiler.workloads import gemm_layer
        prog, _ = gemm_layer(cfg, M=args.m, K=args.k, N=args.n,
                             wfmt="fp4_e2m1" if args.fp4 else "fp8_e4m3")
        res = run_program(link, prog, hbm_base=cfg.words)
        ok = res["sram_bad"] == 0 and res["hbm_bad"] == 0 and res["status"] == ["DONE"] * 3
        print(f"gemm {args.m}x{args.k}x{args.n}: queues {res['status']}, "
              f"{res['hbm_lines']} HBM lines and {res['sram_words']} SRAM words compared, "
              f"{res['hbm_bad'] + res['sram_bad']} differ from the golden model: "
              f"{'bit-exact' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
