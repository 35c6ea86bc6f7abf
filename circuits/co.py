"""Statement CO, channel opening (SPEC §3): one circuit per cipher suite.

Public inputs, in this order (docs/protocol.md, "Statements"):

1. ``h2`` (2 elements): ``H2``, the transcript hash through ServerHello, packed (31 + 1 bytes);
2. ``fin_ct`` (2 elements): the first 37 bytes of the client Finished record's payload (ciphertext
   without the tag), packed (31 + 6 bytes);
3. ``comm_k``: the key commitment (:mod:`zkmb.circuits.commit`).

The suite tag is a constant of each circuit (one key pair per suite, SPEC §8), bound into
``comm_k``.  Secret inputs: ``hs`` (2 elements, the 32-byte Handshake Secret packed), ``h3`` (2
elements, the transcript hash through the server Finished, packed) and ``blinder``.

Relation (every step is the gadget named): ``CHTS``, client handshake key/IV, ``finished_key``,
``HMAC(finished_key, H3)``, ``dHS``, ``MS``, ``CATS`` and the client application key/IV by
:func:`~zkmb.gadgets.hmac.co_key_schedule`; the keystream of client handshake record 0
(nonce = handshake IV xor 0; ChaCha20 block counter 1, AES-GCM counters 2, 3, 4); the check that
``keystream xor (14 00 00 20 || verify_data || 16)`` packs to ``fin_ct`` (so the public elements
must be canonical packings of exactly those bytes); and ``comm_k = Poseidon(TAG_KEY_COMMITMENT,
suite, key, iv, blinder)``.  ``hs``, ``h3`` and ``h2`` are unpacked into range-checked bytes once
(the bits then feed every gadget); the blinder is a field element.
"""

from __future__ import annotations

from functools import cache

from zkmb.errors import InvalidInput
from zkmb.gadgets.aes import aes128_expand_key, aes_ctr_keystream
from zkmb.gadgets.bits import const_bytes, pack_bytes_lc, unpack_bytes, xor_bits
from zkmb.gadgets.chacha20 import chacha20_keystream, tls_nonce
from zkmb.gadgets.hmac import co_key_schedule
from zkmb.gadgets.poseidon import poseidon
from zkmb.gadgets.registry import register
from zkmb.gadgets.tags import TAG_KEY_COMMITMENT
from zkmb.r1cs import API, Circuit, ConstraintSystem, Public, Secret, compile

from .commit import AES128GCM, CHACHA20, Suite, suite_by_name

__all__ = [
    "FINISHED_CT_LEN",
    "FINISHED_HEADER",
    "FINISHED_RECORD_PAYLOAD",
    "ChannelOpening",
    "co_circuit",
    "finished_keystream",
]

FINISHED_CT_LEN = 37
"""Client Finished inner plaintext: 4-byte header + 32-byte verify_data + content type 0x16."""

FINISHED_RECORD_PAYLOAD = FINISHED_CT_LEN + 16
"""The client Finished record's payload with the AEAD tag: 53 bytes (SPEC §2)."""

FINISHED_HEADER = bytes([0x14, 0x00, 0x00, 0x20])
"""Handshake type finished (20), uint24 length 32."""

INNER_TYPE_HANDSHAKE = 0x16


def finished_keystream(api: API, suite: Suite, key, iv) -> list:
    """The first 37 keystream bytes of client handshake record 0 (nonce = IV xor 0)."""
    nonce = tls_nonce(api, iv, 0)
    if suite is CHACHA20:
        return chacha20_keystream(api, key, nonce, 1, FINISHED_CT_LEN)
    if suite is AES128GCM:
        with api.scope("key_expansion"):
            rk = aes128_expand_key(api, key)
        return aes_ctr_keystream(api, rk, nonce, 2, -(-FINISHED_CT_LEN // 16))[:FINISHED_CT_LEN]
    raise InvalidInput(f"no CO circuit for suite {suite.name}")


class ChannelOpening(Circuit):
    """SPEC §3 for one suite (see the module docstring for inputs and relation)."""

    h2 = Public(count=2)
    fin_ct = Public(count=2)
    comm_k = Public()
    hs = Secret(count=2)
    h3 = Secret(count=2)
    blinder = Secret()

    def __init__(self, suite: Suite | str = CHACHA20):
        self.suite = suite_by_name(suite) if isinstance(suite, str) else suite
        if self.suite not in (CHACHA20, AES128GCM):
            raise InvalidInput(f"no CO circuit for suite {self.suite!r}")

    def define(self, api: API) -> None:
        suite = self.suite
        with api.scope("inputs"):
            hs = unpack_bytes(api, self.hs, 32)
            h2 = unpack_bytes(api, self.h2, 32)
            h3 = unpack_bytes(api, self.h3, 32)
        keys = co_key_schedule(api, hs, h2, h3, suite.key_len)
        with api.scope("finished"):
            ks = finished_keystream(api, suite, keys.hs_key, keys.hs_iv)
            head = const_bytes(FINISHED_HEADER)
            tail = const_bytes(bytes([INNER_TYPE_HANDSHAKE]))
            plain = head + keys.client_finished + tail
            ct = [xor_bits(api, k, p) for k, p in zip(ks, plain, strict=True)]
            for got, want in zip(pack_bytes_lc(ct), self.fin_ct, strict=True):
                api.assert_equal(got, want)
        with api.scope("comm_k"):
            elems = [*pack_bytes_lc(keys.ap_key), *pack_bytes_lc(keys.ap_iv)]
            c = poseidon(api, [TAG_KEY_COMMITMENT, suite.code, *elems, self.blinder])
            api.assert_equal(c, self.comm_k)


@cache
def co_circuit(suite_name: str) -> ConstraintSystem:
    """The compiled CO circuit of ``chacha20`` or ``aes128gcm`` (cached; compiling takes seconds)."""
    return compile(ChannelOpening(suite_by_name(suite_name)))


@register("co_chacha20")
def co_chacha20_circuit() -> ConstraintSystem:
    """The CO circuit for TLS_CHACHA20_POLY1305_SHA256 (compiling takes a few seconds)."""
    return co_circuit("chacha20")


@register("co_aes128gcm")
def co_aes128gcm_circuit() -> ConstraintSystem:
    """The CO circuit for TLS_AES_128_GCM_SHA256 (compiling takes a few seconds)."""
    return co_circuit("aes128gcm")
