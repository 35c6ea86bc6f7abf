"""Poseidon over BN254 Fr with circomlib's parameters: circuit gadget, Python twin, numba batch hashing.

Instance (circomlib ``Poseidon(n)`` / circomlibjs ``poseidon``): width ``t = n + 1`` for n = 1..16
inputs, S-box ``x^5``, 8 full rounds, ``N_ROUNDS_P[t - 2]`` partial rounds, constants from the
Grain LFSR (:mod:`.poseidon_constants`).  Hash mode: the state is ``[init, in_1, ..., in_n]``, the
output is element 0 after the permutation.  ``init`` is the capacity element: 0 for circomlib's
``Poseidon(n)``, a constant domain tag for circomlib's ``PoseidonEx(n, 1)`` with ``initialState =
tag`` (SPEC §7: a tag there separates uses at no constraint cost; docs/protocol.md lists which use
takes its tag where).

* :func:`poseidon` / :func:`poseidon_permutation`: the gadget.  Each S-box is 3 constraints
  (``x2 = x*x``, ``x4 = x2*x2``, ``y = x4*x``); linear layers are free; partial rounds use the
  sparse form, so only element 0 gets an S-box.  An S-box whose input is a compile-time constant
  (the capacity element, a constant domain tag) costs nothing.  Counts:
  ``3 * (8 t + R_P)`` minus 3 per constant first-round element, the capacity included;
  Poseidon(2) = 240 (as circomlib's), whatever constant ``init`` is.
* :func:`poseidon_native` / :func:`poseidon_permutation_native`: pure Python, the plain
  (textbook) round structure, independent of the optimised constants the gadget and numba use.
* :func:`poseidon_many` (ints) and :func:`poseidon_many_mont` (Montgomery arrays): numba.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from ..algebra.params import R
from ..errors import InvalidInput
from ..r1cs import Circuit, ConstraintSystem, Secret, compile
from ..r1cs.lc import LC, as_terms
from .poseidon_constants import MAX_INPUTS, PoseidonParams, params
from .registry import register

__all__ = [
    "MAX_INPUTS",
    "poseidon",
    "poseidon_permutation",
    "poseidon_native",
    "poseidon_permutation_native",
    "poseidon_many",
    "poseidon_many_mont",
    "poseidon_constraints",
]

Terms = dict[int, int]


def _width(n_inputs: int) -> PoseidonParams:
    if not 1 <= n_inputs <= MAX_INPUTS:
        raise InvalidInput(f"Poseidon takes 1 to {MAX_INPUTS} inputs, got {n_inputs}")
    return params(n_inputs + 1)


def poseidon_constraints(n_inputs: int, constant_inputs: int = 0) -> int:
    """Constraints of :func:`poseidon` with ``n_inputs`` inputs of which ``constant_inputs`` are constants.

    Valid while at least one input is variable (with all inputs constant the hash folds to a constant).
    """
    p = _width(n_inputs)
    return 3 * (p.rounds_f * p.t + p.rounds_p) - 3 * (1 + constant_inputs)


# ---------------------------------------------------------------------------------------------- gadget


def _lincomb(pairs) -> Terms:
    """sum c * t over (c, t) pairs, as a fresh simplified term dict."""
    out: Terms = {}
    get = out.get
    for c, t in pairs:
        if not c:
            continue
        for k, v in t.items():
            nv = (get(k, 0) + c * v) % R
            if nv:
                out[k] = nv
            else:
                out.pop(k, None)
    return out


def _add_const(t: Terms, c: int) -> Terms:
    out = dict(t)
    nv = (out.get(0, 0) + c) % R
    if nv:
        out[0] = nv
    else:
        out.pop(0, None)
    return out


def _sbox(api, t: Terms) -> Terms:
    """x^5: 3 constraints, none if x is a constant."""
    x = LC(t)
    x2 = api.mul(x, x)
    x4 = api.mul(x2, x2)
    return api.mul(x4, x).t


def _permute(api, state: list[Terms], p: PoseidonParams, rows_out: int) -> list[Terms]:
    t, half = p.t, p.rounds_f // 2

    def full_round(st, consts, m, rows):
        s = [_sbox(api, _add_const(x, c)) for x, c in zip(st, consts, strict=True)]
        return [_lincomb(zip(m[i], s, strict=True)) for i in range(rows)]

    st = state
    with api.scope("full"):
        for r in range(half):
            st = full_round(st, p.round_constants[r], p.pre_partial if r == half - 1 else p.mds, t)
    m00 = p.mds[0][0]
    with api.scope("partial"):
        for j in range(p.rounds_p):
            x0 = _sbox(api, _add_const(st[0], p.partial_c[j]))
            v, w = p.partial_v[j], p.partial_w[j]
            new0 = _lincomb([(m00, x0), *zip(v, st[1:], strict=True)])
            st = [new0] + [_lincomb([(1, st[i]), (w[i - 1], x0)]) for i in range(1, t)]
    with api.scope("full"):
        for r in range(half):
            st = full_round(st, p.post_c[r], p.mds, t if r < half - 1 else rows_out)
    return st


def poseidon_permutation(api, state: Sequence) -> list[LC]:
    """The Poseidon permutation of a width-t state (t in [2, 17]; LCs or ints), all t outputs."""
    p = _width(len(state) - 1)
    with api.scope(f"poseidon_perm{p.t}"):
        return [LC(x) for x in _permute(api, [as_terms(x) for x in state], p, p.t)]


def _init(init: int) -> int:
    """A capacity initial value: a constant in [0, r) (never a wire: a variable one would cost an S-box
    and is not what SPEC §7 allows)."""
    if not isinstance(init, int) or isinstance(init, bool) or not 0 <= init < R:
        raise InvalidInput(f"Poseidon capacity init must be an int constant in [0, r), got {init!r}")
    return init


def poseidon(api, inputs: Sequence, init: int = 0) -> LC:
    """circomlib ``Poseidon(n)`` of 1..16 inputs (LCs or ints), or with a constant ``init`` in the
    capacity element circomlib's ``PoseidonEx(n, 1)`` with that ``initialState``: constrains and
    returns the hash (output element 0).

    Constraints: :func:`poseidon_constraints` (240 for 2 variable inputs, any ``init``).  The inputs
    are used as field elements: the caller range-checks them if they encode something narrower.
    """
    p = _width(len(inputs))
    with api.scope(f"poseidon{len(inputs)}"):
        st = [as_terms(_init(init))] + [as_terms(x) for x in inputs]
        return LC(_permute(api, st, p, 1)[0])


# ---------------------------------------------------------------------------------------------- native


def _check_elems(xs: Sequence[int], what: str) -> list[int]:
    out = []
    for x in xs:
        try:
            v = x.__index__()
        except AttributeError:
            raise InvalidInput(f"{what}: {type(x).__name__} is not an integer") from None
        if not 0 <= v < R:
            raise InvalidInput(f"{what}: value not in [0, r)")
        out.append(v)
    return out


def _permute_plain(st: list[int], p: PoseidonParams) -> list[int]:
    half = p.rounds_f // 2
    m = p.mds
    for r in range(p.rounds_f + p.rounds_p):
        st = [(x + c) % R for x, c in zip(st, p.round_constants[r], strict=True)]
        if r < half or r >= half + p.rounds_p:
            st = [pow(x, 5, R) for x in st]
        else:
            st[0] = pow(st[0], 5, R)
        st = [sum(a * b for a, b in zip(row, st, strict=True)) % R for row in m]
    return st


def poseidon_permutation_native(state: Sequence[int]) -> list[int]:
    """The permutation on ints in [0, r) (plain round structure; raises InvalidInput otherwise)."""
    p = _width(len(state) - 1)
    return _permute_plain(_check_elems(state, "poseidon state"), p)


def poseidon_native(inputs: Sequence[int], init: int = 0) -> int:
    """circomlibjs ``poseidon(inputs, init)`` for 1..16 ints in [0, r) (pure Python); ``init`` is the
    capacity element's initial value (circomlib ``PoseidonEx`` ``initialState``)."""
    p = _width(len(inputs))
    return _permute_plain([_init(init), *_check_elems(inputs, "poseidon input")], p)[0]


# ---------------------------------------------------------------------------------------------- numba


@cache
def _kernel_constants(t: int) -> tuple[np.ndarray, ...]:
    from ..algebra.kernels.poseidon import pack_constants

    return pack_constants(params(t))


def poseidon_many_mont(inputs: np.ndarray, parallel: bool = False, init: int = 0) -> np.ndarray:
    """Poseidon of each row of an ``(n, k, 4)`` uint64 Montgomery Fr array (k in 1..16) -> ``(n, 4)``,
    the capacity element starting at ``init`` (an int constant, as for :func:`poseidon`).

    The values must be reduced Montgomery elements (as produced by ``fr_from_ints``); this is not
    re-checked.  ``parallel`` splits the rows over numba's threads.
    """
    from ..algebra.fast.fields import fr_from_ints
    from ..algebra.kernels import compile_notice
    from ..algebra.kernels import poseidon as kp

    if inputs.ndim != 3 or inputs.shape[2] != 4 or inputs.dtype != np.uint64:
        raise InvalidInput("poseidon_many_mont expects an (n, k, 4) uint64 array")
    _width(inputs.shape[1])
    compile_notice()
    inputs = np.ascontiguousarray(inputs)
    out = np.empty((inputs.shape[0], 4), dtype=np.uint64)
    consts = _kernel_constants(inputs.shape[1] + 1)
    cap = fr_from_ints([_init(init)])[0]
    n = inputs.shape[0]
    if parallel and n > 64:
        import numba

        kp.hash_rows_parallel(inputs, out, cap, min(n, 4 * numba.get_num_threads()), *consts)
    else:
        kp.hash_rows(inputs, out, cap, *consts)
    return out


def poseidon_many(rows: Sequence[Sequence[int]], parallel: bool = False, init: int = 0) -> list[int]:
    """Poseidon of each row (equal lengths, ints in [0, r), capacity ``init``) with the numba kernel."""
    from ..algebra.fast.fields import fr_from_ints, fr_to_ints

    rows = list(rows)
    if not rows:
        return []
    k = len(rows[0])
    if any(len(r) != k for r in rows):
        raise InvalidInput("poseidon_many: rows of different lengths")
    _width(k)
    flat = fr_from_ints(_check_elems([x for r in rows for x in r], "poseidon input"))
    return fr_to_ints(poseidon_many_mont(flat.reshape(len(rows), k, 4), parallel, init))


# ---------------------------------------------------------------------------------------------- registry


class _Poseidon2(Circuit):
    """Poseidon(a, b) of two secret inputs (the output is not constrained to anything)."""

    x = Secret(count=2)

    def define(self, api) -> None:
        poseidon(api, self.x)


@register("poseidon2")
def poseidon2_circuit() -> ConstraintSystem:
    """The representative 2-input Poseidon: 240 constraints (circomlib's Poseidon(2): 240)."""
    return compile(_Poseidon2)
