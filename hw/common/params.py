"""Construction-time parameter checks.

Invalid parameters raise at elaboration with the parameter named, so a
mis-configured block never reaches a simulator or a synthesis run.
"""
from amaranth.hdl import Shape, ShapeCastable


def check_int(name, value, *, min=None, max=None):
    """Return ``value`` if it is an ``int`` in ``[min, max]``, else raise naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if min is not None and value < min:
        raise ValueError(f"{name} must be >= {min}, not {value}")
    if max is not None and value > max:
        raise ValueError(f"{name} must be <= {max}, not {value}")
    return value


def check_pow2(name, value, *, min=1, max=None):
    """Return ``value`` if it is a power of two in ``[min, max]``."""
    check_int(name, value, min=min, max=max)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices, key=str)!r}, not {value!r}")
    return value


def check_shape(name, value):
    """Return ``value`` if it is shape-castable (``int``, ``Shape``, layout ...)."""
    if isinstance(value, ShapeCastable):
        return value
    try:
        Shape.cast(value)
    except TypeError as e:
        raise TypeError(f"{name} must be shape-castable, not {value!r}") from e
    return value
