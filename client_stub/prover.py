"""What the stub proves, behind one small interface (real Groth16 or a test stand-in).

:class:`Groth16Prover` builds the statement witnesses (:mod:`zkmb.circuits.witness`,
:mod:`zkmb.circuits.query_witness`) and proves with proving keys loaded by
:func:`zkmb.circuits.keys.load_keys`.  Its ``*_job`` methods return *jobs* for the
:class:`~zkmb.client_stub.scheduler.ProvingPool`: generators whose steps are the witness and the
steps of a :class:`~zkmb.groth16.prover.ProofPlan`, so every proof runs on every core and yields to
more urgent proofs between steps.  ``co``/``pad``/``q`` run the same jobs inline (blocking).

A prover without ``*_job`` methods (the tests' stand-ins) is used through its blocking methods, one
step per proof (:func:`~zkmb.client_stub.scheduler.blocking_job`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from zkmb.circuits.witness import ClientKeys, CoAssignment, PadAssignment, co_assignment, pad_assignment

from zkmb.errors import InvalidInput

from .scheduler import JobGen, blocking_job

__all__ = [
    "PAD_BATCH",
    "Groth16Prover",
    "StatementProver",
    "circuit_names",
    "optional_names",
    "co_job",
    "pad_job",
    "pads_job",
    "q_job",
]

BIG_MSM_CHUNK = 1 << 16
"""Points per MSM step of a large proof (the channel opening): ~0.1-0.2 s on one core, the longest a
query proof waits for a worker while a channel opening is proven."""
PAD_MSM_CHUNK = 1 << 13
"""MSM chunk of the (look-ahead) PAD proofs: a step of at most ~40 ms in G1 and ~90 ms in G2 on one
core, so a query's proof waits at most that long for the worker look-ahead work holds."""


Q_H_SPLIT = 2
"""Steps of a query proof's H MSM: it runs after everything else, alone, so two steps let two workers
share it (Q-64 alone through the pool: 114 -> 95 ms, the same CPU; a 10-query burst unchanged)."""

TABLE_MAX_DOMAIN = 1 << 14
"""Query keys up to this domain get MSM tables (Q-64: 2^13; Q-128, Q-192: 2^14).  One proof through the
pool, CPU with tables over without (this 2-core Xeon): Q-64 0.87, Q-128 0.90, Q-192 0.93, Q-320 0.96
(for 147 MB of tables; Q-448 168 MB): the larger the tables, the less they fit the caches."""

PAD_BATCH = 3
"""Look-ahead PAD blocks proven together (ChaCha20: three blocks fit a 2^16 domain, 0.63x the cost
per block of single-block proofs; docs/circuits.md)."""
BATCH_KEYS = {"chacha20": "pad_blocks_3"}


def circuit_names(suite: str, sizes: Sequence[int]) -> list[str]:
    """Key names (:data:`zkmb.circuits.keys.CIRCUITS`) the stub needs for ``suite`` and Q sizes."""
    pad = "pad_block" if suite == "chacha20" else f"pad_block_{suite}"
    return [f"co_{suite}", pad, *(f"q_{b}" for b in sizes)]


def optional_names(suite: str) -> list[str]:
    """Key names the stub uses when the key directory has them: the batch PAD key (look-ahead PADs
    ``PAD_BATCH`` per proof, fewer core-seconds per block)."""
    return [BATCH_KEYS[suite]] if suite in BATCH_KEYS else []


class StatementProver(Protocol):
    """Blocking provers: ``co_proof`` proves a :class:`~zkmb.circuits.witness.CoAssignment` (the
    upstream makes it, to know the client keys at once), ``pad`` returns ``(assignment, proof)``,
    ``q`` the proof; proofs have ``to_bytes()``.  ``*_job`` methods, where present, are used instead."""

    suites: tuple[str, ...]
    sizes: tuple[int, ...]

    def co_proof(self, a: CoAssignment) -> object: ...

    def pad(self, keys: ClientKeys, n: int, j: int) -> tuple[PadAssignment, object]: ...

    def q(self, pads: list[bytes], blinders: list[int], ciphertext: bytes, policy, size: int) -> object: ...


def co_job(prover, a: CoAssignment) -> JobGen:
    """The CO job of any prover for the assignment ``a`` (its own steps when it has them)."""
    make = getattr(prover, "co_job", None)
    return make(a) if make is not None else blocking_job(prover.co_proof, a)


def pad_job(prover, keys: ClientKeys, n: int, j: int, assignment: PadAssignment | None = None) -> JobGen:
    """The PAD job of block ``(n, j)``; ``assignment`` (made by the caller, only where
    :func:`takes_pad_assignment`) fixes the pad and blinder the proof commits to."""
    make = getattr(prover, "pad_job", None)
    if make is not None:
        return make(keys, n, j) if assignment is None else make(keys, n, j, assignment=assignment)
    if assignment is not None:
        raise InvalidInput("this prover makes its own PAD assignments")
    return blocking_job(prover.pad, keys, n, j)


def takes_pad_assignment(prover) -> bool:
    """Whether :func:`pad_job` can prove an assignment the caller made (so the pad's value and blinder
    are known before the proof, and a query's Q proof can run beside its PAD proof)."""
    return getattr(prover, "pad_job", None) is not None


def pads_job(prover, keys: ClientKeys, blocks: Sequence[tuple[int, int]], assignment=None) -> JobGen | None:
    """The job proving ``blocks`` in one PAD proof, or None when the prover has no key for that
    many blocks of this suite (then each block gets its own proof); ``assignment`` (a
    :class:`~zkmb.circuits.witness.PadsAssignment` the caller made) fixes the pads and blinders."""
    make = getattr(prover, "pads_job", None)
    if make is None:
        return None
    return make(keys, blocks) if assignment is None else make(keys, blocks, assignment=assignment)


def q_job(prover, pads, blinders, ciphertext: bytes, policy, size: int) -> JobGen:
    make = getattr(prover, "q_job", None)
    args = (pads, blinders, ciphertext, policy, size)
    return make(*args) if make is not None else blocking_job(prover.q, *args)


def _import_job_modules() -> None:
    """Import here (the caller's thread) what the jobs' steps import: a first import compiles the
    module's source, and CPython 3.11 before 3.11.8 can fail two threads compiling at once with
    "SystemError: AST constructor recursion depth mismatch" (seen once in a stub test)."""
    import zkmb.circuits.keys  # noqa: F401
    import zkmb.circuits.query_witness  # noqa: F401
    import zkmb.circuits.witness  # noqa: F401

    import zkmb.groth16.prover  # noqa: F401
    import zkmb.r1cs.system  # noqa: F401


def _run_inline(gen: JobGen) -> Any:
    """Run a job's steps on this thread (with the kernels' own threads)."""
    value = None
    try:
        while True:
            stage = gen.send(value)
            for step in stage:
                step()
            value = None
    except StopIteration as stop:
        return stop.value


def warm_kernels(pk, *, tables: bool = True) -> None:
    """Load (or compile, on a cold cache) the numba kernels of a proof: a tiny circuit's witness, one
    proof with ``pk`` of a random (unsatisfying, discarded) witness on one thread as the pool runs
    them, and the table kernels for G1 and G2 (~0.3 s with a warm cache)."""
    import secrets

    from zkmb.algebra import fast
    from zkmb.algebra.kernels import numba_threads
    from zkmb.algebra.params import R
    from zkmb.groth16.prover import ProofPlan
    from zkmb.r1cs import Circuit, Public, Secret, compile

    class _Square(Circuit):
        x = Public()
        y = Secret()

        def define(self, api):
            api.assert_equal(api.mul(self.y, self.y), self.x)

    compile(_Square()).solve({"x": 9, "y": 3})
    w = fast.fr_from_ints([1] + [secrets.randbelow(R) if i % 3 else i % 2 for i in range(1, pk.n_vars)])
    with numba_threads(1):
        ProofPlan(pk, w, h_split=Q_H_SPLIT).run()
        if tables:
            for points in (fast.g1_generator(), fast.g2_generator()):
                wt = fast.window_table(np.repeat(points, 2, axis=0), 4)
                fast.msm_table_plain(wt, fast.plain_scalars(fast.fr_from_ints([2, 1])))


class Groth16Prover:
    """Real proofs from proving keys ``{name: ProvingKey}`` (names as in :func:`circuit_names`)."""

    def __init__(self, keys: dict, suites: Sequence[str] = ("chacha20",), *, tables: bool = True):
        self.keys = dict(keys)
        self.use_tables = tables
        """Build MSM window tables for the query keys (:meth:`tables_job`)."""
        self.suites = tuple(s for s in suites if f"co_{s}" in self.keys)
        if not self.suites:
            raise InvalidInput("no CO proving key for any suite")
        self.sizes = tuple(sorted(int(n[2:]) for n in self.keys if n.startswith("q_")))
        if not self.sizes:
            raise InvalidInput("no Q proving key")
        self._cs: dict[str, object] = {}
        self._c_rows: dict[str, object] = {}
        self._lock = threading.Lock()
        _import_job_modules()
        self.key_dir: Path | None = None
        self.on_timing: Callable[[str, float], None] | None = None
        """Called with ``("q_queue", s)``, ``("q_witness", s)`` and ``("q_prove", s)`` for each Q proof
        (the latency split: waiting for a worker, witness, Groth16 steps)."""

    @classmethod
    def from_dir(
        cls, key_dir, suite: str = "chacha20", sizes: Sequence[int] = (64, 128), *, tables: bool = True
    ) -> Groth16Prover:
        from zkmb.circuits.keys import load_keys, read_manifest

        names = circuit_names(suite, sizes)
        names += [n for n in optional_names(suite) if n in read_manifest(key_dir)]
        prover = cls(load_keys(key_dir, names, "prover", against="manifest"), (suite,), tables=tables)
        prover.key_dir = Path(key_dir)
        return prover

    def warm(self) -> None:
        """Compile every circuit now (the channel opening's takes ~10 s): before a handshake starts the
        middlebox's CO deadline, never after.  Also every numba kernel a proof runs (witness solver,
        QAP, NTTs, MSMs, tables): on a cold kernel cache (a fresh checkout, or after a kernel changed)
        they would otherwise compile inside the first proofs, minutes holding the GIL, and the first
        connection's CO and queries would miss their deadlines."""
        for name in self.keys:
            self._circuit(name)
        warm_kernels(self.keys[f"q_{self.sizes[0]}"], tables=self.use_tables)

    def _circuit(self, name: str):
        """What solves ``name``'s witness: the compiled circuit, or for a channel opening a
        :class:`~zkmb.r1cs.system.WitnessSolver` over its proving key's rows (the compiled circuit's
        own matrices, 190 MB, are released; the key's pages come and go with each proof)."""
        with self._lock:
            if name not in self._cs:
                from zkmb.circuits.keys import compile_circuit, release_circuits

                from zkmb.r1cs.system import WitnessSolver

                cs = compile_circuit(name)
                if name.startswith("co_"):
                    pk = self.keys[name]
                    cs = WitnessSolver(cs, pk.a_rows, pk.b_rows)
                    release_circuits()  # drop the statement modules' cached copy (the Q/PAD ones stay here)
                    pk.release_pages()
                self._cs[name] = cs
            return self._cs[name]

    def _check_rows(self, name: str):
        """(C rows, scope namer) of ``name``'s circuit for the proof's own R1CS check (its QAP step
        compares C w with A w o B w: 0.1 ms for a query, where the solver's separate check of every
        row took 5 ms); (None, None) for a channel opening, whose C is released (its proof is checked
        by the middlebox's verification alone, as before)."""
        from zkmb.r1cs.system import WitnessSolver

        cs = self._circuit(name)
        if isinstance(cs, WitnessSolver):
            return None, None
        with self._lock:
            rows = self._c_rows.get(name)
            if rows is None:
                from zkmb.groth16.r1cs_to_qap import c_rows

                rows = self._c_rows[name] = c_rows(cs)
        return rows, cs.scope_of

    def _prove_steps(
        self,
        name: str,
        box: dict,
        chunk: int | None = None,
        *,
        h_split: int | None = None,
        release_pages: bool = False,
    ):
        """The stages of a proof of the witness ``box["w"]`` with key ``name`` (MSMs in chunks of about
        ``chunk`` points: shorter steps, so a query's proof waits less for a worker; ``h_split``: chunks
        of the H MSM alone); returns the proof.  ``release_pages``: drop each key chunk's pages after use
        (a large key is never resident at once)."""
        from zkmb.groth16.prover import ProofPlan

        pk = self.keys[name]
        split = 1 if chunk is None else max(1, pk.h.shape[0] // chunk)
        release = pk.release_array if release_pages else None
        check, scope_of = self._check_rows(name)
        w = box.pop("w")
        plan = ProofPlan(
            pk,
            w,
            split=split,
            h_split=h_split,
            release=release,
            check=check,
            scope_of=scope_of,
            known_rows=getattr(w, "rows", None),  # the solver's product rows: not evaluated again
        )
        for stage in plan.stages:
            yield [st.run for st in stage]
        return plan.finish()

    def tables_job(self, names: Sequence[str] | None = None) -> JobGen | None:
        """Window tables for the query keys' MSMs (:meth:`ProvingKey.build_table`; only those of
        ``names`` if given), one window level per step (at most ~80 ms on one core; Q-64's ~2.8 core-s
        and 56 MB, Q-128's ~4.4 core-s and 90 MB): every later query proof costs about a quarter less CPU
        (Q-64 on one thread 130 -> 97 ms, docs/benchmarks.md).  None when they are built or turned off
        (``tables=False``)."""
        if not self.use_tables:
            return None
        from zkmb.groth16.keys import TABLE_PARTS

        todo = [
            (name, part)
            for name in sorted(self.keys, key=lambda n: (len(n), n))
            if name.startswith("q_") and self.keys[name].domain_size <= TABLE_MAX_DOMAIN
            if names is None or name in names
            for part in TABLE_PARTS
            if part not in self.keys[name].tables
        ]
        if not todo:
            return None

        def gen() -> JobGen:
            for name, part in todo:
                steps = self.keys[name].table_steps(part)
                last: list = [None]

                def level(steps=steps, last=last) -> None:
                    last[0] = next(steps)

                while last[0] is None:  # one window level per step: tens of ms, a query never waits long
                    yield [level]
            return len(todo)

        return gen()

    # ------------------------------------------------------------------ jobs

    def co_job(self, a: CoAssignment) -> JobGen:
        """The CO proof of the assignment ``a`` (made by :func:`~zkmb.circuits.witness.co_assignment`)."""
        name = f"co_{a.suite.name}"
        box: dict = {}

        def witness() -> None:
            box["w"] = self._circuit(name).solve(a.assignment)  # no kept rows: 50 MB more at its peak

        yield [witness]
        try:
            return (yield from self._prove_steps(name, box, BIG_MSM_CHUNK, release_pages=True))
        finally:
            self.keys[name].release_pages()  # ~450 MB of key pages until the next channel opening

    def pad_job(self, keys: ClientKeys, n: int, j: int, *, assignment: PadAssignment | None = None) -> JobGen:
        name = "pad_block" if keys.suite.name == "chacha20" else f"pad_block_{keys.suite.name}"
        box: dict = {}

        def witness() -> None:
            a = pad_assignment(keys, n, j) if assignment is None else assignment
            box["a"], box["w"] = a, self._circuit(name).solve(a.assignment, check=False, rows=True)

        yield [witness]
        proof = yield from self._prove_steps(name, box, PAD_MSM_CHUNK)
        return box["a"], proof

    def pads_job(self, keys: ClientKeys, blocks, *, assignment=None) -> JobGen | None:
        """Several PAD blocks of one connection in one proof (returns ``(PadsAssignment, proof)``), or
        None when there is no key for that many blocks of ``keys.suite``."""
        name = BATCH_KEYS.get(keys.suite.name)
        if name is None or name not in self.keys or len(blocks) != PAD_BATCH:
            return None
        if assignment is not None and tuple(assignment.blocks) != tuple(blocks):
            raise InvalidInput("the PAD batch assignment is for other blocks")
        return self._pads_job(name, keys, tuple(blocks), assignment)

    def _pads_job(self, name: str, keys: ClientKeys, blocks, assignment=None) -> JobGen:
        from zkmb.circuits.witness import pads_assignment

        box: dict = {}

        def witness() -> None:
            a = pads_assignment(keys, blocks) if assignment is None else assignment
            box["a"], box["w"] = a, self._circuit(name).solve(a.assignment, check=False, rows=True)

        yield [witness]
        proof = yield from self._prove_steps(name, box, PAD_MSM_CHUNK)
        return box["a"], proof

    def q_job(self, pads, blinders, ciphertext, policy, size) -> JobGen:
        from zkmb.circuits.query_witness import query_assignment

        name = f"q_{size}"
        box: dict = {}
        t_submit = time.perf_counter()

        def witness() -> None:
            t0 = time.perf_counter()
            a = query_assignment(pads, ciphertext, policy, blinders=blinders, size=size)
            box["w"] = self._circuit(name).solve(a.assignment, check=False, rows=True)  # QAP step checks
            box["t_w"] = time.perf_counter()
            if self.on_timing is not None:
                self.on_timing("q_queue", t0 - t_submit)
                self.on_timing("q_witness", box["t_w"] - t0)

        yield [witness]
        proof = yield from self._prove_steps(name, box, h_split=Q_H_SPLIT)
        if self.on_timing is not None:
            self.on_timing("q_prove", time.perf_counter() - box["t_w"])
        return proof

    # ------------------------------------------------------------------ blocking

    def co_proof(self, a: CoAssignment):
        return _run_inline(self.co_job(a))

    def co(self, session):
        """``(client keys, CO proof)`` of a captured session (blocking; benchmarks and tests)."""
        a = co_assignment(session)
        return a.keys, self.co_proof(a)

    def pad(self, keys: ClientKeys, n: int, j: int):
        return _run_inline(self.pad_job(keys, n, j))

    def q(self, pads, blinders, ciphertext, policy, size):
        return _run_inline(self.q_job(pads, blinders, ciphertext, policy, size))
