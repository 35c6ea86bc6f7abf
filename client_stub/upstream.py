"""The proved upstream: a pool of DoT connections through the middlebox, with the proof channel.

Per connection (:class:`ProvedConnection`): TCP to the middlebox's relay (or through its bridge), the
TLS 1.3 handshake, ANNOUNCE on the proof channel (answered ANNOUNCED: the middlebox's enforcement
mode and deadlines, SPEC §7), the CO witness at once (it gives the client keys), then the CO proof,
and PAD proofs for the next records kept ahead of demand (proven while CO is, sent once it is
accepted).  Per query: pad the DNS message with EDNS(0) padding so the record fills its size class
(L = B, SPEC §5), encrypt it (fixing its record number ``n``), then

* strict mode: the PAD blocks ``(n, 0..B/64-1)`` and the Q proof, the proofs sent, the record written
  (records leave in record-number order);
* async mode: the record written at once, its proofs made and sent right after (at most
  ``max_before_co`` records before the CO is accepted, and never more unproven records than the
  proving engine can clear well within the middlebox's record deadline: an honest client never trips
  the cut and ban).

All proving runs on one :class:`~zkmb.client_stub.scheduler.ProvingPool` (a worker per core, proofs cut
into steps): a query's proofs come first, then a channel opening (which becomes the most urgent once
it has waited ``co_escalate_s``, or when no connection is ready), then PAD blocks a record waits for,
then look-ahead PADs.  One channel opening at a time: a handshake starts the middlebox's CO clock, so
the next one starts only when the previous CO is in.  A query's record number, once taken, is always
proven and sent by the connection, whoever waits for the answer: a slow query never poisons a
connection (the listener may give up; the answer is dropped).  A query whose connection fails before
its record left is retried on another connection.

Idle resolvers (SPEC §2, §7): resolvers close idle connections (unbound after 30 s, Knot Resolver
10 s, dnsdist 2 s).  The stub measures when the resolver closes a connection it did not use and
keeps its primary connection open with proved queries of its own (``KEEPALIVE_NAME``) at half that
interval while the user was active within ``keepalive_horizon_s``; a query after a quiet minute then
finds a connection with its PADs ready.  When the resolver closes a connection before its CO could
be accepted (strict mode; an idle time-out shorter than the channel opening), the stub logs one
diagnosis with the setting to raise, backs off (exponentially, up to ``max_backoff_s``) instead of
reconnecting in a loop, and answers SERVFAIL at once meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
from zkmb.circuits.witness import co_assignment, pad_assignment, pads_assignment

from zkmb.dns.padding import pad_to_length
from zkmb.errors import InvalidInput, ZkmbError
from zkmb.proofchannel import (
    ASYNC,
    Accepted,
    Announce,
    Announced,
    CoMsg,
    MessageRejected,
    PadMsg,
    PadsMsg,
    QMsg,
    RateLimited,
    Rejected,
    from_wire,
    split_frame,
    to_wire,
)
from zkmb.tls import DnsResponse, DotConnection, HandshakeComplete, TlsClientConfig
from zkmb.tls.dot import ReconnectRequired
from zkmb.tls.errors import TruncatedStream
from zkmb.tls.records import SUITES_BY_NAME

from .listener import Question, UpstreamError
from .prover import PAD_BATCH, co_job, pad_job, pads_job, q_job, takes_pad_assignment
from .scheduler import AHEAD, OPENING, QUERY, TABLES, URGENT, Job, ProvingPool

__all__ = ["KEEPALIVE_NAME", "ProvedConnection", "ProvingUpstream", "choose_size", "idle_diagnosis"]

log = logging.getLogger("zkmb.stub.upstream")
TAG = 16
HEADER = 5
KEEPALIVE_NAME = "zkmb-keepalive.invalid"
"""The stub's own keep-alive query (RFC 6761: resolvers answer ``.invalid`` NXDOMAIN locally)."""
_RETRYABLE = ("middlebox overloaded", "rate_limited")


def choose_size(msg: dns.message.Message, sizes) -> tuple[int, bytes]:
    """Pad ``msg`` so its DoT record's inner plaintext is exactly the smallest class that fits
    (``L = M + 3 = B``); returns ``(B, wire)``.  InvalidInput when no available class fits."""
    for b in sorted(sizes):
        try:
            return b, pad_to_length(msg, b - 3)
        except InvalidInput:
            continue
    raise InvalidInput(f"query does not fit the size classes {sorted(sizes)}")


def idle_diagnosis(seconds: float, needed: float) -> str:
    """The one log line for a resolver that closes unused connections before the channel opening."""
    return (
        f"the resolver closed an unused connection after {seconds:.1f} s, before the channel opening "
        f"(CO proof, {needed:.1f} s here) was accepted: its idle time-out is shorter than the channel "
        "opening.  Use async mode on the middlebox (zkmb middlebox --mode async) or raise the "
        "resolver's idle time-out above 20 s: dnsdist setTCPRecvTimeout(30) (default 2 s), Knot "
        "Resolver net.tcp_in_idle(30000) (default 10 s), BIND tcp-idle-timeout 300; (units of "
        "100 ms, default 30 s), unbound tcp-idle-timeout: 30000 (default 30 s, less under load)"
    )


@dataclass
class _Pad:
    """PAD block (n, j): the pool job, the task that proves it, sends it and waits for its acceptance,
    and ``values`` -- ``(pad, blinder)`` as soon as it is proven (a Q proof needs only those; the
    acceptance is awaited before the Q proof is sent)."""

    job: Job | None = None
    task: asyncio.Task | None = None
    values: asyncio.Future | None = None
    shared: bool = False  # its job proves other blocks too (a batch): never cancelled for this one


class _Record:
    """One query on a connection: its record number, bytes, and the response future."""

    def __init__(self, n: int, size: int, raw: bytes, qid: int, response: asyncio.Future, keepalive: bool):
        self.n, self.size, self.raw, self.qid = n, size, raw, qid
        self.response, self.keepalive = response, keepalive
        self.sent_at: float | None = None
        self.proven = False
        self.jobs: list = []  # its Q proof's pool job (escalated when late in async mode)
        self.late = False  # async: past 40 % of its deadline; proofs submitted from now on are URGENT


class ProvedConnection:
    """One DoT connection through the middlebox plus its proof-channel connection."""

    def __init__(self, owner: ProvingUpstream, ident: int):
        self.o, self.ident = owner, ident
        self.conn = DotConnection(owner.tls_config())
        self.enforcement: Announced | None = None
        self.keys = None
        self.ready = False  # queries may be sent (strict: CO accepted; async: announced)
        self.closed = False
        self.error: str | None = None
        self.in_flight = 0
        self.co_accepted = asyncio.Event()
        self._dead = asyncio.Event()  # set by fail()
        self.opened_at = time.monotonic()
        self.handshake_at: float | None = None
        self.last_activity = time.monotonic()
        self.closed_by_resolver = False
        self._w: asyncio.StreamWriter | None = None
        self._pw: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task] = set()
        self._jobs: set[Job] = set()
        self._handshake: asyncio.Future | None = None
        self._announced: asyncio.Future | None = None
        self._responses: dict[int, _Record] = {}
        self._answers: dict[tuple[str, int, int], asyncio.Future] = {}
        self._pads: dict[tuple[int, int], _Pad] = {}
        self._next_n = 0  # the record number the next query takes
        self._released = 0  # records 0.._released-1 have been written
        self._turn = asyncio.Event()
        self._unproven: dict[int, _Record] = {}  # async: records written whose Q is not accepted yet
        self._co_job: Job | None = None
        self._batch_ok: bool | None = None

    # ------------------------------------------------------------------ state

    @property
    def mode(self) -> str | None:
        return None if self.enforcement is None else self.enforcement.mode

    @property
    def is_async(self) -> bool:
        return self.mode == ASYNC

    def can_take(self) -> bool:
        """Whether a query may take a record on this connection now: once announced; before the CO
        is accepted only the first few (async: ``max_before_co``, sent at once; strict: ``early``,
        proven beside the CO and sent once it is accepted)."""
        if self.closed or self.enforcement is None or self.keys is None:
            return False
        if not self.co_accepted.is_set():
            if self.o._attempt_failed is not None:
                return False  # the last attempt never got its CO accepted: no records before this one's
            if self.is_async:  # records leave at once: only while this CO is sure to be in time
                co_s = self.enforcement.co_deadline_ms / 1000
                on_time = time.monotonic() - (self.handshake_at or 0) + self.o.co_expected_s() <= 0.6 * co_s
                return on_time and self._next_n < self.enforcement.max_before_co
            return self._next_n < self.o.early_records
        return True

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)
        return t

    def _task_done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None and not self.closed:
            self.fail(str(t.exception()) or type(t.exception()).__name__)

    def _submit(self, priority: int, gen, name: str) -> Job:
        """A proving job of this connection; :meth:`fail` cancels it (queued steps dropped at once)."""
        job = self.o.pool.submit(priority, gen, name)
        self._jobs.add(job)
        job.future.add_done_callback(lambda _f, j=job: self._jobs.discard(j))
        return job

    # ------------------------------------------------------------------ setup

    async def open(self) -> None:
        """Connect, handshake, announce, start the CO and the look-ahead PADs.  Returns once queries may
        be sent (async: announced; strict: CO accepted)."""
        o = self.o
        loop = asyncio.get_running_loop()
        try:
            reader, self._w = await asyncio.wait_for(asyncio.open_connection(*o.relay), o.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise UpstreamError(
                f"middlebox relay {o.relay[0]}:{o.relay[1]} unreachable ({e or 'timeout'})"
            ) from None
        self._handshake = loop.create_future()
        self.conn.start()
        self._flush()
        self._spawn(self._read_loop(reader))
        try:
            await asyncio.wait_for(asyncio.shield(self._handshake), o.connect_timeout)
        except TimeoutError:
            raise UpstreamError("TLS handshake through the middlebox timed out") from None
        self.handshake_at = self.last_activity = time.monotonic()
        try:
            preader, self._pw = await asyncio.wait_for(asyncio.open_connection(*o.proof), o.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise UpstreamError(
                f"proof endpoint {o.proof[0]}:{o.proof[1]} unreachable ({e or 'timeout'})"
            ) from None
        self._announced = loop.create_future()
        self._spawn(self._proof_loop(preader))
        local = self._w.get_extra_info("sockname")[:2]
        peer = self._w.get_extra_info("peername")[:2]
        self._send_proof(Announce(tuple(local), tuple(peer), self.conn.capture.client_random))
        try:
            ann = await asyncio.wait_for(asyncio.shield(self._announced), o.answer_timeout)
        except TimeoutError:
            raise UpstreamError("no answer from the middlebox to ANNOUNCE") from None
        if isinstance(ann, Rejected):
            raise UpstreamError(f"middlebox rejected the connection: {ann.reason}")
        self.enforcement = ann
        o.note_mode(ann)
        # the CO witness now: it fixes the client keys, so PAD proofs can start beside the CO proof
        a = await asyncio.to_thread(co_assignment, self.conn.capture)
        self.keys = a.keys
        urgent = not any(c.ready and c is not self for c in o.conns)
        self._co_job = self._submit(URGENT if urgent else OPENING, co_job(o.prover, a), f"co#{self.ident}")
        self._spawn(self._co_flow(self._co_job))
        self._keep_ahead()
        o.notify()  # queries may take the first records now (proven beside the CO)
        await self._until_co()
        self.ready = True

    async def _co_flow(self, job: Job) -> None:
        """Prove CO (escalated to the most urgent after ``co_escalate_s``), send it, wait for ACCEPTED."""
        o = self.o
        t0 = time.perf_counter()
        fut = asyncio.wrap_future(job.future)
        done, _ = await asyncio.wait({fut}, timeout=o.co_escalate_s)
        if not done:
            job.set_priority(URGENT)
            o.timing("co_escalated", 0.0)
        proof = await fut
        o.timing("co", time.perf_counter() - t0)
        o.timing("co_cpu", job.cpu_s)
        await self._ask(CoMsg(self.keys.comm_k, proof), ("co", 0, 0))
        self.co_accepted.set()
        self.ready = True
        o.co_done(self)
        log.info(
            "conn=%d ready (%s): CO accepted %.2f s after the handshake",
            *(self.ident, self.mode, time.monotonic() - self.handshake_at),
        )

    async def _ask(self, msg, ref: tuple[str, int, int], deadline: float | None = None) -> None:
        """Send a proof message and wait for its answer (see :meth:`_ask_all`)."""
        await self._ask_all(msg, [ref], deadline)

    async def _ask_all(self, msg, refs: list[tuple[str, int, int]], deadline: float | None = None) -> None:
        """Send a proof message and wait for the answer to each of ``refs`` (a PADS message is answered
        per block); resend what the middlebox could not take yet (overload, rate limit) until
        ``deadline``; UpstreamError when a reference is rejected."""
        o = self.o
        deadline = deadline if deadline is not None else time.monotonic() + o.answer_timeout
        while True:
            futs = [self._answer_future(ref) for ref in refs]
            self._send_proof(msg)
            left = deadline - time.monotonic()
            try:
                answers = await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, futs)), max(0.05, left))
            except TimeoutError:
                ref = refs[0]
                raise UpstreamError(
                    f"no answer from the middlebox to {ref[0]} (n={ref[1]}, j={ref[2]})"
                ) from None
            finally:
                for ref, fut in zip(refs, futs, strict=True):
                    if self._answers.get(ref) is fut:
                        del self._answers[ref]
            wait, failed = 0.0, None
            for ref, ans in zip(refs, answers, strict=True):
                if not isinstance(ans, Rejected):
                    continue
                if ref[0] == "pad" and ans.reason == "block already committed":
                    continue  # ours, from an earlier send (we send one comm_pad per block)
                retryable = isinstance(ans, RateLimited) or any(r in ans.reason for r in _RETRYABLE)
                if not retryable:
                    failed = (ref, ans)
                    break
                wait = max(wait, ans.retry_after_ms / 1000 if isinstance(ans, RateLimited) else 0.05)
            if failed is None and wait == 0.0:
                return
            if failed is not None or time.monotonic() + wait >= deadline:
                ref, ans = failed or (refs[0], answers[0])
                raise UpstreamError(f"middlebox rejected {ref[0]} (n={ref[1]}, j={ref[2]}): {ans.reason}")
            await asyncio.sleep(wait)

    def _answer_future(self, ref) -> asyncio.Future:
        fut = self._answers.get(ref)
        if fut is None or fut.done():
            fut = self._answers[ref] = asyncio.get_running_loop().create_future()
        return fut

    def _send_proof(self, msg) -> None:
        if self._pw is None or self._pw.is_closing():
            raise UpstreamError("proof channel is closed")
        self._pw.write(to_wire(msg))

    # ------------------------------------------------------------------ PAD

    def _keep_ahead(self) -> None:
        """Look-ahead PADs: block 0 of the next ``pad_ahead`` records and block 1 of the next
        ``pad_ahead_128`` (a class-128 query then waits for none), inside the middlebox's window.
        Where the prover has a batch key, missing blocks are proven ``PAD_BATCH`` at a time (fewer
        core-seconds per block) once that many are missing, singly only when none is ready ahead."""
        o = self.o
        window = self.enforcement.pad_window if self.enforcement else 64
        top = min(self._next_n + o.pad_ahead, self._low() + window)
        for j, last in ((0, top), (1, min(self._next_n + o.pad_ahead_128, top))):
            want = [(n, j) for n in range(self._next_n, last)]
            missing = [b for b in want if b not in self._pads]
            have = len(want) - len(missing)
            while len(missing) >= PAD_BATCH and self._pad_batch(missing[:PAD_BATCH]):
                missing, have = missing[PAD_BATCH:], have + PAD_BATCH
            for n, jj in missing:
                if have > 0 and self._batching():
                    break  # blocks are ready ahead: wait for a whole batch
                self._pad(n, jj, needed=False)
                have += 1

    def _batching(self) -> bool:
        """Whether the prover proves look-ahead PADs in batches (it has the batch key for the suite)."""
        if self._batch_ok is None:
            gen = pads_job(self.o.prover, self.keys, [(0, 0)] * PAD_BATCH)
            self._batch_ok = gen is not None
            if gen is not None:
                gen.close()
        return self._batch_ok

    def _pad_batch(self, blocks: list[tuple[int, int]], *, needed: bool = False) -> bool:
        """One proof for ``blocks`` (look-ahead, or ``needed`` by records waiting now: then proven at
        query priority with pads and blinders fixed here, so their Q proofs start at once); False
        when the prover has no batch key."""
        early = None
        if needed and takes_pad_assignment(self.o.prover):
            early = pads_assignment(self.keys, blocks)
        gen = pads_job(self.o.prover, self.keys, blocks, early)
        if gen is None:
            return False
        name = f"pads{blocks[0][0]}.{blocks[0][1]}+{len(blocks)}"
        job = self._submit(QUERY if needed else AHEAD, gen, name)
        loop = asyncio.get_running_loop()
        pads = []
        for i, (n, j) in enumerate(blocks):
            p = self._pads[(n, j)] = _Pad(job=job, values=loop.create_future(), shared=True)
            p.values.add_done_callback(lambda f: f.cancelled() or f.exception())
            if early is not None:
                p.values.set_result((early.pads[i], early.blinders[i]))
            pads.append(p)
        sent = asyncio.ensure_future(self._batch_flow(blocks, pads, job))
        sent.add_done_callback(lambda t: t.cancelled() or t.exception())
        for p in pads:
            p.task = asyncio.ensure_future(self._batched_block(p, sent))
            p.task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return True

    async def _batch_flow(self, blocks, pads: list[_Pad], job: Job) -> None:
        """Prove a batch, hand each block its values, send the blocks still useful in one PADS."""
        t0 = time.perf_counter()
        try:
            a, proof = await asyncio.wrap_future(job.future)
        except BaseException as e:
            for p in pads:
                if not p.values.done():
                    p.values.set_exception(UpstreamError(f"PAD batch not proven: {e!r}"))
            raise
        for p, pad, blinder in zip(pads, a.pads, a.blinders, strict=True):
            if not p.values.done():
                p.values.set_result((pad, blinder))
        self.o.timing("pad", time.perf_counter() - t0)
        self.o.timing("pad_cpu", job.cpu_s / len(blocks))
        await self._until_co()  # the middlebox takes PADs only after CO
        low = self._low()
        if all(n < low for n, _ in blocks):
            raise UpstreamError("PAD batch not needed: its records are proven already")
        triples = tuple((n, j, cp) for (n, j), cp in zip(blocks, a.comm_pads, strict=True))
        await self._ask_all(PadsMsg(triples, proof), [("pad", n, j) for n, j in blocks])

    async def _batched_block(self, p: _Pad, sent: asyncio.Future) -> tuple[bytes, int]:
        values = await p.values
        await asyncio.shield(sent)
        return values

    def _batch_needed(self) -> None:
        """PAD blocks that records taken and not yet proven need now and nobody proves (a burst's
        class-128 second blocks, or block 0 past the look-ahead): ``PAD_BATCH`` per proof, at 0.6x the
        CPU per block of single proofs; fewer than a batch are left to single proofs."""
        if not self._batching():
            return
        waiting = [
            r
            for r in self._responses.values()
            if not r.proven and (r.sent_at is None or r.n in self._unproven)
        ]
        missing = sorted({(r.n, j) for r in waiting for j in range(r.size // 64)} - self._pads.keys())
        while len(missing) >= PAD_BATCH and self._pad_batch(missing[:PAD_BATCH], needed=True):
            missing = missing[PAD_BATCH:]
            self.o.timing("pads_needed_batched", 0.0)

    def _pad(self, n: int, j: int, *, needed: bool) -> asyncio.Task:
        p = self._pads.get((n, j))
        if p is None:
            p = self._pads[(n, j)] = _Pad()
            # a block a query needs now: its pad and blinder are fixed here (a native ChaCha20/AES block
            # and a Poseidon hash, ~1 ms), so the query's Q proof runs beside this PAD proof instead of
            # after it (a class-128 query's second block: 160 ms less on its critical path)
            early = (
                pad_assignment(self.keys, n, j) if needed and takes_pad_assignment(self.o.prover) else None
            )
            p.job = self._submit(
                QUERY if needed else AHEAD, pad_job(self.o.prover, self.keys, n, j, early), f"pad{n}.{j}"
            )
            p.values = asyncio.get_running_loop().create_future()
            p.values.add_done_callback(lambda f: f.cancelled() or f.exception())
            if early is not None:
                p.values.set_result((early.pad, early.blinder))
            p.task = asyncio.ensure_future(self._pad_flow(n, j, p))
            p.task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a look-ahead nobody awaits
        elif needed and p.job is not None and not p.job.done:
            p.job.set_priority(QUERY)
            self.o.timing("pad_promoted", 0.0)
        return p

    async def _pad_flow(self, n: int, j: int, p: _Pad) -> tuple[bytes, int]:
        t0 = time.perf_counter()
        try:
            a, proof = await asyncio.wrap_future(p.job.future)
        except BaseException as e:
            if not p.values.done():
                p.values.set_exception(UpstreamError(f"PAD ({n}, {j}) not proven: {e!r}"))
            raise
        if not p.values.done():
            p.values.set_result((a.pad, a.blinder))
        self.o.timing("pad", time.perf_counter() - t0)
        self.o.timing("pad_cpu", p.job.cpu_s)
        await self._until_co()  # the middlebox takes PADs only after CO
        if n < self._low():
            raise UpstreamError(f"PAD ({n}, {j}) not needed: record {n} already proven")
        await self._ask(PadMsg(n, j, a.comm_pad, proof), ("pad", n, j))
        return a.pad, a.blinder

    def pad_work(self, n: int, k: int, pad_s: float, seen: set[int]) -> float:
        """CPU seconds still to spend before blocks ``(n, 0..k-1)`` are proven, at ``pad_s`` per block:
        none for a proven block, a whole job's remaining CPU for a block in a job that is not done (a
        batch's: all its blocks' less what it had; each job counted once over ``seen``, the ids of the
        jobs counted already), one block's for a block no job proves yet."""
        work = 0.0
        for j in range(k):
            p = self._pads.get((n, j))
            if p is None or p.job is None:  # (a _Pad gets its job where it is made)
                work += pad_s
            elif not p.job.done and id(p.job) not in seen:
                seen.add(id(p.job))
                work += max(0.0, pad_s * (PAD_BATCH if p.shared else 1) - p.job.cpu_s)
        return work

    def _low(self) -> int:
        """The middlebox's ``next``: the lowest record not yet verified (as far as we know)."""
        pending = [r.n for r in self._responses.values() if not r.proven and r.sent_at is None]
        return min([*self._unproven, *pending, self._next_n])

    # ------------------------------------------------------------------ queries

    def take(self, msg: dns.message.Message, size: int, *, keepalive: bool = False) -> _Record:
        """Reserve the next record number for ``msg`` (already padded to ``size``), encrypt it, and start
        the task that proves and sends it; the caller awaits ``record.response``."""
        n = self._next_n
        try:
            qid = self.conn.send_query(msg)
        except ZkmbError as e:
            raise UpstreamError(f"cannot send on this connection: {e}") from None
        raw = self.conn.data_to_send()
        if len(raw) != HEADER + size + TAG:
            raise UpstreamError(f"record {n} was not encrypted as expected ({len(raw)} bytes)")
        self._next_n += 1
        self.in_flight += 1
        rec = _Record(n, size, raw, qid, asyncio.get_running_loop().create_future(), keepalive)
        self._responses[qid] = rec
        if self.is_async:
            self._write(rec)  # in order: records are taken and written in one synchronous step
            self._unproven[n] = rec
        self._spawn(self._drive(rec))
        return rec

    async def _drive(self, rec: _Record) -> None:
        """Prove record ``rec.n`` (its PAD blocks, then Q) and send it (strict: after the proof)."""
        o, n = self.o, rec.n
        t0 = time.perf_counter()
        ahead = False
        o.pool.hold_tables()  # until its Q job is in: no MSM table step in the way
        held = True
        try:
            if self.is_async:  # the answers first: proving now would compete with reading them
                await self._answers_first(time.monotonic() + o.async_head_start_s, o.async_reply_s)
            k = rec.size // 64
            if any((n, j) not in self._pads for j in range(k)):
                await asyncio.sleep(o.need_coalesce_s)  # a burst's other records are taken meanwhile
                self._batch_needed()
            blocks = [self._pad(n, j, needed=True) for j in range(k)]
            if self.is_async:
                self._spawn(self._escalate(rec, [p.job for p in blocks]))
            # the Q proof needs the pads' values only; their acceptance is awaited before it is sent
            pads = await self._unless_failed(asyncio.gather(*(asyncio.shield(p.values) for p in blocks)))
            t_pads = time.perf_counter()
            job = self._submit(
                URGENT if rec.late else QUERY,
                q_job(
                    o.prover,
                    [p for p, _ in pads],
                    [b for _, b in pads],
                    rec.raw[HEADER:-TAG],
                    o.policy,
                    rec.size,
                ),
                f"q{n}",
            )
            rec.jobs.append(job)
            o.pool.release_tables()
            held = False
            ahead = True
            self._keep_ahead()  # refill the look-ahead: its proofs start once this Q proof is made
            proof = await self._unless_failed(asyncio.wrap_future(job.future))
            t_q = time.perf_counter()
            o.timing(f"q_{rec.size}", t_q - t_pads)
            o.timing("q_cpu", job.cpu_s)
            o.timing("pad_wait", t_pads - t0)
            await self._until_co()  # the middlebox takes Q only after CO
            await self._unless_failed(asyncio.gather(*(asyncio.shield(p.task) for p in blocks)))
            if self.is_async:
                deadline = (
                    max(rec.sent_at or 0, self.o.co_at(self)) + self.enforcement.record_deadline_ms / 1000
                )
                await self._ask(QMsg(n, proof), ("q", n, 0), deadline=deadline)
                rec.proven = True
                self._unproven.pop(n, None)
                o.proven()
                o.timing("async_proof", time.perf_counter() - t0)
                log.debug(
                    "conn=%d record %d (B=%d, async): pads %.0f ms, Q %.0f ms (cpu %.0f ms), "
                    "accepted %.0f ms",
                    *(self.ident, n, rec.size, 1e3 * (t_pads - t0), 1e3 * (t_q - t_pads), 1e3 * job.cpu_s),
                    1e3 * (time.perf_counter() - t_q),
                )
            else:
                ans = self._answer_future(("q", n, 0))
                self._send_proof(QMsg(n, proof))
                await self._release(rec)
                o.timing("release_wait", time.perf_counter() - t_q)
                log.debug(
                    "conn=%d record %d (B=%d): pads %.0f ms, Q %.0f ms (cpu %.0f ms), release %.0f ms",
                    *(self.ident, n, rec.size, 1e3 * (t_pads - t0), 1e3 * (t_q - t_pads), 1e3 * job.cpu_s),
                    1e3 * (time.perf_counter() - t_q),
                )
                ans.add_done_callback(lambda f, t=t_q: self._q_answer(f, n, t))
        finally:
            if held:
                o.pool.release_tables()
            if not ahead and not self.closed:
                self._keep_ahead()
            for j in range(7):
                p = self._pads.pop((n, j), None)
                if p is not None and j >= rec.size // 64 and not p.shared:  # a look-ahead it did not need
                    if p.job is not None:
                        p.job.cancel()
                    if p.task is not None:
                        p.task.cancel()

    async def _answers_first(self, until: float, reply_s: float = 0.0) -> None:
        """Async mode: wait until every answer in flight on this connection is in (a burst's last one
        too), or until ``until``; then ``reply_s`` more, for the listener to write them out: its
        proofs' CPU and Python work never delay reading or answering them."""
        while True:
            left = until - time.monotonic()
            waiting = [r.response for r in self._responses.values() if not r.response.done()]
            if left <= 0 or not waiting:
                break
            await asyncio.wait(waiting, timeout=left)
        await asyncio.sleep(reply_s)

    async def _escalate(self, rec: _Record, jobs: list) -> None:
        """Async mode: a record whose proofs are still not done at 40 % of its deadline has them made
        before anything else (URGENT): the cut is for dishonest clients only."""
        await self._until_co()
        limit = self.enforcement.record_deadline_ms / 1000
        due = max(rec.sent_at or 0.0, self.o.co_at(self)) + 0.4 * limit
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        rec.late = True  # a Q proof not yet submitted (its PAD was late) is submitted URGENT
        late = [j for j in [*jobs, *rec.jobs] if j is not None and not j.done]
        for j in late:
            j.set_priority(URGENT)
        if late:
            self.o.timing("async_escalated", 0.0)

    def _q_answer(self, f: asyncio.Future, n: int, t_q: float) -> None:
        if f.cancelled() or f.exception() is not None:
            return
        if isinstance(f.result(), Rejected):
            self.fail(f"Q proof for record {n} rejected: {f.result().reason}")
        else:
            self.o.timing("q_accept", time.perf_counter() - t_q)
        self._answers.pop(("q", n, 0), None)

    async def _until_co(self) -> None:
        """Until the CO is accepted; UpstreamError as soon as the connection fails instead."""
        if self.co_accepted.is_set():
            return
        if self.closed:
            raise UpstreamError(self.error or "connection closed")
        waits = {asyncio.ensure_future(self.co_accepted.wait()), asyncio.ensure_future(self._dead.wait())}
        try:
            await asyncio.wait(waits, return_when="FIRST_COMPLETED")
        finally:
            for w in waits:
                w.cancel()
        if not self.co_accepted.is_set():
            raise UpstreamError(self.error or "connection closed")

    async def _unless_failed(self, aw):
        """``await aw``; a cancellation caused by :meth:`fail` becomes UpstreamError."""
        try:
            return await aw
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            if self.closed and not asyncio.current_task().cancelling():
                raise UpstreamError(self.error or "connection closed") from None
            raise

    def _write(self, rec: _Record) -> None:
        if self.closed or self._w is None:
            raise UpstreamError(self.error or "connection closed")
        self._w.write(rec.raw)
        rec.sent_at = self.last_activity = time.monotonic()
        self._released = rec.n + 1
        self._turn.set()

    async def _release(self, rec: _Record) -> None:
        """Write record ``rec.n`` once every earlier record has been written (strict mode)."""
        while self._released != rec.n:
            if self.closed:
                raise UpstreamError(self.error or "connection closed")
            self._turn.clear()
            await self._turn.wait()
        self._write(rec)

    async def response(self, rec: _Record, timeout: float) -> dns.message.Message:
        """The resolver's answer to ``rec`` (the record's own task keeps going if we stop waiting)."""
        try:
            return await asyncio.wait_for(asyncio.shield(rec.response), timeout)
        except TimeoutError:
            raise UpstreamError(f"no response to record {rec.n} within {timeout:.0f} s") from None

    # ------------------------------------------------------------------ I/O and failure

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self._w is not None:
            self._w.write(data)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    self._on_eof()
                    return
                try:
                    events = self.conn.receive_data(data)
                except TruncatedStream:  # a close_notify while queries were outstanding: the peer closed
                    self._on_eof()
                    return
                self._flush()  # the Finished after the handshake; nothing else is ever queued here
                for ev in events:
                    if isinstance(ev, HandshakeComplete):
                        if self._handshake is not None and not self._handshake.done():
                            self._handshake.set_result(ev)
                    elif isinstance(ev, DnsResponse):
                        rec = self._responses.pop(ev.query.id, None)
                        if rec is not None:
                            self.in_flight -= 1
                            self.last_activity = time.monotonic()
                            if not rec.response.done():
                                rec.response.set_result(ev.response)
                    elif isinstance(ev, ReconnectRequired):
                        self.fail("resolver asked for a KeyUpdate or a certificate: reconnecting")
                        return
                if self.conn.closed:
                    self._on_eof()
                    return
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - any read error ends this connection only
            self.fail(f"DoT connection error: {e}")

    def _on_eof(self) -> None:
        """The other end closed the DoT connection.  With no record of ours unanswered it closed an
        unused connection (an idle time-out, measured by the pool); records not yet written (proven
        beside the CO) do not count."""
        unanswered = sum(1 for r in self._responses.values() if r.sent_at is not None)
        self.closed_by_resolver = unanswered == 0
        why = f" with {unanswered} queries unanswered" if unanswered else ""
        self.fail(f"the resolver (or the middlebox) closed the DoT connection{why}")

    async def _proof_loop(self, reader: asyncio.StreamReader) -> None:
        buf = bytearray()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self.fail("the middlebox closed the proof channel")
                    return
                buf += data
                while (head := split_frame(buf)) is not None:
                    frame = bytes(buf[: head[1]])
                    del buf[: head[1]]
                    try:
                        msg = from_wire(frame)
                    except MessageRejected as e:
                        log.warning("conn=%d malformed answer from the middlebox: %s", self.ident, e)
                        continue
                    if isinstance(msg, Announced) or (isinstance(msg, Rejected) and msg.kind == "announce"):
                        if self._announced is not None and not self._announced.done():
                            self._announced.set_result(msg)
                    elif isinstance(msg, Accepted | Rejected):
                        if isinstance(msg, Rejected):
                            log.warning(
                                "conn=%d middlebox rejected %s n=%d j=%d: %s",
                                *(self.ident, msg.kind, msg.n, msg.j, msg.reason),
                            )
                        fut = self._answers.get((msg.kind, msg.n, msg.j))
                        if fut is not None and not fut.done():
                            fut.set_result(msg)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - a broken proof channel ends this connection only
            self.fail(f"proof channel error: {e}")

    def fail(self, reason: str) -> None:
        """Close both connections, cancel this connection's proofs, fail everything waiting (idempotent)."""
        if self.closed:
            return
        self.closed, self.ready, self.error = True, False, reason
        self._dead.set()
        log.warning("conn=%d closed: %s", self.ident, reason)
        exc = UpstreamError(reason)
        for fut in [*self._answers.values(), *(r.response for r in self._responses.values())]:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        for fut in (self._handshake, self._announced):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()
        self._turn.set()
        for job in list(self._jobs):
            job.cancel()  # queued steps dropped at once: a dead connection's proofs delay nobody
        for p in self._pads.values():
            if p.task is not None:
                p.task.cancel()
            if p.values is not None and not p.values.done():
                p.values.cancel()
        for w in (self._w, self._pw):
            if w is not None:
                w.close()  # TCP FIN, no alert (SPEC §2)
        me = asyncio.current_task()
        for t in list(self._tasks):
            if t is not me:
                t.cancel()
        self.o._connection_closed(self)


class ProvingUpstream:
    """The pool: ``await start()``, then the listener's upstream (``await up(question)``), ``await close()``.

    ``relay`` and ``proof`` are the middlebox's DoT relay (or the resolver's address through a bridge)
    and proof endpoint; ``server_name``/``cafile`` are the resolver's certificate name and trust anchor
    (TLS is end to end with the resolver).  ``pool_size`` connections are kept while the user is
    active, one (the primary, kept alive with the stub's own queries) while quiet up to
    ``keepalive_horizon_s``, none after (the next query opens one).  ``workers``: proving threads (one
    per core).  ``pad_ahead`` records have PAD block 0 proven ahead (a burst of 30 names waits for none);
    ``pad_ahead_128`` (default 0) block 1 as well: a block proven ahead for a record that then carries a
    class-64 query is wasted (every keep-alive would waste one), so by default a class-128 query proves
    its second block on demand (one PAD proof more on its critical path).  ``timings`` collects
    ``(what, seconds)`` per proof and per query part (``pad_wait``,
    ``q_<B>`` (proof wall time), ``q_cpu``, ``q_witness``, ``release_wait``, ``response``, ``q_accept``,
    ``upstream``, ``async_proof``), ``co`` per channel opening and counts (``pad_promoted``,
    ``co_escalated``, ``keepalive``, ``retried``).
    """

    def __init__(
        self,
        relay: tuple[str, int],
        proof: tuple[str, int],
        prover,
        policy,
        *,
        server_name: str,
        cafile: str | None = None,
        pool_size: int = 1,
        pad_ahead: int = 30,
        pad_ahead_128: int = 0,
        connect_timeout: float = 5.0,
        answer_timeout: float = 30.0,
        ready_timeout: float = 60.0,
        workers: int | None = None,
        co_escalate_s: float = 4.0,
        keepalive: bool = True,
        keepalive_horizon_s: float = 600.0,
        assumed_idle_timeout_s: float = 30.0,
        keepalive_margin_s: float = 4.0,
        keepalive_min_timeout_s: float = 15.0,
        max_backoff_s: float = 60.0,
        async_budget: float = 0.5,
        early_records: int = 4,
        async_head_start_s: float = 0.15,
        async_reply_s: float = 0.003,
        async_wait_s: float = 9.5,
        need_coalesce_s: float = 0.003,
        on_timing: Callable[[str, float], None] | None = None,
    ):
        self.relay, self.proof, self.prover, self.policy = relay, proof, prover, policy
        self.server_name, self.cafile = server_name, cafile
        self.pool_size, self.pad_ahead, self.pad_ahead_128 = max(1, pool_size), pad_ahead, pad_ahead_128
        self.connect_timeout, self.answer_timeout, self.ready_timeout = (
            connect_timeout,
            answer_timeout,
            ready_timeout,
        )
        self.workers, self.co_escalate_s = workers, co_escalate_s
        self.keepalive, self.keepalive_horizon_s = keepalive, keepalive_horizon_s
        self.idle_timeout_s = assumed_idle_timeout_s
        """The resolver's idle time-out: assumed until measured (connections closed while unused)."""
        self.keepalive_margin_s = keepalive_margin_s
        self.keepalive_min_timeout_s = keepalive_min_timeout_s
        """Keep-alive queries go this long before the idle time-out runs out (at least; more on a machine
        where records take long to prove: :meth:`keepalive_after`)."""
        self._idle_closes: list[float] = []
        self.max_backoff_s = max_backoff_s
        self.async_budget = async_budget
        """Async mode: a record is sent only when its proofs are projected done within this fraction
        of the middlebox's record deadline (the work of every unproven record before it included)."""
        self.early_records = early_records
        """Strict mode: queries that may take a record of a new connection before its CO is accepted
        (their PAD and Q proofs run beside the CO; the records leave once it is accepted)."""
        self.async_head_start_s = async_head_start_s
        """Async mode: a record's proving starts when every answer in flight on its connection is in,
        or this long after it was sent (its deadline is 3 s): a burst's answers are not kept waiting
        behind the proofs' CPU and Python work (measured, 30 names through unbound on 2 cores: waiting
        for the record's own answer only, at most 50 ms, 0.16 s for the burst; for all of them, at
        most 150 ms, 0.11 s; the same names straight to unbound 0.047 s)."""
        self.async_reply_s = async_reply_s
        """Async mode: and this long more, so the listener has written the answers out before the
        proof's witness step (Python, under the GIL) starts: without it 4 of 10 one-at-a-time queries
        came back 2-3.6 ms later than their answer arrived (live unbound, 2 cores)."""
        self.async_wait_s = async_wait_s
        """Async mode: how long a query waits for room before it fails (SERVFAIL): the listener's 10 s
        less half a second for the answer, which comes in milliseconds once the record is sent (8 s
        failed 9 of a burst of 30 sent right after the first answer, with two busy loops on 2 cores:
        the channel opening and 30 proofs took the cores ~8 s; strict answered the same in 7.8 s)."""
        self.need_coalesce_s = need_coalesce_s
        """A record with a PAD block nobody proves yet waits this long before asking for it, so that a
        burst's blocks are proven ``PAD_BATCH`` per proof (:meth:`ProvedConnection._batch_needed`)."""
        self.pool: ProvingPool | None = None
        self.conns: list[ProvedConnection] = []
        self.last_error: str | None = None
        self.timings: dict[str, list[float]] = {}
        self.mode: str | None = None
        self._on_timing = on_timing
        self._counter = 0
        self._change: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._opening: ProvedConnection | None = None
        self._backoff_until = 0.0
        self._backoff = 0.0
        self._diagnosed = False
        self._last_user = time.monotonic()
        self._co_at: dict[int, float] = {}
        self._tables_asked = False
        self._q_fresh_from = 0
        """Index into ``timings["q_cpu"]`` of the first query proof made with the first size class's
        MSM tables (the earlier ones cost about a third more: not a burst's estimate)."""
        self._proven = asyncio.Event()
        self._warm: asyncio.Future | None = None
        self._keepalive_q: Question | None = None
        self._opens: set[asyncio.Task] = set()
        self._attempt_failed: str | None = None
        """Why the last connection attempt failed (None once one succeeded): queries then fail fast."""

    # ------------------------------------------------------------------ bookkeeping

    def tls_config(self) -> TlsClientConfig:
        suites = tuple(SUITES_BY_NAME[s] for s in self.prover.suites)
        return TlsClientConfig(self.server_name, cafile=self.cafile, suites=suites)

    def timing(self, what: str, seconds: float) -> None:
        self.timings.setdefault(what, []).append(seconds)
        if self._on_timing is not None:
            self._on_timing(what, seconds)

    def note_mode(self, ann: Announced) -> None:
        if ann.mode != self.mode:
            log.info(
                "middlebox enforcement: %s (CO within %.0f s, records within %.1f s%s)",
                ann.mode,
                ann.co_deadline_ms / 1000,
                ann.record_deadline_ms / 1000,
                f", {ann.max_before_co} before the CO" if ann.mode == ASYNC else "",
            )
        self.mode = ann.mode

    def notify(self) -> None:
        """Wake everyone waiting for a change of the pool (a connection ready, closed, the user active)."""
        if self._change is not None and not self._change.done():
            self._change.set_result(None)

    async def _wait_change(self, timeout: float) -> None:
        if self._change is None or self._change.done():
            self._change = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._change), timeout)

    def co_done(self, c: ProvedConnection) -> None:
        self._co_at[c.ident] = time.monotonic()
        if not self._tables_asked:  # after the first channel opening: never in the way of its deadline
            self._tables_asked = True
            self._ask_tables()
        self.notify()

    def _ask_tables(self) -> None:
        """Build the query keys' MSM tables in the background: the smallest size class's (most queries,
        ~3 core-s) before the look-ahead PADs, since every query proof after them costs a quarter less
        and a burst's admission in async mode is judged by that cost; the others' behind them."""
        if not hasattr(self.prover, "tables_job"):
            return
        sizes = sorted(self.prover.sizes)
        first = f"q_{sizes[0]}"
        gen = self.prover.tables_job([first])
        if gen is not None:
            job = self.pool.submit(TABLES, gen, f"msm-tables-{first}")
            loop = asyncio.get_running_loop()

            def done(_f: object) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed: the stub is stopping
                    loop.call_soon_threadsafe(self._tables_done)

            job.future.add_done_callback(done)
        else:
            self._tables_done()
        gen = self.prover.tables_job([f"q_{b}" for b in sizes[1:]]) if sizes[1:] else None
        if gen is not None:
            self.pool.submit(AHEAD, gen, "msm-tables")

    def _tables_done(self) -> None:
        """Query proofs from now on use the MSM tables: the burst estimates start over from them."""
        self._q_fresh_from = len(self.timings.get("q_cpu", []))

    def co_expected_s(self) -> float:
        """Seconds a channel opening takes now: its last CPU cost (8 core-seconds before one was
        measured) over the workers, stretched by the machine's load."""
        cpu = self.timings.get("co_cpu", [])
        return (cpu[-1] if cpu else 8.0) * self.pool.stretch() / self.pool.workers

    def co_at(self, c: ProvedConnection) -> float:
        return self._co_at.get(c.ident, time.monotonic())

    def proven(self) -> None:
        self._proven.set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.pool = ProvingPool(self.workers)
        if hasattr(self.prover, "on_timing"):
            self.prover.on_timing = self.timing
        warm = getattr(self.prover, "warm", None)
        self._warm = asyncio.ensure_future(asyncio.to_thread(warm) if warm is not None else asyncio.sleep(0))
        self._task = asyncio.ensure_future(self._maintain())

    async def warmed(self) -> None:
        """Until the prover's kernels and circuits are loaded (begun by :meth:`start`; errors are the
        maintainer's to report)."""
        if self._warm is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._warm)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for c in list(self.conns):
            c.fail("stub shutting down")
        for t in list(self._opens):
            t.cancel()
        if self._opens:
            await asyncio.gather(*self._opens, return_exceptions=True)
        if self.pool is not None:
            self.pool.shutdown()

    def _connection_closed(self, c: ProvedConnection) -> None:
        if c in self.conns:
            self.conns.remove(c)
        if self._opening is c:
            self._opening = None
        self.last_error = c.error
        now = time.monotonic()
        if c.closed_by_resolver and c.handshake_at is not None:
            unused_for = now - c.last_activity
            since = now - c.handshake_at
            co_deadline = c.enforcement.co_deadline_ms / 1000 if c.enforcement else 20.0
            if not c.co_accepted.is_set() and not c.is_async and since < co_deadline - 0.5:
                # before the middlebox's own CO deadline: the resolver closed the unused connection
                self._resolver_closes_before_co(since)
            elif unused_for >= 1.0 and not self._closing:
                self._idle_close(unused_for)
        self.notify()

    def _idle_close(self, unused_for: float) -> None:
        """A connection the resolver closed after ``unused_for`` seconds unused: two such closes within
        20 % of each other set the idle time-out (one alone may be a restart)."""
        self._idle_closes = [*self._idle_closes[-3:], unused_for]
        if len(self._idle_closes) < 2:
            return
        a, b = sorted(self._idle_closes[-2:])
        if b <= 1.2 * a and abs(a - self.idle_timeout_s) > 0.1 * self.idle_timeout_s:
            self.idle_timeout_s = a
            log.info(
                "resolver idle time-out measured: %.1f s (keep-alive after %.1f s unused)",
                *(a, self.keepalive_after()),
            )

    def _resolver_closes_before_co(self, after: float) -> None:
        co = self.timings.get("co", [])
        needed = co[-1] if co else after
        self._backoff = min(self.max_backoff_s, max(2.0, self._backoff * 2))
        self._backoff_until = time.monotonic() + self._backoff
        if not self._diagnosed:
            log.error(idle_diagnosis(after, needed))
            self._diagnosed = True
        log.warning(
            "backing off %.0f s before the next connection (queries get SERVFAIL meanwhile)", self._backoff
        )

    def _quiet(self) -> float:
        """Seconds since the user's last query."""
        return time.monotonic() - self._last_user

    def _active(self) -> bool:
        """The user asked something within the last keep-alive interval."""
        return self._quiet() < self.keepalive_after()

    def keepalive_after(self) -> float:
        """Seconds a connection may stay unused before the stub's keep-alive query: the resolver's idle
        time-out less a margin for proving and sending that record, ``keepalive_margin_s`` or ten
        times the slowest of the last query proofs (a busy machine), never below half the time-out
        (unbound's 30 s: 26 s on an idle machine, one keep-alive costing ~0.35 core-s)."""
        q_walls = (v for k, v in self.timings.items() if k.startswith("q_") and k[2:].isdigit())
        recent = [t for v in q_walls for t in v[-5:]]
        margin = max(self.keepalive_margin_s, 10 * max(recent, default=0.0))
        return max(self.idle_timeout_s / 2, self.idle_timeout_s - margin)

    def _keepalive_pays(self) -> bool:
        """Keeping a connection alive costs a proved query per interval: worth it (and done) only for
        resolvers whose idle time-out is at least ``keepalive_min_timeout_s`` (unbound, BIND: 30 s);
        behind a shorter one (Knot Resolver 10 s, dnsdist 2 s) connections open on demand instead."""
        return (
            self.keepalive
            and self.idle_timeout_s >= self.keepalive_min_timeout_s
            and self._quiet() < self.keepalive_horizon_s
        )

    def _wanted(self) -> int:
        """Connections to keep: ``pool_size`` while the user is active, the primary (kept alive) while
        quiet up to the horizon, none otherwise (the next query opens one)."""
        if self._active():
            return self.pool_size
        return 1 if self._keepalive_pays() else 0

    async def _open_one(self) -> None:
        self._counter += 1
        c = ProvedConnection(self, self._counter)
        self.conns.append(c)
        self._opening = c
        try:
            await c.open()
            self.last_error = self._attempt_failed = None
            self._backoff = 0.0
            if not c.is_async:
                self._opening = None  # the CO is in: the next handshake may start
        except Exception as e:  # noqa: BLE001 - any failure closes this connection only
            c.fail(str(e) or type(e).__name__)
            self._attempt_failed = c.error
            if not c.closed_by_resolver:
                self._backoff = min(self.max_backoff_s, max(0.5, self._backoff * 2))
                self._backoff_until = time.monotonic() + self._backoff
        finally:
            self.notify()

    async def _maintain(self) -> None:
        """Open connections one at a time (a handshake starts the CO clock: the next waits for the
        previous CO), back off after failures, keep the primary alive while quiet."""
        if self._warm is not None:
            await self._warm  # every circuit compiled before the first handshake
        while not self._closing:
            now = time.monotonic()
            if self._opening is not None and (self._opening.closed or self._opening.co_accepted.is_set()):
                self._opening = None
            live = [c for c in self.conns if not c.closed]
            # a further connection (a spare) only when no proof work waits: its CO would take the
            # cores from the very queries it is meant to help
            idle = self.pool.queued((URGENT, QUERY)) == 0 and self._quiet() > 1.0
            if (
                self._opening is None
                and now >= self._backoff_until
                and len(live) < self._wanted()
                and (not live or idle)
            ):
                t = asyncio.ensure_future(self._open_one())
                self._opens.add(t)
                t.add_done_callback(self._opens.discard)
                await asyncio.sleep(0)
            self._keepalives(now)
            await self._wait_change(0.5)

    def _keepalives(self, now: float) -> None:
        """Send the stub's own query on connections unused for :meth:`keepalive_after` seconds: every
        connection while the user is active, the primary only while quiet."""
        if not self._keepalive_pays():
            return
        ready = sorted(
            (c for c in self.conns if c.can_take() and c.co_accepted.is_set()), key=lambda c: c.ident
        )
        after = self.keepalive_after()
        for c in ready if self._active() else ready[:1]:
            if c.in_flight == 0 and now - c.last_activity >= after:
                q = self._keepalive_question()
                if q is None:
                    return
                self.timing("keepalive", 0.0)
                asyncio.ensure_future(self._swallow(self._send(c, q, keepalive=True)))

    def _keepalive_question(self) -> Question | None:
        if self._keepalive_q is None:
            from zkmb.policy.witness import check_name

            for name in (KEEPALIVE_NAME, "localhost"):
                with contextlib.suppress(ZkmbError):
                    if check_name(self.policy, name) is None:
                        self._keepalive_q = Question(
                            dns.name.from_text(name), dns.rdatatype.A, dns.rdataclass.IN
                        )
                        break
        return self._keepalive_q

    @staticmethod
    async def _swallow(aw) -> None:
        with contextlib.suppress(Exception):
            await aw

    # ------------------------------------------------------------------ queries

    async def _send(
        self, c: ProvedConnection, q: Question, *, keepalive: bool = False
    ) -> dns.message.Message:
        msg = dns.message.make_query(q.name, q.rdtype, q.rdclass, use_edns=0)
        if not q.rd:
            msg.flags &= ~dns.flags.RD
        size, _ = choose_size(msg, self.prover.sizes)  # InvalidInput: nothing reserved yet
        t0 = time.perf_counter()
        rec = c.take(msg, size, keepalive=keepalive)
        resp = await c.response(rec, self.answer_timeout)
        self.timing("upstream", time.perf_counter() - t0)
        if rec.sent_at is not None:
            self.timing("response", time.monotonic() - rec.sent_at)
        return resp

    def _async_backlog_s(self, new: ProvedConnection | None) -> tuple[float, float]:
        """(seconds the proving engine needs for every unproven async record, plus one more on ``new``;
        the largest projected age of an unproven record when its proof is done).

        Each record costs its Q proof (less the CPU its proof has had: none once it is made), and what
        its PAD blocks still need (:meth:`ProvedConnection.pad_work`: a block in a look-ahead batch waits
        for the whole batch, three blocks' CPU, counted once; charging one block's underestimated a
        burst's first record of each batch by two, and records on a busy machine reached 2.6 s of the
        3 s deadline), at the medians of the last 20 (the query proofs' since the MSM tables are in), over
        the workers, stretched by the machine's load.  Query proofs run in the
        order their records were sent, so a record's proof is projected done once the work of the records
        sent before it and its own is; its age counts from when it was sent (or the CO was accepted,
        whichever is later: the middlebox's deadline rule)."""
        q_all = self.timings.get("q_cpu", [])
        q = q_all[self._q_fresh_from :][-20:] or q_all[-20:]  # those made with the tables, once there are
        pad = self.timings.get("pad_cpu", [])[-20:]
        q_s = sorted(q)[len(q) // 2] if q else 0.3
        pad_s = sorted(pad)[len(pad) // 2] if pad else 0.3
        rate = self.pool.stretch() / self.pool.workers
        now = time.monotonic()
        pending: list[tuple[float, float, float]] = []  # (sent, deadline clock start, work)
        seen: set[int] = set()  # PAD jobs counted
        for c in self.conns:
            if c.closed or not c.is_async:
                continue
            for n, rec in sorted(c._unproven.items()):
                sent = now if rec.sent_at is None else rec.sent_at
                start = max(sent, self._co_at.get(c.ident, now))
                q_left = q_s
                for job in rec.jobs:  # its Q proof: the CPU it has had so far is done, or all once made
                    q_left = 0.0 if job.done else max(0.0, q_s - job.cpu_s)
                pending.append((sent, start, q_left + c.pad_work(n, rec.size // 64, pad_s, seen)))
        if new is not None:
            pending.append((now, now, q_s + new.pad_work(new._next_n, 1, pad_s, seen)))
        work = worst = 0.0
        for _, start, w in sorted(pending):
            work += w
            worst = max(worst, now - start + work * rate)
        return work * rate, worst

    async def _async_room(self, c: ProvedConnection, deadline: float) -> None:
        """Async mode: wait until one more record on ``c`` can be proven well within the middlebox's
        record deadline: the work of every unproven record, this one included, within ``async_budget``
        of it, and no record sent earlier projected past 80 % of it (the estimates are off: the machine
        got slower).  The second rule allows every record admitted by the first: a record admitted with
        the whole budget ahead of it is over any fixed age limit below the budget long before its proof
        is done (an "oldest record under 40 %" rule stalled the second half of a burst until all of the
        first was proven).  An honest stub never trips the cut: past ``deadline`` the query fails
        (SERVFAIL) rather than sending more."""
        with self.pool.tables_held():  # it waits for proofs: no MSM table step starts meanwhile
            await self._wait_for_room(c, deadline)

    async def _wait_for_room(self, c: ProvedConnection, deadline: float) -> None:
        limit = c.enforcement.record_deadline_ms / 1000
        t0 = time.monotonic()
        while True:
            need, worst = self._async_backlog_s(c)
            if (need <= self.async_budget * limit and worst <= 0.8 * limit) or not any(
                x._unproven for x in self.conns if not x.closed
            ):
                waited = time.monotonic() - t0
                if waited > 0.001:
                    self.timing("async_room_wait", waited)
                    log.debug(
                        "async: a record waited %.0f ms for room (backlog %.2f s, stretch %.2f)",
                        *(waited * 1e3, need, self.pool.stretch()),
                    )
                return
            if time.monotonic() >= deadline:
                raise UpstreamError("the proofs of earlier records are behind: not sending more (async)")
            self._proven.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proven.wait(), 0.05)

    async def __call__(self, q: Question) -> dns.message.Message:
        self._last_user = time.monotonic()
        deadline = time.monotonic() + self.ready_timeout
        tried: set[int] = set()
        last: Exception | None = None
        self.notify()  # wake the maintainer: the user is active
        while True:
            usable = [c for c in self.conns if c.can_take() and c.ident not in tried]
            if usable:  # a connection whose CO is in first, then the least busy
                c = min(usable, key=lambda c: (not c.co_accepted.is_set(), c.in_flight))
                if c.is_async:
                    await self._async_room(c, min(deadline, time.monotonic() + self.async_wait_s))
                    if not c.can_take():
                        continue
                tried.add(c.ident)
                try:
                    return await self._send(c, q)
                except UpstreamError as e:
                    if not c.closed or len(tried) >= 3:
                        raise
                    last = e
                    self.timing("retried", 0.0)
                    continue  # the connection died under the query: another one
            now = time.monotonic()
            if self._attempt_failed is not None and not any(c.can_take() for c in self.conns):
                # the last connection attempt failed: fail fast (SERVFAIL) rather than wait for the
                # next one (the pool keeps trying, backing off)
                raise UpstreamError(f"no upstream connection ({self._attempt_failed})")
            left = deadline - now
            if left <= 0:
                why = last or self.last_error
                raise UpstreamError(f"no proved connection ready within {self.ready_timeout:.0f} s ({why})")
            await self._wait_change(min(left, 0.25))
