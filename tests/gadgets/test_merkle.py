"""Merkle trees (arity 2 and 4): domain tags, the numba tree builder against a pure-Python tree, the
path gadget.

Three ways per gadget: its value equals the native twin, honest witnesses satisfy it, tampered ones
do not.  Soundness of the 4-ary path: each 2-bit digit selects exactly one of the four children (a
flipped or non-boolean bit, a child placed at another position, a changed sibling, leaf or root make
the system unsatisfied, as a tampered wire of an honest witness and as an honest solve of the wrong
statement), and a root never verifies under the other arity.
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
    POLICY_ARITY,
    POLICY_DEPTH,
    MerklePath,
    MerkleTree,
    leaf_hash,
    leaf_hash_native,
    merkle_path_4x11_circuit,
    merkle_path_22_circuit,
    merkle_path_root_native,
    merkle_root,
    merkle_root_native,
    merkle_verify,
    node_hash_native,
)
from zkmb.gadgets.poseidon import poseidon_constraints, poseidon_native
from zkmb.gadgets.registry import GADGET_MODULES
from zkmb.gadgets.tags import ALL_TAGS, TAG_LEAF, TAG_NODE, TAG_NODE_2, TAG_NODE_4, node_tag, tag_value
from zkmb.r1cs import Circuit, Public, Secret, UnsatisfiedError, compile

from .tamper import bump, flip, scope_rows, solve_pinned, violated_rows

# per level: the node hash (capacity tag: free) + the mux (1 for arity 2, 3 for arity 4)
PER_LEVEL = {2: poseidon_constraints(2) + 1, 4: poseidon_constraints(4) + 3}  # 241, 300
BITS = {2: 1, 4: 2}


def test_tags():
    vals = list(ALL_TAGS.values())
    assert len(set(vals)) == len(vals) == 6
    assert all(0 < v < (1 << 248) for v in vals)
    assert tag_value("zkmb/v2/merkle-node/arity-4") == TAG_NODE_4 == TAG_NODE == node_tag(4)
    assert tag_value("zkmb/v2/merkle-node/arity-2") == TAG_NODE_2 == node_tag(2)
    for bad in (3, 1, 8, "4"):
        with pytest.raises(InvalidInput):
            node_tag(bad)
    for bad in ("", "x" * 32, "é"):
        with pytest.raises((InvalidInput, UnicodeEncodeError)):
            tag_value(bad)


def test_hashes_are_domain_separated():
    assert node_hash_native([1, 2]) == poseidon_native([1, 2], init=TAG_NODE_2)
    assert node_hash_native([1, 2, 3, 4]) == poseidon_native([1, 2, 3, 4], init=TAG_NODE_4)
    assert leaf_hash_native([1, 2]) == poseidon_native([1, 2], init=TAG_LEAF)
    assert len({node_hash_native([1, 2]), leaf_hash_native([1, 2]), poseidon_native([1, 2])}) == 3
    assert node_hash_native([1, 2]) != node_hash_native([2, 1])
    assert node_hash_native([1, 2, 3, 4]) != node_hash_native([1, 2, 4, 3])


# --------------------------------------------------------------------------- native tree


def python_tree_root(leaves: list[int], depth: int, pad: int, arity: int) -> int:
    level = leaves + [pad] * (arity**depth - len(leaves))
    for _ in range(depth):
        level = [node_hash_native(level[i : i + arity]) for i in range(0, len(level), arity)]
    return level[0]


@pytest.mark.parametrize(
    ("arity", "depth", "n"), [(2, 4, 0), (2, 4, 5), (2, 4, 16), (4, 2, 0), (4, 2, 1), (4, 2, 7), (4, 2, 16)]
)
def test_tree_matches_python(arity, depth, n):
    rng = random.Random(n)
    leaves = [rng.randrange(R) for _ in range(n)]
    pad = leaf_hash_native([R - 1, R - 1])
    tree = MerkleTree(leaves, depth=depth, pad_leaf=pad, arity=arity)
    assert tree.root == python_tree_root(leaves, depth, pad, arity)
    for index in range(arity**depth):
        path = tree.path(index)
        leaf = leaves[index] if index < n else pad
        assert tree.leaf(index) == leaf
        assert path.depth == depth and path.arity == arity
        assert path.bits == [(index >> i) & 1 for i in range(depth * BITS[arity])]
        assert path.digits == [(index // arity**h) % arity for h in range(depth)]
        assert path.children[0][path.digits[0]] == leaf
        assert merkle_root_native(leaf, index, path.siblings, arity) == tree.root
        assert merkle_path_root_native(leaf, path) == tree.root


def test_tree_mont_input_and_larger_levels():
    """Levels above the parallel threshold and not a multiple of the arity; leaves as a Montgomery array."""
    rng = random.Random(1)
    leaves = [rng.randrange(R) for _ in range(1001)]
    for arity, depth in ((2, 11), (4, 6)):
        tree = MerkleTree(fr_from_ints(leaves), depth=depth, pad_leaf=7, arity=arity)
        assert tree.root == MerkleTree(leaves, depth=depth, pad_leaf=7, arity=arity).root
        for index in (0, 999, 1000, 1001, arity**depth - 1):
            leaf = leaves[index] if index < 1001 else 7
            assert merkle_root_native(leaf, index, tree.path(index).siblings, arity) == tree.root


def test_arity_is_bound_into_the_root():
    """The same 16 leaves as a binary depth-4 and a 4-ary depth-2 tree: different roots, and no path of
    one verifies against the other's root."""
    leaves = list(range(1, 17))
    t2, t4 = MerkleTree(leaves, depth=4, arity=2), MerkleTree(leaves, depth=2, arity=4)
    assert t2.root != t4.root
    for i in (0, 5, 15):
        assert merkle_path_root_native(leaves[i], t2.path(i)) != t4.root
        assert merkle_path_root_native(leaves[i], t4.path(i)) != t2.root


def test_tree_rejects():
    with pytest.raises(InvalidInput):
        MerkleTree([1, 2, 3], depth=1, arity=2)
    with pytest.raises(InvalidInput):
        MerkleTree(list(range(5)), depth=1, arity=4)
    with pytest.raises(InvalidInput):
        MerkleTree([1], depth=1, arity=3)
    with pytest.raises(InvalidInput):
        MerkleTree([R], depth=2)
    with pytest.raises(InvalidInput):
        MerkleTree([1], depth=0)
    with pytest.raises(InvalidInput):
        MerkleTree(np.zeros((2, 3), dtype=np.uint64), depth=2)
    tree = MerkleTree([1, 2], depth=1)
    for bad in (-1, 4):
        with pytest.raises(InvalidInput):
            tree.path(bad)
    with pytest.raises(InvalidInput):
        merkle_root_native(1, 16, [(0, 0, 0), (0, 0, 0)])
    with pytest.raises(InvalidInput):
        merkle_root_native(1, 0, [(R, 0, 0)])
    with pytest.raises(InvalidInput):
        merkle_root_native(1, 0, [(0, 0)])  # 4-ary: 3 siblings per level
    with pytest.raises(InvalidInput):
        MerklePath(0, ((1, 2, 3),))
    with pytest.raises(InvalidInput):
        MerklePath(4, ((1, 2, 3, 4),))
    p = tree.path(1)
    bad = MerklePath(1, ((p.children[0][0], p.children[0][1] + 1, *p.children[0][2:]),))
    with pytest.raises(InvalidInput):  # the path's own child is not the leaf
        merkle_path_root_native(2, bad)


# --------------------------------------------------------------------------- the gadget

DEPTH = {2: 5, 4: 3}


def path_circuit(arity: int):
    class Path(Circuit):
        root = Public()
        leaf = Secret()
        bits = Secret(count=DEPTH[arity] * BITS[arity])
        kids = Secret(count=DEPTH[arity] * arity)

        def define(self, api):
            merkle_verify(api, self.root, self.leaf, self.bits, self.kids, arity)

    return compile(Path)


@pytest.fixture(scope="module", params=[2, 4])
def setup(request):
    arity = request.param
    rng = random.Random(3)
    leaves = [rng.randrange(R) for _ in range(19)]
    tree = MerkleTree(leaves, depth=DEPTH[arity], pad_leaf=11, arity=arity)
    return arity, path_circuit(arity), tree, leaves


def assignment(tree, leaves, index):
    p = tree.path(index)
    leaf = leaves[index] if index < len(leaves) else 11
    return {"root": tree.root, "leaf": leaf, "bits": p.bits, "kids": p.flat_children}


def test_gadget_count(setup):
    arity, cs, _, _ = setup
    assert PER_LEVEL == {2: 241, 4: 300}
    # + the booleanity of the index bits, which are plain inputs here (known boolean in Q)
    assert cs.n_constraints == DEPTH[arity] * (PER_LEVEL[arity] + BITS[arity]) + 1


def test_gadget_valid_paths(setup):
    arity, cs, tree, leaves = setup
    for index in (0, 1, 6, 18, 19, arity ** DEPTH[arity] - 1):  # real leaves and padding
        assert cs.is_satisfied(cs.solve(assignment(tree, leaves, index)))


def test_gadget_wrong_statements(setup):
    arity, cs, tree, leaves = setup
    good = assignment(tree, leaves, 6)
    n_bits = len(good["bits"])
    bad = []
    for i in range(n_bits):
        bits = list(good["bits"])
        bits[i] ^= 1
        bad.append({**good, "bits": bits})  # a changed digit
    for i in range(len(good["kids"])):
        kids = list(good["kids"])
        kids[i] = (kids[i] + 1) % R
        bad.append({**good, "kids": kids})  # a changed child (the path's own or a sibling)
    bad.append({**good, "leaf": (good["leaf"] + 1) % R})
    bad.append({**good, "leaf": leaves[7]})  # another real leaf at this index
    bad.append({**good, "root": (good["root"] + 1) % R})
    for v in (2, R - 1):
        bits = list(good["bits"])
        bits[0] = v  # not a bit
        bad.append({**good, "bits": bits})
    for a in bad:
        with pytest.raises(UnsatisfiedError):
            cs.solve(a)


def test_gadget_digit_selects_exactly_one_child(setup):
    """The path's own child moved to every other position of its level (the digit kept, or set to the
    new position with the rest of that level's children permuted to match the hash): only the honest
    (digit, position) pair satisfies the level."""
    arity, cs, tree, leaves = setup
    index = 6
    good = assignment(tree, leaves, index)
    k = BITS[arity]
    for level in range(DEPTH[arity]):
        digit = (index // arity**level) % arity
        kids = good["kids"][arity * level : arity * (level + 1)]
        for new_pos in range(arity):
            moved = list(kids)
            moved[digit], moved[new_pos] = moved[new_pos], moved[digit]
            all_kids = list(good["kids"])
            all_kids[arity * level : arity * (level + 1)] = moved
            for new_digit in range(arity):
                bits = list(good["bits"])
                bits[k * level : k * (level + 1)] = [(new_digit >> j) & 1 for j in range(k)]
                a = {**good, "kids": all_kids, "bits": bits}
                ok = new_pos == digit and new_digit == digit  # nothing changed
                if ok:
                    assert cs.is_satisfied(cs.solve(a))
                else:
                    with pytest.raises(UnsatisfiedError):
                        cs.solve(a)


def test_gadget_tampered_witness(setup):
    """Every internal wire of the mux (u, v for arity 4) and of the node hashes, changed in place, and a
    cheater that forges a mux wire and recomputes the rest: unsatisfied, in the merkle scope."""
    arity, cs, tree, leaves = setup
    a = assignment(tree, leaves, 6)
    w = cs.solve(a)
    bits0, kids0 = cs.inputs["bits"].first_wire, cs.inputs["kids"].first_wire
    for i in range(len(a["bits"])):
        assert not cs.is_satisfied(flip(w, bits0 + i))
    for i in range(len(a["kids"])):
        assert not cs.is_satisfied(bump(w, kids0 + i))
    assert not cs.is_satisfied(bump(w, cs.inputs["leaf"].first_wire))
    assert not cs.is_satisfied(bump(w, cs.inputs["root"].first_wire))
    # swapping the path's own child with a sibling at level 0 (the order is bound by the digit)
    leaf0, d0 = cs.inputs["leaf"].first_wire, 6 % arity
    other = kids0 + (d0 + 1) % arity
    swapped = w.replace(kids0 + d0, w.value(other)).replace(other, w.value(kids0 + d0))
    assert not cs.is_satisfied(swapped)
    assert not cs.is_satisfied(w.replace(leaf0, w.value(other)))
    # the mux's product wires (u, v), forged with everything after them recomputed: the level's
    # equality row is what fails
    mux = [
        (i, c)
        for i, _a, _b, c in scope_rows(cs, "merkle")
        if len(c) == 1 and next(iter(c.values())) == 1 and next(iter(c)) > kids0
    ]
    assert len(mux) == (2 * DEPTH[arity] if arity == 4 else 0)
    for _, c in mux:
        (wire,) = c
        cheat = solve_pinned(cs, a, {wire: w.value(wire) + 1})
        bad = violated_rows(cs, cheat)
        assert bad and all(cs.scope_of(i) == "merkle" for i in bad)


def test_gadget_value_and_leaf_hash():
    """merkle_root returns the root (value check, both arities) and leaf_hash matches its twin."""
    for arity in (2, 4):

        class Root(Circuit):
            a = Secret(count=2)
            bits = Secret(count=2 * BITS[arity])
            kids = Secret(count=2 * arity)

            def define(self, api, arity=arity):
                self.leaf = leaf_hash(api, self.a)
                self.root = merkle_root(api, self.leaf, self.bits, self.kids, arity)

        inst = Root()
        cs = compile(inst)
        assert cs.n_constraints == poseidon_constraints(2) + 2 * (PER_LEVEL[arity] + BITS[arity])
        leaf = leaf_hash_native([5, 6])
        leaves = [1, 2, 3, leaf] if arity == 2 else [1, 2, 3, 4, leaf]
        tree = MerkleTree(leaves, depth=2, arity=arity)
        p = tree.path(len(leaves) - 1)
        w = cs.solve({"a": [5, 6], "bits": p.bits, "kids": p.flat_children})
        assert lc_value(w, inst.leaf) == leaf and lc_value(w, inst.root) == tree.root


def test_registered_policy_shape():
    assert "zkmb.gadgets.merkle" in GADGET_MODULES
    assert (POLICY_ARITY, POLICY_DEPTH) == (4, 11) and 4**11 == 1 << 22
    cs = merkle_path_4x11_circuit()
    assert cs.n_constraints == POLICY_DEPTH * (PER_LEVEL[4] + 2) + 1 == 3323
    assert merkle_path_22_circuit().n_constraints == 22 * (PER_LEVEL[2] + 1) + 1 == 5325
    pad = leaf_hash_native([R - 1, R - 1])
    leaves = [leaf_hash_native([i, i + 1]) for i in range(300)]
    tree = MerkleTree(leaves, pad_leaf=pad)
    for index in (0, 299, 300, (1 << 22) - 1):
        p = tree.path(index)
        leaf = leaves[index] if index < 300 else pad
        w = cs.solve({"root": tree.root, "leaf": leaf, "bits": p.bits, "children": p.flat_children})
        assert cs.is_satisfied(w)
    with pytest.raises(UnsatisfiedError):
        p = tree.path(5)
        cs.solve({"root": tree.root, "leaf": leaves[6], "bits": p.bits, "children": p.flat_children})


def test_gadget_rejects():
    for arity, n_bits, n_kids in ((2, 2, 3), (4, 3, 8), (4, 2, 6), (3, 2, 6)):

        class Bad(Circuit):
            leaf = Secret()
            bits = Secret(count=n_bits)
            kids = Secret(count=n_kids)

            def define(self, api, arity=arity):
                merkle_root(api, self.leaf, self.bits, self.kids, arity)

        with pytest.raises(InvalidInput):
            compile(Bad)


def test_paths_enumerate_every_position():
    """Every index of a small 4-ary tree: its digits name its own child at each level."""
    leaves = list(range(100, 116))
    tree = MerkleTree(leaves, depth=2, arity=4)
    for index in range(16):
        p = tree.path(index)
        assert p.digits == [index % 4, index // 4]
        assert p.children[0][p.digits[0]] == leaves[index]
        assert p.children[1][p.digits[1]] == node_hash_native(p.children[0])
        assert list(p.siblings[0]) == [x for j, x in enumerate(p.children[0]) if j != p.digits[0]]
