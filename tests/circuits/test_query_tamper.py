"""Statement Q (SPEC §5): cheating provers against the framing, header, OPT and policy constraints.

test_query.py changes the *inputs* (a forced assignment that the honest solver cannot satisfy).  Here
the inputs stay and the prover cheats in the witness: it forces the internal wires it wants (a hint
such as the one-hot of ``L - 1``, the inverse behind ``is_zero(RDLEN)``, a first-difference selector,
a decomposition bit) and recomputes everything else from them (:func:`~tests.gadgets.tamper.solve_pinned`),
so the only constraints left violated are the ones that stop that cheat; the tests name them.

Wires are found by scope and constraint shape (one-hot rows, ``is_zero`` row pairs, xor squares),
never by index, so the tests survive a reshaped policy part.  Only witnesses are built (no keys).
"""

from __future__ import annotations

import random

import dns.message
import dns.rdatatype
import pytest
from zkmb.circuits.query import query_circuit
from zkmb.circuits.query_witness import parse_query_native, query_assignment, query_relation_native

from zkmb.algebra.params import R
from zkmb.gadgets.merkle import node_hash_native
from zkmb.policy import Blocked, Kind, witness
from zkmb.policy.rules import name_key
from zkmb.r1cs import UnsatisfiedError

from ..gadgets.tamper import (
    assert_fails_in,
    assert_fails_under,
    bump,
    is_zero_wires,
    one_hot_groups,
    product_wires,
    scope_rows,
    scopes_under,
    solve_pinned,
    violated_rows,
    violated_scopes,
)
from .test_query import RULES, encrypt, forced, inner, make_policy, pads_of, query

SIZE = 64
N = 5  # the record number


@pytest.fixture(scope="module")
def policy():
    return make_policy(RULES)


@pytest.fixture(scope="module")
def conn():
    rng = random.Random(18)
    return rng.randbytes(32), rng.randbytes(12)


@pytest.fixture(scope="module")
def cs():
    return query_circuit(SIZE)


def honest(conn, policy, plain: bytes):
    """The client's assignment of an allowed record and its (satisfying) witness."""
    qa = query_assignment(pads_of(conn, N), encrypt(conn, N, plain), policy, size=SIZE)
    query_relation_native(SIZE, qa.assignment)
    w = query_circuit(SIZE).solve(qa.assignment)
    return qa.assignment, w


def bad_record(conn, policy, plain: bytes, name: str = "example.com") -> dict:
    """The assignment of an unprovable record (with the policy gap that does hold ``name``)."""
    qa = forced(conn, policy, plain, witness(policy, name).index, SIZE, n=N)
    with pytest.raises(UnsatisfiedError):
        query_circuit(SIZE).solve(qa.assignment)
    return qa.assignment


def plaintext_bits(cs) -> list[list[int]]:
    """The wires of P's bits, P[i][k] = bit k of byte i: the xor squares ``(c - q)^2`` of scope plaintext."""
    bits = [next(iter(c)) for _, a, b, c in scope_rows(cs, "plaintext") if a == b and len(a) == 2]
    assert len(bits) == 8 * SIZE
    return [bits[8 * i : 8 * i + 8] for i in range(SIZE)]


def byte_values(w, bits) -> bytes:
    return bytes(sum(w.value(b) << k for k, b in enumerate(byte)) for byte in bits)


def pins_for_byte(bits, i: int, value: int) -> dict[int, int]:
    return {b: (value >> k) & 1 for k, b in enumerate(bits[i])}


PLAIN = inner(query("example.com", qid=0x1717))  # P[2] = P[3] = 0x17 (the DNS ID)


def test_plaintext_bits_located(cs, conn, policy):
    a, w = honest(conn, policy, PLAIN)
    assert byte_values(w, plaintext_bits(cs))[: len(PLAIN)] == PLAIN


# ------------------------------------------------------------------------------------------ framing


def framing_one_hot(cs) -> list[int]:
    (f,) = one_hot_groups(cs, "framing")  # f_i = [i == L - 1]
    assert len(f) == SIZE
    return f


def test_framing_one_hot_moved_to_another_0x17(cs, conn, policy):
    """A handshake record (inner type 0x16) with a 0x17 at P[2]: the cheater points the one-hot of
    ``L - 1`` at P[2], so ``P[E] = 0x17`` reads 0x17; only ``sum i f_i = L - 1`` fails."""
    plain = inner(query("example.com", qid=0x1717), content_type=0x16)
    a = bad_record(conn, policy, plain)
    f = framing_one_hot(cs)
    e = len(plain) - 1
    w = cs.solve(a, check=False)
    assert w.value(f[e]) == 1
    assert violated_scopes(cs, w) == {"framing": 1}  # the honest selector reads 0x16
    cheat = solve_pinned(cs, a, {x: int(i == 2) for i, x in enumerate(f)})
    bad = violated_rows(cs, cheat)
    assert len(bad) == 1 and cs.scope_of(bad[0]) == "framing"
    assert cs.A.row(bad[0])[f[2]] == 2  # the row sum i f_i = L - 1


def _solve3(m: list[list[int]], v: list[int]) -> list[int]:
    """x with m x = v over Fr (Cramer's rule)."""

    def det(a):
        return (
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        ) % R

    d = pow(det(m), -1, R)
    return [
        det([[v[r] if c == k else m[r][c] for c in range(3)] for r in range(3)]) * d % R for k in range(3)
    ]


def test_framing_non_boolean_selector(cs, conn, policy):
    """The same handshake record with a "one-hot" spread over P[E], P[2] and P[8] with field weights
    that keep ``sum f = 1``, ``sum i f_i = E`` and make ``sum f_i P[i] = 0x17``: only the booleanity
    of the three entries fails."""
    plain = inner(query("example.com", qid=0x1200), content_type=0x16)
    a = bad_record(conn, policy, plain)
    f = framing_one_hot(cs)
    e, pos = len(plain) - 1, (len(plain) - 1, 2, 8)
    weights = _solve3([[1, 1, 1], list(pos), [plain[i] for i in pos]], [1, e, 0x17])
    assert all(x not in (0, 1) for x in weights)
    cheat = solve_pinned(cs, a, {f[i]: x for i, x in zip(pos, weights, strict=True)})
    bad = violated_rows(cs, cheat)
    assert len(bad) == 3 and {cs.scope_of(i) for i in bad} == {"framing"}
    # f_i * (f_i - 1) = 0 for the three entries
    assert [cs.A.row(i) for i in bad] == [{f[i]: 1} for i in sorted(pos)]
    assert [cs.B.row(i) for i in bad] == [{0: R - 1, f[i]: 1} for i in sorted(pos)]


def test_framing_products_tampered(cs, conn, policy):
    a, w = honest(conn, policy, PLAIN)
    f = framing_one_hot(cs)
    prods = product_wires(cs, "framing")  # f_i * P[i]
    assert len(prods) == SIZE
    e = a["L"] - 1
    assert w.value(f[e]) == 1 and w.value(prods[e]) == 0x17
    for wire in (prods[e], prods[2], prods[0]):
        assert_fails_in(cs, bump(w, wire), "framing")
    assert_fails_in(cs, w.replace(f[e], 0), "framing")
    # the one-hot moved to the other 0x17 of an honest record: in place, and with the rest recomputed
    assert_fails_in(cs, w.replace(f[e], 0).replace(f[2], 1), "framing")
    cheat = solve_pinned(cs, a, {x: int(i == 2) for i, x in enumerate(f)})
    assert violated_scopes(cs, cheat) == {"framing": 1}


# ------------------------------------------------------------------------------------------ header


@pytest.mark.parametrize(
    ("what", "byte", "flip"),
    [
        ("QR = 1 (a response)", 4, 0x80),
        ("OPCODE = 2", 4, 0x10),
        ("QDCOUNT = 2", 7, 0x03),
        ("ANCOUNT = 1", 9, 0x01),
        ("NSCOUNT = 256", 10, 0x01),
        ("ARCOUNT = 2", 13, 0x02),
        ("ARCOUNT = 256", 12, 0x01),
    ],
)
def test_header_fields_forged(cs, conn, policy, what, byte, flip):
    """The header's 4 constraints read P's bits (it allocates no wires of its own): the cheater forges
    the plaintext bits of one field and recomputes the rest; besides the xors of the forged bits, the
    header constraint of that field fails, and nothing else."""
    a, w = honest(conn, policy, PLAIN)
    bits = plaintext_bits(cs)
    forged = PLAIN[byte] ^ flip
    cheat = solve_pinned(cs, a, pins_for_byte(bits, byte, forged))
    assert byte_values(cheat, bits)[byte] == forged
    assert violated_scopes(cs, cheat) == {"plaintext": flip.bit_count(), "header": 1}, what


# ------------------------------------------------------------------------------------------ opt


PADDED = query("example.com", pad_to=SIZE)  # a message with an OPT record and a Padding option (L = 64)


def rdlen_is_zero(cs):
    """``(m, t, rdlen)`` of the ``is_zero(RDLEN)`` in scope opt: m the inverse hint, 1 - t the flag."""
    (z,) = is_zero_wires(cs, "opt")
    assert len(z[2]) == 16  # RDLEN, two bytes of the decomposed OPT fields
    return z


def test_rdlen_is_zero_hint_forged(cs, conn, policy):
    """Padding content that is not zero, hidden by claiming RDLEN = 0: the cheater sets the inverse
    hint m to 0, so t = RDLEN * m = 0, ``is_zero = 1`` and the Padding checks are switched off;
    ``RDLEN * (1 - t) = 0`` is the one constraint that fails."""
    m, t, rdlen = rdlen_is_zero(cs)
    _, w = honest(conn, policy, inner(PADDED))
    assert parse_query_native(inner(PADDED)).opt and w.value(t) == 1
    msg = bytearray(PADDED)
    msg[-1] = 1  # the last padding byte
    a = bad_record(conn, policy, inner(bytes(msg)))
    w = cs.solve(a, check=False)
    assert w.value(t) == 1 and w.value(m) != 0
    assert set(violated_scopes(cs, w)) == {"opt"}  # the content check, honestly
    cheat = solve_pinned(cs, a, {m: 0})
    assert cheat.value(t) == 0
    bad = violated_rows(cs, cheat)
    assert len(bad) == 1 and cs.scope_of(bad[0]) == "opt"
    assert cs.B.row(bad[0]) == {0: 1, t: R - 1} and cs.A.row(bad[0]) == rdlen  # RDLEN * (1 - t) = 0
    # the zero flag forced directly (m honest) breaks the product row as well
    assert_fails_in(cs, solve_pinned(cs, a, {t: 0}), "opt")
    for guess in (1, R - 1, 12345):  # no other inverse gives t = 0 either
        assert "opt" in violated_scopes(cs, solve_pinned(cs, a, {m: guess}))


def test_rdlen_zero_helper_is_free_and_flag_is_not(cs, conn, policy):
    """EDNS without options (RDLEN = 0): the inverse hint m is unconstrained (0 * m = t forces t = 0
    whatever m is: harmless, the flag cannot change); forcing t = 1 ("RDLEN != 0") fails in opt."""
    q = dns.message.make_query("example.com", dns.rdatatype.AAAA, use_edns=0)
    a, w = honest(conn, policy, inner(q.to_wire()))
    m, t, _ = rdlen_is_zero(cs)
    assert w.value(t) == 0
    assert cs.is_satisfied(w.replace(m, 12345))
    assert_fails_in(cs, w.replace(t, 1), "opt")
    assert_fails_in(cs, solve_pinned(cs, a, {t: 1}), "opt")


def test_opt_rdlen_bits_forged(cs, conn, policy):
    """RDLEN one short of the end of the message: the cheater forges the decomposition bits of the
    OPT fields so that RDLEN reads one more (then ``E = q + 11 + RDLEN`` and the option length agree);
    the decomposition's recomposition is the one constraint that fails."""
    msg = bytearray(PADDED)
    q = 12 + 13 + 4  # the OPT record's offset in the message
    msg[q + 10] -= 1
    a = bad_record(conn, policy, inner(bytes(msg)))
    _, _, rdlen = rdlen_is_zero(cs)
    bits = sorted(rdlen, key=rdlen.get)  # RDLEN = sum 2^i bits[i]
    w = cs.solve(a, check=False)
    claimed = sum(w.value(b) << i for i, b in enumerate(bits)) + 1
    assert claimed == len(msg) - q - 11
    cheat = solve_pinned(cs, a, {b: (claimed >> i) & 1 for i, b in enumerate(bits)})
    bad = violated_rows(cs, cheat)
    assert len(bad) == 1 and cs.scope_of(bad[0]) == "opt"
    assert set(bits) <= set(cs.A.row(bad[0]))  # the recomposition of the 72 OPT field bits


def test_arcount_bit_forged(cs, conn, policy):
    """ARCOUNT = 1 forged in the plaintext of a query without an OPT record: opt rejects it."""
    a, w = honest(conn, policy, PLAIN)
    bits = plaintext_bits(cs)
    cheat = solve_pinned(cs, a, {bits[13][0]: 1})
    scopes = violated_scopes(cs, cheat)
    assert scopes.pop("plaintext") == 1 and set(scopes) == {"opt"}


# ------------------------------------------------------------------------------------------ policy


def order_selectors(cs) -> list[list[int]]:
    """The first-difference one-hots of ``low < key`` and ``key < high`` (9 packed key elements each)."""
    groups = [
        g
        for s in scopes_under(cs, "policy")
        if s.rsplit("/", 1)[-1] == "less_packed"
        for g in one_hot_groups(cs, s)
    ]
    assert len(groups) == 2 and all(len(g) == 9 for g in groups)
    return groups


@pytest.mark.parametrize("name", ["evil.com", "x.ads.example.org"])
def test_policy_blocked_name_no_selector(cs, conn, policy, name):
    """A blocked name with either neighbouring gap of its rule: whichever first-difference index the
    cheater picks for either comparison (everything else recomputed), the system fails in policy."""
    plain = inner(query(name))
    b = witness(policy, name)
    assert isinstance(b, Blocked)
    rule_key = b.key if b.kind == Kind.EXACT else name_key(b.rule_name)
    idx = list(policy.keys).index(rule_key)  # gap idx ends at the rule, gap idx + 1 starts at it
    choices = [[int(i == j) for i in range(9)] for j in range(9)] + [[0] * 9]
    for gap in (idx, idx + 1):
        a = forced(conn, policy, plain, gap, SIZE, n=N).assignment
        w = cs.solve(a, check=False)
        assert_fails_under(cs, w, "policy")
        for g in order_selectors(cs):
            for s in choices:
                cheat = solve_pinned(cs, a, dict(zip(g, s, strict=True)))
                assert_fails_under(cs, cheat, "policy")


def test_policy_allowed_name_other_selector(cs, conn, policy):
    """An allowed name with its own gap: another first-difference index (the rest recomputed) fails
    inside the policy part."""
    a, w = honest(conn, policy, PLAIN)
    for g in order_selectors(cs):
        honest_j = next(j for j, s in enumerate(g) if w.value(s))
        for j in {0, 4, 8} - {honest_j}:
            cheat = solve_pinned(cs, a, {s: int(i == j) for i, s in enumerate(g)})
            assert set(violated_scopes(cs, cheat)) <= set(scopes_under(cs, "policy"))
            assert_fails_under(cs, cheat, "policy")


def test_policy_hash_and_path_wires(cs, conn, policy):
    """A round wire of each Poseidon under policy (key hashes, leaf, Merkle nodes), changed in place,
    fails where it is computed; a path direction changed (an index bit forged, everything after it
    recomputed) fails in policy: the index's decomposition and the 4:1 mux equality ``b_1 (v - u) =
    cur - u`` of that level, so no digit can point at another child."""
    a, w = honest(conn, policy, PLAIN)
    hashed = [s for s in scopes_under(cs, "policy") if "poseidon" in s and product_wires(cs, s)]
    assert len(hashed) >= 4
    for s in hashed:
        wires = product_wires(cs, s)
        for wire in (wires[0], wires[-1]):
            assert_fails_in(cs, bump(w, wire), s)
    index = cs.inputs["index"].first_wire
    rows = scope_rows(cs, "policy", under=True)
    ((index_row, recomposed),) = [(i, a_) for i, a_, b, c in rows if c == {index: 1} and b == {0: 1}]
    bits = sorted(recomposed, key=recomposed.get)  # index = sum 2^i bits[i]
    assert len(bits) == 22
    mux = mux_rows(cs, bits)
    for k in (0, 1, 2, 9, len(bits) - 1):
        cheat = solve_pinned(cs, a, {bits[k]: 1 - w.value(bits[k])})
        assert violated_rows(cs, cheat) == [index_row, mux[k // 2]], k


def mux_rows(cs, bits: list[int]) -> list[int]:
    """Per Merkle level, the row ``b_1 (v - u) = cur - u`` (A is the level's high digit bit alone)."""
    merkle = scope_rows(cs, "policy/merkle")
    out = []
    for level in range(len(bits) // 2):
        (row,) = [i for i, a_, _, _ in merkle if a_ == {bits[2 * level + 1]: 1}]
        out.append(row)
    return out


def test_policy_tampered_children(cs, conn, policy):
    """Each level's children (a secret input), forged by a cheater that rehashes the path above (so
    every later level is consistent): a sibling changed breaks only the root equality; the path's own
    child changed breaks that level's mux equality ``b_1 (v - u) = cur - u`` and the root equality."""
    a, w = honest(conn, policy, PLAIN)
    root = cs.inputs["root"].first_wire
    rows = scope_rows(cs, "policy", under=True)
    (root_row,) = [i for i, a_, _, _ in rows if root in a_]
    ((_, recomposed),) = [
        (i, a_) for i, a_, b, c in rows if c == {cs.inputs["index"].first_wire: 1} and b == {0: 1}
    ]
    mux = mux_rows(cs, sorted(recomposed, key=recomposed.get))
    index, kids = a["index"], list(a["children"])
    digits = [(index >> (2 * h)) & 3 for h in range(11)]
    for level in (0, 5, 10):
        for pos in range(4):
            forged = kids.copy()
            forged[4 * level + pos] = (forged[4 * level + pos] + 1) % R
            cur = node_hash_native(forged[4 * level : 4 * level + 4])
            for h in range(level + 1, 11):  # rehash above: the cheater's path is consistent there
                forged[4 * h + digits[h]] = cur
                cur = node_hash_native(forged[4 * h : 4 * h + 4])
            cheat = cs.solve({**a, "children": forged}, check=False)
            want = [mux[level], root_row] if pos == digits[level] else [root_row]
            assert violated_rows(cs, cheat) == want, (level, pos)
            # with the rehashed root as the public root (another tree: the middlebox never supplies it)
            # a forged sibling is a valid path; a forged own child still is not
            cheat = cs.solve({**a, "children": forged, "root": cur}, check=False)
            assert violated_rows(cs, cheat) == ([mux[level]] if pos == digits[level] else [])
