"""Per-name lookups: the non-membership witness of an allowed name, or the rule that blocks it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..errors import ZkmbError
from ..gadgets.merkle import MerklePath, merkle_root_native
from .policyfile import Policy, Provenance
from .rules import KEY_LEN, MAX_KEY, MIN_KEY, Kind, key_to_name, labels_to_key, name_to_labels, subtree_bound
from .tree import leaf_hash_keys_native, pack_key

__all__ = ["Blocked", "NonMembership", "check_name", "padded_lt", "witness"]


def padded_lt(a: bytes, b: bytes) -> bool:
    """a < b as 254-byte zero-padded strings (the circuit's comparison)."""
    return a.ljust(KEY_LEN, b"\0") < b.ljust(KEY_LEN, b"\0")


@dataclass(frozen=True)
class NonMembership:
    """Everything the Q prover needs for the policy part: ``low < key < high`` and the leaf's path."""

    name: str
    key: bytes
    index: int  # leaf index
    low: bytes  # A_i
    high: bytes  # K_{i+1}
    path: MerklePath
    root: int

    @property
    def low_packed(self) -> list[int]:
        return pack_key(self.low)

    @property
    def high_packed(self) -> list[int]:
        return pack_key(self.high)

    @property
    def key_packed(self) -> list[int]:
        return pack_key(self.key)

    def verify(self) -> bool:
        """Re-check natively (pure Python Poseidon): the order and the path to the root."""
        if not (padded_lt(self.low, self.key) and padded_lt(self.key, self.high)):
            return False
        leaf = leaf_hash_keys_native(self.low, self.high)
        p = self.path
        return merkle_root_native(leaf, self.index, p.siblings, p.arity) == self.root


@dataclass(frozen=True)
class Blocked:
    """The rule that blocks a name."""

    name: str
    key: bytes
    rule_name: str
    kind: Kind
    provenance: Provenance | None

    def describe(self) -> str:
        s = f"{self.kind} rule {self.rule_name}"
        if self.provenance is not None:
            p = self.provenance
            s += f" ({p.source}:{p.line}: {p.text})"
        return s


def witness(policy: Policy, name: str, with_path: bool = True) -> NonMembership | Blocked:
    """Classify ``name`` (converted as a rule name would be; InvalidName if it is not provable).

    Bisects the sorted keys: with ``K_i <= k < K_{i+1}`` the name is blocked iff ``k == K_i`` or rule
    ``i`` is a subtree rule whose key is a prefix of ``k``; otherwise leaf ``i`` proves it.
    """
    labels = name_to_labels(name)
    key = labels_to_key(labels)
    keys = policy.keys
    j = bisect.bisect_right(keys, key)  # keys[j-1] <= key < keys[j] (rule indices, no sentinels)
    if j > 0:
        k = keys[j - 1]
        kind = policy.kind(j - 1)
        if k == key or (kind == Kind.SUBTREE and key.startswith(k)):
            return Blocked(name, key, key_to_name(k), kind, policy.provenance_of(j - 1))
        low = subtree_bound(k) if kind == Kind.SUBTREE else k
    else:
        low = MIN_KEY
    high = keys[j] if j < len(keys) else MAX_KEY
    if not (padded_lt(low, key) and padded_lt(key, high)):
        raise ZkmbError(f"policy invariant broken: no gap holds {name!r}")  # normalisation bug
    path = policy.tree.path(j) if with_path else MerklePath(j, (), policy.tree.arity)
    return NonMembership(name, key, j, low, high, path, policy.root)


def check_name(policy: Policy, name: str) -> Blocked | None:
    """The blocking rule of ``name``, or None if it is allowed (no Merkle path computed)."""
    w = witness(policy, name, with_path=False)
    return w if isinstance(w, Blocked) else None
