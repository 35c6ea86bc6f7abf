"""NTT over Fr: both backends against the O(n^2) DFT definition, against each other, and round trips."""

from __future__ import annotations

import importlib
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkmb.algebra import fast, ref
from zkmb.algebra.params import FR_ROOT_OF_UNITY, FR_TWO_ADICITY, R
from zkmb.errors import InvalidInput

SIZES = [1 << k for k in range(13)]  # 1 .. 2^12
rng = random.Random(0x4E5454)


def rand_vec(n: int) -> list[int]:
    return [rng.randrange(R) for _ in range(n)]


def omega(n: int) -> int:
    """omega_n computed here independently of the code under test."""
    return pow(FR_ROOT_OF_UNITY, (1 << FR_TWO_ADICITY) // n, R)


def dft(a: list[int], shift: int = 1) -> list[int]:
    """The definition: evaluations of sum a_j X^j at shift * omega_n^i."""
    n = len(a)
    w = omega(n)
    out = []
    for i in range(n):
        x = shift * pow(w, i, R) % R
        acc = 0
        for c in reversed(a):
            acc = (acc * x + c) % R
        out.append(acc)
    return out


def run(backend, fn: str, a: list[int], *args) -> list[int]:
    return backend.fr_to_ints(getattr(backend, fn)(backend.fr_from_ints(a), *args))


def run_inplace(backend, fn: str, a: list[int], *args) -> list[int]:
    v = backend.fr_from_ints(a)
    assert getattr(backend, fn)(v, *args) is None
    return backend.fr_to_ints(v)


# --------------------------------------------------------------------------- domain


@pytest.mark.parametrize("k", range(FR_TWO_ADICITY + 1))
def test_domain_root_is_primitive(backend, k):
    n = 1 << k
    w = backend.domain_root(n)
    assert w == omega(n)
    assert pow(w, n, R) == 1
    if k:
        assert pow(w, n // 2, R) == R - 1  # order exactly n


@pytest.mark.parametrize("n", [0, -1, -4, 3, 6, 12, 1 << 29, 1 << 40, 2.0, "4", None])
def test_domain_root_rejects_bad_sizes(backend, n):
    with pytest.raises(InvalidInput):
        backend.domain_root(n)


@pytest.mark.parametrize("n", [3, 5, 6, 12, 100])
@pytest.mark.parametrize("fn", ["ntt", "intt", "ntt_inplace", "intt_inplace"])
def test_transforms_reject_bad_lengths(backend, fn, n):
    with pytest.raises(InvalidInput):
        getattr(backend, fn)(backend.fr_from_ints(rand_vec(n)))


@pytest.mark.parametrize("shift", [0, R, -R, 2 * R])
@pytest.mark.parametrize("fn", ["coset_ntt", "coset_intt", "coset_ntt_inplace", "coset_intt_inplace"])
def test_coset_rejects_zero_shift(backend, fn, shift):
    with pytest.raises(InvalidInput):
        getattr(backend, fn)(backend.fr_from_ints(rand_vec(4)), shift)


def test_fast_rejects_bad_arrays():
    good = fast.fr_from_ints(rand_vec(8))
    for bad in [good.astype(np.int64), good[:, :3], good.reshape(-1), good.tolist()]:
        with pytest.raises(InvalidInput):
            fast.ntt(bad)
    ro = good.copy()
    ro.setflags(write=False)
    with pytest.raises(InvalidInput):
        fast.ntt_inplace(ro)
    with pytest.raises(InvalidInput):
        fast.ntt_inplace(np.asfortranarray(good))


# --------------------------------------------------------------------------- definition


@pytest.mark.parametrize("n", SIZES[:7])
def test_ntt_matches_dft(backend, n):
    a = rand_vec(n)
    assert run(backend, "ntt", a) == dft(a)
    assert run_inplace(backend, "ntt_inplace", a) == dft(a)


@pytest.mark.parametrize("n", SIZES[:7])
@pytest.mark.parametrize("shift", [1, 5, 7, R - 1, 2**200 + 3])
def test_coset_ntt_matches_dft(backend, n, shift):
    a = rand_vec(n)
    assert run(backend, "coset_ntt", a, shift) == dft(a, shift)
    assert run_inplace(backend, "coset_ntt_inplace", a, shift) == dft(a, shift)


def test_negative_shift_is_reduced(backend):
    a = rand_vec(8)
    assert run(backend, "coset_ntt", a, -3) == dft(a, R - 3)


@pytest.mark.parametrize("n", SIZES[:7])
def test_intt_inverts_dft(backend, n):
    a = rand_vec(n)
    assert run(backend, "intt", dft(a)) == a
    assert run(backend, "coset_intt", dft(a, 5), 5) == a


# --------------------------------------------------------------------------- round trips and edges


@pytest.mark.parametrize("n", SIZES)
def test_round_trips(backend, n):
    a = rand_vec(n)
    v = backend.fr_from_ints(a)
    assert backend.fr_to_ints(backend.intt(backend.ntt(v))) == a
    assert backend.fr_to_ints(backend.ntt(backend.intt(v))) == a
    assert backend.fr_to_ints(backend.coset_intt(backend.coset_ntt(v, 5), 5)) == a
    assert backend.fr_to_ints(backend.coset_ntt(backend.coset_intt(v, 7), 7)) == a
    assert backend.fr_to_ints(v) == a  # out-of-place transforms leave their input alone
    backend.ntt_inplace(v)
    backend.intt_inplace(v)
    backend.coset_ntt_inplace(v, 3)
    backend.coset_intt_inplace(v, 3)
    assert backend.fr_to_ints(v) == a


@pytest.mark.parametrize("n", [1, 2, 16, 1 << 12, 1 << 13])
def test_edge_inputs(backend, n):
    assert run(backend, "ntt", [0] * n) == [0] * n
    assert run(backend, "intt", [0] * n) == [0] * n
    # constant c: evaluations of a polynomial with all coefficients c are n c at 1 and 0 elsewhere
    assert run(backend, "ntt", [R - 1] * n) == [(-n) % R] + [0] * (n - 1)
    assert run(backend, "intt", [R - 1] * n) == [R - 1] + [0] * (n - 1)
    # the constant polynomial 1 evaluates to 1 everywhere; X evaluates to the domain itself
    assert run(backend, "ntt", [1] + [0] * (n - 1)) == [1] * n
    if n > 1:
        w = omega(n)
        assert run(backend, "ntt", [0, 1] + [0] * (n - 2)) == [pow(w, i, R) for i in range(n)]
        assert run(backend, "coset_ntt", [0, R - 1] + [0] * (n - 2), 5) == [
            -5 * pow(w, i, R) % R for i in range(n)
        ]


def test_coset_with_shift_one_is_ntt(backend):
    a = rand_vec(32)
    assert run(backend, "coset_ntt", a, 1) == run(backend, "ntt", a)
    assert run(backend, "coset_intt", a, 1) == run(backend, "intt", a)


# --------------------------------------------------------------------------- fast against ref


@pytest.mark.parametrize("n", SIZES + [1 << 13, 1 << 14])  # > 2^12 takes the parallel multi-pass path
def test_fast_matches_ref(n):
    a = rand_vec(n)
    v = fast.fr_from_ints(a)
    assert fast.fr_to_ints(fast.ntt(v)) == ref.ntt(a)
    assert fast.fr_to_ints(fast.intt(v)) == ref.intt(a)
    assert fast.fr_to_ints(fast.coset_ntt(v, 5)) == ref.coset_ntt(a, 5)
    assert fast.fr_to_ints(fast.coset_intt(v, 5)) == ref.coset_intt(a, 5)
    w = v.copy()
    fast.coset_intt_inplace(w, 11)
    assert fast.fr_to_ints(w) == ref.coset_intt(a, 11)


def test_fast_twiddle_cache_grows_and_shrinks():
    """A transform after a larger one reuses a prefix of the larger table; clear_caches is harmless."""
    fast_ntt = importlib.import_module("zkmb.algebra.fast.ntt")  # the attribute `fast.ntt` is the function
    a = rand_vec(64)
    v = fast.fr_from_ints(a)
    fast.ntt(fast.fr_from_ints(rand_vec(1 << 13)))
    first = fast.fr_to_ints(fast.ntt(v))
    fast_ntt.clear_caches()
    assert fast.fr_to_ints(fast.ntt(v)) == first == ref.ntt(a)


# --------------------------------------------------------------------------- convolution


fr_elems = st.one_of(st.integers(0, R - 1), st.sampled_from([0, 1, 2, R - 1, R - 2]))


@st.composite
def vec_pair(draw):
    n = 1 << draw(st.integers(0, 5))
    vec = st.lists(fr_elems, min_size=n, max_size=n)
    return draw(vec), draw(vec)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=vec_pair())
def test_convolution_theorem(backend, pair):
    a, b = pair
    n = len(a)
    expected = [sum(a[j] * b[(i - j) % n] for j in range(n)) % R for i in range(n)]
    va, vb = backend.fr_from_ints(a), backend.fr_from_ints(b)
    assert backend.fr_to_ints(backend.intt(backend.fr_mul(backend.ntt(va), backend.ntt(vb)))) == expected
    # on a coset the pointwise product gives the negacyclic-style twisted product; the round trip holds
    prod = backend.fr_mul(backend.coset_ntt(va, 5), backend.coset_ntt(vb, 5))
    twisted = backend.fr_to_ints(backend.coset_intt(prod, 5))
    # a(X) b(X) mod (X^n - 5^n): wrap-around terms pick up the factor 5^n
    s_n = pow(5, n, R)
    want = [0] * n
    for i in range(n):
        for j in range(n):
            k = i + j
            want[k % n] = (want[k % n] + a[i] * b[j] * (s_n if k >= n else 1)) % R
    assert twisted == want


def test_openmp_workers_do_not_spin():
    """Importing zkmb sets OMP_WAIT_POLICY=PASSIVE before the OpenMP runtime loads (issue 15: with
    spinning workers a two-thread NTT on cores shared with two busy processes took 72 ms instead of
    8 ms); a user's own setting is kept."""
    import subprocess
    import sys

    code = "import os, zkmb; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"
