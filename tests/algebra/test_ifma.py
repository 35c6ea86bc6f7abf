"""The AVX-512 IFMA kernels (zkmb/algebra/kernels/ifma.py): the 8-lane Montgomery product, sum and
differences against Python integers, and the G1 and G2 tree reductions against the scalar one and
py_ecc, special cases included (infinity, P + P, P + (-P), odd and empty groups).  The MSM suite
(test_msm.py) runs on the IFMA reduction wherever the CPU has it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from numba import njit

from zkmb.algebra import fast
from zkmb.algebra.kernels import curve, ifma
from zkmb.algebra.params import P, R

from .curve_oracle import G1, G2

pytestmark = pytest.mark.skipif(
    not ifma._has_feature(), reason="this CPU has no AVX-512 IFMA (the scalar kernels run instead)"
)

R260 = 1 << 260


def to_lanes(values: list[int]) -> np.ndarray:
    buf = ifma.aligned_buffer(ifma.VEC)
    for lane, v in enumerate(values):
        for k in range(ifma.LIMBS):
            buf[8 * k + lane] = (v >> (52 * k)) & ((1 << 52) - 1)
    return buf


def from_lanes(buf: np.ndarray) -> list[int]:
    return [sum(int(buf[8 * k + lane]) << (52 * k) for k in range(ifma.LIMBS)) for lane in range(8)]


def _on_lanes(op):
    """A compiled ``f(a, b)`` returning a fresh lane vector ``op(a, b)`` (op: one of the intrinsics)."""

    @njit
    def f(a, b):
        out = ifma.aligned_buffer(40)
        op(out, 0, a, 0, b, 0)
        return out

    return f


_mul, _sub2, _sub6, _sub8, _add = (
    _on_lanes(op) for op in (ifma.vmul, ifma.vsub2, ifma.vsub6, ifma.vsub8, ifma.vadd)
)


def test_lane_product_and_difference_match_integers():
    rng = random.Random(5)
    edge = [0, 1, P - 1, P, P + 1, 2 * P - 1]
    for trial in range(40):
        a = [rng.randrange(2 * P) for _ in range(8)]
        b = [rng.randrange(2 * P) for _ in range(8)]
        if trial == 0:
            a[:6], b[:6] = edge, edge[::-1]
        got = from_lanes(_mul(to_lanes(a), to_lanes(b)))
        for x, y, g in zip(a, b, got, strict=True):
            assert g < 2 * P and g % P == x * y * pow(R260, -1, P) % P
        big = [rng.randrange(6 * P) for _ in range(8)]  # a product input may be lazily reduced
        got = from_lanes(_mul(to_lanes(big), to_lanes(a)))
        assert all(
            g < 2 * P and g % P == x * y * pow(R260, -1, P) % P for x, y, g in zip(big, a, got, strict=True)
        )
        d2 = from_lanes(_sub2(to_lanes(a), to_lanes(b)))
        assert d2 == [x + 2 * P - y for x, y in zip(a, b, strict=True)]
        d6 = from_lanes(_sub6(to_lanes(a), to_lanes(big)))
        assert d6 == [x + 6 * P - y for x, y in zip(a, big, strict=True)]
        bigger = [rng.randrange(8 * P) for _ in range(8)]
        assert from_lanes(_sub8(to_lanes(a), to_lanes(bigger))) == [
            x + 8 * P - y for x, y in zip(a, bigger, strict=True)
        ]
        assert from_lanes(_add(to_lanes(a), to_lanes(big))) == [x + y for x, y in zip(a, big, strict=True)]


def _groups(rng: random.Random, pts: np.ndarray, sizes: list[int]):
    counts = np.array(sizes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    src = pts[[rng.randrange(pts.shape[0]) for _ in range(int(counts.sum()))]].copy()
    return src, offsets, counts


def _reduce_both(src, offsets, counts):
    n = src.shape[0]
    pre = np.zeros((n // 2 + 1, 4), dtype=np.uint64)
    c1, c2 = counts.copy(), counts.copy()
    r1 = curve.tree_reduce(src.copy(), np.zeros_like(src), pre, pre.copy(), offsets, c1, len(counts))
    r2 = ifma.tree_reduce_v(src.copy(), np.zeros_like(src), offsets, c2, len(counts))
    assert (c1 == c2).all() and (c1 <= 1).all()
    inf = np.zeros(src.shape[1:], np.uint64)
    sums1 = [r1[offsets[g]] if c1[g] else inf for g in range(len(counts))]
    sums2 = [r2[offsets[g]] if c2[g] else inf for g in range(len(counts))]
    return sums1, sums2


@njit
def _gather_scatter(src, pos, ip, stride, coff, dst, n):
    buf = ifma.aligned_buffer(ifma.VEC)
    ifma.vgather(buf, 0, src, pos, ip, stride, coff)
    ifma.vscatter(dst, pos, ip, stride, coff, n, buf, 0)
    return buf


def test_lane_gather_and_scatter_move_coordinates():
    """vgather takes one Fq coordinate of eight points (any positions, G2 strides) into the lanes;
    vscatter writes the first n lanes back to those points and touches nothing else."""
    rng = np.random.default_rng(5)
    pts, _ = fast.bench_inputs_g2(20, seed=6)
    pos = np.array([3, 17, 0, 9, 9, 12, 5, 19, 1], dtype=np.int64)
    for coff in (0, 4, 8, 12):
        dst = rng.integers(0, 1 << 63, size=pts.shape, dtype=np.uint64)
        before = dst.copy()
        buf = _gather_scatter(pts, pos, 1, 16, coff, dst, 5)
        flat = pts.reshape(20, 16)
        want = [int.from_bytes(flat[p, coff : coff + 4].tobytes(), "little") for p in pos[1:9]]
        assert from_lanes(buf) == want
        changed = sorted({int(p) for p in pos[1:6]})
        dflat, bflat = dst.reshape(20, 16), before.reshape(20, 16)
        for p in range(20):
            cols = range(coff, coff + 4)
            for c in range(16):
                expect = flat[p, c] if p in changed and c in cols else bflat[p, c]
                assert dflat[p, c] == expect, (p, c)


@pytest.fixture(params=["g1", "g2"])
def grp(request):
    """(oracle, random points, to_affine, from_affine) of one group."""
    if request.param == "g1":
        return G1, fast.bench_inputs_g1, fast.g1_to_affine, fast.g1_from_affine
    return G2, fast.bench_inputs_g2, fast.g2_to_affine, fast.g2_from_affine


def test_tree_reduction_matches_the_scalar_one_and_py_ecc(grp):
    oracle, inputs, to_affine, _ = grp
    rng = random.Random(9)
    pts, _ = inputs(64, seed=3)
    sizes = [rng.randrange(0, 40) for _ in range(200)] + [0, 1, 2, 3, 9000]  # one group over a block
    src, offsets, counts = _groups(rng, pts, sizes)
    s1, s2 = _reduce_both(src, offsets, counts)
    assert all((a == b).all() for a, b in zip(s1, s2, strict=True))
    # a few groups summed by py_ecc
    for g in [0, 1, 7, len(sizes) - 2]:
        o, c = int(offsets[g]), int(counts[g])
        want = None
        for p in to_affine(src[o : o + c]):
            want = oracle.add(want, p)
        assert to_affine(s2[g][None])[0] == want


def test_tree_reduction_special_cases(grp):
    """Infinity, P + P and P + (-P) never reach the lanes; they match py_ecc exactly."""
    oracle, inputs, to_affine, from_affine = grp
    pts, _ = inputs(8, seed=4)
    p, q = pts[0], pts[1]
    neg_p = from_affine([oracle.neg(to_affine(p[None])[0])])[0]
    inf = np.zeros(p.shape, dtype=np.uint64)
    groups = [
        [p, p],  # doubling
        [p, neg_p],  # cancels
        [inf, q],
        [q, inf],
        [inf, inf],
        [p, p, p],  # 2P, then 2P + P
        [p, neg_p, q, q, p, q, neg_p],
        [q],
        [],
    ]
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    src = np.array([pt for g in groups for pt in g], dtype=np.uint64).reshape(-1, *p.shape)
    s1, s2 = _reduce_both(src, offsets, counts)
    for g, (a, b) in enumerate(zip(s1, s2, strict=True)):
        want = None
        for pt in to_affine(np.array(groups[g], dtype=np.uint64).reshape(-1, *p.shape)):
            want = oracle.add(want, pt)
        assert to_affine(b[None])[0] == want, g
        assert (a == b).all(), g


def test_a_corrupted_lane_is_caught(grp):
    """The comparison above can fail: one flipped limb bit in a lane changes the sum."""
    _, inputs, _, _ = grp
    rng = random.Random(2)
    pts, _ = inputs(16, seed=5)
    src, offsets, counts = _groups(rng, pts, [16])
    ok = ifma.tree_reduce_v(src.copy(), np.zeros_like(src), offsets, counts.copy(), 1)
    bad_src = src.copy()
    bad_src[3, 1].reshape(-1)[0] ^= np.uint64(1 << 7)
    bad = ifma.tree_reduce_v(bad_src, np.zeros_like(src), offsets, counts.copy(), 1)
    assert not (ok[0] == bad[0]).all()


@pytest.mark.parametrize("logn", [6, 7, 9, 12])
def test_ntt_stages_on_lanes_match_the_scalar_ones(logn, monkeypatch):
    """The NTT's stages run on lane vectors (kernels/ntt.py::butterflies: the first three by lane
    shuffles); forward, inverse and coset transforms equal the scalar kernels' exactly, and a flipped
    bit changes the result."""
    rng = random.Random(logn)
    a = fast.fr_from_ints([rng.randrange(R) for _ in range(1 << logn)])
    got_f, got_i, got_c = a.copy(), a.copy(), a.copy()
    fast.ntt_inplace(got_f)
    fast.intt_inplace(got_i)  # the 1/n folded into the lanes' output
    fast.coset_ntt_inplace(got_c, 7)  # the coset powers folded into the lanes' input
    monkeypatch.setattr(ifma, "HAVE_IFMA", False)
    want_f, want_i, want_c = a.copy(), a.copy(), a.copy()
    fast.ntt_inplace(want_f)
    fast.intt_inplace(want_i)
    fast.coset_ntt_inplace(want_c, 7)
    assert (got_f == want_f).all() and (got_i == want_i).all() and (got_c == want_c).all()
    b = a.copy()
    b[5, 0] ^= np.uint64(1)
    fast.ntt_inplace(b)
    assert not (b == want_f).all()


@pytest.mark.parametrize("kind", ["random", "dups", "smallints", "buckets"])
@pytest.mark.parametrize("c", [11, 13])
def test_segmented_bucket_reduction(grp, kind, c):
    """Window widths from 11 on reduce their buckets as 128 segments advancing by batch-affine steps
    (kernels/msm.py::_weighted_sum_segments): table MSMs against the discrete logs, with repeated
    points (P + P, P + (-P) between running sums), small scalars (most buckets empty) and scalars
    that hit the first and last bucket of every segment."""
    from .test_msm import dlog_case

    oracle, _, _, _ = grp
    n = 300 if oracle is G1 else 120
    if kind == "buckets":
        rng = random.Random(c)
        a = [rng.randrange(R) for _ in range(n)]
        w = (1 << (c - 1)) // 128
        k = [(s * w + rng.choice([1, w])) for s in range(128)] * 3
        k = k[:n]
    else:
        a, k = dlog_case(oracle, n, 9, kind)
    v = oracle.api(fast, "mul_generator")(a)
    wt = fast.window_table(v, c)
    out = fast.msm_table_plain(wt, fast.plain_scalars(fast.fr_from_ints(k)))
    to_aff = oracle.api(fast, "to_affine")
    assert to_aff(out) == [oracle.gen_mul(sum(x * y for x, y in zip(a, k, strict=True)))]
