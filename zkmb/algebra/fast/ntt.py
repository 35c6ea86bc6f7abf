"""Number-theoretic transform over Fr for the fast backend (``(n, 4)`` uint64 Montgomery vectors).

Same definitions as :mod:`zkmb.algebra.ref.ntt`: for ``n = 2^k`` (``k <= 28``) ``ntt(a)[i] = sum_j a[j]
omega_n^(ij)`` with ``omega_n = domain_root(n)``, natural order in and out; ``coset_ntt(a, s)`` evaluates
at ``s omega_n^i``.  Numba radix-4 DIT kernels (:mod:`zkmb.algebra.kernels.ntt`), parallel over blocks
and butterflies.

Tables: one twiddle table (``n`` elements for the largest size used so far; smaller sizes use a prefix
of it) is kept for the life of the process, plus the coset power tables of the last few
``(shift, size)`` pairs (see :func:`clear_caches`).  The in-place variants overwrite their argument and
are what the prover should use on large vectors; the others return a new array.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from functools import lru_cache

import numpy as np

from ...errors import InvalidInput
from ..kernels import mont, numba_threads
from ..kernels import ntt as K
from ..params import R, to_limbs
from ..ref.ntt import coset_shift, domain_root, log2_size

FieldVec = np.ndarray

_lock = threading.Lock()
_twiddles = np.empty((0, 4), dtype=np.uint64)  # tw[m + j] = omega_{2m}^j, 2m <= len(tw)


def _mont(x: int) -> np.ndarray:
    """The Montgomery form of an Fr integer as a (4,) uint64 array."""
    return np.array(to_limbs((x << 256) % R), dtype=np.uint64)


def _geometric(first: int, ratio: int, count: int, out: np.ndarray, off: int = 0) -> None:
    """out[off + i] = first * ratio^i (Montgomery) for i < count, a power of two; parallel chunks."""
    nchunks = min(count, 64)
    chunk = count // nchunks
    step = pow(ratio, chunk, R)
    starts = np.empty((nchunks, 4), dtype=np.uint64)
    v = first % R
    for c in range(nchunks):
        starts[c] = _mont(v)
        v = v * step % R
    K.powers_chunked(starts, _mont(ratio), out, off, chunk)


def twiddles(logn: int) -> np.ndarray:
    """A twiddle table valid for sizes up to 2^logn (tw[m + j] = omega_{2m}^j, 2m <= 2^logn)."""
    global _twiddles
    n = 1 << logn
    tw = _twiddles
    if tw.shape[0] >= n:
        return tw
    with _lock:
        if _twiddles.shape[0] >= n:
            return _twiddles
        tw = np.empty((n, 4), dtype=np.uint64)
        tw[0] = _mont(1)
        if n >= 2:
            top = n // 2
            _geometric(1, domain_root(n), top, tw, top)
            K.twiddle_fold(tw, top)
        _twiddles = tw
        return tw


@lru_cache(maxsize=4)
def _coset_table(shift: int, logn: int, inverse: bool) -> np.ndarray:
    """[s^i] (forward) or [s^-i / n] (inverse) for i < 2^logn, Montgomery (internal: never handed out)."""
    n = 1 << logn
    out = np.empty((n, 4), dtype=np.uint64)
    if inverse:
        _geometric(pow(n, -1, R), pow(shift, -1, R), n, out)
    else:
        _geometric(1, shift, n, out)
    return out


def clear_caches() -> None:
    """Drop the cached twiddle and coset tables (they are rebuilt on demand)."""
    global _twiddles
    with _lock:
        _twiddles = np.empty((0, 4), dtype=np.uint64)
    _coset_table.cache_clear()
    _coset_lanes.cache_clear()


def _size(a: FieldVec, writeable: bool = False) -> int:
    """log2 of the length of an Fr vector; raises InvalidInput for a wrong type, shape or size."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint64 or a.ndim != 2 or a.shape[1] != 4:
        raise InvalidInput("expected an (n, 4) uint64 Fr vector")
    if writeable and not (a.flags.c_contiguous and a.flags.writeable):
        raise InvalidInput("in-place NTT needs a writeable C-contiguous array")
    return log2_size(a.shape[0])


# --------------------------------------------------------------------------- in place
# An out-of-place transform is a copy plus the in-place one: at 2^20 on one thread, copy + in-place
# bit-reversal swaps took ~11 ms against ~19 ms for a bit-reversing gather into a new array.


def _forward_inplace(a: FieldVec, logn: int) -> None:
    K.bitrev_inplace(a, logn)
    K.butterflies(a, twiddles(logn), logn)


def _inverse_unscaled_inplace(a: FieldVec, logn: int) -> None:
    """a <- n * intt(a): the forward transform of a[-i mod n]."""
    K.reverse_tail_inplace(a)
    _forward_inplace(a, logn)


def _threads(logn: int):
    """Transforms up to one cache block run on the calling thread only (see numba_threads)."""
    return numba_threads(1) if logn <= K.BLOCK_LOG else nullcontext()


def ntt_inplace(a: FieldVec) -> None:
    """a <- ntt(a)."""
    logn = _size(a, writeable=True)
    with _threads(logn):
        _forward_inplace(a, logn)


def _lanes() -> bool:
    return K.ifma.HAVE_IFMA


def intt_inplace(a: FieldVec) -> None:
    """a <- intt(a)."""
    logn = _size(a, writeable=True)
    with _threads(logn):
        if _lanes() and logn >= K.IFMA_MIN_LOG:  # the 1/n folds into the conversion from the lanes
            K.reverse_tail_inplace(a)
            K.bitrev_inplace(a, logn)
            K.butterflies(a, twiddles(logn), logn, out_scale=pow(1 << logn, -1, R))
            return
        _inverse_unscaled_inplace(a, logn)
        K.scale_inplace(a, _mont(pow(1 << logn, -1, R)))


@lru_cache(maxsize=8)
def _coset_lanes(shift: int, logn: int) -> np.ndarray:
    """The coset powers s^i in the order the stages see them (bit-reversed), as lane multipliers."""
    t = _coset_table(shift, logn, False).copy()
    K.bitrev_inplace(t, logn)
    return K.lane_table(t)


def coset_ntt_inplace(a: FieldVec, shift: int) -> None:
    """a <- coset_ntt(a, shift); shift is reduced mod r and must be non-zero."""
    logn = _size(a, writeable=True)
    with _threads(logn):
        if _lanes() and logn >= K.IFMA_MIN_LOG:  # the powers fold into the conversion to the lanes
            K.bitrev_inplace(a, logn)
            K.butterflies(a, twiddles(logn), logn, in_mul=_coset_lanes(coset_shift(shift), logn))
            return
        mont.fr_vec_mul(a, _coset_table(coset_shift(shift), logn, False), a)
        _forward_inplace(a, logn)


def coset_intt_inplace(a: FieldVec, shift: int) -> None:
    """a <- coset_intt(a, shift)."""
    logn = _size(a, writeable=True)
    with _threads(logn):
        table = _coset_table(coset_shift(shift), logn, True)
        _inverse_unscaled_inplace(a, logn)
        mont.fr_vec_mul(a, table, a)


# --------------------------------------------------------------------------- out of place


def _on_copy(inplace, a: FieldVec, *args) -> FieldVec:
    _size(a)
    out = np.array(a, order="C", copy=True)
    inplace(out, *args)
    return out


def ntt(a: FieldVec) -> FieldVec:
    """Evaluations of the polynomial with coefficients ``a`` at omega_n^i, i = 0..n-1 (new array)."""
    return _on_copy(ntt_inplace, a)


def intt(a: FieldVec) -> FieldVec:
    """Inverse of :func:`ntt`, including the 1/n factor (new array)."""
    return _on_copy(intt_inplace, a)


def coset_ntt(a: FieldVec, shift: int) -> FieldVec:
    """Evaluations at shift * omega_n^i (new array); shift is reduced mod r and must be non-zero."""
    return _on_copy(coset_ntt_inplace, a, shift)


def coset_intt(a: FieldVec, shift: int) -> FieldVec:
    """Inverse of :func:`coset_ntt` (new array)."""
    return _on_copy(coset_intt_inplace, a, shift)


__all__ = [
    "ntt",
    "intt",
    "coset_ntt",
    "coset_intt",
    "domain_root",
    "ntt_inplace",
    "intt_inplace",
    "coset_ntt_inplace",
    "coset_intt_inplace",
]
