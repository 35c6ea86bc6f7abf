"""The proved upstream: a pool of DoT connections through the middlebox relay, with the proof channel.

Per connection (:class:`ProvedConnection`): TCP to the relay, the TLS 1.3 handshake, ANNOUNCE on the proof
channel, the CO proof made right after the handshake, PAD proofs for the next records kept ahead of
demand.  Per query: pad the DNS message with EDNS(0) padding so the record fills its
size class (L = B, SPEC §5), encrypt it (fixing its record number ``n``), make sure the PAD blocks
``(n, 0..B/64-1)`` are accepted, prove Q in a worker, send the Q proof, then release the record (records
leave in record-number order), then wait for the response.  Any failure after a record number was taken
poisons the connection (later records cannot be decrypted without it): the connection is closed, its
queries fail with :class:`UpstreamError` and the pool opens a new one.  Every wait is bounded.

Scheduling (the critical path is the Q proof only): in-process proving goes through one
:class:`ProofScheduler` whose critical jobs (Q, and PADs a waiting query needs: promoted) always start
before background jobs (look-ahead PADs), and no background job starts while a critical one is queued or
running; the look-ahead for the next records is queued right behind a query's Q proof.  A PAD proof
takes ~0.1 s, so a Q arriving while one runs waits at most that.  The CO proof (~3.5 s, not
interruptible) of a further connection runs in a separate niced process
(:class:`~zkmb.client_stub.prover.BackgroundProver`) so it never holds the cores, the GIL or the
proving worker from a Q; if it is still running after ``co_escalate_s`` (a busy machine starves a niced
process) it is raced by an in-process critical proof, so a fresh connection is proven well within the
middlebox's CO deadline.  At start-up (no connection ready yet) the COs are proven in-process, the
first at critical priority; the CO process is started once the pool is full.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

import dns.flags
import dns.message
from zkmb.middlebox.messages import (
    Accepted,
    Announce,
    CoMsg,
    MessageRejected,
    PadMsg,
    QMsg,
    Rejected,
    from_wire,
    split_frame,
    to_wire,
)

from zkmb.dns.padding import pad_to_length
from zkmb.errors import InvalidInput
from zkmb.tls import DnsResponse, DotConnection, HandshakeComplete, TlsClientConfig
from zkmb.tls.dot import ReconnectRequired
from zkmb.tls.records import SUITES_BY_NAME

from .listener import Question, UpstreamError

__all__ = ["CRITICAL", "BACKGROUND", "ProofScheduler", "ProvedConnection", "ProvingUpstream", "choose_size"]

log = logging.getLogger("zkmb.stub.upstream")
TAG = 16
HEADER = 5
CRITICAL, BACKGROUND = 0, 1
"""Priorities of :class:`ProofScheduler` jobs."""


class ProofScheduler:
    """In-process proving on ``workers`` threads with two priorities.

    Guarantees: jobs of one priority start in submission order; a CRITICAL job is always started before
    any queued BACKGROUND job; a BACKGROUND job is never started while a CRITICAL job is queued or
    running (a worker stays idle instead).  Running jobs are not interrupted.
    """

    def __init__(self, workers: int = 1, name: str = "zkmb-prove"):
        self._heap: list = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._critical_running = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    def submit(self, priority: int, fn, *args) -> concurrent.futures.Future:
        """Queue ``fn(*args)``; the future's ``queued_s`` attribute is set when it starts."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._cv:
            if self._closed:
                raise UpstreamError("proving scheduler is shut down")
            heapq.heappush(self._heap, (priority, next(self._seq), time.perf_counter(), fn, args, fut))
            self._cv.notify_all()
        return fut

    def _next(self):
        with self._cv:
            while True:
                if self._closed:
                    return None
                if self._heap:
                    prio = self._heap[0][0]
                    if prio == CRITICAL or self._critical_running == 0:
                        item = heapq.heappop(self._heap)
                        if prio == CRITICAL:
                            self._critical_running += 1
                        return item
                self._cv.wait()

    def _run(self) -> None:
        while (item := self._next()) is not None:
            prio, _, queued_at, fn, args, fut = item
            try:
                if fut.set_running_or_notify_cancel():
                    fut.queued_s = time.perf_counter() - queued_at
                    try:
                        fut.set_result(fn(*args))
                    except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
                        fut.set_exception(e)
            finally:
                if prio == CRITICAL:
                    with self._cv:
                        self._critical_running -= 1
                        self._cv.notify_all()

    def shutdown(self) -> None:
        """Cancel queued jobs; running ones finish in their (daemon) threads."""
        with self._cv:
            self._closed = True
            for *_, fut in self._heap:
                fut.cancel()
            self._heap.clear()
            self._cv.notify_all()


class _PadJob:
    """One PAD proof being made: ``task`` resolves to ``(pad, blinder)`` once the middlebox accepted it;
    ``urgent`` is set when a query waits for it."""

    def __init__(self) -> None:
        self.urgent = asyncio.Event()
        self.task: asyncio.Future | None = None


def choose_size(msg: dns.message.Message, sizes) -> tuple[int, bytes]:
    """Pad ``msg`` so its DoT record's inner plaintext is exactly the smallest class that fits
    (``L = M + 3 = B``); returns ``(B, wire)``.  InvalidInput when no available class fits."""
    for b in sorted(sizes):
        try:
            return b, pad_to_length(msg, b - 3)
        except InvalidInput:
            continue
    raise InvalidInput(f"query does not fit the size classes {sorted(sizes)}")


def _retrieve(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


async def _first_result(futs: list[asyncio.Future]):
    """The result of the first of ``futs`` to succeed (the others are cancelled); the last error if none."""
    pending = set(futs)
    err: BaseException | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
            for f in done:
                if not f.cancelled() and f.exception() is None:
                    return f.result()
                err = err if f.cancelled() else f.exception()
        raise err or UpstreamError("proof cancelled")
    finally:
        for f in pending:
            f.cancel()


class ProvedConnection:
    """One DoT connection through the relay plus its proof-channel connection."""

    def __init__(self, owner: ProvingUpstream, ident: int):
        self.o, self.ident = owner, ident
        self.conn = DotConnection(owner.tls_config())
        self.ready = False
        self.closed = False
        self.error: str | None = None
        self.in_flight = 0
        self.keys = None
        self._w: asyncio.StreamWriter | None = None
        self._pw: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task] = []
        self._handshake: asyncio.Future | None = None
        self._responses: dict[int, asyncio.Future] = {}
        self._answers: dict[tuple[str, int, int], asyncio.Future] = {}
        self._pads: dict[tuple[int, int], _PadJob] = {}
        self.co_in_process = False
        self._jobs: set[concurrent.futures.Future] = set()  # this connection's proving jobs not finished
        self._released = 0  # records 0.._released-1 have been written
        self._turn = asyncio.Event()
        self.opened_at = time.monotonic()

    # ------------------------------------------------------------------ setup

    async def open(self) -> None:
        """Connect, handshake, announce, prove and send CO; ``ready`` once the middlebox accepted CO."""
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
        self._tasks.append(asyncio.ensure_future(self._read_loop(reader)))
        try:
            await asyncio.wait_for(asyncio.shield(self._handshake), o.connect_timeout)
        except TimeoutError:
            raise UpstreamError("TLS handshake through the relay timed out") from None
        try:
            preader, self._pw = await asyncio.wait_for(asyncio.open_connection(*o.proof), o.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise UpstreamError(
                f"proof endpoint {o.proof[0]}:{o.proof[1]} unreachable ({e or 'timeout'})"
            ) from None
        self._tasks.append(asyncio.ensure_future(self._proof_loop(preader)))
        local = self._w.get_extra_info("sockname")[:2]
        peer = self._w.get_extra_info("peername")[:2]
        await self._ask(
            Announce(tuple(local), tuple(peer), self.conn.capture.client_random), ("announce", 0, 0)
        )
        t0 = time.perf_counter()
        self.keys, proof = await self._prove_co()
        o.timing("co", time.perf_counter() - t0)
        await self._ask(CoMsg(self.keys.comm_k, proof), ("co", 0, 0), timeout=o.answer_timeout)
        self.ready = True
        log.info(
            "conn=%d ready: CO accepted %.1f s after connect", self.ident, time.monotonic() - self.opened_at
        )
        self._keep_ahead(0)

    async def _ask(self, msg, ref: tuple[str, int, int], timeout: float | None = None) -> None:
        fut = self._answer_future(ref)
        self._send_proof(msg)
        try:
            ans = await asyncio.wait_for(asyncio.shield(fut), timeout or self.o.answer_timeout)
        except TimeoutError:
            raise UpstreamError(
                f"no answer from the middlebox to {ref[0]} (n={ref[1]}, j={ref[2]})"
            ) from None
        finally:
            if self._answers.get(ref) is fut:
                del self._answers[ref]
        if isinstance(ans, Rejected):
            raise UpstreamError(f"middlebox rejected {ref[0]} (n={ref[1]}, j={ref[2]}): {ans.reason}")

    def _answer_future(self, ref) -> asyncio.Future:
        fut = self._answers.get(ref)
        if fut is None or fut.done():
            fut = self._answers[ref] = asyncio.get_running_loop().create_future()
        return fut

    def _send_proof(self, msg) -> None:
        if self._pw is None or self._pw.is_closing():
            raise UpstreamError("proof channel is closed")
        self._pw.write(to_wire(msg))

    def _submit(self, priority: int, fn, *args) -> concurrent.futures.Future:
        """A proving job for this connection; :meth:`fail` cancels it if it has not started."""
        cf = self.o.sched.submit(priority, fn, *args)
        self._jobs.add(cf)
        cf.add_done_callback(self._jobs.discard)
        return cf

    async def _prove_co(self):
        """The CO proof: in-process when no other connection is ready (start-up: critical for the first,
        background priority for the next), else in the niced background process, escalated to an
        in-process critical proof if it has not finished after ``co_escalate_s``."""
        o = self.o
        others = [c for c in o.conns if c is not self and not c.closed]
        if not any(c.ready for c in others) or o.background() is None:
            # start-up (or a stand-in prover): in-process; behind queued Q proofs if another connection
            # serves queries or is being proven (the pool fills one CO after the other, first answer first)
            prio = BACKGROUND if any(c.ready or c.co_in_process for c in others) else CRITICAL
            self.co_in_process = True
            try:
                return await asyncio.wrap_future(self._submit(prio, o.prover.co, self.conn.capture))
            finally:
                self.co_in_process = False
        bg = asyncio.wrap_future(o.bg.co(self.conn.capture))
        done, _ = await asyncio.wait({bg}, timeout=o.co_escalate_s)
        if done and bg.exception() is None:
            return bg.result()
        if done:
            log.warning("conn=%d background CO failed (%s): proving it here", self.ident, bg.exception())
            return await asyncio.wrap_future(self._submit(CRITICAL, o.prover.co, self.conn.capture))
        log.info(
            "conn=%d CO still in the background after %.0f s: proving it here too",
            self.ident,
            o.co_escalate_s,
        )
        o.timing("co_escalated", 0.0)
        fg = asyncio.wrap_future(self._submit(CRITICAL, o.prover.co, self.conn.capture))
        return await _first_result([bg, fg])

    # ------------------------------------------------------------------ PAD

    def _keep_ahead(self, start: int) -> None:
        """Background PAD proofs for block 0 of the next ``pad_ahead`` records and block 1 of the next
        one (a class-128 query then waits for none) (SPEC §4)."""
        for n in range(start, start + self.o.pad_ahead):
            self._pad(n, 0, critical=False)
        if self.o.pad_ahead:
            self._pad(start, 1, critical=False)

    def _pad(self, n: int, j: int, *, critical: bool) -> asyncio.Future:
        job = self._pads.get((n, j))
        if job is None:
            job = self._pads[(n, j)] = _PadJob()
            if critical:
                job.urgent.set()
            job.task = asyncio.ensure_future(self._make_pad(n, j, job))
            job.task.add_done_callback(_retrieve)  # a look-ahead PAD nobody awaited fails quietly
            self._tasks.append(job.task)
        elif critical:
            job.urgent.set()
        return job.task

    async def _make_pad(self, n: int, j: int, job: _PadJob) -> tuple[bytes, int]:
        """Prove PAD (n, j) in-process at background priority, re-queued as critical as soon as a query
        needs it (if it has not started yet: a started one finishes first), then send it."""
        o = self.o
        t0 = time.perf_counter()

        def submit(prio: int) -> concurrent.futures.Future:
            return self._submit(prio, o.prover.pad, self.keys, n, j)

        cf = submit(CRITICAL if job.urgent.is_set() else BACKGROUND)
        fut = asyncio.wrap_future(cf)
        if not job.urgent.is_set():
            waiter = asyncio.ensure_future(job.urgent.wait())
            try:
                await asyncio.wait({fut, waiter}, return_when="FIRST_COMPLETED")
            finally:
                waiter.cancel()
            if not fut.done():
                o.timing("pad_promoted", 0.0)
                if cf.cancel():  # not started yet: queue it again, ahead of every background job
                    cf = submit(CRITICAL)
                    fut = asyncio.wrap_future(cf)
        try:
            a, proof = await fut
        finally:
            cf.cancel()  # only when this coroutine was cancelled before the proof started
        o.timing("pad", time.perf_counter() - t0)
        if n < self._released:
            raise UpstreamError(f"PAD ({n}, {j}) not needed: record {n} already sent")  # nobody awaits it
        await self._ask(PadMsg(n, j, a.comm_pad, proof), ("pad", n, j))
        return a.pad, a.blinder

    # ------------------------------------------------------------------ queries

    async def query(self, q: Question) -> dns.message.Message:
        """Send one proved query on this connection; UpstreamError (and the connection closed) on failure."""
        o = self.o
        msg = dns.message.make_query(q.name, q.rdtype, q.rdclass, use_edns=0)
        if not q.rd:
            msg.flags &= ~dns.flags.RD
        size, _ = choose_size(msg, o.prover.sizes)  # InvalidInput: nothing reserved yet
        # -- from here until the record is released, a failure poisons the connection
        self.in_flight += 1
        n = len(self.conn.capture.client_app_records)
        try:
            qid = self.conn.send_query(msg)
            raw = self.conn.data_to_send()
            rec = self.conn.capture.client_app_records[n]
            if rec.seq != n or raw != rec.raw or len(raw) != HEADER + size + TAG:
                raise UpstreamError(f"record {n} was not encrypted as expected")
            resp_fut = self._responses[qid] = asyncio.get_running_loop().create_future()
            t_enc = time.perf_counter()
            k = size // 64
            pads = await self._unless_failed(
                asyncio.wait_for(
                    asyncio.gather(*(asyncio.shield(self._pad(n, j, critical=True)) for j in range(k))),
                    o.answer_timeout,
                )
            )
            t_pads = time.perf_counter()
            job = self._submit(
                CRITICAL,
                o.prover.q,
                [p for p, _ in pads],
                [b for _, b in pads],
                raw[HEADER:-TAG],
                o.policy,
                size,
            )
            self._keep_ahead(n + 1)  # queued behind the Q proof
            proof = await self._unless_failed(asyncio.wrap_future(job))
            t_q = time.perf_counter()
            o.timing(f"q_{size}", t_q - t_pads)
            o.timing("q_queue", getattr(job, "queued_s", 0.0))
            q_ans = self._answer_future(("q", n, 0))
            self._send_proof(QMsg(n, proof))
            await self._release(n, raw)
            t_rel = time.perf_counter()
            o.timing("pad_wait", t_pads - t_enc)
            o.timing("release_wait", t_rel - t_q)
            q_ans.add_done_callback(lambda f, t=t_q: o.timing("q_accept", time.perf_counter() - t))
        except asyncio.CancelledError:
            self.fail(f"query on record {n} cancelled before its record was sent")
            raise
        except Exception as e:
            self.fail(f"record {n}: {e}")
            self.in_flight -= 1
            raise UpstreamError(f"record {n}: {e}") from e
        try:
            done, _ = await asyncio.wait(
                {resp_fut, q_ans}, timeout=o.answer_timeout, return_when="FIRST_COMPLETED"
            )
            if q_ans in done and isinstance(q_ans.result(), Rejected):
                self.fail(f"Q proof for record {n} rejected: {q_ans.result().reason}")
            resp = await asyncio.wait_for(resp_fut, o.answer_timeout)
            o.timing("response", time.perf_counter() - t_rel)
            o.timing("upstream", time.perf_counter() - t_enc)
            return resp
        except TimeoutError:
            self.fail(f"no response to record {n}")
            raise UpstreamError(f"no response to record {n} within {o.answer_timeout} s") from None
        finally:
            self.in_flight -= 1
            self._responses.pop(qid, None)
            self._answers.pop(("q", n, 0), None)
            for j in range(7):
                job = self._pads.pop((n, j), None)
                if job is not None and job.task is not None and not job.task.done():
                    job.task.cancel()  # a look-ahead block this record did not need (class 64)

    async def _unless_failed(self, aw):
        """``await aw``; a cancellation caused by :meth:`fail` (its proving job or PAD task dropped), not
        by our caller, becomes UpstreamError (so the client gets SERVFAIL, not silence)."""
        try:
            return await aw
        except asyncio.CancelledError:
            if self.closed and not asyncio.current_task().cancelling():
                raise UpstreamError(self.error or "connection closed") from None
            raise

    async def _release(self, n: int, raw: bytes) -> None:
        """Write record ``n`` once every earlier record has been written."""
        while self._released != n:
            if self.closed:
                raise UpstreamError(self.error or "connection closed")
            self._turn.clear()
            await self._turn.wait()
        if self.closed or self._w is None:
            raise UpstreamError(self.error or "connection closed")
        self._w.write(raw)
        self._released = n + 1
        self._turn.set()

    # ------------------------------------------------------------------ I/O and failure

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self._w is not None:
            self._w.write(data)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                events = self.conn.receive_data(data) if data else self.conn.receive_eof()
                self._flush()  # the Finished after the handshake; nothing else is ever queued here
                for ev in events:
                    if isinstance(ev, HandshakeComplete):
                        if self._handshake is not None and not self._handshake.done():
                            self._handshake.set_result(ev)
                    elif isinstance(ev, DnsResponse):
                        fut = self._responses.get(ev.query.id)
                        if fut is not None and not fut.done():
                            fut.set_result(ev.response)
                    elif isinstance(ev, ReconnectRequired):
                        self.fail("resolver asked for a KeyUpdate or a certificate: reconnecting")
                        return
                if not data or self.conn.closed:
                    self.fail("the relay closed the DoT connection")
                    return
        except asyncio.CancelledError:
            pass
        except Exception as e:
            self.fail(f"DoT connection error: {e}")

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
                    if isinstance(msg, (Accepted, Rejected)):
                        if isinstance(msg, Rejected):
                            log.warning(
                                "conn=%d middlebox rejected %s n=%d j=%d: %s",
                                self.ident,
                                msg.kind,
                                msg.n,
                                msg.j,
                                msg.reason,
                            )
                        fut = self._answers.get((msg.kind, msg.n, msg.j))
                        if fut is not None and not fut.done():
                            fut.set_result(msg)
        except asyncio.CancelledError:
            pass
        except Exception as e:
            self.fail(f"proof channel error: {e}")

    def fail(self, reason: str) -> None:
        """Close both connections and fail everything waiting on them (idempotent)."""
        if self.closed:
            return
        self.closed, self.ready, self.error = True, False, reason
        log.warning("conn=%d closed: %s", self.ident, reason)
        exc = UpstreamError(reason)
        for futs in (self._responses, self._answers):
            for fut in futs.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(exc)
            self._handshake.exception()
        self._turn.set()
        for cf in list(self._jobs):
            cf.cancel()  # queued proofs for a dead connection would only delay the others
        for w in (self._w, self._pw):
            if w is not None:
                w.close()  # TCP FIN, no alert (SPEC §2)
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        self.o._connection_closed(self)


class ProvingUpstream:
    """The pool: ``await start()``, then the listener's upstream (``await up(question)``), ``await close()``.

    ``relay`` and ``proof`` are the middlebox's DoT relay and proof endpoint; ``server_name``/``cafile``
    are the resolver's certificate name and trust anchor (TLS is end to end with the resolver).
    ``workers``: in-process proving threads (1: a proof's MSMs already use every core, so a second
    concurrent proof only slows the first); ``background_process``: prove the CO of further connections
    in the prover's niced process when it offers one (``spawn_background``), escalated after
    ``co_escalate_s``.  ``timings`` collects ``(what, seconds)`` per proof and per query part (``pad_wait``,
    ``q_queue``, ``q_witness``/``q_prove`` from a prover with ``on_timing``, ``release_wait``,
    ``response``, ``q_accept``, ``upstream``) and counts (``pad_promoted``, ``co_escalated``).
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
        pool_size: int = 2,
        pad_ahead: int = 2,
        connect_timeout: float = 3.0,
        answer_timeout: float = 30.0,
        ready_timeout: float = 60.0,
        workers: int = 1,
        background_process: bool = True,
        co_escalate_s: float = 10.0,
        on_timing: Callable[[str, float], None] | None = None,
    ):
        self.relay, self.proof, self.prover, self.policy = relay, proof, prover, policy
        self.server_name, self.cafile = server_name, cafile
        self.pool_size, self.pad_ahead = pool_size, pad_ahead
        self.connect_timeout, self.answer_timeout, self.ready_timeout = (
            connect_timeout,
            answer_timeout,
            ready_timeout,
        )
        self.workers, self.background_process, self.co_escalate_s = workers, background_process, co_escalate_s
        self.sched: ProofScheduler | None = None
        self.bg = None  # BackgroundProver (the niced CO process), started on first use
        self.conns: list[ProvedConnection] = []
        self.last_error: str | None = None
        self.timings: dict[str, list[float]] = {}
        self._on_timing = on_timing
        self._counter = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def background(self):
        """The niced CO process (started on first call), or None when the prover offers none."""
        if self.bg is None and self.background_process and not self._closing:
            spawn = getattr(self.prover, "spawn_background", None)
            self.bg = spawn() if spawn is not None else None
            if self.bg is None:
                self.background_process = False
        return self.bg

    def tls_config(self) -> TlsClientConfig:
        suites = tuple(SUITES_BY_NAME[s] for s in self.prover.suites)
        return TlsClientConfig(self.server_name, cafile=self.cafile, suites=suites)

    def timing(self, what: str, seconds: float) -> None:
        self.timings.setdefault(what, []).append(seconds)
        if self._on_timing is not None:
            self._on_timing(what, seconds)

    async def start(self) -> None:
        self.sched = ProofScheduler(self.workers)
        if hasattr(self.prover, "on_timing"):
            self.prover.on_timing = self.timing
        self._task = asyncio.ensure_future(self._maintain())

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for c in list(self.conns):
            c.fail("stub shutting down")
        if self.sched is not None:
            self.sched.shutdown()
        if self.bg is not None:
            self.bg.close()

    def _connection_closed(self, c: ProvedConnection) -> None:
        if c in self.conns:
            self.conns.remove(c)
        self.last_error = c.error
        self._changed.set()

    async def _open_one(self) -> None:
        self._counter += 1
        c = ProvedConnection(self, self._counter)
        self.conns.append(c)
        try:
            await c.open()
            self.last_error = None
            if self.pool_size > 1 and len(self.conns) >= self.pool_size and all(x.ready for x in self.conns):
                self.background()  # pool full: warm the CO process now, for the next replacement
        except Exception as e:
            c.fail(str(e))
        finally:
            self._changed.set()

    async def _maintain(self) -> None:
        """Keep ``pool_size`` connections open or opening; back off (up to 5 s) after failures."""
        backoff = 0.2
        opening: set[asyncio.Task] = set()
        while not self._closing:
            while len(self.conns) < self.pool_size:
                t = asyncio.ensure_future(self._open_one())
                opening.add(t)
                t.add_done_callback(opening.discard)
                await asyncio.sleep(0)  # let it register in self.conns
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 5.0)
            if self.last_error is not None and not any(c.ready for c in self.conns):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    async def __call__(self, q: Question) -> dns.message.Message:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            ready = [c for c in self.conns if c.ready]
            if ready:
                return await min(ready, key=lambda c: c.in_flight).query(q)
            setting_up = [c for c in self.conns if not c.closed and c._w is not None]
            if not setting_up and self.last_error is not None:
                raise UpstreamError(f"no upstream connection: {self.last_error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise UpstreamError(f"no proved connection ready within {self.ready_timeout} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
