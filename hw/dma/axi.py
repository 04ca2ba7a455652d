"""AXI4 master signature whose flattened port names cocotbext-axi finds.

Amaranth flattens a member ``m_axi`` of a component into ports named
``m_axi__<member>``. The members below are plain AXI signal names (``awaddr``,
``awvalid``, ...), so the Verilog ports are ``m_axi__awaddr``,
``m_axi__awvalid`` ..., and ``AxiBus.from_prefix(dut, "m_axi",
bus_separator="__")`` binds them directly: no wrapper and no renaming.
The channels are plain valid/ready members (not :mod:`amaranth.lib.stream`
signatures) because a stream would add a ``__payload`` level.
"""
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int, check_pow2

__all__ = ["AXI4Signature", "Resp", "AXI_OKAY", "AXI_EXOKAY", "AXI_SLVERR", "AXI_DECERR"]


class Resp(enum.IntEnum, shape=2):
    """AXI4 ``RRESP`` / ``BRESP`` codes."""
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


AXI_OKAY, AXI_EXOKAY, AXI_SLVERR, AXI_DECERR = Resp.OKAY, Resp.EXOKAY, Resp.SLVERR, Resp.DECERR


class AXI4Signature(wiring.Signature):
    """AXI4 master interface (AW, W, B, AR, R), seen from the master.

    Parameters
    ----------
    addr_width : int
        Byte-address width.
    data_width : int
        Data width in bits, a power of two >= 8.
    id_width : int
        Transaction ID width (>= 1).
    """

    def __init__(self, *, addr_width, data_width, id_width=1):
        self.addr_width = check_int("addr_width", addr_width, min=12, max=64)
        self.data_width = check_pow2("data_width", data_width, min=8, max=1024)
        self.id_width = check_int("id_width", id_width, min=1)
        strb = data_width // 8
        super().__init__({
            "awid": Out(id_width), "awaddr": Out(addr_width), "awlen": Out(8),
            "awsize": Out(3), "awburst": Out(2), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(strb), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(Resp.as_shape()), "bvalid": In(1), "bready": Out(1),
            "arid": Out(id_width), "araddr": Out(addr_width), "arlen": Out(8),
            "arsize": Out(3), "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(Resp.as_shape()), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
