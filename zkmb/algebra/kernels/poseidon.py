"""Poseidon over BN254 Fr (circomlib parameters) in numba: the optimised sparse-partial-round form.

Elements are Montgomery ``UniTuple(uint64, 4)`` as in :mod:`.mont`.  The constants come from
:func:`zkmb.gadgets.poseidon_constants.params` and are packed by :func:`pack_constants` into
flat ``(n, 4)`` Montgomery arrays (one set per width), passed to every kernel:

* ``pre_c``  (half * t):  constants of the first half full rounds, row-major (round, element);
* ``mds``    (t * t):     the MDS matrix, row-major;
* ``pre``    (t * t):     the matrix of the last first-half full round (absorbs the partial-round
  dense factors);
* ``pc``     (rp):        the constant added to element 0 before each partial S-box;
* ``pv``/``pw`` (rp * (t - 1)): the sparse partial-round matrices (row 0 beyond ``mds[0][0]``,
  column 0 below it);
* ``post_c`` (half * t):  constants of the last half full rounds.

See :mod:`zkmb.gadgets.poseidon_constants` for the algebra.  Per hash with t = 3 this is about
600 Montgomery multiplications.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .intrinsics import adc, mac, sbb
from .mont import FR_MOD, FR_NINV, load, store

__all__ = ["permute", "hash_rows", "hash_rows_parallel", "pack_constants"]

_jit = dict(cache=True, nogil=True)


U64 = np.uint64
_LAZY = 5  # products summed before one reduction: REDC(T) < T / 2^256 + r < 2r needs T < 5.3 r^2


@njit(inline="always", **_jit)
def _wide(a, b):
    """The 512-bit product a * b as 8 little-endian limbs."""
    z = U64(0)
    a0, a1, a2, a3 = a
    b0, b1, b2, b3 = b
    r0, c = mac(z, a0, b0, z)
    r1, c = mac(z, a0, b1, c)
    r2, c = mac(z, a0, b2, c)
    r3, r4 = mac(z, a0, b3, c)
    r1, c = mac(r1, a1, b0, z)
    r2, c = mac(r2, a1, b1, c)
    r3, c = mac(r3, a1, b2, c)
    r4, r5 = mac(r4, a1, b3, c)
    r2, c = mac(r2, a2, b0, z)
    r3, c = mac(r3, a2, b1, c)
    r4, c = mac(r4, a2, b2, c)
    r5, r6 = mac(r5, a2, b3, c)
    r3, c = mac(r3, a3, b0, z)
    r4, c = mac(r4, a3, b1, c)
    r5, c = mac(r5, a3, b2, c)
    r6, r7 = mac(r6, a3, b3, c)
    return (r0, r1, r2, r3, r4, r5, r6, r7)


@njit(inline="always", **_jit)
def _wide_sqr(a):
    """The 512-bit square a^2 (10 limb products: the cross products once, doubled)."""
    z = U64(0)
    one = U64(1)
    s63 = U64(63)
    a0, a1, a2, a3 = a
    r1, c = mac(z, a0, a1, z)
    r2, c = mac(z, a0, a2, c)
    r3, r4 = mac(z, a0, a3, c)
    r3, c = mac(r3, a1, a2, z)
    r4, r5 = mac(r4, a1, a3, c)
    r5, r6 = mac(r5, a2, a3, z)
    r7 = r6 >> s63
    r6 = (r6 << one) | (r5 >> s63)
    r5 = (r5 << one) | (r4 >> s63)
    r4 = (r4 << one) | (r3 >> s63)
    r3 = (r3 << one) | (r2 >> s63)
    r2 = (r2 << one) | (r1 >> s63)
    r1 = r1 << one
    d0, d1 = mac(z, a0, a0, z)
    d2, d3 = mac(z, a1, a1, z)
    d4, d5 = mac(z, a2, a2, z)
    d6, d7 = mac(z, a3, a3, z)
    r1, c = adc(r1, d1, z)
    r2, c = adc(r2, d2, c)
    r3, c = adc(r3, d3, c)
    r4, c = adc(r4, d4, c)
    r5, c = adc(r5, d5, c)
    r6, c = adc(r6, d6, c)
    r7, c = adc(r7, d7, c)
    return (d0, r1, r2, r3, r4, r5, r6, r7)


@njit(inline="always", **_jit)
def _wide_add(x, y):
    """x + y for 8-limb values whose sum stays below 2^512."""
    z = U64(0)
    s0, c = adc(x[0], y[0], z)
    s1, c = adc(x[1], y[1], c)
    s2, c = adc(x[2], y[2], c)
    s3, c = adc(x[3], y[3], c)
    s4, c = adc(x[4], y[4], c)
    s5, c = adc(x[5], y[5], c)
    s6, c = adc(x[6], y[6], c)
    s7, c = adc(x[7], y[7], c)
    return (s0, s1, s2, s3, s4, s5, s6, s7)


@njit(inline="always", **_jit)
def _redc(x):
    """Montgomery reduction T * 2^-256 mod r of an 8-limb T < 5 r^2, fully reduced."""
    z = U64(0)
    n0, n1, n2, n3 = FR_MOD
    ninv = FR_NINV
    t0, t1, t2, t3, t4, t5, t6, t7 = x
    m = t0 * ninv
    _, c = mac(t0, m, n0, z)
    t1, c = mac(t1, m, n1, c)
    t2, c = mac(t2, m, n2, c)
    t3, c = mac(t3, m, n3, c)
    t4, e = adc(t4, c, z)
    m = t1 * ninv
    _, c = mac(t1, m, n0, z)
    t2, c = mac(t2, m, n1, c)
    t3, c = mac(t3, m, n2, c)
    t4, c = mac(t4, m, n3, c)
    t5, e = adc(t5, c, e)
    m = t2 * ninv
    _, c = mac(t2, m, n0, z)
    t3, c = mac(t3, m, n1, c)
    t4, c = mac(t4, m, n2, c)
    t5, c = mac(t5, m, n3, c)
    t6, e = adc(t6, c, e)
    m = t3 * ninv
    _, c = mac(t3, m, n0, z)
    t4, c = mac(t4, m, n1, c)
    t5, c = mac(t5, m, n2, c)
    t6, c = mac(t6, m, n3, c)
    t7, e = adc(t7, c, e)
    return _csub(t4, t5, t6, t7)  # (t4..t7) < 2r


@njit(inline="always", **_jit)
def _csub(t0, t1, t2, t3):
    """t - r if t >= r else t, for t < 2r; branch-free (the condition is data-dependent)."""
    z = U64(0)
    n0, n1, n2, n3 = FR_MOD
    d0, b = sbb(t0, n0, z)
    d1, b = sbb(t1, n1, b)
    d2, b = sbb(t2, n2, b)
    d3, b = sbb(t3, n3, b)
    keep = z - b  # all ones when t < r
    return (
        d0 ^ ((d0 ^ t0) & keep),
        d1 ^ ((d1 ^ t1) & keep),
        d2 ^ ((d2 ^ t2) & keep),
        d3 ^ ((d3 ^ t3) & keep),
    )


@njit(inline="always", **_jit)
def _add(a, b):
    """a + b mod r (both reduced), branch-free."""
    z = U64(0)
    s0, c = adc(a[0], b[0], z)
    s1, c = adc(a[1], b[1], c)
    s2, c = adc(a[2], b[2], c)
    s3, c = adc(a[3], b[3], c)
    return _csub(s0, s1, s2, s3)


@njit(inline="always", **_jit)
def _mul(a, b):
    return _redc(_wide(a, b))


@njit(**_jit)
def _dot(m, k, v, t):
    """sum_j m[k + j] * v[j] for j < t, reduced once per _LAZY products."""
    acc = _wide(load(m, k), load(v, 0))
    out = (U64(0), U64(0), U64(0), U64(0))
    first = True
    cnt = 1
    for j in range(1, t):
        if cnt == _LAZY:
            r = _redc(acc)
            out = r if first else _add(out, r)
            first = False
            acc = _wide(load(m, k + j), load(v, j))
            cnt = 1
        else:
            acc = _wide_add(acc, _wide(load(m, k + j), load(v, j)))
            cnt += 1
    r = _redc(acc)
    return r if first else _add(out, r)


@njit(inline="always", **_jit)
def _pow5(x):
    x2 = _redc(_wide_sqr(x))
    return _mul(_redc(_wide_sqr(x2)), x)


@njit(**_jit)
def _full_round(st, c, r, m, tmp, rows):
    """st += c[r]; st = st^5; st[:rows] = (m . st)[:rows] (tmp is scratch of the state's shape)."""
    t = st.shape[0]
    base = r * t
    for i in range(t):
        store(tmp, i, _pow5(_add(load(st, i), load(c, base + i))))
    for i in range(rows):
        store(st, i, _dot(m, i * t, tmp, t))


@njit(inline="always", **_jit)
def _partial_mix(st, x0, m00, pv, pw, base, t):
    """Sparse partial-round matrix: st[0] = m00 x0 + sum pv[base + i - 1] st[i]; st[i] += pw[..] x0."""
    acc = _wide(m00, x0)
    cnt = 1
    out = (U64(0), U64(0), U64(0), U64(0))
    first = True
    for i in range(1, t):
        xi = load(st, i)
        if cnt == _LAZY:
            r = _redc(acc)
            out = r if first else _add(out, r)
            first = False
            acc = _wide(load(pv, base + i - 1), xi)
            cnt = 1
        else:
            acc = _wide_add(acc, _wide(load(pv, base + i - 1), xi))
            cnt += 1
        store(st, i, _add(xi, _mul(load(pw, base + i - 1), x0)))
    r = _redc(acc)
    store(st, 0, r if first else _add(out, r))


@njit(**_jit)
def permute(st, tmp, pre_c, mds, pre, pc, pv, pw, post_c, rows_out):
    """Poseidon permutation of the state ``st`` ((t, 4) Montgomery, in place); ``tmp`` is (t, 4) scratch.

    Only the first ``rows_out`` output elements are computed (1 for the hash, t for the full state).
    """
    t = st.shape[0]
    half = pre_c.shape[0] // t
    rp = pc.shape[0]
    for r in range(half - 1):
        _full_round(st, pre_c, r, mds, tmp, t)
    _full_round(st, pre_c, half - 1, pre, tmp, t)
    m00 = load(mds, 0)
    t1 = t - 1
    for j in range(rp):
        x0 = _pow5(_add(load(st, 0), load(pc, j)))
        _partial_mix(st, x0, m00, pv, pw, j * t1, t)
    for r in range(half - 1):
        _full_round(st, post_c, r, mds, tmp, t)
    _full_round(st, post_c, half - 1, mds, tmp, rows_out)


@njit(inline="always", **_jit)
def _load_row(st, inputs, n, cap):
    for q in range(4):
        st[0, q] = cap[q]
    for i in range(inputs.shape[1]):
        for q in range(4):
            st[i + 1, q] = inputs[n, i, q]


@njit(**_jit)
def _hash_range(inputs, out, cap, lo, hi, pre_c, mds, pre, pc, pv, pw, post_c):
    t = inputs.shape[1] + 1
    st = np.empty((t, 4), dtype=np.uint64)
    tmp = np.empty((t, 4), dtype=np.uint64)
    for n in range(lo, hi):
        _load_row(st, inputs, n, cap)
        permute(st, tmp, pre_c, mds, pre, pc, pv, pw, post_c, 1)
        for q in range(4):
            out[n, q] = st[0, q]


@njit(**_jit)
def hash_rows(inputs, out, cap, pre_c, mds, pre, pc, pv, pw, post_c):
    """out[n] = Poseidon(inputs[n, 0], ..., inputs[n, k-1]) for (n, k, 4) Montgomery inputs, one thread;
    the capacity element starts at ``cap`` (a Montgomery element, 0 for circomlib's ``Poseidon(n)``)."""
    _hash_range(inputs, out, cap, 0, inputs.shape[0], pre_c, mds, pre, pc, pv, pw, post_c)


@njit(parallel=True, **_jit)
def hash_rows_parallel(inputs, out, cap, nchunks, pre_c, mds, pre, pc, pv, pw, post_c):
    """As :func:`hash_rows`, the rows split into ``nchunks`` ranges run on numba's threads."""
    n = inputs.shape[0]
    for c in prange(nchunks):
        _hash_range(
            inputs, out, cap, c * n // nchunks, (c + 1) * n // nchunks, pre_c, mds, pre, pc, pv, pw, post_c
        )


def pack_constants(p) -> tuple[np.ndarray, ...]:
    """The kernel constant arrays (pre_c, mds, pre, pc, pv, pw, post_c) of a PoseidonParams."""
    from ..fast.fields import fr_from_ints

    half = p.rounds_f // 2

    def flat(rows):
        return fr_from_ints([x for row in rows for x in row])

    return (
        flat(p.round_constants[:half]),
        flat(p.mds),
        flat(p.pre_partial),
        fr_from_ints(list(p.partial_c)),
        flat(p.partial_v),
        flat(p.partial_w),
        flat(p.post_c),
    )
