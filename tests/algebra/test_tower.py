"""Fq6/Fq12 tower kernels (fast backend only) against py_ecc's FQ12 through the basis map.

py_ecc has no Fq6; an Fq6 element a is checked as the Fq12 element a + 0 w (Fq6 = Fq2[v], v = w^2).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc import optimized_bn128 as ob

from zkmb.algebra.kernels import tower as T
from zkmb.algebra.params import BN_X, P

from .fq12_basis import from_poly, to_poly

ONE = (1,) + (0,) * 11
ZERO = (0,) * 12

rnd = random.Random(99)


def rand12():
    return tuple(rnd.randrange(P) for _ in range(12))


def rand6():
    return tuple(rnd.randrange(P) for _ in range(6)) + (0,) * 6


def rand2():
    return (rnd.randrange(P), rnd.randrange(P))


def tup(t):
    return T.fq12_from_ints(t)


def ints(f):
    return T.fq12_to_ints(f)


def again(f):
    """A kernel's boxed result (Python ints) back into np.uint64 tuples for the next kernel call."""
    return tup(ints(f))


def cyclotomic(t):
    """t^((p^6 - 1)(p^2 + 1)): an element of the cyclotomic subgroup."""
    f = to_poly(t)
    g = f ** (P**6 - 1)
    return from_poly(g ** (P * P + 1))


SAMPLES = [rand12() for _ in range(3)] + [ONE, tuple([P - 1] * 12)]

fq12_elements = st.lists(st.integers(0, P - 1), min_size=12, max_size=12).map(tuple)


# --------------------------------------------------------------------------- Fq12


@pytest.mark.parametrize("a", SAMPLES)
def test_fq12_mul_sqr(a):
    b = rand12()
    assert ints(T.fq12_mul(tup(a), tup(b))) == from_poly(to_poly(a) * to_poly(b))
    assert ints(T.fq12_sqr(tup(a))) == from_poly(to_poly(a) * to_poly(a))


@settings(max_examples=20, deadline=None)
@given(a=fq12_elements, b=fq12_elements)
def test_fq12_mul_property(a, b):
    assert ints(T.fq12_mul(tup(a), tup(b))) == from_poly(to_poly(a) * to_poly(b))


@pytest.mark.parametrize("a", SAMPLES)
def test_fq12_inv(a):
    assert ints(T.fq12_inv(tup(a))) == from_poly(to_poly(a).inv())
    assert ints(T.fq12_mul(again(T.fq12_inv(tup(a))), tup(a))) == ONE


def test_fq12_inv_zero_is_zero():
    assert ints(T.fq12_inv(tup(ZERO))) == ZERO


def test_fq12_add_sub_neg():
    a, b = rand12(), rand12()
    assert ints(T.fq12_add(tup(a), tup(b))) == tuple((x + y) % P for x, y in zip(a, b, strict=True))
    assert ints(T.fq12_sub(tup(a), tup(b))) == tuple((x - y) % P for x, y in zip(a, b, strict=True))
    assert ints(T.fq12_neg(tup(a))) == tuple(-x % P for x in a)


@pytest.mark.parametrize("a", SAMPLES[:3])
def test_frobenius(a):
    f = to_poly(a)
    assert ints(T.fq12_frob1(tup(a))) == from_poly(f**P)
    assert ints(T.fq12_frob2(tup(a))) == from_poly(f ** (P**2))
    assert ints(T.fq12_frob3(tup(a))) == from_poly(f ** (P**3))
    assert ints(T.fq12_conj(tup(a))) == from_poly(f ** (P**6))
    # the maps compose: frob1 o frob2 = frob3
    assert ints(T.fq12_frob1(again(T.fq12_frob2(tup(a))))) == ints(T.fq12_frob3(tup(a)))


@pytest.mark.parametrize("a", SAMPLES[:3])
def test_cyclotomic_squaring(a):
    c = cyclotomic(a)
    assert ints(T.fq12_cyc_sqr(tup(c))) == from_poly(to_poly(c) * to_poly(c))
    assert ints(T.fq12_cyc_sqr(tup(ONE))) == ONE


def test_cyclotomic_pow_x():
    c = cyclotomic(rand12())
    assert ints(T.fq12_cyc_pow_x(tup(c))) == from_poly(to_poly(c) ** BN_X)


@pytest.mark.parametrize("a", SAMPLES[:3])
def test_sparse_line_product(a):
    l0, l1, l3 = rand2(), rand2(), rand2()
    line = [0] * 12
    line[0:2], line[6:8], line[8:10] = l0, l1, l3  # w^0, w^1 = (c1, v^0), w^3 = (c1, v^1)
    got = T.fq12_mul_034(tup(a), T.mont_fq2(l0), T.mont_fq2(l1), T.mont_fq2(l3))
    assert ints(got) == from_poly(to_poly(a) * to_poly(tuple(line)))


def test_load_store_roundtrip():
    import numpy as np

    a = tup(rand12())
    arr = np.zeros((12, 4), dtype=np.uint64)
    T.fq12_store(arr, a)
    assert T.fq12_load(arr) == a


# --------------------------------------------------------------------------- Fq6 (embedded as a + 0 w)


def fq6(t):
    return tup(t)[0]


def as12(a6):
    return T.fq12_to_ints((a6, T.FQ6_ZERO))


@pytest.mark.parametrize("seed", range(3))
def test_fq6_ops(seed):
    a, b = rand6(), rand6()
    pa, pb = to_poly(a), to_poly(b)
    assert as12(T.fq6_mul(fq6(a), fq6(b))) == from_poly(pa * pb)
    assert as12(T.fq6_sqr(fq6(a))) == from_poly(pa * pa)
    assert as12(T.fq6_inv(fq6(a))) == from_poly(pa.inv())
    v = to_poly((0, 0, 1, 0) + (0,) * 8)  # v = w^2
    assert as12(T.fq6_mul_v(fq6(a))) == from_poly(pa * v)
    s0, s1 = rand2(), rand2()
    sparse = (*s0, *s1) + (0,) * 8
    assert as12(T.fq6_mul_01(fq6(a), T.mont_fq2(s0), T.mont_fq2(s1))) == from_poly(pa * to_poly(sparse))
    assert as12(T.fq6_mul_fq2(fq6(a), T.mont_fq2(s0))) == from_poly(pa * to_poly((*s0,) + (0,) * 10))


def test_fq6_inv_zero_is_zero():
    assert as12(T.fq6_inv(T.FQ6_ZERO)) == ZERO


def test_frobenius_constants_are_derived():
    # xi^((p-1)/6) is the w-coefficient of w^p
    w = ob.FQ12([0, 1] + [0] * 10)
    assert from_poly(w**P) == ints((T.FQ6_ZERO, (T.FROB1_C[1], T.FQ6_ZERO[1], T.FQ6_ZERO[2])))


def test_basis_map_roundtrip():
    a = rand12()
    assert from_poly(to_poly(a)) == a
    u = to_poly((0, 1) + (0,) * 10)
    assert u * u == ob.FQ12([P - 1] + [0] * 11)  # u^2 = -1
    v = to_poly((0, 0, 1, 0) + (0,) * 8)
    assert v * v * v == to_poly((9, 1) + (0,) * 10)  # v^3 = xi
