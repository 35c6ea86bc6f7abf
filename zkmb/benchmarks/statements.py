"""``zkmb bench statements``: the ZKMB statements end to end (constraints, setup, prove, verify, key sizes).

Witnesses come from real TLS 1.3 sessions with the embedded resolver (one per suite): CO opens the
captured client Finished, PAD proves block 0 of the first application record, Q proves records of
that connection against a small policy.  The q_64 record is the one the client really sent (an
unpadded A query); the q_128/q_192/q_320/q_448 records are EDNS-padded queries of that size class encrypted
with the same connection's keystream for the next record numbers (the client library pads to a
block size, not to an exact class).  Setup runs once per circuit; prove and verify are medians.
``--quick`` skips the AES-128-GCM CO circuit and uses fewer repetitions; every Q class runs in both
modes (their setups take under a second).  ``verify_max_ms`` is the slowest statement's verification
(issue #16: at most 2 ms each).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numba

from ..errors import ZkmbError
from . import median_time

QUICK_CIRCUITS = ("co_chacha20", "pad_block", "q_64", "q_128", "q_192", "q_320", "q_448")
FULL_CIRCUITS = ("co_chacha20", "co_aes128gcm", "pad_block", "q_64", "q_128", "q_192", "q_320", "q_448")
POLICY_RULES = (("evil.com", "subtree"), ("ads.example.org", "subtree"), ("tracker.net", "exact"))
REFERENCE = {
    "zkmb_paper_co_chacha20_constraints": 1_111_000,
    "zkmb_paper_co_chacha20_prove_s": 15.6,
    "zkmb_paper_dot_query_constraints": 176_000,
    "zkmb_paper_dot_query_prove_s": 3.1,
}
"""The ZKMB paper's figures (libsnark, 8 cores), for comparison only; not measured here."""


def capture_session(suite: str):
    """A CapturedSession of one DoT query to the embedded resolver (suite ``chacha20`` or ``aes128gcm``)."""
    import dns.message

    from ..resolver import BackgroundResolver, Responder, make_server_context
    from ..resolver.certs import make_self_signed, write_pair
    from ..tls import DotClient, TlsClientConfig
    from ..tls.records import SUITES_BY_NAME

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = write_pair(tmp, *make_self_signed())
        ctx = make_server_context(cert, key)
        with BackgroundResolver(Responder(static={"www.example.test": "192.0.2.1"}), ctx) as r:
            config = TlsClientConfig("127.0.0.1", cafile=str(cert), suites=(SUITES_BY_NAME[suite],))
            with DotClient("127.0.0.1", r.port, config, timeout=10) as c:
                c.query(dns.message.make_query("www.example.test", "A"))
                cap = c.capture
    if cap.suite_name != suite or not cap.client_app_records:
        raise ZkmbError(f"benchmark session did not negotiate {suite} or sent no query")
    return cap


def _policy():
    from ..policy import Kind, Rule, name_key, normalise, policy_from_rules

    rules = [Rule(name_key(n), Kind[k.upper()], n, "bench", i + 1) for i, (n, k) in enumerate(POLICY_RULES)]
    return policy_from_rules(normalise(rules))


def _query_record(keys, n: int, size: int | None) -> tuple[bytes, bytes]:
    """(ciphertext, pads) of an A query for www.example.test as record ``n``, padded to fill ``size``."""
    import dns.message
    import dns.rdatatype

    from ..circuits.witness import pad_block_native
    from ..dns.padding import pad_to_length

    q = dns.message.make_query("www.example.test", dns.rdatatype.A, use_edns=size is not None)
    msg = pad_to_length(q, size - 3) if size is not None else q.to_wire()
    plain = len(msg).to_bytes(2, "big") + msg + b"\x17"
    pads = b"".join(pad_block_native(keys.suite, keys.key, keys.iv, n, j) for j in range(7))
    return bytes(a ^ b for a, b in zip(plain, pads, strict=False)), pads


def _witnesses(quick: bool) -> dict[str, tuple[dict, list[int]]]:
    """``{circuit: (assignment, public inputs as the middlebox derives them)}``."""
    from ..circuits.public import co_public_inputs, pad_public_inputs, parse_channel
    from ..circuits.query_witness import query_assignment
    from ..circuits.witness import co_assignment, pad_assignment, pad_block_native, pads_assignment

    out: dict[str, tuple[dict, list[int]]] = {}
    policy = _policy()
    for suite in ("chacha20",) if quick else ("chacha20", "aes128gcm"):
        cap = capture_session(suite)
        co = co_assignment(cap)
        view = parse_channel(cap.client_bytes, cap.server_bytes)
        out[f"co_{suite}"] = (co.assignment, co_public_inputs(view, co.keys.comm_k))
        if suite != "chacha20":
            continue
        keys = co.keys
        rec = cap.client_app_records[0]
        pa = pad_assignment(keys, rec.seq, 0)
        out["pad_block"] = (
            pa.assignment,
            pad_public_inputs(keys.comm_k, rec.seq, 0, pa.comm_pad, next_record=0),
        )
        pas = pads_assignment(keys, [(rec.seq, 0), (rec.seq, 1), (rec.seq + 1, 0)])
        out["pad_blocks_3"] = (pas.assignment, pas.public)
        pads = b"".join(pad_block_native(keys.suite, keys.key, keys.iv, rec.seq, j) for j in range(7))
        qa = query_assignment(pads, rec.payload[:-16], policy)
        if qa.size != 64:
            raise ZkmbError(f"the captured query is in class {qa.size}, expected 64")
        out["q_64"] = (qa.assignment, qa.public)
        for i, size in enumerate((128, 192, 320, 448)):
            ct, pads = _query_record(keys, rec.seq + 1 + i, size)
            qa = query_assignment(pads, ct, policy, size=size)
            out[f"q_{size}"] = (qa.assignment, qa.public)
    return out


def bench_circuit(
    name: str,
    assignment: dict,
    public: list[int],
    runs: int,
    verify_runs: int,
    build=None,
    tables: bool | None = None,
) -> dict[str, Any]:
    """Constraints, setup time (once), prove and verify medians, key file sizes of one statement
    (``build``: the circuit's compiler when it has no key pair in ``circuits.keys``).

    ``tables`` (default: for the query statements, as the stub proves them): prove with MSM window
    tables, and also report ``prove_no_tables_s``, the median of per-run ratios ``tables_ratio`` (runs
    alternate with and without), ``table_build_s`` and ``table_mb``."""
    from ..circuits.keys import compile_circuit
    from ..groth16.keys import TABLE_PARTS
    from ..groth16.prover import prove
    from ..groth16.setup import setup
    from ..groth16.verifier import verify

    if tables is None:
        tables = name.startswith("q_")
    t0 = time.perf_counter()
    cs = compile_circuit(name) if build is None else build()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pk, vk = setup(cs)
    setup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        pk.save(Path(tmp) / "k.pk")
        vk.save(Path(tmp) / "k.vk")
        pk_bytes = (Path(tmp) / "k.pk").stat().st_size
        vk_bytes = (Path(tmp) / "k.vk").stat().st_size
    t0 = time.perf_counter()
    w = cs.solve(assignment)
    solve_s = time.perf_counter() - t0
    if w.public_inputs() != public:
        raise ZkmbError(f"{name}: the witness's public inputs differ from the middlebox's")
    extra: dict[str, Any] = {}
    if tables:  # as the stub proves queries: MSM window tables, built once per key
        plain_pk = dataclasses.replace(pk, tables={})
        t0 = time.perf_counter()
        for part in TABLE_PARTS:
            pk.build_table(part)
        extra["table_build_s"] = time.perf_counter() - t0
        extra["table_mb"] = sum(t.nbytes for t in pk.tables.values()) / 2**20
        prove(plain_pk, w)  # warm-up
        with_t, without_t, ratios = [], [], []
        for _ in range(max(1, runs)):  # alternating, so both see the same load
            a = median_time(lambda: prove(pk, w), 1, warmup=0)
            b = median_time(lambda: prove(plain_pk, w), 1, warmup=0)
            with_t.append(a)
            without_t.append(b)
            ratios.append(a / b)
        extra["prove_no_tables_s"] = sorted(without_t)[len(without_t) // 2]
        extra["tables_ratio"] = sorted(ratios)[len(ratios) // 2]
    proof = prove(pk, w, cs=cs)  # also the warm-up run
    if not verify(vk, public, proof):
        raise ZkmbError(f"{name}: benchmark proof does not verify")
    prove_s = median_time(lambda: prove(pk, w), runs, warmup=0)
    verify_ms = median_time(lambda: verify(vk, public, proof), verify_runs) * 1e3
    cpus = []
    for _ in range(max(1, runs)):  # what a client spends: witness and proof, CPU of every thread
        c0 = time.process_time()
        prove(pk, cs.solve(assignment))
        cpus.append(time.process_time() - c0)
    return {
        "constraints": cs.n_constraints,
        "public_inputs": cs.n_public,
        "compile_s": compile_s,
        "setup_s": setup_s,
        "solve_s": solve_s,
        "prove_s": prove_s,
        "cpu_s": sorted(cpus)[len(cpus) // 2],
        "verify_ms": verify_ms,
        "pk_bytes": pk_bytes,
        "vk_bytes": vk_bytes,
        **extra,
    }


def prove_parts(name: str, assignment: dict, runs: int, tables: bool = True) -> dict[str, float]:
    """Milliseconds (medians) of the prover's steps for one statement, timed one by one exactly as
    :func:`zkmb.groth16.prover.prove` runs them: ``qap_ntt`` (the H evaluations: inverse and coset NTTs),
    ``msm_g1`` (A, B1, C and H together), ``msm_g2`` (B2); the rest of a proof is a few fixed-base
    multiplications.  ``tables``: the MSMs on window tables, as the stub runs them."""
    import numpy as np

    from ..algebra import fast
    from ..circuits.keys import compile_circuit
    from ..groth16.keys import TABLE_PARTS
    from ..groth16.r1cs_to_qap import h_odd_evaluations
    from ..groth16.setup import setup

    cs = compile_circuit(name)
    pk, _vk = setup(cs)
    if tables:
        for part in TABLE_PARTS:
            pk.build_table(part)
    w = cs.solve(assignment).values
    plain = fast.plain_scalars(w)
    priv = np.ascontiguousarray(plain[pk.n_public + 1 :])
    h = fast.plain_scalars(h_odd_evaluations(pk.a_rows, pk.b_rows, w, pk.domain_size))

    def g1():
        pk.msm("a", plain)
        pk.msm("b1", plain)
        pk.msm("c", priv)
        pk.msm("h", h)

    return {
        "qap_ntt": median_time(lambda: h_odd_evaluations(pk.a_rows, pk.b_rows, w, pk.domain_size), runs)
        * 1e3,
        "msm_g1": median_time(g1, runs) * 1e3,
        "msm_g2": median_time(lambda: pk.msm("b2", plain), runs) * 1e3,
    }


def run(quick: bool = False) -> dict[str, Any]:
    runs, co_runs, verify_runs = (3, 1, 5) if quick else (7, 3, 21)
    names = QUICK_CIRCUITS if quick else FULL_CIRCUITS
    from .smoke import smoke

    if smoke(quick):  # no CO: its setup alone takes a minute (the middlebox suite proves one)
        names, runs, verify_runs = ("pad_block", "q_64"), 1, 2
    wit = _witnesses(quick)
    out: dict[str, Any] = {"runs": runs, "co_runs": co_runs, "threads": numba.get_num_threads(), **REFERENCE}
    if smoke(quick):
        out["smoke"] = True
    for name in names:
        assignment, public = wit[name]
        r = bench_circuit(name, assignment, public, co_runs if name.startswith("co_") else runs, verify_runs)
        for k, v in r.items():
            out[f"{name}_{k}"] = v
    # several PAD blocks in one proof (SPEC §4; the stub's look-ahead): per-block cost against pad_block
    from ..circuits.pad import pads_circuit

    assignment, public = wit["pad_blocks_3"]
    r = bench_circuit(
        "pad_blocks_3", assignment, public, runs, verify_runs, lambda: pads_circuit("chacha20", 3)
    )
    for k, v in r.items():
        out[f"pad_blocks_3_{k}"] = v
    out["pad_blocks_3_prove_per_block_s"] = r["prove_s"] / 3
    out["q_64_prove_parts_ms"] = prove_parts("q_64", wit["q_64"][0], runs)
    # issue 16: client CPU seconds (process time, all threads) for one 64-byte query: its Q proof and
    # its PAD block, proven ahead three per proof as the stub does (a single-block PAD beside it)
    out["query_core_s"] = out["q_64_cpu_s"] + out["pad_blocks_3_cpu_s"] / 3
    out["query_core_single_pad_s"] = out["q_64_cpu_s"] + out["pad_block_cpu_s"]
    out["verify_max_ms"] = max(out[f"{n}_verify_ms"] for n in names)
    out["verify_ms"] = out["q_64_verify_ms"]  # the per-query check on the middlebox's critical path
    out["query_critical_path_s"] = out["q_64_prove_s"] + out["q_64_verify_ms"] / 1e3
    return out
