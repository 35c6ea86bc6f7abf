"""Multi-scalar multiplication for the reference backend: the plain sum of scalar multiplications."""

from __future__ import annotations

from functools import reduce

import py_ecc.optimized_bn128 as bn

from ...errors import InvalidInput
from .curves import _G1, _G2, G1Vec, G2Vec, _Group
from .fields import FieldVec


def _msm(g: _Group, points: list, scalars: FieldVec, threads: int | None) -> list:
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InvalidInput(f"threads must be a positive int, got {threads!r}")
    if len(points) != len(scalars):
        raise InvalidInput(f"MSM length mismatch: {len(points)} points, {len(scalars)} scalars")
    terms = (bn.multiply(g.pe(p), int(k)) for p, k in zip(points, scalars, strict=True) if k)
    return [g.un(reduce(bn.add, terms, g.pe(None)))]


def msm_g1(points: G1Vec, scalars: FieldVec, threads: int | None = None) -> G1Vec:
    """sum_i [scalars_i] points_i as a G1 vector of length 1 (scalars: an Fr vector; threads, checked
    as in the fast backend, has no effect)."""
    return _msm(_G1, points, scalars, threads)


def msm_g2(points: G2Vec, scalars: FieldVec, threads: int | None = None) -> G2Vec:
    """sum_i [scalars_i] points_i as a G2 vector of length 1 (scalars: an Fr vector; threads, checked
    as in the fast backend, has no effect)."""
    return _msm(_G2, points, scalars, threads)


__all__ = ["msm_g1", "msm_g2"]
