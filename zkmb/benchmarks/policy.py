"""``zkmb bench policy``: build / load / lookup times of the committed blocklist (SPEC §6).

* ``build_150k_s``: parse + normalise + commit the shared lists (domains.txt exact, subtree-rules.txt
  subtree: 146,706 + 399 rules), one run;
* ``build_4m_s`` / ``peak_mb_4m``: the same plus seeded synthetic names (random labels under common
  TLDs) up to 4,000,000 rules, built once in a child process whose peak RSS is reported
  (skipped with ``quick``);
* ``load_s``: loading the 150k policy file with its cached tree (median of 5);
* ``lookup_ms``: one witness (bisect + Merkle path) for an allowed name (median over 200 names).
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "blocklists")
TARGET_4M = 4_000_000
_TLDS = ("com", "net", "org", "info", "io", "de", "ru", "xyz", "top", "co.uk", "com.br", "online")


def shared_lists() -> tuple[str, str]:
    """Paths of domains.txt and subtree-rules.txt (``$ZKMB_BLOCKLISTS`` or ../shared/data/blocklists)."""
    base = os.environ.get("ZKMB_BLOCKLISTS") or os.path.normpath(SHARED)
    if not os.path.isdir(base):
        base = "/work/shared/data/blocklists"
    return os.path.join(base, "domains.txt"), os.path.join(base, "subtree-rules.txt")


def synthetic_names(n: int, seed: int = 1) -> list[str]:
    """``n`` distinct seeded names like ``k3xq9a.b7.example-ish TLD`` (1-2 random labels)."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    out: set[str] = set()
    while len(out) < n:
        lab = "".join(rng.choices(alphabet, k=rng.randint(5, 14)))
        if rng.random() < 0.3:
            lab = "".join(rng.choices(alphabet, k=rng.randint(1, 6))) + "." + lab
        out.add(f"{lab}.{rng.choice(_TLDS)}")
    return sorted(out)


def _build(inputs: list, out: str) -> float:
    from ..policy.policyfile import build_policy, cache_policy

    t0 = time.perf_counter()
    policy, _report, _norm = build_policy(inputs)
    dt = time.perf_counter() - t0
    policy.write(out)
    cache_policy(policy, out)
    return dt


def _child_4m(tmp: str) -> None:
    """Run in a child process: build the 4M policy, print JSON with the time and peak RSS."""
    domains, subtree = shared_lists()
    with open(domains) as f:
        base = sum(1 for line in f if line.strip())
    extra = os.path.join(tmp, "synthetic.txt")
    with open(extra, "w") as f:
        f.write("\n".join(synthetic_names(TARGET_4M - base - 399)))
    dt = _build([(domains, "plain"), (subtree, "subtree"), (extra, "plain")], os.path.join(tmp, "4m.policy"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"build_4m_s": round(dt, 2), "peak_mb_4m": round(peak)}))


def run(quick: bool = False) -> dict[str, Any]:
    from ..policy.policyfile import load_policy
    from ..policy.witness import NonMembership, witness

    domains, subtree = shared_lists()
    result: dict[str, Any] = {"lists": "shared domains.txt (exact) + subtree-rules.txt (subtree)"}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("ZKMB_CACHE_DIR", os.path.join(tmp, "cache"))
        out = os.path.join(tmp, "150k.policy")
        _build([(domains, "plain"), (subtree, "subtree")], os.path.join(tmp, "warm.policy"))  # compile
        result["build_150k_s"] = round(_build([(domains, "plain"), (subtree, "subtree")], out), 2)
        loads = []
        for _ in range(5):
            t0 = time.perf_counter()
            policy = load_policy(out)
            loads.append(time.perf_counter() - t0)
        result["load_s"] = round(statistics.median(loads), 3)
        names = [f"{n}.allowed-example.org" for n in synthetic_names(200, seed=7)]
        times = []
        for n in names:
            t0 = time.perf_counter()
            w = witness(policy, n)
            times.append(time.perf_counter() - t0)
            assert isinstance(w, NonMembership)
        result["lookup_ms"] = round(1e3 * statistics.median(times), 3)
        result["rules_150k"] = len(policy)
        if quick:
            result["build_4m_s"] = None
            result["peak_mb_4m"] = None
        else:
            proc = subprocess.run(
                [sys.executable, "-c", f"from zkmb.benchmarks.policy import _child_4m; _child_4m({tmp!r})"],
                capture_output=True,
                text=True,
                env=os.environ.copy(),
            )
            if proc.returncode:
                raise RuntimeError(f"4M policy build failed: {proc.stderr[-2000:]}")
            result.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            result["rules_4m"] = TARGET_4M
    return result
