"""Numba kernels for the radix-2/4 number-theoretic transform over Fr (BN254 scalar field).

Vectors are ``(n, 4)`` uint64 arrays of Montgomery Fr elements, ``n = 2^logn``.  The transform is a
decimation-in-time Cooley-Tukey NTT: a bit-reversal permutation followed by ``logn`` butterfly
stages, done two stages at a time (radix 4) where possible.

Twiddle layout: ``tw[m + j] = omega_{2m}^j`` for ``m = 1, 2, 4, ...`` and ``0 <= j < m`` (``tw[0]``
is unused).  The stage with half-width ``m`` reads the contiguous slice ``tw[m:2m]``, and the table
for size ``n`` is a prefix of the table for any larger size.

Cache blocking: the first ``BLOCK_LOG`` stages only mix elements inside aligned blocks of
``2^BLOCK_LOG`` elements, so each block is finished in cache by one thread (``prange`` over blocks);
the remaining stages run over the whole array with ``prange`` over butterflies.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..params import R
from . import ifma
from .mont import fr_add, fr_mul, fr_sub, load, store

_jit = dict(cache=True, nogil=True)

BLOCK_LOG = 12  # 2^12 elements = 128 KiB per block (plus at most 128 KiB of twiddles) fits in L2


@njit(inline="always", **_jit)
def bitrev(i, logn):
    """Reverse the low ``logn`` bits of ``i`` (0 <= i < 2^logn, logn <= 32)."""
    x = i
    x = ((x >> 1) & 0x55555555) | ((x & 0x55555555) << 1)
    x = ((x >> 2) & 0x33333333) | ((x & 0x33333333) << 2)
    x = ((x >> 4) & 0x0F0F0F0F) | ((x & 0x0F0F0F0F) << 4)
    x = ((x >> 8) & 0x00FF00FF) | ((x & 0x00FF00FF) << 8)
    x = ((x >> 16) & 0x0000FFFF) | ((x & 0x0000FFFF) << 16)
    return x >> (32 - logn)


# --------------------------------------------------------------------------- butterflies


@njit(inline="always", **_jit)
def _r2(x, i, m, w):
    """(x[i], x[i+m]) <- (x[i] + w x[i+m], x[i] - w x[i+m])."""
    u = load(x, i)
    v = fr_mul(load(x, i + m), w)
    store(x, i, fr_add(u, v))
    store(x, i + m, fr_sub(u, v))


@njit(inline="always", **_jit)
def _r4(x, tw, i, j, m):
    """Stages m and 2m of the four elements x[i + k m], k = 0..3, where j = i mod m."""
    w1 = load(tw, m + j)
    w2 = load(tw, 2 * m + j)
    w3 = load(tw, 3 * m + j)
    x0 = load(x, i)
    x1 = fr_mul(load(x, i + m), w1)
    x2 = load(x, i + 2 * m)
    x3 = fr_mul(load(x, i + 3 * m), w1)
    y0 = fr_add(x0, x1)
    y1 = fr_sub(x0, x1)
    y2 = fr_mul(fr_add(x2, x3), w2)
    y3 = fr_mul(fr_sub(x2, x3), w3)
    store(x, i, fr_add(y0, y2))
    store(x, i + 2 * m, fr_sub(y0, y2))
    store(x, i + m, fr_add(y1, y3))
    store(x, i + 3 * m, fr_sub(y1, y3))


@njit(inline="always", **_jit)
def _r4_first(x, i, w4):
    """Stages 1 and 2 on x[i : i+4], whose twiddles are 1, 1 and w4 = omega_4 (one product)."""
    x0 = load(x, i)
    x1 = load(x, i + 1)
    x2 = load(x, i + 2)
    x3 = load(x, i + 3)
    y0 = fr_add(x0, x1)
    y1 = fr_sub(x0, x1)
    y2 = fr_add(x2, x3)
    y3 = fr_mul(fr_sub(x2, x3), w4)
    store(x, i, fr_add(y0, y2))
    store(x, i + 2, fr_sub(y0, y2))
    store(x, i + 1, fr_add(y1, y3))
    store(x, i + 3, fr_sub(y1, y3))


@njit(**_jit)
def _stages_block(x, tw, off, logb):
    """All stages m = 1 .. 2^(logb-1) on the block x[off : off + 2^logb] (sequential)."""
    size = 1 << logb
    s = 0
    if logb >= 2:
        w4 = load(tw, 3)
        for b in range(off, off + size, 4):
            _r4_first(x, b, w4)
        s = 2
    while s + 2 <= logb:
        m = 1 << s
        for b in range(off, off + size, 4 * m):
            for j in range(m):
                _r4(x, tw, b + j, j, m)
        s += 2
    if s < logb:
        m = 1 << s
        for b in range(off, off + size, 2 * m):
            for j in range(m):
                _r2(x, b + j, m, load(tw, m + j))


@njit(parallel=True, **_jit)
def _stages_blocks_par(x, tw, logb):
    """The first ``logb`` stages on every aligned block of 2^logb elements, blocks in parallel."""
    nblocks = x.shape[0] >> logb
    for k in prange(nblocks):
        _stages_block(x, tw, k << logb, logb)


@njit(parallel=True, **_jit)
def _stage_pair_par(x, tw, s):
    """Stages m = 2^s and 2m over the whole array, butterfly groups in parallel."""
    m = 1 << s
    for t in prange(x.shape[0] >> 2):
        j = t & (m - 1)
        i = ((t >> s) << (s + 2)) + j
        _r4(x, tw, i, j, m)


@njit(parallel=True, **_jit)
def _stage_par(x, tw, s):
    """Stage m = 2^s over the whole array, butterflies in parallel."""
    m = 1 << s
    for t in prange(x.shape[0] >> 1):
        j = t & (m - 1)
        i = ((t >> s) << (s + 1)) + j
        _r2(x, i, m, load(tw, m + j))


IFMA_MIN_LOG = 6
"""From this size on the stages run on AVX-512 IFMA where the CPU has it (:mod:`.ifma`)."""
_lane_tables: dict[tuple, np.ndarray] = {}


def _lanes_of(tw: np.ndarray, n: int) -> np.ndarray:
    """The lane vectors of tw[:n] (cached: the twiddle tables live for the whole process)."""
    key = ("tw", tw.__array_interface__["data"][0], n)
    twl = _lane_tables.get(key)
    if twl is None:
        twl = ifma.aligned_buffer(n // ifma.LANES * ifma.VEC)
        ifma.to_lanes_r(tw[:n], twl, _const(ifma.CIN_R))
        _lane_tables[key] = twl
    return twl


def _const(x: int) -> np.ndarray:
    key = ("const", x % R)
    c = _lane_tables.get(key)
    if c is None:
        c = _lane_tables[key] = ifma.lanes_const_r(x)
    return c


def _first3(tw: np.ndarray) -> np.ndarray:
    """The twiddles of stages 2 and 4 as :func:`.ifma.vfirst3_r` takes them (from tw[2:8])."""
    key = ("first3", tw.__array_interface__["data"][0])
    w = _lane_tables.get(key)
    if w is None:
        t = np.concatenate([tw[[2, 3] * 4], tw[[4, 5, 6, 7] * 2]])
        w = ifma.aligned_buffer(2 * ifma.VEC)
        ifma.to_lanes_r(t, w, _const(ifma.CIN_R))
        _lane_tables[key] = w
    return w


def lane_table(table: np.ndarray) -> np.ndarray:
    """A per-element multiplier for :func:`butterflies` (``in_mul``) from an (n, 4) Montgomery table in the
    order the stages see the elements (bit-reversed)."""
    out = ifma.aligned_buffer(table.shape[0] // ifma.LANES * ifma.VEC)
    ifma.to_lanes_r(table, out, _const(2**268))
    return out


def butterflies(
    x: np.ndarray, tw: np.ndarray, logn: int, in_mul: np.ndarray | None = None, out_scale: int = 1
) -> None:
    """Run all ``logn`` DIT stages in place on bit-reversed input ``x`` (natural-order output).

    With IFMA (``logn >= IFMA_MIN_LOG``) the stages run on lane vectors, eight butterflies at a time
    (the first three inside each vector, by lane shuffles); ``in_mul`` (a :func:`lane_table`) multiplies
    the input element-wise and ``out_scale`` (an Fr integer) the output, at no cost (they fold into the
    conversions to and from the lanes).  Without IFMA only the defaults are allowed."""
    if ifma.HAVE_IFMA and logn >= IFMA_MIN_LOG:
        buf = ifma.aligned_buffer((x.shape[0] // ifma.LANES) * ifma.VEC)
        ifma.to_lanes_r(x, buf, _const(ifma.CIN_R) if in_mul is None else in_mul)
        ifma.first3_lanes_r(buf, _first3(tw))
        twl = _lanes_of(tw, x.shape[0])
        for s in range(3, logn):
            ifma.stage_lanes_r(buf, twl, s)
        ifma.from_lanes_r(buf, x, _const(ifma.COUT_R * out_scale))
        return
    if in_mul is not None or out_scale != 1:
        raise ValueError("butterflies: in_mul and out_scale need the IFMA path")
    if logn <= BLOCK_LOG:
        _stages_block(x, tw, 0, logn)
        return
    _stages_blocks_par(x, tw, BLOCK_LOG)
    s = BLOCK_LOG
    while s + 2 <= logn:
        _stage_pair_par(x, tw, s)
        s += 2
    if s < logn:
        _stage_par(x, tw, s)


# --------------------------------------------------------------------------- permutations and scaling


@njit(parallel=True, **_jit)
def bitrev_inplace(x, logn):
    """x <- x[rev(.)] in place (swaps of each pair i < rev(i))."""
    for i in prange(x.shape[0]):
        k = bitrev(i, logn)
        if i < k:
            u = load(x, i)
            store(x, i, load(x, k))
            store(x, k, u)


@njit(parallel=True, **_jit)
def reverse_tail_inplace(x):
    """x[i] <-> x[n - i] for 0 < i < n/2: the index map i -> -i mod n."""
    n = x.shape[0]
    for i in prange(1, (n + 1) >> 1):
        u = load(x, i)
        store(x, i, load(x, n - i))
        store(x, n - i, u)


@njit(parallel=True, **_jit)
def scale_inplace(x, c):
    """x[i] <- x[i] * c for a Montgomery element ``c`` given as a (4,) array."""
    cc = (c[0], c[1], c[2], c[3])
    for i in prange(x.shape[0]):
        store(x, i, fr_mul(load(x, i), cc))


# --------------------------------------------------------------------------- tables


@njit(parallel=True, **_jit)
def powers_chunked(starts, step, out, off, chunk):
    """out[off + c*chunk + i] = starts[c] * step^i for i < chunk: geometric sequences in parallel.

    With ``starts[c] = g^(c*chunk)`` and ``step = g`` this writes g^0, g^1, ... (Montgomery)."""
    st = (step[0], step[1], step[2], step[3])
    for c in prange(starts.shape[0]):
        v = load(starts, c)
        base = off + c * chunk
        for i in range(chunk):
            store(out, base + i, v)
            v = fr_mul(v, st)


@njit(**_jit)
def twiddle_fold(tw, top):
    """Fill tw[m + j] = tw[2m + 2j] for m = top/2, top/4, ..., 1 (given tw[top : 2 top])."""
    m = top >> 1
    while m >= 1:
        for j in range(m):
            store(tw, m + j, load(tw, 2 * m + 2 * j))
        m >>= 1
