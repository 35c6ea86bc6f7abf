"""Poseidon Merkle trees of arity 2 or 4 and fixed depth, domain-separated hashing (SPEC §6-7).

``node(c_0, ..., c_{a-1}) = Poseidon(c_0, ..., c_{a-1})`` with the capacity element set to
:func:`~.tags.node_tag` ``(a)`` (circomlib ``PoseidonEx`` ``initialState``), so the arity is bound
into every node; leaves are whatever the caller commits to (the policy uses ``leaf_hash(a, b) =
Poseidon(a, b)`` with capacity ``TAG_LEAF``).  The published policy tree has arity 4 and depth 11
(:data:`POLICY_ARITY`, :data:`POLICY_DEPTH`: 4^11 = 2^22 leaves).

A path (:class:`MerklePath`) is the leaf index and, per level from the leaf up, *all* ``a`` children
of the node on the path, its own child included.  The index in base ``a``, least significant digit
first, gives the path's position at each level; in bits (LSB first) digit ``h`` is bits
``2h, 2h + 1`` for arity 4 (bit ``h`` for arity 2), i.e. the plain binary index.

* :func:`merkle_root` / :func:`merkle_verify`: the gadget.  Per level the child at the digit's
  position is constrained equal to the node below (a mux over the children with the digit's bits,
  each constrained boolean unless already known boolean), then the children are hashed.  Arity 4:
  ``u = c_0 + b_0 (c_1 - c_0)``, ``v = c_2 + b_0 (c_3 - c_2)``, ``b_1 (v - u) = cur - u``: 3
  constraints, and with ``b_0, b_1`` boolean exactly ``cur = c_{b_0 + 2 b_1}`` (one position, no
  freedom).  Arity 2: ``b (c_1 - c_0) = cur - c_0``: 1 constraint.  Hash: Poseidon(4) 297, Poseidon(2)
  240 (the capacity tag is free).  Per level 300 (arity 4) or 241 (arity 2); the root equality is 1.
* :func:`merkle_root_native` (from siblings, the verifier's view), :func:`merkle_path_root_native`
  (the gadget's twin, from a :class:`MerklePath`) and :class:`MerkleTree`: the native side.  The tree
  stores only the populated part of each level; everything right of it hashes up from ``pad_leaf``
  through precomputed per-level defaults.  Hashing uses the numba kernel
  (:func:`~.poseidon.poseidon_many_mont`).
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
from .tags import TAG_LEAF, node_tag

__all__ = [
    "ARITIES",
    "POLICY_ARITY",
    "POLICY_DEPTH",
    "MerklePath",
    "MerkleTree",
    "leaf_hash",
    "leaf_hash_native",
    "level_bits",
    "merkle_path_root_native",
    "merkle_root",
    "merkle_root_native",
    "merkle_verify",
    "node_hash",
    "node_hash_native",
]

ARITIES = (2, 4)
POLICY_ARITY = 4  # SPEC §6: the published tree shape is arity 4, depth 11 (docs/protocol.md)
POLICY_DEPTH = 11
MAX_DEPTH = 64
_MONT_INV = pow(1 << 256, -1, R)


def level_bits(arity: int) -> int:
    """Index bits per level: 1 for arity 2, 2 for arity 4."""
    if arity not in ARITIES:
        raise InvalidInput(f"Merkle arity must be one of {ARITIES}, got {arity!r}")
    return arity.bit_length() - 1


def _check_depth(depth: int, arity: int = 2) -> None:
    top = MAX_DEPTH // level_bits(arity)
    if not isinstance(depth, int) or not 1 <= depth <= top:
        raise InvalidInput(f"Merkle depth must be an int in [1, {top}], got {depth!r}")


# ---------------------------------------------------------------------------------------------- hashes


def node_hash(api, children: Sequence) -> LC:
    """Poseidon of the 2 or 4 children, capacity ``node_tag(arity)``: 240 / 297 constraints."""
    return poseidon(api, list(children), init=node_tag(len(children)))


def node_hash_native(children: Sequence[int]) -> int:
    """Twin of :func:`node_hash` (pure Python)."""
    return poseidon_native(list(children), init=node_tag(len(children)))


def leaf_hash(api, values: Sequence) -> LC:
    """Poseidon(*values) with capacity ``TAG_LEAF``, for 1..16 values (240 constraints for 2)."""
    return poseidon(api, list(values), init=TAG_LEAF)


def leaf_hash_native(values: Sequence[int]) -> int:
    """Twin of :func:`leaf_hash` (pure Python)."""
    return poseidon_native(list(values), init=TAG_LEAF)


# ---------------------------------------------------------------------------------------------- gadget


def _mux_equal(api, cur: LC, children: Sequence, bits: Sequence) -> None:
    """Constrain ``children[digit] == cur``, digit = bits LSB first (each bit constrained boolean)."""
    for b in bits:
        api.assert_boolean(b)
    if len(children) == 2:
        (b0,) = bits
        api.assert_mul(b0, api.sub(children[1], children[0]), api.sub(cur, children[0]))
        return
    b0, b1 = bits
    u = api.select(b0, children[1], children[0])
    v = api.select(b0, children[3], children[2])
    api.assert_mul(b1, api.sub(v, u), api.sub(cur, u))


def merkle_root(api, leaf, index_bits: Sequence, children: Sequence, arity: int = POLICY_ARITY) -> LC:
    """The root hashed up from ``leaf``: ``children`` holds, level by level from the leaf up, the
    ``arity`` children of the node on the path; ``index_bits`` the index LSB first (1 bit per level for
    arity 2, 2 for arity 4).

    Constrains at each level that the child at the index's digit is the node below, then hashes the
    children (see the module docstring for the per-level cost).
    """
    k = level_bits(arity)
    depth, rest = divmod(len(index_bits), k)
    if rest or len(children) != arity * depth:
        raise InvalidInput(f"merkle_root: arity {arity} takes {k} index bits and {arity} children per level")
    _check_depth(depth, arity)
    cur = LC(as_terms(leaf))
    with api.scope("merkle"):
        for h in range(depth):
            kids = [LC(as_terms(c)) for c in children[arity * h : arity * (h + 1)]]
            _mux_equal(api, cur, kids, index_bits[k * h : k * (h + 1)])
            cur = node_hash(api, kids)
    return cur


def merkle_verify(
    api, root, leaf, index_bits: Sequence, children: Sequence, arity: int = POLICY_ARITY
) -> None:
    """Constrain that ``leaf`` sits at the index given by ``index_bits`` in the tree with ``root``."""
    api.assert_equal(merkle_root(api, leaf, index_bits, children, arity), root)


# ---------------------------------------------------------------------------------------------- native


@dataclass(frozen=True)
class MerklePath:
    """A leaf index and, per level from the leaf up, the ``arity`` children of the node on the path."""

    index: int
    children: tuple[tuple[int, ...], ...]
    arity: int = POLICY_ARITY

    def __post_init__(self) -> None:
        level_bits(self.arity)
        if any(len(c) != self.arity for c in self.children):
            raise InvalidInput(f"MerklePath: every level has {self.arity} children")
        if not isinstance(self.index, int) or self.index < 0:
            raise InvalidInput("MerklePath: the index is a non-negative int")
        if self.children and self.index >= self.arity**self.depth:  # no levels: an index only
            raise InvalidInput("MerklePath: index out of range for the depth")

    @property
    def depth(self) -> int:
        return len(self.children)

    @property
    def digits(self) -> list[int]:
        """The path's position at each level (the index in base ``arity``, least significant first)."""
        return [(self.index // self.arity**h) % self.arity for h in range(self.depth)]

    @property
    def bits(self) -> list[int]:
        """The index as ``depth * level_bits(arity)`` bits, least significant first (``index_bits``)."""
        return [(self.index >> i) & 1 for i in range(self.depth * level_bits(self.arity))]

    @property
    def siblings(self) -> tuple[tuple[int, ...], ...]:
        """Per level the ``arity - 1`` children other than the path's own, in order."""
        return tuple(c[:d] + c[d + 1 :] for c, d in zip(self.children, self.digits, strict=True))

    @property
    def flat_children(self) -> list[int]:
        """The gadget's ``children`` input: every level's children, leaf level first."""
        return [x for c in self.children for x in c]


def _check_elem(x, what: str) -> int:
    try:
        v = x.__index__()
    except AttributeError:
        raise InvalidInput(f"{what}: {type(x).__name__} is not an integer") from None
    if not 0 <= v < R:
        raise InvalidInput(f"{what}: value not in [0, r)")
    return v


def merkle_root_native(
    leaf: int, index: int, siblings: Sequence[Sequence[int]], arity: int = POLICY_ARITY
) -> int:
    """The root from a leaf, its index and, per level from the leaf up, the ``arity - 1`` siblings in
    order (pure Python: the verifier's view of a path)."""
    depth = len(siblings)
    _check_depth(depth, arity)
    if not isinstance(index, int) or not 0 <= index < arity**depth:
        raise InvalidInput("merkle_root_native: index out of range for the depth")
    cur = _check_elem(leaf, "leaf")
    for h, sib in enumerate(siblings):
        s = [_check_elem(x, "sibling") for x in sib]
        if len(s) != arity - 1:
            raise InvalidInput(f"merkle_root_native: {arity - 1} siblings per level")
        d = (index // arity**h) % arity
        cur = node_hash_native([*s[:d], cur, *s[d:]])
    return cur


def merkle_path_root_native(leaf: int, path: MerklePath) -> int:
    """Twin of :func:`merkle_root`: checks that each level's child at the path's digit is the node
    below (InvalidInput otherwise) and returns the root (pure Python)."""
    _check_depth(path.depth, path.arity)
    cur = _check_elem(leaf, "leaf")
    for h, (kids, d) in enumerate(zip(path.children, path.digits, strict=True)):
        kids = [_check_elem(x, "child") for x in kids]
        if kids[d] != cur:
            raise InvalidInput(f"MerklePath: level {h}: the child at position {d} is not the node below")
        cur = node_hash_native(kids)
    return cur


def _hash_nodes(level: np.ndarray, arity: int, tag: int) -> np.ndarray:
    """Hash consecutive groups of ``arity`` Montgomery elements (the level's length is a multiple)."""
    n = level.shape[0] // arity
    rows = np.ascontiguousarray(level.reshape(n, arity, 4))
    return poseidon_many_mont(rows, parallel=n >= 256, init=tag)


class MerkleTree:
    """A tree of ``arity`` (2 or 4) and ``depth`` over ``leaves`` (positions 0..n-1), every other leaf
    ``pad_leaf``.

    ``leaves`` are ints in [0, r) or an ``(n, 4)`` uint64 Montgomery array.  Building costs about
    n / (arity - 1) node hashes (numba, parallel) plus ``depth`` for the padding defaults.
    """

    def __init__(self, leaves, depth: int = POLICY_DEPTH, pad_leaf: int = 0, arity: int = POLICY_ARITY):
        from ..algebra.fast.fields import fr_from_ints

        _check_depth(depth, arity)
        if isinstance(leaves, np.ndarray):
            if leaves.ndim != 2 or leaves.shape[1] != 4 or leaves.dtype != np.uint64:
                raise InvalidInput("MerkleTree: a leaf array must be (n, 4) uint64 Montgomery")
            level = np.ascontiguousarray(leaves)
        else:
            level = fr_from_ints([_check_elem(x, "leaf") for x in leaves])
        if level.shape[0] > arity**depth:
            raise InvalidInput(f"MerkleTree: {level.shape[0]} leaves do not fit arity {arity}, depth {depth}")
        self.depth = depth
        self.arity = arity
        self.n_leaves = int(level.shape[0])
        tag = node_tag(arity)
        default = fr_from_ints([_check_elem(pad_leaf, "pad_leaf")])
        self._defaults = [default[0]]
        self._levels = [level]
        for _ in range(depth):
            d = default
            short = -level.shape[0] % arity
            if short:
                level = np.concatenate([level, np.repeat(d, short, axis=0)])
            level = _hash_nodes(level, arity, tag)
            default = _hash_nodes(np.repeat(d, arity, axis=0), arity, tag)
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
        if not isinstance(index, int) or not 0 <= index < self.arity**self.depth:
            raise InvalidInput("MerkleTree: leaf index out of range")

    def path(self, index: int) -> MerklePath:
        """The path of leaf ``index`` (any position below arity^depth, padding included)."""
        self._check_index(index)
        a = self.arity
        kids = tuple(
            tuple(self._to_int(self._node(h, (index // a ** (h + 1)) * a + j)) for j in range(a))
            for h in range(self.depth)
        )
        return MerklePath(index, kids, a)


# ---------------------------------------------------------------------------------------------- registry


class _MerklePath(Circuit):
    """Public root; secret leaf, index bits (checked boolean here) and each level's children."""

    root = Public()
    leaf = Secret()
    bits = Secret(count=lambda c: c.depth * level_bits(c.arity))
    children = Secret(count=lambda c: c.depth * c.arity)

    def __init__(self, arity: int, depth: int):
        self.arity, self.depth = arity, depth

    def define(self, api) -> None:
        merkle_verify(api, self.root, self.leaf, self.bits, self.children, self.arity)


@register("merkle_path_4x11")
def merkle_path_4x11_circuit() -> ConstraintSystem:
    """The policy tree's path check (arity 4, depth 11, bits checked here): 11 * (297 + 3 + 2) + 1 = 3323."""
    return compile(_MerklePath(4, 11))


@register("merkle_path_22")
def merkle_path_22_circuit() -> ConstraintSystem:
    """A binary depth-22 path, for comparison (bits checked here): 22 * (240 + 1 + 1) + 1 = 5325."""
    return compile(_MerklePath(2, 22))
