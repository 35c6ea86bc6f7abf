"""Fq and Fr vectors for the fast backend: ``(n, 4)`` uint64 arrays in Montgomery form."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext

import numpy as np

from ...errors import InvalidInput
from ..kernels import mont, numba_threads

# Below this many elements a kernel runs on the calling thread only: waking numba's worker
# threads can cost milliseconds on a busy machine, far more than the work itself.
SERIAL_BELOW = 1 << 14


def _threads(n: int):
    return numba_threads(1) if n < SERIAL_BELOW else nullcontext()


FieldVec = np.ndarray


def _ints_to_limbs(xs: Iterable[int]) -> np.ndarray:
    xs = list(xs)
    try:
        raw = b"".join(int(x).to_bytes(32, "little") for x in xs)
    except OverflowError as e:  # negative or >= 2^256
        raise InvalidInput("field element out of range") from e
    return np.frombuffer(raw, dtype="<u8").reshape(len(xs), 4).astype(np.uint64)


def _limbs_to_ints(a: np.ndarray) -> list[int]:
    raw = np.ascontiguousarray(a, dtype="<u8").tobytes()
    return [int.from_bytes(raw[i : i + 32], "little") for i in range(0, len(raw), 32)]


def _from_ints(xs: Iterable[int], kernel, name: str) -> FieldVec:
    plain = _ints_to_limbs(xs)
    out = np.empty_like(plain)
    with _threads(plain.shape[0]):
        ok = kernel(plain, out)
    if not ok:
        raise InvalidInput(f"{name} element not below the modulus")
    return out


def fq_from_ints(xs: Iterable[int]) -> FieldVec:
    """Canonical integers in [0, p) -> Montgomery vector; raises InvalidInput otherwise."""
    return _from_ints(xs, mont.fq_vec_to_mont, "Fq")


def fr_from_ints(xs: Iterable[int]) -> FieldVec:
    """Canonical integers in [0, r) -> Montgomery vector; raises InvalidInput otherwise."""
    return _from_ints(xs, mont.fr_vec_to_mont, "Fr")


def fq_to_ints(a: FieldVec) -> list[int]:
    out = np.empty_like(a)
    with _threads(a.shape[0]):
        mont.fq_vec_from_mont(a, out)
    return _limbs_to_ints(out)


def fr_to_ints(a: FieldVec) -> list[int]:
    out = np.empty_like(a)
    with _threads(a.shape[0]):
        mont.fr_vec_from_mont(a, out)
    return _limbs_to_ints(out)


def fr_from_mont_limbs(a: FieldVec) -> np.ndarray:
    """Montgomery Fr vector -> plain (canonical) little-endian limbs, e.g. MSM scalars."""
    out = np.empty_like(a)
    with _threads(a.shape[0]):
        mont.fr_vec_from_mont(a, out)
    return out


def _binary(kernel):
    def op(a: FieldVec, b: FieldVec) -> FieldVec:
        if a.shape != b.shape:
            raise InvalidInput(f"shape mismatch {a.shape} vs {b.shape}")
        out = np.empty_like(a)
        with _threads(a.shape[0]):
            kernel(a, b, out)
        return out

    return op


def _unary(kernel):
    def op(a: FieldVec) -> FieldVec:
        out = np.empty_like(a)
        with _threads(a.shape[0]):
            kernel(a, out)
        return out

    return op


fq_add = _binary(mont.fq_vec_add)
fq_sub = _binary(mont.fq_vec_sub)
fq_mul = _binary(mont.fq_vec_mul)
fq_neg = _unary(mont.fq_vec_neg)
fq_inv = _unary(mont.fq_batch_inv)  # batch inversion; 0 maps to 0
fr_add = _binary(mont.fr_vec_add)
fr_sub = _binary(mont.fr_vec_sub)
fr_mul = _binary(mont.fr_vec_mul)
fr_neg = _unary(mont.fr_vec_neg)
fr_inv = _unary(mont.fr_batch_inv)  # batch inversion; 0 maps to 0

__all__ = [n for n in dir() if n.startswith(("fq_", "fr_"))] + ["FieldVec"]
