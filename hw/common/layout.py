"""Host-side packing of :mod:`amaranth.lib.data` layouts to and from integers.

Models and testbenches exchange payloads with the RTL as plain integers;
these follow Amaranth's packing (first field in the least significant bits,
array element 0 lowest) by asking the layout itself.
"""
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack"]


def pack(layout, value):
    """Pack a nested dict/list ``value`` into an ``int`` following ``layout``.

    Missing struct fields are zero; plain integers are truncated to their
    field's width (so callers may pass e.g. negative numbers for signed fields).
    """
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            if name in value:
                out |= pack(field.shape, value[name]) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        out = 0
        for i, v in enumerate(value):
            out |= pack(layout.elem_shape, v) << (i * width)
        return out
    return int(value) & ((1 << Shape.cast(layout).width) - 1)


def unpack(layout, word):
    """Inverse of :func:`pack`: a nested dict/list of unsigned field values."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, word >> field.offset) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return [unpack(layout.elem_shape, word >> (i * width)) for i in range(layout.length)]
    return word & ((1 << Shape.cast(layout).width) - 1)
