"""circom .r1cs / .wtns: files built by hand from the iden3 format description, plus malformed variants."""

from __future__ import annotations

import struct

import pytest

from zkmb.algebra.params import P, R
from zkmb.errors import InvalidInput, ZkmbError
from zkmb.r1cs import Circuit, Public, Secret, Witness, compile, read_r1cs, read_wtns, write_r1cs, write_wtns
from zkmb.r1cs.circom import r1cs_bytes, wtns_bytes

from .util import rows

BLS_R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

# circom's multiplier (c <== a * b; c output, a and b private) plus a constraint with a constant:
# wires [one, c, a, b]; -a * b = -c and (5 + 2b) * 1 = c + 7a
MULT = [
    ({2: R - 1}, {3: 1}, {1: R - 1}),
    ({0: 5, 3: 2}, {0: 1}, {1: 1, 2: 7}),
]


def container(magic: bytes, version: int, sections: list[tuple[int, bytes]]) -> bytes:
    out = magic + struct.pack("<II", version, len(sections))
    for stype, payload in sections:
        out += struct.pack("<IQ", stype, len(payload)) + payload
    return out


def r1cs_header(n_wires=4, pub_out=1, pub_in=0, prv_in=2, n_labels=4, m=2, n8=32, prime=R) -> bytes:
    return (
        struct.pack("<I", n8)
        + prime.to_bytes(n8, "little")
        + struct.pack("<IIIIQI", n_wires, pub_out, pub_in, prv_in, n_labels, m)
    )


def lc_bytes(lc: dict[int, int], n8=32) -> bytes:
    out = struct.pack("<I", len(lc))
    for k, v in lc.items():  # insertion order: tests decide whether it is sorted
        out += struct.pack("<I", k) + v.to_bytes(n8, "little")
    return out


def raw_lc(terms: list[tuple[int, int]]) -> bytes:
    """An LC exactly as given (repeats allowed)."""
    return struct.pack("<I", len(terms)) + b"".join(
        struct.pack("<I", k) + v.to_bytes(32, "little") for k, v in terms
    )


def constraints_bytes(cons) -> bytes:
    return b"".join(lc_bytes(a) + lc_bytes(b) + lc_bytes(c) for a, b, c in cons)


def labels_bytes(labels) -> bytes:
    return b"".join(struct.pack("<Q", v) for v in labels)


def mult_r1cs(**kw) -> bytes:
    return container(
        b"r1cs",
        1,
        [(1, r1cs_header(**kw)), (2, constraints_bytes(MULT)), (3, labels_bytes([0, 1, 2, 3]))],
    )


def wtns_file(values, version=2, n8=32, prime=R, n=None) -> bytes:
    n = len(values) if n is None else n
    head = struct.pack("<I", n8) + prime.to_bytes(n8, "little") + struct.pack("<I", n)
    body = b"".join(v.to_bytes(n8, "little") for v in values)
    return container(b"wtns", version, [(1, head), (2, body)])


def mult_witness(a: int, b: int) -> list[int]:
    """A satisfying witness needs a*b = c and 5 + 2b = c + 7a."""
    return [1, a * b % R, a, b]


# a = 1: b = c and 5 + 2b = b + 7 -> b = 2, c = 2
GOOD = mult_witness(1, 2)


# --------------------------------------------------------------------------- reading


def test_read_hand_made_r1cs():
    cs = read_r1cs(mult_r1cs())
    assert (cs.n_constraints, cs.n_public, cs.n_wires) == (2, 1, 4)
    assert [cs.A.row(i) for i in range(2)] == [a for a, _, _ in MULT]
    assert [cs.B.row(i) for i in range(2)] == [b for _, b, _ in MULT]
    assert [cs.C.row(i) for i in range(2)] == [c for _, _, c in MULT]
    assert cs.labels.tolist() == [0, 1, 2, 3]
    assert cs.inputs["public"].first_wire == 1 and cs.inputs["private"].count == 2
    assert cs.n_internal == 0
    with pytest.raises(ZkmbError, match="no witness program"):
        cs.solve({})
    w = read_wtns(wtns_file(GOOD), cs)
    assert w.n_public == 1 and w.public_inputs() == [2]
    assert cs.is_satisfied(w)
    bad = read_wtns(wtns_file([1, 3, 1, 3]))  # a*b = c holds, the linear row does not
    assert cs.which_is_unsatisfied(bad) == "constraint 1 in scope '<root>'"


def test_read_from_path(tmp_path):
    p = tmp_path / "mult.r1cs"
    p.write_bytes(mult_r1cs())
    assert read_r1cs(p).n_constraints == 2
    assert read_r1cs(str(p)).n_wires == 4
    q = tmp_path / "mult.wtns"
    q.write_bytes(wtns_file(GOOD))
    assert read_wtns(q).to_ints() == GOOD


def test_sections_in_any_order_unknown_ignored_zero_terms_dropped_terms_sorted():
    cons = [({3: 2, 0: 5}, {0: 1}, {2: 7, 1: 1, 3: 0})] + MULT[:1]  # unsorted, and a zero coefficient
    data = container(
        b"r1cs",
        1,
        [
            (3, labels_bytes([0, 1, 2, 3])),
            (9, b"whatever"),
            (2, constraints_bytes(cons)),
            (1, r1cs_header()),
        ],
    )
    cs = read_r1cs(data)
    assert cs.A.row(0) == {0: 5, 3: 2} and cs.C.row(0) == {1: 1, 2: 7}
    assert cs.C.cols[: cs.C.row_ptr[1]].tolist() == [1, 2]
    assert cs.C.nnz == 3
    # without a label section there are no labels
    cs2 = read_r1cs(container(b"r1cs", 1, [(1, r1cs_header()), (2, constraints_bytes(MULT))]))
    assert cs2.labels is None and cs2.n_constraints == 2


# --------------------------------------------------------------------------- round trips


def test_round_trip_bytes_and_digest():
    cs = read_r1cs(mult_r1cs())
    again = read_r1cs(r1cs_bytes(cs))
    assert again.digest() == cs.digest()
    assert r1cs_bytes(again) == r1cs_bytes(cs)
    assert again.labels.tolist() == [0, 1, 2, 3]


class Mixed(Circuit):
    out = Public()
    a = Secret()
    b = Secret()

    def define(self, api):
        t = api.mul(self.a + 3, self.b - self.a)
        bits = api.to_bits(t, 10)
        api.assert_equal(api.from_bits(bits[:4]) + api.select(bits[4], self.a, self.b), self.out)


def test_writer_matches_hand_encoding_of_compiled_circuit(tmp_path):
    cs = compile(Mixed)
    cons = list(zip(rows(cs.A), rows(cs.B), rows(cs.C), strict=True))
    expect = container(
        b"r1cs",
        1,
        [
            (
                1,
                r1cs_header(
                    n_wires=cs.n_wires, pub_out=0, pub_in=1, prv_in=2, n_labels=cs.n_wires, m=len(cons)
                ),
            ),
            (2, constraints_bytes([tuple(dict(sorted(d.items())) for d in c) for c in cons])),
            (3, labels_bytes(range(cs.n_wires))),
        ],
    )
    assert r1cs_bytes(cs) == expect
    write_r1cs(cs, tmp_path / "m.r1cs")
    back = read_r1cs(tmp_path / "m.r1cs")
    assert back.digest() == cs.digest()
    a, b = 4, 9
    w = cs.solve({"out": _mixed_out(a, b), "a": a, "b": b})
    write_wtns(w, tmp_path / "m.wtns")
    w2 = read_wtns(tmp_path / "m.wtns", back)
    assert w2.to_ints() == w.to_ints() and back.is_satisfied(w2)
    assert wtns_bytes(w) == wtns_file(w.to_ints())


def _mixed_out(a: int, b: int) -> int:
    t = (a + 3) * (b - a) % R
    return (t & 15) + (a if (t >> 4) & 1 else b)


def test_wtns_versions_and_values():
    assert read_wtns(wtns_file(GOOD, version=1)).to_ints() == GOOD
    w = read_wtns(wtns_file([1, R - 1, 0]))
    assert w.to_ints() == [1, R - 1, 0] and w.n_public is None
    assert wtns_bytes(Witness.from_ints([1, 2])) == wtns_file([1, 2])
    assert read_wtns(wtns_file([])).to_ints() == []


# --------------------------------------------------------------------------- malformed .r1cs


def test_every_truncation_is_rejected():
    data = mult_r1cs()
    for n in range(len(data)):
        with pytest.raises(InvalidInput):
            read_r1cs(data[:n])
    wdata = wtns_file(GOOD)
    for n in range(len(wdata)):
        with pytest.raises(InvalidInput):
            read_wtns(wdata[:n])


def _cons(cons=MULT) -> bytes:
    return constraints_bytes(cons)


HDR = r1cs_header()
LAB = labels_bytes([0, 1, 2, 3])

MALFORMED_R1CS = {
    "wrong magic": b"r1cx" + mult_r1cs()[4:],
    "version 2": container(b"r1cs", 2, [(1, HDR), (2, _cons()), (3, LAB)]),
    "version 0": container(b"r1cs", 0, [(1, HDR), (2, _cons()), (3, LAB)]),
    "field size 48": container(b"r1cs", 1, [(1, r1cs_header(n8=48)), (2, _cons())]),
    "field size 0": container(b"r1cs", 1, [(1, struct.pack("<I", 0)), (2, _cons())]),
    "base field prime": container(b"r1cs", 1, [(1, r1cs_header(prime=P)), (2, _cons())]),
    "BLS12-381 prime": container(b"r1cs", 1, [(1, r1cs_header(prime=BLS_R)), (2, _cons())]),
    "header too long": container(b"r1cs", 1, [(1, HDR + b"\0"), (2, _cons())]),
    "header too short": container(b"r1cs", 1, [(1, HDR[:-1]), (2, _cons())]),
    "tiny header": container(b"r1cs", 1, [(1, b"\x20\0"), (2, _cons())]),
    "too many constraints": container(b"r1cs", 1, [(1, r1cs_header(m=3)), (2, _cons())]),
    "huge constraint count": container(b"r1cs", 1, [(1, r1cs_header(m=2**32 - 1)), (2, _cons())]),
    "too few constraints": container(b"r1cs", 1, [(1, r1cs_header(m=1)), (2, _cons())]),
    "inputs exceed wires": container(b"r1cs", 1, [(1, r1cs_header(prv_in=3)), (2, _cons())]),
    "zero wires": container(b"r1cs", 1, [(1, r1cs_header(n_wires=0, pub_out=0, prv_in=0)), (2, _cons())]),
    "wire id out of range": container(b"r1cs", 1, [(1, HDR), (2, _cons([({4: 1}, {}, {})] + MULT[:1]))]),
    "huge term count": container(b"r1cs", 1, [(1, HDR), (2, struct.pack("<I", 2**32 - 1) + _cons()[4:])]),
    "coefficient = r": container(b"r1cs", 1, [(1, HDR), (2, _cons([({1: R}, {}, {})] + MULT[:1]))]),
    "coefficient 2^256-1": container(
        b"r1cs", 1, [(1, HDR), (2, _cons([({1: 2**256 - 1}, {}, {})] + MULT[:1]))]
    ),
    "repeated wire in an LC": container(
        b"r1cs",
        1,
        [(1, HDR), (2, lc_bytes({1: 1}) + lc_bytes({}) + raw_lc([(2, 1), (2, 3)]) + _cons(MULT[:1]))],
    ),
    "section past the end": mult_r1cs()[:12] + struct.pack("<IQ", 1, 10**6) + mult_r1cs()[24:],
    "trailing bytes": mult_r1cs() + b"\0",
    "more sections announced": b"r1cs" + struct.pack("<II", 1, 4) + mult_r1cs()[12:],
    "duplicate header": container(b"r1cs", 1, [(1, HDR), (1, HDR), (2, _cons())]),
    "duplicate constraints": container(b"r1cs", 1, [(1, HDR), (2, _cons()), (2, _cons())]),
    "missing header": container(b"r1cs", 1, [(2, _cons()), (3, LAB)]),
    "missing constraints": container(b"r1cs", 1, [(1, HDR), (3, LAB)]),
    "custom gates list": container(b"r1cs", 1, [(1, HDR), (2, _cons()), (4, struct.pack("<I", 0))]),
    "custom gates use": container(b"r1cs", 1, [(1, HDR), (2, _cons()), (5, struct.pack("<I", 0))]),
    "labels too short": container(b"r1cs", 1, [(1, HDR), (2, _cons()), (3, LAB[:-8])]),
    "labels too long": container(b"r1cs", 1, [(1, HDR), (2, _cons()), (3, LAB + LAB[:8])]),
    "label beyond nLabels": container(b"r1cs", 1, [(1, HDR), (2, _cons()), (3, labels_bytes([0, 1, 2, 4]))]),
    "empty file": b"",
}


@pytest.mark.parametrize("name", sorted(MALFORMED_R1CS))
def test_malformed_r1cs(name):
    with pytest.raises(InvalidInput):
        read_r1cs(MALFORMED_R1CS[name])


# --------------------------------------------------------------------------- malformed .wtns

MALFORMED_WTNS = {
    "wrong magic": b"wtnx" + wtns_file(GOOD)[4:],
    "version 3": wtns_file(GOOD, version=3),
    "version 0": wtns_file(GOOD, version=0),
    "field size 48": wtns_file([1], n8=48),
    "base field prime": wtns_file(GOOD, prime=P),
    "count exceeds values": wtns_file(GOOD, n=5),
    "count below values": wtns_file(GOOD, n=3),
    "huge count": wtns_file(GOOD, n=2**32 - 1),
    "value = r": wtns_file([1, R]),
    "value 2^256-1": wtns_file([1, 2**256 - 1]),
    "trailing bytes": wtns_file(GOOD) + b"\0",
    "missing values": container(b"wtns", 2, [(1, wtns_file(GOOD)[24 : 24 + 40])]),
    "duplicate header": container(
        b"wtns", 2, [(1, wtns_file(GOOD)[24 : 24 + 40]), (1, wtns_file(GOOD)[24 : 24 + 40])]
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_WTNS))
def test_malformed_wtns(name):
    with pytest.raises(InvalidInput):
        read_wtns(MALFORMED_WTNS[name])


def test_wtns_must_match_the_system():
    cs = read_r1cs(mult_r1cs())
    with pytest.raises(InvalidInput):
        read_wtns(wtns_file(GOOD + [0]), cs)
    assert read_wtns(wtns_file(GOOD)).n_public is None
