"""R1CS frontend benchmarks: compile and witness solve of a ~1M-constraint synthetic circuit.

Run with ``.venv/bin/pytest bench/test_bench_r1cs.py`` (not part of the normal test run).  The
circuit mixes the gadgets the SHA-256/ChaCha20/AES/Poseidon circuits lean on: long product
chains, strict 254-bit and 32-bit decompositions, from_bits, select, is_zero.
"""

from __future__ import annotations

import pytest

from zkmb.r1cs import Circuit, Public, Secret, compile

BLOCKS = 1200  # 806 constraints per block -> 967,200 constraints


class Synthetic(Circuit):
    x = Public()
    w = Secret()

    def __init__(self, blocks: int = BLOCKS):
        self.blocks = blocks

    def define(self, api):
        y = self.w
        acc = 0
        for i in range(self.blocks):
            with api.scope(f"block{i}"):
                for _ in range(400):  # 400 products
                    y = api.mul(y, y) + self.x
                bits = api.to_bits(y, 254)  # 354 (strict)
                lo = api.from_bits(bits[:32])
                b32 = api.to_bits(lo, 32)  # 33
                s = api.select(b32[0], y, lo)  # 1
                z = api.is_zero(s - lo)  # 2
                for j in range(0, 32, 2):  # 16 products of bits
                    acc = acc + api.mul(b32[j], b32[j + 1])
                y = y + z
        api.assert_equal(acc + 1, acc + 1)


@pytest.fixture(scope="module")
def cs():
    c = compile(Synthetic())
    c.solve({"x": 5, "w": 7})  # warm the numba caches
    return c


def test_compile_1m(benchmark):
    c = benchmark.pedantic(lambda: compile(Synthetic()), rounds=3, iterations=1)
    assert c.n_constraints == 806 * BLOCKS
    benchmark.extra_info["constraints"] = c.n_constraints


def test_solve_1m(benchmark, cs):
    w = benchmark.pedantic(lambda: cs.solve({"x": 5, "w": 7}, check=False), rounds=5, iterations=1)
    assert cs.is_satisfied(w)
    benchmark.extra_info["constraints"] = cs.n_constraints


def test_solve_and_check_1m(benchmark, cs):
    benchmark.pedantic(lambda: cs.solve({"x": 5, "w": 7}), rounds=5, iterations=1)


def test_is_satisfied_1m(benchmark, cs):
    w = cs.solve({"x": 5, "w": 7}, check=False)
    assert benchmark.pedantic(lambda: cs.is_satisfied(w), rounds=5, iterations=1)


def test_digest_1m(benchmark, cs):
    def fresh_digest():
        cs._digest = None  # drop the cached value
        return cs.digest()

    benchmark.pedantic(fresh_digest, rounds=3, iterations=1)
