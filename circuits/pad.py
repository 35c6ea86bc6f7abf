"""Statement PAD, keystream precomputation (SPEC §4): one circuit per cipher suite.

Public inputs, in this order (docs/protocol.md, "Statements"): ``comm_k``, ``n`` (the client
application record number), ``j`` (the 64-byte block index), ``comm_pad``.  Secret inputs: ``key``
(packed: 2 elements for ChaCha20, 1 for AES-128), ``iv`` (1 element), ``key_blinder``,
``pad_blinder``.

Relation: ``key`` and ``iv`` unpack to range-checked bytes and open ``comm_k`` (the layout of
:mod:`zkmb.circuits.commit`, suite constant); ``n < 2^64`` and ``0 <= j < 7`` (bit
decompositions); the nonce is ``iv xor be96(n)``; the pad is ChaCha20 block ``1 + j`` or the four
AES-128 blocks with counters ``2 + 4j .. 5 + 4j``; ``comm_pad = Poseidon(pad packed into 3
elements, pad_blinder)`` with ``TAG_PAD_COMMITMENT`` in the capacity element
(:func:`~zkmb.circuits.commit.comm_pad_hash`, shared with Q).
"""

from __future__ import annotations

from functools import cache

from zkmb.errors import InvalidInput
from zkmb.gadgets.aes import aes128_expand_key, aes_ctr_keystream
from zkmb.gadgets.bits import const_bits, pack_bytes_lc, shared_products, unpack_bytes
from zkmb.gadgets.chacha20 import chacha20_block, tls_nonce
from zkmb.gadgets.poseidon import poseidon
from zkmb.gadgets.registry import register
from zkmb.gadgets.tags import TAG_KEY_COMMITMENT
from zkmb.r1cs import API, LC, Circuit, ConstraintSystem, Public, Secret, compile

from .commit import AES128GCM, CHACHA20, PAD_BYTES, Suite, comm_pad_hash, suite_by_name

__all__ = ["KeystreamPad", "KeystreamPads", "pad_circuit", "pad_keystream", "pads_circuit"]


def _key_elems(c: KeystreamPad) -> int:
    return -(-c.suite.key_len // 31)


def pad_keystream(api: API, suite: Suite, key, nonce, j_bits) -> list:
    """The 64 pad bytes of block ``j`` (3 known-boolean bits, value < 7) of the record with ``nonce``."""
    zero = const_bits(0, 1)[0]
    if suite is CHACHA20:
        # counter = 1 + j <= 7: three bits from one decomposition, done by the caller
        return chacha20_block(api, key, nonce, list(j_bits) + [zero] * 29)
    if suite is AES128GCM:
        with api.scope("key_expansion"):
            rk = aes128_expand_key(api, key)
        one = const_bits(1, 1)[0]
        counter = [zero, one, *j_bits] + [zero] * 27  # 2 + 4j, j < 8: no carry
        return aes_ctr_keystream(api, rk, nonce, counter, PAD_BYTES // 16)
    raise InvalidInput(f"no PAD circuit for suite {suite.name}")


class KeystreamPad(Circuit):
    """SPEC §4 for one suite and one block (see the module docstring)."""

    comm_k = Public()
    n = Public()
    j = Public()
    comm_pad = Public()
    key = Secret(count=_key_elems)
    iv = Secret()
    key_blinder = Secret()
    pad_blinder = Secret()

    def __init__(self, suite: Suite | str = CHACHA20):
        self.suite = suite_by_name(suite) if isinstance(suite, str) else suite
        if self.suite not in (CHACHA20, AES128GCM):
            raise InvalidInput(f"no PAD circuit for suite {self.suite!r}")

    def define(self, api: API) -> None:
        suite = self.suite
        with api.scope("inputs"):
            key = unpack_bytes(api, self.key, suite.key_len)
            iv = unpack_bytes(api, [self.iv], 12)
            n_bits = api.to_bits(self.n, 64)
            if suite is CHACHA20:
                # c = 1 + j in [1, 7]  <=>  0 <= j < 7: decompose c into 3 bits and exclude c = 0
                sel = api.to_bits(api.add(self.j, 1), 3)
            else:
                # j in [0, 7) as 3 bits, excluding 7 = 111b
                sel = api.to_bits(self.j, 3)
            a = api.mul(*(sel[:2] if suite is AES128GCM else [LC.constant(1) - b for b in sel[:2]]))
            b2 = sel[2] if suite is AES128GCM else LC.constant(1) - sel[2]
            api.assert_equal(api.mul(a, b2), 0)
        with api.scope("comm_k"):
            elems = [*pack_bytes_lc(key), *pack_bytes_lc(iv)]
            ck = poseidon(api, [TAG_KEY_COMMITMENT, suite.code, *elems, self.key_blinder])
            api.assert_equal(ck, self.comm_k)
        with api.scope("pad"):
            nonce = tls_nonce(api, iv, n_bits)
            pad = pad_keystream(api, suite, key, nonce, sel)
        with api.scope("comm_pad"):
            cp = comm_pad_hash(api, pack_bytes_lc(pad), self.pad_blinder)
            api.assert_equal(cp, self.comm_pad)


def _n_blocks(c: KeystreamPads) -> int:
    return c.blocks


class KeystreamPads(Circuit):
    """SPEC §4 for one suite and ``blocks`` keystream blocks of one connection in one proof.

    "One PAD proof may cover several blocks or records" (SPEC §4): block ``i`` is block ``j[i]``
    of record ``n[i]`` (any records and indices, repeats allowed), each with its own
    ``comm_pad[i]`` and blinder, all under the one ``comm_k``.  Public inputs, in this order:
    ``comm_k``, ``n[0..k-1]``, ``j[0..k-1]``, ``comm_pad[0..k-1]``; secret: ``key``, ``iv``,
    ``key_blinder``, ``pad_blinder[0..k-1]``.  Per block the relation is exactly
    :class:`KeystreamPad`'s; the key and IV are unpacked and opened against ``comm_k`` once, and
    the blocks run inside :func:`~zkmb.gadgets.bits.shared_products`, so work that depends only on
    the key and IV is made once (ChaCha20: the first column round's quarter round on words 1, 5, 9,
    13 and the first additions of the other three columns; AES-128: the key expansion).  Scopes:
    ``inputs``, ``comm_k``, ``block<i>/{index,pad,comm_pad}``.
    """

    comm_k = Public()
    n = Public(count=_n_blocks)
    j = Public(count=_n_blocks)
    comm_pad = Public(count=_n_blocks)
    key = Secret(count=_key_elems)
    iv = Secret()
    key_blinder = Secret()
    pad_blinder = Secret(count=_n_blocks)

    def __init__(self, suite: Suite | str = CHACHA20, blocks: int = 2):
        self.suite = suite_by_name(suite) if isinstance(suite, str) else suite
        if self.suite not in (CHACHA20, AES128GCM):
            raise InvalidInput(f"no PAD circuit for suite {self.suite!r}")
        if not isinstance(blocks, int) or blocks < 1:
            raise InvalidInput("a PAD proof covers at least one block")
        self.blocks = blocks

    def define(self, api: API) -> None:
        suite = self.suite
        with api.scope("inputs"):
            key = unpack_bytes(api, self.key, suite.key_len)
            iv = unpack_bytes(api, [self.iv], 12)
        with api.scope("comm_k"):
            elems = [*pack_bytes_lc(key), *pack_bytes_lc(iv)]
            ck = poseidon(api, [TAG_KEY_COMMITMENT, suite.code, *elems, self.key_blinder])
            api.assert_equal(ck, self.comm_k)
        rk = None
        if suite is AES128GCM:
            with api.scope("key_expansion"):
                rk = aes128_expand_key(api, key)
        with shared_products(api):
            for i in range(self.blocks):
                with api.scope(f"block{i}"):
                    with api.scope("index"):
                        n_bits, sel = _index_bits(api, suite, self.n[i], self.j[i])
                    with api.scope("pad"):
                        nonce = tls_nonce(api, iv, n_bits)
                        pad = _block_keystream(api, suite, key, rk, nonce, sel)
                    with api.scope("comm_pad"):
                        cp = comm_pad_hash(api, pack_bytes_lc(pad), self.pad_blinder[i])
                        api.assert_equal(cp, self.comm_pad[i])


def _index_bits(api: API, suite: Suite, n, j) -> tuple[list, list]:
    """``n`` as 64 bits and the 3 block-index bits (ChaCha20: of ``1 + j``, AES: of ``j``) with
    ``0 <= j < 7`` enforced, as in :class:`KeystreamPad`."""
    n_bits = api.to_bits(n, 64)
    if suite is CHACHA20:
        sel = api.to_bits(api.add(j, 1), 3)  # c = 1 + j in [1, 7]: 3 bits, c != 0
        api.assert_mul(api.mul(*[LC.constant(1) - b for b in sel[:2]]), LC.constant(1) - sel[2], 0)
    else:
        sel = api.to_bits(j, 3)  # j in [0, 7): 3 bits, j != 7
        api.assert_mul(api.mul(sel[0], sel[1]), sel[2], 0)
    return n_bits, sel


def _block_keystream(api: API, suite: Suite, key, rk, nonce, sel) -> list:
    """The 64 pad bytes of the block with ``nonce`` and index bits ``sel`` (AES: from round keys ``rk``)."""
    zero = const_bits(0, 1)[0]
    if suite is CHACHA20:
        return chacha20_block(api, key, nonce, list(sel) + [zero] * 29)
    one = const_bits(1, 1)[0]
    return aes_ctr_keystream(api, rk, nonce, [zero, one, *sel] + [zero] * 27, PAD_BYTES // 16)


@cache
def pads_circuit(suite_name: str, blocks: int) -> ConstraintSystem:
    """The compiled multi-block PAD circuit of ``chacha20`` or ``aes128gcm`` (cached)."""
    return compile(KeystreamPads(suite_by_name(suite_name), blocks))


@register("pad_blocks_3")
def pad_blocks3_circuit() -> ConstraintSystem:
    """Three ChaCha20 PAD blocks in one proof (fits a 2^16 QAP domain)."""
    return pads_circuit("chacha20", 3)


@cache
def pad_circuit(suite_name: str) -> ConstraintSystem:
    """The compiled PAD circuit of ``chacha20`` or ``aes128gcm`` (cached)."""
    return compile(KeystreamPad(suite_by_name(suite_name)))


@register("pad_block")
def pad_chacha20_circuit() -> ConstraintSystem:
    """The PAD circuit for ChaCha20-Poly1305 (the suite the client offers first)."""
    return pad_circuit("chacha20")


@register("pad_block_aes128gcm")
def pad_aes128gcm_circuit() -> ConstraintSystem:
    """The PAD circuit for AES-128-GCM."""
    return pad_circuit("aes128gcm")
