"""Fq6 = Fq2[v]/(v^3 - xi) and Fq12 = Fq6[w]/(w^2 - v) on numba tuples (xi = 9 + u).

An Fq6 element is ``(c0, c1, c2)`` of Fq2 tuples (``c0 + c1 v + c2 v^2``); an Fq12 element is
``(c0, c1)`` of Fq6 tuples (``c0 + c1 w``).  Flattened, the Fq limbs are in the canonical tower
order ``6*i + 2*j + k`` (Fq6 index i, Fq2 index j, Fq index k), so an Fq12 array has shape ``(12, 4)``.

All constants (Frobenius coefficients, exponent digits) are derived here from :mod:`..params`
at import time.  Besides the field operations the module provides the pieces the pairing needs:
the sparse product by a line value, Granger-Scott squaring in the cyclotomic subgroup and the
exponentiation by the BN parameter x.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..params import BN_X, XI, P, from_limbs, to_limbs
from . import mont
from .fq2 import FQ2_ONE, FQ2_ZERO, fq2_inv, fq2_is_zero
from .intrinsics import adc, sbb
from .mont import FQ_MOD, FQ_NINV

U64 = np.uint64
_jit = dict(cache=True, nogil=True)

# --------------------------------------------------------------------------- Python-side constants


def _p2mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _p2pow(a: tuple[int, int], e: int) -> tuple[int, int]:
    acc = (1, 0)
    for bit in bin(e)[2:]:
        acc = _p2mul(acc, acc)
        if bit == "1":
            acc = _p2mul(acc, a)
    return acc


def mont_fq(x: int) -> tuple:
    """Canonical Fq integer -> Montgomery limb tuple of np.uint64 (what the kernels take)."""
    if not 0 <= x < P:
        raise ValueError("Fq element out of range")
    return tuple(U64(v) for v in to_limbs((x << 256) % P))


_RINV = pow(1 << 256, -1, P)


def unmont_fq(t) -> int:
    """Montgomery limb tuple -> canonical Fq integer."""
    return from_limbs(t) * _RINV % P


def mont_fq2(a: tuple[int, int]) -> tuple:
    return (mont_fq(a[0]), mont_fq(a[1]))


def fq12_from_ints(c) -> tuple:
    """12 canonical ints (tower order) -> nested Fq12 tuple in Montgomery form."""
    c = [int(v) for v in c]
    if len(c) != 12:
        raise ValueError("an Fq12 element has 12 coefficients")
    return tuple(
        tuple(mont_fq2((c[6 * i + 2 * j], c[6 * i + 2 * j + 1])) for j in range(3)) for i in range(2)
    )


def fq12_to_ints(f) -> tuple[int, ...]:
    """Nested Fq12 tuple (Montgomery) -> 12 canonical ints in tower order."""
    return tuple(unmont_fq(f[i][j][k]) for i in range(2) for j in range(3) for k in range(2))


if (P - 1) % 6 != 0:  # pragma: no cover - a property of BN primes
    raise RuntimeError("p != 1 mod 6: the Frobenius constants below do not apply")

# w^(p^e) = w * xi^((p^e - 1)/6), so the coefficient of w^k picks up gamma_e[k] = xi^(k (p^e - 1)/6).
_G1_INT = [_p2pow(XI, k * (P - 1) // 6) for k in range(6)]
_G2_INT = [_p2pow(XI, k * (P * P - 1) // 6) for k in range(6)]
_G3_INT = [_p2pow(XI, k * (P**3 - 1) // 6) for k in range(6)]
if any(g[1] != 0 for g in _G2_INT):  # pragma: no cover
    raise RuntimeError("p^2-Frobenius constants are expected in Fq")
if _p2pow(XI, (P * P - 1) // 2) != (P - 1, 0):  # pragma: no cover
    raise RuntimeError("xi must be a non-square in Fq2")

FROB1_C = tuple(mont_fq2(g) for g in _G1_INT)  # Fq2 constants
FROB2_C = tuple(mont_fq(g[0]) for g in _G2_INT)  # Fq constants
FROB3_C = tuple(mont_fq2(g) for g in _G3_INT)  # Fq2 constants


def _naf(n: int) -> list[int]:
    """Non-adjacent form of n > 0, least significant digit first."""
    out = []
    while n:
        if n & 1:
            d = 2 - (n & 3)
            n -= d
        else:
            d = 0
        out.append(d)
        n >>= 1
    return out


if BN_X <= 0:  # pragma: no cover - BN254 has x > 0; a negative x needs a final conjugation
    raise RuntimeError("the exponentiation by x below assumes x > 0")
# Digits of x, most significant first, without the leading 1.
X_NAF = np.array(_naf(BN_X)[::-1][1:], dtype=np.int8)

# ------------------------------------------------------------------ flat, branch-free Fq2 layer
# The tower and the pairing use their own Fq2 helpers rather than kernels/fq2.py, for speed and for
# compile time:
# * LLVM does not inline numba's out-of-line Montgomery product (mont._mmul) into its callers, so each
#   Fq product would be a call that serialises the independent products of an Fq2 operation.  Here the
#   Fq products are inlined at the numba IR level (the same mont._mmul code, with inline="always"),
#   while the Fq2 products stay out of line.
# * fq2.py's additions inline through four levels (fq2_add -> fq_add -> _madd -> _mreduce_sub), and
#   numba's IR inliner pays for every level at every call site; the additions below are one level
#   deep and select the reduced value with a mask instead of a data-dependent branch.

_M0, _M1, _M2, _M3 = FQ_MOD
_Z = U64(0)

_mmul_inline = njit(inline="always", **_jit)(mont._mmul.py_func)


@njit(inline="always", **_jit)
def fqmul(a, b):
    return _mmul_inline(a, b, FQ_MOD, FQ_NINV)


@njit(inline="always", **_jit)
def fqadd(a, b):
    """a + b mod p for reduced a, b (p < 2^254, so the 256-bit sum does not overflow)."""
    s0, c = adc(a[0], b[0], _Z)
    s1, c = adc(a[1], b[1], c)
    s2, c = adc(a[2], b[2], c)
    s3, c = adc(a[3], b[3], c)
    d0, br = sbb(s0, _M0, _Z)
    d1, br = sbb(s1, _M1, br)
    d2, br = sbb(s2, _M2, br)
    d3, br = sbb(s3, _M3, br)
    keep = _Z - br  # all ones when s < p
    drop = ~keep
    return (
        (s0 & keep) | (d0 & drop),
        (s1 & keep) | (d1 & drop),
        (s2 & keep) | (d2 & drop),
        (s3 & keep) | (d3 & drop),
    )


@njit(inline="always", **_jit)
def fqsub(a, b):
    """a - b mod p for reduced a, b."""
    d0, br = sbb(a[0], b[0], _Z)
    d1, br = sbb(a[1], b[1], br)
    d2, br = sbb(a[2], b[2], br)
    d3, br = sbb(a[3], b[3], br)
    m = _Z - br  # p if the difference went negative, else 0
    r0, c = adc(d0, _M0 & m, _Z)
    r1, c = adc(d1, _M1 & m, c)
    r2, c = adc(d2, _M2 & m, c)
    r3, c = adc(d3, _M3 & m, c)
    return (r0, r1, r2, r3)


_ZERO4 = (_Z, _Z, _Z, _Z)


@njit(inline="always", **_jit)
def fq2add(a, b):
    return (fqadd(a[0], b[0]), fqadd(a[1], b[1]))


@njit(inline="always", **_jit)
def fq2sub(a, b):
    return (fqsub(a[0], b[0]), fqsub(a[1], b[1]))


@njit(inline="always", **_jit)
def fq2dbl(a):
    return (fqadd(a[0], a[0]), fqadd(a[1], a[1]))


@njit(inline="always", **_jit)
def fq2neg(a):
    return (fqsub(_ZERO4, a[0]), fqsub(_ZERO4, a[1]))


@njit(inline="always", **_jit)
def fq2conj(a):
    """The Frobenius map on Fq2."""
    return (a[0], fqsub(_ZERO4, a[1]))


@njit(**_jit)
def fq2mul(a, b):
    """Karatsuba: 3 Fq products."""
    v0 = fqmul(a[0], b[0])
    v1 = fqmul(a[1], b[1])
    s = fqmul(fqadd(a[0], a[1]), fqadd(b[0], b[1]))
    return (fqsub(v0, v1), fqsub(fqsub(s, v0), v1))


@njit(**_jit)
def fq2sqr(a):
    """Complex squaring: 2 Fq products."""
    t = fqmul(a[0], a[1])
    return (fqmul(fqadd(a[0], a[1]), fqsub(a[0], a[1])), fqadd(t, t))


@njit(**_jit)
def fq2mulfq(a, s):
    return (fqmul(a[0], s), fqmul(a[1], s))


@njit(**_jit)
def fq2mulxi(a):
    """a * (9 + u) = (9 a0 - a1) + (a0 + 9 a1) u."""
    a0, a1 = a
    e0 = fqadd(a0, a0)
    e1 = fqadd(a1, a1)
    e0 = fqadd(e0, e0)
    e1 = fqadd(e1, e1)
    e0 = fqadd(e0, e0)
    e1 = fqadd(e1, e1)
    return (fqsub(fqadd(e0, a0), a1), fqadd(fqadd(e1, a1), a0))


FQ6_ZERO = (FQ2_ZERO, FQ2_ZERO, FQ2_ZERO)
FQ6_ONE = (FQ2_ONE, FQ2_ZERO, FQ2_ZERO)
FQ12_ONE = (FQ6_ONE, FQ6_ZERO)
FQ12_ZERO = (FQ6_ZERO, FQ6_ZERO)

# --------------------------------------------------------------------------- Fq6


@njit(inline="always", **_jit)
def fq6_add(a, b):
    return (fq2add(a[0], b[0]), fq2add(a[1], b[1]), fq2add(a[2], b[2]))


@njit(inline="always", **_jit)
def fq6_sub(a, b):
    return (fq2sub(a[0], b[0]), fq2sub(a[1], b[1]), fq2sub(a[2], b[2]))


@njit(inline="always", **_jit)
def fq6_dbl(a):
    return (fq2dbl(a[0]), fq2dbl(a[1]), fq2dbl(a[2]))


@njit(inline="always", **_jit)
def fq6_neg(a):
    return (fq2neg(a[0]), fq2neg(a[1]), fq2neg(a[2]))


@njit(inline="always", **_jit)
def fq6_mul_v(a):
    """a * v = xi a2 + a0 v + a1 v^2."""
    return (fq2mulxi(a[2]), a[0], a[1])


@njit(**_jit)
def fq6_mul(a, b):
    """Karatsuba: 6 Fq2 products."""
    a0, a1, a2 = a
    b0, b1, b2 = b
    t0 = fq2mul(a0, b0)
    t1 = fq2mul(a1, b1)
    t2 = fq2mul(a2, b2)
    s12 = fq2sub(fq2sub(fq2mul(fq2add(a1, a2), fq2add(b1, b2)), t1), t2)
    s01 = fq2sub(fq2sub(fq2mul(fq2add(a0, a1), fq2add(b0, b1)), t0), t1)
    s02 = fq2sub(fq2sub(fq2mul(fq2add(a0, a2), fq2add(b0, b2)), t0), t2)
    return (
        fq2add(t0, fq2mulxi(s12)),
        fq2add(s01, fq2mulxi(t2)),
        fq2add(s02, t1),
    )


@njit(**_jit)
def fq6_sqr(a):
    """Chung-Hasan SQR2: 3 Fq2 squarings and 2 products."""
    a0, a1, a2 = a
    s0 = fq2sqr(a0)
    s1 = fq2dbl(fq2mul(a0, a1))
    s2 = fq2sqr(fq2add(fq2sub(a0, a1), a2))
    s3 = fq2dbl(fq2mul(a1, a2))
    s4 = fq2sqr(a2)
    c0 = fq2add(s0, fq2mulxi(s3))
    c1 = fq2add(s1, fq2mulxi(s4))
    c2 = fq2sub(fq2sub(fq2add(fq2add(s1, s2), s3), s0), s4)
    return (c0, c1, c2)


@njit(**_jit)
def fq6_mul_fq2(a, s):
    """a * s for s in Fq2."""
    return (fq2mul(a[0], s), fq2mul(a[1], s), fq2mul(a[2], s))


@njit(**_jit)
def fq6_mul_01(a, s0, s1):
    """a * (s0 + s1 v): 5 Fq2 products."""
    a0, a1, a2 = a
    t0 = fq2mul(a0, s0)
    t1 = fq2mul(a1, s1)
    c0 = fq2add(t0, fq2mulxi(fq2mul(a2, s1)))
    c1 = fq2sub(fq2sub(fq2mul(fq2add(a0, a1), fq2add(s0, s1)), t0), t1)
    c2 = fq2add(t1, fq2mul(a2, s0))
    return (c0, c1, c2)


@njit(**_jit)
def fq6_inv(a):
    """a^-1 via the adjugate and one Fq2 inversion; 0 maps to 0."""
    a0, a1, a2 = a
    c0 = fq2sub(fq2sqr(a0), fq2mulxi(fq2mul(a1, a2)))
    c1 = fq2sub(fq2mulxi(fq2sqr(a2)), fq2mul(a0, a1))
    c2 = fq2sub(fq2sqr(a1), fq2mul(a0, a2))
    t = fq2add(fq2mul(a0, c0), fq2mulxi(fq2add(fq2mul(a2, c1), fq2mul(a1, c2))))
    ti = fq2_inv(t)
    return (fq2mul(c0, ti), fq2mul(c1, ti), fq2mul(c2, ti))


@njit(inline="always", **_jit)
def fq6_is_zero(a):
    return fq2_is_zero(a[0]) and fq2_is_zero(a[1]) and fq2_is_zero(a[2])


# --------------------------------------------------------------------------- Fq12


@njit(inline="always", **_jit)
def fq12_add(a, b):
    return (fq6_add(a[0], b[0]), fq6_add(a[1], b[1]))


@njit(inline="always", **_jit)
def fq12_sub(a, b):
    return (fq6_sub(a[0], b[0]), fq6_sub(a[1], b[1]))


@njit(inline="always", **_jit)
def fq12_neg(a):
    return (fq6_neg(a[0]), fq6_neg(a[1]))


@njit(inline="always", **_jit)
def fq12_conj(a):
    """a^(p^6): w -> -w.  The inverse on the cyclotomic subgroup."""
    return (a[0], fq6_neg(a[1]))


@njit(**_jit)
def fq12_mul(a, b):
    """Karatsuba over Fq6: 3 Fq6 products (18 Fq2 products)."""
    t0 = fq6_mul(a[0], b[0])
    t1 = fq6_mul(a[1], b[1])
    s = fq6_mul(fq6_add(a[0], a[1]), fq6_add(b[0], b[1]))
    return (fq6_add(t0, fq6_mul_v(t1)), fq6_sub(fq6_sub(s, t0), t1))


@njit(**_jit)
def fq12_sqr(a):
    """Complex squaring: 2 Fq6 products."""
    a0, a1 = a
    t = fq6_mul(a0, a1)
    s = fq6_mul(fq6_add(a0, a1), fq6_add(a0, fq6_mul_v(a1)))
    return (fq6_sub(fq6_sub(s, t), fq6_mul_v(t)), fq6_dbl(t))


@njit(**_jit)
def fq12_inv(a):
    """a^-1 = (a0 - a1 w) / (a0^2 - v a1^2); 0 maps to 0."""
    a0, a1 = a
    t = fq6_sub(fq6_sqr(a0), fq6_mul_v(fq6_sqr(a1)))
    ti = fq6_inv(t)
    return (fq6_mul(a0, ti), fq6_neg(fq6_mul(a1, ti)))


@njit(**_jit)
def fq12_mul_034(f, l0, l1, l3):
    """f * (l0 + l1 w + l3 w^3) for Fq2 values l0, l1, l3: the shape of a line on the D-type twist.

    13 Fq2 products instead of 18.
    """
    f0, f1 = f
    t0 = fq6_mul_fq2(f0, l0)
    t1 = fq6_mul_01(f1, l1, l3)
    s = fq6_mul_01(fq6_add(f0, f1), fq2add(l0, l1), l3)
    return (fq6_add(t0, fq6_mul_v(t1)), fq6_sub(fq6_sub(s, t0), t1))


@njit(**_jit)
def fq12_frob1(a):
    """a^p."""
    (g0, g1, g2), (h0, h1, h2) = a
    c = FROB1_C
    return (
        (fq2conj(g0), fq2mul(fq2conj(g1), c[2]), fq2mul(fq2conj(g2), c[4])),
        (
            fq2mul(fq2conj(h0), c[1]),
            fq2mul(fq2conj(h1), c[3]),
            fq2mul(fq2conj(h2), c[5]),
        ),
    )


@njit(**_jit)
def fq12_frob2(a):
    """a^(p^2) (the constants are in Fq)."""
    (g0, g1, g2), (h0, h1, h2) = a
    c = FROB2_C
    return (
        (g0, fq2mulfq(g1, c[2]), fq2mulfq(g2, c[4])),
        (fq2mulfq(h0, c[1]), fq2mulfq(h1, c[3]), fq2mulfq(h2, c[5])),
    )


@njit(**_jit)
def fq12_frob3(a):
    """a^(p^3)."""
    (g0, g1, g2), (h0, h1, h2) = a
    c = FROB3_C
    return (
        (fq2conj(g0), fq2mul(fq2conj(g1), c[2]), fq2mul(fq2conj(g2), c[4])),
        (
            fq2mul(fq2conj(h0), c[1]),
            fq2mul(fq2conj(h1), c[3]),
            fq2mul(fq2conj(h2), c[5]),
        ),
    )


@njit(inline="always", **_jit)
def _fq4_sqr(a, b):
    """(a + b s)^2 in Fq4 = Fq2[s]/(s^2 - xi): 3 Fq2 squarings."""
    t0 = fq2sqr(a)
    t1 = fq2sqr(b)
    return (
        fq2add(t0, fq2mulxi(t1)),
        fq2sub(fq2sub(fq2sqr(fq2add(a, b)), t0), t1),
    )


@njit(**_jit)
def fq12_cyc_sqr(a):
    """a^2 for a in the cyclotomic subgroup (a^(p^6+1) = 1): Granger-Scott, 9 Fq2 squarings.

    Viewing Fq12 = Fq4[w]/(w^3 - s) with s = w^3, a = A + B w + C w^2 where A = g0 + h1 s,
    B = h0 + g2 s, C = g1 + h2 s; then a^2 = (3A^2 - 2 conj A) + (3 s C^2 + 2 conj B) w
    + (3 B^2 - 2 conj C) w^2.  Wrong (but harmless) for elements outside the subgroup.
    """
    (g0, g1, g2), (h0, h1, h2) = a
    a0, a1 = _fq4_sqr(g0, h1)
    b0, b1 = _fq4_sqr(h0, g2)
    c0, c1 = _fq4_sqr(g1, h2)
    xc1 = fq2mulxi(c1)
    ng0 = fq2add(fq2dbl(fq2sub(a0, g0)), a0)
    nh1 = fq2add(fq2dbl(fq2add(a1, h1)), a1)
    nh0 = fq2add(fq2dbl(fq2add(xc1, h0)), xc1)
    ng2 = fq2add(fq2dbl(fq2sub(c0, g2)), c0)
    ng1 = fq2add(fq2dbl(fq2sub(b0, g1)), b0)
    nh2 = fq2add(fq2dbl(fq2add(b1, h2)), b1)
    return ((ng0, ng1, ng2), (nh0, nh1, nh2))


@njit(**_jit)
def fq12_cyc_pow_x(a):
    """a^x for the BN parameter x (a in the cyclotomic subgroup): NAF with conjugate inverses."""
    digits = X_NAF
    ac = fq12_conj(a)
    acc = a
    for i in range(digits.shape[0]):
        acc = fq12_cyc_sqr(acc)
        d = digits[i]
        if d == 1:
            acc = fq12_mul(acc, a)
        elif d == -1:
            acc = fq12_mul(acc, ac)
    return acc


@njit(inline="always", **_jit)
def fq12_is_one(a):
    return fq6_is_zero(fq6_sub(a[0], FQ6_ONE)) and fq6_is_zero(a[1])


@njit(inline="always", **_jit)
def fq12_eq(a, b):
    return fq6_is_zero(fq6_sub(a[0], b[0])) and fq6_is_zero(fq6_sub(a[1], b[1]))


# --------------------------------------------------------------------------- (12, 4) arrays


@njit(inline="always", **_jit)
def _ld(arr, i):
    return (arr[i, 0], arr[i, 1], arr[i, 2], arr[i, 3])


@njit(**_jit)
def fq12_load(arr):
    """A (12, 4) uint64 array (tower order) as an Fq12 tuple."""
    return (
        ((_ld(arr, 0), _ld(arr, 1)), (_ld(arr, 2), _ld(arr, 3)), (_ld(arr, 4), _ld(arr, 5))),
        ((_ld(arr, 6), _ld(arr, 7)), (_ld(arr, 8), _ld(arr, 9)), (_ld(arr, 10), _ld(arr, 11))),
    )


@njit(**_jit)
def fq12_store(arr, a):
    """Write an Fq12 tuple into a (12, 4) uint64 array (tower order)."""
    for i in range(2):
        for j in range(3):
            for k in range(2):
                v = a[i][j][k]
                r = 6 * i + 2 * j + k
                arr[r, 0] = v[0]
                arr[r, 1] = v[1]
                arr[r, 2] = v[2]
                arr[r, 3] = v[3]
