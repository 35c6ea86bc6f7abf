"""Point decoding benchmarks: one G2 point (the middlebox's per-proof cost) and bulk G1 loads.

Run: ``.venv/bin/pytest bench/test_bench_serialize.py`` (not part of the normal test run).
"""

from __future__ import annotations

import pytest
from py_ecc import optimized_bn128 as ob

from zkmb.algebra import serialize as S


def _g2(k: int):
    q = ob.normalize(ob.multiply(ob.G2, k))
    return tuple(tuple(int(c) for c in v.coeffs) for v in q[:2])


def _g1(k: int):
    q = ob.normalize(ob.multiply(ob.G1, k))
    return (int(q[0]), int(q[1]))


@pytest.mark.parametrize("compressed", [False, True], ids=["uncompressed", "compressed"])
def test_bench_g2_decode_one(benchmark, compressed):
    data = S.g2_to_bytes(_g2(0x1234567890ABCDEF), compressed)
    S.g2_from_bytes(data)  # compile / warm up
    benchmark(S.g2_from_bytes, data)


@pytest.mark.parametrize("compressed", [False, True], ids=["uncompressed", "compressed"])
def test_bench_g1_decode_one(benchmark, compressed):
    data = S.g1_to_bytes(_g1(0x1234567890ABCDEF), compressed)
    benchmark(S.g1_from_bytes, data)


@pytest.mark.parametrize("compressed", [False, True], ids=["uncompressed", "compressed"])
def test_bench_g1_decode_many(benchmark, compressed):
    count = 1 << 14
    pts = [_g1(k) for k in range(1, 65)] * (count // 64)
    data = b"".join(S.g1_to_bytes(p, compressed) for p in pts)
    S.g1_from_bytes_many(data, count)
    benchmark.extra_info["points"] = count
    benchmark.pedantic(S.g1_from_bytes_many, args=(data, count), rounds=7, iterations=1, warmup_rounds=1)
