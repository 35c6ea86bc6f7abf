"""NTT benchmarks (fast backend): 2^16 and 2^20 points, 1 and 2 numba threads.

Run: ``.venv/bin/pytest bench/test_bench_ntt.py`` (not part of the normal test run).  Target: a 2^20
NTT in at most 0.4 s on the 2-core development machine.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from zkmb.algebra import fast


def random_fr_vec(n: int) -> np.ndarray:
    """n uniformly random Fr elements, as a Montgomery vector (read back from plain limbs < 2^252 < r)."""
    limbs = np.random.default_rng(n).integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    limbs[:, 3] >>= np.uint64(4)
    return fast.fr_from_ints(int.from_bytes(row.tobytes(), "little") for row in limbs)


@pytest.fixture(params=[1, 2], ids=lambda t: f"{t}thr")
def threads(request):
    old = numba.get_num_threads()
    numba.set_num_threads(min(request.param, numba.config.NUMBA_NUM_THREADS))
    yield request.param
    numba.set_num_threads(old)


@pytest.mark.parametrize("logn", [16, 20])
@pytest.mark.parametrize("op", ["ntt", "intt", "ntt_inplace", "coset_ntt"])
def test_bench_ntt(benchmark, threads, logn, op):
    a = random_fr_vec(1 << logn)
    fn = getattr(fast, op)
    args = (a, 5) if op.startswith("coset") else (a,)
    fn(*args)  # compile, build the tables
    benchmark.extra_info.update(n=1 << logn, threads=threads)
    benchmark.pedantic(fn, args=args, rounds=9 if logn <= 16 else 5, iterations=1, warmup_rounds=1)
