"""SHA-256: the native twins against hashlib, the compression gadget and fixed-length hashing in a circuit.

Circuits are compiled once per module (the compression circuit ~27k constraints, the hashing
circuit for ten message lengths ~0.45M) and solved for several inputs.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import bytes_from_values, const_bytes, u32_from_value, witness_bytes, witness_int
from zkmb.gadgets.registry import builders
from zkmb.gadgets.sha256 import (
    IV,
    sha256,
    sha256_compress,
    sha256_compress_native,
    sha256_native,
    sha256_padding,
    sha256_words_native,
)
from zkmb.r1cs import Circuit, Secret, compile

from .tamper import assert_fails_in, bit_wires, bump, flip, product_wires, rows_in_scope

M32 = 0xFFFFFFFF
LENGTHS = (0, 1, 55, 56, 63, 64, 65, 119, 127, 128)
COMPRESS_COUNT = 26_282  # circomlib's Sha256compression: 29,976


# --------------------------------------------------------------------------- native twins


@pytest.mark.parametrize("n", [*LENGTHS, 3, 111, 200, 1000])
def test_native_matches_hashlib(n):
    data = bytes(random.Random(n).getrandbits(8) for _ in range(n))
    assert sha256_native(data) == hashlib.sha256(data).digest()
    assert len(data + sha256_padding(n)) % 64 == 0


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_native_random(data):
    assert sha256_native(data) == hashlib.sha256(data).digest()


def test_native_fips_vectors():
    assert sha256_native(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    msg = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    assert sha256_native(msg).hex() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"


def test_native_rejects():
    with pytest.raises(InvalidInput):
        sha256_compress_native(list(IV), [0] * 15)
    with pytest.raises(InvalidInput):
        sha256_compress_native(list(IV), [0] * 15 + [1 << 32])
    with pytest.raises(InvalidInput):
        sha256_words_native(b"abc")
    with pytest.raises(InvalidInput):
        sha256_padding(-1)


# --------------------------------------------------------------------------- the compression gadget


class Compress(Circuit):
    state = Secret(count=8)
    block = Secret(count=16)

    def define(self, api):
        with api.scope("inputs"):
            st_ = [u32_from_value(api, x) for x in self.state]
            bl = [u32_from_value(api, x) for x in self.block]
        n0 = api.n_constraints
        self.out = sha256_compress(api, st_, bl)
        self.count = api.n_constraints - n0


@pytest.fixture(scope="module")
def compress():
    inst = Compress()
    return inst, compile(inst)


def run_compress(compress, state, block):
    inst, cs = compress
    w = cs.solve({"state": state, "block": block})
    assert cs.is_satisfied(w)
    ints = w.to_ints()
    assert [witness_int(ints, x) for x in inst.out] == sha256_compress_native(state, block)
    return w


def test_compress_counts(compress):
    inst, cs = compress
    assert inst.count == COMPRESS_COUNT
    assert cs.n_constraints == COMPRESS_COUNT + 24 * 33
    assert len(rows_in_scope(cs, "sha256_compress/schedule")) == 46 * 150 + 2 * 115
    rounds = [len(rows_in_scope(cs, f"sha256_compress/round{t}")) for t in range(64)]
    assert rounds == [296] * 62 + [298, 224]
    assert len(rows_in_scope(cs, "sha256_compress/final")) == 6 * 34 + 2 * 37
    # the registered representative circuit is the bare gadget
    assert builders()["sha256_compress"]().n_constraints == COMPRESS_COUNT


@pytest.mark.parametrize(
    "state, block",
    [
        ([0] * 8, [0] * 16),
        ([M32] * 8, [M32] * 16),
        (list(IV), [0x80000000] + [0] * 15),  # SHA-256("")
        ([0x80000000] * 8, [1] * 16),
    ],
)
def test_compress_boundary(compress, state, block):
    run_compress(compress, state, block)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, M32), min_size=24, max_size=24))
def test_compress_random(compress, words):
    run_compress(compress, words[:8], words[8:])


def test_compress_matches_hashlib_one_block(compress):
    msg = b"zkmb: one block message"
    block = sha256_words_native(msg + sha256_padding(len(msg)))
    inst, cs = compress
    w = cs.solve({"state": list(IV), "block": block})
    digest = b"".join(witness_int(w, x).to_bytes(4, "big") for x in inst.out)
    assert digest == hashlib.sha256(msg).digest()


def test_compress_tampered(compress):
    inst, cs = compress
    rng = random.Random(3)
    words = [rng.getrandbits(32) for _ in range(24)]
    w = run_compress(compress, words[:8], words[8:])
    # an internal bit: a decomposition bit of round 30's new a/e (booleanity holds, the sum does not)
    r30 = "sha256_compress/round30"
    bits = bit_wires(cs, r30)
    assert len(bits) == 70  # two 35-bit decompositions
    assert_fails_in(cs, flip(w, bits[3]), r30)
    assert_fails_in(cs, flip(w, bits[34]), r30)  # a carry bit
    assert_fails_in(cs, flip(w, bits[40]), r30)
    # a Σ/Ch/Maj product wire of round 30, and a σ product wire of the schedule
    assert_fails_in(cs, bump(w, product_wires(cs, r30)[17]), r30)
    sched = "sha256_compress/schedule"
    assert_fails_in(cs, bump(w, product_wires(cs, sched)[100]), sched)
    assert_fails_in(cs, flip(w, bit_wires(cs, sched)[500]), sched)
    # an output bit and an output carry
    fin = "sha256_compress/final"
    out_wire = inst.out[2][7].wire
    assert out_wire in bit_wires(cs, fin)
    assert_fails_in(cs, flip(w, out_wire), fin)
    assert_fails_in(cs, w.replace(out_wire, 2), fin)
    # an input bit
    assert_fails_in(cs, flip(w, bit_wires(cs, "inputs")[0]), "inputs")


def test_compress_rejects_bad_shapes():
    class Bad(Circuit):
        x = Secret(count=8)

        def define(self, api):
            words = [u32_from_value(api, v) for v in self.x]
            sha256_compress(api, words, words)  # 8 message words

    with pytest.raises(InvalidInput):
        compile(Bad)


# --------------------------------------------------------------------------- fixed-length hashing


class Hashes(Circuit):
    msg = Secret(count=sum(LENGTHS))

    def define(self, api):
        with api.scope("inputs"):
            data = bytes_from_values(api, self.msg)
        self.digests = {}
        self.counts = {}
        pos = 0
        for n in LENGTHS:
            n0 = api.n_constraints
            with api.scope(f"len{n}"):
                self.digests[n] = sha256(api, data[pos : pos + n])
            self.counts[n] = api.n_constraints - n0
            pos += n


@pytest.fixture(scope="module")
def hashes():
    inst = Hashes()
    return inst, compile(inst)


def split(data: bytes) -> dict[int, bytes]:
    out, pos = {}, 0
    for n in LENGTHS:
        out[n] = data[pos : pos + n]
        pos += n
    return out


@pytest.mark.parametrize("fill", [None, 0x00, 0xFF])
def test_hash_lengths(hashes, fill):
    inst, cs = hashes
    rng = random.Random(11)
    data = bytes(fill if fill is not None else rng.getrandbits(8) for _ in range(sum(LENGTHS)))
    w = cs.solve({"msg": list(data)})
    ints = w.to_ints()
    for n, m in split(data).items():
        assert witness_bytes(ints, inst.digests[n]) == hashlib.sha256(m).digest(), n


def test_hash_counts(hashes):
    inst, _ = hashes
    # constant words (IV, padding, length) fold away, so a hash costs less than its compressions at
    # 26,282 each; the empty message is constant (0 constraints)
    assert inst.counts == {
        0: 0,
        1: 24_439,
        55: 25_676,
        56: 44_846,  # the second block holds only padding: its message schedule is constant
        63: 45_040,
        64: 45_077,
        65: 50_722,
        119: 51_958,
        127: 71_322,
        128: 71_359,
    }


def test_hash_tampered(hashes):
    inst, cs = hashes
    data = bytes(i % 251 for i in range(sum(LENGTHS)))
    w = cs.solve({"msg": list(data)})
    # the second of three compressions of the 128-byte message
    scope = "len128/sha256_compress/round12"
    assert_fails_in(cs, flip(w, bit_wires(cs, scope)[5]), scope)
    final = "len127/sha256_compress/final"
    assert_fails_in(cs, flip(w, inst.digests[127][31][0].wire), final)


def test_constant_message_costs_nothing():
    class T(Circuit):
        x = Secret()

        def define(self, api):
            n0 = api.n_constraints
            self.d = sha256(api, const_bytes(b"abc"))
            self.n = api.n_constraints - n0

    inst = T()
    compile(inst)
    assert inst.n == 0
    assert bytes(witness_int([1], b) for b in inst.d) == hashlib.sha256(b"abc").digest()
