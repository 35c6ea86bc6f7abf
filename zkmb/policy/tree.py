"""The policy commitment (SPEC §6-7): key hashes, gap leaves, the 4-ary depth-11 Poseidon Merkle tree.

Every hash takes its domain tag in the capacity element (circomlib ``PoseidonEx`` ``initialState``):

* Packing: a key is zero-padded to 254 bytes and cut into 9 big-endian elements of 31, ..., 31, 6
  bytes (:func:`zkmb.gadgets.bits.pack_bytes`).
* ``H_key(k) = Poseidon(e_0, ..., e_8)``, capacity ``TAG_KEY_HASH`` (width 10).
* ``H_leaf(a, b) = Poseidon(H_key(a), H_key(b))``, capacity ``TAG_LEAF``
  (:func:`zkmb.gadgets.merkle.leaf_hash`).
* ``node(c_0..c_3) = Poseidon(c_0, c_1, c_2, c_3)``, capacity ``node_tag(4)`` (:mod:`zkmb.gadgets.merkle`),
  arity 4 and depth 11 (2^22 leaves), leaf ``i`` at index ``i``; unused leaves ``H_leaf(max, max)``.
  Arity 2 (depth 22, ``node_tag(2)``) is built too, for comparison; the published format is arity 4.

Sorted keys with sentinels ``K_0 = ""`` and ``K_{m+1} = FF*254`` give ``m + 1`` leaves
``H_leaf(A_i, K_{i+1})``, ``A_i = K_i`` (exact) or :func:`~.rules.subtree_bound` (subtree).
Everything is hashed in batches with the numba kernel (:func:`poseidon_many_mont`, parallel).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InvalidInput
from ..gadgets.merkle import POLICY_ARITY, POLICY_DEPTH, MerklePath, level_bits
from ..gadgets.poseidon import poseidon_many_mont, poseidon_native
from ..gadgets.tags import TAG_KEY_HASH, TAG_LEAF, node_tag
from .normalise import NotNormalised, check_normalised
from .rules import KEY_LEN, MAX_KEY, MIN_KEY, Kind, subtree_bound

__all__ = [
    "CHUNK",
    "N_KEY_ELEMENTS",
    "PolicyTree",
    "build_tree",
    "check_strictly_increasing",
    "key_hash_native",
    "key_hashes",
    "leaf_hash_keys_native",
    "pack_key",
    "pack_keys_limbs",
]

N_KEY_ELEMENTS = 9  # ceil(254 / 31)
CHUNK = 1 << 15  # rows per hashing batch
Progress = Callable[[str, int, int], None]


def pack_key(key: bytes) -> list[int]:
    """The 9 field elements of a key (zero-padded to 254 bytes, 31 bytes per element, big-endian)."""
    from ..gadgets.bits import pack_bytes

    if len(key) > KEY_LEN:
        raise InvalidInput(f"policy key of {len(key)} bytes (at most {KEY_LEN})")
    return pack_bytes(key.ljust(KEY_LEN, b"\0"))


def key_hash_native(key: bytes) -> int:
    """``H_key(key)`` in pure Python (the reference for :func:`key_hashes`)."""
    return poseidon_native(pack_key(key), init=TAG_KEY_HASH)


def leaf_hash_keys_native(a: bytes, b: bytes) -> int:
    """``H_leaf(a, b)`` of two keys in pure Python."""
    return poseidon_native([key_hash_native(a), key_hash_native(b)], init=TAG_LEAF)


def _padded(keys: Sequence[bytes]) -> np.ndarray:
    buf = bytearray(len(keys) * KEY_LEN)
    for i, k in enumerate(keys):
        if len(k) > KEY_LEN:
            raise InvalidInput(f"policy key of {len(k)} bytes (at most {KEY_LEN})")
        buf[i * KEY_LEN : i * KEY_LEN + len(k)] = k
    return np.frombuffer(bytes(buf), dtype=np.uint8).reshape(len(keys), KEY_LEN)


def pack_keys_limbs(keys: Sequence[bytes]) -> np.ndarray:
    """``(n, 9, 4)`` uint64: the packed elements of each key as plain little-endian limbs."""
    pad = _padded(keys)
    n = pad.shape[0]
    be = np.zeros((n, N_KEY_ELEMENTS, 32), dtype=np.uint8)  # each element as 32 big-endian bytes
    for e in range(N_KEY_ELEMENTS - 1):
        be[:, e, 1:] = pad[:, 31 * e : 31 * e + 31]
    tail = KEY_LEN - 31 * (N_KEY_ELEMENTS - 1)
    be[:, -1, 32 - tail :] = pad[:, 31 * (N_KEY_ELEMENTS - 1) :]
    limbs = be.view(">u8").reshape(n, N_KEY_ELEMENTS, 4)[:, :, ::-1]
    return np.ascontiguousarray(limbs.astype(np.uint64))


def _to_mont(limbs: np.ndarray) -> np.ndarray:
    from ..algebra.kernels import mont

    flat = np.ascontiguousarray(limbs.reshape(-1, 4))
    out = np.empty_like(flat)
    mont.fr_vec_to_mont(flat, out)
    return out.reshape(limbs.shape)


def _sig_order(limbs: np.ndarray) -> np.ndarray:
    """(n, 36) uint64, most significant limb of element 0 first: row order = packed-key order."""
    return limbs[:, :, ::-1].reshape(limbs.shape[0], -1)


def check_strictly_increasing(prev_last: np.ndarray | None, limbs: np.ndarray, offset: int = 0) -> np.ndarray:
    """Check packed keys (plain limbs, in order) are strictly increasing, element by element from the
    first, as the circuit compares them; ``prev_last`` is the last row of the previous batch and
    ``offset`` the index of this batch's first key.  Returns this batch's last row.  Raises
    :class:`~.normalise.NotNormalised` with the index of the first key not above its predecessor."""
    rows = _sig_order(limbs)
    if prev_last is not None:
        rows = np.concatenate([prev_last[None, :], rows])
    if rows.shape[0] >= 2:
        a, b = rows[:-1], rows[1:]
        diff = a != b
        first = np.argmax(diff, axis=1)
        r = np.arange(a.shape[0])
        ok = diff.any(axis=1) & (b[r, first] > a[r, first])
        if not ok.all():
            bad = int(np.argmin(ok)) + 1 + offset - (prev_last is not None)
            raise NotNormalised(
                f"policy key {bad} is not above the key before it (unsorted or a duplicate)", bad
            )
    return rows[-1]


def key_hashes(
    keys: Sequence[bytes], check_order: bool = False, progress: Progress | None = None
) -> np.ndarray:
    """``(n, 4)`` Montgomery ``H_key`` of each key (batched numba Poseidon(9), capacity tag); optionally
    checks the keys strictly increase (packed comparison)."""
    n = len(keys)
    out = np.empty((n, 4), dtype=np.uint64)
    last = None
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        limbs = pack_keys_limbs(keys[lo:hi])
        if check_order:
            last = check_strictly_increasing(last, limbs, lo)
        out[lo:hi] = poseidon_many_mont(_to_mont(limbs), parallel=True, init=TAG_KEY_HASH)
        if progress:
            progress("hash keys", hi, n)
    return out


def _hash_groups(tag: int, *columns: np.ndarray) -> np.ndarray:
    """Poseidon(columns[0][i], ..., columns[k-1][i]) with capacity ``tag``, for every row i."""
    n = columns[0].shape[0]
    out = np.empty((n, 4), dtype=np.uint64)
    for lo in range(0, n, 4 * CHUNK):
        hi = min(n, lo + 4 * CHUNK)
        rows = np.stack([c[lo:hi] for c in columns], axis=1)
        out[lo:hi] = poseidon_many_mont(rows, parallel=True, init=tag)
    return out


def _check_shape(depth: int, arity: int) -> None:
    level_bits(arity)
    if not isinstance(depth, int) or not 1 <= depth <= 32 // level_bits(arity):
        raise InvalidInput(f"tree depth {depth!r} out of range for arity {arity} (at most 2^32 leaves)")


class PolicyTree:
    """The Merkle tree over the leaves (Montgomery ``(n, 4)`` levels; the rest are defaults)."""

    def __init__(self, levels: list[np.ndarray], defaults: np.ndarray, arity: int = POLICY_ARITY):
        _check_shape(len(levels) - 1, arity)
        self.levels = levels
        self.defaults = defaults
        self.arity = arity
        self.depth = len(levels) - 1
        top = levels[-1]
        self.root_mont = top[0] if top.shape[0] else defaults[-1]

    @property
    def capacity(self) -> int:
        """Leaves of the tree (arity^depth)."""
        return self.arity**self.depth

    @classmethod
    def from_leaves(
        cls,
        leaves: np.ndarray,
        depth: int = POLICY_DEPTH,
        progress: Progress | None = None,
        arity: int = POLICY_ARITY,
    ):
        """Hash the tree up from Montgomery leaves; unused leaves are ``H_leaf(max, max)``."""
        _check_shape(depth, arity)
        if leaves.shape[0] > arity**depth:
            raise InvalidInput(f"{leaves.shape[0]} leaves do not fit an arity-{arity} depth-{depth} tree")
        hmax = key_hashes([MAX_KEY])
        pad = _hash_groups(TAG_LEAF, hmax, hmax)
        node = node_tag(arity)
        levels = [np.ascontiguousarray(leaves)]
        defaults = [pad[0]]
        level = levels[0]
        for h in range(depth):
            d = defaults[-1][None, :]
            short = -level.shape[0] % arity
            if short:
                level = np.concatenate([level, np.repeat(d, short, axis=0)])
            level = _hash_groups(node, *(level[j::arity] for j in range(arity)))
            defaults.append(_hash_groups(node, *([d] * arity))[0])
            levels.append(level)
            if progress:
                progress("tree", h + 1, depth)
        return cls(levels, np.stack(defaults), arity)

    @staticmethod
    def _int(v: np.ndarray) -> int:
        from ..algebra.fast.fields import fr_to_ints

        return fr_to_ints(np.ascontiguousarray(v).reshape(1, 4))[0]

    @property
    def root(self) -> int:
        return self._int(self.root_mont)

    @property
    def n_leaves(self) -> int:
        return int(self.levels[0].shape[0])

    def _node(self, h: int, pos: int) -> np.ndarray:
        lv = self.levels[h]
        return lv[pos] if pos < lv.shape[0] else self.defaults[h]

    def leaf(self, index: int) -> int:
        if not 0 <= index < self.capacity:
            raise InvalidInput("leaf index out of range")
        return self._int(self._node(0, index))

    def path(self, index: int) -> MerklePath:
        """The path of leaf ``index``: each level's ``arity`` children from the leaf level up (the
        gadget's order, the path's own child included)."""
        if not isinstance(index, int) or not 0 <= index < self.capacity:
            raise InvalidInput("leaf index out of range")
        from ..algebra.fast.fields import fr_to_ints

        a = self.arity
        nodes = np.stack(
            [self._node(h, (index // a ** (h + 1)) * a + j) for h in range(self.depth) for j in range(a)]
        )
        flat = fr_to_ints(nodes)
        return MerklePath(index, tuple(tuple(flat[a * h : a * h + a]) for h in range(self.depth)), a)

    # ------------------------------------------------------------------------------------ cache

    def save(self, path: str | os.PathLike, extra: dict[str, np.ndarray]) -> None:
        """Write the levels (and ``extra`` arrays) to an ``.npz`` file, atomically."""
        arrays = {f"level{h}": lv for h, lv in enumerate(self.levels)}
        arrays["defaults"] = self.defaults
        arrays["arity"] = np.array([self.arity], dtype=np.int64)
        arrays.update(extra)
        path = os.fspath(path)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, data) -> PolicyTree:
        """Rebuild from an opened ``np.load`` of :meth:`save` (no re-hashing)."""
        depth = data["defaults"].shape[0] - 1
        arity = int(data["arity"][0])
        return cls([data[f"level{h}"] for h in range(depth + 1)], data["defaults"], arity)


def build_tree(
    keys: Sequence[bytes],
    kinds: Sequence[int],
    depth: int = POLICY_DEPTH,
    progress: Progress | None = None,
    arity: int = POLICY_ARITY,
) -> PolicyTree:
    """The tree over normalised rule keys (no sentinels) and their kinds.  Refuses rules that are not
    in the SPEC §6 normal form (:func:`~.normalise.check_normalised`) and keys that do not strictly
    increase as the circuit compares them (which also rules out duplicates and misplaced sentinels)."""
    if len(keys) != len(kinds):
        raise InvalidInput("one kind per key")
    _check_shape(depth, arity)
    check_normalised(keys, kinds)
    full = [MIN_KEY, *keys, MAX_KEY]
    if len(full) - 1 > arity**depth:
        raise InvalidInput(
            f"{len(keys)} rules do not fit an arity-{arity} depth-{depth} tree ({arity**depth - 1} at most)"
        )
    try:
        hk = key_hashes(full, check_order=True, progress=progress)
    except NotNormalised as e:  # positions in ``full`` count the minimum sentinel: make them rule indices
        i = min(e.index - 1, len(keys) - 1)
        raise NotNormalised(f"rule {i}: not above the rule before it (unsorted or a duplicate)", i) from None
    ha = hk[:-1].copy()
    sub = np.flatnonzero(np.asarray(kinds, dtype=np.int8) == Kind.SUBTREE)
    if sub.size:
        ha[sub + 1] = key_hashes([subtree_bound(keys[i]) for i in sub])
    leaves = _hash_groups(TAG_LEAF, ha, hk[1:])
    if progress:
        progress("leaves", len(leaves), len(leaves))
    return PolicyTree.from_leaves(leaves, depth, progress, arity)
