"""G1/G2 arithmetic, conversion and validation on both backends, cross-checked against py_ecc."""

from __future__ import annotations

import random

import numpy as np
import py_ecc.optimized_bn128 as bn
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkmb.algebra.params import G1_GEN, G2_GEN, P, R, to_limbs
from zkmb.errors import InvalidInput, InvalidPoint

from .curve_oracle import G1, G2, G2_COFACTOR, random_g1_on_curve

scalar = st.integers(min_value=0, max_value=R - 1)
prop = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=[G1, G2], ids=["g1", "g2"])
def grp(request):
    return request.param


def vec(backend, grp, pts):
    return grp.api(backend, "from_affine")(pts)


def aff(backend, grp, v):
    return grp.api(backend, "to_affine")(v)


def pts(grp, k=4):
    return [p for _, p in grp.points()[:k]]


def test_roundtrip_generator_infinity(backend, grp):
    points = pts(grp) + [None]
    assert aff(backend, grp, vec(backend, grp, points)) == points
    assert aff(backend, grp, vec(backend, grp, [])) == []
    gen = G1_GEN if grp is G1 else G2_GEN
    assert aff(backend, grp, grp.api(backend, "generator")()) == [gen]
    assert aff(backend, grp, grp.api(backend, "infinity")(3)) == [None] * 3


def test_from_affine_rejects(backend, grp):
    good = pts(grp, 1)[0]
    if grp is G1:
        bad = [(P, 2), (-1, 2), (0, 0), (1, 2, 3), (1.0, 2), "xy", (True, 2)]
    else:
        x, y = good
        bad = [((P, 0), y), (x, (0, -1)), ((0, 0), (0, 0)), (x, 5), (x,), ((1, 2, 3), y)]
    for b in bad:
        with pytest.raises(InvalidPoint, match="point 1"):
            vec(backend, grp, [good, b])


def test_valid_points(backend, grp):
    v = vec(backend, grp, pts(grp) + [None])
    assert list(grp.api(backend, "is_on_curve")(v)) == [True] * 5
    assert list(grp.api(backend, "in_subgroup")(v)) == [True] * 5
    grp.api(backend, "validate")(v)


def test_off_curve(backend, grp):
    p0, p1 = pts(grp, 2)
    off = grp.off_curve(p1)
    assert not grp.on_curve(off)
    v = vec(backend, grp, [p0, off, None])  # converting does not validate
    assert list(grp.api(backend, "is_on_curve")(v)) == [True, False, True]
    assert list(grp.api(backend, "in_subgroup")(v)) == [True, False, True]
    with pytest.raises(InvalidPoint, match="point 1: not on the curve"):
        grp.api(backend, "validate")(v)


def test_non_canonical_coordinate(backend, grp):
    p0, p1 = pts(grp, 2)
    if backend.__name__.endswith("fast"):
        v = vec(backend, grp, [p0, p1])
        v[1, 0].reshape(-1, 4)[0] = to_limbs(P)  # x (or x.c0) stored as p: not a reduced residue
    else:
        x = P if grp is G1 else (P, p1[0][1])
        v = [p0, (x, p1[1])]
    assert list(grp.api(backend, "is_on_curve")(v)) == [True, False]
    with pytest.raises(InvalidPoint, match="point 1: coordinate not canonical"):
        grp.api(backend, "validate")(v)


def test_g2_subgroup_check_matches_order_r(backend):
    """The fast psi-based check against the slow [r] Q == O, including twist points outside G2."""
    outside = list(G2.twist_points_outside_g2())
    inside = pts(G2, 3)
    cleared = [G2.un(bn.multiply(G2.pe(outside[0]), G2_COFACTOR))]  # cofactor clearing lands in G2
    # the cofactor 2p - r = 10069 * (241-bit cofactor): a point of order 10069 and one of order h / 10069
    small = G2.un(bn.multiply(G2.pe(outside[2]), G2_COFACTOR // 10069 * R))
    large = G2.un(bn.multiply(G2.pe(outside[2]), 10069 * R))
    mixed = [G2.add(outside[1], inside[0]), small, G2.add(small, inside[1]), large]
    assert G2.un(bn.multiply(G2.pe(small), 10069)) is None and small is not None and large is not None
    cases = outside + inside + cleared + mixed + [None]
    expected = [G2.order_divides_r(q) for q in cases]
    assert expected == [False] * 3 + [True] * 4 + [False] * 4 + [True]
    v = vec(backend, G2, cases)
    assert list(backend.g2_is_on_curve(v)) == [True] * len(cases)
    assert list(backend.g2_in_subgroup(v)) == expected
    with pytest.raises(InvalidPoint, match="point 0: not in the order-r subgroup"):
        backend.g2_validate(v)
    backend.g2_validate(vec(backend, G2, inside + cleared))


def test_g1_cofactor_one(backend):
    rng = random.Random(5)
    points = [random_g1_on_curve(rng) for _ in range(3)]
    assert all(G1.order_divides_r(p) for p in points)
    v = vec(backend, G1, points)
    assert list(backend.g1_in_subgroup(v)) == [True] * 3
    backend.g1_validate(v)


def test_add_cases(backend, grp):
    p, q, s = pts(grp, 3)
    left = [p, p, p, p, None, None, q, s]
    right = [q, p, grp.neg(p), None, p, None, s, q]
    got = aff(backend, grp, grp.api(backend, "add")(vec(backend, grp, left), vec(backend, grp, right)))
    assert got == [grp.add(a, b) for a, b in zip(left, right, strict=True)]
    assert got[2] is None and got[5] is None


def test_add_length_mismatch(backend, grp):
    with pytest.raises(InvalidInput):
        grp.api(backend, "add")(vec(backend, grp, pts(grp, 2)), vec(backend, grp, pts(grp, 1)))


def test_neg_double(backend, grp):
    points = pts(grp) + [None]
    v = vec(backend, grp, points)
    assert aff(backend, grp, grp.api(backend, "neg")(v)) == [grp.neg(p) for p in points]
    dbl = aff(backend, grp, grp.api(backend, "double")(v))
    assert dbl == [grp.add(p, p) for p in points]
    assert dbl == aff(backend, grp, grp.api(backend, "add")(v, v))


def test_mul(backend, grp):
    p = pts(grp, 1)[0]
    ks = [0, 1, 2, 3, R - 1, R, R + 1, 2**256 + 5, random.Random(1).randrange(R)]
    points = [p] * len(ks) + [None]
    ks.append(12345)
    got = aff(backend, grp, grp.api(backend, "mul")(vec(backend, grp, points), ks))
    assert got == [grp.mul(q, k) for q, k in zip(points, ks, strict=True)]
    assert got[0] is None and got[4] == grp.neg(p) and got[5] is None and got[-1] is None


def test_mul_rejects(backend, grp):
    v = vec(backend, grp, pts(grp, 2))
    with pytest.raises(InvalidInput):
        grp.api(backend, "mul")(v, [1, -1])
    with pytest.raises(InvalidInput):
        grp.api(backend, "mul")(v, [1])


def test_mul_generator(backend, grp):
    ks = [0, 1, 2, R - 1, R + 3] + [a for a, _ in grp.points()]
    got = aff(backend, grp, grp.api(backend, "mul_generator")(ks))
    assert got == [grp.gen_mul(k) for k in ks]


def test_sum(backend, grp):
    p, q, s = pts(grp, 3)
    g_sum = grp.api(backend, "sum")
    cases = [[], [None], [p], [p, p], [p, grp.neg(p)], [p, q, None, s, grp.neg(q)], [p, q, s, p, q, s, p]]
    for c in cases:
        expected = None
        for x in c:
            expected = grp.add(expected, x)
        assert aff(backend, grp, g_sum(vec(backend, grp, c))) == [expected]


def test_fast_rejects_wrong_arrays():
    from zkmb.algebra import fast

    with pytest.raises(InvalidInput):
        fast.g1_add(np.zeros((2, 3, 4), np.uint64), np.zeros((2, 3, 4), np.uint64))
    with pytest.raises(InvalidInput):
        fast.g2_neg(np.zeros((2, 2, 4), np.uint64))  # a G1 vector is not a G2 vector
    with pytest.raises(InvalidInput):
        fast.g1_validate(np.zeros((2, 2, 4), np.int64))


@prop
@given(a=scalar, b=scalar, c=scalar)
def test_group_laws(backend, grp, a, b, c):
    v = grp.api(backend, "mul_generator")([a, b, c])
    add, neg = grp.api(backend, "add"), grp.api(backend, "neg")

    def at(x, i):
        return x[i : i + 1]

    P_, Q_, S_ = at(v, 0), at(v, 1), at(v, 2)
    pq = add(P_, Q_)
    assert aff(backend, grp, pq) == aff(backend, grp, add(Q_, P_)) == [grp.gen_mul(a + b)]
    assert aff(backend, grp, add(pq, S_)) == aff(backend, grp, add(P_, add(Q_, S_)))
    assert aff(backend, grp, add(P_, neg(P_))) == [None]
    assert aff(backend, grp, grp.api(backend, "mul")(P_, [b])) == [grp.gen_mul(a * b)]


def test_same_public_api():
    from zkmb.algebra.fast import curves as fc
    from zkmb.algebra.fast import msm as fm
    from zkmb.algebra.ref import curves as rc
    from zkmb.algebra.ref import msm as rm

    fast_api = set(fc.__all__) | set(fm.__all__)
    ref_api = set(rc.__all__) | set(rm.__all__)
    assert fast_api - ref_api == {"bench_inputs_g1", "bench_inputs_g2"}  # benchmark helpers, fast only
    assert ref_api <= fast_api


G2_COFACTOR_PRIMES = (10069, 5864401, 1875725156269, 197620364512881247228717050342013327560683201906968909)


def _probable_prime(n: int) -> bool:
    """Miller-Rabin with 20 fixed bases (a composite passes with probability < 4^-20)."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def test_g2_subgroup_check_is_exact():
    """Why the El Housni-Guillevic-Piellard test in the kernels (f(Q) = [x+1]Q + psi([x]Q) + psi^2([x]Q)
    - psi^3([2x]Q) = O) decides G2 membership exactly: #E'(Fq2) = r h with h = 2p - r square-free (four
    distinct primes, none r), so E'(Fq2) is cyclic; f vanishes on G2 (psi = [6x^2] there), and on the
    order-h part H it is multiplication by one integer g.  A generator of H mapped to a point of order h
    means g is a unit mod h: f(Q) = O only for Q in G2.  (py_ecc arithmetic, independent of the kernels.)"""
    from zkmb.algebra.kernels.curve import PSI_X, PSI_Y
    from zkmb.algebra.params import BN_X

    from .curve_oracle import G2_COFACTOR as H

    prod = 1
    for ell in G2_COFACTOR_PRIMES:
        assert _probable_prime(ell) and ell != R
        prod *= ell
    assert prod == H
    # psi constants as py_ecc Fq2 elements (the kernels hold them in Montgomery form)
    rinv = pow(1 << 256, -1, P)

    def from_mont(c):
        return bn.FQ2([sum(int(v) << (64 * i) for i, v in enumerate(limbs)) * rinv % P for limbs in c])

    cx, cy = from_mont(PSI_X), from_mont(PSI_Y)

    def psi(q):
        if bn.is_inf(q):
            return q
        x, y = bn.normalize(q)
        conj = lambda a: bn.FQ2([a.coeffs[0], -a.coeffs[1]])  # noqa: E731
        return (conj(x) * cx, conj(y) * cy, bn.FQ2.one())

    def f(q):
        xq = bn.multiply(q, BN_X)
        lhs = bn.add(bn.add(bn.add(xq, q), psi(xq)), psi(psi(xq)))
        return bn.add(bn.multiply(psi(psi(psi(xq))), 2), bn.neg(lhs))

    def order_is(q, n: int, primes) -> bool:
        return bn.is_inf(bn.multiply(q, n)) and all(not bn.is_inf(bn.multiply(q, n // ell)) for ell in primes)

    assert bn.is_inf(f(bn.G2)) and bn.is_inf(f(bn.multiply(bn.G2, 12345)))
    gen = next(
        g
        for g in (bn.multiply(G2.pe(p), R) for p in G2.twist_points_outside_g2(count=8, seed=3))
        if order_is(g, H, G2_COFACTOR_PRIMES)
    )
    assert order_is(f(gen), H, G2_COFACTOR_PRIMES)
