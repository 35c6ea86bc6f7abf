"""G1 and G2 vectors for the reference backend: lists of canonical affine points, arithmetic by py_ecc.

A G1 point is ``(x, y)`` with ints in [0, p) or ``None`` (infinity); a G2 point is
``((x0, x1), (y0, y1))`` or ``None``.  Same API as :mod:`zkmb.algebra.fast.curves`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce

import py_ecc.optimized_bn128 as bn

from ...errors import InvalidInput, InvalidPoint
from ..params import G1_GEN, G2_GEN, P, R

G1Point = tuple[int, int] | None
G2Point = tuple[tuple[int, int], tuple[int, int]] | None
G1Vec = list
G2Vec = list

# --------------------------------------------------------------------------- canonical point parsing
# (shared with the fast backend so both accept and reject exactly the same inputs)

_STATUS_REASON = {
    1: "coordinate not canonical (not an integer in [0, p))",
    2: "not on the curve",
    3: "not in the order-r subgroup",
}


def _is_fq(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < P


def flat_coords_g1(points: Sequence[G1Point]) -> list[int]:
    """[x0, y0, x1, y1, ...] of canonical G1 points, 0, 0 for infinity.

    Raises InvalidPoint naming the index for a malformed point, a coordinate outside [0, p), or the
    affine pair (0, 0), which is off the curve and would alias the fast backend's infinity encoding.
    Does not check the curve equation (see g1_validate)."""
    flat: list[int] = []
    for i, pt in enumerate(points):
        if pt is None:
            flat += (0, 0)
            continue
        if not (isinstance(pt, tuple | list) and len(pt) == 2 and _is_fq(pt[0]) and _is_fq(pt[1])):
            raise InvalidPoint(f"G1 point {i}: not a pair of integers in [0, p)")
        if pt[0] == 0 and pt[1] == 0:
            raise InvalidPoint(f"G1 point {i}: (0, 0) is not on the curve")
        flat += (pt[0], pt[1])
    return flat


def _is_fq2(v: object) -> bool:
    return isinstance(v, tuple | list) and len(v) == 2 and _is_fq(v[0]) and _is_fq(v[1])


def flat_coords_g2(points: Sequence[G2Point]) -> list[int]:
    """[x0.c0, x0.c1, y0.c0, y0.c1, ...] of canonical G2 points, zeros for infinity (rules as for G1)."""
    flat: list[int] = []
    for i, pt in enumerate(points):
        if pt is None:
            flat += (0, 0, 0, 0)
            continue
        if not (isinstance(pt, tuple | list) and len(pt) == 2 and _is_fq2(pt[0]) and _is_fq2(pt[1])):
            raise InvalidPoint(f"G2 point {i}: not a pair of Fq2 elements with coordinates in [0, p)")
        c = (pt[0][0], pt[0][1], pt[1][0], pt[1][1])
        if not any(c):
            raise InvalidPoint(f"G2 point {i}: (0, 0) is not on the curve")
        flat += c
    return flat


def scalars_mod_r(scalars: Iterable[int]) -> list[int]:
    """Non-negative integers reduced mod r; raises InvalidInput for anything else."""
    out = []
    for k in scalars:
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise InvalidInput(f"scalar must be a non-negative int, got {k!r}")
        out.append(k % R)
    return out


def raise_first_invalid(group: str, status: Sequence[int]) -> None:
    """Raise InvalidPoint for the first nonzero status (1 non-canonical, 2 off curve, 3 off subgroup)."""
    for i, s in enumerate(status):
        if s:
            raise InvalidPoint(f"{group} point {i}: {_STATUS_REASON[int(s)]}")


# --------------------------------------------------------------------------- square roots (test helpers)


def fq_sqrt(a: int) -> int | None:
    """A square root of a in Fq (p = 3 mod 4), or None if a is not a square."""
    x = pow(a, (P + 1) // 4, P)
    return x if x * x % P == a % P else None


def _f2mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _f2pow(a: tuple[int, int], e: int) -> tuple[int, int]:
    r = (1, 0)
    while e:
        if e & 1:
            r = _f2mul(r, a)
        a = _f2mul(a, a)
        e >>= 1
    return r


def fq2_sqrt(a: tuple[int, int]) -> tuple[int, int] | None:
    """A square root of a in Fq2 = Fq[u]/(u^2 + 1), or None (Adj-Rodriguez-Henriquez alg. 9, p = 3 mod 4)."""
    a = (a[0] % P, a[1] % P)
    if a == (0, 0):
        return (0, 0)
    a1 = _f2pow(a, (P - 3) // 4)
    alpha = _f2mul(a1, _f2mul(a1, a))
    x0 = _f2mul(a1, a)
    if alpha == (P - 1, 0):
        x = _f2mul((0, 1), x0)
    else:
        x = _f2mul(_f2pow(((1 + alpha[0]) % P, alpha[1]), (P - 1) // 2), x0)
    return x if _f2mul(x, x) == a else None


# --------------------------------------------------------------------------- py_ecc conversion


def _pe1(p: G1Point):
    return bn.Z1 if p is None else (bn.FQ(p[0]), bn.FQ(p[1]), bn.FQ.one())


def _pe2(p: G2Point):
    return bn.Z2 if p is None else (bn.FQ2(list(p[0])), bn.FQ2(list(p[1])), bn.FQ2.one())


def _un1(q) -> G1Point:
    if bn.is_inf(q):
        return None
    x, y = bn.normalize(q)
    return (int(x), int(y))


def _un2(q) -> G2Point:
    if bn.is_inf(q):
        return None
    x, y = bn.normalize(q)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


class _Group:
    def __init__(self, name, flat, pe, un, b, gen, cofactor_one):
        self.name, self.flat, self.pe, self.un, self.b = name, flat, pe, un, b
        self.gen, self.cofactor_one = gen, cofactor_one

    def from_affine(self, points: Sequence) -> list:
        points = list(points)
        self.flat(points)  # the same structural checks as the fast backend
        return [
            None if p is None else tuple(tuple(c) if isinstance(c, list) else c for c in p) for p in points
        ]

    def status(self, p) -> int:
        if p is None:
            return 0
        coords = [p[0], p[1]] if self.name == "G1" else [*p[0], *p[1]]
        if not all(_is_fq(c) for c in coords):
            return 1
        q = self.pe(p)
        if not bn.is_on_curve(q, self.b):
            return 2
        if not self.cofactor_one and not bn.is_inf(bn.multiply(q, R)):
            return 3
        return 0

    def check_len(self, a: list, b: list) -> None:
        if len(a) != len(b):
            raise InvalidInput(f"length mismatch {len(a)} vs {len(b)}")


_G1 = _Group("G1", flat_coords_g1, _pe1, _un1, bn.b, G1_GEN, True)
_G2 = _Group("G2", flat_coords_g2, _pe2, _un2, bn.b2, G2_GEN, False)


def _add(g: _Group, a: list, b: list) -> list:
    g.check_len(a, b)
    return [g.un(bn.add(g.pe(p), g.pe(q))) for p, q in zip(a, b, strict=True)]


def _mul(g: _Group, v: list, scalars: Iterable[int]) -> list:
    ks = scalars_mod_r(scalars)
    g.check_len(v, ks)
    return [g.un(bn.multiply(g.pe(p), k)) for p, k in zip(v, ks, strict=True)]


def _sum(g: _Group, v: list) -> list:
    return [g.un(reduce(bn.add, (g.pe(p) for p in v), g.pe(None)))]


# --------------------------------------------------------------------------- G1


def g1_from_affine(points: Sequence[G1Point]) -> G1Vec:
    """Canonical points -> G1 vector.  Rejects malformed points, coordinates outside [0, p) and (0, 0)
    (InvalidPoint); does not check the curve equation: use g1_validate for untrusted points."""
    return _G1.from_affine(points)


def g1_to_affine(v: G1Vec) -> list[G1Point]:
    return list(v)


def g1_is_on_curve(v: G1Vec) -> list[bool]:
    """Per point: canonical coordinates and on y^2 = x^3 + 3 (infinity counts as on the curve)."""
    return [_G1.status(p) not in (1, 2) for p in v]


def g1_in_subgroup(v: G1Vec) -> list[bool]:
    """Per point: on the curve and in G1 (the cofactor is 1, so the same as g1_is_on_curve)."""
    return [_G1.status(p) == 0 for p in v]


def g1_validate(v: G1Vec) -> None:
    """Raise InvalidPoint naming the first point that is non-canonical, off the curve or not in G1."""
    raise_first_invalid("G1", [_G1.status(p) for p in v])


def g1_add(a: G1Vec, b: G1Vec) -> G1Vec:
    return _add(_G1, a, b)


def g1_neg(a: G1Vec) -> G1Vec:
    return [None if p is None else (p[0], -p[1] % P) for p in a]


def g1_double(a: G1Vec) -> G1Vec:
    return [_G1.un(bn.double(_G1.pe(p))) for p in a]


def g1_mul(v: G1Vec, scalars: Iterable[int]) -> G1Vec:
    """Elementwise [k_i] v_i; scalars are non-negative ints, reduced mod r."""
    return _mul(_G1, v, scalars)


def g1_mul_generator(scalars: Iterable[int]) -> G1Vec:
    """[k_i] G for the standard generator G of G1 (scalars reduced mod r)."""
    ks = scalars_mod_r(scalars)
    return _mul(_G1, [G1_GEN] * len(ks), ks)


def g1_sum(v: G1Vec) -> G1Vec:
    """The sum of all points, as a vector of length 1."""
    return _sum(_G1, v)


def g1_generator() -> G1Vec:
    return [G1_GEN]


def g1_infinity(n: int) -> G1Vec:
    return [None] * n


# --------------------------------------------------------------------------- G2


def g2_from_affine(points: Sequence[G2Point]) -> G2Vec:
    """Canonical points -> G2 vector (same rules as g1_from_affine)."""
    return _G2.from_affine(points)


def g2_to_affine(v: G2Vec) -> list[G2Point]:
    return list(v)


def g2_is_on_curve(v: G2Vec) -> list[bool]:
    """Per point: canonical coordinates and on the twist y^2 = x^3 + 3/(9 + u) (infinity included)."""
    return [_G2.status(p) not in (1, 2) for p in v]


def g2_in_subgroup(v: G2Vec) -> list[bool]:
    """Per point: on the twist and of order dividing r ([r] Q = O)."""
    return [_G2.status(p) == 0 for p in v]


def g2_validate(v: G2Vec) -> None:
    """Raise InvalidPoint naming the first point that is non-canonical, off the twist or not in G2."""
    raise_first_invalid("G2", [_G2.status(p) for p in v])


def g2_add(a: G2Vec, b: G2Vec) -> G2Vec:
    return _add(_G2, a, b)


def g2_neg(a: G2Vec) -> G2Vec:
    return [None if p is None else (p[0], (-p[1][0] % P, -p[1][1] % P)) for p in a]


def g2_double(a: G2Vec) -> G2Vec:
    return [_G2.un(bn.double(_G2.pe(p))) for p in a]


def g2_mul(v: G2Vec, scalars: Iterable[int]) -> G2Vec:
    """Elementwise [k_i] v_i; scalars are non-negative ints, reduced mod r."""
    return _mul(_G2, v, scalars)


def g2_mul_generator(scalars: Iterable[int]) -> G2Vec:
    """[k_i] G for the standard generator G of G2 (scalars reduced mod r)."""
    ks = scalars_mod_r(scalars)
    return _mul(_G2, [G2_GEN] * len(ks), ks)


def g2_sum(v: G2Vec) -> G2Vec:
    return _sum(_G2, v)


def g2_generator() -> G2Vec:
    return [G2_GEN]


def g2_infinity(n: int) -> G2Vec:
    return [None] * n


__all__ = [n for n in dir() if n.startswith(("g1_", "g2_"))] + ["G1Vec", "G2Vec", "G1Point", "G2Point"]
