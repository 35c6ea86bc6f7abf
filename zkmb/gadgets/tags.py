"""Domain tags: one constant per use of Poseidon in zkmb (SPEC §7).

Each use of Poseidon has its own constant tag, so a value hashed for one purpose can never be
taken for a value hashed for another (a leaf for a node, a key hash for a commitment, ...).  Tags
are the big-endian integers of short ASCII names (below 2^248 < r), versioned so that a change of
encoding gets new tags.  They are all distinct and non-zero; tests check it.

Where a tag goes (docs/protocol.md, "Poseidon instance"): ``TAG_KEY_COMMITMENT`` is the *first
input* of ``comm_k`` (unchanged since v1); every ``v2`` tag is the initial value of the *capacity
element* (circomlib ``PoseidonEx`` ``initialState``), which costs no constraint.  The Merkle node
tag names the tree's arity, so a root never verifies under the other shape (SPEC §6).
"""

from __future__ import annotations

from ..errors import InvalidInput

__all__ = [
    "ALL_TAGS",
    "TAG_KEY_COMMITMENT",
    "TAG_KEY_HASH",
    "TAG_LEAF",
    "TAG_NODE",
    "TAG_NODE_2",
    "TAG_NODE_4",
    "TAG_PAD_COMMITMENT",
    "node_tag",
    "tag_value",
]


def tag_value(name: str) -> int:
    """The tag of an ASCII name of at most 31 bytes."""
    raw = name.encode("ascii")
    if not raw or len(raw) > 31:
        raise InvalidInput("a tag name has 1 to 31 ASCII bytes")
    return int.from_bytes(raw, "big")


TAG_KEY_COMMITMENT = tag_value("zkmb/v1/key-commitment")  # comm_k, first input (CO, PAD)
TAG_PAD_COMMITMENT = tag_value("zkmb/v2/pad-commitment")  # comm_pad, capacity (PAD, Q)
TAG_KEY_HASH = tag_value("zkmb/v2/policy-key")  # H_key: packed 254-byte policy key, capacity (§6)
TAG_LEAF = tag_value("zkmb/v2/policy-leaf")  # H_leaf(a, b) = Poseidon_cap(H_key a, H_key b)
TAG_NODE_2 = tag_value("zkmb/v2/merkle-node/arity-2")  # binary policy tree node, capacity
TAG_NODE_4 = tag_value("zkmb/v2/merkle-node/arity-4")  # 4-ary policy tree node, capacity
TAG_NODE = TAG_NODE_4  # the node tag of the published tree shape (arity 4, depth 11)


def node_tag(arity: int) -> int:
    """The node tag of a Merkle tree of ``arity`` 2 or 4 (the arity is bound into the tag)."""
    tags = {2: TAG_NODE_2, 4: TAG_NODE_4}
    if arity not in tags:
        raise InvalidInput(f"Merkle arity must be 2 or 4, got {arity!r}")
    return tags[arity]


ALL_TAGS: dict[str, int] = {
    "key_commitment": TAG_KEY_COMMITMENT,
    "pad_commitment": TAG_PAD_COMMITMENT,
    "key_hash": TAG_KEY_HASH,
    "leaf": TAG_LEAF,
    "node_2": TAG_NODE_2,
    "node_4": TAG_NODE_4,
}
