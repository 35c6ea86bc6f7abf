"""Merkle trees: domain tags, the numba tree builder against a pure-Python tree, the path gadget.

Soundness: a changed direction bit, sibling, leaf or root makes the system unsatisfied, both as a
tampered wire of an honest witness and as an honest solve of the wrong statement.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from zkmb.algebra.fast.fields import fr_from_ints
from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import lc_value
from zkmb.gadgets.merkle import (
    POLICY_DEPTH,
    MerkleTree,
    leaf_hash,
    leaf_hash_native,
    merkle_path_22_circuit,
    merkle_root,
    merkle_root_native,
    merkle_verify,
    node_hash_native,
)
from zkmb.gadgets.poseidon import poseidon_constraints, poseidon_native
from zkmb.gadgets.registry import GADGET_MODULES
from zkmb.gadgets.tags import ALL_TAGS, TAG_LEAF, TAG_NODE, tag_value
from zkmb.r1cs import Circuit, Public, Secret, UnsatisfiedError, compile

from .tamper import bump, flip

PER_LEVEL = poseidon_constraints(3, constant_inputs=1) + 2  # 258 + select + boolean = 260


def test_tags():
    vals = list(ALL_TAGS.values())
    assert len(set(vals)) == len(vals) == 5
    assert all(0 < v < (1 << 248) for v in vals)
    assert tag_value("zkmb/v1/merkle-node") == TAG_NODE
    for bad in ("", "x" * 32, "é"):
        with pytest.raises((InvalidInput, UnicodeEncodeError)):
            tag_value(bad)


def test_hashes_are_domain_separated():
    assert node_hash_native(1, 2) == poseidon_native([TAG_NODE, 1, 2])
    assert leaf_hash_native([1, 2]) == poseidon_native([TAG_LEAF, 1, 2])
    assert node_hash_native(1, 2) != leaf_hash_native([1, 2])
    assert node_hash_native(1, 2) != node_hash_native(2, 1)


# --------------------------------------------------------------------------- native tree


def python_tree_root(leaves: list[int], depth: int, pad: int) -> int:
    level = leaves + [pad] * ((1 << depth) - len(leaves))
    for _ in range(depth):
        level = [node_hash_native(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


@pytest.mark.parametrize("n", [0, 1, 2, 5, 8, 13, 16])
def test_tree_matches_python(n):
    depth = 4
    rng = random.Random(n)
    leaves = [rng.randrange(R) for _ in range(n)]
    pad = leaf_hash_native([R - 1, R - 1])
    tree = MerkleTree(leaves, depth=depth, pad_leaf=pad)
    assert tree.root == python_tree_root(leaves, depth, pad)
    for index in range(1 << depth):
        path = tree.path(index)
        leaf = leaves[index] if index < n else pad
        assert tree.leaf(index) == leaf
        assert path.depth == depth and path.bits == [(index >> i) & 1 for i in range(depth)]
        assert merkle_root_native(leaf, index, path.siblings) == tree.root


def test_tree_mont_input_and_larger_levels():
    """An odd-sized level above the parallel threshold, leaves given as a Montgomery array."""
    rng = random.Random(1)
    leaves = [rng.randrange(R) for _ in range(1001)]
    tree = MerkleTree(fr_from_ints(leaves), depth=11, pad_leaf=7)
    assert tree.root == MerkleTree(leaves, depth=11, pad_leaf=7).root
    for index in (0, 999, 1000, 1001, 2047):
        leaf = leaves[index] if index < 1001 else 7
        assert merkle_root_native(leaf, index, tree.path(index).siblings) == tree.root


def test_tree_rejects():
    with pytest.raises(InvalidInput):
        MerkleTree([1, 2, 3], depth=1)
    with pytest.raises(InvalidInput):
        MerkleTree([R], depth=2)
    with pytest.raises(InvalidInput):
        MerkleTree([1], depth=0)
    with pytest.raises(InvalidInput):
        MerkleTree(np.zeros((2, 3), dtype=np.uint64), depth=2)
    tree = MerkleTree([1, 2], depth=2)
    for bad in (-1, 4):
        with pytest.raises(InvalidInput):
            tree.path(bad)
    with pytest.raises(InvalidInput):
        merkle_root_native(1, 4, [0, 0])
    with pytest.raises(InvalidInput):
        merkle_root_native(1, 0, [R, 0])


# --------------------------------------------------------------------------- the gadget

DEPTH = 5


class Path(Circuit):
    root = Public()
    leaf = Secret()
    bits = Secret(count=DEPTH)
    sibs = Secret(count=DEPTH)

    def define(self, api):
        merkle_verify(api, self.root, self.leaf, self.bits, self.sibs)


@pytest.fixture(scope="module")
def setup():
    rng = random.Random(3)
    leaves = [rng.randrange(R) for _ in range(19)]
    tree = MerkleTree(leaves, depth=DEPTH, pad_leaf=11)
    return compile(Path), tree, leaves


def assignment(tree, leaves, index):
    p = tree.path(index)
    leaf = leaves[index] if index < len(leaves) else 11
    return {"root": tree.root, "leaf": leaf, "bits": p.bits, "sibs": list(p.siblings)}


def test_gadget_count(setup):
    cs, _, _ = setup
    assert PER_LEVEL == 260
    assert cs.n_constraints == DEPTH * PER_LEVEL + 1


def test_gadget_valid_paths(setup):
    cs, tree, leaves = setup
    for index in (0, 1, 6, 18, 19, 31):  # real leaves and padding
        assert cs.is_satisfied(cs.solve(assignment(tree, leaves, index)))


def test_gadget_wrong_statements(setup):
    cs, tree, leaves = setup
    good = assignment(tree, leaves, 6)
    bad = []
    for i in range(DEPTH):
        bits = list(good["bits"])
        bits[i] ^= 1
        bad.append({**good, "bits": bits})  # a flipped direction
        sibs = list(good["sibs"])
        sibs[i] = (sibs[i] + 1) % R
        bad.append({**good, "sibs": sibs})  # a changed sibling
    bad.append({**good, "leaf": (good["leaf"] + 1) % R})
    bad.append({**good, "leaf": leaves[7]})  # another real leaf at this index
    bad.append({**good, "root": (good["root"] + 1) % R})
    bits = list(good["bits"])
    bits[0] = 2  # not a bit
    bad.append({**good, "bits": bits})
    for a in bad:
        with pytest.raises(UnsatisfiedError):
            cs.solve(a)


def test_gadget_tampered_witness(setup):
    cs, tree, leaves = setup
    w = cs.solve(assignment(tree, leaves, 6))
    bits0, sibs0 = cs.inputs["bits"].first_wire, cs.inputs["sibs"].first_wire
    for i in range(DEPTH):
        assert not cs.is_satisfied(flip(w, bits0 + i))
        assert not cs.is_satisfied(bump(w, sibs0 + i))
    assert not cs.is_satisfied(bump(w, cs.inputs["leaf"].first_wire))
    assert not cs.is_satisfied(bump(w, cs.inputs["root"].first_wire))
    # swapping the two children of the first node (the order is bound by the bit)
    leaf0 = cs.inputs["leaf"].first_wire
    swapped = w.replace(leaf0, w.value(sibs0)).replace(sibs0, w.value(leaf0))
    assert not cs.is_satisfied(swapped)


def test_gadget_value_and_leaf_hash():
    """merkle_root returns the root (value check) and leaf_hash matches its twin."""

    class Root(Circuit):
        a = Secret(count=2)
        bits = Secret(count=3)
        sibs = Secret(count=3)

        def define(self, api):
            self.leaf = leaf_hash(api, self.a)
            self.root = merkle_root(api, self.leaf, self.bits, self.sibs)

    inst = Root()
    cs = compile(inst)
    assert cs.n_constraints == poseidon_constraints(3, 1) + 3 * PER_LEVEL
    leaf = leaf_hash_native([5, 6])
    tree = MerkleTree([1, 2, 3, 4, leaf], depth=3)
    p = tree.path(4)
    w = cs.solve({"a": [5, 6], "bits": p.bits, "sibs": list(p.siblings)})
    assert lc_value(w, inst.leaf) == leaf and lc_value(w, inst.root) == tree.root


def test_registered_policy_depth():
    assert "zkmb.gadgets.merkle" in GADGET_MODULES
    cs = merkle_path_22_circuit()
    assert cs.n_constraints == POLICY_DEPTH * PER_LEVEL + 1 == 5721
    pad = leaf_hash_native([R - 1, R - 1])
    leaves = [leaf_hash_native([i, i + 1]) for i in range(300)]
    tree = MerkleTree(leaves, depth=POLICY_DEPTH, pad_leaf=pad)
    for index in (0, 299, 300, (1 << POLICY_DEPTH) - 1):
        p = tree.path(index)
        leaf = leaves[index] if index < 300 else pad
        w = cs.solve({"root": tree.root, "leaf": leaf, "bits": p.bits, "siblings": list(p.siblings)})
        assert cs.is_satisfied(w)
    with pytest.raises(UnsatisfiedError):
        p = tree.path(5)
        cs.solve({"root": tree.root, "leaf": leaves[6], "bits": p.bits, "siblings": list(p.siblings)})


def test_gadget_rejects():
    class Bad(Circuit):
        leaf = Secret()
        bits = Secret(count=2)
        sibs = Secret(count=3)

        def define(self, api):
            merkle_root(api, self.leaf, self.bits, self.sibs)

    with pytest.raises(InvalidInput):
        compile(Bad)
