"""Statement Q (SPEC §5): realistic ChaCha20 records against a small committed blocklist.

Every negative case is checked twice: the client refuses to build the witness (naming the reason or
the blocking rule), and a *forced* assignment (the record's real pads, a neighbouring gap of the
tree) leaves the constraint system unsatisfied.
"""

from __future__ import annotations

import os
import secrets

import dns.message
import dns.rdatatype
import pytest
from zkmb.circuits.commit import comm_pad_native
from zkmb.circuits.public import PublicInputRejected
from zkmb.circuits.query import SIZE_CLASSES, query_circuit, query_public_inputs
from zkmb.circuits.query_witness import (
    QueryBlocked,
    assemble_query_assignment,
    parse_query_native,
    query_assignment,
    query_relation_native,
)
from zkmb.circuits.witness import WitnessError

from zkmb.dns.padding import pad_to_length
from zkmb.gadgets.chacha20 import chacha20_keystream_native, tls_nonce_native
from zkmb.gadgets.registry import builders
from zkmb.policy import Blocked, Kind, Rule, normalise, policy_from_rules, witness
from zkmb.policy.rules import MAX_KEY, MIN_KEY, subtree_bound
from zkmb.r1cs import UnsatisfiedError

Q_COUNTS = {64: 8_140, 128: 11_714, 192: 15_420, 320: 21_677, 448: 25_739}
"""Before issue #16 (binary depth-22 tree, tags as inputs): 10,655 / 14,250 / 17,977 / 24,276 / 28,380."""

RULES = [
    ("evil.com", Kind.EXACT),
    ("ads.example.org", Kind.SUBTREE),
    ("tracker.net", Kind.SUBTREE),
    ("bad.example.com", Kind.EXACT),
    ("zzz.test", Kind.EXACT),
]


def make_policy(rules):
    from zkmb.policy.rules import name_key

    rs = [Rule(name_key(n), k, n, "test-rules", i + 1) for i, (n, k) in enumerate(rules)]
    return policy_from_rules(normalise(rs))


@pytest.fixture(scope="module")
def policy():
    return make_policy(RULES)


@pytest.fixture(scope="module")
def conn():
    """A random ChaCha20 client key/IV (the record keystream is built natively, as PAD proves it)."""
    return os.urandom(32), os.urandom(12)


def pads_of(conn, n: int, k: int = 7) -> bytes:
    """pad_{n,0..k-1}: ChaCha20 blocks 1..k of record n (block 0 is the Poly1305 key)."""
    key, iv = conn
    return chacha20_keystream_native(key, tls_nonce_native(iv, n), 1, 64 * k)


def inner(msg: bytes, content_type: int = 0x17, tls_padding: int = 0) -> bytes:
    """The TLSInnerPlaintext of one DoT message: length prefix, message, content type, zeros."""
    return len(msg).to_bytes(2, "big") + msg + bytes([content_type]) + bytes(tls_padding)


def query(name: str, *, pad_to: int | None = None, qid: int = 0x1234) -> bytes:
    q = dns.message.make_query(name, dns.rdatatype.A, use_edns=False)
    q.id = qid
    if pad_to is not None:
        return pad_to_length(q, pad_to - 3)  # L = M + 3
    return q.to_wire()


def encrypt(conn, n: int, plain: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(plain, pads_of(conn, n), strict=False))


def prove_ok(conn, policy, plain: bytes, n: int = 5, size: int | None = None):
    """Build, check natively, solve: returns (assignment, witness)."""
    qa = query_assignment(pads_of(conn, n), encrypt(conn, n, plain), policy, size=size)
    query_relation_native(qa.size, qa.assignment)
    cs = query_circuit(qa.size)
    w = cs.solve(qa.assignment)
    assert cs.is_satisfied(w)
    assert w.public_inputs() == qa.public
    return qa, w


def label_name(total_wire: int, tld: str = "com") -> str:
    """A name of exactly ``total_wire`` wire octets ending in ``tld`` (labels <= 63 bytes)."""
    rest = total_wire - (len(tld) + 2)  # tld label + root
    labels = []
    while rest > 0:
        size = min(63, rest - 1)
        if rest - (size + 1) == 1:  # never leave a single octet (a label needs >= 2)
            size -= 1
        labels.append(("a" * size) if len(labels) % 2 else ("b" * size))
        rest -= size + 1
    return ".".join([*labels, tld])


def forced(conn, policy, plain: bytes, gap_index: int, size: int, n: int = 5):
    """An assignment using gap ``gap_index`` of the tree regardless of the relation."""
    keys = list(policy.keys)
    low_rule = gap_index - 1
    if gap_index == 0:
        low = MIN_KEY
    elif gap_index > len(keys):  # an unused leaf H(max, max)
        low = MAX_KEY
    else:
        k = keys[low_rule]
        low = subtree_bound(k) if policy.kind(low_rule) == Kind.SUBTREE else k
    high = keys[gap_index] if gap_index < len(keys) else MAX_KEY
    path = policy.tree.path(gap_index)
    blinders = [secrets.randbelow(2**200) for _ in range(size // 64)]
    return assemble_query_assignment(
        size,
        pads_of(conn, n),
        blinders,
        encrypt(conn, n, plain),
        low,
        high,
        path,
        policy.root,
    )


def assert_unprovable(conn, policy, plain: bytes, size: int, expect: str, name: str = "example.com"):
    """The client refuses, the native twin refuses, and a forced assignment (with the gap that does
    hold ``name``, so the policy part is fine) is unsatisfied, first in scope ``expect``."""
    with pytest.raises(WitnessError):
        query_assignment(pads_of(conn, 5), encrypt(conn, 5, plain), policy, size=size)
    nm = witness(policy, name)
    qa = forced(conn, policy, plain, nm.index, size)
    with pytest.raises(WitnessError):
        query_relation_native(size, qa.assignment)
    cs = query_circuit(size)
    with pytest.raises(UnsatisfiedError):
        cs.solve(qa.assignment)
    where = cs.which_is_unsatisfied(cs.solve(qa.assignment, check=False))
    assert expect in where, where


# ------------------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize("size", SIZE_CLASSES)
def test_constraint_counts(size):
    cs = query_circuit(size)
    assert cs.n_constraints == Q_COUNTS[size]
    assert cs.n_public == size // 64 + -(-size // 31) + 2
    assert Q_COUNTS[64] <= 16_000 and Q_COUNTS[192] <= 24_000
    if size == 64:  # issue #16: Q-64 fits a 2^13 QAP domain (it needed 2^14 before)
        from zkmb.groth16.r1cs_to_qap import domain_size_for

        assert domain_size_for(cs.n_constraints, cs.n_public) == 1 << 13


def test_constraint_breakdown_64():
    from tests.gadgets.tamper import count_under

    cs = query_circuit(64)
    scopes = ("pads", "plaintext", "framing", "header", "qname", "opt", "policy")
    got = {s: count_under(cs, s) for s in scopes}
    assert got == {
        "pads": 813,
        "plaintext": 1027,
        "framing": 132,
        "header": 4,
        "qname": 1037,
        "opt": 161,
        "policy": 4966,
    }
    assert sum(got.values()) == cs.n_constraints


def test_registered():
    table = builders()
    for b in (64, 192, 448):
        assert table[f"q_{b}"]().n_constraints == Q_COUNTS[b]


# ------------------------------------------------------------------------------------------ allowed


@pytest.mark.parametrize("name", ["example.com", "a.b", "good.evil.com", "example.org", "ads.example.org.uk"])
def test_allowed_short(conn, policy, name):
    plain = inner(query(name))
    qa, _ = prove_ok(conn, policy, plain)
    assert qa.size == 64
    assert qa.nonmembership.name == name


def test_allowed_longest_class_64(conn, policy):
    name = label_name(64 - 19)  # L = 2 + 12 + wire + 4 + 1 = 64
    plain = inner(query(name))
    assert len(plain) == 64
    qa, _ = prove_ok(conn, policy, plain)
    assert qa.size == 64


@pytest.mark.parametrize("name", ["x.org", "example.com"])
def test_allowed_edns_padding_to_class_64(conn, policy, name):
    plain = inner(query(name, pad_to=64))
    assert len(plain) == 64 and parse_query_native(plain).opt
    prove_ok(conn, policy, plain)


def test_edns_without_padding_option(conn, policy):
    q = dns.message.make_query("example.com", dns.rdatatype.AAAA, use_edns=0)
    plain = inner(q.to_wire())
    assert parse_query_native(plain).opt
    prove_ok(conn, policy, plain)


def test_allowed_class_192(conn, policy):
    name = label_name(150)
    plain = inner(query(name))
    qa, _ = prove_ok(conn, policy, plain)
    assert qa.size == 192
    qa, _ = prove_ok(conn, policy, inner(query("example.com", pad_to=192)))
    assert qa.size == 192


def test_allowed_longest_name_classes_448_320(conn, policy):
    name = label_name(255)
    plain = inner(query(name, pad_to=448))
    assert len(plain) == 448
    qa, _ = prove_ok(conn, policy, plain)
    assert qa.size == 448
    assert len(qa.nonmembership.key) == 254
    # without padding the longest name gives L = 274: class 320
    qa, _ = prove_ok(conn, policy, inner(query(name)))
    assert qa.size == 320 and qa.assignment["L"] == 274


def test_mixed_case_allowed(conn, policy):
    qa, _ = prove_ok(conn, policy, inner(query("WwW.ExAmPlE.CoM")))
    assert qa.nonmembership.key == b"moc.elpmaxe.www."


# ------------------------------------------------------------------------------------------ blocked


@pytest.mark.parametrize(
    ("name", "rule", "kind"),
    [
        ("evil.com", "evil.com", Kind.EXACT),
        ("EVIL.com", "evil.com", Kind.EXACT),
        ("ads.example.org", "ads.example.org", Kind.SUBTREE),
        ("x.y.ads.example.org", "ads.example.org", Kind.SUBTREE),
        ("Deep.Tracker.NET", "tracker.net", Kind.SUBTREE),
    ],
)
def test_blocked(conn, policy, name, rule, kind):
    plain = inner(query(name))
    with pytest.raises(QueryBlocked, match=rule) as e:
        query_assignment(pads_of(conn, 5), encrypt(conn, 5, plain), policy)
    assert e.value.blocked.rule_name == rule and e.value.blocked.kind == kind
    b = witness(policy, name)
    assert isinstance(b, Blocked)
    idx = list(policy.keys).index(b.key if kind == Kind.EXACT else b.key[: len(rule) + 1])
    cs = query_circuit(64)
    for gap in (idx, idx + 1):  # the gaps left and right of the rule
        qa = forced(conn, policy, plain, gap, 64)
        with pytest.raises(WitnessError):
            query_relation_native(64, qa.assignment)
        with pytest.raises(UnsatisfiedError):
            cs.solve(qa.assignment)
        assert "policy" in cs.which_is_unsatisfied(cs.solve(qa.assignment, check=False))


def test_sentinel_leaf_unsatisfiable(conn, policy):
    """An unused leaf H(max, max) proves nothing."""
    plain = inner(query("example.com"))
    qa = forced(conn, policy, plain, len(policy.keys) + 1, 64)
    with pytest.raises(UnsatisfiedError):
        query_circuit(64).solve(qa.assignment)


# ------------------------------------------------------------------------------------------ malformed


def test_two_messages_in_one_record(conn, policy):
    m1, m2 = query("example.com"), query("evil.com", qid=7)
    plain = len(m1).to_bytes(2, "big") + m1 + len(m2).to_bytes(2, "big") + m2 + b"\x17"
    assert_unprovable(conn, policy, plain, 64, "framing")


def test_two_messages_length_covering_both(conn, policy):
    """One DoT length spanning two messages: the second is trailing data after the question."""
    m1, m2 = query("example.com"), query("evil.com", qid=7)
    body = m1 + len(m2).to_bytes(2, "big") + m2
    assert_unprovable(conn, policy, inner(body), 64, "opt")


def test_qdcount_2(conn, policy):
    msg = bytearray(query("example.com"))
    msg[5] = 2
    msg += query("evil.com")[12:]
    assert_unprovable(conn, policy, inner(bytes(msg)), 64, "header")


@pytest.mark.parametrize(
    ("offset", "value", "scope"),
    [(2, 0x80, "header"), (2, 0x08, "header"), (2, 0x40, "header"), (7, 1, "header"), (9, 1, "header"),
     (11, 2, "header"), (10, 1, "header"), (11, 1, "opt")],
)  # fmt: skip
def test_header_fields(conn, policy, offset, value, scope):
    """QR, OPCODE, ANCOUNT, NSCOUNT, ARCOUNT = 2 or 256, ARCOUNT = 1 without an OPT record."""
    msg = bytearray(query("example.com"))
    msg[offset] |= value
    assert_unprovable(conn, policy, inner(bytes(msg)), 64, scope)


def test_compression_pointer(conn, policy):
    msg = bytearray(query("example.com"))
    # www + pointer to "example.com" (impossible in a question, but a prover could try)
    qname = b"\x03www\xc0\x0c"
    msg = bytes(msg[:12]) + qname + b"\x00\x01\x00\x01"
    assert_unprovable(conn, policy, inner(msg), 64, "qname", name="www")


@pytest.mark.parametrize("tls_padding", [1, 5])
def test_tls_padding(conn, policy, tls_padding):
    assert_unprovable(conn, policy, inner(query("example.com"), tls_padding=tls_padding), 64, "framing")


@pytest.mark.parametrize("content_type", [0x16, 0x15, 0x00])
def test_inner_content_type(conn, policy, content_type):
    assert_unprovable(conn, policy, inner(query("example.com"), content_type=content_type), 64, "framing")


def _padded(name: str, length: int) -> bytearray:
    return bytearray(query(name, pad_to=length))


@pytest.mark.parametrize("what", ["content", "code", "optlen", "rdlen", "owner", "type", "trailing"])
def test_opt_record_rules(conn, policy, what):
    msg = _padded("example.com", 64)
    q = 12 + 13 + 4  # OPT offset in the message
    if what == "content":
        msg[-1] = 1
    elif what == "code":
        msg[q + 12] = 11
    elif what == "optlen":
        msg[q + 14] -= 1
    elif what == "rdlen":
        msg[q + 10] -= 1
    elif what == "owner":
        msg[q] = 0xC0
    elif what == "type":
        msg[q + 2] = 40
    elif what == "trailing":
        msg = msg[:-2] + b"\x00"  # RDLEN reaches past the end
    assert_unprovable(conn, policy, inner(bytes(msg)), 64, "opt")


def test_bytes_after_L_do_not_matter(conn, policy):
    """Garbage in the ciphertext window past L changes nothing (the MB zero-fills it anyway)."""
    plain = inner(query("example.com"))
    qa = query_assignment(pads_of(conn, 5), encrypt(conn, 5, plain), policy)
    k = 1
    ct = list(qa.assignment["ct"])
    assert ct[-1] == 0  # zero-filled past L = 32
    ct[-1] = 0x1234
    a = {**qa.assignment, "ct": ct}
    assert query_circuit(64).is_satisfied(query_circuit(64).solve(a))
    assert qa.public[k + 2] == 0


def test_public_input_builder_rules(conn, policy):
    plain = inner(query("example.com"))
    ct = encrypt(conn, 5, plain)
    with pytest.raises(PublicInputRejected):
        query_public_inputs([1, 2], ct, len(ct), 3, 128)  # not the smallest class
    with pytest.raises(PublicInputRejected):
        query_public_inputs([1], ct, len(ct) + 1, 3, 64)
    with pytest.raises(PublicInputRejected):
        query_public_inputs([1], ct[:10], 10, 3, 64)
    with pytest.raises(PublicInputRejected):
        query_public_inputs([1, 2], ct, len(ct), 3, 64)


def test_L_mismatch_unsatisfiable(conn, policy):
    qa = query_assignment(pads_of(conn, 5), encrypt(conn, 5, inner(query("example.com"))), policy)
    cs = query_circuit(64)
    for bad in (qa.assignment["L"] + 1, qa.assignment["L"] - 1, 65, 0):
        with pytest.raises(UnsatisfiedError):
            cs.solve({**qa.assignment, "L": bad})


# ------------------------------------------------------------------------------------------ Groth16


@pytest.fixture(scope="module")
def keys64():
    from zkmb.groth16.setup import setup

    cs = query_circuit(64)
    return cs, *setup(cs)


def test_groth16_roundtrip_stale_root_and_foreign_pad(conn, policy, keys64):
    from zkmb.groth16.prover import prove
    from zkmb.groth16.verifier import verify

    cs, pk, vk = keys64
    plain = inner(query("example.com"))
    qa = query_assignment(pads_of(conn, 5), encrypt(conn, 5, plain), policy)
    proof = prove(pk, cs.solve(qa.assignment), cs=cs)
    assert verify(vk, qa.public, proof)
    # a stale root: the MB rotated to a policy with one more rule
    new = make_policy([*RULES, ("another.example", Kind.EXACT)])
    assert new.root != policy.root
    assert not verify(vk, [*qa.public[:-1], new.root], proof)
    # the pad commitment of another record (n = 6)
    other = comm_pad_native(pads_of(conn, 6, 1), secrets.randbelow(2**200))
    assert not verify(vk, [other, *qa.public[1:]], proof)
    # the client cannot prove against the new root with the old witness
    with pytest.raises(UnsatisfiedError):
        cs.solve({**qa.assignment, "root": new.root})


# Q setup/prove/verify timings per size class: `zkmb bench statements` (an opt-in timing test here was a
# skip that CI's ZKMB_REQUIRE_ALL could not tell from a missing requirement).


# ------------------------------------------------------------------------------------------ real list


def test_shared_list(conn):
    """The whole shared list (146k exact + 399 subtree rules): an allowed name proves, blocked ones
    name their rule, and a neighbouring gap does not help."""
    from zkmb.policy import build_policy

    from ..conftest import shared_data

    SHARED = shared_data("blocklists")

    real, _, _ = build_policy(
        [
            (os.path.join(SHARED, "domains.txt"), "plain"),
            (os.path.join(SHARED, "subtree-rules.txt"), "subtree"),
        ]
    )
    prove_ok(conn, real, inner(query("www.example.com", pad_to=64)))
    for name, rule in (
        ("Mail.YopMail.com", "yopmail.com"),
        ("0-00.usa.cc", "usa.cc"),
        ("10mail.org", "10mail.org"),
    ):
        with pytest.raises(QueryBlocked, match=rule):
            query_assignment(pads_of(conn, 5), encrypt(conn, 5, inner(query(name))), real)
    idx = list(real.keys).index(b"moc.liampoy.")
    qa = forced(conn, real, inner(query("mail.yopmail.com")), idx + 1, 64)
    with pytest.raises(UnsatisfiedError):
        query_circuit(64).solve(qa.assignment)


# ------------------------------------------------------------------------------------------ tampering


def test_tampered_inputs_unsatisfied(conn, policy):
    """Each secret input changed by one bit (a pad element, a blinder, a key element, the index, a
    Merkle child) and each public one (a ct element, comm_pad, root, L) breaks the system."""
    qa = query_assignment(pads_of(conn, 5), encrypt(conn, 5, inner(query("example.com", pad_to=64))), policy)
    cs = query_circuit(64)
    base = qa.assignment
    for name in ("pad", "pad_blinder", "low", "high", "children", "ct", "comm_pad"):
        for i in range(len(base[name])):
            vals = list(base[name])
            # ct: flip the first byte of the chunk (P[0], the OPT owner, the padding content);
            # its last byte may be a free field (QCLASS, TTL)
            vals[i] ^= (1 << (8 * min(31, 64 - 31 * i) - 1)) if name == "ct" else 1
            assert not cs.is_satisfied(cs.solve({**base, name: vals}, check=False)), (name, i)
    for name in ("index", "root", "L"):
        assert not cs.is_satisfied(cs.solve({**base, name: base[name] ^ 1}, check=False)), name
