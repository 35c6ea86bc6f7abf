"""SHA-256 (FIPS 180-4) in a circuit: the compression function and fixed-length hashing, with native twins.

Words are 32 known-boolean bits, least significant first (:mod:`zkmb.gadgets.bits`); messages and
digests are lists of bytes (8 bits each), in message order.  Lengths are fixed at compile time,
so the padding is constant and folds away.

Cost of :func:`sha256_compress` with every input bit variable: **26,218** constraints (circomlib's
Sha256compression: 29,976), from

* message schedule W16..W61: σ0 (29 three-input + 3 two-input xors = 61) + σ1 (22·2 + 10 = 54) +
  one 34-bit decomposition of the four-word sum (35) = 150 per word; W62, W63 are only ever
  summed, so they stay unreduced (σ0 + σ1 = 115 each);
* per round: Σ1 and Σ0 as three-input xors (64 + 64), Ch = ``g + e (f - g)`` (32), Maj =
  ``b + (a xor b)(c - b)`` (64), one 35-bit decomposition for the new e (``d + T1``) and one
  34-bit decomposition for the new a, taken as ``e_new + not(d) + 1 + Σ0 + Maj`` (congruent to
  ``T1 + T2``: the new e already fixes T1 mod 2^32): 295 per round (the sums grow by a bit in
  round 62, which adds the unreduced W62);
* round 63 leaves the new a and e unreduced and folds them into the final state additions
  (six 33-bit and two 36-bit decompositions).

Constant inputs (the IV, padding, constant message bytes) cost nothing where they make a bit
constant, and constant summands are merged into one constant mod 2^32; :func:`sha256` on a
one-block message from the IV therefore costs less than a full compression.  Words that a
compression only adds (its input state words d and h, its message word W0) may be passed
unreduced, and a compression may return chosen words unreduced or only its first words (see
:func:`sha256_compress`): HMAC uses that for its pad states, inner digest and truncated outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidInput
from ..r1cs import API, Circuit, ConstraintSystem, Secret, compile
from ..r1cs.lc import as_terms, const_value
from .bits import (
    Bits,
    Lazy,
    add_mod,
    bit_ch,
    bit_maj,
    bytes_to_u32_be,
    const_bytes,
    const_u32,
    lazy_sum,
    not_bits,
    rotr,
    shr,
    u32_to_bytes_be,
    xor3_bits,
)
from .registry import register

__all__ = [
    "IV",
    "K",
    "sha256",
    "sha256_blocks",
    "sha256_compress",
    "sha256_compress_native",
    "sha256_digest_bytes",
    "sha256_iv",
    "sha256_native",
    "sha256_padding",
    "sha256_words_native",
]

IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)  # fmt: skip
"""The initial hash value H(0)."""

K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)  # fmt: skip
"""The 64 round constants."""

_M32 = 0xFFFFFFFF


# --------------------------------------------------------------------------- native twins


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M32


def sha256_compress_native(state: Sequence[int], block: Sequence[int]) -> list[int]:
    """The compression function on 8 state words and 16 message words (plain Python ints)."""
    if len(state) != 8 or len(block) != 16:
        raise InvalidInput("sha256_compress_native needs 8 state words and 16 message words")
    if any(not 0 <= x <= _M32 for x in (*state, *block)):
        raise InvalidInput("sha256_compress_native: a word is not a uint32")
    w = list(block)
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10)
        w.append((s1 + w[t - 7] + s0 + w[t - 16]) & _M32)
    a, b, c, d, e, f, g, h = state
    for t in range(64):
        t1 = h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]
        t2 = (_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M32, c, b, a, (t1 + t2) & _M32
    return [(s + x) & _M32 for s, x in zip(state, (a, b, c, d, e, f, g, h), strict=True)]


def sha256_padding(total_len: int) -> bytes:
    """The padding appended to a message of ``total_len`` bytes: 0x80, zeros, the 64-bit bit length."""
    if total_len < 0 or total_len >= 1 << 61:
        raise InvalidInput("sha256_padding: length out of range")
    zeros = (55 - total_len) % 64
    return b"\x80" + b"\x00" * zeros + (8 * total_len).to_bytes(8, "big")


def sha256_words_native(data: bytes) -> list[int]:
    """The big-endian 32-bit words of ``data`` (length a multiple of 4)."""
    if len(data) % 4:
        raise InvalidInput("sha256_words_native: length is not a multiple of 4")
    return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]


def sha256_native(data: bytes) -> bytes:
    """SHA-256 of ``data`` built on :func:`sha256_compress_native` (the twin of :func:`sha256`)."""
    data = bytes(data)
    padded = data + sha256_padding(len(data))
    state = list(IV)
    for i in range(0, len(padded), 64):
        state = sha256_compress_native(state, sha256_words_native(padded[i : i + 64]))
    return b"".join(x.to_bytes(4, "big") for x in state)


# --------------------------------------------------------------------------- circuit


def sha256_iv() -> list[Bits]:
    """The IV as 8 constant words."""
    return [const_u32(x) for x in IV]


def _check_words(words: Sequence, n: int, what: str, lazy_ok: Sequence[int] = ()) -> None:
    if len(words) != n or any(
        not (i in lazy_ok and _is_lazy(x)) and (_is_lazy(x) or len(x) != 32) for i, x in enumerate(words)
    ):
        raise InvalidInput(f"sha256_compress: {what} must be {n} words of 32 bits")


def _is_lazy(x) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], int)


_SUM_ONLY = (3, 7)
"""State words d and h, which a compression only ever adds (round 0's sums and the final addition)."""


def _sigma(api: API, x: Bits, r1: int, r2: int, s: int, shift: bool) -> Bits:
    third = shr(x, s) if shift else rotr(x, s)
    return xor3_bits(api, rotr(x, r1), rotr(x, r2), third)


def _const_term(t) -> int | None:
    """The value of a summand that is a compile-time constant (an int, constant bits or a constant
    Lazy), else None."""
    if isinstance(t, int):
        return t
    if _is_lazy(t):
        return const_value(as_terms(t[0]))
    total = 0
    for i, b in enumerate(t):
        c = const_value(as_terms(b))
        if c is None:
            return None
        total += c << i
    return total


def _fold(terms: list) -> list:
    """The summands with their constant ones merged into one int reduced mod 2^32.

    Every summand is non-negative, so the sum of the variable ones is too, and the result stays
    congruent mod 2^32 with a bound that is never larger (K_t + W_t of a constant message word,
    the IV-derived values of the first rounds).
    """
    const, var = 0, []
    for t in terms:
        c = _const_term(t)
        if c is None:
            var.append(t)
        else:
            const += c
    return [*var, const & _M32] if const & _M32 else var


def _a_terms(d: Bits | Lazy, t1: list, e_new: Bits, s0: Bits, maj: Bits) -> list:
    """Summands of the round's new a = T1 + T2 (mod 2^32) with the smaller bound.

    ``T1 = h + Σ1 + Ch + K + W`` has up to five words, but the new e (``d + T1``, just decomposed
    into 32 bits) already fixes ``T1 = e - d (mod 2^32)``, and ``e + not(d) + 1 = e - d + 2^32``
    is non-negative: so ``e + not(d) + 1 + Σ0 + Maj`` is congruent to ``T1 + T2`` with a bound
    below 2^34 instead of 7·2^32 (one decomposition bit fewer).  Where constants make the direct
    sum smaller (the first rounds from the IV), the direct sum is kept.
    """
    direct = _fold([*t1, s0, maj])
    if _is_lazy(d):
        return direct
    via_e = _fold([e_new, not_bits(d), 1, s0, maj])
    return via_e if lazy_sum(via_e)[1].bit_length() < lazy_sum(direct)[1].bit_length() else direct


def sha256_compress(
    api: API,
    state: Sequence[Bits | Lazy],
    block: Sequence[Bits],
    *,
    n_words: int = 8,
    lazy_words: Sequence[int] = (),
) -> list:
    """The compression function: 8 state words, 16 message words (known boolean) -> new state words.

    Every output bit comes from a decomposition, so it is boolean and unique.  Only the first
    ``n_words`` output words are computed (a truncated digest skips the other final additions).
    Output words listed in ``lazy_words`` are returned unreduced, as
    :data:`~zkmb.gadgets.bits.Lazy` sums congruent to the word mod 2^32, for a consumer that only
    adds them: a compression only ever adds its input state words d and h (round 0's sums, the
    final addition) and its message word W0 (round 0, W16), and accepts them unreduced, so an HMAC
    pad state needs no bits for its d and h, nor an HMAC inner digest for its first word.  (A
    :data:`Lazy` is refused everywhere bits are needed.)  Constraints are recorded under the scopes
    ``sha256_compress/schedule``, ``.../round<t>`` and ``.../final``.
    """
    _check_words(state, 8, "the state", _SUM_ONLY)
    _check_words(block, 16, "the block", (0,))
    if not 1 <= n_words <= 8 or any(not 0 <= i < n_words for i in lazy_words):
        raise InvalidInput("sha256_compress: n_words in 1..8, lazy words among them")
    with api.scope("sha256_compress"):
        w: list[Bits | Lazy] = [x if _is_lazy(x) else list(x) for x in block]
        with api.scope("schedule"):
            for t in range(16, 64):
                terms = [
                    _sigma(api, w[t - 2], 17, 19, 10, True),
                    w[t - 7],
                    _sigma(api, w[t - 15], 7, 18, 3, True),
                    w[t - 16],
                ]
                # W62 and W63 are never an input of σ0/σ1: keep them as unreduced sums
                terms = _fold(terms)
                w.append(add_mod(api, terms) if t < 62 else lazy_sum(terms))
        a, b, c, d, e, f, g, h = (x if _is_lazy(x) else list(x) for x in state)
        for t in range(64):
            with api.scope(f"round{t}"):
                s1 = _sigma(api, e, 6, 11, 25, False)
                ch = [bit_ch(api, ei, fi, gi) for ei, fi, gi in zip(e, f, g, strict=True)]
                t1 = _fold([h, s1, ch, K[t], w[t]])
                s0 = _sigma(api, a, 2, 13, 22, False)
                maj = [bit_maj(api, ai, bi, ci) for ai, bi, ci in zip(a, b, c, strict=True)]
                if t < 63:
                    e_new: Bits | Lazy = add_mod(api, _fold([d, *t1]))
                    a_new: Bits | Lazy = add_mod(api, _a_terms(d, t1, e_new, s0, maj))
                else:  # only added to the state below: fold into those decompositions
                    e_new = lazy_sum(_fold([d, *t1]))
                    a_new = lazy_sum(_fold([*t1, s0, maj]))
                h, g, f, e, d, c, b, a = g, f, e, e_new, c, b, a, a_new
        with api.scope("final"):
            pairs = list(zip(state, (a, b, c, d, e, f, g, h), strict=True))[:n_words]
            return [
                lazy_sum(_fold(p)) if i in lazy_words else add_mod(api, _fold(p)) for i, p in enumerate(pairs)
            ]


def sha256_digest_bytes(state: Sequence[Bits]) -> list[Bits]:
    """The digest bytes of (the first words of) a final state (big-endian words; re-indexing only)."""
    if any(_is_lazy(x) for x in state):
        raise InvalidInput("sha256_digest_bytes: an unreduced word has no bytes")
    return [byte for word in state for byte in u32_to_bytes_be(word)]


def sha256_blocks(
    api: API,
    state: Sequence,
    msg: Sequence[Bits],
    prefix_len: int = 0,
    n_words: int = 8,
    lazy_words: Sequence[int] = (),
) -> list:
    """The state after hashing ``msg`` (plus its constant padding) from ``state``.

    ``state`` must be the state after ``prefix_len`` bytes (a multiple of 64) of an earlier prefix:
    the IV with 0, or an HMAC key's pad state with 64.  The padding encodes the total length
    ``prefix_len + len(msg)``.  Returns the first ``n_words`` final state words (``lazy_words`` of
    them unreduced, see :func:`sha256_compress`).
    """
    if prefix_len < 0 or prefix_len % 64:
        raise InvalidInput("sha256_blocks: the prefix length must be a non-negative multiple of 64")
    if any(len(byte) != 8 for byte in msg):
        raise InvalidInput("sha256_blocks: a message byte needs 8 bits")
    data = list(msg) + const_bytes(sha256_padding(prefix_len + len(msg)))
    st = list(state)
    for i in range(0, len(data), 64):
        block = [bytes_to_u32_be(data[j : j + 4]) for j in range(i, i + 64, 4)]
        last = i + 64 == len(data)
        st = sha256_compress(
            api, st, block, n_words=n_words if last else 8, lazy_words=lazy_words if last else ()
        )
    return st


def sha256(api: API, msg: Sequence[Bits]) -> list[Bits]:
    """SHA-256 of a fixed-length message of known-boolean bytes: the 32 digest bytes."""
    return sha256_digest_bytes(sha256_blocks(api, sha256_iv(), msg))


# --------------------------------------------------------------------------- registered circuits


class _CompressCircuit(Circuit):
    """One compression with every state and message bit a (boolean, unchecked) secret input."""

    state = Secret(count=256)
    block = Secret(count=512)

    def define(self, api: API) -> None:
        st = [self.state[32 * i : 32 * i + 32] for i in range(8)]
        bl = [self.block[32 * i : 32 * i + 32] for i in range(16)]
        sha256_compress(api, st, bl)


@register("sha256_compress")
def compress_circuit() -> ConstraintSystem:
    """The representative circuit of :func:`sha256_compress` (all 768 input bits variable)."""
    return compile(_CompressCircuit)
