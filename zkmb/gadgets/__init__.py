"""Circuit gadgets (each with a native twin) for the zkmb statements.

Submodules are imported explicitly (``from zkmb.gadgets.sha256 import sha256``); this package
itself stays light.  :func:`constraint_counts` reports the registered representative circuits
(:mod:`zkmb.gadgets.registry`).
"""

from __future__ import annotations


def constraint_counts(names=None) -> dict[str, int]:
    """``{name: constraints}`` of the registered gadget circuits (see :mod:`zkmb.gadgets.registry`)."""
    from .registry import constraint_counts as counts

    return counts(names)


__all__ = ["constraint_counts"]
