"""4x64-bit Montgomery arithmetic for the BN254 base field Fq and scalar field Fr.

An element is a ``UniTuple(uint64, 4)`` of little-endian limbs in Montgomery form
(``a * 2^256 mod m``), fully reduced to ``[0, m)``.  Arrays of elements have shape ``(n, 4)``.

The generic ``_m*`` functions take the modulus limbs and ``-m^-1 mod 2^64`` as arguments; the
``fq_*``/``fr_*`` wrappers pass module-level constant tuples, which numba freezes into the
compiled code so LLVM specialises each wrapper to its modulus.  Both moduli are below 2^254,
so the CIOS product uses the "no final carry" form (the top limb never overflows).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..params import P, R, to_limbs
from .intrinsics import adc, mac, sbb

U64 = np.uint64


def _consts(m: int):
    ninv = (-pow(m, -1, 1 << 64)) % (1 << 64)
    r1 = (1 << 256) % m
    r2 = (1 << 512) % m
    limbs = tuple(U64(v) for v in to_limbs(m))
    return limbs, U64(ninv), tuple(U64(v) for v in to_limbs(r1)), tuple(U64(v) for v in to_limbs(r2))


FQ_MOD, FQ_NINV, FQ_ONE, FQ_R2 = _consts(P)
FR_MOD, FR_NINV, FR_ONE, FR_R2 = _consts(R)
FQ_PM2 = tuple(U64(v) for v in to_limbs(P - 2))
FR_PM2 = tuple(U64(v) for v in to_limbs(R - 2))
ZERO4 = (U64(0), U64(0), U64(0), U64(0))
PLAIN_ONE = (U64(1), U64(0), U64(0), U64(0))

_jit = dict(cache=True, nogil=True)


# --------------------------------------------------------------------------- generic core


@njit(inline="always", **_jit)
def _mreduce_sub(t0, t1, t2, t3, n):
    """t - n if t >= n else t (t < 2n)."""
    z = U64(0)
    d0, b = sbb(t0, n[0], z)
    d1, b = sbb(t1, n[1], b)
    d2, b = sbb(t2, n[2], b)
    d3, b = sbb(t3, n[3], b)
    if b:
        return (t0, t1, t2, t3)
    return (d0, d1, d2, d3)


@njit(**_jit)
def _mmul(a, b, n, ninv):
    """Montgomery product a*b*2^-256 mod n (CIOS, no-carry variant)."""
    z = U64(0)
    a0, a1, a2, a3 = a
    b0, b1, b2, b3 = b
    n0, n1, n2, n3 = n
    # row 0
    t0, c = mac(z, a0, b0, z)
    t1, c = mac(z, a0, b1, c)
    t2, c = mac(z, a0, b2, c)
    t3, t4 = mac(z, a0, b3, c)
    m = t0 * ninv
    _, c = mac(t0, m, n0, z)
    t0, c = mac(t1, m, n1, c)
    t1, c = mac(t2, m, n2, c)
    t2, c = mac(t3, m, n3, c)
    t3 = t4 + c
    # row 1
    t0, c = mac(t0, a1, b0, z)
    t1, c = mac(t1, a1, b1, c)
    t2, c = mac(t2, a1, b2, c)
    t3, t4 = mac(t3, a1, b3, c)
    m = t0 * ninv
    _, c = mac(t0, m, n0, z)
    t0, c = mac(t1, m, n1, c)
    t1, c = mac(t2, m, n2, c)
    t2, c = mac(t3, m, n3, c)
    t3 = t4 + c
    # row 2
    t0, c = mac(t0, a2, b0, z)
    t1, c = mac(t1, a2, b1, c)
    t2, c = mac(t2, a2, b2, c)
    t3, t4 = mac(t3, a2, b3, c)
    m = t0 * ninv
    _, c = mac(t0, m, n0, z)
    t0, c = mac(t1, m, n1, c)
    t1, c = mac(t2, m, n2, c)
    t2, c = mac(t3, m, n3, c)
    t3 = t4 + c
    # row 3
    t0, c = mac(t0, a3, b0, z)
    t1, c = mac(t1, a3, b1, c)
    t2, c = mac(t2, a3, b2, c)
    t3, t4 = mac(t3, a3, b3, c)
    m = t0 * ninv
    _, c = mac(t0, m, n0, z)
    t0, c = mac(t1, m, n1, c)
    t1, c = mac(t2, m, n2, c)
    t2, c = mac(t3, m, n3, c)
    t3 = t4 + c
    return _mreduce_sub(t0, t1, t2, t3, n)


@njit(inline="always", **_jit)
def _madd(a, b, n):
    z = U64(0)
    s0, c = adc(a[0], b[0], z)
    s1, c = adc(a[1], b[1], c)
    s2, c = adc(a[2], b[2], c)
    s3, c = adc(a[3], b[3], c)
    return _mreduce_sub(s0, s1, s2, s3, n)


@njit(inline="always", **_jit)
def _msub(a, b, n):
    z = U64(0)
    d0, br = sbb(a[0], b[0], z)
    d1, br = sbb(a[1], b[1], br)
    d2, br = sbb(a[2], b[2], br)
    d3, br = sbb(a[3], b[3], br)
    if br:
        d0, c = adc(d0, n[0], z)
        d1, c = adc(d1, n[1], c)
        d2, c = adc(d2, n[2], c)
        d3, c = adc(d3, n[3], c)
    return (d0, d1, d2, d3)


@njit(inline="always", **_jit)
def is_zero(a):
    return (a[0] | a[1] | a[2] | a[3]) == U64(0)


@njit(inline="always", **_jit)
def eq(a, b):
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == U64(0)


@njit(**_jit)
def _mpow(a, e, one, n, ninv):
    """a^e for a 4-limb exponent e (left to right square and multiply)."""
    acc = one
    for li in range(3, -1, -1):
        w = e[li]
        for bi in range(63, -1, -1):
            acc = _mmul(acc, acc, n, ninv)
            if (w >> U64(bi)) & U64(1):
                acc = _mmul(acc, a, n, ninv)
    return acc


# --------------------------------------------------------------------------- Fq


@njit(inline="always", **_jit)
def fq_mul(a, b):
    return _mmul(a, b, FQ_MOD, FQ_NINV)


@njit(inline="always", **_jit)
def fq_sqr(a):
    return _mmul(a, a, FQ_MOD, FQ_NINV)


@njit(inline="always", **_jit)
def fq_add(a, b):
    return _madd(a, b, FQ_MOD)


@njit(inline="always", **_jit)
def fq_sub(a, b):
    return _msub(a, b, FQ_MOD)


@njit(inline="always", **_jit)
def fq_neg(a):
    return _msub(ZERO4, a, FQ_MOD)


@njit(inline="always", **_jit)
def fq_dbl(a):
    return _madd(a, a, FQ_MOD)


@njit(**_jit)
def fq_inv(a):
    """a^-1 (Fermat); 0 maps to 0."""
    return _mpow(a, FQ_PM2, FQ_ONE, FQ_MOD, FQ_NINV)


@njit(inline="always", **_jit)
def fq_to_mont(a):
    return _mmul(a, FQ_R2, FQ_MOD, FQ_NINV)


@njit(inline="always", **_jit)
def fq_from_mont(a):
    return _mmul(a, PLAIN_ONE, FQ_MOD, FQ_NINV)


# --------------------------------------------------------------------------- Fr


@njit(inline="always", **_jit)
def fr_mul(a, b):
    return _mmul(a, b, FR_MOD, FR_NINV)


@njit(inline="always", **_jit)
def fr_sqr(a):
    return _mmul(a, a, FR_MOD, FR_NINV)


@njit(inline="always", **_jit)
def fr_add(a, b):
    return _madd(a, b, FR_MOD)


@njit(inline="always", **_jit)
def fr_sub(a, b):
    return _msub(a, b, FR_MOD)


@njit(inline="always", **_jit)
def fr_neg(a):
    return _msub(ZERO4, a, FR_MOD)


@njit(**_jit)
def fr_inv(a):
    """a^-1 (Fermat); 0 maps to 0."""
    return _mpow(a, FR_PM2, FR_ONE, FR_MOD, FR_NINV)


@njit(inline="always", **_jit)
def fr_to_mont(a):
    return _mmul(a, FR_R2, FR_MOD, FR_NINV)


@njit(inline="always", **_jit)
def fr_from_mont(a):
    return _mmul(a, PLAIN_ONE, FR_MOD, FR_NINV)


# --------------------------------------------------------------------------- array helpers


@njit(inline="always", **_jit)
def load(arr, i):
    """Element i of an (n, 4) uint64 array as a tuple."""
    return (arr[i, 0], arr[i, 1], arr[i, 2], arr[i, 3])


@njit(inline="always", **_jit)
def store(arr, i, v):
    arr[i, 0] = v[0]
    arr[i, 1] = v[1]
    arr[i, 2] = v[2]
    arr[i, 3] = v[3]


@njit(**_jit)
def _lt_mod(a, n):
    """a < n as integers (a, n 4-limb tuples)."""
    for i in range(3, -1, -1):
        if a[i] != n[i]:
            return a[i] < n[i]
    return False


@njit(parallel=True, **_jit)
def fq_vec_mul(a, b, out):
    for i in prange(a.shape[0]):
        store(out, i, fq_mul(load(a, i), load(b, i)))


@njit(parallel=True, **_jit)
def fq_vec_add(a, b, out):
    for i in prange(a.shape[0]):
        store(out, i, fq_add(load(a, i), load(b, i)))


@njit(parallel=True, **_jit)
def fq_vec_sub(a, b, out):
    for i in prange(a.shape[0]):
        store(out, i, fq_sub(load(a, i), load(b, i)))


@njit(parallel=True, **_jit)
def fq_vec_neg(a, out):
    for i in prange(a.shape[0]):
        store(out, i, fq_neg(load(a, i)))


@njit(parallel=True, **_jit)
def fq_vec_to_mont(a, out):
    """Plain limbs -> Montgomery; returns False if some input is not below p."""
    bad = 0
    for i in prange(a.shape[0]):
        v = load(a, i)
        if not _lt_mod(v, FQ_MOD):
            bad += 1
        store(out, i, fq_to_mont(v))
    return bad == 0


@njit(parallel=True, **_jit)
def fq_vec_from_mont(a, out):
    for i in prange(a.shape[0]):
        store(out, i, fq_from_mont(load(a, i)))


@njit(parallel=True, **_jit)
def fr_vec_mul(a, b, out):
    for i in prange(a.shape[0]):
        store(out, i, fr_mul(load(a, i), load(b, i)))


@njit(parallel=True, **_jit)
def fr_vec_add(a, b, out):
    for i in prange(a.shape[0]):
        store(out, i, fr_add(load(a, i), load(b, i)))


@njit(parallel=True, **_jit)
def fr_vec_sub(a, b, out):
    for i in prange(a.shape[0]):
        store(out, i, fr_sub(load(a, i), load(b, i)))


@njit(parallel=True, **_jit)
def fr_vec_neg(a, out):
    for i in prange(a.shape[0]):
        store(out, i, fr_neg(load(a, i)))


@njit(parallel=True, **_jit)
def fr_vec_to_mont(a, out):
    """Plain limbs -> Montgomery; returns False if some input is not below r."""
    bad = 0
    for i in prange(a.shape[0]):
        v = load(a, i)
        if not _lt_mod(v, FR_MOD):
            bad += 1
        store(out, i, fr_to_mont(v))
    return bad == 0


@njit(parallel=True, **_jit)
def fr_vec_from_mont(a, out):
    for i in prange(a.shape[0]):
        store(out, i, fr_from_mont(load(a, i)))


@njit(**_jit)
def fq_batch_inv(a, out):
    """Montgomery's trick: out[i] = a[i]^-1 (zeros map to zero) with one inversion."""
    n = a.shape[0]
    acc = FQ_ONE
    for i in range(n):
        store(out, i, acc)
        v = load(a, i)
        if not is_zero(v):
            acc = fq_mul(acc, v)
    inv = fq_inv(acc)
    for i in range(n - 1, -1, -1):
        v = load(a, i)
        if is_zero(v):
            store(out, i, ZERO4)
        else:
            store(out, i, fq_mul(inv, load(out, i)))
            inv = fq_mul(inv, v)


@njit(**_jit)
def fr_batch_inv(a, out):
    """Montgomery's trick: out[i] = a[i]^-1 (zeros map to zero) with one inversion."""
    n = a.shape[0]
    acc = FR_ONE
    for i in range(n):
        store(out, i, acc)
        v = load(a, i)
        if not is_zero(v):
            acc = fr_mul(acc, v)
    inv = fr_inv(acc)
    for i in range(n - 1, -1, -1):
        v = load(a, i)
        if is_zero(v):
            store(out, i, ZERO4)
        else:
            store(out, i, fr_mul(inv, load(out, i)))
            inv = fr_mul(inv, v)


@njit(**_jit)
def fq_mul_chain(a, b, iters):
    """iters dependent multiplications (benchmark kernel: latency of one Fq product)."""
    x = a
    for _ in range(iters):
        x = fq_mul(x, b)
    return x
