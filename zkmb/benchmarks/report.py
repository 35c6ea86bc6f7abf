"""docs/benchmarks.md and its figures from the JSON document of ``zkmb bench all`` (see runner.py).

Everything numeric in the report comes from the document; the only hand-written parts are the
explanatory notes (``NOTES``), which state methods and causes, never numbers.  Areas that are
missing or failed are shown as such.  Figures are matplotlib PNGs (Agg backend); each carries the
machine, date, commit and how many runs each point is a median of.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (issue, metric, area, key or getter, "<=" / ">=", target, unit)
Getter = Callable[[dict[str, Any]], Any]
TARGETS: list[tuple[int, str, str, str | Getter, str, float, str]] = [
    (2, "Fq multiplication", "algebra", "fq_mul_ns", "<=", 20, "ns"),
    (2, "G1 MSM 2^16, random scalars, 1 core", "algebra", "msm_g1_2_16_s", "<=", 0.30, "s"),
    (2, "G1 MSM 2^16, 90% scalars in {0,1}, 2 cores", "algebra", "msm_g1_2_16_bits_s", "<=", 0.05, "s"),
    (2, "G2 MSM 2^16, random scalars, 1 core", "algebra", "msm_g2_2_16_s", "<=", 1.0, "s"),
    (2, "NTT 2^20", "algebra", "ntt_2_20_s", "<=", 0.4, "s"),
    (2, "one pairing", "algebra", "pairing_ms", "<=", 1.0, "ms"),
    (2, "Groth16-shaped 4-pair multi-pairing", "algebra", "multi_pairing_4_ms", "<=", 1.5, "ms"),
    (2, "warm start", "algebra", "warm_start_s", "<=", 1.0, "s"),
    (3, "prover speedup over snarkjs, same R1CS", "groth16", "prove_speedup", ">=", 3.0, "x"),
    (3, "verification, one proof", "groth16", "verify_ms", "<=", 2.0, "ms"),
    (3, "batch of 64, per proof", "groth16", "batch64_verify_ms_per_proof", "<=", 0.5, "ms"),
    (5, "build, shared 150k list", "policy", "build_150k_s", "<=", 10, "s"),
    (5, "build, 4M rules (shared lists + synthetic names)", "policy", "build_4m_s", "<=", 300, "s"),
    (5, "peak memory of the 4M build (4 GB)", "policy", "peak_mb_4m", "<=", 3815, "MiB"),
    (5, "cached load", "policy", "load_s", "<=", 2.0, "s"),
    (5, "lookup", "policy", "lookup_ms", "<=", 1.0, "ms"),
    (7, "CO ChaCha20 constraints", "statements", "co_chacha20_constraints", "<=", 2**20, ""),
    (7, "CO ChaCha20 prove", "statements", "co_chacha20_prove_s", "<=", 10, "s"),
    (7, "PAD constraints", "statements", "pad_block_constraints", "<=", 25_000, ""),
    (7, "PAD prove", "statements", "pad_block_prove_s", "<=", 0.5, "s"),
    (7, "Q-64 constraints (2^13 domain, issue #16)", "statements", "q_64_constraints", "<=", 8_192, ""),
    (7, "Q-64 prove", "statements", "q_64_prove_s", "<=", 0.150, "s"),
    (7, "Q-192 constraints", "statements", "q_192_constraints", "<=", 24_000, ""),
    (7, "Q-192 prove", "statements", "q_192_prove_s", "<=", 0.250, "s"),
    (
        7,
        "verify, slowest statement",
        "statements",
        lambda a: max((v for k, v in a.items() if k.endswith("_verify_ms") and _num(v)), default=None),
        "<=",
        2.0,
        "ms",
    ),
    (8, "single verifications per second per core", "middlebox", "verify_per_s_core", ">=", 500, "/s"),
    (
        8,
        "batched verifications per second per core, batches of 16 (the most the service's pool forms)",
        "middlebox",
        "batch16_verify_per_s_core",
        ">=",
        1500,
        "/s",
    ),
    (8, "hold beyond verification, p50", "middlebox", "hold_p50_ms", "<=", 5, "ms"),
    (
        9,
        "added latency per query, p50 (one client, one query at a time)",
        "e2e",
        "added_p50_ms",
        "<=",
        200,
        "ms",
    ),
    (
        9,
        "added latency per query, p99 (one client, one query at a time)",
        "e2e",
        "added_p99_ms",
        "<=",
        400,
        "ms",
    ),
    (15, "burst of 30 names at once, strict, real unbound", "e2e", "burst30_s", "<=", 3.0, "s"),
    (15, "bursts of 30 (three): queries not answered", "e2e", "burst30_fail", "<=", 0, ""),
    (
        15,
        "burst of 30, async, over plain DoT's (+0.1 s allowed)",
        "e2e",
        lambda a: (
            a["burst30_async_s"] - a["plain_burst30_s"]
            if _num(a.get("burst30_async_s")) and _num(a.get("plain_burst30_s"))
            else None
        ),
        "<=",
        0.1,
        "s",
    ),
    (15, "async added latency, p50", "e2e", "async_added_p50_ms", "<=", 5, "ms"),
    (15, "two busy processes: p50 over the idle p50", "e2e", "loaded_ratio", "<=", 2.5, "x"),
    (15, "two busy processes: queries not answered", "e2e", "loaded_fail", "<=", 0, ""),
    (15, "a query after 45 s idle, over the idle p50", "e2e", "after_idle_ratio", "<=", 1.5, "x"),
    (
        15,
        "two busy processes from start-up, async: burst of 30 during the CO, not answered",
        "e2e",
        "busy_start_burst30_async_fail",
        "<=",
        0,
        "",
    ),
    (15, "idle stub CPU", "e2e", "idle_cpu_s_per_min", "<=", 1.0, "s/min"),
    (15, "stub resident memory, all its processes", "e2e", "stub_rss_mb", "<=", 1200, "MB"),
    (16, "Q-64 prove", "statements", "q_64_prove_s", "<=", 0.080, "s"),
    (
        16,
        "PAD prove per block (three per proof, as the stub does)",
        "statements",
        "pad_blocks_3_prove_per_block_s",
        "<=",
        0.070,
        "s",
    ),
    (16, "client CPU per 64-byte query (Q + its PAD block)", "statements", "query_core_s", "<=", 0.2, "s"),
    (16, "CO ChaCha20 prove", "statements", "co_chacha20_prove_s", "<=", 2.0, "s"),
    (
        17,
        "bootstrap download, default ChaCha20 stub (policy included)",
        "keys",
        lambda a: a["bootstrap_bytes"] / 1e6 if _num(a.get("bootstrap_bytes")) else None,
        "<=",
        250,
        "MB",
    ),
    (17, "first answer from a fresh state directory", "keys", "first_answer_fresh_s", "<=", 180, "s"),
]
NOT_TIMED = {
    4: "gadget constraint budgets (SHA-256 <= 27,000, ChaCha20 block <= 21,000) and native Poseidon "
    "throughput are not timed by `zkmb bench all`: see docs/circuits.md and `bench/test_bench_poseidon.py`",
    6: "the TLS client and DoT resolver have no performance target",
}

NOTES = {
    "algebra": "One Fq product is a 4x64-bit CIOS Montgomery multiplication whose 64x64->128 products come "
    "from an LLVM `i128` intrinsic. MSM is Pippenger with signed windows and conflict-free batch-affine "
    "bucket additions, with scalars 0 skipped and scalars 1 summed in a batch-affine tree. The pairing is "
    "an optimal ate with a NAF Miller loop over 6x+2, sparse line multiplication and the Scott et al. hard "
    "part with cyclotomic squarings; its value equals py_ecc's bit for bit. The first start on a machine "
    "compiles the kernels (announced on stderr); they are cached under `~/.cache/zkmb/numba/`.",
    "groth16": "Both provers get the same R1CS, witness and snarkjs `.zkey`; snarkjs 0.7.6 runs warm in "
    "one node process with its default worker threads (`zkmb/benchmarks/js/snarkjs_bench.js`), zkmb with "
    "numba on the machine's cores, one after the other. The scaling series uses square chains (every "
    "wire a full-size field element: the MSMs' worst case, no 0/1 fast path); above the largest cached "
    "powers-of-tau file only zkmb runs, with a key from its own setup.",
    "statements": "Witnesses come from a real TLS 1.3 session with the embedded resolver; the larger Q "
    "classes use EDNS-padded queries encrypted with that connection's real keystream. Setup runs once "
    "per circuit. The larger Q classes carry more public inputs (the packed ciphertext window); the "
    "verifier sums them from each key's fixed-base IC table (one point per non-zero 4-bit digit), so "
    "verification stays close to its three Miller loops and final exponentiation.",
    "policy": "The Q circuit's Merkle tree has a fixed shape (4-ary, depth 11), so a query proof costs the "
    "same for any policy up to 2^22 leaves; what grows with the policy is the build (most of it is hashing "
    "the keys: each key is a 9-input Poseidon) and, logarithmically, the lookup.",
    "middlebox": "Everything is real: a recorded DoT session with its CO, PAD and Q proofs made with the "
    "demo keys; hold time is measured by replaying the session into many sans-IO flows sharing one "
    "verification pool, offered at a fraction of the measured batched capacity. The service's pool "
    "(`VerifyPool`) puts at most 16 waiting proofs of one circuit into a batch, so the batched figure in "
    "the summary is for batches of 16; `batch64_*` and `batch_verify_per_s_core` time the library's batch "
    "check on 64 proofs, a batch the service never forms. `hold_mean_batch` is the mean batch the pool "
    "actually formed under the hold measurement's load.",
    "e2e": "The demo stack on loopback (embedded resolver, relay middlebox with real verification, stub with "
    "real proofs); added latency is, per distinct uncached name, the stub's latency minus the same query's "
    "latency straight to the resolver over one kept-open DoT connection. The latency figures are one "
    "client sending one query at a time with a pause between queries (`gap_s`), a user's pace at which "
    "the stub's background PAD proofs keep ahead; only `qps` has concurrent clients (`qps_clients`). "
    "The process-level part (`zkmb/benchmarks/live.py`) runs the stub and the middlebox as their own "
    "processes (`zkmb stub`, `zkmb middlebox`) in front of a real unbound from its Debian package with its "
    "default settings (30 s idle time-out), then the embedded resolver: `idle_p50_ms` is 10 queries 0.5 s "
    "apart; `burst30_*` are 30 distinct names asked at once, the median of three bursts (the first right "
    "after those 10 queries; each in `burst30_runs_s`), failures counted over all 90 (strict and async "
    "middlebox; `plain_burst30_s` "
    "the same names pipelined straight to unbound over one DoT connection); `async_added_p50_ms` is the "
    "async stub's latency minus the same names' straight DoT latency; `after_idle_ms` a query after 45 s "
    "of silence, the median of three (each after the stub settled; each in `after_idle_runs_ms`); "
    "`idle_cpu_s_per_min` the stub process's user+system CPU per minute over two quiet "
    "minutes after its look-ahead proofs settled (its keep-alive queries included); `stub_rss_mb` its "
    "resident memory after "
    "the runs (`stub_peak_rss_mb` the peak, at start-up while the channel opening compiles); `loaded_*` "
    "10 queries 0.5 s apart while two busy-loop processes at normal priority hold both cores; "
    "`busy_start_burst30_async_*` an async stack started while two busy loops run, a burst of 30 new "
    "names 2 s after its first answer, which the async stub sends before the channel opening is "
    "accepted: the burst meets the opening still being proven (each query's time, sorted, in "
    "`busy_start_burst30_async_each_s`; a SERVFAIL counts at its time).",
    "keys": "A fresh state directory bootstraps from a local publishing endpoint (a fresh single-party setup "
    "of the stub's default circuits, the demo's policy): only the files the stub uses (compact proving keys, "
    "the SRS parts below its largest domain), each checked against the manifest's SHA-256; decompression "
    "validates every point (G2 points in G2, exactly), the key check is exact where it is not a random "
    "combination over 2^253 values; then the stub and a relay middlebox start and the first query waits for "
    "the channel opening. Bytes are what the endpoint sent.",
    "baseline": "stubby (getdns) forwarding plain DNS from a loopback UDP port over DoT to the same embedded "
    "resolver, authenticated against its certificate, no DNSSEC, no other upstream: what a user pays for "
    "DoT without privacy-preserving filtering.",
}

AREA_TITLES = {
    "algebra": "Algebra core",
    "groth16": "Groth16 against snarkjs",
    "statements": "Statements",
    "policy": "Blocklist policy",
    "middlebox": "Middlebox",
    "e2e": "End to end",
    "baseline": "Baseline: plain DoT through stubby",
    "keys": "Client bootstrap and keys",
}
META_KEYS = {"machine", "python", "date", "commit", "suite"}


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _area(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    a = doc.get("areas", {}).get(name)
    return a if isinstance(a, dict) and "error" not in a and "skipped" not in a else None


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if not _num(v):
        return str(v)
    if float(v).is_integer():
        s = f"{int(v):,}"
        return s if unit == "" else (f"{s}{unit}" if unit in ("x", "/s") else f"{s} {unit}")
    a = abs(v)
    if a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 0.1:
        s = f"{v:.3g}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip() if unit not in ("x", "/s") else f"{s}{unit}"


def stamp(meta: dict[str, Any]) -> str:
    """``machine · date · commit`` as every figure and the header state it."""
    commit = meta.get("commit_short") or str(meta.get("commit", "unknown"))[:7]
    dirty = " (+ uncommitted changes)" if meta.get("dirty") else ""
    quick = " · QUICK RUN (few repetitions)" if meta.get("quick") else ""
    return (
        f"{meta.get('machine', 'unknown machine')} · {meta.get('date', '?')} · commit {commit}{dirty}{quick}"
    )


def summary_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """``(issue, metric, target, measured, verdict)`` for every target of issues #2-#9."""
    rows = []
    for issue, metric, area, key, op, target, unit in TARGETS:
        a = _area(doc, area)
        v = None
        if a is not None:
            v = key(a) if callable(key) else a.get(key)
        if not _num(v):
            status = doc.get("areas", {}).get(area)
            why = "not run" if status is None else ("failed" if "error" in status else "not measured")
            if isinstance(status, dict) and "skipped" in status:
                why = "skipped"
            verdict = why
        else:
            ok = v <= target if op == "<=" else v >= target
            verdict = "met" if ok else "**miss**"
        tgt = f"{op} {_fmt(target, unit)}"
        rows.append((f"#{issue}", metric, tgt, _fmt(v, unit) if _num(v) else "—", verdict))
    for issue, text in NOT_TIMED.items():
        rows.append((f"#{issue}", text, "—", "—", "not timed here"))
    rows.sort(key=lambda r: int(r[0][1:]))
    return rows


_BREAKDOWN_PARTS = (
    ("listener", "stub: DNS listener and local policy check"),
    ("pad_wait", "waiting for PAD proofs"),
    ("q_queue", "waiting for the proving thread"),
    ("q_witness", "witness (Q assignment and solve)"),
    ("q_prove", "Q proof (NTTs and MSMs)"),
    ("release_wait", "waiting for earlier records"),
    ("response", "record sent → answer (transport, middlebox verification and hold, resolver)"),
)
_PROVER_STEPS = (("qap_ntt", "NTTs (QAP)"), ("msm_g1", "G1 MSMs"), ("msm_g2", "G2 MSM"))


def latency_budget(doc: dict[str, Any]) -> dict[str, Any] | None:
    """One query's added latency in parts: e2e's own ``breakdown_ms`` when present, else a composition of
    other suites' medians (labelled as such).  ``{"source", "parts": [(name, ms)], "largest", "total_ms",
    "added_p50_ms"}`` or None when there is nothing to show."""
    e2e = _area(doc, "e2e") or {}
    st = _area(doc, "statements") or {}
    mb = _area(doc, "middlebox") or {}
    parts: list[tuple[str, float]] = []
    source = ""
    bd = e2e.get("breakdown_ms")
    notes: list[str] = []
    if isinstance(bd, dict) and any(_num(v) for v in bd.values()):
        # the critical path of one query, in order; `direct` (the same query over plain DoT) is the
        # baseline subtracted from the sum, `q_accept` overlaps `response`, `pads_promoted` is a count
        for key, label in _BREAKDOWN_PARTS:
            if _num(bd.get(key)):
                parts.append((label, float(bd[key])))
        known = {k for k, _ in _BREAKDOWN_PARTS} | {"direct", "q_accept", "pads_promoted"}
        parts += [(str(k), float(v)) for k, v in bd.items() if k not in known and _num(v)]
        if _num(bd.get("direct")):
            parts.append(("minus the same query over plain DoT (`direct`)", -float(bd["direct"])))
        source = "e2e suite, `breakdown_ms` (medians per part over the latency queries of one run)"
        pp = st.get("q_64_prove_parts_ms") or {}
        split = [(label, pp[k]) for k, label in _PROVER_STEPS if _num(pp.get(k))]
        if split:
            notes.append(
                "The Q proof's steps, timed alone by the statements suite (Q-64): "
                + ", ".join(f"{label} {_fmt(ms, 'ms')}" for label, ms in split)
                + "."
            )
        if _num(bd.get("q_accept")):
            notes.append(
                f"Proof sent → middlebox's Accepted (verification plus transport, inside `response`): "
                f"{_fmt(bd['q_accept'], 'ms')}."
            )
        if _num(mb.get("verify_ms")):
            notes.append(f"One Q-64 verification alone (middlebox suite): {_fmt(mb['verify_ms'], 'ms')}.")
    else:
        pp = st.get("q_64_prove_parts_ms") or {}
        if _num(st.get("q_64_solve_s")):
            parts.append(("witness (solve, Q-64)", st["q_64_solve_s"] * 1e3))
        for k, label in (("qap_ntt", "NTTs (QAP)"), ("msm_g1", "G1 MSMs"), ("msm_g2", "G2 MSM")):
            if _num(pp.get(k)):
                parts.append((label, pp[k]))
        if not pp and _num(st.get("q_64_prove_s")):
            parts.append(("prove (Q-64)", st["q_64_prove_s"] * 1e3))
        if _num(e2e.get("direct_p50_ms")):
            parts.append(("transport (one DoT round trip, p50)", e2e["direct_p50_ms"]))
        if _num(mb.get("verify_ms")):
            parts.append(("verification (Q-64)", mb["verify_ms"]))
        if _num(mb.get("hold_p50_ms")):
            parts.append(("hold beyond verification (p50)", mb["hold_p50_ms"]))
        source = (
            "composed from separate suites' medians (statements: solve and prover steps timed alone; e2e: "
            "direct DoT; middlebox: verify and hold) — not a decomposition of one query; the difference to "
            "the measured added latency is contention and scheduling inside the stub"
        )
    if not parts:
        return None
    largest = max(parts, key=lambda p: p[1])
    return {
        "source": source,
        "parts": parts,
        "largest": largest[0],
        "total_ms": sum(p[1] for p in parts),
        "added_p50_ms": e2e.get("added_p50_ms"),
        "notes": notes,
    }


# --------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, meta: dict[str, Any], runs: str, path: Path) -> Path:
    fig.text(0.01, 0.005, f"{stamp(meta)} · {runs}", fontsize=6.5, color="#444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def fig_prover(doc, img: Path) -> Path | None:
    g = _area(doc, "groth16") or {}
    sc = g.get("scaling") or {}
    pts = [p for p in sc.get("points", []) if _num(p.get("prove_s"))]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [p["constraints"] for p in pts]
    ax.plot(xs, [p["prove_s"] for p in pts], "o-", label="zkmb")
    js = [p for p in pts if _num(p.get("snarkjs_prove_s"))]
    if js:
        ax.plot(
            [p["constraints"] for p in js], [p["snarkjs_prove_s"] for p in js], "s-", label="snarkjs 0.7.6"
        )
        for p in js:
            ax.annotate(
                f"{p['ratio']:.1f}x",
                (p["constraints"], p["snarkjs_prove_s"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
    skipped = [p for p in pts if "snarkjs_skipped" in p]
    if skipped and js:
        ax.axvline(js[-1]["constraints"] * 1.4, color="#999", ls=":", lw=1)
        ax.text(
            js[-1]["constraints"] * 1.5,
            ax.get_ylim()[0] * 1.5,
            f"snarkjs stops: no ptau\nabove 2^{sc.get('snarkjs_max_log2')}",
            fontsize=7,
            color="#555",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("constraints (square chain, 2^k - 4)")
    ax.set_ylabel("prove time (s)")
    ax.set_title("Groth16 prover time vs constraint count (ratio = snarkjs / zkmb, same run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _finish(
        fig, doc["meta"], f"median of {sc.get('runs', '?')} runs per point", img / "prover_scaling.png"
    )


def fig_msm_ntt(doc, img: Path) -> Path | None:
    a = _area(doc, "algebra") or {}
    sc = a.get("scaling") or {}
    if not sc.get("msm_g1") and not sc.get("ntt"):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, title in ((axes[0], "msm_g1", "G1 MSM, random scalars"), (axes[1], "ntt", "NTT over Fr")):
        series = sc.get(key) or []
        for t in sorted({p["threads"] for p in series}):
            pts = [p for p in series if p["threads"] == t]
            ax.plot(
                [2 ** p["log2"] for p in pts], [p["s"] for p in pts], "o-", label=f"{t} core{'s' * (t > 1)}"
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("size n")
        ax.set_ylabel("time (s)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    return _finish(
        fig, doc["meta"], f"median of {sc.get('runs', '?')} runs per point", img / "msm_ntt_scaling.png"
    )


def fig_query(doc, img: Path) -> Path | None:
    st = _area(doc, "statements") or {}
    pol = _area(doc, "policy") or {}
    classes = sorted(
        int(k[2:-8]) for k in st if k.startswith("q_") and k.endswith("_prove_s") and k[2:-8].isdigit()
    )
    pts = (pol.get("sizes") or {}).get("points") or []
    if not classes and not pts:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    ax = axes[0]
    if classes:
        ys = [st[f"q_{b}_prove_s"] * 1e3 for b in classes]
        ax.bar([str(b) for b in classes], ys, color="#4c72b0")
        for i, b in enumerate(classes):
            c = st.get(f"q_{b}_constraints")
            if _num(c):
                ax.text(i, ys[i], f"{c / 1000:.1f}k", ha="center", va="bottom", fontsize=7)
    else:
        ax.text(0.5, 0.5, "statements suite not in this document", ha="center", transform=ax.transAxes)
    ax.set_xlabel("query size class (bytes)")
    ax.set_ylabel("Q proof time (ms)")
    ax.set_title("Q proof per size class (labels: constraints)")
    ax = axes[1]
    if pts:
        ax.plot([p["rules"] for p in pts], [p["q_64_prove_s"] * 1e3 for p in pts], "o-")
        ax.set_ylim(bottom=0)
        ax.set_xscale("log")
    ax.set_xlabel("policy rules")
    ax.set_ylabel("Q-64 proof time (ms)")
    ax.set_title("Q-64 proof vs policy size (tree depth fixed)")
    ax = axes[2]
    if pts:
        xs = [p["rules"] for p in pts]
        ax.plot(xs, [p["build_s"] for p in pts], "o-", color="#c44e52", label="build (s)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("build time (s)")
        ax2 = ax.twinx()
        ax2.plot(xs, [p["lookup_ms"] for p in pts], "s--", color="#55a868", label="lookup (ms)")
        ax2.set_ylabel("lookup (ms)")
        ax2.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7)
        ax2.legend(loc="lower right", fontsize=7)
    ax.set_xlabel("policy rules")
    ax.set_title("what does grow: build and lookup")
    runs = (
        f"statements: median of {st.get('runs', '?')} runs; policy series: Q median of "
        + str((pol.get("sizes") or {}).get("runs", "?"))
        + " runs, lookup median of 200 names, build 1 run"
    )
    return _finish(fig, doc["meta"], runs, img / "query_proofs.png")


def _samples(area: dict[str, Any] | None, prefix: str) -> dict[str, list[float]]:
    if not area:
        return {}
    return {
        k[: -len("_samples_ms")]: [float(x) for x in v]
        for k, v in area.items()
        if k.endswith("_samples_ms")
        and isinstance(v, list)
        and v
        and (k.startswith("added") == (prefix == "added"))
    }


def fig_latency(doc, img: Path) -> Path | None:
    e2e, base = _area(doc, "e2e"), _area(doc, "baseline")
    panels = []
    for kind, title, xlabel in (
        ("total", "per-query latency seen by the application", "latency (ms)"),
        ("added", "added latency vs direct DoT, same names", "added latency (ms)"),
    ):
        curves = {}
        for label, area in (("zkmb e2e", e2e), ("stubby", base)):
            for k, xs in _samples(area, kind).items():
                curves[f"{label}: {k.replace('_', ' ')}"] = xs
        panels.append((title, xlabel, curves))
    if not any(c for _t, _x, c in panels):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (title, xlabel, curves) in zip(axes, panels, strict=True):
        for label, xs in curves.items():
            xs = sorted(xs)
            ax.step(
                xs, [(i + 1) / len(xs) for i in range(len(xs))], where="post", label=f"{label} (n={len(xs)})"
            )
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction of queries")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if curves:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no per-query samples in the JSON", ha="center", transform=ax.transAxes)
    return _finish(fig, doc["meta"], "every query of one run (empirical CDF)", img / "latency_cdf.png")


def fig_middlebox(doc, img: Path) -> Path | None:
    mb = _area(doc, "middlebox") or {}
    bars = [
        (label, mb.get(k))
        for label, k in (
            ("single", "verify_per_s_core"),
            ("batch 16\n(the service's largest)", "batch16_verify_per_s_core"),
            ("batch 64\n(library only)", "batch64_verify_per_s_core"),
        )
        if _num(mb.get(k))
    ]
    if not bars:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color="#4c72b0")
    for i, (_l, v) in enumerate(bars):
        ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(500, color="#c44e52", ls="--", lw=1, label="target single: 500/s")
    ax.axhline(1500, color="#dd8452", ls=":", lw=1, label="target batched: 1500/s")
    ax.set_ylabel("Q-64 verifications per second per core")
    ax.set_title("Middlebox verification throughput (1 thread)")
    ax.legend(fontsize=7)
    return _finish(fig, doc["meta"], f"median of {mb.get('runs', '?')} runs", img / "middlebox_verify.png")


FIGURES = {
    "prover_scaling": fig_prover,
    "msm_ntt_scaling": fig_msm_ntt,
    "query_proofs": fig_query,
    "latency_cdf": fig_latency,
    "middlebox_verify": fig_middlebox,
}


def make_figures(doc: dict[str, Any], img_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every figure the document has data for; ``{name: path}``."""
    img = Path(img_dir)
    img.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, fn in FIGURES.items():
        p = fn(doc, img)
        if p is not None:
            out[name] = p
    return out


# --------------------------------------------------------------------------- markdown


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _scalars(a: dict[str, Any]) -> list[list[str]]:
    rows = []
    for k in sorted(a):
        v = a[k]
        if k in META_KEYS or isinstance(v, dict | list):
            continue
        unit = next(
            (
                u
                for suffix, u in (
                    ("_per_s", "/s"),
                    ("_per_s_core", "/s"),
                    ("qps", "/s"),
                    ("_ms", "ms"),
                    ("_s", "s"),
                    ("_ns", "ns"),
                    ("_mb", "MiB"),
                )
                if k.endswith(suffix)
            ),
            "",
        )
        rows.append([f"`{k}`", _fmt(v, unit)])
    return rows


def _area_extra(name: str, a: dict[str, Any]) -> list[str]:
    out = []
    if name == "groth16":
        sc = a.get("scaling") or {}
        pts = sc.get("points") or []
        if pts:
            rows = [
                [
                    f"2^{p['log2']}",
                    _fmt(p.get("constraints")),
                    _fmt(p.get("prove_s"), "s"),
                    _fmt(p.get("snarkjs_prove_s"), "s") if "snarkjs_prove_s" in p else "not run",
                    _fmt(p.get("ratio"), "x") if "ratio" in p else "—",
                    p.get("key", ""),
                ]
                for p in pts
            ]
            out.append(f"Prover scaling ({sc.get('circuit', '')}; median of {sc.get('runs', '?')} runs):\n")
            out.append(_table(["size", "constraints", "zkmb prove", "snarkjs prove", "ratio", "key"], rows))
            why = next((p["snarkjs_skipped"] for p in pts if "snarkjs_skipped" in p), None)
            if why:
                out.append(f"\nWhere snarkjs stops: {why}.")
        elif "error" in sc:
            out.append(f"Prover scaling failed: `{sc['error'][:300]}`")
    if name == "algebra":
        sc = a.get("scaling") or {}
        for key, label in (("msm_g1", "G1 MSM, random scalars"), ("ntt", "NTT")):
            series = sc.get(key) or []
            if not series:
                continue
            threads = sorted({p["threads"] for p in series})
            by = {(p["log2"], p["threads"]): p["s"] for p in series}
            rows = [
                [f"2^{k}"] + [_fmt(by.get((k, t)), "s") for t in threads]
                for k in sorted({p["log2"] for p in series})
            ]
            out.append(f"{label} vs size (median of {sc.get('runs', '?')} runs):\n")
            out.append(_table(["n"] + [f"{t} core{'s' * (t > 1)}" for t in threads], rows) + "\n")
    if name == "statements":
        names = [
            k[: -len("_constraints")] for k in a if k.endswith("_constraints") and not k.startswith("zkmb_")
        ]
        if names:
            rows = [
                [
                    n,
                    _fmt(a.get(f"{n}_constraints")),
                    _fmt(a.get(f"{n}_setup_s"), "s"),
                    _fmt(a.get(f"{n}_prove_s"), "s"),
                    _fmt(a.get(f"{n}_verify_ms"), "ms"),
                    _fmt((a.get(f"{n}_pk_bytes") or 0) / 2**20, "MiB") if a.get(f"{n}_pk_bytes") else "—",
                ]
                for n in names
            ]
            out.append(
                f"Per statement (prove: median of {a.get('runs', '?')} runs, CO {a.get('co_runs', '?')}; "
                "setup once):\n"
            )
            out.append(_table(["statement", "constraints", "setup", "prove", "verify", "proving key"], rows))
        pp = a.get("q_64_prove_parts_ms")
        if isinstance(pp, dict):
            out.append(
                "\nQ-64 prover steps timed one by one (MSMs on window tables, as the stub runs them): "
                + ", ".join(f"{k} {_fmt(v, 'ms')}" for k, v in pp.items() if _num(v))
                + "."
            )
        tabled = [n for n in names if _num(a.get(f"{n}_tables_ratio"))]
        if tabled:
            out.append(
                "\nQuery proofs use MSM window tables (the stub builds them in memory once, after its first "
                "channel opening; `--no-msm-tables` turns them off). Prove time with and without, runs "
                "alternating in one process:\n"
            )
            out.append(
                _table(
                    ["statement", "with tables", "without", "median ratio", "table memory", "built in"],
                    [
                        [
                            n,
                            _fmt(a.get(f"{n}_prove_s"), "s"),
                            _fmt(a.get(f"{n}_prove_no_tables_s"), "s"),
                            _fmt(a.get(f"{n}_tables_ratio")),
                            _fmt(a.get(f"{n}_table_mb"), "MiB"),
                            _fmt(a.get(f"{n}_table_build_s"), "s"),
                        ]
                        for n in tabled
                    ],
                )
            )
    if name == "keys":
        dec, chk = a.get("decompress_s") or {}, a.get("keycheck_s") or {}
        if dec or chk:
            rows = [
                [n, _fmt(dec.get(n), "s"), _fmt(chk.get(n), "s")] for n in a.get("circuits") or sorted(dec)
            ]
            out.append("Per circuit, in the fresh bootstrap (one run):\n")
            out.append(_table(["circuit", "decompress", "key check"], rows))
        files = a.get("bootstrap_files")
        if files:
            out.append("\nFetched: " + ", ".join(f"`{f}`" for f in files) + ".")
    if name == "middlebox" and _num(a.get("hold_mean_batch")):
        offered = (
            f", {_fmt(a['hold_offered_per_s'], '/s')} offered" if _num(a.get("hold_offered_per_s")) else ""
        )
        out.append(
            f"Batches the service forms: at most 16 proofs; under the hold measurement's load"
            f"{offered} the pool's batches held {_fmt(a['hold_mean_batch'])} proofs on average."
        )
    if name == "e2e" and _num(a.get("gap_s")):
        out.append(
            f"Latency: one client, one query at a time, {_fmt(a['gap_s'], 's')} between queries"
            + (f"; `qps`: {a['qps_clients']} concurrent clients." if _num(a.get("qps_clients")) else ".")
        )
    if name == "e2e":
        runs = [
            f"{label} " + ", ".join(_fmt(t, "s") for t in a[key])
            for label, key in (("strict", "burst30_runs_s"), ("async", "burst30_async_runs_s"))
            if isinstance(a.get(key), list) and all(_num(t) for t in a[key])
        ]
        if runs:
            out.append("Each burst of 30 names, in order: " + "; ".join(runs) + ".")
        idle = a.get("after_idle_runs_ms")
        if isinstance(idle, list) and idle and all(_num(t) for t in idle):
            each = ", ".join(_fmt(t, "ms") for t in idle)
            out.append(f"Each query after 45 s of silence, in order: {each}.")
        busy = a.get("busy_start_burst30_async_each_s")
        if isinstance(busy, list) and busy and all(_num(t) for t in busy):
            out.append(
                "The busy start-up burst (async), each query's time, sorted: "
                + ", ".join(_fmt(t, "s") for t in busy)
                + f" ({_fmt(a.get('busy_start_burst30_async_fail'))} not answered)."
            )
    if name == "policy" and _num(a.get("rules_4m")) and _num(a.get("rules_150k")):
        synthetic = a["rules_4m"] - a["rules_150k"]
        out.append(
            f"The 4M-rule build is the shared lists ({_fmt(a['rules_150k'])} rules) plus "
            f"{_fmt(synthetic)} seeded synthetic names (random labels under common TLDs): "
            f"{100 * synthetic / a['rules_4m']:.1f}% of its names are synthetic.\n"
        )
    if name == "policy":
        sz = a.get("sizes") or {}
        pts = sz.get("points") or []
        if pts:
            rows = [
                [
                    _fmt(p.get("rules")),
                    _fmt(p.get("build_s"), "s"),
                    _fmt(p.get("peak_mb"), "MiB"),
                    _fmt(p.get("load_s"), "s"),
                    _fmt(p.get("lookup_ms"), "ms"),
                    _fmt(p.get("q_64_prove_s"), "s"),
                ]
                for p in pts
            ]
            out.append(
                f"Against policy size (build 1 run in a child process; lookup median of 200 names; Q-64 "
                f"proof median of {sz.get('runs', '?')} runs; tree arity {sz.get('tree_arity', 2)}, "
                f"depth {sz.get('tree_depth', '?')}):\n"
            )
            out.append(_table(["rules", "build", "peak RSS", "cached load", "lookup", "Q-64 prove"], rows))
    return out


def render_markdown(
    doc: dict[str, Any], figures: dict[str, Path], md_path: Path, json_path: str | None = None
) -> str:
    """The whole report as Markdown (figure links relative to ``md_path``)."""
    meta = doc.get("meta", {})
    rel = {k: os.path.relpath(p, md_path.parent) for k, p in figures.items()}
    w = []
    w.append("# Benchmarks\n")
    w.append(
        "<!-- generated by `zkmb bench all` / `zkmb bench report JSON` (zkmb/benchmarks/report.py); "
        "edit the generator, not this file -->\n"
    )
    load = meta.get("loadavg_start")
    w.append(
        f"Measured on **{meta.get('machine', '?')}** ({meta.get('os', '?')}; "
        f"Python {meta.get('python', '?')}, numpy {meta.get('numpy', '?')}, numba {meta.get('numba', '?')}), "
        f"{meta.get('started', meta.get('date'))} to {meta.get('finished', '?')} UTC, "
        f"commit `{meta.get('commit', '?')}`"
        f"{' with uncommitted changes' if meta.get('dirty') else ''}"
        f"{f', load average {load[0]:.2f} at the start' if load else ''}."
        f"{' **Quick run: few repetitions, noisy numbers.**' if meta.get('quick') else ''} "
        "Values are medians; each table and figure says of how many runs. Comparisons (ratios) come from "
        "one run on one machine. Every suite ran in its own interpreter, one after the other."
        + (f" The raw numbers: `{json_path}`." if json_path else "")
        + " How to reproduce: [bench/README.md](../bench/README.md).\n"
    )
    wall = meta.get("wall_s") or {}
    if wall:
        w.append(
            "Wall time per suite: " + ", ".join(f"{k} {v:.0f} s" for k, v in wall.items() if _num(v)) + ".\n"
        )
    for area, r in (meta.get("reruns") or {}).items():
        if isinstance(r, dict):
            dirty = " with uncommitted changes" if r.get("dirty") else ""
            w.append(
                f"The {area} suite was re-run on its own ({r.get('started', '?')} UTC, commit "
                f"`{str(r.get('commit', '?'))[:12]}`{dirty}): {r.get('reason', '')}\n"
            )

    w.append("## Summary against the targets of issues #2-#9 and #15-#17\n")
    w.append(
        _table(["issue", "metric", "target", "measured", ""], [list(r) for r in summary_rows(doc)], "lllrl")
        + "\n"
    )

    w.append("## Latency budget of one query\n")
    lb = latency_budget(doc)
    if lb is None:
        w.append("No data: the e2e, statements and middlebox suites did not run or failed.\n")
    else:
        tot = lb["total_ms"] or 1.0
        rows = [
            [name, _fmt(ms, "ms"), f"{100 * ms / tot:.0f}%" if ms >= 0 else ""] for name, ms in lb["parts"]
        ]
        w.append(f"Source: {lb['source']}.\n")
        w.append(_table(["part", "time", "share"], rows) + "\n")
        extra = ""
        if _num(lb.get("added_p50_ms")):
            extra = f" The measured added latency (e2e, p50) is {_fmt(lb['added_p50_ms'], 'ms')}."
        w.append(
            f"The largest part is **{lb['largest']}**; the parts add up to "
            f"{_fmt(lb['total_ms'], 'ms')}.{extra}\n"
        )
        for note in lb.get("notes", []):
            w.append(f"- {note}")
        if lb.get("notes"):
            w.append("")

    captions = {
        "prover_scaling": "Prover time against constraint count, zkmb and snarkjs on the same R1CS and key.",
        "msm_ntt_scaling": "G1 MSM and NTT time against size, 1 and 2 cores.",
        "query_proofs": "Q proof time per size class, and against the policy's size with what does grow.",
        "latency_cdf": "Per-query DNS latency (CDF): zkmb stub with proofs, direct DoT without, stubby.",
        "middlebox_verify": "Middlebox verifications per second per core, single and batched.",
    }
    fig_of_area = {
        "algebra": ["msm_ntt_scaling"],
        "groth16": ["prover_scaling"],
        "statements": [],
        "policy": ["query_proofs"],
        "middlebox": ["middlebox_verify"],
        "e2e": ["latency_cdf"],
        "baseline": [],
        "keys": [],
    }
    areas = doc.get("areas", {})
    for name in list(AREA_TITLES) + [a for a in areas if a not in AREA_TITLES]:
        w.append(f"## {AREA_TITLES.get(name, name)} (`zkmb bench {name} --json`)\n")
        raw = areas.get(name)
        if raw is None:
            w.append("Not run in this document.\n")
        elif "error" in raw:
            w.append(f"**Failed** after {_fmt(wall.get(name), 's')}: `{str(raw['error'])[:500]}`\n")
            tail = raw.get("stderr_tail") or ""
            if tail:
                w.append("```\n" + tail[-1200:].strip() + "\n```\n")
        elif "skipped" in raw:
            w.append(f"Skipped: {raw['skipped']}.\n")
        else:
            if name in NOTES:
                w.append(NOTES[name] + "\n")
            runs = raw.get("runs")
            of_runs = f" (medians of {runs} runs unless the key says otherwise)" if runs else ""
            w.append(f"All keys of the suite's JSON{of_runs}:\n")
            w.append(_table(["key", "value"], _scalars(raw), "lr") + "\n")
            for part in _area_extra(name, raw):
                w.append(part + "\n")
        for f in fig_of_area.get(name, []):
            if f in rel:
                w.append(f"![{captions[f]}]({rel[f]})\n\n*{captions[f]}* {stamp(meta)}.\n")
    w.append("## How to reproduce\n")
    w.append(
        "See [bench/README.md](../bench/README.md): `zkmb bench all --json` on an otherwise idle machine "
        "writes the JSON and regenerates this page and its figures; `zkmb bench report JSON` regenerates "
        "them from a saved JSON; the pytest-benchmark suites run on their own with "
        "`pytest bench/ --benchmark-only`.\n"
    )
    return "\n".join(w)


def write_report(
    doc: dict[str, Any],
    md_path: str | os.PathLike,
    img_dir: str | os.PathLike,
    json_path: str | None = None,
) -> list[Path]:
    """Write the figures into ``img_dir`` and the Markdown report to ``md_path``; the paths written."""
    md = Path(md_path)
    md.parent.mkdir(parents=True, exist_ok=True)
    doc = dict(doc)
    doc.setdefault("meta", {})
    doc.setdefault("areas", {})
    figures = make_figures(doc, img_dir)
    md.write_text(render_markdown(doc, figures, md, json_path=json_path))
    return [md, *figures.values()]
