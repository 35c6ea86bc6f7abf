"""Poseidon and Merkle benchmarks: numba hash rates, the Python twin, the gadget, tree building.

Run with ``.venv/bin/pytest bench/test_bench_poseidon.py`` (not part of the normal test run).  Rates
are in ``extra_info`` (hashes per second from the median round).
"""

from __future__ import annotations

import random

import numba
import pytest

from zkmb.algebra.fast.fields import fr_from_ints
from zkmb.algebra.kernels import numba_threads
from zkmb.algebra.params import R
from zkmb.gadgets.merkle import POLICY_DEPTH, MerkleTree, leaf_hash_native, merkle_path_4x11_circuit
from zkmb.gadgets.poseidon import poseidon2_circuit, poseidon_many_mont, poseidon_native

N = 100_000


def _rows(n: int, k: int):
    rng = random.Random(k)
    return fr_from_ints([rng.randrange(R) for _ in range(n * k)]).reshape(n, k, 4)


@pytest.mark.parametrize("k", [2, 4, 9])
def test_numba_one_core(benchmark, k):
    rows = _rows(N, k)
    poseidon_many_mont(rows[:2])  # compile / load
    with numba_threads(1):
        benchmark.pedantic(lambda: poseidon_many_mont(rows), rounds=5, iterations=1)
    benchmark.extra_info["inputs"] = k
    benchmark.extra_info["hashes_per_s"] = round(N / benchmark.stats.stats.median)


def test_numba_parallel_2(benchmark):
    rows = _rows(N, 2)
    poseidon_many_mont(rows[:1000], parallel=True)
    benchmark.pedantic(lambda: poseidon_many_mont(rows, parallel=True), rounds=5, iterations=1)
    benchmark.extra_info["threads"] = numba.get_num_threads()
    benchmark.extra_info["hashes_per_s"] = round(N / benchmark.stats.stats.median)


def test_python_twin_2(benchmark):
    rng = random.Random(0)
    vals = [[rng.randrange(R), rng.randrange(R)] for _ in range(200)]
    benchmark.pedantic(lambda: [poseidon_native(v) for v in vals], rounds=3, iterations=1)
    benchmark.extra_info["hashes_per_s"] = round(200 / benchmark.stats.stats.median)


def test_gadget_compile_poseidon2(benchmark):
    cs = benchmark.pedantic(poseidon2_circuit, rounds=5, iterations=1)
    benchmark.extra_info["constraints"] = cs.n_constraints


def test_merkle_tree_build(benchmark):
    """The policy tree (4-ary, depth 11) with 2^16 real leaves (the padding is hashed once per level)."""
    leaves = _rows(1 << 16, 1).reshape(-1, 4)
    MerkleTree(leaves[:1000], depth=POLICY_DEPTH)
    tree = benchmark.pedantic(lambda: MerkleTree(leaves, depth=POLICY_DEPTH), rounds=3, iterations=1)
    assert tree.n_leaves == 1 << 16
    benchmark.extra_info["leaves"] = 1 << 16


def test_merkle_path_4x11_solve(benchmark):
    cs = merkle_path_4x11_circuit()
    leaves = [leaf_hash_native([i, i]) for i in range(10)]
    tree = MerkleTree(leaves, depth=POLICY_DEPTH)
    p = tree.path(3)
    a = {"root": tree.root, "leaf": leaves[3], "bits": p.bits, "children": p.flat_children}
    cs.solve(a)
    w = benchmark.pedantic(lambda: cs.solve(a), rounds=5, iterations=1)
    assert cs.is_satisfied(w)
    benchmark.extra_info["constraints"] = cs.n_constraints
