"""``zkmb bench policy``: build / load / lookup times of the committed blocklist (SPEC §6).

* ``build_150k_s``: parse + normalise + commit the shared lists (domains.txt exact, subtree-rules.txt
  subtree: 146,706 + 399 rules), one run;
* ``build_4m_s`` / ``peak_mb_4m``: the same plus seeded synthetic names (random labels under common
  TLDs) up to 4,000,000 rules, built once in a child process whose peak RSS is reported
  (the last point of ``sizes``; skipped with ``quick``);
* ``load_s``: loading the 150k policy file with its cached tree (median of 5);
* ``lookup_ms``: one witness (bisect + Merkle path) for an allowed name (median over 200 names);
* ``sizes``: the scaling series (10k, 100k, 1M, 4M rules; ``quick``: 10k, 100k): build time and peak
  RSS (child process), cached load, lookup and a Q-64 proof against each policy (see size_series).
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

TARGET_4M = 4_000_000
_TLDS = ("com", "net", "org", "info", "io", "de", "ru", "xyz", "top", "co.uk", "com.br", "online")


def shared_lists() -> tuple[str, str]:
    """Paths of domains.txt and subtree-rules.txt (``$ZKMB_BLOCKLISTS`` or ../shared/data/blocklists)."""
    from ..errors import InvalidInput
    from ..shared import shared_path

    base = os.environ.get("ZKMB_BLOCKLISTS") or shared_path("data", "blocklists")
    if base is None or not os.path.isdir(base):
        raise InvalidInput(
            "shared blocklists not found: set ZKMB_BLOCKLISTS or keep ../shared beside the repository"
        )
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


def _child_build(tmp: str, target: int) -> None:
    """Run in a child process: build a policy of about ``target`` rules into ``tmp/<target>.policy`` (and
    its tree cache); print JSON with the build time and the child's peak RSS.

    Up to the shared list's size the rules are its first ``target`` names (exact); above it, the whole
    shared list (exact + subtree) plus seeded synthetic names up to ``target``."""
    domains, subtree = shared_lists()
    with open(domains) as f:
        names = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    if target <= len(names):
        part = os.path.join(tmp, f"first{target}.txt")
        with open(part, "w") as f:
            f.write("\n".join(names[:target]) + "\n")
        inputs = [(part, "plain")]
    else:
        extra = os.path.join(tmp, f"synthetic{target}.txt")
        with open(extra, "w") as f:
            f.write("\n".join(synthetic_names(target - len(names) - 399)))
        inputs = [(domains, "plain"), (subtree, "subtree"), (extra, "plain")]
    out = os.path.join(tmp, f"{target}.policy")
    dt = _build(inputs, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"build_s": round(dt, 2), "peak_mb": round(peak), "path": out}))


def _child_4m(tmp: str) -> None:
    """The 4M point alone (kept for ``python -c``-style callers)."""
    _child_build(tmp, TARGET_4M)


SIZE_SERIES = (10_000, 100_000, 1_000_000, TARGET_4M)
QUICK_SIZE_SERIES = (10_000, 100_000)


def _q_prover():
    """``prove_q(policy, runs) -> median seconds`` of a Q-64 proof for an allowed name (one setup)."""
    import types

    from ..circuits.keys import compile_circuit
    from ..circuits.query_witness import query_assignment
    from ..circuits.witness import CHACHA20
    from ..groth16.prover import prove
    from ..groth16.setup import setup
    from .statements import _query_record

    cs = compile_circuit("q_64")
    pk, _vk = setup(cs)
    rng = random.Random(5)
    keys = types.SimpleNamespace(suite=CHACHA20, key=rng.randbytes(32), iv=rng.randbytes(12))
    ct, pads = _query_record(keys, 1, None)

    def prove_q(policy, runs: int) -> float:
        w = cs.solve(query_assignment(pads, ct, policy).assignment)
        prove(pk, w)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            prove(pk, w)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return prove_q, cs.n_constraints


def size_series(tmp: str, quick: bool) -> dict[str, Any]:
    """Build, cached load, lookup and Q-64 proof time against the number of rules.

    The Q circuit's Merkle tree has a fixed shape (4-ary, depth 11: 2^22 leaves), so its proof time
    should not depend on the policy's size; what grows is the build (hashing every key) and, slowly,
    the lookup (bisect)."""
    from ..gadgets.merkle import POLICY_ARITY, POLICY_DEPTH
    from ..policy.policyfile import load_policy
    from ..policy.witness import NonMembership, witness

    runs = 1 if quick else 5
    prove_q, q_constraints = _q_prover()
    names = [f"{n}.allowed-example.org" for n in synthetic_names(200, seed=7)]
    points = []
    from .smoke import smoke

    for target in ((10_000,) if smoke(quick) else QUICK_SIZE_SERIES) if quick else SIZE_SERIES:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from zkmb.benchmarks.policy import _child_build; _child_build({tmp!r}, {target})",
            ],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
        if proc.returncode:
            raise RuntimeError(f"{target}-rule policy build failed: {proc.stderr[-2000:]}")
        built = json.loads(proc.stdout.strip().splitlines()[-1])
        t0 = time.perf_counter()
        policy = load_policy(built["path"])
        load_s = time.perf_counter() - t0
        times = []
        for n in names:
            t0 = time.perf_counter()
            w = witness(policy, n)
            times.append(time.perf_counter() - t0)
            if not isinstance(w, NonMembership):
                raise RuntimeError(f"benchmark name {n} is blocked by the {target}-rule policy")
        points.append(
            {
                "target_rules": target,
                "rules": len(policy),
                "build_s": built["build_s"],
                "peak_mb": built["peak_mb"],
                "load_s": load_s,
                "lookup_ms": 1e3 * statistics.median(times),
                "q_64_prove_s": prove_q(policy, runs),
            }
        )
        del policy
        os.unlink(built["path"])
    return {
        "runs": runs,
        "q_64_constraints": q_constraints,
        "tree_depth": POLICY_DEPTH,
        "tree_arity": POLICY_ARITY,
        "points": points,
    }


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
        del policy
        series = size_series(tmp, quick)
        result["sizes"] = series
        big = [p for p in series["points"] if p["target_rules"] == TARGET_4M]
        if big:
            result["build_4m_s"] = big[0]["build_s"]
            result["peak_mb_4m"] = big[0]["peak_mb"]
            result["rules_4m"] = big[0]["rules"]
        else:
            result["build_4m_s"] = None
            result["peak_mb_4m"] = None
    from .smoke import smoke

    if smoke(quick):
        result["smoke"] = True
    return result
