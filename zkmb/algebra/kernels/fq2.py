"""Fq2 = Fq[u]/(u^2 + 1) on numba tuples: an element is ``(c0, c1)`` of Montgomery Fq tuples.

Arrays of Fq2 elements have shape ``(n, 2, 4)``.
"""

from __future__ import annotations

from numba import njit

from .mont import FQ_ONE, ZERO4, fq_add, fq_dbl, fq_inv, fq_mul, fq_neg, fq_sqr, fq_sub, is_zero

_jit = dict(cache=True, nogil=True)

FQ2_ZERO = (ZERO4, ZERO4)
FQ2_ONE = (FQ_ONE, ZERO4)


@njit(inline="always", **_jit)
def fq2_add(a, b):
    return (fq_add(a[0], b[0]), fq_add(a[1], b[1]))


@njit(inline="always", **_jit)
def fq2_sub(a, b):
    return (fq_sub(a[0], b[0]), fq_sub(a[1], b[1]))


@njit(inline="always", **_jit)
def fq2_dbl(a):
    return (fq_dbl(a[0]), fq_dbl(a[1]))


@njit(inline="always", **_jit)
def fq2_neg(a):
    return (fq_neg(a[0]), fq_neg(a[1]))


@njit(inline="always", **_jit)
def fq2_conj(a):
    """The Frobenius map on Fq2 (complex conjugation)."""
    return (a[0], fq_neg(a[1]))


@njit(**_jit)
def fq2_mul(a, b):
    """Karatsuba: 3 Fq products."""
    v0 = fq_mul(a[0], b[0])
    v1 = fq_mul(a[1], b[1])
    s = fq_mul(fq_add(a[0], a[1]), fq_add(b[0], b[1]))
    return (fq_sub(v0, v1), fq_sub(fq_sub(s, v0), v1))


@njit(**_jit)
def fq2_sqr(a):
    """Complex squaring: 2 Fq products."""
    t = fq_mul(a[0], a[1])
    return (fq_mul(fq_add(a[0], a[1]), fq_sub(a[0], a[1])), fq_dbl(t))


@njit(inline="always", **_jit)
def fq2_mul_fq(a, s):
    return (fq_mul(a[0], s), fq_mul(a[1], s))


@njit(**_jit)
def fq2_mul_xi(a):
    """a * (9 + u) = (9 a0 - a1) + (a0 + 9 a1) u."""
    e0 = fq_dbl(fq_dbl(fq_dbl(a[0])))
    e1 = fq_dbl(fq_dbl(fq_dbl(a[1])))
    return (fq_sub(fq_add(e0, a[0]), a[1]), fq_add(fq_add(e1, a[1]), a[0]))


@njit(**_jit)
def fq2_inv(a):
    """a^-1 = conj(a) / (a0^2 + a1^2); 0 maps to 0."""
    t = fq_inv(fq_add(fq_sqr(a[0]), fq_sqr(a[1])))
    return (fq_mul(a[0], t), fq_neg(fq_mul(a[1], t)))


@njit(inline="always", **_jit)
def fq2_is_zero(a):
    return is_zero(a[0]) and is_zero(a[1])


@njit(inline="always", **_jit)
def fq2_eq(a, b):
    return fq2_is_zero(fq2_sub(a, b))


@njit(inline="always", **_jit)
def fq2_load(arr, i):
    return (
        (arr[i, 0, 0], arr[i, 0, 1], arr[i, 0, 2], arr[i, 0, 3]),
        (arr[i, 1, 0], arr[i, 1, 1], arr[i, 1, 2], arr[i, 1, 3]),
    )


@njit(inline="always", **_jit)
def fq2_store(arr, i, v):
    for k in range(2):
        for j in range(4):
            arr[i, k, j] = v[k][j]
