"""AES-128: the derived S-box, native twins against FIPS-197 and `cryptography`, the lookup, key expansion,
block and GCM counter-keystream gadgets (values, satisfiability, tampering, pinned counts).

Circuits are compiled once per module (~11k and ~35k constraints) and solved for several inputs.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zkmb.errors import InvalidInput
from zkmb.gadgets.aes import (
    GCM_FIRST_COUNTER,
    SBOX,
    aes128_encrypt_block,
    aes128_encrypt_block_native,
    aes128_expand_key,
    aes128_expand_key_native,
    aes_ctr_keystream,
    aes_ctr_keystream_native,
    gcm_j0,
    lookup8,
)
from zkmb.gadgets.bits import byte_from_value, bytes_from_values, lc_value, u32_from_value, witness_bytes
from zkmb.gadgets.chacha20 import tls_nonce
from zkmb.gadgets.registry import builders
from zkmb.r1cs import Circuit, Public, Secret, compile

from .tamper import assert_fails_in, bit_wires, flip, product_wires

BLOCK_COUNT = 8_040  # from round keys, block variable
KEY_EXPANSION_COUNT = 2_650
LOOKUP_COUNT = 26

# FIPS-197 Appendix B and C.1
FIPS_B = (
    "2b7e151628aed2a6abf7158809cf4f3c",
    "3243f6a8885a308d313198a2e0370734",
    "3925841d02dc09fbdc118597196a0b32",
)
FIPS_C1 = (
    "000102030405060708090a0b0c0d0e0f",
    "00112233445566778899aabbccddeeff",
    "69c4e0d86a7b0430d8cdb78070b4c55a",
)
# FIPS-197 Appendix A.1: round keys 1 and 10 of the Appendix B key
FIPS_A1_RK1 = "a0fafe1788542cb123a339392a6c7605"
FIPS_A1_RK10 = "d014f9a8c9ee2589e13f0cc8b6630ca6"


def ref_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def ref_ctr(key: bytes, nonce: bytes, counter: int, n_blocks: int) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce + counter.to_bytes(4, "big"))).encryptor()
    return enc.update(bytes(16 * n_blocks)) + enc.finalize()


# --------------------------------------------------------------------------- S-box and native twins


def test_sbox_derived():
    assert sorted(SBOX) == list(range(256))
    assert (SBOX[0x00], SBOX[0x01], SBOX[0x53], SBOX[0xFF]) == (0x63, 0x7C, 0xED, 0x16)
    # cross-check against `cryptography`: SubBytes of the all-equal state is visible in the last round
    # of an ECB encryption with a zero key only indirectly, so use the known first row of the table
    assert bytes(SBOX[:16]).hex() == "637c777bf26b6fc53001672bfed7ab76"


@pytest.mark.parametrize("vec", [FIPS_B, FIPS_C1])
def test_native_fips(vec):
    key, pt, ct = (bytes.fromhex(x) for x in vec)
    assert aes128_encrypt_block_native(key, pt) == ct


def test_native_key_expansion_fips():
    rk = aes128_expand_key_native(bytes.fromhex(FIPS_B[0]))
    assert len(rk) == 11 and rk[0].hex() == FIPS_B[0]
    assert rk[1].hex() == FIPS_A1_RK1 and rk[10].hex() == FIPS_A1_RK10


@pytest.mark.parametrize("seed", range(20))
def test_native_random(seed):
    rng = random.Random(seed)
    key, block = rng.randbytes(16), rng.randbytes(16)
    assert aes128_encrypt_block_native(key, block) == ref_ecb(key, block)


@pytest.mark.parametrize("seed", range(5))
def test_native_gcm(seed):
    rng = random.Random(50 + seed)
    key, nonce = rng.randbytes(16), rng.randbytes(12)
    ks = aes_ctr_keystream_native(key, nonce, GCM_FIRST_COUNTER, 4)
    assert ks == ref_ctr(key, nonce, 2, 4)
    ct = AESGCM(key).encrypt(nonce, bytes(64), None)
    assert ct[:64] == ks
    assert gcm_j0(nonce) == nonce + b"\x00\x00\x00\x01"


def test_native_rejects():
    with pytest.raises(InvalidInput):
        aes128_expand_key_native(bytes(15))
    with pytest.raises(InvalidInput):
        aes128_encrypt_block_native(bytes(16), bytes(17))
    with pytest.raises(InvalidInput):
        aes_ctr_keystream_native(bytes(16), bytes(12), 0xFFFFFFFF, 2)
    with pytest.raises(InvalidInput):
        gcm_j0(bytes(16))


# --------------------------------------------------------------------------- lookup


_RNG = random.Random(7)
BIG_TABLE = [_RNG.getrandbits(250) for _ in range(256)]


class Lookup(Circuit):
    x = Secret()

    def define(self, api):
        with api.scope("inputs"):
            byte = byte_from_value(api, self.x)
        with api.scope("lookup"):
            self.out = lookup8(api, byte, SBOX)
            self.big = lookup8(api, byte, BIG_TABLE)


def test_lookup_exhaustive():
    inst = Lookup()
    cs = compile(inst)
    assert cs.n_constraints == 9 + 2 * LOOKUP_COUNT
    for x in range(256):
        w = cs.solve({"x": x})
        vals = w.to_ints()
        assert lc_value(vals, inst.out) == SBOX[x]
        assert lc_value(vals, inst.big) == BIG_TABLE[x]
        assert cs.is_satisfied(w)
    w = cs.solve({"x": 0xA7})
    for wire in product_wires(cs, "lookup")[::5]:
        assert_fails_in(cs, w.replace(wire, w.value(wire) + 1), "lookup")


# --------------------------------------------------------------------------- key expansion + block


class Encrypt(Circuit):
    key = Secret(count=16)
    pt = Secret(count=16)

    def define(self, api):
        with api.scope("inputs"):
            key = bytes_from_values(api, self.key)
            pt = bytes_from_values(api, self.pt)
        with api.scope("expand"):
            self.rk = aes128_expand_key(api, key)
        with api.scope("encrypt"):
            self.out = aes128_encrypt_block(api, self.rk, pt)


@pytest.fixture(scope="module")
def encrypt():
    inst = Encrypt()
    return inst, compile(inst)


def _solve_encrypt(encrypt, key, pt):
    inst, cs = encrypt
    w = cs.solve({"key": list(key), "pt": list(pt)})
    return w, witness_bytes(w, inst.out)


def test_encrypt_count(encrypt):
    assert encrypt[1].n_constraints == 32 * 9 + KEY_EXPANSION_COUNT + BLOCK_COUNT


@pytest.mark.parametrize("vec", [FIPS_B, FIPS_C1])
def test_encrypt_fips(encrypt, vec):
    key, pt, ct = (bytes.fromhex(x) for x in vec)
    w, out = _solve_encrypt(encrypt, key, pt)
    assert out == ct
    assert encrypt[1].is_satisfied(w)
    if vec is FIPS_B:
        rk = [witness_bytes(w, k) for k in encrypt[0].rk]
        assert rk[1].hex() == FIPS_A1_RK1 and rk[10].hex() == FIPS_A1_RK10


@pytest.mark.parametrize("seed", range(4))
def test_encrypt_random(encrypt, seed):
    rng = random.Random(200 + seed)
    key, pt = rng.randbytes(16), [bytes(16), b"\xff" * 16, rng.randbytes(16), rng.randbytes(16)][seed]
    w, out = _solve_encrypt(encrypt, key, pt)
    assert out == ref_ecb(key, pt)
    assert [witness_bytes(w, k) for k in encrypt[0].rk] == aes128_expand_key_native(key)
    assert encrypt[1].is_satisfied(w)


@pytest.fixture(scope="module")
def encrypt_witness(encrypt):
    key, pt, _ = (bytes.fromhex(x) for x in FIPS_B)
    return _solve_encrypt(encrypt, key, pt)[0]


@pytest.mark.parametrize(
    "scope", ["encrypt/round_1", "encrypt/round_5", "encrypt/round_10", "expand/subword"]
)
def test_encrypt_tamper_bit(encrypt, encrypt_witness, scope):
    _, cs = encrypt
    bits = bit_wires(cs, scope)
    assert bits
    for wire in (bits[0], bits[len(bits) // 3], bits[-1]):
        assert_fails_in(cs, flip(encrypt_witness, wire), scope)


@pytest.mark.parametrize("scope", ["encrypt/round_0", "encrypt/round_4", "expand"])
def test_encrypt_tamper_product(encrypt, encrypt_witness, scope):
    _, cs = encrypt
    prods = product_wires(cs, scope)
    assert prods
    for wire in (prods[0], prods[len(prods) // 2], prods[-1]):
        w = encrypt_witness
        assert_fails_in(cs, w.replace(wire, w.value(wire) + 1), scope)


def test_encrypt_tamper_output(encrypt, encrypt_witness):
    inst, cs = encrypt
    (wire,) = inst.out[9][6].t
    assert_fails_in(cs, flip(encrypt_witness, wire), "encrypt/round_10")


def test_registered_counts():
    table = builders()
    assert table["aes128_block"]().n_constraints == BLOCK_COUNT
    assert table["aes128_key_expansion"]().n_constraints == KEY_EXPANSION_COUNT


# --------------------------------------------------------------------------- GCM counter keystream (SPEC PAD)


class GcmPad(Circuit):
    """SPEC §4 PAD block j for AES-GCM: nonce = iv xor n (public), counters 2 + 4j .. 5 + 4j (j public)."""

    n = Public()
    j = Public()
    key = Secret(count=16)
    iv = Secret(count=12)

    def define(self, api):
        with api.scope("inputs"):
            key = bytes_from_values(api, self.key)
            iv = bytes_from_values(api, self.iv)
            seq = api.to_bits(self.n, 64)
            ctr = u32_from_value(api, api.add(api.mul_const(self.j, 4), 2))
        rk = aes128_expand_key(api, key)
        nonce = tls_nonce(api, iv, seq)
        with api.scope("pad"):
            self.pad = aes_ctr_keystream(api, rk, nonce, ctr, 4)


class GcmFinished(Circuit):
    """SPEC §3 CO: the 37-byte client Finished under record number 0, counters from 2 (constants)."""

    key = Secret(count=16)
    iv = Secret(count=12)

    def define(self, api):
        key = bytes_from_values(api, self.key)
        iv = bytes_from_values(api, self.iv)
        rk = aes128_expand_key(api, key)
        with api.scope("ks"):
            self.ks = aes_ctr_keystream(api, rk, tls_nonce(api, iv, 0), GCM_FIRST_COUNTER, 3)[:37]


@pytest.fixture(scope="module")
def gcm_pad():
    inst = GcmPad()
    return inst, compile(inst)


@pytest.mark.parametrize("seed", range(3))
def test_gcm_pad(gcm_pad, seed):
    inst, cs = gcm_pad
    rng = random.Random(300 + seed)
    key, iv = rng.randbytes(16), rng.randbytes(12)
    n, j = [(0, 0), (5, 6), (rng.getrandbits(64), 3)][seed]
    w = cs.solve({"n": n, "j": j, "key": list(key), "iv": list(iv)})
    assert cs.is_satisfied(w)
    nonce = bytes(a ^ b for a, b in zip(iv, n.to_bytes(12, "big"), strict=True))
    pad = witness_bytes(w, inst.pad)
    assert pad == ref_ctr(key, nonce, 2 + 4 * j, 4) == aes_ctr_keystream_native(key, nonce, 2 + 4 * j, 4)
    assert AESGCM(key).encrypt(nonce, bytes(64 * (j + 1)), None)[64 * j : 64 * j + 64] == pad
    if seed == 0:
        (wire,) = inst.pad[63][0].t
        assert_fails_in(cs, flip(w, wire), "pad/block_3/round_10")


def test_gcm_pad_count(gcm_pad):
    _, cs = gcm_pad
    inputs = 28 * 9 + 65 + 33
    shared_round0 = 96 + 12 * LOOKUP_COUNT  # the nonce's AddRoundKey and round-1 lookups, once
    per_block = 32 + BLOCK_COUNT - 128 - 12 * LOOKUP_COUNT  # counter AddRoundKey + the rest
    counters = 3 * 33  # counter + i for i = 1..3
    assert cs.n_constraints == inputs + KEY_EXPANSION_COUNT + 64 + shared_round0 + 4 * per_block + counters


def test_gcm_finished():
    inst = GcmFinished()
    cs = compile(inst)
    # constant counters: the counter bytes' AddRoundKey is free
    assert cs.n_constraints == 28 * 9 + KEY_EXPANSION_COUNT + 96 + 12 * 26 + 3 * (BLOCK_COUNT - 128 - 12 * 26)
    rng = random.Random(400)
    key, iv = rng.randbytes(16), rng.randbytes(12)
    w = cs.solve({"key": list(key), "iv": list(iv)})
    assert cs.is_satisfied(w)
    assert witness_bytes(w, inst.ks) == AESGCM(key).encrypt(iv, bytes(37), None)[:37]


def test_gadget_rejects_shapes():
    class Bad(Circuit):
        k = Secret(count=8)

        def define(self, api):
            byte = list(self.k)
            with pytest.raises(InvalidInput):
                lookup8(api, byte[:7], SBOX)
            with pytest.raises(InvalidInput):
                lookup8(api, byte, SBOX[:255])
            with pytest.raises(InvalidInput):
                aes128_expand_key(api, [byte] * 15)
            rk = [[byte] * 16] * 11
            with pytest.raises(InvalidInput):
                aes128_encrypt_block(api, rk[:10], [byte] * 16)
            with pytest.raises(InvalidInput):
                aes128_encrypt_block(api, rk, bytes(15))
            with pytest.raises(InvalidInput):
                aes_ctr_keystream(api, rk, [byte] * 11, 2, 1)
            with pytest.raises(InvalidInput):
                aes_ctr_keystream(api, rk, [byte] * 12, 0xFFFFFFFF, 2)
            with pytest.raises(InvalidInput):
                aes_ctr_keystream(api, rk, [byte] * 12, byte * 3, 1)
            assert aes_ctr_keystream(api, rk, [byte] * 12, 2, 0) == []

    compile(Bad)
