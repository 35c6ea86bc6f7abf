"""G1 and G2 vectors for the fast backend (numba kernels in :mod:`zkmb.algebra.kernels.curve`).

A G1 vector is an ``(n, 2, 4)`` uint64 array of affine Montgomery coordinates, a G2 vector
``(n, 2, 2, 4)``; an all-zero point is the point at infinity.  Same API as :mod:`zkmb.algebra.ref.curves`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import numpy as np

from ...errors import InvalidInput
from ..kernels import curve as K
from ..kernels import msm as M
from ..kernels import numba_threads
from ..params import G1_GEN, G2_GEN
from ..ref.curves import (
    G1Point,
    G2Point,
    flat_coords_g1,
    flat_coords_g2,
    raise_first_invalid,
    scalars_mod_r,
)
from .fields import fq_from_ints, fq_to_ints

G1Vec = np.ndarray
G2Vec = np.ndarray

FIXED_BASE_WINDOW = 8  # fixed-base tables: 32 windows x 128 multiples


def _threads(n: int):
    """One thread for small vectors: waking numba's workers costs more than the work."""
    return numba_threads(1) if n < 256 else contextlib.nullcontext()


class _Group:
    """Shape and conversion details of one group; the kernels are generic."""

    def __init__(self, name: str, coord: tuple[int, ...], flat, gen):
        self.name = name
        self.coord = coord  # shape of one coordinate: (4,) for Fq, (2, 4) for Fq2
        self.coord_str = ", ".join(map(str, coord))
        self.flat = flat
        self.gen = gen
        self.ints_per_point = 2 * (1 if len(coord) == 1 else 2)
        self._table: np.ndarray | None = None

    def empty(self, n: int, k: int = 2) -> np.ndarray:
        return np.empty((n, k, *self.coord), dtype=np.uint64)

    def vec(self, v: object) -> np.ndarray:
        """Check that v is a vector of this group (shape, dtype) and return it C-contiguous."""
        if not isinstance(v, np.ndarray) or v.dtype != np.uint64 or v.ndim != 2 + len(self.coord):
            raise InvalidInput(f"not a {self.name} vector: expected a uint64 array (n, 2, {self.coord_str})")
        if v.shape[1:] != (2, *self.coord):
            raise InvalidInput(f"not a {self.name} vector: shape {v.shape}, not (n, 2, {self.coord_str})")
        return np.ascontiguousarray(v)

    def pair(self, a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.vec(a), self.vec(b)
        if a.shape != b.shape:
            raise InvalidInput(f"length mismatch {a.shape[0]} vs {b.shape[0]}")
        return a, b

    def from_affine(self, points: Sequence) -> np.ndarray:
        points = list(points)
        flat = self.flat(points)
        if not points:
            return self.empty(0)
        return fq_from_ints(flat).reshape(len(points), 2, *self.coord)

    def to_affine(self, v: object) -> list:
        v = self.vec(v)
        ints = fq_to_ints(v.reshape(-1, 4))
        k = self.ints_per_point
        out = []
        for i in range(0, len(ints), k):
            c = ints[i : i + k]
            if not any(c):
                out.append(None)
            elif k == 2:
                out.append((c[0], c[1]))
            else:
                out.append(((c[0], c[1]), (c[2], c[3])))
        return out

    def from_jac(self, jac: np.ndarray) -> np.ndarray:
        out = self.empty(jac.shape[0])
        with _threads(jac.shape[0]):
            K.batch_normalize(jac, out)
        return out

    def table(self) -> np.ndarray:
        """Fixed-base table of the generator (built once per process)."""
        if self._table is None:
            c = FIXED_BASE_WINDOW
            self._table = K.fixed_base_table(self.from_affine([self.gen]), c, M.num_windows(c))
        return self._table

    def mul_generator_limbs(self, limbs: np.ndarray) -> np.ndarray:
        """[k] G for plain scalar limbs k < 2^254 (fixed-base comb, parallel)."""
        c = FIXED_BASE_WINDOW
        jac = self.empty(limbs.shape[0], 3)
        K.fixed_base_mul_vec(self.table(), c, M.num_windows(c), np.ascontiguousarray(limbs), jac)
        return self.from_jac(jac)


_G1 = _Group("G1", (4,), flat_coords_g1, G1_GEN)
_G2 = _Group("G2", (2, 4), flat_coords_g2, G2_GEN)


def scalar_limbs(scalars: Iterable[int]) -> np.ndarray:
    """Non-negative ints reduced mod r -> plain little-endian limbs (n, 4)."""
    ks = scalars_mod_r(scalars)
    raw = b"".join(k.to_bytes(32, "little") for k in ks)
    return np.frombuffer(raw, dtype="<u8").reshape(len(ks), 4).astype(np.uint64)


def _status(g: _Group, v: object, subgroup: bool = True) -> np.ndarray:
    v = g.vec(v)
    st = np.empty(v.shape[0], dtype=np.int8)
    with _threads(v.shape[0]):
        K.check_vec(v, st, subgroup)
    return st


def _is_on_curve(g: _Group, v: object) -> np.ndarray:
    return _status(g, v, subgroup=False) == 0


def _add(g: _Group, a: object, b: object) -> np.ndarray:
    a, b = g.pair(a, b)
    out = g.empty(a.shape[0])
    with _threads(a.shape[0]):
        K.aff_add_vec(a, b, out)
    return out


def _double(g: _Group, a: object) -> np.ndarray:
    a = g.vec(a)
    out = g.empty(a.shape[0])
    with _threads(a.shape[0]):
        K.aff_add_vec(a, a, out)
    return out


def _neg(g: _Group, a: object) -> np.ndarray:
    a = g.vec(a)
    out = g.empty(a.shape[0])
    with _threads(a.shape[0]):
        K.aff_neg_vec(a, out)
    return out


def _mul(g: _Group, v: object, scalars: Iterable[int]) -> np.ndarray:
    v = g.vec(v)
    k = scalar_limbs(scalars)
    if k.shape[0] != v.shape[0]:
        raise InvalidInput(f"length mismatch {v.shape[0]} points vs {k.shape[0]} scalars")
    jac = g.empty(v.shape[0], 3)
    with _threads(v.shape[0]):
        K.mul_vec(v, k, jac)
    return g.from_jac(jac)


def _sum(g: _Group, v: object) -> np.ndarray:
    from .msm import sum_points  # the batch-affine sum lives with the MSM kernels

    return sum_points(g.vec(v))


# --------------------------------------------------------------------------- G1


def g1_from_affine(points: Sequence[G1Point]) -> G1Vec:
    """Canonical points -> G1 vector.  Rejects malformed points, coordinates outside [0, p) and (0, 0)
    (InvalidPoint); does not check the curve equation: use g1_validate for untrusted points."""
    return _G1.from_affine(points)


def g1_to_affine(v: G1Vec) -> list[G1Point]:
    return _G1.to_affine(v)


def g1_is_on_curve(v: G1Vec) -> np.ndarray:
    """Per point: canonical coordinates and on y^2 = x^3 + 3 (infinity counts as on the curve)."""
    return _is_on_curve(_G1, v)


def g1_in_subgroup(v: G1Vec) -> np.ndarray:
    """Per point: on the curve and in G1 (the cofactor is 1, so the same as g1_is_on_curve)."""
    return _status(_G1, v) == 0


def g1_validate(v: G1Vec) -> None:
    """Raise InvalidPoint naming the first point that is non-canonical, off the curve or not in G1."""
    raise_first_invalid("G1", _status(_G1, v))


def g1_add(a: G1Vec, b: G1Vec) -> G1Vec:
    return _add(_G1, a, b)


def g1_neg(a: G1Vec) -> G1Vec:
    return _neg(_G1, a)


def g1_double(a: G1Vec) -> G1Vec:
    return _double(_G1, a)


def g1_mul(v: G1Vec, scalars: Iterable[int]) -> G1Vec:
    """Elementwise [k_i] v_i; scalars are non-negative ints, reduced mod r."""
    return _mul(_G1, v, scalars)


def g1_mul_generator(scalars: Iterable[int]) -> G1Vec:
    """[k_i] G for the standard generator G of G1 (scalars reduced mod r; fixed-base comb)."""
    return _G1.mul_generator_limbs(scalar_limbs(scalars))


def g1_sum(v: G1Vec) -> G1Vec:
    """The sum of all points, as a vector of length 1."""
    return _sum(_G1, v)


def g1_generator() -> G1Vec:
    return _G1.from_affine([G1_GEN])


def g1_infinity(n: int) -> G1Vec:
    return np.zeros((n, 2, 4), dtype=np.uint64)


# --------------------------------------------------------------------------- G2


def g2_from_affine(points: Sequence[G2Point]) -> G2Vec:
    """Canonical points -> G2 vector (same rules as g1_from_affine)."""
    return _G2.from_affine(points)


def g2_to_affine(v: G2Vec) -> list[G2Point]:
    return _G2.to_affine(v)


def g2_is_on_curve(v: G2Vec) -> np.ndarray:
    """Per point: canonical coordinates and on the twist y^2 = x^3 + 3/(9 + u) (infinity included)."""
    return _is_on_curve(_G2, v)


def g2_in_subgroup(v: G2Vec) -> np.ndarray:
    """Per point: on the twist and in G2 (exact: [x+1]Q + psi([x]Q) + psi^2([x]Q) == psi^3([2x]Q) for the BN
    seed x, equivalent to [r] Q = O; ~50 us per point on one core)."""
    return _status(_G2, v) == 0


def g2_validate(v: G2Vec) -> None:
    """Raise InvalidPoint naming the first point that is non-canonical, off the twist or not in G2."""
    raise_first_invalid("G2", _status(_G2, v))


def g2_add(a: G2Vec, b: G2Vec) -> G2Vec:
    return _add(_G2, a, b)


def g2_neg(a: G2Vec) -> G2Vec:
    return _neg(_G2, a)


def g2_double(a: G2Vec) -> G2Vec:
    return _double(_G2, a)


def g2_mul(v: G2Vec, scalars: Iterable[int]) -> G2Vec:
    """Elementwise [k_i] v_i; scalars are non-negative ints, reduced mod r."""
    return _mul(_G2, v, scalars)


def g2_mul_generator(scalars: Iterable[int]) -> G2Vec:
    """[k_i] G for the standard generator G of G2 (scalars reduced mod r; fixed-base comb)."""
    return _G2.mul_generator_limbs(scalar_limbs(scalars))


def g2_sum(v: G2Vec) -> G2Vec:
    return _sum(_G2, v)


def g2_generator() -> G2Vec:
    return _G2.from_affine([G2_GEN])


def g2_infinity(n: int) -> G2Vec:
    return np.zeros((n, 2, 2, 4), dtype=np.uint64)


__all__ = [n for n in dir() if n.startswith(("g1_", "g2_"))] + ["G1Vec", "G2Vec", "G1Point", "G2Point"]
