"""From an R1CS to the QAP, in the snarkjs convention (so our keys and snarkjs .zkey files interoperate).

Rows: the m constraints, then one row per public wire k = 0..n_public with A[m + k, k] = 1 (this makes
the A polynomials of the public wires linearly independent), zero-padded to the domain size
n = 2^ceil(log2(m + n_public + 1)).

H: the prover evaluates a = A w, b = B w and c = a o b over the n-th roots of unity, interpolates, and
evaluates p = a b - c on the odd 2n-th roots of unity (the coset shifted by omega_2n).  Since p vanishes
on the even ones, p(tau) = sum_j p(omega_2n^(2j+1)) L_(2j+1)(tau) with L the Lagrange basis of the
2n-th roots; the key's H query holds exactly those L_(2j+1)(tau)/delta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algebra import fast
from ..algebra.kernels import sparse
from ..algebra.kernels.mont import FR_ONE
from ..algebra.ref.ntt import domain_root
from ..errors import InvalidInput

MAX_LOG_DOMAIN = 27  # the H coset needs 2n-th roots of unity, and Fr has 2^28


@dataclass(frozen=True, eq=False)
class CsrRows:
    """A CSR matrix over Fr: ``ptr`` (rows + 1), ``cols`` (int64), ``vals`` ((nnz, 4) Montgomery)."""

    ptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.ptr.shape[0] - 1)

    def matvec(
        self, w: np.ndarray, n_out: int, known: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """(M w) zero-padded to n_out rows; ``known = (values, mask)``: rows i < len(mask) with mask[i]
        are taken from values[i] (computed for this w elsewhere: the witness solver's product rows)."""
        out = np.zeros((n_out, 4), dtype=np.uint64)
        if known is None:
            sparse.csr_matvec(self.ptr, self.cols, self.vals, w, out)
        else:
            vals, mask = known
            if vals.shape != (mask.shape[0], 4) or mask.shape[0] > self.n_rows:
                raise InvalidInput("known row values do not fit the matrix")
            sparse.csr_matvec_known(self.ptr, self.cols, self.vals, w, vals, mask, out)
        return out

    def matvec_t(self, x: np.ndarray, n_cols: int) -> np.ndarray:
        """(M^T x) over n_cols columns (x has at least n_rows entries)."""
        out = np.zeros((n_cols, 4), dtype=np.uint64)
        sparse.csr_matvec_t(self.ptr, self.cols, self.vals, x, out)
        return out

    @classmethod
    def from_triplets(cls, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int) -> CsrRows:
        """From (row, col, value) triplets in any order; duplicates are kept (they add up)."""
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order].astype(np.int64), cols[order].astype(np.int64), vals[order]
        if rows.size and (rows[0] < 0 or rows[-1] >= n_rows):
            raise InvalidInput("coefficient row outside the domain")
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
        return cls(ptr, np.ascontiguousarray(cols), np.ascontiguousarray(vals, dtype=np.uint64))

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(self.n_rows, dtype=np.int64), np.diff(self.ptr))
        return rows, self.cols, self.vals


def domain_size_for(n_constraints: int, n_public: int) -> int:
    """The QAP domain size: the smallest power of two holding the constraints and the public rows."""
    rows = n_constraints + n_public + 1
    log = max(1, (rows - 1).bit_length())
    if log > MAX_LOG_DOMAIN:
        raise InvalidInput(f"circuit too large: {rows} QAP rows exceed 2^{MAX_LOG_DOMAIN}")
    return 1 << log


def qap_matrices(cs) -> tuple[CsrRows, CsrRows, CsrRows]:
    """The QAP rows A, B, C of a ConstraintSystem: its constraints plus A's public-input rows."""
    m, npub = cs.n_constraints, cs.n_public
    extra = np.arange(npub + 1, dtype=np.int64)
    a = CsrRows(
        np.concatenate([cs.A.row_ptr.astype(np.int64), cs.A.row_ptr[-1] + 1 + extra]),
        np.concatenate([cs.A.cols.astype(np.int64), extra]),
        np.concatenate([cs.A.coeffs, np.tile(np.array(FR_ONE, dtype=np.uint64), (npub + 1, 1))]),
    )
    b = CsrRows(cs.B.row_ptr.astype(np.int64), cs.B.cols.astype(np.int64), cs.B.coeffs)
    assert a.n_rows == m + npub + 1  # construction invariant, not input validation
    return a, b, c_rows(cs)


def c_rows(cs) -> CsrRows:
    """The QAP rows C of a ConstraintSystem (its constraints' C, no public rows)."""
    return CsrRows(cs.C.row_ptr.astype(np.int64), cs.C.cols.astype(np.int64), cs.C.coeffs)


def h_odd_evaluations(a_rows: CsrRows, b_rows: CsrRows, w: np.ndarray, n: int) -> np.ndarray:
    """p = (A w)(B w) - (A w o B w) interpolated over the n-th roots, evaluated at the odd 2n-th roots."""
    a = a_rows.matvec(w, n)
    b = b_rows.matvec(w, n)
    c = fast.fr_mul(a, b)
    shift = domain_root(2 * n)
    for v in (a, b, c):
        fast.intt_inplace(v)
        fast.coset_ntt_inplace(v, shift)
    return fast.fr_sub(fast.fr_mul(a, b), c)


def lagrange_at(tau: int, n: int) -> np.ndarray:
    """L_j(tau) for the Lagrange basis of the n-th roots of unity, j = 0..n-1 (Montgomery Fr vector).

    L_j(tau) = (tau^n - 1)/n * w^j / (tau - w^j); tau must not be an n-th root of unity."""
    from ..algebra.params import R

    zt = (pow(tau, n, R) - 1) % R
    if zt == 0:
        raise InvalidInput("tau is a root of unity of the domain")
    e1 = np.zeros((n, 4), dtype=np.uint64)
    e1[min(1, n - 1)] = fast.fr_from_ints([1])[0]
    powers = fast.ntt(e1) if n > 1 else fast.fr_from_ints([1])  # ntt(e_1)[j] = w^j
    denom = fast.fr_inv(fast.fr_sub(fast.fr_from_ints([tau] * n), powers))
    scale = fast.fr_from_ints([zt * pow(n, -1, R) % R] * n)
    return fast.fr_mul(fast.fr_mul(powers, denom), scale)
