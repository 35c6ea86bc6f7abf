"""Normalisation of a rule set (SPEC §6): merge, drop covered keys, sort.

After :func:`normalise` the keys are strictly increasing (bytes order, which is the order of
254-byte zero-padded keys because 0x00 never occurs in a key), and no key has a *different*
subtree key as a prefix.  So the only rule that can block a key ``k`` with ``K_i < k < K_{i+1}`` is
rule ``i`` (a subtree rule whose key is a prefix of ``k``), which is what the leaf bound ``A_i``
excludes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import InvalidInput
from .rules import KEY_LEN, Kind, Rule, key_to_name

__all__ = ["NotNormalised", "Normalised", "check_normalised", "normalise"]

# a canonical key: labels of 1-63 bytes in 0x21-0x7E except '.' and 'A'-'Z', each followed by '.'
_CANONICAL_KEY = re.compile(rb"(?:[\x21-\x2d\x2f-\x40\x5b-\x7e]{1,63}\.)+")


class NotNormalised(InvalidInput):
    """A rule set that is not in the SPEC §6 normal form; ``index`` is the offending rule's position."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def check_normalised(keys: Sequence[bytes], kinds: Sequence[int]) -> None:
    """Refuse (:class:`NotNormalised`) rules a tree must never be built over (SPEC §6): a kind other
    than exact/subtree, a key that is not canonical (empty, a sentinel, an empty or over-long label,
    a byte outside 0x21-0x7E, an upper-case letter, no final ``.``, over 254 bytes), and a key that has
    a different subtree key as a prefix (the exact rule ``www.evil.com`` after the subtree rule
    ``evil.com`` would open a gap covering every name under ``evil.com`` after ``www``).

    Order and duplicates are checked where the keys are hashed (:func:`~.tree.key_hashes`).  Keys
    with a subtree key as a prefix sort directly after it (a subtree is an interval), so comparing
    each subtree key with its successor finds every such key."""
    if len(keys) != len(kinds):
        raise InvalidInput(f"{len(keys)} keys but {len(kinds)} kinds")
    match = _CANONICAL_KEY.fullmatch
    for i, key in enumerate(keys):
        if not isinstance(key, bytes | bytearray) or len(key) > KEY_LEN or match(key) is None:
            raise NotNormalised(f"rule {i}: {bytes(key)[:80]!r} is not a canonical policy key", i)
    for i, kind in enumerate(kinds):
        if int(kind) not in (Kind.EXACT, Kind.SUBTREE):
            raise NotNormalised(f"rule {i}: unknown kind {kind!r}", i)
        if int(kind) == Kind.SUBTREE and i + 1 < len(keys) and keys[i + 1].startswith(keys[i]):
            raise NotNormalised(
                f"rule {i + 1} ({key_to_name(keys[i + 1])}) lies under the subtree rule {i} "
                f"({key_to_name(keys[i])}): the rules are not normalised (SPEC §6)",
                i + 1,
            )


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
