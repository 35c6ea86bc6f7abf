"""Normalisation, the commitment (against pure-Python Poseidon and the gadgets' MerkleTree) and the
property "non-membership provable" == "not blocked" against a naive matcher."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import pack_bytes
from zkmb.gadgets.merkle import MerkleTree, merkle_root_native
from zkmb.policy.normalise import normalise
from zkmb.policy.policyfile import policy_from_rules
from zkmb.policy.rules import KEY_LEN, MAX_KEY, MIN_KEY, Kind, Rule, name_key, name_to_labels, subtree_bound
from zkmb.policy.tree import build_tree, key_hash_native, key_hashes, leaf_hash_keys_native, pack_key
from zkmb.policy.witness import Blocked, NonMembership, padded_lt, witness


def _rule(name: str, kind: Kind) -> Rule:
    return Rule(name_key(name), kind, name, "t", 1)


def test_normalise_merge_and_cover():
    rules = [
        _rule("evil.com", Kind.EXACT),
        _rule("Evil.com", Kind.SUBTREE),  # same key: subtree wins
        _rule("a.evil.com", Kind.EXACT),  # under a subtree: dropped
        _rule("b.a.evil.com", Kind.SUBTREE),  # under a subtree: dropped
        _rule("xevil.com", Kind.EXACT),  # shares a suffix, not a subdomain: kept
        _rule("com", Kind.EXACT),  # exact does not cover
        _rule("x.com", Kind.EXACT),
    ]
    n = normalise(rules)
    assert n.keys == sorted(n.keys)
    assert [(k, str(kd)) for k, kd in zip(n.keys, n.kinds, strict=True)] == [
        (b"moc.", "exact"),
        (b"moc.live.", "subtree"),
        (b"moc.livex.", "exact"),
        (b"moc.x.", "exact"),
    ]
    assert n.merged == 1 and {r.text for r in n.covered} == {"a.evil.com", "b.a.evil.com"}


def test_packing_and_key_hash():
    k = name_key("www.evil.com")
    assert pack_key(k) == pack_bytes(k.ljust(KEY_LEN, b"\0")) and len(pack_key(k)) == 9
    assert pack_key(MAX_KEY) == [(1 << 248) - 1] * 8 + [(1 << 48) - 1]
    from zkmb.algebra.fast.fields import fr_to_ints

    keys = [MIN_KEY, k, subtree_bound(k), MAX_KEY, b"z" * KEY_LEN]
    assert fr_to_ints(key_hashes(keys)) == [key_hash_native(x) for x in keys]
    with pytest.raises(InvalidInput):
        pack_key(b"a" * 255)


def test_tree_matches_native_and_merkletree():
    names = ["evil.com", "a.b.c", "xevil.com", "zzz.org"]
    kinds = [Kind.SUBTREE, Kind.EXACT, Kind.EXACT, Kind.SUBTREE]
    pairs = sorted(zip((name_key(n) for n in names), kinds, strict=True))
    keys, kd = [p[0] for p in pairs], [p[1] for p in pairs]
    tree = build_tree(keys, kd, depth=4)
    full = [MIN_KEY, *keys, MAX_KEY]
    lows = [MIN_KEY] + [subtree_bound(k) if t == Kind.SUBTREE else k for k, t in pairs]
    leaves = [leaf_hash_keys_native(lows[i], full[i + 1]) for i in range(len(keys) + 1)]
    ref = MerkleTree(leaves, depth=4, pad_leaf=leaf_hash_keys_native(MAX_KEY, MAX_KEY))
    assert tree.root == ref.root
    for i in (*range(16), 255):
        assert tree.path(i) == ref.path(i)
        assert merkle_root_native(tree.leaf(i), i, tree.path(i).siblings) == tree.root
    ref2 = MerkleTree(leaves, depth=8, pad_leaf=leaf_hash_keys_native(MAX_KEY, MAX_KEY), arity=2)
    tree2 = build_tree(keys, kd, depth=8, arity=2)
    assert tree2.root == ref2.root != tree.root
    for i in (0, 3, 255):
        assert tree2.path(i) == ref2.path(i)


def test_builder_checks_order():
    a, b = name_key("a.com"), name_key("b.com")
    with pytest.raises(InvalidInput):
        build_tree([b, a], [Kind.EXACT, Kind.EXACT], depth=3)
    with pytest.raises(InvalidInput):
        build_tree([a, a], [Kind.EXACT, Kind.EXACT], depth=3)
    with pytest.raises(InvalidInput):  # 64 rules need 65 leaves > 4^3
        build_tree(sorted(name_key(f"{i}.com") for i in range(64)), [Kind.EXACT] * 64, depth=3)
    build_tree(sorted(name_key(f"{i}.com") for i in range(63)), [Kind.EXACT] * 63, depth=3)  # fits
    with pytest.raises(InvalidInput):  # 8 rules need 9 leaves > 2^3 (binary, for comparison)
        build_tree(sorted(name_key(f"{i}.com") for i in range(8)), [Kind.EXACT] * 8, depth=3, arity=2)


# ------------------------------------------------------------------------------- property test

LABELS = ["evil", "xevil", "Evil", "a", "b", "com", "co", "x-y", "_d", "ab", "a/", "a0"]
names = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(".".join)
rule_sets = st.lists(st.tuples(names, st.sampled_from([Kind.EXACT, Kind.SUBTREE])), max_size=8)


def _naive_blocked(rules, name) -> bool:
    q = name_to_labels(name)
    for rname, kind in rules:
        r = name_to_labels(rname)
        if q == r or (kind == Kind.SUBTREE and len(q) > len(r) and q[len(q) - len(r) :] == r):
            return True
    return False


def _naive_provable(policy, key) -> bool:
    full = [MIN_KEY, *policy.keys, MAX_KEY]
    for i in range(len(policy.keys) + 1):
        low = full[i] if i == 0 or policy.kind(i - 1) == Kind.EXACT else subtree_bound(full[i])
        if padded_lt(low, key) and padded_lt(key, full[i + 1]):
            return True
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets, st.lists(names, min_size=1, max_size=6))
def test_provable_iff_not_blocked(rules, queries):
    policy = policy_from_rules(normalise(_rule(n, k) for n, k in rules), depth=4)
    for q in queries + [n for n, _ in rules]:
        blocked = _naive_blocked(rules, q)
        assert _naive_provable(policy, name_key(q)) == (not blocked)
        w = witness(policy, q)
        assert isinstance(w, Blocked) == blocked
        if isinstance(w, NonMembership):
            assert w.verify()


def test_pinned_vectors():
    """Regression values of the commitment (docs/protocol.md, "Policy commitment"): version 2, tags in
    the capacity element, 4-ary depth-11 tree.  Recomputed for issue #16 from the pure-Python reference
    (``poseidon_native`` hashing every level of the tree, independent of the numba builder), which the
    builder matches; version 1 (binary depth 22, tags as inputs) had key 0x15130C8C...,
    H_leaf(max, max) 0x0B681DF5..., empty root 0x1AE6F3E5..., evil.com root 0x17521FD8...."""
    assert (
        key_hash_native(b"moc.live.www.")
        == 0x0EB03A1FBA8380B63413530102EA67D24B6B81C2718A9707136BF2B490E1A787
    )
    assert (
        leaf_hash_keys_native(MAX_KEY, MAX_KEY)
        == 0x2DD38F3E72F4B93AA3F9A4951A93504BD07F41C6AAF05370C3685142C8110CE2
    )
    assert build_tree([], []).root == 0x2AFB295D1F1F49E42636247C6269BB357A5DACDA8EC8D02C875E0442F76C0333
    root = build_tree([b"moc.live."], [Kind.SUBTREE]).root
    assert root == 0x046EDDC065EAA34EF8DC028A0B660EF87C45E980CD5F42020C1C30F534209936


def test_binary_and_4ary_roots_differ():
    """The arity is bound into the node tag (SPEC §6): the same rules under the other shape give
    another root, and a 4-ary path does not verify against the binary root."""
    keys = sorted(name_key(n) for n in ("evil.com", "ads.example.org", "tracker.net"))
    kinds = [Kind.EXACT] * 3
    t4, t2 = build_tree(keys, kinds, depth=4), build_tree(keys, kinds, depth=8, arity=2)
    assert t4.capacity == t2.capacity == 256 and t4.root != t2.root
    for i in range(4):
        assert t4.leaf(i) == t2.leaf(i)  # same leaves
        p = t4.path(i)
        assert merkle_root_native(t4.leaf(i), i, p.siblings, 4) == t4.root != t2.root
