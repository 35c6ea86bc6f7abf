"""Sparse matrix-vector products over Fr (CSR, Montgomery limbs) for the QAP."""

from __future__ import annotations

from numba import njit, prange

from .mont import FR_ONE, ZERO4, eq, fr_add, fr_mul, load, store

_jit = dict(cache=True, nogil=True)


@njit(inline="always", **_jit)
def _row_sum(row_ptr, cols, coeffs, w, i):
    """sum_k coeffs[k] * w[cols[k]] over row i (a coefficient 1 costs no product)."""
    acc = ZERO4
    for k in range(row_ptr[i], row_ptr[i + 1]):
        c = load(coeffs, k)
        x = load(w, cols[k])
        acc = fr_add(acc, x if eq(c, FR_ONE) else fr_mul(c, x))
    return acc


@njit(parallel=True, **_jit)
def csr_matvec(row_ptr, cols, coeffs, w, out):
    """out[i] = sum_k coeffs[k] * w[cols[k]] over row i (rows beyond the matrix are left untouched)."""
    for i in prange(row_ptr.shape[0] - 1):
        store(out, i, _row_sum(row_ptr, cols, coeffs, w, i))


@njit(parallel=True, **_jit)
def csr_matvec_known(row_ptr, cols, coeffs, w, known_vals, known, out):
    """As :func:`csr_matvec`, but rows i < len(known) with known[i] take known_vals[i] (a value already
    computed for this w) instead of their sum."""
    m = known.shape[0]
    for i in prange(row_ptr.shape[0] - 1):
        if i < m and known[i] != 0:
            store(out, i, load(known_vals, i))
        else:
            store(out, i, _row_sum(row_ptr, cols, coeffs, w, i))


@njit(**_jit)
def csr_matvec_t(row_ptr, cols, coeffs, x, out):
    """out[j] += sum_i coeffs[i, j] * x[i]: the transposed product (out must be zeroed by the caller)."""
    for i in range(row_ptr.shape[0] - 1):
        xi = load(x, i)
        for k in range(row_ptr[i], row_ptr[i + 1]):
            j = cols[k]
            store(out, j, fr_add(load(out, j), fr_mul(load(coeffs, k), xi)))
