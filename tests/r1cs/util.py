"""Test helpers: build circuits from a define function, and a pure-Python R1CS reference check."""

from __future__ import annotations

from zkmb.algebra.params import R
from zkmb.r1cs import Circuit, ConstraintSystem, compile, solver


def build(define, **fields) -> tuple[Circuit, ConstraintSystem]:
    """Compile a one-off circuit whose define is ``define(self, api)``; returns (instance, cs)."""
    cls = type("T", (Circuit,), {**fields, "define": define})
    inst = cls()
    return inst, compile(inst)


def rows(m) -> list[dict[int, int]]:
    return [m.row(i) for i in range(m.n_rows)]


def dot(row: dict[int, int], w: list[int]) -> int:
    return sum(c * w[k] for k, c in row.items()) % R


def py_failing_rows(cs: ConstraintSystem, w: list[int]) -> list[int]:
    """Indices of the constraints that fail for the integer witness w (independent of the numba check)."""
    a, b, c = rows(cs.A), rows(cs.B), rows(cs.C)
    return [i for i in range(cs.n_constraints) if dot(a[i], w) * dot(b[i], w) % R != dot(c[i], w)]


def resolve_products(cs: ConstraintSystem, w: list[int]) -> list[int]:
    """Recompute every product wire (OP_MUL instruction) of w in program order, in Python."""
    w = list(w)
    for op, k, out, _ in cs.program.instr.tolist():
        if op == solver.OP_MUL:
            w[out] = dot(cs.A.row(k), w) * dot(cs.B.row(k), w) % R
    return w


def lc_value(w, lc) -> int:
    """The value of an LC under a Witness."""
    ints = w.to_ints()
    return sum(c * ints[k] for k, c in lc.terms().items()) % R
