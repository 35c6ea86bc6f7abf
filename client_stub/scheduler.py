"""The stub's proving engine: proof jobs cut into steps, run by priority on one worker thread per core.

A job is a generator that yields *stages* (lists of zero-argument callables: steps that may run at
once on different threads) and returns its result; :class:`~zkmb.groth16.prover.ProofPlan` provides
the steps of a Groth16 proof (witness, QAP, NTT chains, MSM chunks).  Every worker runs one step at a
time with numba limited to one thread, so

* all cores work on one proof when it is alone (its independent steps spread over the workers), and
  on several proofs at once in a burst, without the barriers of multi-threaded kernels, which stall
  whenever another process holds a core (see zkmb/__init__.py);
* priorities act between steps: a query's proof starts on the next free worker (a step takes at most
  tens of milliseconds for Q and PAD, a few hundred for the channel opening's MSM chunks) instead of
  waiting for a whole proof;
* a job can be cancelled: its queued steps are dropped at once (a dead connection's proofs never delay
  another's), a running step finishes and its result is discarded;
* a job's priority can change while it runs (a look-ahead PAD a query now needs; a channel opening
  whose deadline comes close);
* background work (look-ahead PADs, MSM tables) never holds every worker: with two or more, one is
  always free for a query that arrives (measured: with look-ahead PAD proofs on both workers, every
  third query of a one-every-0.5-s run waited 270-420 ms for their steps to end); and no background
  step starts while a query's proof (or an urgent opening) is in progress, so that proof has every
  free worker and no look-ahead PAD's MSMs beside it in the caches (measured, one query every 0.5 s
  through the live stub: Q-64 proof 61-81 -> 54-65 ms);
* no table step starts while the owner :meth:`~ProvingPool.hold_tables` (queries whose proofs are not
  submitted yet: an async record in its head start, a query waiting for room).  Otherwise a table
  step slips into every such gap: in a burst on a busy 2-core machine the MSM tables took 0.88 of
  the stub's 9.4 core-seconds while queries waited.  Look-ahead PADs still run then: they are the
  blocks the waiting queries need next (held too, an idle async burst of 30 took 0.41 s, not 0.09).

Priorities, most urgent first: :data:`URGENT` (a channel opening near its deadline), :data:`QUERY`,
:data:`OPENING`, :data:`NEEDED` (a PAD block a record waits for), :data:`TABLES` (work that makes
every later proof cheaper: the query keys' MSM window tables), :data:`AHEAD` (look-ahead PADs).
``TABLES`` and ``AHEAD`` are background work (:data:`BACKGROUND`): together they never hold every
worker.  Within a priority, jobs run in submission order.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from zkmb.errors import ZkmbError

__all__ = [
    "AHEAD",
    "BACKGROUND",
    "NEEDED",
    "OPENING",
    "QUERY",
    "TABLES",
    "URGENT",
    "Job",
    "ProvingPool",
    "blocking_job",
]

URGENT, QUERY, OPENING, NEEDED, TABLES, AHEAD = 0, 1, 2, 3, 4, 5
BACKGROUND = TABLES
"""Priorities from this one on are background work: at most ``ahead_workers`` workers run it."""

JobGen = Generator[list[Callable[[], Any]], None, Any]


def blocking_job(fn: Callable[..., Any], *args: Any) -> JobGen:
    """A job of one step: ``fn(*args)`` (for provers without steps, e.g. test stand-ins)."""
    box: list[Any] = []
    yield [lambda: box.append(fn(*args))]
    return box[0]


class Job:
    """One submitted job: its :attr:`future` resolves to the generator's return value."""

    def __init__(self, pool: ProvingPool, gen: JobGen, priority: int, seq: int, name: str):
        self.pool, self.gen, self.priority, self.seq, self.name = pool, gen, priority, seq, name
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.pending: list[Callable[[], Any]] = []  # steps of the current stage not started
        self.running = 0  # steps of the current stage running
        self.cancelled = False
        self.error: BaseException | None = None
        self.submitted = time.perf_counter()
        self.started: float | None = None
        self.cpu_s = 0.0  # thread CPU time of its steps

    def set_priority(self, priority: int) -> None:
        """Raise or lower the priority (takes effect for the steps not started yet)."""
        with self.pool._cv:
            self.priority = priority
            self.pool._cv.notify_all()

    def cancel(self) -> None:
        """Drop the queued steps and cancel the future now; a running step finishes unobserved."""
        self.pool._cancel(self)

    @property
    def done(self) -> bool:
        return self.future.done()


class ProvingPool:
    """``workers`` threads (default: one per core) running the steps of submitted jobs by priority."""

    def __init__(
        self, workers: int | None = None, name: str = "zkmb-prove", ahead_workers: int | None = None
    ):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.ahead_workers = max(1, self.workers - 1 if ahead_workers is None else ahead_workers)
        """At most this many workers run background (:data:`TABLES`, :data:`AHEAD`) steps at once
        (default: all but one)."""
        self._cv = threading.Condition()
        self._jobs: list[Job] = []  # jobs with steps pending or running
        self._seq = itertools.count()
        self._closed = False
        self.busy_s = 0.0  # wall time workers spent in steps (for load estimates)
        self._recent: collections.deque[tuple[float, float]] = collections.deque(maxlen=256)
        self._holds = 0  # owners' holds on table steps (queries not submitted yet)
        import zkmb.algebra.kernels  # noqa: F401  (here, not in each worker at once: see prover._import_job_modules)

        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------------ API

    def submit(self, priority: int, gen: JobGen, name: str = "") -> Job:
        """Queue a job (its first stage is taken from the generator now)."""
        with self._cv:
            if self._closed:
                raise ZkmbError("proving pool is shut down")
            job = Job(self, gen, priority, next(self._seq), name)
            self._advance(job, None)
            self._cv.notify_all()
        job.future.add_done_callback(lambda f: self._cancel(job) if f.cancelled() else None)
        return job

    def hold_tables(self) -> None:
        """No :data:`TABLES` step starts until the matching :meth:`release_tables` (holds count): for
        demand the owner knows of before it submits its jobs."""
        with self._cv:
            self._holds += 1

    def release_tables(self) -> None:
        with self._cv:
            if self._holds <= 0:
                raise ZkmbError("release_tables without a hold")
            self._holds -= 1
            self._cv.notify_all()

    @contextlib.contextmanager
    def tables_held(self) -> Iterator[None]:
        """:meth:`hold_tables` for the ``with`` block."""
        self.hold_tables()
        try:
            yield
        finally:
            self.release_tables()

    def queued(self, priorities: Iterable[int] | None = None) -> int:
        """Jobs not finished (optionally only those of the given priorities)."""
        with self._cv:
            ps = None if priorities is None else set(priorities)
            return sum(1 for j in self._jobs if ps is None or j.priority in ps)

    def stretch(self) -> float:
        """How much longer than their CPU time the recent steps took (>= 1): how much other processes
        take the cores from the workers now (1.0 on an idle machine; 2 with two busy loops on 2 cores)."""
        with self._cv:
            wall = sum(w for w, _ in self._recent)
            cpu = sum(c for _, c in self._recent)
        return max(1.0, wall / cpu) if cpu > 0.05 else 1.0

    def shutdown(self) -> None:
        """Cancel every job; the threads end after their running step."""
        with self._cv:
            self._closed = True
            for job in list(self._jobs):
                self._cancel_locked(job)
            self._cv.notify_all()

    # ------------------------------------------------------------------ internals (hold _cv)

    def _advance(self, job: Job, value: Any) -> None:
        """Take the job's next non-empty stage, or finish it."""
        while True:
            try:
                stage = job.gen.send(value) if job.started is not None else next(job.gen)
            except StopIteration as stop:
                self._finish(job, result=stop.value)
                return
            except BaseException as e:  # noqa: BLE001 - the job's own error goes to its future
                job.error = e
                self._finish(job)
                return
            if job.started is None:
                job.started = time.perf_counter()
            if stage:
                job.pending = list(stage)
                if job not in self._jobs:
                    self._jobs.append(job)
                return
            value = None

    def _finish(self, job: Job, *, result: Any = None) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        job.pending = []
        if job.future.done():
            return
        if job.error is not None:
            job.future.set_exception(job.error)
        elif job.cancelled:
            job.future.cancel()
        else:
            job.future.set_result(result)

    def _cancel(self, job: Job) -> None:
        with self._cv:
            self._cancel_locked(job)

    def _cancel_locked(self, job: Job) -> None:
        if job.cancelled:
            return
        job.cancelled = True
        job.pending = []
        job.gen.close()  # a step still running holds its own references; its result is dropped
        self._finish(job)

    def _take(self) -> tuple[Job, Callable[[], Any]] | None:
        while True:
            if self._closed:
                return None
            ready = [j for j in self._jobs if j.pending]
            if ready and (
                any(j.priority <= QUERY for j in self._jobs)  # a query's proof has every free worker
                or sum(j.running for j in self._jobs if j.priority >= BACKGROUND) >= self.ahead_workers
            ):
                ready = [j for j in ready if j.priority < BACKGROUND]
            if self._holds > 0:  # a query's jobs are coming: no table step (look-ahead PADs are its own)
                ready = [j for j in ready if j.priority != TABLES]
            if ready:
                job = min(ready, key=lambda j: (j.priority, j.seq))
                job.running += 1
                return job, job.pending.pop(0)
            self._cv.wait()

    # ------------------------------------------------------------------ workers

    def _run(self) -> None:
        from zkmb.algebra.kernels import numba_threads

        with numba_threads(1):
            while True:
                with self._cv:
                    item = self._take()
                if item is None:
                    return
                job, step = item
                err: BaseException | None = None
                t0, c0 = time.perf_counter(), time.thread_time()
                try:
                    step()
                except BaseException as e:  # noqa: BLE001 - ends the job with this error
                    err = e
                t1 = time.perf_counter()
                with self._cv:
                    cpu = time.thread_time() - c0
                    job.cpu_s += cpu
                    self.busy_s += t1 - t0
                    self._recent.append((t1 - t0, cpu))
                    job.running -= 1
                    if err is not None and job.error is None and not job.cancelled:
                        job.error, job.cancelled, job.pending = err, True, []
                    if job.cancelled:
                        if job.running == 0 and not job.future.done():
                            job.gen.close()
                            self._finish(job)  # a step's error: the job ends with it
                    elif job.running == 0 and not job.pending:
                        self._advance(job, None)
                    self._cv.notify_all()
