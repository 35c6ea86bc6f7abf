"""Optimal ate pairing on BN254, reference backend: py_ecc plus a basis conversion.

Same API as :mod:`zkmb.algebra.fast.pairing`.  Points are canonical: G1 ``(x, y)``, G2
``((x0, x1), (y0, y1))``, ``None`` = infinity.  An Fq12 value is a 12-tuple of ints in tower order
(index ``6*i + 2*j + k``, see the project notes).

py_ecc represents Fq12 as polynomials in w modulo w^12 - 18 w^6 + 82.  With w^2 = v and
w^6 = xi = 9 + u, i.e. u = w^6 - 9, a tower coefficient x + y u at w^k (k = 2j + i) is
(x - 9y) w^k + y w^(k+6); conversely y = a_(k+6), x = a_k + 9 a_(k+6).

Every entry point checks that the points are on their curves (raising :class:`InvalidPoint`);
membership of G2 points in the order-r subgroup is not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc import optimized_bn128 as _ob
from py_ecc.optimized_bn128.optimized_pairing import cast_point_to_fq12 as _cast
from py_ecc.optimized_bn128.optimized_pairing import miller_loop as _miller
from py_ecc.optimized_bn128.optimized_pairing import twist as _twist

from ...errors import InvalidInput, InvalidPoint
from ..params import B_G1, B_G2, P, R

Fq12 = tuple

_FINAL_EXP = (P**12 - 1) // R
_ONE = (1,) + (0,) * 11


def _to_poly(t: Sequence[int]) -> _ob.FQ12:
    a = [0] * 12
    for i in range(2):
        for j in range(3):
            x, y = t[6 * i + 2 * j], t[6 * i + 2 * j + 1]
            k = 2 * j + i
            a[k] = (x - 9 * y) % P
            a[k + 6] = y
    return _ob.FQ12(a)


def _from_poly(f: _ob.FQ12) -> Fq12:
    a = [int(c) % P for c in f.coeffs]
    t = [0] * 12
    for k in range(6):
        i, j = k % 2, k // 2
        y = a[k + 6]
        t[6 * i + 2 * j] = (a[k] + 9 * y) % P
        t[6 * i + 2 * j + 1] = y
    return tuple(t)


def _fq2_mul(a, b):
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _in_range(*vals: int) -> bool:
    return all(isinstance(v, int) and 0 <= v < P for v in vals)


def _g1(pt, i: int):
    """Validated G1 point as py_ecc projective (x, y, 1), or None for infinity."""
    if pt is None:
        return None
    try:
        x, y = (int(c) for c in pt)
    except (TypeError, ValueError) as e:
        raise InvalidPoint(f"G1 point {i} is not a pair of ints") from e
    if not _in_range(x, y) or (y * y - x * x * x - B_G1) % P:
        raise InvalidPoint(f"G1 point {i} is not on the curve (or has unreduced coordinates)")
    return (_ob.FQ(x), _ob.FQ(y), _ob.FQ.one())


def _g2(pt, i: int):
    """Validated G2 point as py_ecc projective (x, y, 1) over FQ2, or None for infinity."""
    if pt is None:
        return None
    try:
        (x0, x1), (y0, y1) = ((int(a), int(b)) for a, b in pt)
    except (TypeError, ValueError) as e:
        raise InvalidPoint(f"G2 point {i} is not a pair of Fq2 pairs") from e
    if not _in_range(x0, x1, y0, y1):
        raise InvalidPoint(f"G2 point {i} has unreduced coordinates")
    x, y = (x0, x1), (y0, y1)
    rhs = _fq2_mul(_fq2_mul(x, x), x)
    rhs = ((rhs[0] + B_G2[0]) % P, (rhs[1] + B_G2[1]) % P)
    if _fq2_mul(y, y) != rhs:
        raise InvalidPoint(f"G2 point {i} is not on the twist curve")
    return (_ob.FQ2([x0, x1]), _ob.FQ2([y0, y1]), _ob.FQ2.one())


def _pairs(ps, qs) -> list[tuple]:
    ps, qs = list(ps), list(qs)
    if len(ps) != len(qs):
        raise InvalidInput(f"{len(ps)} G1 points but {len(qs)} G2 points")
    g1 = [_g1(p, i) for i, p in enumerate(ps)]
    g2 = [_g2(q, i) for i, q in enumerate(qs)]
    return [(p, q) for p, q in zip(g1, g2, strict=True) if p is not None and q is not None]


def _miller_poly(pairs: list[tuple]) -> _ob.FQ12:
    f = _ob.FQ12.one()
    for p, q in pairs:
        f = f * _miller(_twist(q), _cast(p), final_exponentiate=False)
    return f


def miller_loop(ps, qs) -> Fq12:
    """Product of py_ecc's Miller-loop values (differs from the fast backend's by factors that the
    final exponentiation removes); pairs with a point at infinity contribute 1."""
    return _from_poly(_miller_poly(_pairs(ps, qs)))


def final_exponentiation(f: Sequence[int]) -> Fq12:
    """f^((p^12 - 1)/r)."""
    return _from_poly(_to_poly(_check12(f)) ** _FINAL_EXP)


def multi_pairing(ps, qs) -> Fq12:
    """prod_i e(ps[i], qs[i]) with one final exponentiation."""
    pairs = _pairs(ps, qs)
    if not pairs:
        return _ONE
    return _from_poly(_miller_poly(pairs) ** _FINAL_EXP)


def pairing(p, q) -> Fq12:
    """e(p, q) (py_ecc's optimal ate pairing, whose argument order is pairing(Q, P))."""
    pairs = _pairs([p], [q])
    if not pairs:
        return _ONE
    (p3, q3) = pairs[0]
    return _from_poly(_ob.pairing(q3, p3))


def pairing_check(ps, qs) -> bool:
    """True iff prod_i e(ps[i], qs[i]) == 1."""
    return multi_pairing(ps, qs) == _ONE


def _check12(t: Sequence[int]) -> Fq12:
    try:
        t = tuple(int(v) for v in t)
    except (TypeError, ValueError) as e:
        raise InvalidInput("an Fq12 value is 12 ints in [0, p)") from e
    if len(t) != 12 or not _in_range(*t):
        raise InvalidInput("an Fq12 value is 12 ints in [0, p)")
    return t


def fq12_one() -> Fq12:
    return _ONE


def fq12_from_canonical(t: Sequence[int]) -> Fq12:
    return _check12(t)


def fq12_to_canonical(f: Sequence[int]) -> tuple[int, ...]:
    return _check12(f)


def fq12_mul(a: Sequence[int], b: Sequence[int]) -> Fq12:
    return _from_poly(_to_poly(_check12(a)) * _to_poly(_check12(b)))


def fq12_eq(a: Sequence[int], b: Sequence[int]) -> bool:
    return _check12(a) == _check12(b)


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
