"""Normalisation of a rule set (SPEC §6): merge, drop covered keys, sort.

After :func:`normalise` the keys are strictly increasing (bytes order, which is the order of
254-byte zero-padded keys because 0x00 never occurs in a key), and no key has a *different*
subtree key as a prefix.  So the only rule that can block a key ``k`` with ``K_i < k < K_{i+1}`` is
rule ``i`` (a subtree rule whose key is a prefix of ``k``), which is what the leaf bound ``A_i``
excludes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .rules import KEY_LEN, Kind, Rule

__all__ = ["Normalised", "normalise"]


@dataclass
class Normalised:
    """Sorted keys (no sentinels), their kinds, the rule each came from, and what was merged away."""

    keys: list[bytes]
    kinds: list[Kind]
    rules: list[Rule | None]
    merged: int = 0  # rules whose key equalled another rule's key
    covered: list[Rule] = field(default_factory=list)  # rules dropped under a subtree rule

    def __len__(self) -> int:
        return len(self.keys)


def normalise(rules: Iterable[Rule]) -> Normalised:
    """Merge equal keys (subtree wins, first rule of the winning kind kept), drop keys under a
    different subtree key, sort by bytes."""
    best: dict[bytes, Rule] = {}
    merged = 0
    for r in rules:
        if not r.key or len(r.key) > KEY_LEN:
            raise ValueError(f"rule key of {len(r.key)} bytes")  # rules come from rules.py: a bug
        old = best.get(r.key)
        if old is None:
            best[r.key] = r
            continue
        merged += 1
        if r.kind == Kind.SUBTREE and old.kind == Kind.EXACT:
            best[r.key] = r
    keys: list[bytes] = []
    kinds: list[Kind] = []
    kept: list[Rule | None] = []
    covered: list[Rule] = []
    active: bytes | None = None  # the last kept subtree key; its interval is contiguous in sorted order
    for k in sorted(best):
        r = best[k]
        if active is not None and k.startswith(active):
            covered.append(r)
            continue
        keys.append(k)
        kinds.append(r.kind)
        kept.append(r)
        active = k if r.kind == Kind.SUBTREE else None  # k is outside any earlier interval
    return Normalised(keys, kinds, kept, merged, covered)
