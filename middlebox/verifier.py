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

__all__ = [
    "DEFAULT_GRACE_S",
    "REGISTRY_NAMES",
    "SUITES",
    "PolicyRoots",
    "Verifier",
    "circuit_names",
    "co_name",
    "enforceable_suites",
    "pad_name",
    "pads_name",
    "protocol_name",
    "q_name",
    "registry_name",
]

DEFAULT_GRACE_S = 600.0
"""SPEC §7: proofs against the previous root are accepted for [10 min] after a rotation."""


def co_name(suite_name: str) -> str:
    """The circuit name of CO for a suite (``co_chacha20``)."""
    return f"co_{suite_name}"


def pad_name(suite_name: str) -> str:
    """The circuit name of PAD for a suite (``pad_chacha20``)."""
    return f"pad_{suite_name}"


def pads_name(suite_name: str, blocks: int) -> str:
    """The circuit name of a PAD proof covering ``blocks`` blocks (``pads3_chacha20``)."""
    return f"pads{blocks}_{suite_name}"


def q_name(size: int) -> str:
    """The circuit name of Q for a size class (``q_64``)."""
    return f"q_{size}"


REGISTRY_NAMES: dict[str, str] = {
    "co_chacha20": "co_chacha20",
    "co_aes128gcm": "co_aes128gcm",
    "pad_chacha20": "pad_block",
    "pad_aes128gcm": "pad_block_aes128gcm",
    "pads3_chacha20": "pad_blocks_3",
    **{q_name(b): q_name(b) for b in (64, 128, 192, 320, 448)},
}
"""The one mapping from the middlebox's circuit names (``co_<suite>``, ``pad_<suite>``, ``q_<B>``; also
the names of the key files) to the names under which :mod:`zkmb.gadgets.registry` builds the circuits."""

_PROTOCOL_NAMES = {v: k for k, v in REGISTRY_NAMES.items()}


def registry_name(circuit: str) -> str:
    """The :mod:`zkmb.gadgets.registry` name of a middlebox circuit name (InvalidInput if unknown)."""
    try:
        return REGISTRY_NAMES[circuit]
    except KeyError:
        raise InvalidInput(f"unknown circuit {circuit!r}; known: {', '.join(REGISTRY_NAMES)}") from None


def protocol_name(name: str) -> str:
    """The middlebox circuit name for either form (``pad_block`` -> ``pad_chacha20``; ``q_64`` stays)."""
    if name in REGISTRY_NAMES:
        return name
    try:
        return _PROTOCOL_NAMES[name]
    except KeyError:
        raise InvalidInput(f"unknown circuit {name!r}") from None


def circuit_names() -> list[str]:
    """Every middlebox circuit name."""
    return list(REGISTRY_NAMES)


SUITES = ("chacha20", "aes128gcm")
"""The TLS 1.3 suites a middlebox can enforce, each with its own CO and PAD keys (SPEC §3, §4)."""


def enforceable_suites(directory: str | os.PathLike) -> tuple[list[str], str | None]:
    """Which suites the verifying keys in ``directory`` can enforce (``co_<suite>``, ``pad_<suite>`` and
    at least one ``q_<B>``: a flow needs all three kinds of proof), and, when that is no suite at all,
    one line saying what is missing (None otherwise).  Only file names are looked at; the keys
    themselves are checked when loaded."""
    d = Path(directory)
    if not d.is_dir():
        return [], f"{d}: no such key directory (make the keys with `zkmb setup --keys {d}`)"

    def file(name: str) -> str:
        return f"{REGISTRY_NAMES[name]}.vk"

    have = {n for n in REGISTRY_NAMES if (d / file(n)).is_file()}
    qs = [n for n in REGISTRY_NAMES if n.startswith("q_")]
    has_q = any(q in have for q in qs)
    suites = [s for s in SUITES if {co_name(s), pad_name(s)} <= have and has_q]
    if suites:
        return suites, None
    need = []
    if not any({co_name(s), pad_name(s)} <= have for s in SUITES):
        gaps = [[file(n) for n in (co_name(s), pad_name(s)) if n not in have] for s in SUITES]
        need.append(" or ".join(f"{' and '.join(g)} ({s})" for g, s in zip(gaps, SUITES, strict=True)))
    if not has_q:
        need.append(f"a Q key ({' or '.join(file(q) for q in qs[:2])} ...)")
    found = ", ".join(sorted(file(n) for n in have)) or "no verifying key"
    return [], (
        f"{d}: cannot enforce any suite: missing {'; and '.join(need)}; found {found} "
        f"(make them with `zkmb setup --keys {d}`)"
    )


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
        batch_check: Callable[[VerifyingKey, Sequence[tuple[Sequence[int], Proof]]], bool] | None = None,
    ):
        self.keys = dict(keys)
        self.roots = roots
        self._real = check is None
        if check is None:
            from zkmb.groth16.verifier import batch_verify
            from zkmb.groth16.verifier import verify as check

            batch_check = batch_check or batch_verify
        self._check = check
        self._batch_check = batch_check

    def warm(self) -> None:
        """Load (or compile, on a cold kernel cache: minutes) the verification kernels and build each
        key's IC table now, with a proof that fails: compiled on the first real proof instead, they
        would hold the GIL past that client's CO deadline (a fresh install with ``--key-check
        manifest``, or an in-process demo).  A no-op for an injected check (tests)."""
        if not self._real:
            return
        from zkmb.algebra import fast

        fake = Proof(fast.g1_generator()[0], fast.g2_generator()[0], fast.g1_generator()[0])
        for vk in self.keys.values():
            public = [0] * vk.n_public
            self._check(vk, public, fake)
        if self._batch_check is not None and self.keys:
            vk = next(iter(self.keys.values()))
            self._batch_check(vk, [([0] * vk.n_public, fake)] * 2)

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

    def verify_any(self, circuit: str, publics: Sequence[Sequence[int]], proof: Proof) -> bool:
        """True iff ``proof`` verifies for ``circuit`` on at least one of ``publics`` (a Q proof against
        the current or, in the grace window, the previous policy root)."""
        return any(self.verify(circuit, public, proof) for public in publics)

    def verify_many(self, circuit: str, items: Sequence[tuple[Sequence[int], Proof]]) -> list[bool]:
        """One verdict per ``(public, proof)``: one batch check first; if it fails (or raises), each
        item alone, so a bad proof never takes the good ones of the same batch down with it."""
        vk = self.keys.get(circuit)
        if vk is None:
            return [False] * len(items)
        if len(items) > 1 and self._batch_check is not None:
            try:
                if self._batch_check(vk, [(list(pub), proof) for pub, proof in items]):
                    return [True] * len(items)
            except InvalidInput:
                pass
        return [self.verify(circuit, pub, proof) for pub, proof in items]

    @classmethod
    def from_key_dir(
        cls, directory: str | os.PathLike, roots: PolicyRoots, *, against: str = "circuit"
    ) -> Verifier:
        """The verifying keys of every circuit with a ``.vk`` in a ``zkmb setup`` key directory, each
        checked by :func:`zkmb.circuits.keys.load_keys` (digest against the compiled circuit, or the
        manifest with ``against="manifest"``), keyed by middlebox name."""
        from zkmb.circuits.keys import load_keys

        present = [
            REGISTRY_NAMES[c]
            for c in REGISTRY_NAMES
            if (Path(directory) / f"{REGISTRY_NAMES[c]}.vk").is_file()
        ]
        if not present:
            raise InvalidInput(f"no verifying keys (*.vk) in {directory}")
        from zkmb.circuits.keys import release_circuits

        loaded = load_keys(directory, present, "verifier", against=against)
        release_circuits()  # compiled only to check the digests: ~1.4 GB the middlebox never needs again
        verifier = cls({protocol_name(name): vk for name, vk in loaded.items()}, roots)
        verifier.warm()
        return verifier

    @classmethod
    def from_dir(cls, directory: str | os.PathLike, roots: PolicyRoots) -> Verifier:
        """Load every ``<circuit>.vk`` in ``directory`` (each file checked on load); files may be named
        by the middlebox name (``pad_chacha20.vk``) or the registry name (``pad_block.vk``), and files
        of circuits the middlebox does not know are ignored."""
        keys = {}
        for path in sorted(Path(directory).glob("*.vk")):
            if path.stem in REGISTRY_NAMES or path.stem in _PROTOCOL_NAMES:
                keys[protocol_name(path.stem)] = VerifyingKey.load(path)
        if not keys:
            raise InvalidInput(f"no verifying keys (*.vk) in {directory}")
        return cls(keys, roots)
