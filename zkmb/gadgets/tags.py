"""Domain tags: the first Poseidon input of every hash zkmb computes (SPEC §7).

Each use of Poseidon has its own constant tag, so a value hashed for one purpose can never be
taken for a value hashed for another (a leaf for a node, a key hash for a commitment, ...).  Tags
are the big-endian integers of short ASCII names (below 2^248 < r), versioned so that a change of
encoding gets new tags.  They are all distinct; tests check it.
"""

from __future__ import annotations

from ..errors import InvalidInput

__all__ = [
    "ALL_TAGS",
    "TAG_KEY_COMMITMENT",
    "TAG_KEY_HASH",
    "TAG_LEAF",
    "TAG_NODE",
    "TAG_PAD_COMMITMENT",
    "tag_value",
]


def tag_value(name: str) -> int:
    """The tag of an ASCII name of at most 31 bytes."""
    raw = name.encode("ascii")
    if not raw or len(raw) > 31:
        raise InvalidInput("a tag name has 1 to 31 ASCII bytes")
    return int.from_bytes(raw, "big")


TAG_KEY_COMMITMENT = tag_value("zkmb/v1/key-commitment")  # comm_k: the TLS traffic key (CO, Q)
TAG_PAD_COMMITMENT = tag_value("zkmb/v1/pad-commitment")  # comm_pad: precomputed keystream (PAD, Q)
TAG_KEY_HASH = tag_value("zkmb/v1/policy-key")  # Poseidon(tag, packed 254-byte policy key) (§6)
TAG_LEAF = tag_value("zkmb/v1/policy-leaf")  # H_leaf(a, b) = Poseidon(tag, key hash a, key hash b)
TAG_NODE = tag_value("zkmb/v1/merkle-node")  # Poseidon(tag, left, right) in the policy tree

ALL_TAGS: dict[str, int] = {
    "key_commitment": TAG_KEY_COMMITMENT,
    "pad_commitment": TAG_PAD_COMMITMENT,
    "key_hash": TAG_KEY_HASH,
    "leaf": TAG_LEAF,
    "node": TAG_NODE,
}
