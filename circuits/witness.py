"""Client side of CO and PAD: circuit assignments from a captured TLS session (never the network).

:func:`co_assignment` derives the client application key/IV from the captured Handshake Secret and
transcript hashes (natively, with the gadgets' twins), checks every relation of SPEC §3 natively
first (so a bad capture is a clear error, not an unsatisfiable solve), commits to the key with a
fresh CSPRNG blinder, and returns the CO assignment plus the :class:`ClientKeys` that PAD needs.
:func:`pad_assignment` commits to one keystream block with a fresh blinder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zkmb.errors import InvalidInput
from zkmb.gadgets.aes import aes_ctr_keystream_native
from zkmb.gadgets.bits import pack_bytes
from zkmb.gadgets.chacha20 import chacha20_block_native, chacha20_keystream_native, tls_nonce_native
from zkmb.gadgets.hmac import co_key_schedule_native

from .co import FINISHED_CT_LEN, FINISHED_HEADER, FINISHED_RECORD_PAYLOAD, INNER_TYPE_HANDSHAKE
from .commit import (
    AES128GCM,
    CHACHA20,
    PAD_BLOCKS,
    PAD_BYTES,
    Suite,
    comm_k_native,
    comm_pad_native,
    fresh_blinder,
    suite_by_code,
)

__all__ = [
    "ClientKeys",
    "CoAssignment",
    "PadAssignment",
    "PadsAssignment",
    "WitnessError",
    "co_assignment",
    "comm_k_native",
    "comm_pad_native",
    "pad_assignment",
    "pad_block_native",
    "pads_assignment",
]


class WitnessError(InvalidInput):
    """The captured session does not satisfy the relation a statement proves."""


@dataclass(frozen=True)
class ClientKeys:
    """The client application key/IV of one connection and the opening of its ``comm_k`` (secret)."""

    suite: Suite
    key: bytes = field(repr=False)
    iv: bytes = field(repr=False)
    blinder: int = field(repr=False)
    comm_k: int


@dataclass(frozen=True)
class CoAssignment:
    """The CO circuit inputs (``assignment`` for ``cs.solve``) and the public vector they imply."""

    suite: Suite
    assignment: dict = field(repr=False)
    public: list[int]
    keys: ClientKeys


@dataclass(frozen=True)
class PadAssignment:
    """The PAD circuit inputs for block ``j`` of record ``n``, and the committed pad (secret)."""

    n: int
    j: int
    assignment: dict = field(repr=False)
    public: list[int]
    pad: bytes = field(repr=False)
    blinder: int = field(repr=False)
    comm_pad: int


def _finished_keystream_native(suite: Suite, key: bytes, iv: bytes) -> bytes:
    nonce = tls_nonce_native(iv, 0)
    if suite is CHACHA20:
        return chacha20_keystream_native(key, nonce, 1, FINISHED_CT_LEN)
    return aes_ctr_keystream_native(key, nonce, 2, 3)[:FINISHED_CT_LEN]


def co_assignment(session, *, blinder: int | None = None) -> CoAssignment:
    """The CO assignment of a :class:`~zkmb.tls.capture.CapturedSession` (fresh blinder unless given).

    Raises :class:`WitnessError` if the capture is incomplete or its values are inconsistent (the
    derived client traffic secrets differ from the captured ones, or the Finished record does not
    decrypt to ``14 00 00 20 || verify_data || 16`` under the derived handshake key).
    """
    if session.suite is None or session.handshake_secret is None or session.h2 is None or session.h3 is None:
        raise WitnessError("the session has no completed handshake (suite, HS, H2, H3)")
    rec = session.client_finished_record
    if rec is None or len(rec.payload) != FINISHED_RECORD_PAYLOAD or rec.seq != 0:
        raise WitnessError("the session has no 53-byte client Finished record numbered 0")
    suite = suite_by_code(session.suite)
    hs, h2, h3 = bytes(session.handshake_secret), bytes(session.h2), bytes(session.h3)
    if not len(hs) == len(h2) == len(h3) == 32:
        raise WitnessError("HS, H2 and H3 are 32 bytes each")
    ks = co_key_schedule_native(hs, h2, h3, suite.key_len)
    for name, captured in (
        ("chts", session.client_handshake_traffic_secret),
        ("cats", session.client_application_traffic_secret),
    ):
        if captured is not None and bytes(captured) != ks[name]:
            raise WitnessError(f"the captured {name.upper()} differs from the one derived from HS")
    ct = rec.payload[:FINISHED_CT_LEN]
    plain = bytes(
        a ^ b for a, b in zip(ct, _finished_keystream_native(suite, ks["hs_key"], ks["hs_iv"]), strict=True)
    )
    if plain != FINISHED_HEADER + ks["client_finished"] + bytes([INNER_TYPE_HANDSHAKE]):
        raise WitnessError("the client Finished record does not open to HMAC(finished_key, H3)")
    b = fresh_blinder() if blinder is None else blinder
    comm_k = comm_k_native(suite, ks["ap_key"], ks["ap_iv"], b)
    assignment = {
        "h2": pack_bytes(h2),
        "fin_ct": pack_bytes(ct),
        "comm_k": comm_k,
        "hs": pack_bytes(hs),
        "h3": pack_bytes(h3),
        "blinder": b,
    }
    public = [*assignment["h2"], *assignment["fin_ct"], comm_k]
    return CoAssignment(suite, assignment, public, ClientKeys(suite, ks["ap_key"], ks["ap_iv"], b, comm_k))


def pad_block_native(suite: Suite, key: bytes, iv: bytes, n: int, j: int) -> bytes:
    """Keystream block ``j`` (64 bytes) of client application record ``n`` (SPEC §4)."""
    if not isinstance(j, int) or not 0 <= j < PAD_BLOCKS:
        raise InvalidInput(f"block index j outside [0, {PAD_BLOCKS})")
    nonce = tls_nonce_native(iv, n)
    if suite is CHACHA20:
        return chacha20_block_native(key, nonce, 1 + j)
    if suite is AES128GCM:
        return aes_ctr_keystream_native(key, nonce, 2 + 4 * j, PAD_BYTES // 16)
    raise InvalidInput(f"no pad for suite {suite.name}")


@dataclass(frozen=True)
class PadsAssignment:
    """The multi-block PAD circuit inputs (:class:`~zkmb.circuits.pad.KeystreamPads`) for the blocks
    ``(n, j)`` in ``blocks``, and each block's committed pad (secret) and commitment."""

    blocks: tuple[tuple[int, int], ...]
    assignment: dict = field(repr=False)
    public: list[int]
    pads: tuple[bytes, ...] = field(repr=False)
    blinders: tuple[int, ...] = field(repr=False)
    comm_pads: tuple[int, ...]


def pads_assignment(keys: ClientKeys, blocks, *, blinders: list[int] | None = None) -> PadsAssignment:
    """The assignment proving blocks ``[(n, j), ...]`` of one connection in one PAD proof (a fresh
    blinder per pad unless given).  Public vector: ``comm_k``, the ``n``s, the ``j``s, the ``comm_pad``s."""
    blocks = tuple((n, j) for n, j in blocks)
    if not blocks:
        raise InvalidInput("a PAD proof covers at least one block")
    if blinders is not None and len(blinders) != len(blocks):
        raise InvalidInput("one blinder per block")
    singles = [
        pad_assignment(keys, n, j, blinder=None if blinders is None else blinders[i])
        for i, (n, j) in enumerate(blocks)
    ]
    ns, js = [n for n, _ in blocks], [j for _, j in blocks]
    comm_pads = [p.comm_pad for p in singles]
    assignment = {
        "comm_k": keys.comm_k,
        "n": ns,
        "j": js,
        "comm_pad": comm_pads,
        "key": pack_bytes(keys.key),
        "iv": pack_bytes(keys.iv)[0],
        "key_blinder": keys.blinder,
        "pad_blinder": [p.blinder for p in singles],
    }
    return PadsAssignment(
        blocks,
        assignment,
        [keys.comm_k, *ns, *js, *comm_pads],
        tuple(p.pad for p in singles),
        tuple(p.blinder for p in singles),
        tuple(comm_pads),
    )


def pad_assignment(keys: ClientKeys, n: int, j: int, *, blinder: int | None = None) -> PadAssignment:
    """The PAD assignment for block ``j`` of record ``n`` under ``keys`` (fresh pad blinder unless given)."""
    if not isinstance(n, int) or not 0 <= n < (1 << 64) - 1:
        raise InvalidInput("a record number is in [0, 2^64 - 1)")
    pad = pad_block_native(keys.suite, keys.key, keys.iv, n, j)
    b = fresh_blinder() if blinder is None else blinder
    comm_pad = comm_pad_native(pad, b)
    assignment = {
        "comm_k": keys.comm_k,
        "n": n,
        "j": j,
        "comm_pad": comm_pad,
        "key": pack_bytes(keys.key),
        "iv": pack_bytes(keys.iv)[0],
        "key_blinder": keys.blinder,
        "pad_blinder": b,
    }
    return PadAssignment(n, j, assignment, [keys.comm_k, n, j, comm_pad], pad, b, comm_pad)
