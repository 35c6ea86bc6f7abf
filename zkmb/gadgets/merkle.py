"""Binary Poseidon Merkle trees of fixed depth with domain-separated hashing (SPEC §6-7).

``node(l, r) = Poseidon(TAG_NODE, l, r)``; leaves are whatever the caller commits to (the policy
uses ``leaf_hash(a, b) = Poseidon(TAG_LEAF, a, b)``).  A path is the leaf index as ``depth`` bits,
least significant first (bit i = 1: the node at height i is a right child), and the ``depth``
siblings from the leaf level up.

* :func:`merkle_root` / :func:`merkle_verify`: the gadget (per level: one select for the order,
  one boolean check unless the bit is already known boolean, and a 3-input Poseidon with a constant
  tag: 258 + 2 = 260 constraints; depth 22: 5720, +1 for the root equality).
* :func:`merkle_root_native`, :class:`MerkleTree`: the native twin.  The tree stores only the
  populated part of each level; everything right of it hashes up from ``pad_leaf`` through
  precomputed per-level defaults, so a sparse 2^22-leaf tree costs about as many hashes as it has
  real leaves.  Hashing uses the numba kernel (:func:`~.poseidon.poseidon_many_mont`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..algebra.params import R, from_limbs
from ..errors import InvalidInput
from ..r1cs import LC, Circuit, ConstraintSystem, Public, Secret, compile
from ..r1cs.lc import as_terms
from .poseidon import poseidon, poseidon_many_mont, poseidon_native
from .registry import register
from .tags import TAG_LEAF, TAG_NODE

__all__ = [
    "POLICY_DEPTH",
    "MerklePath",
    "MerkleTree",
    "leaf_hash",
    "leaf_hash_native",
    "merkle_root",
    "merkle_root_native",
    "merkle_verify",
    "node_hash",
    "node_hash_native",
]

POLICY_DEPTH = 22  # SPEC §6: fixed depth of the policy tree
MAX_DEPTH = 64
_MONT_INV = pow(1 << 256, -1, R)


def _check_depth(depth: int) -> None:
    if not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"Merkle depth must be an int in [1, {MAX_DEPTH}], got {depth!r}")


# ---------------------------------------------------------------------------------------------- hashes


def node_hash(api, left, right) -> LC:
    """Poseidon(TAG_NODE, left, right): 258 constraints."""
    return poseidon(api, [TAG_NODE, left, right])


def node_hash_native(left: int, right: int) -> int:
    return poseidon_native([TAG_NODE, left, right])


def leaf_hash(api, values: Sequence) -> LC:
    """Poseidon(TAG_LEAF, *values) for 1..15 values."""
    return poseidon(api, [TAG_LEAF, *values])


def leaf_hash_native(values: Sequence[int]) -> int:
    return poseidon_native([TAG_LEAF, *values])


# ---------------------------------------------------------------------------------------------- gadget


def merkle_root(api, leaf, index_bits: Sequence, siblings: Sequence) -> LC:
    """The root reached from ``leaf`` along the path (index bits LSB first, siblings bottom-up).

    Each bit is constrained boolean (by the select), so the path direction is exactly the bit.
    """
    if len(index_bits) != len(siblings):
        raise InvalidInput("merkle_root: one sibling per index bit")
    _check_depth(len(siblings))
    cur = LC(as_terms(leaf))
    with api.scope("merkle"):
        for b, sib in zip(index_bits, siblings, strict=True):
            left = api.select(b, sib, cur)  # b = 1: cur is the right child
            right = api.sub(api.add(cur, sib), left)
            cur = node_hash(api, left, right)
    return cur


def merkle_verify(api, root, leaf, index_bits: Sequence, siblings: Sequence) -> None:
    """Constrain that ``leaf`` sits at the index given by ``index_bits`` in the tree with ``root``."""
    api.assert_equal(merkle_root(api, leaf, index_bits, siblings), root)


# ---------------------------------------------------------------------------------------------- native


@dataclass(frozen=True)
class MerklePath:
    """A leaf index and its siblings from the leaf level up."""

    index: int
    siblings: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.siblings)

    @property
    def bits(self) -> list[int]:
        """The index as ``depth`` bits, least significant first (the gadget's ``index_bits``)."""
        return [(self.index >> i) & 1 for i in range(self.depth)]


def _check_elem(x, what: str) -> int:
    try:
        v = x.__index__()
    except AttributeError:
        raise InvalidInput(f"{what}: {type(x).__name__} is not an integer") from None
    if not 0 <= v < R:
        raise InvalidInput(f"{what}: value not in [0, r)")
    return v


def merkle_root_native(leaf: int, index: int, siblings: Sequence[int]) -> int:
    """Twin of :func:`merkle_root` (pure Python): the root from a leaf, its index and siblings."""
    depth = len(siblings)
    _check_depth(depth)
    if not isinstance(index, int) or not 0 <= index < (1 << depth):
        raise InvalidInput("merkle_root_native: index out of range for the depth")
    cur = _check_elem(leaf, "leaf")
    for i, sib in enumerate(siblings):
        s = _check_elem(sib, "sibling")
        cur = node_hash_native(s, cur) if (index >> i) & 1 else node_hash_native(cur, s)
    return cur


def _hash_nodes(left: np.ndarray, right: np.ndarray, tag: np.ndarray) -> np.ndarray:
    n = left.shape[0]
    rows = np.empty((n, 3, 4), dtype=np.uint64)
    rows[:, 0] = tag
    rows[:, 1] = left
    rows[:, 2] = right
    return poseidon_many_mont(rows, parallel=n >= 256)


class MerkleTree:
    """A depth-``depth`` tree over ``leaves`` (positions 0..n-1), every other leaf ``pad_leaf``.

    ``leaves`` are ints in [0, r) or an ``(n, 4)`` uint64 Montgomery array.  Building costs about n
    node hashes (numba, parallel) plus ``depth`` for the padding defaults.
    """

    def __init__(self, leaves, depth: int = POLICY_DEPTH, pad_leaf: int = 0):
        from ..algebra.fast.fields import fr_from_ints

        _check_depth(depth)
        if isinstance(leaves, np.ndarray):
            if leaves.ndim != 2 or leaves.shape[1] != 4 or leaves.dtype != np.uint64:
                raise InvalidInput("MerkleTree: a leaf array must be (n, 4) uint64 Montgomery")
            level = np.ascontiguousarray(leaves)
        else:
            level = fr_from_ints([_check_elem(x, "leaf") for x in leaves])
        if level.shape[0] > (1 << depth):
            raise InvalidInput(f"MerkleTree: {level.shape[0]} leaves do not fit depth {depth}")
        self.depth = depth
        self.n_leaves = int(level.shape[0])
        tag = fr_from_ints([TAG_NODE])[0]
        default = fr_from_ints([_check_elem(pad_leaf, "pad_leaf")])
        self._defaults = [default[0]]
        self._levels = [level]
        for _ in range(depth):
            d = default
            if level.shape[0] % 2:
                level = np.concatenate([level, d])
            level = _hash_nodes(level[0::2], level[1::2], tag)
            default = _hash_nodes(d, d, tag)
            self._defaults.append(default[0])
            self._levels.append(level)
        self._root_mont = level[0] if level.shape[0] else default[0]

    @staticmethod
    def _to_int(v: np.ndarray) -> int:
        """A Montgomery element as an int (in Python: avoids a vector kernel call per element)."""
        return from_limbs(v.tolist()) * _MONT_INV % R

    @property
    def root(self) -> int:
        return self._to_int(self._root_mont)

    def _node(self, height: int, pos: int) -> np.ndarray:
        lv = self._levels[height]
        return lv[pos] if pos < lv.shape[0] else self._defaults[height]

    def leaf(self, index: int) -> int:
        self._check_index(index)
        return self._to_int(self._node(0, index))

    def _check_index(self, index: int) -> None:
        if not isinstance(index, int) or not 0 <= index < (1 << self.depth):
            raise InvalidInput("MerkleTree: leaf index out of range")

    def path(self, index: int) -> MerklePath:
        """The authentication path of leaf ``index`` (any position below 2^depth, padding included)."""
        self._check_index(index)
        sibs = tuple(self._to_int(self._node(h, (index >> h) ^ 1)) for h in range(self.depth))
        return MerklePath(index, sibs)


# ---------------------------------------------------------------------------------------------- registry


class _MerklePath22(Circuit):
    """Public root; secret leaf, index bits (checked boolean here) and siblings."""

    root = Public()
    leaf = Secret()
    bits = Secret(count=POLICY_DEPTH)
    siblings = Secret(count=POLICY_DEPTH)

    def define(self, api) -> None:
        merkle_verify(api, self.root, self.leaf, self.bits, self.siblings)


@register("merkle_path_22")
def merkle_path_22_circuit() -> ConstraintSystem:
    """The representative policy-tree path check (depth 22): 22 * 260 + 1 = 5721 constraints."""
    return compile(_MerklePath22)
