"""``zkmb bench middlebox``: verification throughput per core and the hold time the flow core adds.

Everything is real: one DoT session with the embedded resolver is recorded (``R`` unpadded A queries,
size class 64), and its CO, PAD and Q proofs are made with the demo's Groth16 keys (generated once in
``~/.cache/zkmb/demo/keys`` when missing).  Three measurements:

* ``verify_per_s_core``: :meth:`Verifier.verify` of one q_64 proof, numba limited to 1 thread;
* ``batch_verify_per_s_core``: :meth:`Verifier.verify_many` (one batch check) on 64 q_64 proofs,
  1 thread (``batch16_verify_per_s_core`` for batches of 16);
* ``hold_*``: the recorded session replayed into ``F`` sans-IO :class:`Flow` objects (each its own
  ClientHello-random set, so each re-verifies everything) sharing one :class:`VerifyPool`.  After
  CO and PAD are verified (untimed), application records arrive open-loop (Poisson, round-robin over
  the flows, each record's Q proof just before it, as the stub sends them) at ``LOAD`` times the
  measured batched capacity of the pool's workers.  For each record: ``hold`` = release - arrival
  (:attr:`Decision.held`); ``hold_p50_ms``/``hold_p99_ms`` = hold minus the compute time of the batch
  that verified it, i.e. what the middlebox adds beyond verification itself (queueing for a worker,
  dispatch, the verdict's trip back to the loop, the flow's release); ``release_after_verify_*`` =
  release - end of its batch's computation alone.

And, when run as root with the tools present, ``bridge_nondot_pps`` / ``bridge_nondot_pps_norules`` /
``bridge_nondot_ratio``: UDP packets per second on a non-853 port through the bridge-mode namespaces
with and without the NFQUEUE rules (:mod:`zkmb.benchmarks.bridge_pps`; it uses the netns tests'
namespace names, so it runs alone: it reports ``bridge_skipped`` with the reason instead).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba

from ..errors import ZkmbError
from . import median_time

TARGETS = {"target_verify_per_s_core": 500, "target_batch_verify_per_s_core": 1500, "target_hold_p50_ms": 5}
LOAD = 0.5
"""Offered record rate as a fraction of the pool's measured batched capacity."""


@dataclass
class Recorded:
    """One recorded session with its real proofs; ``q_public[n]`` is what the middlebox derives."""

    cap: Any
    hs: bytes
    records: list[bytes]
    comm_k: int
    co_proof: Any
    pads: list[tuple[int, Any]]
    q_proofs: list[Any]
    q_public: list[list[int]]


def _keys(state_dir: Path | None = None) -> Path:
    from ..client_stub.demo import default_state_dir, prepare_keys

    return prepare_keys(
        state_dir or default_state_dir(),
        ("co_chacha20", "pad_block", "q_64"),
        out=lambda s: None,
        check=False,
    )


def record_session(key_dir: Path, n_records: int, policy) -> Recorded:
    """A real DoT session of ``n_records`` class-64 queries plus its CO, PAD (block 0) and Q proofs."""
    import dns.message

    from ..circuits.public import parse_channel
    from ..circuits.query import query_public_inputs
    from ..client_stub.prover import Groth16Prover
    from ..resolver import BackgroundResolver, Responder, make_server_context
    from ..resolver.certs import make_self_signed, write_pair
    from ..tls import DotClient, TlsClientConfig
    from ..tls.records import SUITES_BY_NAME

    names = [f"r{i}.example.test" for i in range(n_records)]
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = write_pair(tmp, *make_self_signed())
        ctx = make_server_context(cert, key)
        static = {n: "192.0.2.1" for n in names}
        with BackgroundResolver(Responder(static=static), ctx) as r:
            config = TlsClientConfig("127.0.0.1", cafile=str(cert), suites=(SUITES_BY_NAME["chacha20"],))
            with DotClient("127.0.0.1", r.port, config, timeout=10) as c:
                for n in names:
                    c.query(dns.message.make_query(n, "A"))
                cap = c.capture
    if cap.suite_name != "chacha20" or len(cap.client_app_records) != n_records:
        raise ZkmbError("benchmark session did not negotiate chacha20 or lost a query")
    view = parse_channel(cap.client_bytes, cap.server_bytes)
    hs = bytes(cap.client_bytes[: view.client_app_offset])
    prover = Groth16Prover.from_dir(key_dir, sizes=(64,))
    keys, co_proof = prover.co(cap)
    pads, q_proofs, q_public, records = [], [], [], []
    for rec in cap.client_app_records:
        inner = len(rec.raw) - 5 - 16
        if inner > 64:
            raise ZkmbError(f"record {rec.seq} is not in size class 64")
        pa, pad_proof = prover.pad(keys, rec.seq, 0)
        ct = rec.raw[5 : 5 + inner]
        pads.append((pa.comm_pad, pad_proof))
        q_proofs.append(prover.q([pa.pad], [pa.blinder], ct, policy, 64))
        q_public.append(query_public_inputs([pa.comm_pad], ct, inner, policy.root, 64))
        records.append(bytes(rec.raw))
    return Recorded(cap, hs, records, keys.comm_k, co_proof, pads, q_proofs, q_public)


def _per_core(fn, runs: int) -> float:
    """Median seconds of ``fn`` with numba limited to one thread in this thread."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return median_time(fn, runs)
    finally:
        numba.set_num_threads(before)


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = q * (len(xs) - 1)
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


async def _hold(rec: Recorded, verifier, flows: int, rate: float, seed: int = 1) -> dict[str, Any]:
    """Replay ``rec`` into ``flows`` Flow objects on one VerifyPool; per-record hold statistics."""
    from ..middlebox.flow import Flow, FlowConfig, RandomSet
    from ..middlebox.workers import FlowVerifier, VerifyPool, _proof_id

    class TimedPool(VerifyPool):
        batch_compute: tuple[float, float] = (0.0, 0.0)

        def _run(self, circuit, batch):
            t0 = time.monotonic()
            try:
                return super()._run(circuit, batch)
            finally:
                t1 = time.monotonic()
                for job in batch:
                    job.compute = (t0, t1)

        def _finished(self, fut, batch):
            self.batch_compute = getattr(batch[0], "compute", (0.0, 0.0))
            self.sizes.append(len(batch))
            super()._finished(fut, batch)

    class TimedFlowVerifier(FlowVerifier):
        def _done(self, key, ok):
            self.compute[key] = self.pool.batch_compute
            super()._done(key, ok)

    pool = TimedPool(verifier)
    pool.sizes = []
    pool.start()
    n_rec = len(rec.records)
    q_keys = [("q_64", tuple(p), _proof_id(pr)) for p, pr in zip(rec.q_public, rec.q_proofs, strict=True)]
    out: dict[str, list] = {"hold": [], "added": [], "after": []}
    fs, fvs = [], []
    for i in range(flows):

        def wake(i=i):
            f, fv = fs[i], fvs[i]
            f.retry()
            f.take_to_server()
            f.take_answers()
            for d in fv.new:
                if d.action == "forward" and d.what == "record" and d.held is not None:
                    t0, t1 = fv.compute.get(q_keys[d.n], (0.0, 0.0))
                    now = time.monotonic()
                    out["hold"].append(d.held)
                    out["added"].append(d.held - (t1 - t0))
                    out["after"].append(now - t1)
            fv.new.clear()

        fv = TimedFlowVerifier(pool, wake)
        fv.compute, fv.new = {}, []
        f = Flow(
            fv,
            time.monotonic,
            FlowConfig(),
            seen_randoms=RandomSet(),
            flow_id=str(i),
            on_decision=fv.new.append,
        )
        fs.append(f)
        fvs.append(fv)
        f.server_data(bytes(rec.cap.server_bytes))
        f.client_data(rec.hs)
        f.co(rec.comm_k, rec.co_proof)

    async def until(pred, what: str, timeout: float = 300.0) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end or any(f.closed for f in fs):
                raise ZkmbError(f"middlebox benchmark: {what} did not complete")
            await asyncio.sleep(0.005)

    try:
        await until(lambda: all(f.comm_k is not None for f in fs), "CO verification")
        # PADs are set-up, not what is measured: send them in groups that fit the pool's queue (a
        # full queue refuses a proof with "overloaded, resend later", fail closed)
        group = max(1, (pool.max_queue // 2) // max(1, len(rec.pads)))
        for g in range(0, len(fs), group):
            part = fs[g : g + group]
            for f in part:
                for n, (comm_pad, proof) in enumerate(rec.pads):
                    f.pad(n, 0, comm_pad, proof)
            await until(lambda part=part: all(len(f._pads) == n_rec for f in part), "PAD verification")
        for f, fv in zip(fs, fvs, strict=True):
            f.take_answers()
            fv.new.clear()
        pool.sizes.clear()
        rng = random.Random(seed)
        t = start = time.monotonic()
        for n in range(n_rec):
            for i in range(flows):
                t += rng.expovariate(rate)
                delay = t - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                fs[i].q(n, rec.q_proofs[n])
                fs[i].client_data(rec.records[n])
        total = n_rec * flows
        await until(lambda: len(out["hold"]) >= total, "Q verification", timeout=600)
        elapsed = time.monotonic() - start
    finally:
        pool.close()
    closed = sum(f.closed is not None for f in fs)
    ms = 1e3
    return {
        "hold_p50_ms": _quantile(out["added"], 0.5) * ms,
        "hold_p99_ms": _quantile(out["added"], 0.99) * ms,
        "hold_total_p50_ms": _quantile(out["hold"], 0.5) * ms,
        "hold_total_p99_ms": _quantile(out["hold"], 0.99) * ms,
        "release_after_verify_p50_ms": _quantile(out["after"], 0.5) * ms,
        "release_after_verify_p99_ms": _quantile(out["after"], 0.99) * ms,
        "hold_records": len(out["hold"]),
        "hold_flows": flows,
        "hold_flows_closed": closed,
        "hold_offered_per_s": rate,
        "hold_achieved_per_s": len(out["hold"]) / max(elapsed, 1e-9),
        "hold_workers": pool.workers,
        "hold_mean_batch": statistics.fmean(pool.sizes) if pool.sizes else 0.0,
    }


def run(quick: bool = False) -> dict[str, Any]:
    from ..middlebox.verifier import PolicyRoots, Verifier
    from .statements import _policy

    n_records, flows, runs = (4, 16, 5) if quick else (16, 128, 21)
    from .smoke import smoke

    if smoke(quick):
        n_records, flows, runs = 2, 4, 3
    policy = _policy()
    key_dir = _keys()
    t0 = time.perf_counter()
    rec = record_session(key_dir, n_records, policy)
    record_s = time.perf_counter() - t0
    verifier = Verifier.from_key_dir(key_dir, PolicyRoots(policy.root), against="manifest")
    pub, proof = rec.q_public[0], rec.q_proofs[0]
    if not all(verifier.verify("q_64", p, q) for p, q in zip(rec.q_public, rec.q_proofs, strict=True)):
        raise ZkmbError("a recorded Q proof does not verify")
    single = _per_core(lambda: verifier.verify("q_64", pub, proof), runs)
    out: dict[str, Any] = {"runs": runs, "threads_per_core_measurement": 1, **TARGETS}
    out["session_record_and_prove_s"] = record_s
    out["verify_ms"] = single * 1e3
    out["verify_per_s_core"] = 1.0 / single
    items = list(zip(rec.q_public, rec.q_proofs, strict=True))
    for size in (16, 64):
        batch = [items[i % len(items)] for i in range(size)]
        if verifier.verify_many("q_64", batch) != [True] * size:
            raise ZkmbError("batch verification rejected real proofs")
        t = _per_core(lambda b=batch: verifier.verify_many("q_64", b), max(3, runs // 3))
        out[f"batch{size}_verify_per_s_core"] = size / t
    out["batch_verify_per_s_core"] = out["batch64_verify_per_s_core"]
    # the pool: its workers each get a batch; capacity = per-core batched rate x usable workers
    import os

    from ..middlebox.workers import VerifyPool

    workers = min(VerifyPool(verifier).workers, os.cpu_count() or 1)
    rate = LOAD * out["batch16_verify_per_s_core"] * workers
    out["hold_load"] = LOAD
    out.update(asyncio.run(_hold(rec, verifier, flows, rate)))
    out["meets_verify_target"] = out["verify_per_s_core"] >= TARGETS["target_verify_per_s_core"]
    out["meets_batch_target"] = out["batch_verify_per_s_core"] >= TARGETS["target_batch_verify_per_s_core"]
    out["meets_hold_target"] = out["hold_p50_ms"] <= TARGETS["target_hold_p50_ms"]
    from .bridge_pps import measure

    out.update(measure((1.0 if smoke(quick) else 5.0) if quick else 10.0))
    if smoke(quick):
        out["smoke"] = True
    return out
