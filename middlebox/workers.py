"""Proof verification off the event loop (SPEC §7): a bounded queue, a thread pool, batches per circuit.

:class:`VerifyPool` takes ``(circuit, public, proof)`` jobs on the event loop, groups the waiting jobs
of one circuit into a batch (:meth:`Verifier.verify_many`: one batch check, each proof alone only if
the batch fails) and runs it in a worker thread (the numba pairing kernels release the GIL); verdicts
come back on the loop through a callback.  When the queue is full a job is dropped with a logged
reason: the proof is answered as rejected ("middlebox overloaded"), the connection is never closed
for that.

:class:`FlowVerifier` is what one :class:`~zkmb.middlebox.flow.Flow` sees: ``verify`` answers from the
verdicts already in, else queues the job and answers None ("pending"); when the verdict arrives it
calls ``wake`` so the relay runs :meth:`Flow.retry`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from zkmb.groth16.proof import Proof

from .verifier import Verifier

__all__ = ["FlowVerifier", "VerifyPool"]

log = logging.getLogger("zkmb.middlebox")

Key = tuple[str, tuple[int, ...], bytes]


def _proof_id(proof: Proof) -> bytes:
    """The proof's identity for the verdict cache (its limbs; stand-in proofs in tests: their repr)."""
    if isinstance(proof, Proof):
        return proof.a.tobytes() + proof.b.tobytes() + proof.c.tobytes()
    return repr(proof).encode()


@dataclass
class _Job:
    circuit: str
    public: tuple[int, ...]
    proof: Proof
    done: Callable[[bool], None]
    queued_at: float


class VerifyPool:
    """A bounded verification queue served by ``workers`` threads, ``max_batch`` proofs per batch.

    ``on_verdict(circuit, ok, seconds)`` (optional) observes every verdict (metrics).
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
        workers: int | None = None,
        max_queue: int = 1024,
        max_batch: int = 16,
        on_verdict: Callable[[str, bool, float], None] | None = None,
        on_drop: Callable[[str], None] | None = None,
    ):
        self.verifier = verifier
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self.max_queue, self.max_batch = max_queue, max_batch
        self.on_verdict, self.on_drop = on_verdict, on_drop
        self._queue: deque[_Job] = deque()
        self._busy = 0
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def roots(self):
        return self.verifier.roots

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._queue)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to the running loop and start the threads (idempotent)."""
        if self._executor is None:
            self._loop = loop or asyncio.get_running_loop()
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="zkmb-verify")

    def close(self) -> None:
        """Stop taking jobs; queued ones are dropped, running ones finish in their threads."""
        self._closed = True
        self._queue.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, circuit: str, public: Sequence[int], proof: Proof, done: Callable[[bool], None]) -> bool:
        """Queue one job (called on the loop); False, logged, when the queue is full or closed."""
        if self._closed or len(self._queue) >= self.max_queue:
            reason = "closed" if self._closed else "queue_full"
            log.warning(
                "proof circuit=%s result=dropped reason=%s queued=%d", circuit, reason, len(self._queue)
            )
            if self.on_drop is not None:
                self.on_drop(reason)
            return False
        self.start()
        self._queue.append(_Job(circuit, tuple(public), proof, done, time.monotonic()))
        self._dispatch()
        return True

    def _dispatch(self) -> None:
        while self._queue and self._busy < self.workers and not self._closed:
            circuit = self._queue[0].circuit
            batch, rest = [], deque()
            while self._queue:
                job = self._queue.popleft()
                if job.circuit == circuit and len(batch) < self.max_batch:
                    batch.append(job)
                else:
                    rest.append(job)
            self._queue = rest
            self._busy += 1
            fut = self._loop.run_in_executor(self._executor, self._run, circuit, batch)
            fut.add_done_callback(lambda f, b=batch: self._finished(f, b))

    def _run(self, circuit: str, batch: list[_Job]) -> list[bool]:
        return self.verifier.verify_many(circuit, [(job.public, job.proof) for job in batch])

    def _finished(self, fut: asyncio.Future, batch: list[_Job]) -> None:
        self._busy -= 1
        if fut.cancelled():
            verdicts = [False] * len(batch)
        elif fut.exception() is not None:
            log.error("verification raised %r; the batch counts as rejected", fut.exception())
            verdicts = [False] * len(batch)
        else:
            verdicts = fut.result()
        now = time.monotonic()
        for job, ok in zip(batch, verdicts, strict=True):
            if self.on_verdict is not None:
                self.on_verdict(job.circuit, ok, now - job.queued_at)
            try:
                job.done(ok)
            except Exception:  # a callback error must not stop the other verdicts
                log.exception("verdict callback failed")
        if not self._closed:
            self._dispatch()


class FlowVerifier:
    """The verifier of one flow on top of a :class:`VerifyPool` (see the module docstring).

    ``verify`` returns True/False for a job whose verdict is in (consuming it), None after queueing
    one; the verdicts kept are bounded (``max_verdicts``, oldest dropped first).
    """

    def __init__(self, pool: VerifyPool, wake: Callable[[], None], *, max_verdicts: int = 1024):
        self.pool = pool
        self.wake = wake
        self.max_verdicts = max_verdicts
        self.refusal: str | None = None
        self._verdicts: OrderedDict[Key, bool] = OrderedDict()
        self._waiting: set[Key] = set()

    @property
    def roots(self):
        return self.pool.roots

    def has(self, circuit: str) -> bool:
        return self.pool.verifier.has(circuit)

    def verify(self, circuit: str, public: Sequence[int], proof: Proof) -> bool | None:
        self.refusal = None
        if not self.pool.verifier.has(circuit):
            self.refusal = f"no verifying key for {circuit}"
            return False
        key = (circuit, tuple(public), _proof_id(proof))
        if key in self._verdicts:
            return self._verdicts.pop(key)
        if key in self._waiting:
            return None
        if not self.pool.submit(circuit, public, proof, lambda ok, k=key: self._done(k, ok)):
            self.refusal = "middlebox overloaded, resend later"
            return False
        self._waiting.add(key)
        return None

    def verify_any(self, circuit: str, publics: Sequence[Sequence[int]], proof: Proof) -> bool | None:
        """Like :meth:`verify` for "verifies on at least one of ``publics``", in one round: every
        alternative is queued at once and the combined verdict is in as soon as one accepts or all
        refused (a grace-window Q proof never waits for a second round, SPEC §7)."""
        if len(publics) == 1:
            return self.verify(circuit, publics[0], proof)
        self.refusal = None
        if not self.pool.verifier.has(circuit):
            self.refusal = f"no verifying key for {circuit}"
            return False
        key = (circuit, tuple(tuple(p) for p in publics), _proof_id(proof))
        if key in self._verdicts:
            return self._verdicts.pop(key)
        if key in self._waiting:
            return None
        state = {"left": len(publics), "done": False}

        def one(ok: bool) -> None:
            if state["done"]:
                return
            state["left"] -= 1
            if ok or state["left"] == 0:
                state["done"] = True
                self._done(key, ok)

        queued = 0
        for public in publics:
            if self.pool.submit(circuit, public, proof, one):
                queued += 1
            else:
                state["left"] -= 1
        if queued == 0:
            self.refusal = "middlebox overloaded, resend later"
            return False
        self._waiting.add(key)
        return None

    def _done(self, key: Key, ok: bool) -> None:
        self._waiting.discard(key)
        self._verdicts[key] = ok
        while len(self._verdicts) > self.max_verdicts:
            self._verdicts.popitem(last=False)
        self.wake()
