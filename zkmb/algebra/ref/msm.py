"""Multi-scalar multiplication for the reference backend: the plain sum of scalar multiplications."""

from __future__ import annotations

from functools import reduce

import py_ecc.optimized_bn128 as bn

from ...errors import InvalidInput
from ..params import R
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


def plain_scalars(scalars: FieldVec) -> list[int]:
    """The scalars as the plain integers :func:`msm_plain` takes (the fast backend converts from
    Montgomery form once for several MSMs; here they already are plain); InvalidInput unless in [0, r)."""
    out = [int(k) for k in scalars]
    if any(not 0 <= k < R for k in out):
        raise InvalidInput("MSM scalar not a canonical Fr element")
    return out


def msm_plain(points: list, plain: list[int], threads: int | None = None) -> list:
    """sum_i [k_i] points_i (G1 or G2 by the points' form) for scalars from :func:`plain_scalars`."""
    first = next((p for p in points if p is not None), None)
    g = _G2 if first is not None and isinstance(first[0], tuple | list) else _G1
    return _msm(g, points, plain, threads)


class WindowTable:
    """The reference form of a window table: the points themselves (one API with the fast backend,
    whose table also holds their window multiples)."""

    def __init__(self, points: list, c: int):
        self.points, self.n, self.c = list(points), len(points), c


def window_table(points: list, c: int | None = None, threads: int | None = None) -> WindowTable:
    """A window table over points (the reference keeps only the points)."""
    if c is not None and not 2 <= int(c) <= 16:
        raise InvalidInput(f"window width must be 2..16, got {c}")
    return WindowTable(points, 13 if c is None else int(c))


def window_table_steps(points: list, c: int | None = None, threads: int | None = None):
    """:func:`window_table` as steps (the reference has no levels to build: it yields the table)."""
    yield window_table(points, c, threads)


def msm_table_plain(wt: WindowTable, plain: list[int], lo: int = 0, threads: int | None = None) -> list:
    """sum_j [k_j] P_(lo + j) over a window table's points (as :func:`msm_plain` on that slice)."""
    if not 0 <= lo <= lo + len(plain) <= wt.n:
        raise InvalidInput(f"table MSM: {len(plain)} scalars at offset {lo} for a table of {wt.n} points")
    return msm_plain(wt.points[lo : lo + len(plain)], plain, threads)


__all__ = [
    "msm_g1",
    "msm_g2",
    "msm_plain",
    "msm_table_plain",
    "plain_scalars",
    "window_table",
    "window_table_steps",
    "WindowTable",
]
