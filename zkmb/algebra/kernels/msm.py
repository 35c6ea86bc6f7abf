"""Multi-scalar multiplication sum_i [k_i] P_i on BN254 G1 or G2 (one generic code path).

Algorithm (see :func:`msm_run`):

- scalars 0 are skipped; points with scalar 1 are summed directly (batch-affine tree, split over the
  workers); the rest go through Pippenger;
- Pippenger with balanced (signed) c-bit digits in ``[-2^(c-1) + 1, 2^(c-1)]``, so a window has
  ``2^(c-1)`` buckets and a negative digit adds the negated point;
- bucket accumulation in batch-affine form: a counting sort groups each window's points by bucket,
  then :func:`.curve.tree_reduce` adds disjoint pairs layer by layer with one field inversion per layer
  (for G2 the inversion runs on the Fq norms of the Fq2 denominators).
  A batch therefore never contains the same bucket twice (no conflicts to defer), and the special
  cases P + P and P + (-P) are classified per pair;
- bucket reduction by running sums in Jacobian coordinates (mixed additions), windows combined by
  Horner's rule with c doublings each;
- parallel over workers (``prange``): worker t takes windows t, t + T, ... and the t-th chunk of the
  scalar-1 points, with its scratch buffers allocated once per call.

Fixed bases (:func:`msm_table_run`): with a window table ``T[w n + i] = [2^(c w)] P_i`` (built level
by level by :func:`window_table_level`) every digit of every window is a bucket entry of one bucket
set, so a worker reduces its buckets once instead of once per window and no Horner doublings remain;
this pays for mid-size MSMs of mostly full-size scalars (a query proof's), at nwin times the memory.

Inputs: an affine point array (G1 ``(n, 2, 4)``, G2 ``(n, 2, 2, 4)``, Montgomery, zeros = infinity)
and plain (non-Montgomery) scalar limbs ``(n, 4)`` below 2^254 (canonical Fr elements qualify).

Memory: each worker holds two point buffers of max(#scalars not in {0, 1}, its scalar-1 chunk) points and
two Fq arrays of half as many elements, and the digits take 4 bytes per scalar and window.

Caution: numba's on-disk cache of this module is keyed on this file only, while the compiled code
inlines :mod:`.curve`; after editing curve.py, delete this module's cache files (``__pycache__/msm.*``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .curve import (
    aff_inf,
    aff_load,
    aff_neg,
    aff_store,
    batch_normalize,
    jac_add,
    jac_dbl,
    jac_from_aff,
    jac_inf,
    jac_load,
    jac_madd,
    jac_store,
    jac_to_aff,
    p_alloc,
    p_zero,
    signed_digit,
)
from .ifma import HAVE_IFMA, tree_reduce_any, tree_reduce_v

_jit = dict(cache=True, nogil=True)
SCALAR_BITS = 254  # scalars are below 2^254 (r < 2^254)


def num_windows(c: int) -> int:
    """Windows of width c for balanced digits of a scalar < 2^254: c * W >= 255 leaves room for the carry."""
    return -(-(SCALAR_BITS + 1) // c)


@njit(**_jit)
def classify(scalars):
    """(indices with scalar 1, indices with scalar not in {0, 1}) of plain scalar limbs."""
    n = scalars.shape[0]
    is_one = np.zeros(n, dtype=np.bool_)
    is_other = np.zeros(n, dtype=np.bool_)
    n1 = 0
    n2 = 0
    for i in range(n):
        high = scalars[i, 1] | scalars[i, 2] | scalars[i, 3]
        if high == 0 and scalars[i, 0] <= 1:
            if scalars[i, 0] == 1:
                is_one[i] = True
                n1 += 1
        else:
            is_other[i] = True
            n2 += 1
    ones = np.empty(n1, dtype=np.int64)
    others = np.empty(n2, dtype=np.int64)
    n1 = 0
    n2 = 0
    for i in range(n):
        if is_one[i]:
            ones[n1] = i
            n1 += 1
        elif is_other[i]:
            others[n2] = i
            n2 += 1
    return ones, others


@njit(parallel=True, **_jit)
def signed_digits(scalars, sel, c, nwin, out):
    """out[w, j] = balanced digit w of scalar sel[j] (window width c, nwin windows)."""
    for j in prange(sel.shape[0]):
        i = sel[j]
        s = (scalars[i, 0], scalars[i, 1], scalars[i, 2], scalars[i, 3])
        carry = 0
        for w in range(nwin):
            d, carry = signed_digit(s, w, c, carry)
            out[w, j] = d


@njit(**_jit)
def _bucket_window(points, sel, drow, c, buf_a, buf_b, pre, nrms, counts, offsets, cursor):
    """Sum_j drow[j] * points[sel[j]] for one window (Jacobian result)."""
    K = 1 << (c - 1)
    m = sel.shape[0]
    for g in range(K):
        counts[g] = 0
    for j in range(m):
        d = drow[j]
        if d > 0:
            counts[d - 1] += 1
        elif d < 0:
            counts[-d - 1] += 1
    tot = 0
    for g in range(K):
        offsets[g] = tot
        cursor[g] = tot
        tot += counts[g]
    for j in range(m):
        d = drow[j]
        if d > 0:
            aff_store(buf_a, cursor[d - 1], aff_load(points, sel[j]))
            cursor[d - 1] += 1
        elif d < 0:
            aff_store(buf_a, cursor[-d - 1], aff_neg(aff_load(points, sel[j])))
            cursor[-d - 1] += 1
    res = tree_reduce_any(buf_a, buf_b, pre, nrms, offsets, counts, K)
    if HAVE_IFMA and K >= SEGMENTS * 8:
        return _weighted_sum_segments(res, counts, offsets, K)
    running = jac_inf(p_zero(points))
    acc = running
    for g in range(K - 1, -1, -1):
        if counts[g] == 1:
            running = jac_madd(running, aff_load(res, offsets[g]))
        acc = jac_add(acc, running)
    return acc


SEGMENTS = 128
"""Segments of the bucket range whose running sums advance together (:func:`_weighted_sum_segments`)."""


@njit(**_jit)
def _weighted_sum_segments(res, counts, offsets, K):
    """Sum_g (g + 1) B_g (Jacobian), B_g = res[offsets[g]] where counts[g] == 1 (else infinity), as
    SEGMENTS running sums that advance together by batch-affine steps (one inversion for each step's
    SEGMENTS additions, on IFMA) instead of 2K scalar Jacobian additions.

    Segment s holds the buckets g = s W + t (W = K / SEGMENTS, t < W); its running sums give
    R_s = sum_t B_(sW+t) and A_s = sum_t (t + 1) B_(sW+t), and the total is sum_s A_s + W sum_s s R_s.
    Measured (G2, K = 4,096): 8 ms of scalar Jacobian additions -> about 2 ms."""
    L = SEGMENTS
    W = K // L
    z = aff_inf(p_zero(res))
    two = p_alloc(res, 2 * L, 2)
    other = p_alloc(res, 2 * L, 2)
    run = p_alloc(res, L, 2)
    acc = p_alloc(res, L, 2)
    offs = np.arange(L, dtype=np.int64) * 2
    cnt = np.empty(L, dtype=np.int64)
    for s in range(L):
        aff_store(run, s, z)
        aff_store(acc, s, z)
    for t in range(W - 1, -1, -1):
        for s in range(L):
            g = s * W + t
            aff_store(two, 2 * s, aff_load(run, s))
            aff_store(two, 2 * s + 1, aff_load(res, offsets[g]) if counts[g] == 1 else z)
            cnt[s] = 2
        out = tree_reduce_v(two, other, offs, cnt, L)
        for s in range(L):
            aff_store(run, s, aff_load(out, 2 * s))
            aff_store(two, 2 * s, aff_load(acc, s))
            aff_store(two, 2 * s + 1, aff_load(run, s))
            cnt[s] = 2
        out = tree_reduce_v(two, other, offs, cnt, L)
        for s in range(L):
            aff_store(acc, s, aff_load(out, 2 * s))
    suffix = jac_inf(p_zero(res))
    weighted = suffix
    for s in range(L - 1, 0, -1):  # sum_s s R_s = sum_(s >= 1) sum_(s' >= s) R_s'
        suffix = jac_madd(suffix, aff_load(run, s))
        weighted = jac_add(weighted, suffix)
    w = W
    while w > 1:
        weighted = jac_dbl(weighted)
        w >>= 1
    for s in range(L):
        weighted = jac_madd(weighted, aff_load(acc, s))
    return weighted


@njit(**_jit)
def _sum_selected(points, sel, lo, hi, buf_a, buf_b, pre, nrms, counts, offsets):
    """Jacobian sum of points[sel[lo:hi]] (batch-affine tree)."""
    m = hi - lo
    if m <= 0:
        return jac_inf(p_zero(points))
    for j in range(m):
        aff_store(buf_a, j, aff_load(points, sel[lo + j]))
    offsets[0] = 0
    counts[0] = m
    res = tree_reduce_any(buf_a, buf_b, pre, nrms, offsets, counts, 1)
    return jac_from_aff(aff_load(res, 0))


@njit(**_jit)
def _scratch(points, cap, K):
    """A worker's buffers: two point buffers of cap points (the group of ``points``), the batch
    inversion's prefix products and norms, and the counts, offsets and cursors of K buckets."""
    return (
        p_alloc(points, cap, 2),
        p_alloc(points, cap, 2),
        np.empty((cap // 2 + 1, 4), dtype=np.uint64),
        np.empty((cap // 2 + 1, 4), dtype=np.uint64),
        np.empty(K, dtype=np.int64),
        np.empty(K, dtype=np.int64),
        np.empty(K, dtype=np.int64),
    )


@njit(parallel=True, **_jit)
def msm_run(points, sel_other, digits, c, sel_one, nworkers, out_jac):
    """Worker t writes the Jacobian sums of windows t, t + nworkers, ... to out_jac[w] and the sum of its
    chunk of the scalar-1 points to out_jac[nwin + t]; out_jac has nwin + nworkers rows."""
    nwin = digits.shape[0]
    m = sel_other.shape[0]
    m1 = sel_one.shape[0]
    K = 1 << (c - 1)
    for t in prange(nworkers):
        lo = m1 * t // nworkers
        hi = m1 * (t + 1) // nworkers
        buf_a, buf_b, pre, nrms, counts, offsets, cursor = _scratch(points, max(m, hi - lo, 1), K)
        for w in range(t, nwin, nworkers):
            jac_store(
                out_jac,
                w,
                _bucket_window(
                    points, sel_other, digits[w], c, buf_a, buf_b, pre, nrms, counts, offsets, cursor
                ),
            )
        jac_store(
            out_jac,
            nwin + t,
            _sum_selected(points, sel_one, lo, hi, buf_a, buf_b, pre, nrms, counts, offsets),
        )


@njit(**_jit)
def msm_combine(parts, nwin, c, out):
    """out[0] = sum_w 2^(c w) parts[w] + sum of parts[nwin:] (affine)."""
    acc = jac_inf(p_zero(out))
    for w in range(nwin - 1, -1, -1):
        for _ in range(c):
            acc = jac_dbl(acc)
        acc = jac_add(acc, jac_load(parts, w))
    for t in range(nwin, parts.shape[0]):
        acc = jac_add(acc, jac_load(parts, t))
    aff_store(out, 0, jac_to_aff(acc))


# --------------------------------------------------------------------------- fixed bases with window tables


@njit(parallel=True, **_jit)
def window_table_level(prev, c, out):
    """out[i] = [2^c] prev[i] (affine in, affine out, one inversion in all): the next level of a
    window table."""
    n = prev.shape[0]
    jac = p_alloc(prev, n, 3)
    for i in prange(n):
        p = jac_from_aff(aff_load(prev, i))
        for _ in range(c):
            p = jac_dbl(p)
        jac_store(jac, i, p)
    batch_normalize(jac, out)


@njit(parallel=True, **_jit)
def msm_table_run(table, n, lo, sel_other, digits, c, sel_one, nworkers, out_jac):
    """Fixed-base MSM on a window table ``table[w * n + i] = [2^(c w)] P_i``: every digit of every
    window goes into one set of 2^(c-1) buckets, so the bucket reduction runs once per worker, not once
    per window, and no doublings are needed.  Scalars are those of points lo + j (digits[w, j] for
    sel_other[j]; sel_one: offsets j with scalar 1).  Worker t takes windows t, t + nworkers, ... and the
    t-th chunk of the scalar-1 points; it writes its bucket sum to out_jac[t] and its scalar-1 sum to
    out_jac[nworkers + t]."""
    nwin = digits.shape[0]
    m = sel_other.shape[0]
    m1 = sel_one.shape[0]
    K = 1 << (c - 1)
    for t in prange(nworkers):
        cnt = 0
        for w in range(t, nwin, nworkers):
            for j in range(m):
                if digits[w, j] != 0:
                    cnt += 1
        sel = np.empty(cnt, dtype=np.int64)
        drow = np.empty(cnt, dtype=np.int32)
        k = 0
        for w in range(t, nwin, nworkers):
            base = w * n + lo
            for j in range(m):
                d = digits[w, j]
                if d != 0:
                    sel[k] = base + sel_other[j]
                    drow[k] = d
                    k += 1
        lo1 = m1 * t // nworkers
        hi1 = m1 * (t + 1) // nworkers
        ones = np.empty(hi1 - lo1, dtype=np.int64)
        for j in range(hi1 - lo1):
            ones[j] = lo + sel_one[lo1 + j]
        buf_a, buf_b, pre, nrms, counts, offsets, cursor = _scratch(table, max(cnt, hi1 - lo1, 1), K)
        jac_store(
            out_jac, t, _bucket_window(table, sel, drow, c, buf_a, buf_b, pre, nrms, counts, offsets, cursor)
        )
        jac_store(
            out_jac,
            nworkers + t,
            _sum_selected(table, ones, 0, hi1 - lo1, buf_a, buf_b, pre, nrms, counts, offsets),
        )
