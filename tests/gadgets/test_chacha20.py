"""ChaCha20: native twins against RFC 8439 and `cryptography`, the block gadget, TLS nonce and xor helpers.

Circuits are compiled once per module (~22k and ~45k constraints) and solved for several inputs.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import (
    bytes_from_values,
    const_bytes,
    shared_products,
    u32_from_value,
    witness_bytes,
    witness_int,
)
from zkmb.gadgets.chacha20 import (
    add32,
    chacha20_block,
    chacha20_block_native,
    chacha20_keystream,
    chacha20_keystream_native,
    tls_nonce,
    tls_nonce_native,
    xor_keystream,
    xor_keystream_native,
)
from zkmb.gadgets.registry import builders
from zkmb.r1cs import Circuit, Public, Secret, Witness, compile

from .tamper import (
    assert_fails_in,
    bit_wires,
    bump,
    flip,
    product_wires,
    rows_in_scope,
    solve_pinned,
    violated_scopes,
)

BLOCK_COUNT = 21_328  # all inputs variable; circom's ChaCha20 block: 21,712
BLOCK_CONST_COUNTER_COUNT = 21_296  # counter constant: the first xor into word 12 is free
KEY_NONCE_CHECKS = 44 * 9  # 32 key + 12 nonce bytes, each decomposed once

RFC_KEY = bytes(range(32))
# RFC 8439 §2.3.2
RFC_BLOCK_NONCE = bytes.fromhex("000000090000004a00000000")
RFC_BLOCK_OUT = bytes.fromhex(
    "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
    "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
)
# RFC 8439 §2.4.2
RFC_ENC_NONCE = bytes.fromhex("000000000000004a00000000")
RFC_PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    b"sunscreen would be it."
)
RFC_CIPHERTEXT = bytes.fromhex(
    "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
    "5af90bbf74a35be6b40b8eedf2785e42874d"
)


def ref_keystream(key: bytes, nonce: bytes, counter: int, n: int) -> bytes:
    """`cryptography`'s ChaCha20 (16-byte nonce = le32(counter) || nonce) on zeros."""
    enc = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce), None).encryptor()
    return enc.update(bytes(n))


# --------------------------------------------------------------------------- native twins


def test_native_rfc_vectors():
    assert chacha20_block_native(RFC_KEY, RFC_BLOCK_NONCE, 1) == RFC_BLOCK_OUT
    ks = chacha20_keystream_native(RFC_KEY, RFC_ENC_NONCE, 1, len(RFC_PLAINTEXT))
    assert xor_keystream_native(ks, RFC_PLAINTEXT) == RFC_CIPHERTEXT


@pytest.mark.parametrize("seed", range(20))
def test_native_random(seed):
    rng = random.Random(seed)
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    counter = rng.choice([0, 1, rng.getrandbits(32), 0xFFFFFFFF - 3])
    n = rng.randrange(0, 260)
    assert chacha20_keystream_native(key, nonce, counter, n) == ref_keystream(key, nonce, counter, n)


def test_native_tls_nonce():
    iv = bytes.fromhex("5d313eb2671276ee13000b30")
    assert tls_nonce_native(iv, 0) == iv
    assert tls_nonce_native(iv, 1) == bytes.fromhex("5d313eb2671276ee13000b31")
    assert tls_nonce_native(iv, 0x0102030405060708) == bytes.fromhex("5d313eb2661075ea16060c38")


def test_native_rejects():
    with pytest.raises(InvalidInput):
        chacha20_block_native(bytes(31), bytes(12), 0)
    with pytest.raises(InvalidInput):
        chacha20_block_native(bytes(32), bytes(11), 0)
    with pytest.raises(InvalidInput):
        chacha20_block_native(bytes(32), bytes(12), 1 << 32)
    with pytest.raises(InvalidInput):
        chacha20_keystream_native(bytes(32), bytes(12), 0xFFFFFFFF, 65)
    with pytest.raises(InvalidInput):
        tls_nonce_native(bytes(12), 1 << 64)
    with pytest.raises(InvalidInput):
        xor_keystream_native(bytes(3), bytes(4))


# --------------------------------------------------------------------------- the block gadget


class Block(Circuit):
    """Key and nonce as range-checked bytes, the counter as a range-checked word."""

    key = Secret(count=32)
    nonce = Secret(count=12)
    counter = Secret()

    def define(self, api):
        with api.scope("inputs"):
            key = bytes_from_values(api, self.key)
            nonce = bytes_from_values(api, self.nonce)
            ctr = u32_from_value(api, self.counter)
        with api.scope("chacha"):
            self.out = chacha20_block(api, key, nonce, ctr)


@pytest.fixture(scope="module")
def block():
    inst = Block()
    return inst, compile(inst)


def _solve_block(block, key, nonce, counter):
    inst, cs = block
    w = cs.solve({"key": list(key), "nonce": list(nonce), "counter": counter})
    return w, witness_bytes(w, inst.out)


def test_block_count(block):
    _, cs = block
    assert cs.n_constraints == BLOCK_COUNT + KEY_NONCE_CHECKS + 33


def test_block_rfc(block):
    w, out = _solve_block(block, RFC_KEY, RFC_BLOCK_NONCE, 1)
    assert out == RFC_BLOCK_OUT
    assert block[1].is_satisfied(w)


@pytest.mark.parametrize("seed", range(4))
def test_block_random(block, seed):
    rng = random.Random(100 + seed)
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    counter = [0, 0xFFFFFFFF, rng.getrandbits(32), 7][seed]
    w, out = _solve_block(block, key, nonce, counter)
    assert out == ref_keystream(key, nonce, counter, 64) == chacha20_block_native(key, nonce, counter)
    assert block[1].is_satisfied(w)


@pytest.fixture(scope="module")
def block_witness(block):
    return _solve_block(block, RFC_KEY, RFC_BLOCK_NONCE, 1)[0]


@pytest.mark.parametrize("scope", ["chacha/double_round_0", "chacha/double_round_6", "chacha/final_add"])
def test_block_tamper_bit(block, block_witness, scope):
    _, cs = block
    bits = bit_wires(cs, scope)
    assert len(bits) >= 16 * 32
    for wire in (bits[0], bits[len(bits) // 2], bits[-1]):
        assert_fails_in(cs, flip(block_witness, wire), scope)


def test_block_tamper_xor(block, block_witness):
    _, cs = block
    prods = product_wires(cs, "chacha/double_round_9")
    assert len(prods) == 8 * 4 * 32  # the xors (additions allocate no product wires)
    for wire in (prods[0], prods[-1]):
        assert_fails_in(cs, flip(block_witness, wire), "chacha/double_round_9")


def test_block_tamper_output(block, block_witness):
    inst, cs = block
    (wire,) = inst.out[37][5].t  # one output bit is one wire
    assert_fails_in(cs, flip(block_witness, wire), "chacha/final_add")
    assert_fails_in(cs, bump(block_witness, wire, 2), "chacha/final_add")


def test_block_variable_counter_tampered(block):
    """The counter is a witness word: the keystream of another block cannot be passed off as this one's."""
    inst, cs = block
    rng = random.Random(77)
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    w1, out1 = _solve_block(block, key, nonce, 1)
    w2, out2 = _solve_block(block, key, nonce, 2)
    assert out1 == chacha20_block_native(key, nonce, 1) and out2 == chacha20_block_native(key, nonce, 2)
    assert cs.is_satisfied(w1) and cs.is_satisfied(w2)
    counter_bits = bit_wires(cs, "inputs")[-32:]  # the counter's decomposition comes last
    assert [w1.value(b) for b in counter_bits] == [1] + [0] * 31
    # counter 1 claimed, block 2's words from the first round on: caught where the rounds read word 12
    first_round = 1 + max(bit_wires(cs, "inputs"))
    vals = w1.values.copy()
    vals[first_round:] = w2.values[first_round:]
    spliced = Witness(vals, w1.n_public)
    assert witness_bytes(spliced, inst.out) == out2
    assert_fails_in(cs, spliced, "chacha/double_round_0")
    # exactly where word 12 is read: the xor of its two differing bits, and its final addition
    assert violated_scopes(cs, spliced) == {"chacha/double_round_0": 2, "chacha/final_add": 1}
    # counter 1 claimed, its bits forged to 2 and every round recomputed: only the counter's own
    # decomposition fails
    cheat = solve_pinned(
        cs, {"key": list(key), "nonce": list(nonce), "counter": 1}, {counter_bits[0]: 0, counter_bits[1]: 1}
    )
    assert witness_bytes(cheat, inst.out) == out2
    assert violated_scopes(cs, cheat) == {"inputs": 1}


def test_keystream_variable_counter_tampered():
    """Two blocks from a witness counter: block 1 uses counter + 1 (one add32), never counter again."""

    class C(Circuit):
        key = Secret(count=32)
        nonce = Secret(count=12)
        counter = Secret()

        def define(self, api):
            with api.scope("inputs"):
                key = bytes_from_values(api, self.key)
                nonce = bytes_from_values(api, self.nonce)
                ctr = u32_from_value(api, self.counter)
            with api.scope("ks"):
                self.ks = chacha20_keystream(api, key, nonce, ctr, 128)

    inst = C()
    cs = compile(inst)
    assert cs.n_constraints == KEY_NONCE_CHECKS + 33 + 2 * BLOCK_COUNT + 33
    rng = random.Random(10)
    key, nonce, counter = rng.randbytes(32), rng.randbytes(12), 0xFFFFFFFE
    assign = {"key": list(key), "nonce": list(nonce), "counter": counter}
    w = cs.solve(assign)
    assert cs.is_satisfied(w)
    ks = witness_bytes(w, inst.ks)
    assert (
        ks == ref_keystream(key, nonce, counter, 128) == chacha20_keystream_native(key, nonce, counter, 128)
    )
    inc = bit_wires(cs, "ks")  # the low bits of counter + 1 (the blocks are in sub-scopes)
    assert len(inc) == 32 and len(rows_in_scope(cs, "ks")) == 33
    # block 1 with counter again (the keystream of block 0 reused): the carry of counter + 1 fails
    cheat = solve_pinned(cs, assign, dict(zip(inc, [(counter >> i) & 1 for i in range(32)], strict=True)))
    assert witness_bytes(cheat, inst.ks)[64:] == ks[:64]
    assert violated_scopes(cs, cheat) == {"ks": 1}
    # one bit of counter + 1 changed in place
    for b in (inc[0], inc[31]):
        assert_fails_in(cs, flip(w, b), "ks")


class Partial(Circuit):
    """The first 37 bytes of one block (CO's client Finished): 9 whole words and one byte of word 9."""

    key = Secret(count=32)
    nonce = Secret(count=12)

    def define(self, api):
        with api.scope("inputs"):
            key = bytes_from_values(api, self.key)
            nonce = bytes_from_values(api, self.nonce)
        with api.scope("ks"):
            self.ks = chacha20_keystream(api, key, nonce, 1, 37)


def test_partial_block_tampered():
    inst = Partial()
    cs = compile(inst)
    final = "ks/block_0/final_add"
    # 9 additions of 33 and the low byte of word 9 (8 bits and the carry into bit 8): 9
    assert len(rows_in_scope(cs, final)) == 9 * 33 + 9
    assert cs.n_constraints == KEY_NONCE_CHECKS + BLOCK_CONST_COUNTER_COUNT - (7 * 33 - 9)
    rng = random.Random(37)
    for key, nonce in (
        (RFC_KEY, RFC_BLOCK_NONCE),
        (rng.randbytes(32), rng.randbytes(12)),
        (b"\xff" * 32, b"\xff" * 12),
    ):
        w = cs.solve({"key": list(key), "nonce": list(nonce)})
        assert cs.is_satisfied(w)
        assert witness_bytes(w, inst.ks) == ref_keystream(key, nonce, 1, 37)
    # every bit of the partial word's sum, and its carry, is fixed
    low = [b.wire for b in inst.ks[36]]
    assert low == bit_wires(cs, final)[-8:]
    for wire in low:
        assert_fails_in(cs, flip(w, wire), final)
    # the partial sum's carry is a linear combination: a forged low byte (the sum plus 1, recomputed)
    # breaks its booleanity
    byte = witness_int(w, inst.ks[36])
    cheat = solve_pinned(
        cs,
        {"key": list(key), "nonce": list(nonce)},
        {x: ((byte + 1) % 256 >> i) & 1 for i, x in enumerate(low)},
    )
    assert violated_scopes(cs, cheat) == {final: 1}


def test_add32_low_bits():
    class C(Circuit):
        x = Secret()
        y = Secret()

        def define(self, api):
            with api.scope("inputs"):
                a, b = u32_from_value(api, self.x), u32_from_value(api, self.y)
            with api.scope("add"):
                self.outs = [add32(api, a, b, n) for n in (1, 8, 31)]
            with pytest.raises(InvalidInput):
                add32(api, a, b, 0)
            with pytest.raises(InvalidInput):
                add32(api, a, b, 33)

    inst = C()
    cs = compile(inst)
    assert len(rows_in_scope(cs, "add")) == 2 + 9 + 32
    for x, y in [(0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0x7FFFFFFF, 1), (0x12345678, 0x9ABCDEF0)]:
        w = cs.solve({"x": x, "y": y})
        assert cs.is_satisfied(w)
        assert [witness_int(w, o) for o in inst.outs] == [(x + y) % (1 << n) for n in (1, 8, 31)]
        for wire in bit_wires(cs, "add"):
            assert_fails_in(cs, flip(w, wire), "add")


def test_blocks_share_work_in_shared_products():
    """Two blocks of one key and nonce (counters variable) inside ``shared_products``: what does
    not depend on the counter is made once, and both blocks are still right.  That is the first
    column round's quarter rounds on columns 1-3 (3 x 260), the first addition of the counter's
    column (33), and in the first diagonal round the first addition and xor of (2, 7, 8, 13) and the
    first addition of (1, 6, 11, 12), whose inputs all come from columns 1-3 (33 + 32 + 33)."""

    class Two(Circuit):
        key = Secret(count=32)
        nonce = Secret(count=12)
        counter = Secret(count=2)

        def define(self, api):
            with api.scope("inputs"):
                key = bytes_from_values(api, self.key)
                nonce = bytes_from_values(api, self.nonce)
                c0, c1 = (u32_from_value(api, c) for c in self.counter)
            with shared_products(api):
                with api.scope("b0"):
                    self.b0 = chacha20_block(api, key, nonce, c0)
                with api.scope("b1"):
                    self.b1 = chacha20_block(api, key, nonce, c1)

    inst = Two()
    cs = compile(inst)
    assert cs.n_constraints == KEY_NONCE_CHECKS + 2 * 33 + 2 * BLOCK_COUNT - 3 * 260 - 33 - 98
    rng = random.Random(12)
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    w = cs.solve({"key": list(key), "nonce": list(nonce), "counter": [1, 2]})
    assert cs.is_satisfied(w)
    assert witness_bytes(w, inst.b0) == chacha20_block_native(key, nonce, 1)
    assert witness_bytes(w, inst.b1) == chacha20_block_native(key, nonce, 2)
    # a shared addition's bit, made in block 0 and read by both: fixed by its own carry check
    scope = "b0/double_round_0"
    shared_bit = bit_wires(cs, scope)[32 * 2]  # the second quarter round's first sum (words 1 + 5)
    assert_fails_in(cs, flip(w, shared_bit), scope)


class Nonce(Circuit):
    """The TLS 1.3 nonce of a public record number (64 bits decomposed in the circuit)."""

    seq = Public()
    iv = Secret(count=12)

    def define(self, api):
        with api.scope("inputs"):
            iv = bytes_from_values(api, self.iv)
            seq = api.to_bits(self.seq, 64)
        with api.scope("nonce"):
            self.nonce = tls_nonce(api, iv, seq)


def test_tls_nonce_variable_record_number_tampered():
    inst = Nonce()
    cs = compile(inst)
    assert cs.n_constraints == 12 * 9 + 65 + 64
    assert len(rows_in_scope(cs, "nonce")) == 64  # one xor per record-number bit
    iv = bytes.fromhex("5d313eb2671276ee13000b30")
    for seq in (0, 1, 0x0102030405060708, (1 << 64) - 1):
        w = cs.solve({"seq": seq, "iv": list(iv)})
        assert cs.is_satisfied(w)
        assert witness_bytes(w, inst.nonce) == tls_nonce_native(iv, seq)
    seq = 41
    assign = {"seq": seq, "iv": list(iv)}
    w = cs.solve(assign)
    xors = product_wires(cs, "nonce")
    assert len(xors) == 64
    for wire in xors:
        assert_fails_in(cs, flip(w, wire), "nonce")
    # record 41 claimed, the nonce of record 42 computed (to reuse another record's pads): the bits
    # of the record number forged, the rest recomputed; only the record number's decomposition fails
    seq_bits = bit_wires(cs, "inputs")[-64:]
    assert [w.value(b) for b in seq_bits] == [(seq >> i) & 1 for i in range(64)]
    cheat = solve_pinned(cs, assign, {b: ((seq + 1) >> i) & 1 for i, b in enumerate(seq_bits)})
    assert witness_bytes(cheat, inst.nonce) == tls_nonce_native(iv, seq + 1)
    assert violated_scopes(cs, cheat) == {"inputs": 1}


def test_registered_block_count():
    assert builders()["chacha20_block"]().n_constraints == BLOCK_COUNT


def test_constant_counter_count():
    class ConstCounter(Circuit):
        key = Secret(count=256)
        nonce = Secret(count=96)

        def define(self, api):
            chacha20_block(
                api,
                [self.key[8 * i : 8 * i + 8] for i in range(32)],
                [self.nonce[8 * i : 8 * i + 8] for i in range(12)],
                1,
            )

    assert compile(ConstCounter).n_constraints == BLOCK_CONST_COUNTER_COUNT


# --------------------------------------------------------------------------- additions


class Add(Circuit):
    x = Secret()
    y = Secret()

    def define(self, api):
        with api.scope("inputs"):
            a, b = u32_from_value(api, self.x), u32_from_value(api, self.y)
        with api.scope("add"):
            self.out = add32(api, a, b)


@pytest.fixture(scope="module")
def adder():
    inst = Add()
    return inst, compile(inst)


def test_add32(adder):
    inst, cs = adder
    assert cs.n_constraints == 2 * 33 + 33
    rng = random.Random(5)
    for x, y in [(0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 1), (1 << 31, 1 << 31)] + [
        (rng.getrandbits(32), rng.getrandbits(32)) for _ in range(10)
    ]:
        w = cs.solve({"x": x, "y": y})
        assert witness_int(w, inst.out) == (x + y) & 0xFFFFFFFF
        assert cs.is_satisfied(w)
        for wire in bit_wires(cs, "add"):  # every single-bit change of the sum breaks the carry check
            assert_fails_in(cs, flip(w, wire), "add")


def test_add32_constant_and_no_carry():
    class C(Circuit):
        x = Secret(count=32)

        def define(self, api):
            self.a = add32(api, [0] * 32, 5)  # constant: free
            self.b = add32(api, self.x[:31] + [0], 0)  # bound < 2^32: no carry, one equality

    inst = C()
    cs = compile(inst)
    assert cs.n_constraints == 33
    w = cs.solve({"x": [1, 0] * 16})
    assert witness_int(w, inst.a) == 5
    assert witness_int(w, inst.b) == 0x55555555
    assert cs.is_satisfied(w)


# --------------------------------------------------------------------------- records: nonce, keystream, xor


class Record(Circuit):
    """RFC 8439 §2.4.2 as a TLS record: nonce = iv xor seq (public), 114 bytes from block counter 1."""

    seq = Public()
    key = Secret(count=32)
    iv = Secret(count=12)
    pt = Secret(count=len(RFC_PLAINTEXT))

    def define(self, api):
        with api.scope("inputs"):
            key = bytes_from_values(api, self.key)
            iv = bytes_from_values(api, self.iv)
            pt = bytes_from_values(api, self.pt)
            seq = api.to_bits(self.seq, 64)
        self.nonce = tls_nonce(api, iv, seq)
        ks = chacha20_keystream(api, key, self.nonce, 1, len(RFC_PLAINTEXT))
        with api.scope("xor"):
            self.ct = xor_keystream(api, ks, pt)


@pytest.fixture(scope="module")
def record():
    inst = Record()
    return inst, compile(inst)


def test_record_rfc_encryption(record):
    inst, cs = record
    seq = 0x0102030405060708
    iv = bytes(a ^ b for a, b in zip(RFC_ENC_NONCE, seq.to_bytes(12, "big"), strict=True))
    w = cs.solve({"seq": seq, "key": list(RFC_KEY), "iv": list(iv), "pt": list(RFC_PLAINTEXT)})
    assert cs.is_satisfied(w)
    assert witness_bytes(w, inst.nonce) == RFC_ENC_NONCE == tls_nonce_native(iv, seq)
    assert witness_bytes(w, inst.ct) == RFC_CIPHERTEXT
    # a wrong public record number gives another nonce, hence another ciphertext
    w2 = cs.solve({"seq": seq ^ 1, "key": list(RFC_KEY), "iv": list(iv), "pt": list(RFC_PLAINTEXT)})
    assert witness_bytes(w2, inst.ct) != RFC_CIPHERTEXT
    (wire,) = inst.ct[100][3].t
    assert_fails_in(cs, flip(w, wire), "xor")


def test_record_count(record):
    _, cs = record
    n = len(RFC_PLAINTEXT)
    inputs = (32 + 12 + n) * 9 + 65
    # the second block's 50 bytes: 12 full final additions and 16 bits of word 12 (17), not 16 x 33
    assert cs.n_constraints == inputs + 8 * 8 + 2 * BLOCK_CONST_COUNTER_COUNT - (4 * 33 - 17) + 8 * n


def test_keystream_variable_counter():
    class C(Circuit):
        key = Secret(count=256)
        nonce = Secret(count=96)
        counter = Secret()

        def define(self, api):
            ctr = u32_from_value(api, self.counter)
            key = [self.key[8 * i : 8 * i + 8] for i in range(32)]
            nonce = [self.nonce[8 * i : 8 * i + 8] for i in range(12)]
            self.ks = chacha20_keystream(api, key, nonce, ctr, 100)

    inst = C()
    cs = compile(inst)
    assert cs.n_constraints == 33 + 2 * BLOCK_COUNT + 33 - 7 * 33  # 36 bytes of block 1: 9 final adds
    rng = random.Random(9)
    key, nonce, counter = rng.randbytes(32), rng.randbytes(12), 0x12345678
    bits = lambda data: [(b >> i) & 1 for b in data for i in range(8)]  # noqa: E731
    w = cs.solve({"key": bits(key), "nonce": bits(nonce), "counter": counter})
    assert cs.is_satisfied(w)
    assert witness_bytes(w, inst.ks) == ref_keystream(key, nonce, counter, 100)


def test_xor_constant_data_is_free():
    class C(Circuit):
        k = Secret(count=16)

        def define(self, api):
            ks = [self.k[8 * i : 8 * i + 8] for i in range(2)]
            self.out = xor_keystream(api, ks, b"\x0f\xf0")
            self.out2 = xor_keystream(api, ks, const_bytes(b"\x00"))

    inst = C()
    cs = compile(inst)
    assert cs.n_constraints == 0
    w = cs.solve({"k": [1, 0, 1, 0, 1, 0, 1, 0] * 2})
    assert witness_bytes(w, inst.out) == bytes([0x55 ^ 0x0F, 0x55 ^ 0xF0])
    assert witness_bytes(w, inst.out2) == b"\x55"


def test_gadget_rejects_shapes():
    class Bad(Circuit):
        k = Secret(count=8)

        def define(self, api):
            byte = list(self.k)
            with pytest.raises(InvalidInput):
                chacha20_block(api, [byte] * 31, [byte] * 12, 0)
            with pytest.raises(InvalidInput):
                chacha20_block(api, [byte] * 32, [byte] * 12, 1 << 32)
            with pytest.raises(InvalidInput):
                chacha20_block(api, [byte] * 32, [byte] * 12, [byte[0]] * 31)
            with pytest.raises(InvalidInput):
                tls_nonce(api, [byte] * 12, [byte[0]] * 63)
            with pytest.raises(InvalidInput):
                tls_nonce(api, [byte] * 12, -1)
            with pytest.raises(InvalidInput):
                xor_keystream(api, [byte], b"ab")
            with pytest.raises(InvalidInput):
                chacha20_keystream(api, [byte] * 32, [byte] * 12, 0, -1)

    compile(Bad)
