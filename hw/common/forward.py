"""Bring a submodule's interface out to its parent's ports, member by member."""
from amaranth.lib import wiring

__all__ = ["forward", "prefixed"]


def prefixed(inner, prefix, *, skip=()):
    """``{prefix + name: member}`` for ``inner``'s signature members not in ``skip``:
    the members a parent declares before :func:`forward` connects them."""
    return {prefix + name: mem for name, mem in inner.signature.members.items()
            if name not in skip}


def forward(m, outer, inner, *, prefix="", skip=()):
    """Connect every member ``name`` of ``inner`` to ``outer``'s ``prefix + name``.

    ``outer`` declares the members (same flows) in its signature, usually by
    copying ``inner.signature.members`` under the prefix; ports are assigned
    in their direction, interfaces and arrays of interfaces are connected
    with :func:`amaranth.lib.wiring.connect`. Members named in ``skip`` are
    left for the caller (wired internally, tied off).
    """
    for name, mem in inner.signature.members.items():
        if name in skip:
            continue
        o, i = getattr(outer, prefix + name), getattr(inner, name)
        if mem.is_port:
            if mem.flow == wiring.In:
                m.d.comb += i.eq(o)
            else:
                m.d.comb += o.eq(i)
            continue
        for oo, ii in zip(_flat(o), _flat(i)):
            if mem.flow == wiring.In:
                wiring.connect(m, wiring.flipped(oo), ii)
            else:
                wiring.connect(m, ii, wiring.flipped(oo))


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [y for e in x for y in _flat(e)]
    return [x]
