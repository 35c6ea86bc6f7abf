"""Multi-scalar multiplication on both backends against py_ecc.

Small cases use the plain oracle (sum of py_ecc multiplications).  Large cases use points [a_i] G with
known discrete logs, so the oracle is one py_ecc multiplication [sum_i k_i a_i] G; they run on the fast
backend only (the reference MSM is the slow sum of scalar multiplications).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput

from .curve_oracle import G1, G2

prop = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=[G1, G2], ids=["g1", "g2"])
def grp(request):
    return request.param


def is_fast(backend) -> bool:
    return backend.__name__.endswith("fast")


def run_msm(backend, grp, points, scalars, **kw):
    v = grp.api(backend, "from_affine")(points)
    out = grp.api(backend, "msm")(v, backend.fr_from_ints(scalars), **kw)
    res = grp.api(backend, "to_affine")(out)
    assert len(res) == 1
    return res[0]


def check(backend, grp, points, scalars, **kw):
    assert run_msm(backend, grp, points, scalars, **kw) == grp.msm(points, scalars)


def sample_points(grp, n, rng):
    base = [p for _, p in grp.points()]
    return [rng.choice(base) for _ in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 9, 13])
def test_msm_random_small(backend, grp, n):
    rng = random.Random(n)
    points = sample_points(grp, n, rng)
    check(backend, grp, points, [rng.randrange(R) for _ in range(n)])


def test_msm_edge_scalars(backend, grp):
    rng = random.Random(3)
    base = [p for _, p in grp.points()]
    p, q = base[0], base[1]
    points = base[:4] + [None, p, p, grp.neg(p), q, q, q, None]
    n = len(points)
    patterns = {
        "zeros": [0] * n,
        "ones": [1] * n,
        "r-1": [R - 1] * n,
        "mixed": [0, 1, R - 1, 2, 1, 1, 1, 1, R - 1, 0, 5, 7],
        "cancel": [3, 0, 0, 0, 1, 4, 5, 9, 0, 0, 0, 8],
        "small": [rng.choice([0, 1]) for _ in range(n)],
    }
    for ks in patterns.values():
        check(backend, grp, points, ks)


def test_msm_length_and_type_errors(backend, grp):
    v = grp.api(backend, "from_affine")([p for _, p in grp.points()[:2]])
    with pytest.raises(InvalidInput):
        grp.api(backend, "msm")(v, backend.fr_from_ints([1]))
    with pytest.raises(InvalidInput):
        grp.api(backend, "msm")(v, backend.fr_from_ints([1, 2]), threads=0)


def test_msm_threads_agree(backend, grp):
    rng = random.Random(4)
    points = sample_points(grp, 6, rng)
    ks = [rng.randrange(R) for _ in points]
    assert run_msm(backend, grp, points, ks, threads=1) == run_msm(backend, grp, points, ks, threads=2)


@prop
@given(data=st.lists(st.tuples(st.integers(0, R - 1), st.integers(0, R - 1)), min_size=0, max_size=5))
def test_msm_is_sum_of_scalar_mults(backend, grp, data):
    a = [x for x, _ in data]
    k = [y for _, y in data]
    v = grp.api(backend, "mul_generator")(a)
    out = grp.api(backend, "msm")(v, backend.fr_from_ints(k))
    expected = grp.api(backend, "sum")(grp.api(backend, "mul")(v, k))
    assert grp.api(backend, "to_affine")(out) == grp.api(backend, "to_affine")(expected)
    assert grp.api(backend, "to_affine")(out) == [grp.gen_mul(sum(x * y for x, y in data))]


# --------------------------------------------------------------------------- large (fast backend)


def dlog_case(grp, n, seed, kind):
    """(discrete logs, scalars) for n points [a_i] G; kind picks the scalar distribution."""
    rng = random.Random(f"{grp.name}-{n}-{seed}-{kind}")
    if kind == "dups":  # few distinct points: many P + P and P + (-P) inside buckets
        a = [rng.choice([1, 2, R - 1, 77]) for _ in range(n)]
    else:
        a = [rng.randrange(R) for _ in range(n)]
    if kind == "random":
        k = [rng.randrange(R) for _ in range(n)]
    elif kind == "small90":
        k = [rng.choice([0, 1]) if rng.random() < 0.9 else rng.randrange(R) for _ in range(n)]
    elif kind == "ones":
        k = [1] * n
    elif kind == "smallints":
        k = [rng.randrange(2**16) for _ in range(n)]
    else:  # dups
        k = [rng.choice([1, 2, 3, R - 1, R - 2, rng.randrange(R)]) for _ in range(n)]
    return a, k


def check_dlog(fast, grp, n, seed, kind, threads=None):
    a, k = dlog_case(grp, n, seed, kind)
    v = grp.api(fast, "mul_generator")(a)
    out = grp.api(fast, "msm")(v, fast.fr_from_ints(k), threads=threads)
    assert grp.api(fast, "to_affine")(out) == [grp.gen_mul(sum(x * y for x, y in zip(a, k, strict=True)))]


@pytest.fixture
def fast():
    from zkmb.algebra import fast

    return fast


def window_boundaries(g2: bool, limit: int) -> list[int]:
    """Sizes on both sides of every window-width change of fast.msm.window_bits below limit."""
    from zkmb.algebra.fast.msm import window_bits

    sizes = []
    for m in range(2, limit):
        if window_bits(m, g2) != window_bits(m - 1, g2):
            sizes += [m - 1, m]
    return sizes


@pytest.mark.parametrize("n", window_boundaries(False, 1000))
def test_msm_window_boundaries(fast, n):
    check_dlog(fast, G1, n, 0, "random")


@pytest.mark.parametrize("n", window_boundaries(True, 600))
def test_msm_window_boundaries_g2(fast, n):
    check_dlog(fast, G2, n, 0, "random")


@pytest.mark.parametrize("n", [15000, 30000])
def test_msm_wide_windows(fast, n):
    """Window widths 11 and 12 (the sizes of real proving keys)."""
    check_dlog(fast, G1, n, 2, "random", threads=2)


@pytest.mark.parametrize("kind", ["small90", "ones", "smallints", "dups"])
@pytest.mark.parametrize("threads", [1, 2])
def test_msm_distributions(fast, grp, kind, threads):
    n = 5000 if grp is G1 else 1500
    check_dlog(fast, grp, n, 1, kind, threads)


def test_bench_inputs(fast):
    pts, ks = fast.bench_inputs_g1(64, seed=3, small_fraction=0.5)
    fast.g1_validate(pts)
    plain = fast.fr_to_ints(ks)
    assert all(0 <= x < R for x in plain) and sum(x <= 1 for x in plain) >= 16
    q, _ = fast.bench_inputs_g2(8, seed=3)
    fast.g2_validate(q)
    assert np.array_equal(fast.bench_inputs_g1(8, seed=9)[0], fast.bench_inputs_g1(8, seed=9)[0])


@pytest.mark.parametrize("n", [0, 1, 7, 40])
def test_msm_plain_in_chunks_equals_msm(backend, grp, n):
    """msm_plain over plain scalars converted once (the prover's path), also summed over chunks of the
    points (its parallel steps), equals the MSM; non-canonical scalars are refused."""
    rng = random.Random(100 + n)
    points = sample_points(grp, n, rng)
    scalars = [rng.choice([0, 1, 2, R - 1, rng.randrange(R)]) for _ in range(n)]
    v = grp.api(backend, "from_affine")(points)
    plain = backend.plain_scalars(backend.fr_from_ints(scalars))
    whole = grp.api(backend, "to_affine")(backend.msm_plain(v, plain))
    assert whole == [grp.msm(points, scalars)]
    cut = n // 3
    parts = [backend.msm_plain(v[:cut], plain[:cut]), backend.msm_plain(v[cut:], plain[cut:])]
    total = grp.api(backend, "add")(parts[0], parts[1])
    assert grp.api(backend, "to_affine")(total) == [grp.msm(points, scalars)]


# --------------------------------------------------------------------------- window tables (fixed bases)


@pytest.mark.parametrize("n", [1, 7, 40])
@pytest.mark.parametrize("c", [None, 3])
def test_msm_table_equals_msm(backend, grp, n, c):
    """An MSM on a window table equals the MSM over its points, whole and as chunks at an offset (the
    prover's split steps); offsets or lengths outside the table are refused."""
    rng = random.Random(200 + n)
    points = sample_points(grp, n, rng)
    scalars = [rng.choice([0, 1, 2, R - 1, rng.randrange(R)]) for _ in range(n)]
    v = grp.api(backend, "from_affine")(points)
    plain = backend.plain_scalars(backend.fr_from_ints(scalars))
    wt = backend.window_table(v, c)
    to_aff = grp.api(backend, "to_affine")
    assert to_aff(backend.msm_table_plain(wt, plain)) == [grp.msm(points, scalars)]
    stepped = list(backend.window_table_steps(v, c))[-1]  # the step-wise build: the same table
    assert to_aff(backend.msm_table_plain(stepped, plain)) == [grp.msm(points, scalars)]
    cut = n // 3
    head = backend.msm_table_plain(wt, plain[:cut], 0)
    tail = backend.msm_table_plain(wt, plain[cut:], cut)
    assert to_aff(grp.api(backend, "add")(head, tail)) == [grp.msm(points, scalars)]
    assert to_aff(backend.msm_table_plain(wt, plain[1:], 1)) == [grp.msm(points[1:], scalars[1:])]
    with pytest.raises(InvalidInput):
        backend.msm_table_plain(wt, plain, 1)
    with pytest.raises(InvalidInput):
        backend.msm_table_plain(wt, plain[:1], -1)
    with pytest.raises(InvalidInput):
        backend.window_table(v, 1)
    if is_fast(backend):
        with pytest.raises(InvalidInput):
            backend.msm_table_plain(wt, plain.astype(np.int64))


@pytest.mark.parametrize("kind", ["random", "small90", "ones", "dups"])
@pytest.mark.parametrize("threads", [1, 2])
def test_msm_table_distributions(fast, grp, kind, threads):
    """Large table MSMs (above the serial cut-off, both worker counts) against the discrete logs, also
    for a chunk in the middle of the table."""
    n = 3000 if grp is G1 else 1200
    a, k = dlog_case(grp, n, 5, kind)
    v = grp.api(fast, "mul_generator")(a)
    wt = fast.window_table(v)
    assert wt.nbytes == wt.nwin * v.nbytes and np.array_equal(wt.points, v)
    plain = fast.plain_scalars(fast.fr_from_ints(k))
    out = fast.msm_table_plain(wt, plain, threads=threads)
    assert grp.api(fast, "to_affine")(out) == [grp.gen_mul(sum(x * y for x, y in zip(a, k, strict=True)))]
    lo, hi = 700, 700 + 1100
    out = fast.msm_table_plain(wt, plain[lo:hi], lo, threads=threads)
    want = sum(x * y for x, y in zip(a[lo:hi], k[lo:hi], strict=True))
    assert grp.api(fast, "to_affine")(out) == [grp.gen_mul(want)]


def test_table_window_bits(fast):
    from zkmb.algebra.fast.msm import table_window_bits

    assert table_window_bits(8192) == 13  # Q-64's bases: 20 windows
    assert table_window_bits(0) == 2
    assert all(table_window_bits(n) <= table_window_bits(2 * n) for n in (100, 1000, 10000))


def test_window_table_steps(fast):
    """The step-wise build yields once per window level and ends with the same table."""
    a, _ = dlog_case(G1, 50, 6, "random")
    v = G1.api(fast, "mul_generator")(a)
    steps = list(fast.window_table_steps(v, 9))
    wt = steps[-1]
    assert all(s is None for s in steps[:-1]) and len(steps) == wt.nwin
    assert np.array_equal(wt.table, fast.window_table(v, 9).table)
