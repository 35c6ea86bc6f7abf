"""`zkmb bench all` collection and the report generator on synthetic documents (no timing here)."""

from __future__ import annotations

import json

import pytest

from zkmb.benchmarks import report, runner
from zkmb.cli import main
from zkmb.errors import InvalidInput

META = {
    "machine": "Test CPU, 2 cores, 4.0 GiB",
    "date": "2026-01-01T00:00:00Z",
    "started": "2026-01-01T00:00:00Z",
    "finished": "2026-01-01T01:00:00Z",
    "commit": "0123456789abcdef",
    "commit_short": "0123456",
    "dirty": False,
    "quick": False,
    "wall_s": {"algebra": 10.0, "groth16": 20.0},
}


def full_doc() -> dict:
    algebra = {
        "runs": 11,
        "fq_mul_ns": 17.5,
        "msm_g1_2_16_s": 0.5,  # a miss
        "ntt_2_20_s": 0.14,
        "scaling": {
            "runs": 5,
            "threads": [1, 2],
            "msm_g1": [{"log2": k, "threads": t, "s": 2**k * 1e-6 / t} for k in (10, 11) for t in (1, 2)],
            "ntt": [{"log2": k, "threads": t, "s": 2**k * 1e-8 / t} for k in (10, 11, 12) for t in (1, 2)],
        },
    }
    groth16 = {
        "runs": 7,
        "prove_speedup": 6.0,
        "verify_ms": 1.0,
        "scaling": {
            "runs": 3,
            "snarkjs_max_log2": 12,
            "circuit": "square chain",
            "points": [
                {"log2": 12, "constraints": 4092, "prove_s": 0.07, "snarkjs_prove_s": 0.46, "ratio": 6.6,
                 "key": "snarkjs zkey"},
                {"log2": 13, "constraints": 8188, "prove_s": 0.13, "key": "zkmb setup",
                 "snarkjs_skipped": "no prepared powers of tau >= 2^13"},
            ],
        },
    }  # fmt: skip
    statements = {
        "runs": 7,
        "co_runs": 3,
        "q_64_constraints": 10655,
        "q_64_prove_s": 0.136,
        "q_64_verify_ms": 1.7,
        "q_64_solve_s": 0.01,
        "q_192_constraints": 17977,
        "q_192_prove_s": 0.19,
        "q_192_verify_ms": 2.3,
        "q_64_prove_parts_ms": {"qap_ntt": 30.0, "msm_g1": 70.0, "msm_g2": 25.0},
    }
    policy = {
        "build_150k_s": 5.5,
        "load_s": 0.014,
        "lookup_ms": 0.04,
        "build_4m_s": None,
        "sizes": {
            "runs": 5,
            "tree_depth": 22,
            "points": [
                {"target_rules": n, "rules": n, "build_s": n / 2e4, "peak_mb": 300, "load_s": 0.01,
                 "lookup_ms": 0.04, "q_64_prove_s": 0.14}
                for n in (10_000, 100_000)
            ],
        },
    }  # fmt: skip
    middlebox = {"runs": 5, "verify_per_s_core": 571, "batch16_verify_per_s_core": 2434,
                 "batch64_verify_per_s_core": 3876, "batch_verify_per_s_core": 3876, "hold_p50_ms": 1.8,
                 "verify_ms": 1.75}  # fmt: skip
    e2e = {"added_p50_ms": 274, "added_p99_ms": 408, "direct_p50_ms": 0.45}
    baseline = {
        "stubby_p50_ms": 1.2,
        "stubby_samples_ms": [1.0, 1.2, 1.5, 9.0],
        "direct_samples_ms": [0.3, 0.4, 0.4, 0.6],
        "added_samples_ms": [0.7, 0.8, 1.1, 8.4],
    }
    return {
        "schema": 1,
        "meta": META,
        "areas": {
            "algebra": algebra,
            "groth16": groth16,
            "statements": statements,
            "policy": policy,
            "middlebox": middlebox,
            "e2e": e2e,
            "baseline": baseline,
        },
    }


def test_full_report_writes_markdown_and_figures(tmp_path):
    written = report.write_report(full_doc(), tmp_path / "docs" / "benchmarks.md", tmp_path / "docs" / "img")
    names = {p.name for p in written}
    assert names == {"benchmarks.md", "prover_scaling.png", "msm_ntt_scaling.png", "query_proofs.png",
                     "latency_cdf.png", "middlebox_verify.png"}  # fmt: skip
    for p in written:
        assert p.exists() and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "](img/prover_scaling.png)" in md
    assert "commit `0123456789abcdef`" in md and "Test CPU" in md
    # targets: a met one, a miss, and one whose key is absent
    assert "| #2 | Fq multiplication | <= 20 ns | 17.5 ns | met |" in md
    assert "| #2 | G1 MSM 2^16, random scalars, 1 core | <= 0.3 s | 0.5 s | **miss** |" in md
    assert "| #5 | build, 4M rules (shared lists + synthetic names) | <= 300 s | — | not measured |" in md
    # the slowest statement's verification decides that row
    assert "verify, slowest statement | <= 2 ms | 2.3 ms | **miss**" in md
    assert "Where snarkjs stops: no prepared powers of tau >= 2^13." in md
    # latency budget composed from the other suites (no breakdown_ms in e2e), largest part named
    assert "The largest part is **G1 MSMs**" in md and "composed from separate suites" in md


def test_budget_uses_e2e_breakdown_when_present():
    doc = full_doc()
    doc["areas"]["e2e"]["breakdown_ms"] = {
        "listener": 1.0,
        "q_witness": 20.0,
        "q_prove": 250.0,
        "response": 4.0,
        "q_accept": 3.0,  # overlaps response: a note, not a part
        "direct": 2.0,  # the baseline: subtracted
        "pads_promoted": 0,  # a count
        "new_part": 5.0,  # an unknown part still shows
    }
    lb = report.latency_budget(doc)
    assert lb["largest"] == "Q proof (NTTs and MSMs)" and "breakdown_ms" in lb["source"]
    assert lb["total_ms"] == 1.0 + 20.0 + 250.0 + 4.0 + 5.0 - 2.0
    names = [name for name, _ in lb["parts"]]
    assert "new_part" in names and not any("q_accept" in n or "pads_promoted" in n for n in names)
    assert any("Accepted" in note for note in lb["notes"])


def test_missing_failed_and_skipped_areas(tmp_path):
    doc = {
        "schema": 1,
        "meta": dict(META, quick=True),
        "areas": {
            "algebra": {"error": "exit status 1", "stderr_tail": "Traceback ...\nRuntimeError: boom"},
            "baseline": {"skipped": "stubby is not installed"},
        },
    }
    written = report.write_report(doc, tmp_path / "r.md", tmp_path / "img")
    assert [p.name for p in written] == ["r.md"]  # no data, no figures
    md = (tmp_path / "r.md").read_text()
    assert "**Failed**" in md and "RuntimeError: boom" in md
    assert "Skipped: stubby is not installed." in md
    assert "QUICK RUN" not in md or "Quick run" in md
    assert "| #2 | Fq multiplication | <= 20 ns | — | failed |" in md
    assert (
        "| #9 | added latency per query, p50 (one client, one query at a time) | <= 200 ms | — | not run |"
        in md
    )
    assert "No data" in md


def test_run_all_records_failures_and_goes_on():
    calls = []

    def fake(area, quick, timeout):
        calls.append((area, quick))
        if area == "groth16":
            raise RuntimeError("node missing")
        if area == "policy":
            return {"error": "exit status 2"}
        return {"x": 1}

    doc = runner.run_all(("algebra", "groth16", "policy"), quick=True, runner=fake, progress=lambda s: None)
    assert calls == [("algebra", True), ("groth16", True), ("policy", True)]
    assert doc["areas"]["algebra"] == {"x": 1}
    assert doc["areas"]["groth16"]["error"] == "RuntimeError: node missing"
    assert doc["areas"]["policy"]["error"] == "exit status 2"
    meta = doc["meta"]
    assert set(meta["wall_s"]) == {"algebra", "groth16", "policy"} and meta["quick"] is True
    for key in ("cpu", "cores", "ram_gib", "os", "python", "numpy", "numba", "date", "commit", "dirty"):
        assert key in meta


def test_parse_areas():
    assert runner.parse_areas(None) == runner.AREAS
    assert runner.parse_areas("e2e,algebra") == ("algebra", "e2e")
    with pytest.raises(InvalidInput):
        runner.parse_areas("algebra,nope")


def test_last_json_line():
    assert runner._last_json_line('zkmb: compiling\n{"a": 1}\n') == {"a": 1}
    with pytest.raises(ValueError):
        runner._last_json_line("no json here")


def test_cli_report_regenerates_from_saved_json(tmp_path):
    src = tmp_path / "all.json"
    src.write_text(json.dumps(full_doc()))
    md = tmp_path / "out" / "b.md"
    assert (
        main(["bench", "report", str(src), "--report", str(md), "--img", str(tmp_path / "out" / "img")]) == 0
    )
    assert md.exists() and (tmp_path / "out" / "img" / "latency_cdf.png").exists()
    assert str(src) in md.read_text()


def test_cli_report_needs_a_path(capsys):
    assert main(["bench", "report"]) == 1
    assert "needs the JSON" in capsys.readouterr().err


def test_report_says_what_the_numbers_are():
    """Issue #19: the batched figure is the service's (batches of at most 16, with the mean batch it
    formed under load), the e2e latency is one client with a gap, the 4M build's synthetic share is
    stated, and per-second keys carry a per-second unit."""
    doc = full_doc()
    doc["areas"]["middlebox"].update(hold_mean_batch=5.17, hold_offered_per_s=1200.0)
    doc["areas"]["e2e"].update(gap_s=0.5, qps_clients=8, qps=3.2)
    doc["areas"]["policy"].update(rules_150k=145_934, rules_4m=3_998_828, build_4m_s=162.7)
    md = report.render_markdown(doc, {}, report.Path("docs/benchmarks.md"))
    assert (
        "| #8 | batched verifications per second per core, batches of 16 (the most the service's pool "
        "forms) | >= 1,500/s | 2,434/s | met |"
    ) in md
    assert "at most 16 proofs" in md and "held 5.17 proofs on average" in md
    assert "a batch the service never forms" in md
    assert "one client, one query at a time, 0.5 s between queries; `qps`: 8 concurrent clients" in md
    assert "plus 3,852,894 seeded synthetic names" in md and "96.4% of its names are synthetic" in md
    assert "| `verify_per_s_core` | 571/s |" in md
    assert "| `hold_offered_per_s` | 1,200/s |" in md and "| `qps` | 3.2/s |" in md
    assert "| `gap_s` | 0.5 s |" in md


def test_keys_area_rows_and_section(tmp_path):
    """Issue #17's two targets come from the keys suite; its section shows the per-circuit times."""
    keys = {
        "runs": 1,
        "circuits": ["co_chacha20", "q_64"],
        "bootstrap_bytes": 164_871_445,
        "co_pk_bytes": 111_031_384,
        "first_answer_fresh_s": 190.0,  # a miss
        "decompress_s": {"co_chacha20": 45.1, "q_64": 0.7},
        "keycheck_s": {"co_chacha20": 48.6, "q_64": 0.4},
        "bootstrap_files": ["co_chacha20.pkc", "srs_0.srsc"],
    }
    doc = {"schema": 1, "meta": META, "areas": {"keys": keys}}
    rows = {r[1]: r for r in report.summary_rows(doc) if r[0] == "#17"}
    boot = rows["bootstrap download, default ChaCha20 stub (policy included)"]
    assert boot[3] == "165 MB" and boot[4] == "met"
    assert rows["first answer from a fresh state directory"][4] == "**miss**"
    md = report.render_markdown(doc, {}, tmp_path / "b.md")
    assert "issues #2-#9 and #15-#17" in md and "| co_chacha20 | 45.1 s | 48.6 s |" in md
    assert "`co_chacha20.pkc`" in md
