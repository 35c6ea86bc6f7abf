"""MSM benchmarks (fast backend): ``pytest bench/test_bench_msm.py``.

Targets on the 2-core reference machine: G1 2^16 random scalars on 1 core <= 0.30 s; G1 2^16 with 90%
of the scalars in {0, 1} on 2 cores <= 0.05 s; G2 2^16 random on 1 core <= 1.0 s.
"""

from __future__ import annotations

import functools

import pytest

from zkmb.algebra import fast

SIZES = [2**10, 2**13, 2**16]


@functools.cache
def inputs(group: str, n: int, small_fraction: float):
    make = fast.bench_inputs_g1 if group == "g1" else fast.bench_inputs_g2
    return make(n, seed=1, small_fraction=small_fraction)


def run(benchmark, group: str, n: int, small_fraction: float, threads: int) -> None:
    points, scalars = inputs(group, n, small_fraction)
    msm = fast.msm_g1 if group == "g1" else fast.msm_g2
    msm(points[:64], scalars[:64], threads=threads)  # compile / load the kernels outside the timing
    benchmark.extra_info.update(group=group, n=n, small_fraction=small_fraction, threads=threads)
    benchmark.pedantic(msm, args=(points, scalars), kwargs={"threads": threads}, rounds=7, warmup_rounds=1)


@pytest.mark.parametrize("n", SIZES)
def test_msm_g1_random_1core(benchmark, n):
    run(benchmark, "g1", n, 0.0, threads=1)


@pytest.mark.parametrize("n", SIZES)
def test_msm_g1_random_2cores(benchmark, n):
    run(benchmark, "g1", n, 0.0, threads=2)


@pytest.mark.parametrize("n", SIZES)
def test_msm_g1_small90_2cores(benchmark, n):
    run(benchmark, "g1", n, 0.9, threads=2)


@pytest.mark.parametrize("n", [2**16])
def test_msm_g1_small90_1core(benchmark, n):
    run(benchmark, "g1", n, 0.9, threads=1)


@pytest.mark.parametrize("n", SIZES)
def test_msm_g2_random_1core(benchmark, n):
    run(benchmark, "g2", n, 0.0, threads=1)


@pytest.mark.parametrize("n", [2**16])
def test_msm_g2_random_2cores(benchmark, n):
    run(benchmark, "g2", n, 0.0, threads=2)
