"""Test helpers for gadget soundness: find wires by scope, tamper with a witness, check where it fails."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from zkmb.algebra.fast.fields import fr_to_ints
from zkmb.algebra.params import R
from zkmb.r1cs import ConstraintSystem, PyHint, Witness, solver


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


# ---------------------------------------------------------------------------------------------- structure


def scopes_under(cs: ConstraintSystem, prefix: str) -> list[str]:
    """``prefix`` and every scope below it that records constraints, in the order first used."""
    return [s for s in cs.scope_names if (s == prefix or s.startswith(prefix + "/")) and rows_in_scope(cs, s)]


def scope_rows(
    cs: ConstraintSystem, scope: str, *, under: bool = False
) -> list[tuple[int, dict, dict, dict]]:
    """``(row, A, B, C)`` of each constraint in ``scope`` (with ``under``, also its sub-scopes), in row order.

    A, B and C are ``{wire: coefficient}`` dicts with canonical integer coefficients.
    """
    ranges = []
    for s in scopes_under(cs, scope) if under else [scope]:
        ranges += _scope_ranges(cs, s)
    out = []
    for lo, hi in sorted(ranges):
        abc = zip(_rows(cs.A, lo, hi), _rows(cs.B, lo, hi), _rows(cs.C, lo, hi), strict=True)
        out += [(lo + k, a, b, c) for k, (a, b, c) in enumerate(abc)]
    return out


def is_zero_wires(cs: ConstraintSystem, scope: str, *, under: bool = False) -> list[tuple[int, int, dict]]:
    """``(m, t, x)`` for each ``api.is_zero(x)`` (also ``is_equal``) recorded in ``scope``.

    ``is_zero`` is the pair of rows ``x * m = t`` and ``x * (1 - t) = 0``: ``m`` is the solver's
    inverse hint (``1/x``, 0 for 0), ``t`` the product wire, the result is ``1 - t``.  ``x`` is
    returned as terms.
    """
    rows = scope_rows(cs, scope, under=under)
    out = []
    for (r1, a1, b1, c1), (r2, a2, b2, c2) in zip(rows, rows[1:], strict=False):
        if r2 == r1 + 1 and len(c1) == 1 and not c2 and a2 == a1 and len(b1) == 1:
            ((t, ct),) = c1.items()
            ((m, cm),) = b1.items()
            if ct == 1 and cm == 1 and b2 == {0: 1, t: R - 1}:
                out.append((m, t, a1))
    return out


def one_hot_groups(cs: ConstraintSystem, scope: str, *, under: bool = False) -> list[list[int]]:
    """The wires of each one-hot vector constrained in ``scope``, in index order.

    A one-hot (``compare.one_hot``, the first-difference selector of ``assert_less_packed``) is a
    set of boolean wires with a row ``(sum e - 1) * 1 = 0`` (all coefficients 1).
    """
    scopes = scopes_under(cs, scope) if under else [scope]
    bits = {w for s in scopes for w in bit_wires(cs, s)}
    out = []
    for _, a, b, c in scope_rows(cs, scope, under=under):
        if c or b != {0: 1} or a.get(0) != R - 1 or len(a) < 3:
            continue
        wires = sorted(w for w in a if w)
        if all(a[w] == 1 and w in bits for w in wires):
            out.append(wires)
    return out


# ---------------------------------------------------------------------------------------------- checking


def violated_rows(cs: ConstraintSystem, w: Witness) -> list[int]:
    """Every violated constraint of ``w`` (``which_is_unsatisfied`` names only the first)."""
    ok = np.empty(cs.n_constraints, dtype=np.bool_)
    a, b, c = cs.A, cs.B, cs.C
    solver.check_rows_serial(
        a.row_ptr, a.cols, a.coeffs, b.row_ptr, b.cols, b.coeffs, c.row_ptr, c.cols, c.coeffs, w.values, ok
    )
    return np.nonzero(~ok)[0].tolist()


def violated_scopes(cs: ConstraintSystem, w: Witness) -> dict[str, int]:
    """Scope -> number of violated constraints recorded exactly in it."""
    out: dict[str, int] = {}
    for i in violated_rows(cs, w):
        s = cs.scope_of(i)
        out[s] = out.get(s, 0) + 1
    return out


def assert_fails_under(cs: ConstraintSystem, w: Witness, prefix: str) -> None:
    """w violates the system, and the first violated constraint lies in ``prefix`` or a scope below it."""
    i = cs.first_unsatisfied(w)
    assert i is not None and i >= 0, cs.which_is_unsatisfied(w)
    s = cs.scope_of(i)
    assert s == prefix or s.startswith(prefix + "/"), cs.which_is_unsatisfied(w)


# ------------------------------------------------------------------------------------------ cheating provers


def _outputs_per_instruction(prog) -> np.ndarray:
    op, x, y = prog.instr[:, 0], prog.instr[:, 1], prog.instr[:, 3]
    n_out = np.ones(len(op), dtype=np.int64)
    bits = op == solver.OP_BITS
    n_out[bits] = y[bits]
    hint = (op == solver.OP_NHINT) | (op == solver.OP_PYHINT)
    n_out[hint] = prog.call_nout[x[hint]]
    return n_out


def solve_pinned(cs: ConstraintSystem, assignment: dict, pins: dict[int, int]) -> Witness:
    """The witness a cheating prover builds by forcing some internal wires and computing everything else.

    The honest witness program runs on ``assignment``, but each pinned wire is overwritten with its
    value right after the instruction that computes it (a product, an inverse, a bit decomposition or
    a hint call), so every wire computed later from it follows the forged value: the prover
    recomputes everything it is free to, and only the constraints can stop it.  Not checked.
    """
    prog = cs.program
    instr = prog.instr
    first, n_out = instr[:, 2], _outputs_per_instruction(prog)
    hints = list(prog.hints)
    call_fn, call_out = prog.call_fn.tolist(), prog.call_out.tolist()
    call_nout, call_in_ptr, call_par_ptr = (
        prog.call_nout.tolist(),
        prog.call_in_ptr.tolist(),
        prog.call_par_ptr.tolist(),
    )
    at, new = [], []
    for wire, value in pins.items():
        (pcs,) = np.nonzero((first <= wire) & (wire < first + n_out))
        assert len(pcs) == 1, f"wire {wire} is not computed by exactly one instruction (an input?)"
        hints.append(PyHint(lambda ins, par, v=value % R: [v], f"pin_{wire}"))
        at.append(int(pcs[0]) + 1)
        new.append((solver.OP_PYHINT, len(call_fn), wire, 0))
        call_fn.append(len(hints) - 1)
        call_out.append(wire)
        call_nout.append(1)
        call_in_ptr.append(call_in_ptr[-1])
        call_par_ptr.append(call_par_ptr[-1])
    i64 = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
    cheat = copy.copy(cs)
    cheat.program = dataclasses.replace(
        prog,
        instr=np.insert(instr, at, np.array(new, dtype=np.int64).reshape(-1, 4), axis=0),
        hints=hints,
        call_fn=i64(call_fn),
        call_out=i64(call_out),
        call_nout=i64(call_nout),
        call_in_ptr=i64(call_in_ptr),
        call_par_ptr=i64(call_par_ptr),
    )
    w = cheat.solve(assignment, check=False)
    for wire, value in pins.items():
        assert w.value(wire) == value % R
    return w
