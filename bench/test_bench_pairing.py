"""Pairing benchmarks (pytest-benchmark; not part of the normal test run).

Run: .venv/bin/pytest bench/test_bench_pairing.py --benchmark-columns=min,median,mean,rounds
"""

from __future__ import annotations

import numpy as np
import pytest
from py_ecc import optimized_bn128 as ob

from zkmb.algebra import fast
from zkmb.algebra.fast.pairing import _g1_from_affine, _g2_from_affine
from zkmb.algebra.kernels import pairing as kp
from zkmb.algebra.params import G1_GEN, G2_GEN, R

ROUNDS = 50


def _g1(k):
    x, y = ob.normalize(ob.multiply(ob.G1, k))
    return (int(x), int(y))


def _g2(k):
    x, y = ob.normalize(ob.multiply(ob.G2, k))
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


@pytest.fixture(scope="module")
def one_pair():
    ps, qs = _g1_from_affine([_g1(12345)]), _g2_from_affine([_g2(678910)])
    fast.pairing(ps, qs)  # compile / load from cache outside the timing
    return ps, qs


@pytest.fixture(scope="module")
def groth16_pairs():
    # e(-A, B) e(alpha, beta) e(L, gamma) e(C, delta) with a consistent set of scalars
    a, b, al, be, ga, de, el = 11, 13, 17, 19, 23, 29, 31
    c = (a * b - al * be - el * ga) * pow(de, -1, R) % R
    ps = _g1_from_affine([_g1(R - a), _g1(al), _g1(el), _g1(c)])
    qs = _g2_from_affine([_g2(b), _g2(be), _g2(ga), _g2(de)])
    if not fast.pairing_check(ps, qs):
        raise RuntimeError("inconsistent Groth16-shaped instance")
    return ps, qs


def test_bench_pairing_fast(benchmark, one_pair):
    ps, qs = one_pair
    benchmark.pedantic(fast.pairing, args=(ps, qs), rounds=ROUNDS, iterations=1, warmup_rounds=3)


def test_bench_miller_loop_fast(benchmark, one_pair):
    ps, qs = one_pair
    benchmark.pedantic(fast.miller_loop, args=(ps, qs), rounds=ROUNDS, iterations=1, warmup_rounds=3)


def test_bench_final_exponentiation_fast(benchmark, one_pair):
    f = fast.miller_loop(*one_pair)
    benchmark.pedantic(fast.final_exponentiation, args=(f,), rounds=ROUNDS, iterations=1, warmup_rounds=3)


def test_bench_multi_pairing_4_fast(benchmark, groth16_pairs):
    ps, qs = groth16_pairs
    benchmark.pedantic(fast.multi_pairing, args=(ps, qs), rounds=ROUNDS, iterations=1, warmup_rounds=3)


def test_bench_pairing_check_4_fast(benchmark, groth16_pairs):
    ps, qs = groth16_pairs
    ok = benchmark.pedantic(fast.pairing_check, args=(ps, qs), rounds=ROUNDS, iterations=1, warmup_rounds=3)
    assert ok


def test_bench_call_overhead_fast(benchmark):
    """Python wrapper + numba dispatch + validation with no pairing work (one pair at infinity)."""
    ps, qs = np.zeros((1, 2, 4), np.uint64), np.zeros((1, 2, 2, 4), np.uint64)
    fast.miller_loop(ps, qs)
    benchmark.pedantic(fast.miller_loop, args=(ps, qs), rounds=200, iterations=10, warmup_rounds=3)


def test_bench_kernel_dispatch(benchmark):
    """The bare numba dispatch of the entry kernel on empty arrays (no Python wrapper)."""
    ps, qs, out = (
        np.zeros((0, 2, 4), np.uint64),
        np.zeros((0, 2, 2, 4), np.uint64),
        np.empty((12, 4), np.uint64),
    )
    kp.miller_loop_into(ps, qs, out)
    benchmark.pedantic(kp.miller_loop_into, args=(ps, qs, out), rounds=200, iterations=10, warmup_rounds=3)


def test_bench_pairing_py_ecc(benchmark):
    """Reference: py_ecc's optimized_bn128 pairing (argument order Q, P)."""
    q = (ob.FQ2(list(G2_GEN[0])), ob.FQ2(list(G2_GEN[1])), ob.FQ2.one())
    p = (ob.FQ(G1_GEN[0]), ob.FQ(G1_GEN[1]), ob.FQ.one())
    benchmark.pedantic(ob.pairing, args=(q, p), rounds=5, iterations=1, warmup_rounds=0)
