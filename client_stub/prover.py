"""What the stub proves, behind one small interface (real Groth16 or a test stand-in).

:class:`Groth16Prover` wraps the statement witness builders (:mod:`zkmb.circuits.witness`,
:mod:`zkmb.circuits.query_witness`) and :func:`zkmb.groth16.prover.prove` with proving keys loaded by
:func:`zkmb.circuits.keys.load_keys`.  Its methods are blocking (CPU-bound): the upstream runs them in
worker threads.

:class:`BackgroundProver` proves CO for further connections in a separate process at the lowest CPU
priority (nice 19) with its own copy of the keys, so a 3-4 s CO proof never shares the stub's GIL or
numba thread pool with a Q proof, and the kernel gives the Q proof the cores whenever it runs (measured
with a continuously busy nice-19 prover process: q_64 157 ms vs 153 ms alone; at nice 0, 1.2 s).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

from zkmb.circuits.witness import ClientKeys, PadAssignment, co_assignment, pad_assignment

from zkmb.errors import InvalidInput

__all__ = ["BackgroundProver", "Groth16Prover", "StatementProver", "circuit_names"]


def circuit_names(suite: str, sizes: Sequence[int]) -> list[str]:
    """Key names (:data:`zkmb.circuits.keys.CIRCUITS`) the stub needs for ``suite`` and Q sizes."""
    pad = "pad_block" if suite == "chacha20" else f"pad_block_{suite}"
    return [f"co_{suite}", pad, *(f"q_{b}" for b in sizes)]


class StatementProver(Protocol):
    """``co``/``pad``/``q`` return ``(what the client keeps, proof)``; proofs have ``to_bytes()``."""

    suites: tuple[str, ...]
    sizes: tuple[int, ...]

    def co(self, session) -> tuple[ClientKeys, object]: ...

    def pad(self, keys: ClientKeys, n: int, j: int) -> tuple[PadAssignment, object]: ...

    def q(self, pads: list[bytes], blinders: list[int], ciphertext: bytes, policy, size: int) -> object: ...


class Groth16Prover:
    """Real proofs from proving keys ``{name: ProvingKey}`` (names as in :func:`circuit_names`)."""

    def __init__(self, keys: dict, suites: Sequence[str] = ("chacha20",)):
        self.keys = dict(keys)
        self.suites = tuple(s for s in suites if f"co_{s}" in self.keys)
        if not self.suites:
            raise InvalidInput("no CO proving key for any suite")
        self.sizes = tuple(sorted(int(n[2:]) for n in self.keys if n.startswith("q_")))
        if not self.sizes:
            raise InvalidInput("no Q proving key")
        self._cs: dict[str, object] = {}
        self._lock = threading.Lock()
        self.key_dir: Path | None = None
        self.on_timing: Callable[[str, float], None] | None = None
        """Called with ``("q_witness", s)`` and ``("q_prove", s)`` after each Q proof (the latency split)."""

    @classmethod
    def from_dir(cls, key_dir, suite: str = "chacha20", sizes: Sequence[int] = (64, 128)) -> Groth16Prover:
        from zkmb.circuits.keys import load_keys

        names = circuit_names(suite, sizes)
        prover = cls(load_keys(key_dir, names, "prover", against="manifest"), (suite,))
        prover.key_dir = Path(key_dir)
        return prover

    def spawn_background(self, nice: int = 19) -> BackgroundProver | None:
        """A :class:`BackgroundProver` over the same key directory (None when the keys came from memory)."""
        if self.key_dir is None:
            return None
        suite = self.suites[0]
        return BackgroundProver(self.key_dir, circuit_names(suite, self.sizes[:1]), (suite,), nice=nice)

    def _circuit(self, name: str):
        with self._lock:
            if name not in self._cs:
                from zkmb.circuits.keys import compile_circuit

                self._cs[name] = compile_circuit(name)
            return self._cs[name]

    def _prove(self, name: str, assignment: dict):
        from zkmb.groth16.prover import prove

        cs = self._circuit(name)
        return prove(self.keys[name], cs.solve(assignment))

    def co(self, session):
        a = co_assignment(session)
        return a.keys, self._prove(f"co_{a.suite.name}", a.assignment)

    def pad(self, keys: ClientKeys, n: int, j: int):
        a = pad_assignment(keys, n, j)
        name = "pad_block" if keys.suite.name == "chacha20" else f"pad_block_{keys.suite.name}"
        return a, self._prove(name, a.assignment)

    def q(self, pads, blinders, ciphertext, policy, size):
        from zkmb.circuits.query_witness import query_assignment

        from zkmb.groth16.prover import prove

        t0 = time.perf_counter()
        a = query_assignment(pads, ciphertext, policy, blinders=blinders, size=size)
        name = f"q_{size}"
        cs = self._circuit(name)
        w = cs.solve(a.assignment)
        t1 = time.perf_counter()
        proof = prove(self.keys[name], w)
        if self.on_timing is not None:
            self.on_timing("q_witness", t1 - t0)
            self.on_timing("q_prove", time.perf_counter() - t1)
        return proof


# ---------------------------------------------------------------------------- the background process

_WORKER: Groth16Prover | None = None


def _worker_init(key_dir: str, names: list[str], suites: tuple[str, ...], nice: int) -> None:
    """Process initializer: lowest CPU priority, then the keys loaded once (checked as in the parent)."""
    global _WORKER
    try:
        os.nice(nice)
    except OSError:
        pass  # already at least this nice, or not allowed: still correct, only less polite
    from zkmb.circuits.keys import load_keys

    _WORKER = Groth16Prover(load_keys(key_dir, names, "prover", against="manifest"), suites)


def _worker_warm() -> None:
    """Compile (or load) the CO circuit so the first background proof does not pay for it."""
    _WORKER._circuit(f"co_{_WORKER.suites[0]}")


def _worker_co(session):
    return _WORKER.co(session)


def _worker_pad(keys: ClientKeys, n: int, j: int):
    return _WORKER.pad(keys, n, j)


class BackgroundProver:
    """CO (and PAD) proofs in one separate worker process at ``nice`` (default 19, the lowest priority).

    ``co``/``pad`` return :class:`concurrent.futures.Future` s of the same results as
    :class:`Groth16Prover`'s methods; jobs run one at a time in submission order.  The process starts
    (and warms up its circuits) at construction; :meth:`close` stops it.
    """

    def __init__(self, key_dir, names: Sequence[str], suites: Sequence[str], nice: int = 19):
        ctx = multiprocessing.get_context("spawn")  # never fork: the parent's OpenMP pool does not survive it
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(str(key_dir), list(names), tuple(suites), nice),
        )
        self.warm: Future = self._pool.submit(_worker_warm)

    def co(self, session) -> Future:
        return self._pool.submit(_worker_co, session)

    def pad(self, keys: ClientKeys, n: int, j: int) -> Future:
        return self._pool.submit(_worker_pad, keys, n, j)

    def close(self) -> None:
        """Drop queued jobs and stop the worker process (a proof in progress is abandoned)."""
        procs = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
