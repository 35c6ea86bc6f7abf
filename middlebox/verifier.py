"""What the flow core needs to check proofs: verifying keys per circuit and the policy roots (SPEC §7, §8).

The flow core never sees a key file or a pairing: it calls :meth:`Verifier.verify` with a circuit
name and a public vector it built itself.  Circuit names: ``co_<suite>``, ``pad_<suite>`` (suite
``chacha20`` / ``aes128gcm``) and ``q_<B>`` (size class ``B``).  Roots rotate with a grace window in
which proofs against the previous root are still accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.groth16.keys import VerifyingKey
from zkmb.groth16.proof import Proof

__all__ = ["DEFAULT_GRACE_S", "PolicyRoots", "Verifier", "co_name", "pad_name", "q_name"]

DEFAULT_GRACE_S = 600.0
"""SPEC §7: proofs against the previous root are accepted for [10 min] after a rotation."""


def co_name(suite_name: str) -> str:
    """The circuit name of CO for a suite (``co_chacha20``)."""
    return f"co_{suite_name}"


def pad_name(suite_name: str) -> str:
    """The circuit name of PAD for a suite (``pad_chacha20``)."""
    return f"pad_{suite_name}"


def q_name(size: int) -> str:
    """The circuit name of Q for a size class (``q_64``)."""
    return f"q_{size}"


class PolicyRoots:
    """The current policy root and, for ``grace`` seconds after a rotation, the previous one."""

    def __init__(self, root: int, *, grace: float = DEFAULT_GRACE_S):
        self.current = _root(root)
        self.previous: int | None = None
        self.rotated_at = float("-inf")
        self.grace = float(grace)

    def rotate(self, new_root: int, now: float) -> None:
        """Make ``new_root`` current; the old one stays acceptable until ``now + grace``."""
        new_root = _root(new_root)
        if new_root != self.current:
            self.previous, self.current, self.rotated_at = self.current, new_root, now

    def acceptable(self, now: float) -> list[int]:
        """The roots a Q proof may use at time ``now``, current first."""
        if self.previous is not None and now < self.rotated_at + self.grace:
            return [self.current, self.previous]
        return [self.current]


def _root(x: int) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < R:
        raise InvalidInput("a policy root is a field element in [0, r)")
    return x


class Verifier:
    """Verifying keys by circuit name plus the policy roots; ``verify`` never raises on a bad proof.

    ``check`` is the pairing check (default :func:`zkmb.groth16.verifier.verify`); tests may inject
    another callable with the same signature.
    """

    def __init__(
        self,
        keys: dict[str, VerifyingKey],
        roots: PolicyRoots,
        *,
        check: Callable[[VerifyingKey, Sequence[int], Proof], bool] | None = None,
    ):
        self.keys = dict(keys)
        self.roots = roots
        if check is None:
            from zkmb.groth16.verifier import verify as check
        self._check = check

    def has(self, circuit: str) -> bool:
        """Whether a verifying key for ``circuit`` is loaded."""
        return circuit in self.keys

    def verify(self, circuit: str, public: Sequence[int], proof: Proof) -> bool:
        """True iff ``proof`` verifies for ``circuit`` on ``public``; False for a missing key or bad input."""
        vk = self.keys.get(circuit)
        if vk is None:
            return False
        try:
            return bool(self._check(vk, list(public), proof))
        except InvalidInput:
            return False

    @classmethod
    def from_dir(cls, directory: str | os.PathLike, roots: PolicyRoots) -> Verifier:
        """Load every ``<circuit>.vk`` in ``directory`` (each file checked on load)."""
        keys = {}
        for path in sorted(Path(directory).glob("*.vk")):
            keys[path.stem] = VerifyingKey.load(path)
        if not keys:
            raise InvalidInput(f"no verifying keys (*.vk) in {directory}")
        return cls(keys, roots)
