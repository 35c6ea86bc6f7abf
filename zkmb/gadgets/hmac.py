"""HMAC-SHA256 (RFC 2104), HKDF (RFC 5869) and the TLS 1.3 key-schedule helpers (RFC 8446 §7.1, §7.3).

Keys, messages and outputs are lists of known-boolean bytes (:mod:`zkmb.gadgets.bits`).  A secret
key is used through its :class:`HmacKey`: the SHA-256 states after the ``key xor ipad`` and ``key
xor opad`` blocks, computed once (2 compressions) and reused by every HMAC under that key.  An
HMAC of a message of at most 55 bytes then costs 2 compressions (inner and outer).

TLS 1.3 only needs HKDF-Expand outputs of at most 32 bytes (one HMAC block).  The ``HkdfLabel``
of HKDF-Expand-Label has a fixed layout for a given label and context length, so with a 32-byte
context (a transcript hash that is a circuit input) the whole inner message is constant except
those 32 bytes, and its padding is constant: one compression from the inner pad state.

Beyond plain SHA-256 (see :mod:`zkmb.gadgets.sha256`):

* a pad state's words d and h stay unreduced (compressions from it only add them), and so does
  the inner digest's first word, which is the outer block's W0 (only added);
* a truncated output (a 12-byte IV, a 16-byte key) skips the final additions of unused words;
* ``hmac_key`` computes its ipad and opad blocks inside
  :func:`~zkmb.gadgets.bits.shared_products`: the blocks differ by a constant xor, so their
  message-schedule sigma xors are made once; :func:`co_key_schedule` runs wholly inside one, so
  compressions from the same pad state also share round 0's Σ/Ch/Maj (224 products).

Constraint counts (32-byte keys; pinned in ``tests/gadgets/test_hkdf.py``):

==================================================  ========
``hmac_key`` (ipad + opad states from the IV)         49,965
``hmac_sha256``, cached pads, 32-byte message         51,208
``hmac_sha256`` from key bytes, 32-byte message      101,173
``hkdf_expand_label``, cached pads, 32-byte context   51,243
``hkdf_expand_label`` from secret bytes              101,208
``traffic_key_iv(., 32)`` / ``finished_key``,         89,175 / 44,675
cached pads (no sharing across calls)
``derive_secret(., "derived", EMPTY_HASH)``           44,675 (constant message)
``co_key_schedule`` (SPEC §3 chain, from HS bytes)   763,717 (was 771,928)
==================================================  ========
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import InvalidInput
from ..r1cs import API, Circuit, ConstraintSystem, Secret, compile
from .bits import Bits, bytes_to_u32_be, const_bytes, const_u32, shared_products
from .registry import register
from .sha256 import (
    IV,
    sha256_blocks,
    sha256_compress,
    sha256_digest_bytes,
    sha256_native,
    sha256_padding,
    sha256_words_native,
)

__all__ = [
    "EMPTY_HASH",
    "HASH_LEN",
    "CoKeys",
    "HmacKey",
    "co_key_schedule",
    "co_key_schedule_native",
    "derive_secret",
    "derive_secret_native",
    "finished_key",
    "finished_key_native",
    "hkdf_expand",
    "hkdf_expand_label",
    "hkdf_expand_label_native",
    "hkdf_expand_native",
    "hkdf_extract",
    "hkdf_extract_native",
    "hkdf_label",
    "hmac_key",
    "hmac_sha256",
    "hmac_sha256_native",
    "traffic_key_iv",
    "traffic_key_iv_native",
]

HASH_LEN = 32
BLOCK_LEN = 64
EMPTY_HASH = hashlib.sha256(b"").digest()
"""Transcript-Hash of no messages, the context of ``Derive-Secret(., "derived", "")``."""

_IPAD = 0x36
_OPAD = 0x5C
_OUTER_PADDING = sha256_words_native(sha256_padding(BLOCK_LEN + HASH_LEN))
"""Message words 8..15 of the outer hash's one block: the padding after the 32-byte inner digest."""


# --------------------------------------------------------------------------- native twins


def hmac_sha256_native(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 on :func:`~zkmb.gadgets.sha256.sha256_native` (keys of at most 64 bytes)."""
    key = bytes(key)
    if len(key) > BLOCK_LEN:
        raise InvalidInput("hmac_sha256_native: keys longer than 64 bytes are not supported")
    k = key.ljust(BLOCK_LEN, b"\0")
    inner = sha256_native(bytes(x ^ _IPAD for x in k) + bytes(msg))
    return sha256_native(bytes(x ^ _OPAD for x in k) + inner)


def hkdf_extract_native(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) = HMAC(salt, IKM)."""
    return hmac_sha256_native(salt, ikm)


def hkdf_expand_native(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand for ``length <= 32`` (the first block T(1) = HMAC(PRK, info || 0x01), truncated)."""
    _check_length(length)
    return hmac_sha256_native(prk, bytes(info) + b"\x01")[:length]


def hkdf_label(label: bytes | str, context: bytes, length: int) -> bytes:
    """The ``HkdfLabel`` structure: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context."""
    full = b"tls13 " + _label_bytes(label)
    context = bytes(context)
    if not 7 <= len(full) <= 255 or len(context) > 255 or not 0 <= length < 1 << 16:
        raise InvalidInput("hkdf_label: label, context or length out of range")
    return length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context


def hkdf_expand_label_native(secret: bytes, label: bytes | str, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) for ``Length <= 32``."""
    return hkdf_expand_native(secret, hkdf_label(label, context, length), length)


def derive_secret_native(secret: bytes, label: bytes | str, transcript_hash: bytes) -> bytes:
    """Derive-Secret(Secret, Label, Messages) given ``Transcript-Hash(Messages)``."""
    return hkdf_expand_label_native(secret, label, transcript_hash, HASH_LEN)


def traffic_key_iv_native(secret: bytes, key_len: int) -> tuple[bytes, bytes]:
    """(write_key, write_iv) of a traffic secret (RFC 8446 §7.3): key_len 16 or 32, iv 12 bytes."""
    _check_key_len(key_len)
    key = hkdf_expand_label_native(secret, "key", b"", key_len)
    return key, hkdf_expand_label_native(secret, "iv", b"", 12)


def finished_key_native(secret: bytes) -> bytes:
    """finished_key = HKDF-Expand-Label(BaseKey, "finished", "", 32) (RFC 8446 §4.4.4)."""
    return hkdf_expand_label_native(secret, "finished", b"", HASH_LEN)


def _label_bytes(label: bytes | str) -> bytes:
    if isinstance(label, str):
        try:
            return label.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidInput("a TLS 1.3 label is ASCII") from None
    return bytes(label)


def _check_length(length: int) -> None:
    if not isinstance(length, int) or not 1 <= length <= HASH_LEN:
        raise InvalidInput("HKDF-Expand here produces 1 to 32 bytes (one block)")


def _check_key_len(key_len: int) -> None:
    if key_len not in (16, 32):
        raise InvalidInput("traffic keys are 16 (AES-128-GCM) or 32 (ChaCha20-Poly1305) bytes")


# --------------------------------------------------------------------------- circuit


def _as_bytes(x) -> list[Bits]:
    """Constant bytes (``bytes``) or known-boolean bytes (lists of 8 bits), as a list of bytes."""
    if isinstance(x, bytes | bytearray):
        return const_bytes(bytes(x))
    out = [list(b) for b in x]
    if any(len(b) != 8 for b in out):
        raise InvalidInput("a byte needs 8 bits")
    return out


@dataclass(frozen=True)
class HmacKey:
    """An HMAC-SHA256 key prepared for reuse: the states after the ipad and opad blocks.

    Words d and h (indices 3, 7) are unreduced sums (:data:`~zkmb.gadgets.bits.Lazy`), congruent to
    the state words mod 2^32: compressions from a state only add them (see
    :func:`~zkmb.gadgets.sha256.sha256_compress`).
    """

    inner: list
    outer: list


def hmac_key(api: API, key) -> HmacKey:
    """The pad states of a key of at most 64 bytes (2 compressions, each from the constant IV).

    ``key xor ipad`` and ``key xor opad`` are linear in the key bits (xor with a constant).
    """
    kb = _as_bytes(key)
    if len(kb) > BLOCK_LEN:
        raise InvalidInput("hmac_key: keys longer than 64 bytes are not supported")
    kb += const_bytes(bytes(BLOCK_LEN - len(kb)))
    iv = [const_u32(x) for x in IV]
    states = []
    with api.scope("hmac_key"), shared_products(api):  # the two blocks share their sigma xors
        for pad in (_IPAD, _OPAD):
            padded = [[(1 - b) if (pad >> i) & 1 else b for i, b in enumerate(byte)] for byte in kb]
            block = [bytes_to_u32_be(padded[j : j + 4]) for j in range(0, BLOCK_LEN, 4)]
            states.append(sha256_compress(api, iv, block, lazy_words=(3, 7)))
    return HmacKey(states[0], states[1])


def _key(api: API, key) -> HmacKey:
    return key if isinstance(key, HmacKey) else hmac_key(api, key)


def hmac_sha256(api: API, key, msg, length: int = HASH_LEN) -> list[Bits]:
    """HMAC-SHA256(key, msg), truncated to its first ``length`` bytes (1..32).

    ``key`` is an :class:`HmacKey` (reused pad states) or key bytes (the pads are computed here);
    ``msg`` is constant ``bytes`` or known-boolean bytes of a fixed length.  A truncated output
    skips the final additions of the digest words it does not use.
    """
    _check_length(length)
    k = _key(api, key)
    m = _as_bytes(msg)
    with api.scope("hmac"):
        with api.scope("inner"):
            # the inner digest is the outer block's first 8 words; W0 is only added, so it stays unreduced
            inner = sha256_blocks(api, k.inner, m, BLOCK_LEN, lazy_words=(0,))
        with api.scope("outer"):
            block = inner + [const_u32(x) for x in _OUTER_PADDING]
            words = sha256_compress(api, k.outer, block, n_words=-(-length // 4))
            return sha256_digest_bytes(words)[:length]


def hkdf_extract(api: API, salt, ikm) -> list[Bits]:
    """HKDF-Extract(salt, IKM) = HMAC(salt, IKM) (``salt`` as for the ``key`` of :func:`hmac_sha256`)."""
    return hmac_sha256(api, salt, ikm)


def hkdf_expand(api: API, prk, info, length: int) -> list[Bits]:
    """HKDF-Expand(PRK, info, length) for length <= 32: HMAC(PRK, info || 0x01), truncated."""
    _check_length(length)
    return hmac_sha256(api, prk, _as_bytes(info) + const_bytes(b"\x01"), length)


def hkdf_expand_label(api: API, secret, label: bytes | str, context, length: int) -> list[Bits]:
    """HKDF-Expand-Label(Secret, Label, Context, Length), Length <= 32.

    ``secret`` is an :class:`HmacKey` or 32 secret bytes; ``context`` constant ``bytes`` or bytes of
    bits (e.g. a 32-byte transcript hash input).  Only the context bytes of the label are variable.
    """
    ctx = _as_bytes(context)
    prefix = hkdf_label(label, bytes(len(ctx)), length)[: -len(ctx) or None]
    return hkdf_expand(api, secret, const_bytes(prefix) + ctx, length)


def derive_secret(api: API, secret, label: bytes | str, transcript_hash) -> list[Bits]:
    """Derive-Secret(Secret, Label, Messages) with ``Transcript-Hash(Messages)`` given (32 bytes)."""
    th = _as_bytes(transcript_hash)
    if len(th) != HASH_LEN:
        raise InvalidInput("derive_secret: the transcript hash has 32 bytes")
    return hkdf_expand_label(api, secret, label, th, HASH_LEN)


def traffic_key_iv(api: API, secret, key_len: int) -> tuple[list[Bits], list[Bits]]:
    """(write_key, write_iv) from a traffic secret (pads computed once and shared if bytes are given)."""
    _check_key_len(key_len)
    k = _key(api, secret)
    with api.scope("key"):
        key = hkdf_expand_label(api, k, "key", b"", key_len)
    with api.scope("iv"):
        iv = hkdf_expand_label(api, k, "iv", b"", 12)
    return key, iv


def finished_key(api: API, secret) -> list[Bits]:
    """finished_key = HKDF-Expand-Label(secret, "finished", "", 32)."""
    return hkdf_expand_label(api, secret, "finished", b"", HASH_LEN)


@dataclass(frozen=True)
class CoKeys:
    """The values the channel-opening key schedule produces (byte lists; see :func:`co_key_schedule`)."""

    chts: list[Bits]
    hs_key: list[Bits]
    hs_iv: list[Bits]
    finished_key: list[Bits]
    client_finished: list[Bits]
    dhs: list[Bits]
    ms: list[Bits]
    cats: list[Bits]
    ap_key: list[Bits]
    ap_iv: list[Bits]


def co_key_schedule(api: API, hs, h2, h3, key_len: int) -> CoKeys:
    """The key schedule of SPEC §3 (statement CO) from the Handshake Secret and two transcript hashes.

    ``CHTS = Derive-Secret(HS, "c hs traffic", H2)``, the client handshake key/IV and finished_key
    from CHTS, the client Finished verify_data ``HMAC(finished_key, H3)``, ``dHS = Derive-Secret(HS,
    "derived", "")``, ``MS = HKDF-Extract(dHS, 0^32)``, ``CATS = Derive-Secret(MS, "c ap traffic",
    H3)`` and the client application key/IV.  HS and CHTS pad states are computed once and shared
    (``hs`` may be an :class:`HmacKey` already).
    """
    _check_key_len(key_len)
    with api.scope("co_keys"), shared_products(api):
        with api.scope("hs"):
            k_hs = _key(api, hs)
        with api.scope("chts"):
            chts = derive_secret(api, k_hs, "c hs traffic", h2)
        with api.scope("hs_traffic"):
            k_chts = hmac_key(api, chts)
            hs_key, hs_iv = traffic_key_iv(api, k_chts, key_len)
            with api.scope("finished_key"):
                fk = finished_key(api, k_chts)
        with api.scope("client_finished"):
            fin = hmac_sha256(api, fk, h3)
        with api.scope("derived"):
            dhs = derive_secret(api, k_hs, "derived", EMPTY_HASH)
        with api.scope("master"):
            ms = hkdf_extract(api, dhs, bytes(HASH_LEN))
        with api.scope("cats"):
            cats = derive_secret(api, ms, "c ap traffic", h3)
        with api.scope("ap_traffic"):
            ap_key, ap_iv = traffic_key_iv(api, cats, key_len)
    return CoKeys(chts, hs_key, hs_iv, fk, fin, dhs, ms, cats, ap_key, ap_iv)


def co_key_schedule_native(hs: bytes, h2: bytes, h3: bytes, key_len: int) -> dict[str, bytes]:
    """Native twin of :func:`co_key_schedule` (same field names, as bytes)."""
    chts = derive_secret_native(hs, "c hs traffic", h2)
    hs_key, hs_iv = traffic_key_iv_native(chts, key_len)
    fk = finished_key_native(chts)
    dhs = derive_secret_native(hs, "derived", EMPTY_HASH)
    ms = hkdf_extract_native(dhs, bytes(HASH_LEN))
    cats = derive_secret_native(ms, "c ap traffic", h3)
    ap_key, ap_iv = traffic_key_iv_native(cats, key_len)
    return dict(
        chts=chts, hs_key=hs_key, hs_iv=hs_iv, finished_key=fk, client_finished=hmac_sha256_native(fk, h3),
        dhs=dhs, ms=ms, cats=cats, ap_key=ap_key, ap_iv=ap_iv,
    )  # fmt: skip


# --------------------------------------------------------------------------- registered circuits


def _byte_inputs(bits) -> list[Bits]:
    return [list(bits[8 * i : 8 * i + 8]) for i in range(len(bits) // 8)]


class _HmacCircuit(Circuit):
    """HMAC with a 32-byte secret key over a 32-byte secret message (bits as unchecked inputs)."""

    key = Secret(count=256)
    msg = Secret(count=256)

    def define(self, api: API) -> None:
        hmac_sha256(api, _byte_inputs(self.key), _byte_inputs(self.msg))


class _ExpandLabelCircuit(Circuit):
    """HKDF-Expand-Label(secret, "c hs traffic", context, 32): 32-byte secret, 32-byte context."""

    secret = Secret(count=256)
    context = Secret(count=256)

    def define(self, api: API) -> None:
        hkdf_expand_label(api, _byte_inputs(self.secret), "c hs traffic", _byte_inputs(self.context), 32)


class _CoKeyScheduleCircuit(Circuit):
    """The key-schedule part of SPEC §3 (statement CO), AES-128-GCM key sizes.

    From HS, H2, H3: CHTS, client handshake key/IV, finished_key, HMAC(finished_key, H3), dHS, MS,
    CATS, client application key/IV.
    """

    hs = Secret(count=256)
    h2 = Secret(count=256)
    h3 = Secret(count=256)

    def define(self, api: API) -> None:
        co_key_schedule(api, _byte_inputs(self.hs), _byte_inputs(self.h2), _byte_inputs(self.h3), 16)


@register("hmac_sha256")
def hmac_circuit() -> ConstraintSystem:
    """Representative circuit of :func:`hmac_sha256` (32-byte key and message, pads included)."""
    return compile(_HmacCircuit)


@register("hkdf_expand_label")
def expand_label_circuit() -> ConstraintSystem:
    """Representative circuit of :func:`hkdf_expand_label` (32-byte secret and context, pads included)."""
    return compile(_ExpandLabelCircuit)


@register("tls13_co_key_schedule")
def co_key_schedule_circuit() -> ConstraintSystem:
    """Representative circuit of :func:`co_key_schedule` (AES-128-GCM key size)."""
    return compile(_CoKeyScheduleCircuit)
