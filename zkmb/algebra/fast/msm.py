"""Multi-scalar multiplication for the fast backend (kernels in :mod:`zkmb.algebra.kernels.msm`).

``msm_g1(points, scalars)`` / ``msm_g2`` take a point vector of this backend and an Fr vector
(Montgomery ``(n, 4)``, as from ``fr_from_ints``) and return the sum as a vector of length 1.  The
points are not validated here (validate untrusted points once, e.g. with ``g1_validate``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numba
import numpy as np

from ...errors import InvalidInput
from ..kernels import mont
from ..kernels import msm as M
from ..kernels.ifma import HAVE_IFMA
from ..params import R, to_limbs
from .curves import _G1, _G2, G1Vec, G2Vec, _Group
from .fields import FieldVec, fr_from_mont_limbs

# Window choice: minimise windows * (ADD_COST * additions + BUCKET_COST * 2^(c-1)), in units of one Fq
# product as measured per operation (overheads included): a batch-affine bucket addition costs about 9
# (G1) and a bucket of the running-sum reduction (a mixed plus a full Jacobian addition) about 32 (G1)
# or 39 (G2, relatively dearer Jacobian formulas).  A window of m digits spread over K buckets needs
# about m - K (1 - e^(-m/K)) additions.  On IFMA (kernels/ifma.py) a bucket addition costs about 5:
# PAD-3's H MSM (65,536 points) 155.7 ms with c = 13 (cost 9), 145.9 ms with c = 12 (5), 144.9 ms with
# c = 11 (4), one thread, medians of 5.
ADD_COST = 5 if HAVE_IFMA else 9
BUCKET_COST = {False: 32, True: 39}
MAX_WINDOW = 16


def window_bits(m: int, g2: bool = False) -> int:
    """Pippenger window width for m scalars (1 when there are none)."""
    if m == 0:
        return 1

    def cost(c: int) -> float:
        k = 1 << (c - 1)
        adds = m - k * -math.expm1(-m / k)
        return M.num_windows(c) * (ADD_COST * adds + BUCKET_COST[g2] * k)

    return min(range(2, MAX_WINDOW + 1), key=cost)


def _thread_count(threads: int | None) -> int:
    if threads is None:
        return numba.get_num_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise InvalidInput(f"threads must be a positive int, got {threads!r}")
    return min(threads, numba.config.NUMBA_NUM_THREADS)


@contextlib.contextmanager
def _num_threads(n: int) -> Iterator[None]:
    prev = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(prev)


SERIAL_BELOW = 1024


def _split(plain: np.ndarray, n_points: int, threads: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(indices with scalar 1, indices with another nonzero scalar, threads to use) for contiguous plain
    scalar limbs of an MSM over n_points points."""
    ones, others = M.classify(plain)
    nt = _thread_count(threads)
    if n_points < SERIAL_BELOW:  # waking worker threads costs more than small MSMs take
        nt = 1
    return ones, others, nt


def _nworkers(nt: int, nwin: int, m: int, n_ones: int) -> int:
    """Workers of one MSM call: one per window (at most nt) when m scalars need windows; for scalar-1
    points alone, nt from 4096 points on."""
    if m:
        return min(nt, nwin)
    return nt if n_ones >= 4096 else 1


def _run(g: _Group, points: np.ndarray, plain: np.ndarray, ones: np.ndarray, others: np.ndarray, nt: int):
    m = others.shape[0]
    c = window_bits(m, g2=g is _G2)
    nwin = M.num_windows(c) if m else 0
    nworkers = _nworkers(nt, nwin, m, ones.shape[0])
    digits = np.empty((nwin, m), dtype=np.int32)
    parts = g.empty(nwin + nworkers, 3)
    out = g.empty(1)
    with _num_threads(nt):
        if m:
            M.signed_digits(plain, others, c, nwin, digits)
        M.msm_run(points, others, digits, c, ones, nworkers, parts)
    M.msm_combine(parts, nwin, c, out)
    return out


def _msm(g: _Group, points: object, scalars: object, threads: int | None) -> np.ndarray:
    points = g.vec(points)
    if not (isinstance(scalars, np.ndarray) and scalars.dtype == np.uint64 and scalars.ndim == 2):
        raise InvalidInput("MSM scalars must be an Fr vector (uint64 array (n, 4))")
    if scalars.shape != (points.shape[0], 4):
        raise InvalidInput(f"MSM length mismatch: {points.shape[0]} points, scalars {scalars.shape}")
    plain = fr_from_mont_limbs(np.ascontiguousarray(scalars))
    if (plain[:, 3] >> np.uint64(62)).any():  # the digit recoding needs k < 2^254; canonical Fr is < r
        raise InvalidInput("MSM scalar not a canonical Fr element")
    return _run(g, points, plain, *_split(plain, points.shape[0], threads))


def plain_scalars(scalars: FieldVec) -> np.ndarray:
    """Montgomery Fr limbs -> the plain limbs :func:`msm_plain` takes (convert a witness once for
    several MSMs); InvalidInput unless every element is canonical."""
    if not (isinstance(scalars, np.ndarray) and scalars.dtype == np.uint64 and scalars.ndim == 2):
        raise InvalidInput("MSM scalars must be an Fr vector (uint64 array (n, 4))")
    plain = fr_from_mont_limbs(np.ascontiguousarray(scalars))
    if (plain[:, 3] >> np.uint64(62)).any():  # the digit recoding needs k < 2^254; canonical Fr is < r
        raise InvalidInput("MSM scalar not a canonical Fr element")
    return plain


def msm_plain(points: np.ndarray, plain: np.ndarray, threads: int | None = None) -> np.ndarray:
    """sum_i [k_i] points_i (G1 or G2 by the points' shape) for plain scalar limbs from
    :func:`plain_scalars` (rows of both may be slices: a chunk of a larger MSM)."""
    g = _G1 if isinstance(points, np.ndarray) and points.ndim == 3 else _G2
    points = g.vec(points)
    if plain.shape != (points.shape[0], 4):
        raise InvalidInput(f"MSM length mismatch: {points.shape[0]} points, scalars {plain.shape}")
    plain = np.ascontiguousarray(plain)
    return _run(g, points, plain, *_split(plain, points.shape[0], threads))


def msm_g1(points: G1Vec, scalars: FieldVec, threads: int | None = None) -> G1Vec:
    """sum_i [scalars_i] points_i as a G1 vector of length 1.

    threads limits the numba threads used (default: numba's current setting)."""
    return _msm(_G1, points, scalars, threads)


def msm_g2(points: G2Vec, scalars: FieldVec, threads: int | None = None) -> G2Vec:
    """sum_i [scalars_i] points_i as a G2 vector of length 1 (threads as for msm_g1)."""
    return _msm(_G2, points, scalars, threads)


def sum_points(v: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Sum of a (checked, contiguous) point vector as a vector of length 1 (batch-affine tree)."""
    g = _G1 if v.ndim == 3 else _G2
    n = v.shape[0]
    empty = np.empty(0, dtype=np.int64)
    return _run(
        g, v, np.empty((0, 4), np.uint64), np.arange(n, dtype=np.int64), empty, _thread_count(threads)
    )


# --------------------------------------------------------------------------- benchmark inputs

_R_LIMBS = [np.uint64(x) for x in to_limbs(R)]


def random_fr_limbs(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniform elements of [0, r) as plain limbs (n, 4) (rejection sampling on 254-bit values)."""
    out = np.empty((n, 4), dtype=np.uint64)
    filled = 0
    while filled < n:
        k = 2 * (n - filled) + 16
        a = np.frombuffer(rng.bytes(32 * k), dtype="<u8").reshape(k, 4).astype(np.uint64)
        a[:, 3] &= np.uint64((1 << 62) - 1)
        lt = np.zeros(k, dtype=bool)
        eq = np.ones(k, dtype=bool)
        for j in range(3, -1, -1):
            lt |= eq & (a[:, j] < _R_LIMBS[j])
            eq &= a[:, j] == _R_LIMBS[j]
        a = a[lt][: n - filled]
        out[filled : filled + a.shape[0]] = a
        filled += a.shape[0]
    return out


def _bench_inputs(g: _Group, n: int, seed: int, small_fraction: float) -> tuple[np.ndarray, FieldVec]:
    if n < 0 or not 0.0 <= small_fraction <= 1.0:
        raise InvalidInput("need n >= 0 and 0 <= small_fraction <= 1")
    rng = np.random.default_rng(seed)
    points = g.mul_generator_limbs(random_fr_limbs(rng, n))
    k = random_fr_limbs(rng, n)
    small = rng.random(n) < small_fraction
    k[small] = 0
    k[small, 0] = rng.integers(0, 2, size=int(small.sum()), dtype=np.uint64)
    scalars = np.empty_like(k)
    mont.fr_vec_to_mont(k, scalars)
    return points, scalars


def bench_inputs_g1(n: int, seed: int = 0, small_fraction: float = 0.0) -> tuple[G1Vec, FieldVec]:
    """n random G1 points (random multiples of the generator, fixed-base comb) and n random Fr scalars
    (Montgomery), of which a fraction small_fraction (in expectation) is drawn from {0, 1}."""
    return _bench_inputs(_G1, n, seed, small_fraction)


def bench_inputs_g2(n: int, seed: int = 0, small_fraction: float = 0.0) -> tuple[G2Vec, FieldVec]:
    """As bench_inputs_g1 for G2."""
    return _bench_inputs(_G2, n, seed, small_fraction)


# --------------------------------------------------------------------------- window tables (fixed bases)


class WindowTable:
    """The points of a fixed-base MSM with their window multiples ``[2^(c w)] P_i`` (w < nwin), so
    that :func:`msm_table_plain` sums all windows in one bucket set: no per-window bucket reduction and
    no doublings, for nwin times the memory of the points."""

    def __init__(self, g: _Group, table: np.ndarray, n: int, c: int):
        self.g, self.table, self.n, self.c = g, table, n, c
        self.nwin = M.num_windows(c)
        if table.shape[0] != self.nwin * n:
            raise InvalidInput(f"window table has {table.shape[0]} rows, expected {self.nwin} x {n}")

    @property
    def points(self) -> np.ndarray:
        """The points themselves (window 0)."""
        return self.table[: self.n]

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes)


def table_window_bits(n: int, g2: bool = False, workers: int = 1) -> int:
    """Window width for a table over n points whose scalars are (mostly) full-size: minimise
    windows * ADD_COST * n + workers * BUCKET_COST * 2^(c-1)."""
    if n <= 0:
        return 2

    def cost(c: int) -> float:
        return M.num_windows(c) * ADD_COST * n + workers * BUCKET_COST[g2] * (1 << (c - 1))

    return min(range(4, MAX_WINDOW + 1), key=cost)


def window_table_steps(
    points: np.ndarray, c: int | None = None, threads: int | None = None
) -> Iterator[WindowTable | None]:
    """Build the window table of a (checked) point vector (G1 or G2 by its shape) one window level per
    step (tens of milliseconds on one core for a query key): yields None after each level and the
    table last, so a scheduler can run other work between levels."""
    g = _G1 if isinstance(points, np.ndarray) and points.ndim == 3 else _G2
    points = g.vec(points)
    n = points.shape[0]
    c = table_window_bits(n, g is _G2) if c is None else int(c)
    if not 2 <= c <= MAX_WINDOW:
        raise InvalidInput(f"window width must be 2..{MAX_WINDOW}, got {c}")
    nwin = M.num_windows(c)
    table = g.empty(nwin * n)
    table[:n] = points
    nt = _thread_count(threads)
    for w in range(1, nwin):
        with _num_threads(nt):
            M.window_table_level(table[(w - 1) * n : w * n], c, table[w * n : (w + 1) * n])
        yield None
    yield WindowTable(g, table, n, c)


def window_table(points: np.ndarray, c: int | None = None, threads: int | None = None) -> WindowTable:
    """The window table of a (checked) point vector, G1 or G2 by its shape."""
    *_, wt = window_table_steps(points, c, threads)
    return wt


def msm_table_plain(
    wt: WindowTable, plain: np.ndarray, lo: int = 0, threads: int | None = None
) -> np.ndarray:
    """sum_j [k_j] P_(lo + j) for plain scalar limbs k (as for :func:`msm_plain`), on a window table:
    the same sum as ``msm_plain(wt.points[lo : lo + len(k)], k)``."""
    if not (isinstance(plain, np.ndarray) and plain.dtype == np.uint64 and plain.ndim == 2):
        raise InvalidInput("table MSM scalars must be plain limbs (uint64 array (n, 4))")
    m_all = plain.shape[0]
    if plain.shape[1] != 4 or not 0 <= lo <= lo + m_all <= wt.n:
        raise InvalidInput(f"table MSM: {m_all} scalars at offset {lo} for a table of {wt.n} points")
    plain = np.ascontiguousarray(plain)
    ones, others, nt = _split(plain, m_all, threads)
    c, nwin = wt.c, wt.nwin
    m = others.shape[0]
    nworkers = _nworkers(nt, nwin, m, ones.shape[0])
    digits = np.empty((nwin if m else 0, m), dtype=np.int32)
    parts = wt.g.empty(2 * nworkers, 3)
    out = wt.g.empty(1)
    with _num_threads(nt):
        if m:
            M.signed_digits(plain, others, c, nwin, digits)
        M.msm_table_run(wt.table, wt.n, lo, others, digits, c, ones, nworkers, parts)
    M.msm_combine(parts, 0, c, out)
    return out


__all__ = [
    "msm_g1",
    "msm_g2",
    "msm_plain",
    "msm_table_plain",
    "plain_scalars",
    "window_table",
    "window_table_steps",
    "WindowTable",
    "bench_inputs_g1",
    "bench_inputs_g2",
]
