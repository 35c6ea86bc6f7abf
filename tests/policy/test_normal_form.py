"""SPEC §6 normal form is enforced wherever a tree is built: hand-made policy files that were never
normalised (a rule under a subtree rule, duplicates, misplaced sentinels, non-canonical keys) are
refused at load, at a middlebox root rotation and by the builders, with an error naming the line."""

from __future__ import annotations

import pytest

from zkmb.errors import InvalidInput
from zkmb.gadgets.merkle import MerkleTree
from zkmb.policy import PolicyMismatch, load_policy, policy_from_rules, witness
from zkmb.policy.normalise import Normalised, NotNormalised, check_normalised
from zkmb.policy.policyfile import CACHE_VERSION, COMMITMENT, FORMAT_VERSION
from zkmb.policy.rules import MAX_KEY, MIN_KEY, Kind, key_to_name, name_key, subtree_bound
from zkmb.policy.tree import build_tree, leaf_hash_keys_native

DEPTH = 4


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ZKMB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def forged_root(keys: list[bytes], kinds: list[Kind]) -> int:
    """The root of a tree over ``keys`` as given (no normal-form check): what a forger computes with
    the published hashing rules, natively."""
    full = [MIN_KEY, *keys, MAX_KEY]
    lows = [MIN_KEY] + [
        subtree_bound(k) if t == Kind.SUBTREE else k for k, t in zip(keys, kinds, strict=True)
    ]
    leaves = [leaf_hash_keys_native(lows[i], full[i + 1]) for i in range(len(keys) + 1)]
    return MerkleTree(leaves, depth=DEPTH, pad_leaf=leaf_hash_keys_native(MAX_KEY, MAX_KEY)).root


def hand_made(tmp_path, rules: list[tuple[str, str]], root: int | None = None):
    """A policy file with these (kind, name) lines in this order and a root that matches them."""
    keys = [name_key(n) for _, n in rules]
    kinds = [Kind.SUBTREE if k == "subtree" else Kind.EXACT for k, _ in rules]
    root = forged_root(keys, kinds) if root is None else root
    lines = [
        f"zkmb-policy {FORMAT_VERSION}",
        f"commitment {COMMITMENT}",
        f"depth {DEPTH}",
        f"rules {len(rules)}",
    ]
    lines.append(f"root 0x{root:064x}")
    lines += [f"{k}\t{n}" for k, n in rules]
    path = tmp_path / "hand.policy"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hand_made_normalised_file_loads(tmp_path):
    """The forger's root computation is right: a normalised hand-made file loads."""
    path = hand_made(tmp_path, [("exact", "ads.example.com"), ("subtree", "evil.com")])
    policy = load_policy(path)
    assert [key_to_name(k) for k in policy.keys] == ["ads.example.com", "evil.com"]
    assert list(policy.kinds) == [Kind.EXACT, Kind.SUBTREE]


def test_exact_rule_under_subtree_refused(tmp_path):
    """The issue's attack: ``subtree evil.com`` + ``exact www.evil.com`` would make every name under
    evil.com after ``www`` provable (the exact rule's gap).  Refused, naming the line."""
    rules = [("subtree", "evil.com"), ("exact", "www.evil.com")]
    keys = [name_key(n) for _, n in rules]
    # what the unnormalised tree would let through: zzz.evil.com lies in the gap (A = K(www.evil.com), MAX)
    assert keys[1] < name_key("zzz.evil.com") < MAX_KEY
    path = hand_made(tmp_path, rules)
    with pytest.raises(
        PolicyMismatch, match=r"line 7: .*www\.evil\.com.*subtree rule.*evil\.com.*not normalised"
    ):
        load_policy(path)
    with pytest.raises(PolicyMismatch):
        load_policy(path, use_cache=False)


@pytest.mark.parametrize(
    "rules",
    [
        [("subtree", "evil.com"), ("subtree", "www.evil.com")],  # a subtree under a subtree
        [("subtree", "evil.com"), ("exact", "a.b.evil.com"), ("exact", "x.evil.com")],  # deeper
        [("exact", "ads.com"), ("exact", "ads.com")],  # duplicate
        [("exact", "evil.com"), ("subtree", "evil.com")],  # same key twice, two kinds
        [("exact", "b.com"), ("exact", "a.com")],  # unsorted
    ],
)
def test_unnormalised_files_refused(tmp_path, rules):
    with pytest.raises(PolicyMismatch, match=r"line [67]:"):
        load_policy(hand_made(tmp_path, rules))


def test_exact_rules_may_nest(tmp_path):
    """Two exact rules where one name is under the other are normal form (neither covers the other)."""
    path = hand_made(tmp_path, [("exact", "evil.com"), ("exact", "www.evil.com")])
    policy = load_policy(path)
    assert witness(policy, "zzz.evil.com") is not None  # allowed: no subtree rule covers it


def test_builders_refuse_unnormalised_rules():
    a, b = name_key("evil.com"), name_key("www.evil.com")
    with pytest.raises(NotNormalised, match="not normalised") as e:
        build_tree([a, b], [Kind.SUBTREE, Kind.EXACT], depth=DEPTH)
    assert e.value.index == 1
    with pytest.raises(NotNormalised):
        policy_from_rules(Normalised([a, b], [Kind.SUBTREE, Kind.EXACT], [None, None]), depth=DEPTH)
    build_tree([a, b], [Kind.EXACT, Kind.EXACT], depth=DEPTH)  # fine


@pytest.mark.parametrize(
    "key",
    [
        MIN_KEY,  # the minimum sentinel as a rule
        MAX_KEY,  # the maximum sentinel as a rule
        b"moc.LIVE.",  # upper case: could never match a (folded) query
        b"moc.live",  # no final dot
        b"moc..live.",  # empty label
        b".moc.",
        b"moc.li\x00ve.",  # NUL inside a key breaks the padded comparison
        b"moc.li ve.",  # space
        b"a" * 64 + b".",  # label over 63 bytes
        (b"a" * 62 + b".") * 5,  # over 254 bytes
    ],
)
def test_builders_refuse_non_canonical_keys(key):
    with pytest.raises(InvalidInput):
        check_normalised([key], [Kind.EXACT])
    with pytest.raises(InvalidInput):
        build_tree([key], [Kind.EXACT], depth=DEPTH)


def test_unknown_kind_refused():
    with pytest.raises(NotNormalised, match="kind"):
        check_normalised([name_key("a.com")], [2])


def test_rotation_to_unnormalised_policy_refused(tmp_path):
    """The middlebox's publisher refuses the file at a root rotation and keeps serving the old one."""
    from zkmb.middlebox.publish import Publisher

    good = hand_made(tmp_path, [("subtree", "evil.com")])
    (tmp_path / "keys").mkdir()
    rotated: list[int] = []
    pub = Publisher(good, tmp_path / "keys", on_rotate=rotated.append)
    root = pub.root
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = hand_made(bad_dir, [("subtree", "evil.com"), ("exact", "www.evil.com")])
    with pytest.raises(InvalidInput, match="not normalised"):
        pub.reload_policy(bad)
    assert pub.root == root and not rotated and pub.policy_bytes == good.read_bytes()


def test_stale_tree_cache_ignored(tmp_path, monkeypatch):
    """Tree caches of an older version (1: before the normal-form check; 2: a binary tree with v1 tags)
    are not trusted: the file is re-read."""
    import numpy as np

    cache = tmp_path / "cache"
    monkeypatch.setenv("ZKMB_CACHE_DIR", str(cache))
    path = hand_made(tmp_path, [("subtree", "evil.com")])
    load_policy(path)
    (npz,) = cache.glob("*.npz")
    with np.load(npz) as data:
        arrays = dict(data)
    assert int(arrays["version"][0]) == CACHE_VERSION == 3
    arrays["version"] = np.array([2], dtype=np.int64)
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    bad = hand_made(tmp_path, [("subtree", "evil.com"), ("exact", "www.evil.com")])
    npz.rename(
        cache / (npz.name.replace(npz.stem, __import__("hashlib").sha256(bad.read_bytes()).hexdigest()))
    )
    with pytest.raises(PolicyMismatch):
        load_policy(bad)
