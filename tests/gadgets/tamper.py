"""Test helpers for gadget soundness: find wires by scope, tamper with a witness, check where it fails."""

from __future__ import annotations

import numpy as np

from zkmb.algebra.fast.fields import fr_to_ints
from zkmb.algebra.params import R
from zkmb.r1cs import ConstraintSystem, Witness


def rows_in_scope(cs: ConstraintSystem, scope: str) -> list[int]:
    """Indices of the constraints recorded exactly in ``scope`` (not in its sub-scopes)."""
    return [i for lo, hi in _scope_ranges(cs, scope) for i in range(lo, hi)]


def _scope_ranges(cs: ConstraintSystem, scope: str) -> list[tuple[int, int]]:
    sid = cs.scope_names.index(scope)
    starts = cs.scope_rows
    out = []
    for j in np.nonzero(cs.scope_ids == sid)[0].tolist():
        hi = int(starts[j + 1]) if j + 1 < len(starts) else cs.n_constraints
        out.append((int(starts[j]), hi))
    return out


def _rows(m, lo: int, hi: int) -> list[dict[int, int]]:
    """Rows lo..hi-1 of a matrix as dicts, converting all their coefficients in one call."""
    p0, p1 = int(m.row_ptr[lo]), int(m.row_ptr[hi])
    cols = m.cols[p0:p1].tolist()
    coefs = fr_to_ints(m.coeffs[p0:p1])
    ptr = (m.row_ptr[lo : hi + 1] - p0).tolist()
    spans = [(ptr[k], ptr[k + 1]) for k in range(hi - lo)]
    return [dict(zip(cols[i:j], coefs[i:j], strict=True)) for i, j in spans]


def _scope_rows_abc(cs: ConstraintSystem, scope: str):
    for lo, hi in _scope_ranges(cs, scope):
        yield from zip(_rows(cs.A, lo, hi), _rows(cs.B, lo, hi), _rows(cs.C, lo, hi), strict=True)


def bit_wires(cs: ConstraintSystem, scope: str) -> list[int]:
    """Wires constrained boolean by ``w * (w - 1) = 0`` rows in ``scope`` (e.g. decomposition bits)."""
    out = []
    for a, b, c in _scope_rows_abc(cs, scope):
        if len(a) == 1 and not c:
            ((w, ca),) = a.items()
            if w != 0 and ca == 1 and b == {0: R - 1, w: 1}:
                out.append(w)
    return out


def product_wires(cs: ConstraintSystem, scope: str) -> list[int]:
    """Output wires of the products (``A * B = w`` rows) in ``scope``."""
    out = []
    for _, _, c in _scope_rows_abc(cs, scope):
        if len(c) == 1:
            ((w, cc),) = c.items()
            if w != 0 and cc == 1:
                out.append(w)
    return out


def flip(w: Witness, wire: int) -> Witness:
    """A copy of w with a 0/1 wire flipped."""
    v = w.value(wire)
    assert v in (0, 1), "not a bit wire"
    return w.replace(wire, 1 - v)


def bump(w: Witness, wire: int, delta: int = 1) -> Witness:
    """A copy of w with one wire changed by ``delta``."""
    return w.replace(wire, w.value(wire) + delta)


def assert_fails_in(cs: ConstraintSystem, w: Witness, scope: str) -> None:
    """w violates the system, and the first violated constraint lies in ``scope``."""
    assert not cs.is_satisfied(w)
    msg = cs.which_is_unsatisfied(w)
    assert msg is not None and msg.endswith(f"in scope '{scope}'"), msg


def count_under(cs: ConstraintSystem, prefix: str) -> int:
    """Constraints recorded in scope ``prefix`` or any scope below it."""
    ids = [i for i, name in enumerate(cs.scope_names) if name == prefix or name.startswith(prefix + "/")]
    starts = np.append(cs.scope_rows, cs.n_constraints)
    lens = np.diff(starts)
    return int(lens[np.isin(cs.scope_ids, ids)].sum())
