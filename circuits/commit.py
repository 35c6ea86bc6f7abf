"""The Poseidon commitments of statements CO, PAD and Q (SPEC §3, §4, §7): layouts and native twins.

Both sides use this module: the client to commit, the middlebox only for the constants (it never
learns an opening).  Layouts (docs/protocol.md, "Statements"):

* ``comm_k = Poseidon(TAG_KEY_COMMITMENT, suite, key_0[, key_1], iv, blinder)``: ``suite`` is the
  IANA code of the cipher suite (0x1303 ChaCha20-Poly1305, 0x1301 AES-128-GCM); the key is packed
  by :func:`~zkmb.gadgets.bits.pack_bytes` (32 bytes -> 2 elements, 16 bytes -> 1), the 12-byte IV
  into 1 element.  Poseidon(6) for ChaCha20, Poseidon(5) for AES-128-GCM.
* ``comm_pad = Poseidon(pad_0, pad_1, pad_2, blinder)`` with ``TAG_PAD_COMMITMENT`` in the capacity
  element (circomlib ``PoseidonEx`` ``initialState``): the 64-byte keystream block packed into
  31 + 31 + 2 bytes (Poseidon(4), 297 constraints; PAD and Q both use :func:`comm_pad_hash`).

Blinders are uniform in [0, r) from :mod:`secrets` (:func:`fresh_blinder`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import pack_bytes
from zkmb.gadgets.poseidon import poseidon, poseidon_native
from zkmb.gadgets.tags import TAG_KEY_COMMITMENT, TAG_PAD_COMMITMENT
from zkmb.r1cs import LC

__all__ = [
    "AES128GCM",
    "CHACHA20",
    "PAD_BYTES",
    "PAD_BLOCKS",
    "SUITES",
    "Suite",
    "comm_k_inputs",
    "comm_k_native",
    "comm_pad_hash",
    "comm_pad_inputs",
    "comm_pad_native",
    "fresh_blinder",
    "suite_by_code",
    "suite_by_name",
]

PAD_BYTES = 64
"""Bytes of keystream per PAD block (one ChaCha20 block, four AES blocks)."""

PAD_BLOCKS = 7
"""SPEC §4: block indices 0 <= j < 7 (448 bytes, the largest size class)."""


@dataclass(frozen=True)
class Suite:
    """A cipher suite of the profile (SPEC §2): its IANA code (the suite tag) and key length."""

    name: str
    code: int
    key_len: int

    def __reduce__(self):
        """Copies and unpickled suites are the module's own objects (code compares suites with
        ``is``; a suite that came back from another process must still be CHACHA20, issue 15)."""
        return suite_by_code, (self.code,)


CHACHA20 = Suite("chacha20", 0x1303, 32)
AES128GCM = Suite("aes128gcm", 0x1301, 16)
SUITES: tuple[Suite, ...] = (CHACHA20, AES128GCM)


def suite_by_name(name: str) -> Suite:
    """The suite called ``chacha20`` or ``aes128gcm`` (InvalidInput otherwise)."""
    for s in SUITES:
        if s.name == name:
            return s
    raise InvalidInput(f"unknown cipher suite name {name!r} (chacha20 or aes128gcm)")


def suite_by_code(code: int) -> Suite:
    """The suite with IANA code 0x1303 or 0x1301 (InvalidInput otherwise)."""
    for s in SUITES:
        if s.code == code:
            return s
    raise InvalidInput(f"cipher suite 0x{code:04x} is not in the profile (SPEC §2)")


def _blinder(b: int) -> int:
    if not isinstance(b, int) or not 0 <= b < R:
        raise InvalidInput("a blinder is an integer in [0, r)")
    return b


def fresh_blinder() -> int:
    """A uniform element of F_r from the OS CSPRNG (SPEC §7: fresh for every commitment)."""
    return secrets.randbelow(R)


def comm_k_inputs(suite: Suite, key: bytes, iv: bytes, blinder: int) -> list[int]:
    """The Poseidon inputs of ``comm_k`` (tag first)."""
    key, iv = bytes(key), bytes(iv)
    if len(key) != suite.key_len or len(iv) != 12:
        raise InvalidInput(f"{suite.name}: key is {suite.key_len} bytes and IV 12 bytes")
    return [TAG_KEY_COMMITMENT, suite.code, *pack_bytes(key), *pack_bytes(iv), _blinder(blinder)]


def comm_k_native(suite: Suite, key: bytes, iv: bytes, blinder: int) -> int:
    """``comm_k`` of a client application key/IV (SPEC §3)."""
    return poseidon_native(comm_k_inputs(suite, key, iv, blinder))


def comm_pad_inputs(pad: bytes, blinder: int) -> list[int]:
    """The Poseidon inputs of ``comm_pad`` (the tag is the capacity element, not an input)."""
    pad = bytes(pad)
    if len(pad) != PAD_BYTES:
        raise InvalidInput(f"a pad block is {PAD_BYTES} bytes")
    return [*pack_bytes(pad), _blinder(blinder)]


def comm_pad_native(pad: bytes, blinder: int) -> int:
    """``comm_pad`` of one 64-byte keystream block (SPEC §4)."""
    return poseidon_native(comm_pad_inputs(pad, blinder), init=TAG_PAD_COMMITMENT)


def comm_pad_hash(api, pad_elems, blinder) -> LC:
    """In-circuit ``comm_pad`` of the 3 packed pad elements and the blinder (the caller range-checks the
    elements): Poseidon(4) with capacity ``TAG_PAD_COMMITMENT``, 297 constraints."""
    if len(pad_elems) != 3:
        raise InvalidInput("comm_pad takes the pad as 3 packed elements")
    return poseidon(api, [*pad_elems, blinder], init=TAG_PAD_COMMITMENT)
