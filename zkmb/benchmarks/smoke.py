"""``ZKMB_BENCH_SMOKE=1``: every suite's ``--quick`` run with the smallest sizes that still go through
all of its code (CI runs each suite so, in a couple of minutes in all: tests/benchmarks/
test_suites_smoke.py).  The numbers of such a run mean nothing; its results say ``"smoke": true``."""

from __future__ import annotations

import os

__all__ = ["smoke"]


def smoke(quick: bool = True) -> bool:
    """True for a ``--quick`` run with ``ZKMB_BENCH_SMOKE=1`` in the environment."""
    return quick and os.environ.get("ZKMB_BENCH_SMOKE") == "1"
