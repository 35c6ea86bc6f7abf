"""Number-theoretic transform over Fr for the reference backend (lists of Python ints).

Domain of size ``n = 2^k`` (``k <= 28``): ``omega_n = FR_ROOT_OF_UNITY^(2^(28-k))``, a primitive
``n``-th root of unity.  ``ntt(a)[i] = sum_j a[j] omega_n^(ij)`` (natural order in and out);
``coset_ntt(a, s)[i] = sum_j a[j] (s omega_n^i)^j``.  A plain recursive radix-2 FFT: slow and obviously
correct, the oracle for the fast backend.  :func:`domain_root` and :func:`log2_size` are shared with it.
"""

from __future__ import annotations

from ...errors import InvalidInput
from ..params import FR_ROOT_OF_UNITY, FR_TWO_ADICITY, R

FieldVec = list


def log2_size(n: int) -> int:
    """k with n = 2^k; raises InvalidInput unless n is a power of two with k <= FR_TWO_ADICITY."""
    if not isinstance(n, int) or n < 1 or n & (n - 1):
        raise InvalidInput(f"NTT size must be a power of two, got {n!r}")
    k = n.bit_length() - 1
    if k > FR_TWO_ADICITY:
        raise InvalidInput(f"NTT size 2^{k} exceeds the 2-adicity 2^{FR_TWO_ADICITY} of Fr")
    return k


def domain_root(n: int) -> int:
    """omega_n, the primitive n-th root of unity that defines the size-n domain."""
    return pow(FR_ROOT_OF_UNITY, 1 << (FR_TWO_ADICITY - log2_size(n)), R)


def coset_shift(shift: int) -> int:
    """The coset shift reduced mod r; raises InvalidInput for 0 (no coset, no inverse)."""
    if not isinstance(shift, int):
        raise InvalidInput(f"coset shift must be an int, got {type(shift).__name__}")
    s = shift % R
    if s == 0:
        raise InvalidInput("coset shift must be non-zero mod r")
    return s


def _fft(a: list[int], w: int) -> list[int]:
    n = len(a)
    if n == 1:
        return list(a)
    w2 = w * w % R
    even = _fft(a[0::2], w2)
    odd = _fft(a[1::2], w2)
    h = n // 2
    out = [0] * n
    t = 1
    for k in range(h):
        v = odd[k] * t % R
        out[k] = (even[k] + v) % R
        out[k + h] = (even[k] - v) % R
        t = t * w % R
    return out


def _scaled(a: list[int], s: int) -> list[int]:
    """[a[i] * s^i]."""
    out = []
    t = 1
    for x in a:
        out.append(x * t % R)
        t = t * s % R
    return out


def ntt(a: FieldVec) -> FieldVec:
    """Evaluations of the polynomial with coefficients ``a`` at omega_n^i, i = 0..n-1."""
    return _fft(list(a), domain_root(len(a)))


def intt(a: FieldVec) -> FieldVec:
    """Inverse of :func:`ntt` (coefficients from evaluations), including the 1/n factor."""
    n = len(a)
    w_inv = pow(domain_root(n), -1, R)
    n_inv = pow(n, -1, R)
    return [x * n_inv % R for x in _fft(list(a), w_inv)]


def coset_ntt(a: FieldVec, shift: int) -> FieldVec:
    """Evaluations at shift * omega_n^i."""
    return ntt(_scaled(list(a), coset_shift(shift)))


def coset_intt(a: FieldVec, shift: int) -> FieldVec:
    """Inverse of :func:`coset_ntt`."""
    return _scaled(intt(a), pow(coset_shift(shift), -1, R))


def ntt_inplace(a: FieldVec) -> None:
    """a <- ntt(a)."""
    a[:] = ntt(a)


def intt_inplace(a: FieldVec) -> None:
    """a <- intt(a)."""
    a[:] = intt(a)


def coset_ntt_inplace(a: FieldVec, shift: int) -> None:
    """a <- coset_ntt(a, shift)."""
    a[:] = coset_ntt(a, shift)


def coset_intt_inplace(a: FieldVec, shift: int) -> None:
    """a <- coset_intt(a, shift)."""
    a[:] = coset_intt(a, shift)


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
