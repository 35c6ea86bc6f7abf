"""Every benchmark suite runs to the end in CI: ``zkmb bench SUITE --quick --json`` as a separate process
with ``ZKMB_BENCH_SMOKE=1`` (zkmb/benchmarks/smoke.py: the smallest sizes that still go through all of
a suite's code), so a suite broken by a change fails here instead of in the next ``zkmb bench all``.
The numbers are not looked at.  About two minutes in all on the shared 2-core machine once the demo's
keys exist (the middlebox suite makes them on first use: a minute more).

Not run here (listed in ``SLOW`` with the reason): ``e2e`` and ``keys``; with real proofs their quick runs
take minutes (a CO proof, and for ``keys`` a fresh setup of the stub's circuits first).  The demo
stack of ``e2e`` is run by tests/client_stub/test_demo_e2e.py and tests/cli/test_signals.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zkmb.cli import BENCH_SUITES

from ..conftest import require

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SLOW = {
    "e2e": "its quick run proves a CO, then 14 queries each with its own Q proof, one at a time",
    "keys": "quick run 140 s here: a fresh setup of the stub's circuits, a bootstrap and a CO proof",
}
"""Suites too slow for this test, and why (no ``ZKMB_BENCH_SMOKE`` sizes of their own yet)."""
EXPECT = {
    "algebra": ["fq_mul_ns", "msm_g1_2_16_s", "pairing_ms", "scaling"],
    "groth16": ["prove_s", "snarkjs_prove_s", "verify_ms", "scaling"],
    "policy": ["build_150k_s", "load_s", "lookup_ms", "sizes"],
    "statements": ["pad_block_prove_s", "q_64_prove_s", "q_64_verify_ms", "pad_blocks_3_prove_s"],
    "middlebox": ["verify_per_s_core", "batch16_verify_per_s_core", "hold_p50_ms", "hold_mean_batch"],
    "baseline": ["stubby_p50_ms", "direct_p50_ms", "added_p50_ms"],
}
"""Keys each suite's JSON must have (what its report section reads)."""


@pytest.fixture(scope="module")
def bench_env(request, tmp_path_factory) -> dict[str, str]:
    lists = tmp_path_factory.mktemp("bench-lists")  # the policy suite's "shared" lists, tiny
    (lists / "domains.txt").write_text("evil.example\nads.tracker.test\nbad.test\n")
    (lists / "subtree-rules.txt").write_text("blocked.test\n")
    cache = request.config.cache.mkdir("zkmb-bench-smoke")  # the 2^10 ptau and circuits, kept between runs
    return {
        **os.environ,
        "ZKMB_BENCH_SMOKE": "1",
        "ZKMB_BLOCKLISTS": str(lists),
        "ZKMB_BENCH_CACHE": str(cache),
        "PYTHONUNBUFFERED": "1",
    }


def _requirements(suite: str) -> None:
    if suite == "groth16":
        from zkmb.benchmarks.groth16 import tools_dir

        tools = tools_dir()
        ok = (
            shutil.which("node")
            and (tools / ".bin" / "snarkjs").exists()
            and (tools / ".bin" / "circom2").exists()
        )
        require(bool(ok), f"the groth16 suite needs node, snarkjs and circom2 (looked in {tools})")
    if suite == "baseline":
        require(shutil.which("stubby") is not None, "the baseline suite needs stubby (apt: stubby)")


@pytest.mark.parametrize("suite", sorted(EXPECT))
def test_suite_runs_quick(suite, bench_env):
    _requirements(suite)
    r = subprocess.run(
        [sys.executable, "-m", "zkmb.cli", "bench", suite, "--quick", "--json"],
        cwd=REPO,
        env=bench_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, f"zkmb bench {suite} --quick failed:\n{r.stderr[-4000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["suite"] == suite and result.get("smoke") is True
    assert "error" not in result and "skipped" not in result, result
    missing = [k for k in EXPECT[suite] if k not in result]
    assert not missing, f"{suite}: keys missing from its JSON: {missing}"


def test_every_suite_is_run_here_or_excluded_with_a_reason():
    """A new suite is smoke-tested or says why not."""
    assert set(BENCH_SUITES) == set(EXPECT) | set(SLOW) and not set(EXPECT) & set(SLOW)
