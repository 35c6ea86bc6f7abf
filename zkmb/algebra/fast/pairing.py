"""Optimal ate pairing on BN254, fast backend (numba).  Same API as :mod:`zkmb.algebra.ref.pairing`.

Points are affine Montgomery arrays: G1 ``(n, 2, 4)`` (or one point ``(2, 4)``), G2 ``(n, 2, 2, 4)``
(or ``(2, 2, 4)``), all zeros = infinity.  An Fq12 value is a ``(12, 4)`` uint64 Montgomery array in
the canonical tower order (index ``6*i + 2*j + k``).  Every entry point checks that the points are
on their curves (raising :class:`InvalidPoint`); membership of G2 points in the order-r subgroup is
not checked here (that is the job of point decoding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import InvalidInput, InvalidPoint
from ..kernels import pairing as _k
from .fields import fq_from_ints, fq_to_ints

Fq12 = np.ndarray

_ONE = fq_from_ints([1] + [0] * 11)
_ONE.setflags(write=False)


def _as_points(a, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Validate dtype/shape of a point array and return it as a C-contiguous (n, *shape) array."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint64:
        raise InvalidInput(f"{name} points must be a uint64 numpy array")
    if a.shape == shape:
        a = a.reshape((1, *shape))
    if a.ndim != len(shape) + 1 or a.shape[1:] != shape:
        raise InvalidInput(f"{name} points must have shape (n, {', '.join(map(str, shape))}), got {a.shape}")
    return _kernel_ready(a)


def _kernel_ready(a: np.ndarray) -> np.ndarray:
    """C-contiguous and writeable: the one array type the kernels are compiled for (a read-only or
    strided array would be a new numba signature and trigger a fresh compile)."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


def _pairs(ps, qs) -> tuple[np.ndarray, np.ndarray]:
    ps = _as_points(ps, (2, 4), "G1")
    qs = _as_points(qs, (2, 2, 4), "G2")
    if ps.shape[0] != qs.shape[0]:
        raise InvalidInput(f"{ps.shape[0]} G1 points but {qs.shape[0]} G2 points")
    return ps, qs


def _raise_bad(code: int) -> None:
    if code > 0:
        raise InvalidPoint(f"G1 point {code - 1} is not on the curve (or has unreduced coordinates)")
    raise InvalidPoint(f"G2 point {-code - 1} is not on the twist curve (or has unreduced coordinates)")


def _as_fq12(f) -> np.ndarray:
    if not isinstance(f, np.ndarray) or f.dtype != np.uint64 or f.shape != (12, 4):
        raise InvalidInput("an Fq12 value must be a (12, 4) uint64 array")
    return _kernel_ready(f)


def miller_loop(ps, qs) -> Fq12:
    """Product of the Miller-loop values f_i of the pairs (before the final exponentiation).

    Meaningful only up to factors that the final exponentiation removes (so it need not equal the
    reference backend's value); pairs with a point at infinity contribute 1.
    """
    ps, qs = _pairs(ps, qs)
    out = np.empty((12, 4), dtype=np.uint64)
    code = _k.miller_loop_into(ps, qs, out)
    if code:
        _raise_bad(code)
    return out


def final_exponentiation(f) -> Fq12:
    """f^((p^12 - 1)/r) exactly."""
    out = np.empty((12, 4), dtype=np.uint64)
    _k.final_exponentiation_into(_as_fq12(f), out)
    return out


def multi_pairing(ps, qs) -> Fq12:
    """prod_i e(ps[i], qs[i]) with one shared Miller loop squaring chain and one final exponentiation."""
    f = miller_loop(ps, qs)
    _k.final_exponentiation_into(f, f)  # reads f completely before writing
    return f


def pairing(p, q) -> Fq12:
    """e(p, q) for one G1 point ``(2, 4)`` (or ``(1, 2, 4)``) and one G2 point ``(2, 2, 4)``."""
    ps, qs = _pairs(p, q)
    if ps.shape[0] != 1:
        raise InvalidInput("pairing() takes one pair; use multi_pairing() for several")
    return multi_pairing(ps, qs)


def pairing_check(ps, qs) -> bool:
    """True iff prod_i e(ps[i], qs[i]) == 1 (an empty product is 1)."""
    return bool(np.array_equal(multi_pairing(ps, qs), _ONE))


def fq12_one() -> Fq12:
    return _ONE.copy()


def fq12_from_canonical(t: Sequence[int]) -> Fq12:
    """12 ints in [0, p) in tower order -> Fq12 array; raises InvalidInput otherwise."""
    t = list(t)
    if len(t) != 12:
        raise InvalidInput("an Fq12 value has 12 coefficients")
    return fq_from_ints(t)


def fq12_to_canonical(f) -> tuple[int, ...]:
    """Fq12 array -> 12 ints in [0, p) in tower order."""
    return tuple(fq_to_ints(_as_fq12(f)))


def fq12_mul(a, b) -> Fq12:
    out = np.empty((12, 4), dtype=np.uint64)
    _k.fq12_mul_into(_as_fq12(a), _as_fq12(b), out)
    return out


def fq12_eq(a, b) -> bool:
    return bool(np.array_equal(_as_fq12(a), _as_fq12(b)))


# --------------------------------------------------------------------------- private converters
# (stand-ins until fast/curves.py provides g1_from_affine / g2_from_affine)


def _g1_from_affine(points) -> np.ndarray:
    """Canonical G1 points ((x, y) or None) -> (n, 2, 4) Montgomery array.  Range-checked only."""
    flat: list[int] = []
    for pt in points:
        flat.extend((0, 0) if pt is None else (int(pt[0]), int(pt[1])))
    return fq_from_ints(flat).reshape(-1, 2, 4) if flat else np.zeros((0, 2, 4), np.uint64)


def _g2_from_affine(points) -> np.ndarray:
    """Canonical G2 points (((x0, x1), (y0, y1)) or None) -> (n, 2, 2, 4) Montgomery array."""
    flat: list[int] = []
    for pt in points:
        flat.extend(
            (0, 0, 0, 0) if pt is None else (int(pt[0][0]), int(pt[0][1]), int(pt[1][0]), int(pt[1][1]))
        )
    return fq_from_ints(flat).reshape(-1, 2, 2, 4) if flat else np.zeros((0, 2, 2, 4), np.uint64)


__all__ = [
    "Fq12",
    "pairing",
    "multi_pairing",
    "pairing_check",
    "miller_loop",
    "final_exponentiation",
    "fq12_one",
    "fq12_from_canonical",
    "fq12_to_canonical",
    "fq12_mul",
    "fq12_eq",
]
