"""The host's end of a UART in a cocotb simulation: a byte transport for :class:`sim.host.HostLink`.

:class:`UARTTransport` drives the design's ``rx`` pin and decodes its ``tx`` pin
(8N1, ``divisor`` clock cycles per bit). Its ``write``/``read`` are blocking, like
:class:`sim.host.SerialTransport`'s, so the very host code that talks to a board
runs against the simulated top: call it through ``cocotb.task.bridge`` (a thread),
and the transport hands each transfer back to the simulator with ``cocotb.task.resume``.
"""
import cocotb
from cocotb.task import resume
from cocotb.triggers import FallingEdge, Timer

__all__ = ["UARTTransport"]


class UARTTransport:
    """8N1 UART on ``dut.rx`` / ``dut.tx``.

    Parameters
    ----------
    dut : cocotb handle
        Has ``clk``, ``rx`` (input, idle high) and ``tx`` (output, idle high).
    divisor : int
        Clock cycles per bit (the design's).
    period_ns : float
        The clock period (bits are timed with ``Timer`` s, so Python runs once
        per bit, not once per cycle).
    quiet_bytes : int
        A ``read`` gives up after this many byte times without a new byte.
    """

    def __init__(self, dut, *, divisor, period_ns=10, quiet_bytes=200):
        self.dut, self.divisor = dut, divisor
        self.bit_ns = divisor * period_ns
        self.quiet = quiet_bytes
        self.received = bytearray()
        self.framing_errors = 0
        dut.rx.value = 1
        self._rx_task = cocotb.start_soon(self._receive())

    async def _receive(self):
        bit = self.bit_ns
        while True:
            await FallingEdge(self.dut.tx)
            await Timer(bit / 2, "ns")      # the middle of the start bit
            if int(self.dut.tx.value):
                continue            # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await Timer(bit, "ns")
                byte |= int(self.dut.tx.value) << i
            await Timer(bit, "ns")
            if not int(self.dut.tx.value):
                self.framing_errors += 1
                continue
            self.received.append(byte)

    async def send(self, data):
        """Drive ``data`` onto ``rx`` (from a coroutine)."""
        for byte in bytes(data):
            for bit in (0, *((byte >> i) & 1 for i in range(8)), 1):
                self.dut.rx.value = bit
                await Timer(self.bit_ns, "ns")

    async def receive(self, n):
        """Up to ``n`` bytes; fewer if the line stays quiet (from a coroutine)."""
        idle = 0
        while len(self.received) < n and idle < self.quiet:
            before = len(self.received)
            await Timer(10 * self.bit_ns, "ns")     # one byte time
            idle = 0 if len(self.received) != before else idle + 1
        out = bytes(self.received[:n])
        del self.received[:n]
        return out

    # Blocking API of a HostLink transport: only from a cocotb.task.bridge thread.
    def write(self, data):
        resume(self.send)(data)

    def read(self, n):
        return resume(self.receive)(n)

    def close(self):
        self._rx_task.cancel()
