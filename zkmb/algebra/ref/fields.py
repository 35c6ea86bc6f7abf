"""Fq and Fr vectors for the reference backend: plain lists of Python ints in [0, m)."""

from __future__ import annotations

from collections.abc import Iterable

from ...errors import InvalidInput
from ..params import P, R

FieldVec = list


def _check(xs: Iterable[int], m: int, name: str) -> list[int]:
    out = [int(x) for x in xs]
    for x in out:
        if not 0 <= x < m:
            raise InvalidInput(f"{name} element not below the modulus")
    return out


def fq_from_ints(xs: Iterable[int]) -> FieldVec:
    return _check(xs, P, "Fq")


def fr_from_ints(xs: Iterable[int]) -> FieldVec:
    return _check(xs, R, "Fr")


def fq_to_ints(a: FieldVec) -> list[int]:
    return list(a)


fr_to_ints = fq_to_ints


def _pairwise(a: FieldVec, b: FieldVec) -> zip:
    if len(a) != len(b):
        raise InvalidInput(f"length mismatch {len(a)} vs {len(b)}")
    return zip(a, b, strict=True)


def fq_add(a: FieldVec, b: FieldVec) -> FieldVec:
    return [(x + y) % P for x, y in _pairwise(a, b)]


def fq_sub(a: FieldVec, b: FieldVec) -> FieldVec:
    return [(x - y) % P for x, y in _pairwise(a, b)]


def fq_mul(a: FieldVec, b: FieldVec) -> FieldVec:
    return [x * y % P for x, y in _pairwise(a, b)]


def fq_neg(a: FieldVec) -> FieldVec:
    return [-x % P for x in a]


def fq_inv(a: FieldVec) -> FieldVec:
    return [pow(x, -1, P) if x else 0 for x in a]


def fr_add(a: FieldVec, b: FieldVec) -> FieldVec:
    return [(x + y) % R for x, y in _pairwise(a, b)]


def fr_sub(a: FieldVec, b: FieldVec) -> FieldVec:
    return [(x - y) % R for x, y in _pairwise(a, b)]


def fr_mul(a: FieldVec, b: FieldVec) -> FieldVec:
    return [x * y % R for x, y in _pairwise(a, b)]


def fr_neg(a: FieldVec) -> FieldVec:
    return [-x % R for x in a]


def fr_inv(a: FieldVec) -> FieldVec:
    return [pow(x, -1, R) if x else 0 for x in a]


__all__ = [n for n in dir() if n.startswith(("fq_", "fr_"))] + ["FieldVec"]
