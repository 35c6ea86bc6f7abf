"""Circuits in gnark style: declare inputs as class fields, write ``define(api)``, then :func:`compile`.

::

    class Square(Circuit):
        y = Public()
        x = Secret()
        def define(self, api):
            api.assert_equal(api.mul(self.x, self.x), self.y)

    cs = compile(Square)
    witness = cs.solve({"y": 9, "x": 3})

``define`` runs once, at compile time, on symbolic values (:class:`~zkmb.r1cs.lc.LC`); it records
the constraints and the witness program that :meth:`ConstraintSystem.solve` later runs on
concrete inputs.  It must therefore not branch on input values (they do not exist yet).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from .api import API
from .lc import LC
from .system import CircuitError, ConstraintSystem, InputSpec

__all__ = ["Circuit", "Public", "Secret", "compile"]


class _Input:
    public = False

    def __init__(self, count: int | Callable[[Circuit], int] | None = None):
        if count is not None and not callable(count) and (not isinstance(count, int) or count < 0):
            raise CircuitError("an input count must be a non-negative int, a callable, or None")
        self.count = count
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def resolve_count(self, circuit: Circuit) -> int | None:
        if callable(self.count):
            n = self.count(circuit)
            if not isinstance(n, int) or n < 0:
                raise CircuitError(f"input {self.name!r}: count must resolve to a non-negative int")
            return n
        return self.count

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, count={self.count})"


class Public(_Input):
    """A public input (a scalar, or ``count`` values; ``count`` may be a callable of the circuit)."""

    public = True


class Secret(_Input):
    """A secret (witness-only) input (a scalar, or ``count`` values)."""

    public = False


class Circuit:
    """Base class: subclasses declare :class:`Public`/:class:`Secret` fields and implement ``define``."""

    def define(self, api: API) -> None:
        raise NotImplementedError

    @classmethod
    def input_fields(cls) -> list[_Input]:
        """Declared inputs in declaration order (base classes first; a redefinition keeps its place)."""
        found: dict[str, _Input] = {}
        for klass in reversed(cls.__mro__):
            for name, v in vars(klass).items():
                if isinstance(v, _Input):
                    found[name] = v
        return list(found.values())


def compile(circuit: type[Circuit] | Circuit) -> ConstraintSystem:
    """Run ``define`` once and return the compiled constraint system (with its witness program).

    ``circuit`` is a Circuit subclass (instantiated without arguments) or an instance.  Wires:
    0 = constant 1, then public inputs, then secret inputs (each in declaration order), then internal.
    """
    inst = circuit() if isinstance(circuit, type) else circuit
    if not isinstance(inst, Circuit):
        raise TypeError("compile() expects a Circuit subclass or instance")
    fields = inst.input_fields()
    ordered = [f for f in fields if f.public] + [f for f in fields if not f.public]
    specs: dict[str, InputSpec] = {}
    wire = 1
    for f in ordered:
        count = f.resolve_count(inst)
        specs[f.name] = InputSpec(f.name, f.public, wire, count)
        wire += 1 if count is None else count
    n_public = sum(s.n_wires for s in specs.values() if s.public)
    api = API(wire)
    for s in specs.values():
        if s.count is None:
            value: LC | list[LC] = LC({s.first_wire: 1})
        else:
            value = [LC({w: 1}) for w in range(s.first_wire, s.first_wire + s.count)]
        setattr(inst, s.name, value)
    # define allocates millions of small acyclic dicts: the cyclic GC would rescan them over and over
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        inst.define(api)
        if api.scope_path:
            raise CircuitError("define returned inside an open scope")
        return api.build(type(inst).__name__, specs, n_public)
    finally:
        if gc_was_enabled:
            gc.enable()
