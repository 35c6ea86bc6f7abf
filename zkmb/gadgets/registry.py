"""Registry of representative gadget circuits, for constraint-count reporting (``zkmb circuits --json``).

A gadget module registers zero-argument builders with :func:`register`; each builder compiles a
small circuit around one gadget and returns its :class:`~zkmb.r1cs.ConstraintSystem`.  The modules
that register are listed in :data:`GADGET_MODULES` and imported on first use, so importing this
module stays cheap and has no import cycle with the gadget modules.

Representative circuits take their inputs as bits that are *not* re-checked (as circomlib's
templates do): the count is the gadget's own cost, not the cost of range-checking its inputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from ..r1cs import ConstraintSystem

__all__ = ["GADGET_MODULES", "builders", "constraint_counts", "register"]

GADGET_MODULES: tuple[str, ...] = (
    "zkmb.gadgets.sha256",
    "zkmb.gadgets.hmac",
    "zkmb.gadgets.poseidon",
    "zkmb.gadgets.merkle",
    "zkmb.gadgets.chacha20",
    "zkmb.gadgets.aes",
    "zkmb.gadgets.qname",
    "zkmb.circuits.co",
    "zkmb.circuits.pad",
    "zkmb.circuits.query",
)
"""Modules whose import registers builders (add yours here)."""

Builder = Callable[[], ConstraintSystem]

_BUILDERS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn`` under a stable ``name`` (a name can be registered once)."""

    def deco(fn: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"gadget circuit {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return deco


def builders() -> dict[str, Builder]:
    """Every registered builder by name (imports :data:`GADGET_MODULES` first)."""
    for mod in GADGET_MODULES:
        importlib.import_module(mod)
    return dict(sorted(_BUILDERS.items()))


def constraint_counts(names: Iterable[str] | None = None) -> dict[str, int]:
    """``{name: number of constraints}`` of the registered circuits (all, or the given names).

    Each circuit is compiled, which takes from a fraction of a second to a few seconds each.
    """
    table = builders()
    wanted = list(table) if names is None else list(names)
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise KeyError(f"unknown gadget circuits: {unknown}")
    return {n: table[n]().n_constraints for n in wanted}
