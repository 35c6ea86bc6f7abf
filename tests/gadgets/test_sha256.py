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
from zkmb.gadgets.bits import (
    bytes_from_values,
    const_bytes,
    lazy_sum,
    lc_value,
    not_bits,
    shared_products,
    u32_from_value,
    witness_bytes,
    witness_int,
)
from zkmb.gadgets.registry import builders
from zkmb.gadgets.sha256 import (
    IV,
    sha256,
    sha256_compress,
    sha256_compress_native,
    sha256_digest_bytes,
    sha256_native,
    sha256_padding,
    sha256_words_native,
)
from zkmb.r1cs import Circuit, Secret, compile

from .tamper import assert_fails_in, bit_wires, bump, flip, product_wires, rows_in_scope

M32 = 0xFFFFFFFF
LENGTHS = (0, 1, 55, 56, 63, 64, 65, 119, 127, 128)
COMPRESS_COUNT = 26_218  # circomlib's Sha256compression: 29,976


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
    # the new a comes from the new e (T1 = e - d mod 2^32): a 34-bit decomposition instead of 35
    assert rounds == [295] * 62 + [296, 224]
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
    assert len(bits) == 69  # the new e's 35-bit and the new a's 34-bit decompositions
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


# --------------------------------------------------------------------------- unreduced and truncated words


class Chain(Circuit):
    """Two compressions: the first's words a, d, h stay unreduced and feed the second only where it
    adds them (W0, state d, state h); the second computes only its first 3 words."""

    state = Secret(count=8)
    block = Secret(count=16)
    other = Secret(count=16)

    def define(self, api):
        with api.scope("inputs"):
            st_ = [u32_from_value(api, x) for x in self.state]
            bl = [u32_from_value(api, x) for x in self.block]
            ot = [u32_from_value(api, x) for x in self.other]
        with api.scope("first"):
            self.mid = sha256_compress(api, st_, bl, lazy_words=(0, 3, 7))
        with api.scope("second"):
            st2 = [ot[0], ot[1], ot[2], self.mid[3], ot[4], ot[5], ot[6], self.mid[7]]
            self.out = sha256_compress(api, st2, [self.mid[0], *ot[1:]], n_words=3)


def chain_native(state, block, other):
    mid = sha256_compress_native(state, block)
    st2 = [other[0], other[1], other[2], mid[3], other[4], other[5], other[6], mid[7]]
    return mid, sha256_compress_native(st2, [mid[0], *other[1:]])[:3]


@pytest.fixture(scope="module")
def chain():
    inst = Chain()
    return inst, compile(inst)


def test_unreduced_and_truncated_words(chain):
    inst, cs = chain
    # the first compression skips three final decompositions (a: 37, d: 34, h: 34); the second
    # makes 3 of its 8 final words, and its sums grow by the unreduced inputs' extra bits
    assert len(rows_in_scope(cs, "first/sha256_compress/final")) == 278 - 37 - 34 - 34
    assert len(rows_in_scope(cs, "second/sha256_compress/final")) == 37 + 34 + 34
    assert len(rows_in_scope(cs, "second/sha256_compress/round0")) == 295 + 5  # d, h and W0 added
    assert len(rows_in_scope(cs, "second/sha256_compress/schedule")) == 7130 + 2  # W16 adds W0
    assert cs.n_constraints == 40 * 33 + 2 * COMPRESS_COUNT - 105 - (278 - 105) + 5 + 2
    rng = random.Random(21)
    for words in ([M32] * 40, [0] * 40, [rng.getrandbits(32) for _ in range(40)]):
        w = cs.solve({"state": words[:8], "block": words[8:24], "other": words[24:]})
        assert cs.is_satisfied(w)
        mid, out = chain_native(words[:8], words[8:24], words[24:])
        ints = w.to_ints()
        assert [witness_int(ints, x) for x in inst.out] == out
        # the unreduced words are congruent to the state words mod 2^32, within their bounds
        for i in (0, 3, 7):
            lc, bound = inst.mid[i]
            value = lc_value(ints, lc)
            assert value % (1 << 32) == mid[i] and value <= bound
    # tampering: a decomposition bit of the second compression's round 0 (where the unreduced d
    # and h are added), and an output bit
    r0 = "second/sha256_compress/round0"
    assert_fails_in(cs, flip(w, bit_wires(cs, r0)[7]), r0)
    assert_fails_in(cs, flip(w, bit_wires(cs, r0)[-1]), r0)  # the top carry bit
    fin = "second/sha256_compress/final"
    assert_fails_in(cs, flip(w, inst.out[2][31].wire), fin)


def test_unreduced_words_only_where_added():
    def build(fn):
        class T(Circuit):
            x = Secret(count=16)

            def define(self, api):
                words = [u32_from_value(api, v) for v in self.x]
                fn(api, words, lazy_sum([words[0], words[1]]))

        return compile(T)

    with pytest.raises(InvalidInput):  # state word a is used bitwise
        build(lambda api, w, lz: sha256_compress(api, [lz, *w[1:8]], w))
    with pytest.raises(InvalidInput):  # state word g (Ch)
        build(lambda api, w, lz: sha256_compress(api, [*w[:6], lz, w[7]], w))
    with pytest.raises(InvalidInput):  # message word W1 (σ0)
        build(lambda api, w, lz: sha256_compress(api, w[:8], [w[0], lz, *w[2:]]))
    with pytest.raises(InvalidInput):  # an unreduced word has no bytes
        build(lambda api, w, lz: sha256_digest_bytes([lz]))
    with pytest.raises(InvalidInput):
        build(lambda api, w, lz: sha256_compress(api, w[:8], w, n_words=0))
    with pytest.raises(InvalidInput):  # a lazy word that is not computed
        build(lambda api, w, lz: sha256_compress(api, w[:8], w, n_words=3, lazy_words=(3,)))


class TwoFromOneState(Circuit):
    """Two compressions from one state inside ``shared_products``: the second block is the first
    one's complement (as an HMAC key's opad block is its ipad block xor a constant)."""

    state = Secret(count=8)
    block = Secret(count=16)

    def define(self, api):
        with api.scope("inputs"):
            st_ = [u32_from_value(api, x) for x in self.state]
            bl = [u32_from_value(api, x) for x in self.block]
        with shared_products(api):
            with api.scope("one"):
                self.one = sha256_compress(api, st_, bl)
            with api.scope("two"):
                self.two = sha256_compress(api, st_, [not_bits(x) for x in bl])


def test_shared_compressions():
    inst = TwoFromOneState()
    cs = compile(inst)
    # shared: round 0's Σ1, Ch, Σ0, Maj (same state: 224) and the σ0/σ1 of the block words
    # (complemented words: σ0 of W1..W15, 15 x 61, σ1 of W14, W15, 2 x 54)
    assert cs.n_constraints == 24 * 33 + 2 * COMPRESS_COUNT - 224 - 15 * 61 - 2 * 54
    rng = random.Random(8)
    words = [rng.getrandbits(32) for _ in range(24)]
    w = cs.solve({"state": words[:8], "block": words[8:]})
    assert cs.is_satisfied(w)
    ints = w.to_ints()
    assert [witness_int(ints, x) for x in inst.one] == sha256_compress_native(words[:8], words[8:])
    flipped = [x ^ M32 for x in words[8:]]
    assert [witness_int(ints, x) for x in inst.two] == sha256_compress_native(words[:8], flipped)
    # a shared product wire is still fixed by the one constraint that made it
    r0 = "one/sha256_compress/round0"
    assert_fails_in(cs, bump(w, product_wires(cs, r0)[3]), r0)
    sched = "one/sha256_compress/schedule"
    assert_fails_in(cs, bump(w, product_wires(cs, sched)[0]), sched)


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
        1: 24_373,
        55: 25_609,
        56: 44_715,  # the second block holds only padding: its message schedule is constant
        63: 44_908,
        64: 44_945,
        65: 50_591,
        119: 51_827,
        127: 71_126,
        128: 71_163,
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
