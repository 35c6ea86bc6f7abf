"""Optimal ate pairing: both backends against py_ecc, bilinearity, multi-pairing, Groth16-shaped checks."""

from __future__ import annotations

import random
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py_ecc import optimized_bn128 as ob

from zkmb.algebra import fast, ref
from zkmb.algebra.fast.pairing import _g1_from_affine, _g2_from_affine
from zkmb.algebra.params import G1_GEN, G2_GEN, P, R
from zkmb.errors import InvalidInput, InvalidPoint

from .fq12_basis import from_poly, to_poly

ONE = (1,) + (0,) * 11


# --------------------------------------------------------------------------- helpers


def g1_mul(k: int):
    pt = ob.normalize(ob.multiply(ob.G1, k % R)) if k % R else None
    return None if pt is None else (int(pt[0]), int(pt[1]))


def g2_mul(k: int):
    if k % R == 0:
        return None
    x, y = ob.normalize(ob.multiply(ob.G2, k % R))
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


def g1_neg(pt):
    return None if pt is None else (pt[0], -pt[1] % P)


def g2_neg(pt):
    return None if pt is None else (pt[0], (-pt[1][0] % P, -pt[1][1] % P))


def is_fast(backend) -> bool:
    return backend.__name__.endswith("fast")


def g1s(backend, pts):
    return _g1_from_affine(pts) if is_fast(backend) else list(pts)


def g2s(backend, pts):
    return _g2_from_affine(pts) if is_fast(backend) else list(pts)


def e(backend, p, q):
    """Canonical e(p, q) through the backend's single-pair API (fast: (1, 2, 4) arrays; ref: points)."""
    if is_fast(backend):
        return fast.fq12_to_canonical(fast.pairing(_g1_from_affine([p]), _g2_from_affine([q])))
    return ref.pairing(p, q)


def multi(backend, ps, qs):
    return backend.fq12_to_canonical(backend.multi_pairing(g1s(backend, ps), g2s(backend, qs)))


def check(backend, ps, qs) -> bool:
    return backend.pairing_check(g1s(backend, ps), g2s(backend, qs))


@cache
def py_ecc_pairing(p, q):
    """py_ecc's e(p, q) in tower order (note py_ecc's order pairing(Q, P))."""
    p3 = (ob.FQ(p[0]), ob.FQ(p[1]), ob.FQ.one())
    q3 = (ob.FQ2(list(q[0])), ob.FQ2(list(q[1])), ob.FQ2.one())
    return from_poly(ob.pairing(q3, p3))


def fq12_pow(t, k: int):
    return from_poly(to_poly(t) ** (k % R))


def fq12_mul(a, b):
    return from_poly(to_poly(a) * to_poly(b))


_rng = random.Random(20240611)
RAND_SCALARS = [_rng.randrange(1, R) for _ in range(2)]


# --------------------------------------------------------------------------- agreement with py_ecc


def test_generators_match_py_ecc(backend):
    assert e(backend, G1_GEN, G2_GEN) == py_ecc_pairing(G1_GEN, G2_GEN)


@pytest.mark.parametrize("k", RAND_SCALARS, ids=["k0", "k1"])
def test_random_points_match_py_ecc(backend, k):
    p, q = g1_mul(k), g2_mul(k * 7 + 3)
    assert e(backend, p, q) == py_ecc_pairing(p, q)


@pytest.mark.parametrize("a, b", [(1, R - 1), (R - 1, 1), (R - 1, R - 1), (2, 1)])
def test_edge_scalars(backend, a, b):
    # e(-P, Q) = e(P, -Q) = e(P, Q)^-1; e(-P, -Q) = e(P, Q); e(2P, Q) = e(P, Q)^2
    base = py_ecc_pairing(G1_GEN, G2_GEN)
    assert e(backend, g1_mul(a), g2_mul(b)) == fq12_pow(base, a * b)


def test_non_degenerate(backend):
    val = e(backend, G1_GEN, G2_GEN)
    assert val != ONE
    assert fq12_pow(val, R) == ONE  # lands in the order-r subgroup of Fq12*


def test_infinity_gives_one(backend):
    assert e(backend, None, G2_GEN) == ONE
    assert e(backend, G1_GEN, None) == ONE
    assert e(backend, None, None) == ONE
    assert multi(backend, [], []) == ONE
    assert backend.fq12_to_canonical(backend.miller_loop(g1s(backend, [None]), g2s(backend, [G2_GEN]))) == ONE
    assert check(backend, [None, G1_GEN], [G2_GEN, None])


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(1, R - 1), b=st.integers(1, R - 1))
def test_bilinearity(backend, a, b):
    base = py_ecc_pairing(G1_GEN, G2_GEN)
    assert e(backend, g1_mul(a), g2_mul(b)) == fq12_pow(base, a * b)


# --------------------------------------------------------------------------- multi-pairing and checks


def test_multi_pairing_is_product(backend):
    k1, k2 = RAND_SCALARS
    ps = [g1_mul(k1), G1_GEN, None]
    qs = [G2_GEN, g2_mul(k2), G2_GEN]
    expected = fq12_mul(py_ecc_pairing(ps[0], qs[0]), py_ecc_pairing(ps[1], qs[1]))
    assert multi(backend, ps, qs) == expected


def test_miller_then_final_exponentiation(backend):
    p, q = g1_mul(5), g2_mul(11)
    f = backend.miller_loop(g1s(backend, [p]), g2s(backend, [q]))
    assert backend.fq12_to_canonical(backend.final_exponentiation(f)) == py_ecc_pairing(p, q)


def test_pairing_check_inverse_pair(backend):
    p, q = g1_mul(RAND_SCALARS[0]), g2_mul(3)
    assert check(backend, [p, g1_neg(p)], [q, q])
    assert check(backend, [p, p], [q, g2_neg(q)])
    assert not check(backend, [p, p], [q, q])
    assert check(backend, [], [])


def _groth16_instance():
    rng = random.Random(7)
    a, b, al, be, ga, de, el = (rng.randrange(1, R) for _ in range(7))
    c = (a * b - al * be - el * ga) * pow(de, -1, R) % R  # a b = al be + el ga + c de
    ps = [g1_neg(g1_mul(a)), g1_mul(al), g1_mul(el), g1_mul(c)]
    qs = [g2_mul(b), g2_mul(be), g2_mul(ga), g2_mul(de)]
    return ps, qs


GROTH16 = _groth16_instance()


def test_groth16_shaped_check(backend):
    ps, qs = GROTH16
    assert check(backend, ps, qs)  # e(A, B) = e(alpha, beta) e(L, gamma) e(C, delta)


@pytest.mark.parametrize("which", ["C", "B"])
def test_groth16_shaped_check_rejects_tampering(backend, which):
    ps, qs = list(GROTH16[0]), list(GROTH16[1])
    if which == "C":
        ps[3] = g1_mul(1) if ps[3] != g1_mul(1) else g1_mul(2)
    else:
        qs[0] = g2_neg(qs[0])
    assert not check(backend, ps, qs)


# --------------------------------------------------------------------------- fast vs ref


CROSS_CASES = {
    "generators": ([G1_GEN], [G2_GEN]),
    "random": ([g1_mul(RAND_SCALARS[0])], [g2_mul(RAND_SCALARS[1])]),
    "with-infinity": ([G1_GEN, None, g1_mul(9)], [g2_mul(4), G2_GEN, None]),
    "duplicates": ([g1_mul(6)] * 2, [g2_mul(10)] * 2),
}


@pytest.mark.parametrize("case", list(CROSS_CASES))
def test_fast_matches_ref(case):
    ps, qs = CROSS_CASES[case]
    assert multi(fast, ps, qs) == multi(ref, ps, qs)


def test_final_exponentiation_of_arbitrary_element():
    # exactness of the whole exponent (p^12 - 1)/r, also off the image of the Miller loop
    rng = random.Random(3)
    t = tuple(rng.randrange(P) for _ in range(12))
    want = from_poly(to_poly(t) ** ((P**12 - 1) // R))
    assert fast.fq12_to_canonical(fast.final_exponentiation(fast.fq12_from_canonical(t))) == want
    assert ref.final_exponentiation(t) == want


# --------------------------------------------------------------------------- representation and validation


def test_fq12_conversions(backend):
    rng = random.Random(11)
    t = tuple(rng.randrange(P) for _ in range(12))
    assert backend.fq12_to_canonical(backend.fq12_from_canonical(t)) == t
    assert backend.fq12_to_canonical(backend.fq12_one()) == ONE
    u = tuple(rng.randrange(P) for _ in range(12))
    prod = backend.fq12_mul(backend.fq12_from_canonical(t), backend.fq12_from_canonical(u))
    assert backend.fq12_to_canonical(prod) == fq12_mul(t, u)
    assert backend.fq12_eq(backend.fq12_from_canonical(t), backend.fq12_from_canonical(t))
    assert not backend.fq12_eq(backend.fq12_from_canonical(t), backend.fq12_one())
    with pytest.raises(InvalidInput):
        backend.fq12_from_canonical((P,) + (0,) * 11)
    with pytest.raises(InvalidInput):
        backend.fq12_from_canonical((0,) * 11)


@pytest.mark.parametrize(
    "ps, qs",
    [
        ([(1, 3)], [G2_GEN]),  # G1 off the curve
        ([G1_GEN], [(G2_GEN[0], (G2_GEN[1][0], (G2_GEN[1][1] + 1) % P))]),  # G2 off the twist
        ([G1_GEN, G1_GEN], [G2_GEN, ((1, 0), (1, 0))]),  # second G2 point bad
    ],
)
def test_rejects_points_off_curve(backend, ps, qs):
    with pytest.raises(InvalidPoint):
        backend.multi_pairing(g1s(backend, ps), g2s(backend, qs))
    with pytest.raises(InvalidPoint):
        backend.pairing_check(g1s(backend, ps), g2s(backend, qs))
    with pytest.raises(InvalidPoint):
        backend.miller_loop(g1s(backend, ps), g2s(backend, qs))


def test_rejects_length_mismatch(backend):
    with pytest.raises(InvalidInput):
        backend.multi_pairing(g1s(backend, [G1_GEN, G1_GEN]), g2s(backend, [G2_GEN]))


def test_fast_rejects_bad_arrays():
    p = _g1_from_affine([G1_GEN])
    q = _g2_from_affine([G2_GEN])
    with pytest.raises(InvalidInput):
        fast.pairing(p.astype(np.int64), q)
    with pytest.raises(InvalidInput):
        fast.pairing(p.reshape(2, 2, 2), q)
    with pytest.raises(InvalidInput):
        fast.pairing(np.concatenate([p, p]), np.concatenate([q, q]))
    # unreduced limbs (the modulus itself) are rejected, not silently reduced
    bad = p.copy()
    bad[0, 0] = np.frombuffer(P.to_bytes(32, "little"), dtype="<u8").astype(np.uint64)
    with pytest.raises(InvalidPoint):
        fast.pairing(bad, q)
    # read-only and strided inputs are accepted (copied to the one compiled array type)
    ps = np.concatenate([p, p])
    ps.setflags(write=False)
    qs = np.concatenate([q, _g2_from_affine([g2_neg(G2_GEN)])])
    qs_strided = np.concatenate([qs, np.zeros_like(qs)], axis=-1)[..., :4]
    assert not qs_strided.flags.c_contiguous
    assert fast.pairing_check(ps, qs_strided)
    # single-point shapes are accepted
    assert fast.fq12_to_canonical(fast.pairing(p[0], q[0])) == py_ecc_pairing(G1_GEN, G2_GEN)
