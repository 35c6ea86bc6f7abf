"""ChaCha20 (RFC 8439) keystream blocks in a circuit, with native twins, and the TLS 1.3 nonce.

Words are 32 known-boolean bits, least significant first (:mod:`zkmb.gadgets.bits`), so the
rotations of the quarter round are free re-indexings; keys, nonces and keystreams are lists of
bytes (8 bits each) in wire order, and ChaCha20's little-endian words are plain concatenations of
their bytes' bits.

Cost of :func:`chacha20_block` with every key, nonce and counter bit variable: **21,328**
constraints (circom's ChaCha20 block: 21,712), from

* 80 quarter rounds x (4 additions x 33 + 4 word xors x 32) = 20,800;
* the 16 final additions of the input words, 33 each = 528.

An addition of two words costs 33, not the 34 of a 33-bit decomposition: the low 32 bits come
from a hint and are constrained boolean, and the carry ``(a + b - low) / 2^32`` stays a linear
combination that is constrained boolean (1 constraint).  Every quarter-round value then carries
32 independent bits that are all needed bitwise (each addition result is xored at once, each xor
result is xored again a round later), so with bits as the representation 260 per quarter round is
the floor; a constant counter (CO: block counter 1) makes the first xor of word 12 free (21,296).
A keystream that ends inside a block makes only the final additions it needs, a partial word
from its low bytes alone (CO's 37 bytes: 9 words and one byte, 21,074 instead of 21,296).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ..algebra.params import R
from ..errors import InvalidInput
from ..r1cs import API, LC, Circuit, ConstraintSystem, NumbaHint, Secret, compile
from .bits import Bits, const_bits, const_bytes, const_u32, lazy_sum, pack_bits, rotr, shared_memo, xor_bits
from .registry import register

__all__ = [
    "BLOCK_BYTES",
    "SIGMA",
    "add32",
    "chacha20_block",
    "chacha20_block_native",
    "chacha20_keystream",
    "chacha20_keystream_native",
    "tls_nonce",
    "tls_nonce_native",
    "xor_keystream",
    "xor_keystream_native",
]

BLOCK_BYTES = 64
"""Bytes of keystream per ChaCha20 block."""

SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
"""The constant first row, "expand 32-byte k"."""

_M32 = 0xFFFFFFFF


# --------------------------------------------------------------------------- native twins


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def _qr_native(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & _M32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & _M32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & _M32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & _M32
    s[b] = _rotl(s[b] ^ s[c], 7)


_ROUNDS = (
    (0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
    (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14),
)  # fmt: skip
"""One double round: four column quarter rounds, then four diagonal ones."""


def _check_key_nonce(key: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise InvalidInput("a ChaCha20 key is 32 bytes")
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != 12:
        raise InvalidInput("a ChaCha20 nonce is 12 bytes")
    return bytes(key), bytes(nonce)


def _check_counter(counter: int) -> int:
    if not isinstance(counter, int) or not 0 <= counter <= _M32:
        raise InvalidInput("a ChaCha20 block counter is an integer in [0, 2^32)")
    return counter


def chacha20_block_native(key: bytes, nonce: bytes, counter: int) -> bytes:
    """The 64-byte ChaCha20 keystream block (RFC 8439 §2.3) for a 32-byte key and 12-byte nonce."""
    key, nonce = _check_key_nonce(key, nonce)
    counter = _check_counter(counter)
    init = [
        *SIGMA,
        *(int.from_bytes(key[4 * i : 4 * i + 4], "little") for i in range(8)),
        counter,
        *(int.from_bytes(nonce[4 * i : 4 * i + 4], "little") for i in range(3)),
    ]
    s = list(init)
    for _ in range(10):
        for q in _ROUNDS:
            _qr_native(s, *q)
    return b"".join(((x + y) & _M32).to_bytes(4, "little") for x, y in zip(s, init, strict=True))


def chacha20_keystream_native(key: bytes, nonce: bytes, counter: int, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of the keystream from block ``counter`` on (blocks counter, counter + 1, ...)."""
    counter = _check_counter(counter)
    if not isinstance(n_bytes, int) or n_bytes < 0:
        raise InvalidInput("n_bytes must be a non-negative int")
    n_blocks = -(-n_bytes // BLOCK_BYTES)
    if counter + n_blocks - 1 > _M32:
        raise InvalidInput("the block counter would wrap")
    out = b"".join(chacha20_block_native(key, nonce, counter + i) for i in range(n_blocks))
    return out[:n_bytes]


def xor_keystream_native(keystream: bytes, data: bytes) -> bytes:
    """``data xor keystream[:len(data)]`` (encryption and decryption alike)."""
    if len(keystream) < len(data):
        raise InvalidInput("the keystream is shorter than the data")
    return bytes(a ^ b for a, b in zip(data, keystream, strict=False))


def tls_nonce_native(iv: bytes, seq: int) -> bytes:
    """The TLS 1.3 per-record nonce (RFC 8446 §5.3): the 12-byte IV xor the 64-bit record number."""
    if not isinstance(iv, (bytes, bytearray)) or len(iv) != 12:
        raise InvalidInput("a TLS 1.3 IV is 12 bytes")
    if not isinstance(seq, int) or not 0 <= seq < 1 << 64:
        raise InvalidInput("a record number is an integer in [0, 2^64)")
    return bytes(a ^ b for a, b in zip(iv, seq.to_bytes(12, "big"), strict=True))


# --------------------------------------------------------------------------- the gadget


@njit(cache=True, nogil=True)
def _low_bits_kernel(ins, outs, params):  # pragma: no cover - runs inside the solver
    v = ins[0, 0]
    for i in range(params[0]):
        outs[i, 0] = (v >> np.uint64(i)) & np.uint64(1)


_LOW_BITS = NumbaHint(_low_bits_kernel, name="low_bits")
"""Hint: the ``params[0] <= 64`` low bits of the input (whose value is below 2^64 in an honest solve)."""


def add32(api: API, x: Sequence, y: Sequence, n_bits: int = 32) -> Bits:
    """(x + y) mod 2^32 of two 32-bit words (bits or int constants): 33 constraints.

    The 32 low bits come from a hint and are constrained boolean; the carry
    ``c = (x + y - low) / 2^32`` is a linear combination constrained boolean.  Since
    ``x + y < 2^33`` and ``low < 2^32``, ``x + y = low + 2^32 c`` holds over the integers, so the
    result is unique.  With a constant sum nothing is allocated.

    With ``n_bits < 32`` only the low ``n_bits`` bits of the sum are made, from the low
    ``n_bits`` bits of x and y (they fix them): ``n_bits + 1`` constraints.
    """
    if not 1 <= n_bits <= 32:
        raise InvalidInput("add32: n_bits in 1..32")
    if isinstance(x, int):
        x = const_u32(x) if 0 <= x <= _M32 else x
    if isinstance(y, int):
        y = const_u32(y) if 0 <= y <= _M32 else y
    if isinstance(x, int) or isinstance(y, int) or len(x) != 32 or len(y) != 32:
        raise InvalidInput("add32 takes two 32-bit words")
    value, bound = lazy_sum([x[:n_bits], y[:n_bits]])
    mask = (1 << n_bits) - 1
    c = api.constant_value(value)
    if c is not None:
        return const_bits(c & mask, n_bits)
    memo = shared_memo(api)
    if memo is not None:  # inside shared_products: the same sum is decomposed once
        key = ("add32", n_bits, tuple(sorted(value.t.items())))
        if key not in memo:
            memo[key] = _add_low(api, value, bound, n_bits)
        return memo[key]
    return _add_low(api, value, bound, n_bits)


def _add_low(api: API, value: LC, bound: int, n_bits: int) -> Bits:
    low = api.hint(_LOW_BITS, [value], n_bits, [n_bits])
    for b in low:
        api.assert_boolean(b)
    if bound >> n_bits:
        carry = api.mul_const(api.sub(value, pack_bits(low)), pow(1 << n_bits, -1, R))
        api.assert_boolean(carry)
    else:  # no carry possible
        api.assert_equal(value, pack_bits(low))
    return low


def _word(x, what: str) -> Bits:
    if isinstance(x, int):
        if not 0 <= x <= _M32:
            raise InvalidInput(f"{what}: a constant word is in [0, 2^32)")
        return const_u32(x)
    if len(x) != 32:
        raise InvalidInput(f"{what}: a word is 32 bits")
    return list(x)


def _le_words(byte_list: Sequence[Sequence], n: int, what: str) -> list[Bits]:
    if len(byte_list) != 4 * n or any(len(b) != 8 for b in byte_list):
        raise InvalidInput(f"{what}: expected {4 * n} bytes of 8 bits")
    return [[bit for k in range(4) for bit in byte_list[4 * i + k]] for i in range(n)]


def _rotl_bits(word: Bits, n: int) -> Bits:
    return rotr(word, 32 - n)


def _qr(api: API, s: list[Bits], a: int, b: int, c: int, d: int) -> None:
    s[a] = add32(api, s[a], s[b])
    s[d] = _rotl_bits(xor_bits(api, s[d], s[a]), 16)
    s[c] = add32(api, s[c], s[d])
    s[b] = _rotl_bits(xor_bits(api, s[b], s[c]), 12)
    s[a] = add32(api, s[a], s[b])
    s[d] = _rotl_bits(xor_bits(api, s[d], s[a]), 8)
    s[c] = add32(api, s[c], s[d])
    s[b] = _rotl_bits(xor_bits(api, s[b], s[c]), 7)


def chacha20_block(
    api: API, key: Sequence[Sequence], nonce: Sequence[Sequence], counter, n_bytes: int = BLOCK_BYTES
) -> list[Bits]:
    """The first ``n_bytes`` (default all 64) keystream bytes of one ChaCha20 block (RFC 8439 §2.3).

    ``key``: 32 bytes, ``nonce``: 12 bytes, each 8 known-boolean bits (LSB first), as from
    :func:`~zkmb.gadgets.bits.bytes_from_values` (decompose a key once and reuse its bits for
    every block).  ``counter``: an int constant or a 32-bit word.  Every output bit is boolean by
    construction.  21,328 constraints with everything variable (see the module docstring); fewer
    bytes skip the final additions of the words not needed (a partial word adds only its low bytes).
    """
    if not isinstance(n_bytes, int) or not 1 <= n_bytes <= BLOCK_BYTES:
        raise InvalidInput("chacha20_block: n_bytes in 1..64")
    k = _le_words(key, 8, "chacha20 key")
    n = _le_words(nonce, 3, "chacha20 nonce")
    init = [const_u32(x) for x in SIGMA] + k + [_word(counter, "chacha20 counter")] + n
    s = list(init)
    for r in range(10):
        with api.scope(f"double_round_{r}"):
            for q in _ROUNDS:
                _qr(api, s, *q)
    with api.scope("final_add"):
        out = [
            add32(api, x, y, min(32, 8 * (n_bytes - 4 * i)))
            for i, (x, y) in enumerate(zip(s, init, strict=True))
            if 4 * i < n_bytes
        ]
    return [w[8 * j : 8 * j + 8] for w in out for j in range(len(w) // 8)]


def chacha20_keystream(
    api: API, key: Sequence[Sequence], nonce: Sequence[Sequence], counter, n_bytes: int
) -> list[Bits]:
    """The first ``n_bytes`` keystream bytes from block ``counter`` on (an int, or a 32-bit word).

    With a variable counter, block ``i`` uses ``counter + i`` (33 more constraints per block
    after the first); the caller guarantees it does not wrap.
    """
    if not isinstance(n_bytes, int) or n_bytes < 0:
        raise InvalidInput("n_bytes must be a non-negative int")
    n_blocks = -(-n_bytes // BLOCK_BYTES)
    out: list[Bits] = []
    for i in range(n_blocks):
        if isinstance(counter, int):
            ctr = _check_counter(counter + i)
        else:
            ctr = _word(counter, "chacha20 counter") if i == 0 else add32(api, counter, const_u32(i))
        with api.scope(f"block_{i}"):
            out.extend(chacha20_block(api, key, nonce, ctr, min(BLOCK_BYTES, n_bytes - BLOCK_BYTES * i)))
    return out


def xor_keystream(api: API, keystream: Sequence[Sequence], data) -> list[Bits]:
    """``data xor keystream`` bytewise (data: bytes constants, or bytes of known-boolean bits).

    1 constraint per bit of variable data; constant data costs nothing (a bit is kept or flipped).
    """
    if isinstance(data, (bytes, bytearray)):
        data = const_bytes(bytes(data))
    if len(keystream) < len(data):
        raise InvalidInput("the keystream is shorter than the data")
    return [xor_bits(api, k, d) for k, d in zip(keystream, data, strict=False)]


def tls_nonce(api: API, iv: Sequence[Sequence], seq) -> list[Bits]:
    """The 12 nonce bytes ``iv xor be96(seq)`` (RFC 8446 §5.3).

    ``iv``: 12 bytes of known-boolean bits; ``seq``: an int constant (free: bits are kept or
    flipped) or 64 known-boolean bits, LSB first (1 constraint per bit), e.g. ``api.to_bits(n, 64)``
    of a public record number.
    """
    if len(iv) != 12 or any(len(b) != 8 for b in iv):
        raise InvalidInput("a TLS 1.3 IV is 12 bytes of 8 bits")
    if isinstance(seq, int):
        if not 0 <= seq < 1 << 64:
            raise InvalidInput("a record number is an integer in [0, 2^64)")
        seq_bits = const_bits(seq, 64)
    else:
        if len(seq) != 64:
            raise InvalidInput("a record number is 64 bits")
        seq_bits = list(seq)
    out = [list(b) for b in iv[:4]]
    for j in range(8):  # byte 4 + j holds bits 56 - 8j .. 63 - 8j (big-endian)
        lo = 8 * (7 - j)
        out.append(xor_bits(api, iv[4 + j], seq_bits[lo : lo + 8]))
    return out


# --------------------------------------------------------------------------- registered circuits


class _BlockCircuit(Circuit):
    """One block with every key, nonce and counter bit a (boolean, unchecked) secret input."""

    key = Secret(count=256)
    nonce = Secret(count=96)
    counter = Secret(count=32)

    def define(self, api: API) -> None:
        key = [self.key[8 * i : 8 * i + 8] for i in range(32)]
        nonce = [self.nonce[8 * i : 8 * i + 8] for i in range(12)]
        chacha20_block(api, key, nonce, list(self.counter))


@register("chacha20_block")
def block_circuit() -> ConstraintSystem:
    """The representative circuit of :func:`chacha20_block` (all 384 input bits variable)."""
    return compile(_BlockCircuit)
