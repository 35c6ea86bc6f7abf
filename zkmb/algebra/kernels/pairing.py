"""Optimal ate pairing on BN254 (numba): multi-Miller loop and exact final exponentiation.

Inputs are affine arrays in Montgomery form: G1 ``(n, 2, 4)``, G2 ``(n, 2, 2, 4)``; an all-zero
row is the point at infinity and contributes 1.  The result is written to a ``(12, 4)`` Fq12 array
(tower order, see :mod:`.tower`).

The Miller loop runs over the NAF of 6x+2 with the G2 points in homogeneous projective coordinates
on the twist E': y^2 = x^3 + b' (b' = 3/xi, D-type).  With the untwisting map
(x', y') -> (x' w^2, y' w^3), the line through twist points evaluated at the affine G1 point P
is ``l0 + l1 w + l3 w^3`` with l0 a multiple of y_P, l1 a multiple of x_P, both up to an Fq2
factor that the final exponentiation removes (as it removes the vertical lines).  The two
correction lines use Q1 = pi(Q) and -Q2 = -pi^2(Q).

The final exponentiation computes exactly f^((p^12 - 1)/r): the easy part (p^6 - 1)(p^2 + 1)
and the hard part (p^4 - p^2 + 1)/r = l0 + l1 p + l2 p^2 + p^3 with l2 = 6x^2 + 1,
l1 = -36x^3 - 18x^2 - 12x + 1, l0 = -36x^3 - 30x^2 - 18x - 2 (Scott et al., 2009), evaluated
with three exponentiations by x; the decomposition is checked at import.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..params import ATE_LOOP_COUNT, B_G1, B_G2, BN_X, XI, P, R
from .fq2 import FQ2_ONE, fq2_is_zero, fq2_load, fq2_store
from .mont import FQ_MOD, ZERO4, eq, is_zero
from .tower import (
    _G1_INT,
    _G2_INT,
    FQ12_ONE,
    _naf,
    fq2add,
    fq2conj,
    fq2dbl,
    fq2mul,
    fq2mulfq,
    fq2sqr,
    fq2sub,
    fq12_conj,
    fq12_cyc_pow_x,
    fq12_cyc_sqr,
    fq12_frob1,
    fq12_frob2,
    fq12_frob3,
    fq12_inv,
    fq12_load,
    fq12_mul,
    fq12_mul_034,
    fq12_sqr,
    fq12_store,
    fqadd,
    fqmul,
    fqsub,
    mont_fq,
    mont_fq2,
)

U64 = np.uint64
_jit = dict(cache=True, nogil=True)

# --------------------------------------------------------------------------- constants

_x = BN_X
_L2 = 6 * _x**2 + 1
_L1 = -36 * _x**3 - 18 * _x**2 - 12 * _x + 1
_L0 = -36 * _x**3 - 30 * _x**2 - 18 * _x - 2
if (P**4 - P**2 + 1) % R or _L0 + _L1 * P + _L2 * P**2 + P**3 != (P**4 - P**2 + 1) // R:  # pragma: no cover
    raise RuntimeError("hard-part decomposition does not match (p^4 - p^2 + 1)/r")

# NAF digits of 6x+2, most significant first, without the leading 1.
ATE_NAF = np.array(_naf(ATE_LOOP_COUNT)[::-1][1:], dtype=np.int8)

B1_M = mont_fq(B_G1)
B2_M = mont_fq2(B_G2)
THREE_B2_M = mont_fq2(tuple(3 * c % P for c in B_G2))
# pi(x', y') = (conj(x') xi^((p-1)/3), conj(y') xi^((p-1)/2)) on the twist;
# -pi^2(x', y') = (x' xi^((p^2-1)/3), y')  (xi^((p^2-1)/2) = -1).
PI1_X = mont_fq2(_G1_INT[2])
PI1_Y = mont_fq2(_G1_INT[3])
PI2_X = mont_fq(_G2_INT[2][0])
if XI != (9, 1):  # pragma: no cover
    raise RuntimeError("tower constants assume xi = 9 + u")

# --------------------------------------------------------------------------- G2 steps


@njit(**_jit)
def _dbl_step(t, yp, nxp):
    """T -> 2T (homogeneous (X, Y, Z) on E') and the tangent line at T evaluated at P.

    X3 = 2XY (Y^2 - 9b'Z^2), Y3 = (Y^2 + 9b'Z^2)^2 - 108 b'^2 Z^4, Z3 = 8 Y^3 Z;
    line (times 2YZ): 2YZ y_P - 3X^2 x_P w + (Y^2 - 3b'Z^2) w^3.
    """
    x, y, z = t
    yy = fq2sqr(y)
    zz = fq2sqr(z)
    e = fq2mul(zz, THREE_B2_M)  # 3b'Z^2
    e3 = fq2add(fq2dbl(e), e)  # 9b'Z^2
    yz2 = fq2sub(fq2sub(fq2sqr(fq2add(y, z)), yy), zz)  # 2YZ
    xx = fq2sqr(x)
    xx3 = fq2add(fq2dbl(xx), xx)
    x3 = fq2dbl(fq2mul(fq2mul(x, y), fq2sub(yy, e3)))
    ee = fq2sqr(e)
    ee12 = fq2dbl(fq2dbl(fq2add(fq2dbl(ee), ee)))
    y3 = fq2sub(fq2sqr(fq2add(yy, e3)), ee12)
    z3 = fq2dbl(fq2dbl(fq2mul(yy, yz2)))
    l0 = fq2mulfq(yz2, yp)
    l1 = fq2mulfq(xx3, nxp)
    l3 = fq2sub(yy, e)
    return (x3, y3, z3), l0, l1, l3


@njit(**_jit)
def _add_step(t, qx, qy, yp, nxp):
    """T -> T + Q (Q affine on E') and the line through T and Q evaluated at P.

    With theta = Y - y_Q Z and lam = X - x_Q Z: the line (times lam) is
    lam y_P - theta x_P w + (theta x_Q - lam y_Q) w^3.
    """
    x, y, z = t
    theta = fq2sub(y, fq2mul(qy, z))
    lam = fq2sub(x, fq2mul(qx, z))
    c = fq2sqr(theta)
    d = fq2sqr(lam)
    e = fq2mul(lam, d)
    f = fq2mul(z, c)
    g = fq2mul(x, d)
    h = fq2sub(fq2add(e, f), fq2dbl(g))
    x3 = fq2mul(lam, h)
    y3 = fq2sub(fq2mul(theta, fq2sub(g, h)), fq2mul(y, e))
    z3 = fq2mul(z, e)
    l0 = fq2mulfq(lam, yp)
    l1 = fq2mulfq(theta, nxp)
    l3 = fq2sub(fq2mul(theta, qx), fq2mul(lam, qy))
    return (x3, y3, z3), l0, l1, l3


@njit(inline="always", **_jit)
def _ld4(arr, i, j):
    return (arr[i, j, 0], arr[i, j, 1], arr[i, j, 2], arr[i, j, 3])


@njit(inline="always", **_jit)
def _ld_t(arr, i):
    return (fq2_load(arr[i], 0), fq2_load(arr[i], 1), fq2_load(arr[i], 2))


@njit(inline="always", **_jit)
def _st_t(arr, i, t):
    fq2_store(arr[i], 0, t[0])
    fq2_store(arr[i], 1, t[1])
    fq2_store(arr[i], 2, t[2])


# --------------------------------------------------------------------------- validation


@njit(**_jit)
def _below_p(a):
    for i in range(3, -1, -1):
        if a[i] != FQ_MOD[i]:
            return a[i] < FQ_MOD[i]
    return False


@njit(**_jit)
def check_points(ps, qs):
    """0 if every point is infinity (all zero) or an affine point on its curve with reduced
    coordinates; otherwise 1 + index of the first bad G1 point, or -(1 + index) of a bad G2 point.

    Curve membership only: subgroup membership of G2 points is not checked here.
    """
    for i in range(ps.shape[0]):
        x = _ld4(ps, i, 0)
        y = _ld4(ps, i, 1)
        if is_zero(x) and is_zero(y):
            continue
        if not (_below_p(x) and _below_p(y)):
            return 1 + i
        rhs = fqadd(fqmul(fqmul(x, x), x), B1_M)
        lhs = fqmul(y, y)
        if not eq(lhs, rhs):
            return 1 + i
    for i in range(qs.shape[0]):
        x = (_ld4(qs[i], 0, 0), _ld4(qs[i], 0, 1))
        y = (_ld4(qs[i], 1, 0), _ld4(qs[i], 1, 1))
        if fq2_is_zero(x) and fq2_is_zero(y):
            continue
        if not (_below_p(x[0]) and _below_p(x[1]) and _below_p(y[0]) and _below_p(y[1])):
            return -1 - i
        rhs = fq2add(fq2mul(fq2sqr(x), x), B2_M)
        if not fq2_is_zero(fq2sub(fq2sqr(y), rhs)):
            return -1 - i
    return 0


# --------------------------------------------------------------------------- Miller loop


@njit(**_jit)
def miller_loop(ps, qs):
    """prod_i f_{6x+2, Q_i}(P_i) * l_{T, pi(Q_i)}(P_i) * l_{T', -pi^2(Q_i)}(P_i), up to factors in
    proper subfields (which the final exponentiation maps to 1).  Pairs with an infinite point
    are skipped.  One squaring of f per step is shared by all pairs.
    """
    n = ps.shape[0]
    m = 0
    for i in range(n):
        p_inf = is_zero(_ld4(ps, i, 0)) and is_zero(_ld4(ps, i, 1))
        q_inf = fq2_is_zero(fq2_load(qs[i], 0)) and fq2_is_zero(fq2_load(qs[i], 1))
        if not (p_inf or q_inf):
            m += 1
    f = FQ12_ONE
    if m == 0:
        return f
    # per pair: P as (y_P, -x_P), Q as (x_Q, y_Q, -y_Q), T homogeneous
    pp = np.empty((m, 2, 4), dtype=np.uint64)
    qq = np.empty((m, 3, 2, 4), dtype=np.uint64)
    tt = np.empty((m, 3, 2, 4), dtype=np.uint64)
    k = 0
    for i in range(n):
        p_inf = is_zero(_ld4(ps, i, 0)) and is_zero(_ld4(ps, i, 1))
        q_inf = fq2_is_zero(fq2_load(qs[i], 0)) and fq2_is_zero(fq2_load(qs[i], 1))
        if p_inf or q_inf:
            continue
        yp = _ld4(ps, i, 1)
        nxp = fqsub(ZERO4, _ld4(ps, i, 0))
        for j in range(4):
            pp[k, 0, j] = yp[j]
            pp[k, 1, j] = nxp[j]
        qx = fq2_load(qs[i], 0)
        qy = fq2_load(qs[i], 1)
        nqy = (fqsub(ZERO4, qy[0]), fqsub(ZERO4, qy[1]))
        fq2_store(qq[k], 0, qx)
        fq2_store(qq[k], 1, qy)
        fq2_store(qq[k], 2, nqy)
        _st_t(tt, k, (qx, qy, FQ2_ONE))
        k += 1

    first = True
    for s in range(ATE_NAF.shape[0]):
        if not first:
            f = fq12_sqr(f)
        first = False
        d = ATE_NAF[s]
        for i in range(m):
            yp = _ld4(pp, i, 0)
            nxp = _ld4(pp, i, 1)
            t, l0, l1, l3 = _dbl_step(_ld_t(tt, i), yp, nxp)
            f = fq12_mul_034(f, l0, l1, l3)
            if d != 0:
                qx = fq2_load(qq[i], 0)
                qy = fq2_load(qq[i], 1) if d > 0 else fq2_load(qq[i], 2)
                t, l0, l1, l3 = _add_step(t, qx, qy, yp, nxp)
                f = fq12_mul_034(f, l0, l1, l3)
            _st_t(tt, i, t)

    for i in range(m):
        yp = _ld4(pp, i, 0)
        nxp = _ld4(pp, i, 1)
        qx = fq2_load(qq[i], 0)
        qy = fq2_load(qq[i], 1)
        q1x = fq2mul(fq2conj(qx), PI1_X)
        q1y = fq2mul(fq2conj(qy), PI1_Y)
        q2x = fq2mulfq(qx, PI2_X)
        t, l0, l1, l3 = _add_step(_ld_t(tt, i), q1x, q1y, yp, nxp)
        f = fq12_mul_034(f, l0, l1, l3)
        _, l0, l1, l3 = _add_step(t, q2x, qy, yp, nxp)
        f = fq12_mul_034(f, l0, l1, l3)
    return f


# --------------------------------------------------------------------------- final exponentiation


@njit(**_jit)
def final_exponentiation(f):
    """f^((p^12 - 1)/r), exactly (0 maps to 0)."""
    # easy part: f^((p^6 - 1)(p^2 + 1)), lands in the cyclotomic subgroup
    t = fq12_mul(fq12_conj(f), fq12_inv(f))
    f = fq12_mul(fq12_frob2(t), t)
    # hard part: f^(l0 + l1 p + l2 p^2 + p^3)
    a = fq12_cyc_pow_x(f)  # f^x
    b = fq12_cyc_pow_x(a)  # f^(x^2)
    c = fq12_cyc_pow_x(b)  # f^(x^3)
    a2 = fq12_cyc_sqr(a)
    t0 = fq12_mul(fq12_cyc_sqr(c), b)  # c^2 b
    u = fq12_mul(fq12_mul(fq12_cyc_sqr(t0), t0), a2)  # U = c^6 b^3 a^2
    u2 = fq12_cyc_sqr(u)
    u6 = fq12_mul(fq12_cyc_sqr(u2), u2)  # U^6 = c^36 b^18 a^12
    b3 = fq12_mul(fq12_cyc_sqr(b), b)
    v = fq12_mul(fq12_cyc_sqr(b3), f)  # V = b^6 f = f^l2
    w = fq12_mul(v, fq12_mul(a2, a))  # W = b^6 a^3 f
    e0 = fq12_conj(fq12_mul(u6, fq12_cyc_sqr(w)))  # f^l0 = (c^36 b^30 a^18 f^2)^-1
    e1 = fq12_mul(fq12_conj(u6), f)  # f^l1
    r = fq12_mul(fq12_frob3(f), fq12_frob2(v))
    r = fq12_mul(r, fq12_frob1(e1))
    return fq12_mul(r, e0)


# --------------------------------------------------------------------------- array entry points


@njit(**_jit)
def miller_loop_into(ps, qs, out):
    """Validate the points, run the multi-Miller loop, store f in out (12, 4).  Returns the
    :func:`check_points` code (0 = fine; out is untouched otherwise)."""
    bad = check_points(ps, qs)
    if bad != 0:
        return bad
    fq12_store(out, miller_loop(ps, qs))
    return 0


@njit(**_jit)
def final_exponentiation_into(f_arr, out):
    fq12_store(out, final_exponentiation(fq12_load(f_arr)))


@njit(**_jit)
def fq12_mul_into(a, b, out):
    fq12_store(out, fq12_mul(fq12_load(a), fq12_load(b)))
