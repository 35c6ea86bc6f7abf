"""Policy files (write, load, refuse), the tree cache, witnesses on the shared lists, and the CLI."""

from __future__ import annotations

import os

import pytest

from zkmb.cli import main
from zkmb.policy import Blocked, NonMembership, PolicyMismatch, build_policy, load_policy, witness
from zkmb.policy.rules import InvalidName, Kind, name_key
from zkmb.policy.witness import check_name

from ..conftest import shared_data

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXTURES = [os.path.join(DATA, f) for f in ("hosts.txt", "plain.txt", "adguard.txt", "policy.rpz")]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ZKMB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def shared_policy(tmp_path_factory):
    """The whole shared list (domains exact, subtree-rules subtree), built once and written."""
    shared = shared_data("blocklists")
    domains, subtree = os.path.join(shared, "domains.txt"), os.path.join(shared, "subtree-rules.txt")
    policy, report, norm = build_policy([(domains, "plain"), (subtree, "subtree")])
    path = tmp_path_factory.mktemp("shared") / "shared.policy"
    policy.write(path)
    return policy, report, norm, path


def test_shared_list_builds(shared_policy):
    policy, report, norm, _ = shared_policy
    assert report.ok and len(report.rules) == 146_706 + 399
    assert norm.merged == len(report.rules) - len({r.key for r in report.rules})
    assert norm.merged >= 399  # every subtree rule is also in domains.txt (IDNs add a few more)
    assert len(policy) == len(norm) and len(norm) + norm.merged + len(norm.covered) == len(report.rules)
    assert int((policy.kinds == Kind.SUBTREE).sum()) == 399 - sum(
        1 for r in norm.covered if r.kind == Kind.SUBTREE
    )


def test_shared_list_lookups(shared_policy):
    policy, _, _, path = shared_policy
    w = witness(policy, "0-180.com")
    assert isinstance(w, Blocked) and w.kind == Kind.EXACT and w.provenance.line == 2
    w = witness(policy, "deep.sub.10mail.org")  # under a subtree rule
    assert isinstance(w, Blocked) and w.rule_name == "10mail.org" and w.kind == Kind.SUBTREE
    assert "subtree-rules.txt" in w.provenance.source
    assert isinstance(witness(policy, "gmaıl.net"), Blocked)  # IDN in the list, as A-label
    assert isinstance(witness(policy, "xn--gmal-nza.net"), Blocked)
    for name in ("gmail.com", "www.0-180.com", "x10mail.org", "example.org"):
        w = witness(policy, name)
        assert isinstance(w, NonMembership) and w.verify(), name
    with pytest.raises(InvalidName):
        witness(policy, "bad..name")
    loaded = load_policy(path)  # first load rebuilds and caches, second uses the cache
    cached = load_policy(path)
    assert loaded.root == cached.root == policy.root and len(cached) == len(policy)
    w = witness(cached, "www.0-180.com")
    assert isinstance(w, NonMembership) and w.verify()
    assert check_name(cached, "0-180.com").provenance.line == 2  # provenance read lazily from the file


def test_witness_tamper_fails_verify(shared_policy):
    policy = shared_policy[0]
    w = witness(policy, "gmail.com")
    assert w.verify()
    from dataclasses import replace

    assert w.path.arity == 4 and w.path.depth == 11
    for level, pos in ((3, 0), (0, 2), (10, 1)):
        kids = [list(c) for c in w.path.children]
        own = w.path.digits[level]
        kids[level][(own + 1 + pos) % 4] ^= 1  # a sibling
        assert not replace(w, path=type(w.path)(w.index, tuple(map(tuple, kids)))).verify()
    for flip in (1, 2, 3, 1 << 20):  # another position at the lowest or the top level
        assert not replace(w, index=w.index ^ flip).verify()
    assert not replace(w, key=name_key("0-180.com")).verify()  # outside the gap


@pytest.fixture
def small_policy(tmp_path):
    policy, report, _ = build_policy(FIXTURES, depth=6)
    path = tmp_path / "small.policy"
    policy.write(path)
    return policy, report, path


def test_roundtrip_without_cache(small_policy):
    policy, _, path = small_policy
    loaded = load_policy(path, use_cache=False)
    assert loaded.root == policy.root and list(loaded.keys) == list(policy.keys)
    assert (loaded.kinds == policy.kinds).all() and loaded.depth == 6
    text = path.read_text()
    assert text.startswith("zkmb-policy 2\n") and "subtree\tevil.com\t" in text
    assert "arity=4" in text.splitlines()[1]


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("root 0x", "root 0x1", 1)[: t.index("root 0x") + 5] + t[t.index("root 0x") + 6 :],
        lambda t: t.replace("exact\tads.example.com", "exact\tads.example.co", 1),
        lambda t: t.replace("subtree\tevil.com", "exact\tevil.com", 1),
        lambda t: t.replace("exact\tads.example.com", "exact\tADS.example.com", 1),
        lambda t: t.replace("rules ", "rules 1", 1),
        lambda t: t.replace("zkmb-policy 2", "zkmb-policy 1", 1),
        lambda t: t.replace("zkmb/v2", "zkmb/v1", 1),
        lambda t: t.replace("arity=4", "arity=2", 1),
        lambda t: t.replace("depth 6", "depth 7", 1),
        lambda t: t + "exact\tzzz.zzz\n",
    ],
)
def test_refuses_tampered_file(small_policy, edit, tmp_path):
    _, _, path = small_policy
    bad = tmp_path / "bad.policy"
    bad.write_text(edit(path.read_text()))
    with pytest.raises(PolicyMismatch):
        load_policy(bad)


def test_refuses_unsorted(small_policy, tmp_path):
    _, _, path = small_policy
    lines = path.read_text().splitlines()
    body = lines[5:]
    body[0], body[1] = body[1], body[0]
    bad = tmp_path / "unsorted.policy"
    bad.write_text("\n".join(lines[:5] + body) + "\n")
    with pytest.raises(PolicyMismatch):
        load_policy(bad)


def test_cli(tmp_path, capsys):
    out = tmp_path / "p.policy"
    plain = os.path.join(DATA, "plain.txt")
    rc = main(["policy", "build", f"subtree:{plain}", *FIXTURES, "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0 and out.exists()
    assert "INVALID" in captured.err and "bad..name.com" in captured.err and "UNSUPPORTED" in captured.err
    assert "31 rules from 4 file(s)" in captured.out
    assert main(["policy", "build", *FIXTURES, "--strict", "-o", str(tmp_path / "s.policy")]) == 1
    assert not (tmp_path / "s.policy").exists()
    capsys.readouterr()
    assert main(["policy", "info", str(out)]) == 0
    assert "root      0x" in capsys.readouterr().out
    assert main(["policy", "check", str(out), "example.com", "www.ads.example.com"]) == 0
    o = capsys.readouterr().out
    assert "allowed example.com" in o and "allowed www.ads.example.com" in o
    assert main(["policy", "check", str(out), "example.com", "x.y.evil.com", "Bücher.example"]) == 1
    o = capsys.readouterr().out
    assert "BLOCKED x.y.evil.com: subtree rule evil.com" in o and "adguard.txt:4" in o
    assert "BLOCKED Bücher.example" in o and "policy.rpz:10" in o
    assert main(["policy", "check", str(out), "a..b"]) == 1
    assert "UNPROVABLE" in capsys.readouterr().out
    assert main(["policy", "info", str(tmp_path / "missing")]) == 1


def test_refuses_version_1_file(tmp_path):
    """A file of the previous format (binary depth-22 tree, tags as inputs; issue #16) is refused with a
    reason, never loaded under the new shape; the same rules rebuilt make a different root."""
    old_root = 0x17521FD82BF49422D0D7498C83E1A6446F99B76E43C125ACC6CD957683DC5E53  # v1 pinned vector
    v1 = tmp_path / "v1.policy"
    v1.write_text(
        "zkmb-policy 1\ncommitment zkmb/v1 poseidon-bn254-circomlib key=P10 leaf=P3 node=P3\n"
        f"depth 22\nrules 1\nroot 0x{old_root:064x}\nsubtree\tevil.com\n"
    )
    with pytest.raises(PolicyMismatch, match="version-2"):
        load_policy(v1, cache_dir=str(tmp_path / "cache"))
    v2 = tmp_path / "v2.policy"
    v2.write_text(v1.read_text().replace("zkmb-policy 1", "zkmb-policy 2", 1))
    with pytest.raises(PolicyMismatch, match="commitment"):
        load_policy(v2, cache_dir=str(tmp_path / "cache"))
