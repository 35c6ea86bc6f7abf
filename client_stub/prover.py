"""What the stub proves, behind one small interface (real Groth16 or a test stand-in).

:class:`Groth16Prover` wraps the statement witness builders (:mod:`zkmb.circuits.witness`,
:mod:`zkmb.circuits.query_witness`) and :func:`zkmb.groth16.prover.prove` with proving keys loaded by
:func:`zkmb.circuits.keys.load_keys`.  Its methods are blocking (CPU-bound): the upstream runs them in
worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from zkmb.circuits.witness import ClientKeys, PadAssignment, co_assignment, pad_assignment

from zkmb.errors import InvalidInput

__all__ = ["Groth16Prover", "StatementProver", "circuit_names"]


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

    @classmethod
    def from_dir(cls, key_dir, suite: str = "chacha20", sizes: Sequence[int] = (64, 128)) -> Groth16Prover:
        from zkmb.circuits.keys import load_keys

        return cls(load_keys(key_dir, circuit_names(suite, sizes), "prover", against="manifest"), (suite,))

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

        a = query_assignment(pads, ciphertext, policy, blinders=blinders, size=size)
        return self._prove(f"q_{size}", a.assignment)
