"""Test helper: the basis map between tower-order Fq12 tuples and py_ecc's polynomial FQ12.

py_ecc's FQ12 is Fq[w]/(w^12 - 18 w^6 + 82); with w^2 = v and w^6 = xi = 9 + u (so u = w^6 - 9), the
tower coefficient x + y u at w^k (k = 2j + i, tower index 6i + 2j) becomes (x - 9y) w^k + y w^(k+6).
"""

from __future__ import annotations

from py_ecc import optimized_bn128 as ob

from zkmb.algebra.params import P


def to_poly(t):
    """Tower-order canonical 12-tuple -> py_ecc FQ12."""
    a = [0] * 12
    for i in range(2):
        for j in range(3):
            x, y = t[6 * i + 2 * j], t[6 * i + 2 * j + 1]
            a[2 * j + i] = (x - 9 * y) % P
            a[2 * j + i + 6] = y
    return ob.FQ12(a)


def from_poly(f):
    """py_ecc FQ12 -> tower-order canonical 12-tuple."""
    a = [int(c) % P for c in f.coeffs]
    t = [0] * 12
    for k in range(6):
        t[6 * (k % 2) + 2 * (k // 2)] = (a[k] + 9 * a[k + 6]) % P
        t[6 * (k % 2) + 2 * (k // 2) + 1] = a[k + 6]
    return tuple(t)
