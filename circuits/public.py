"""Middlebox side of CO and PAD: public inputs from the bytes on the wire only (SPEC §2, §7).

Nothing here touches a secret: this module imports neither the client's TLS stack
(:mod:`zkmb.tls`) nor :mod:`zkmb.circuits.witness` (a test checks ``sys.modules``), so it re-parses
the handshake itself, strictly:

* client -> server: the ClientHello (a second one after a HelloRetryRequest), at most one
  compatibility ChangeCipherSpec ``14 03 03 00 01 01`` (before the second ClientHello or before the
  Finished), then the first outer-type-0x17 record, which must carry exactly 53 bytes of payload:
  the client Finished under the handshake key.
* server -> client: the ServerHello (after a HelloRetryRequest and an optional ChangeCipherSpec);
  what follows it is encrypted and not parsed.

``H2 = SHA-256(ClientHello || ServerHello)``, or after a HelloRetryRequest ``SHA-256(message_hash ||
HelloRetryRequest || ClientHello2 || ServerHello)`` with ``message_hash = fe 00 00 20 ||
SHA-256(ClientHello1)`` (RFC 8446 §4.4.1).  SPEC §2 violations raise :class:`HandshakeRejected`;
a capture that ends too early raises :class:`IncompleteCapture`; out-of-range PAD inputs raise
:class:`PublicInputRejected` (all :class:`~zkmb.errors.InvalidInput`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterator
from dataclasses import dataclass

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import pack_bytes

from .commit import PAD_BLOCKS, Suite, suite_by_code

__all__ = [
    "FINISHED_RECORD_LEN",
    "PAD_WINDOW",
    "ChannelView",
    "HandshakeRejected",
    "IncompleteCapture",
    "PublicInputRejected",
    "co_public_inputs",
    "pad_public_inputs",
    "parse_channel",
]

_CT_CCS, _CT_ALERT, _CT_HANDSHAKE, _CT_APP = 20, 21, 22, 23
_CCS_RECORD = bytes([0x14, 0x03, 0x03, 0x00, 0x01, 0x01])
_HT_CLIENT_HELLO, _HT_SERVER_HELLO = 1, 2
_TLS13 = 0x0304
_HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()  # RFC 8446 §4.1.3

_EXT_PRE_SHARED_KEY = 41
_EXT_EARLY_DATA = 42
_EXT_SUPPORTED_VERSIONS = 43
_EXT_POST_HANDSHAKE_AUTH = 49
_EXT_KEY_SHARE = 51
_EXT_ECH = 0xFE0D
_FORBIDDEN_CH_EXTS = {
    _EXT_PRE_SHARED_KEY: "pre_shared_key",
    _EXT_EARLY_DATA: "early_data",
    _EXT_ECH: "encrypted_client_hello",
    _EXT_POST_HANDSHAKE_AUTH: "post_handshake_auth",
}

FINISHED_CT_LEN = 37
FINISHED_RECORD_LEN = 5 + FINISHED_CT_LEN + 16
"""The client Finished record on the wire: header ``17 03 03 00 35`` and 53 bytes of payload."""

PAD_WINDOW = 64
"""SPEC §4: PAD proofs are accepted for record numbers in [next, next + W]."""

_MAX_PLAIN = 1 << 14


class HandshakeRejected(InvalidInput):
    """The handshake bytes violate the TLS 1.3 profile the middlebox admits (SPEC §2)."""


class IncompleteCapture(InvalidInput):
    """The captured bytes end before the messages the public inputs need."""


class PublicInputRejected(InvalidInput):
    """A public input the middlebox would never accept (SPEC §4 ranges, non-field values)."""


# --------------------------------------------------------------------------- byte reading


class _Reader:
    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise HandshakeRejected(f"{self.what}: truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, len_bytes: int) -> bytes:
        return self.take(self.uint(len_bytes))

    def end(self) -> None:
        if self.pos != len(self.data):
            raise HandshakeRejected(f"{self.what}: trailing bytes")


def _extensions(r: _Reader, what: str) -> dict[int, bytes]:
    block = _Reader(r.vector(2), f"{what} extensions")
    out: dict[int, bytes] = {}
    while block.pos < len(block.data):
        typ = block.uint(2)
        body = block.vector(2)
        if typ in out:
            raise HandshakeRejected(f"{what}: extension {typ} appears twice")
        out[typ] = body
    return out


@dataclass(frozen=True)
class _Hello:
    raw: bytes
    random: bytes
    session_id: bytes
    suites: tuple[int, ...]
    extensions: dict[int, bytes]


def _client_hello(msg: bytes) -> _Hello:
    r = _Reader(msg[4:], "ClientHello")
    if r.uint(2) != 0x0303:
        raise HandshakeRejected("ClientHello: legacy_version is not 0x0303")
    random = r.take(32)
    sid = r.vector(1)
    if len(sid) > 32:
        raise HandshakeRejected("ClientHello: legacy_session_id longer than 32 bytes")
    suites_raw = r.vector(2)
    if not suites_raw or len(suites_raw) % 2:
        raise HandshakeRejected("ClientHello: malformed cipher_suites")
    suites = tuple(int.from_bytes(suites_raw[i : i + 2], "big") for i in range(0, len(suites_raw), 2))
    if r.vector(1) != b"\x00":
        raise HandshakeRejected("ClientHello: legacy_compression_methods must be exactly [null]")
    exts = _extensions(r, "ClientHello")
    r.end()
    for typ, name in _FORBIDDEN_CH_EXTS.items():
        if typ in exts:
            raise HandshakeRejected(f"ClientHello carries {name} (SPEC §2: full handshakes only)")
    sv = _Reader(exts.get(_EXT_SUPPORTED_VERSIONS, b""), "ClientHello supported_versions")
    if _EXT_SUPPORTED_VERSIONS not in exts:
        raise HandshakeRejected("ClientHello: no supported_versions extension (TLS 1.3 only)")
    versions = sv.vector(1)
    sv.end()
    offered = [versions[i : i + 2] for i in range(0, len(versions), 2)]
    if len(versions) % 2 or _TLS13.to_bytes(2, "big") not in offered:
        raise HandshakeRejected("ClientHello: TLS 1.3 not offered")
    return _Hello(msg, random, sid, suites, exts)


def _server_hello(msg: bytes) -> _Hello:
    r = _Reader(msg[4:], "ServerHello")
    if r.uint(2) != 0x0303:
        raise HandshakeRejected("ServerHello: legacy_version is not 0x0303")
    random = r.take(32)
    sid = r.vector(1)
    if len(sid) > 32:
        raise HandshakeRejected("ServerHello: legacy_session_id_echo longer than 32 bytes")
    suite = r.uint(2)
    if r.uint(1) != 0:
        raise HandshakeRejected("ServerHello: legacy_compression_method is not 0")
    exts = _extensions(r, "ServerHello")
    r.end()
    if exts.get(_EXT_SUPPORTED_VERSIONS) != _TLS13.to_bytes(2, "big"):
        raise HandshakeRejected("ServerHello does not select TLS 1.3 (supported_versions 0x0304)")
    if _EXT_PRE_SHARED_KEY in exts:
        raise HandshakeRejected("ServerHello selects a PSK (SPEC §2: full handshakes only)")
    try:
        suite_by_code(suite)
    except InvalidInput:
        raise HandshakeRejected(
            f"ServerHello selects cipher suite 0x{suite:04x}, not in the profile"
        ) from None
    return _Hello(msg, random, sid, (suite,), exts)


# --------------------------------------------------------------------------- records and messages


def _records(stream: bytes, who: str) -> Iterator[tuple[int, bytes, bytes, int]]:
    """(content type, payload, raw record, end offset) for every complete record; strict headers."""
    pos = 0
    while pos + 5 <= len(stream):
        ctype, version, length = (
            stream[pos],
            stream[pos + 1 : pos + 3],
            int.from_bytes(stream[pos + 3 : pos + 5], "big"),
        )
        if ctype not in (_CT_CCS, _CT_ALERT, _CT_HANDSHAKE, _CT_APP):
            raise HandshakeRejected(f"{who}: record of unknown content type {ctype}")
        if version not in (b"\x03\x03", b"\x03\x01") or (ctype == _CT_APP and version != b"\x03\x03"):
            raise HandshakeRejected(f"{who}: bad legacy_record_version {version.hex()}")
        if length == 0 or length > _MAX_PLAIN + (256 if ctype == _CT_APP else 0):
            raise HandshakeRejected(f"{who}: record length {length} out of range")
        if pos + 5 + length > len(stream):
            break
        raw = bytes(stream[pos : pos + 5 + length])
        pos += 5 + length
        yield ctype, raw[5:], raw, pos
    raise IncompleteCapture(f"{who}: the capture ends before the handshake messages needed")


class _Messages:
    """Handshake messages reassembled from plaintext handshake records of one direction."""

    def __init__(self, who: str):
        self.buf = bytearray()
        self.who = who

    def feed(self, payload: bytes) -> list[bytes]:
        self.buf += payload
        out = []
        while len(self.buf) >= 4:
            n = int.from_bytes(self.buf[1:4], "big")
            if n > _MAX_PLAIN:
                raise HandshakeRejected(f"{self.who}: handshake message of {n} bytes")
            if len(self.buf) < 4 + n:
                break
            out.append(bytes(self.buf[: 4 + n]))
            del self.buf[: 4 + n]
        return out


@dataclass(frozen=True)
class ChannelView:
    """What the middlebox derives from the handshake bytes (the public side of CO)."""

    suite: Suite
    h2: bytes
    finished_ct: bytes
    """The 37 ciphertext bytes of the client Finished record (tag excluded)."""
    finished_record: bytes
    client_random: bytes
    hello_retry: bool
    client_app_offset: int
    """Offset in the client stream of the first byte after the Finished record."""


def _server_side(server_bytes: bytes) -> tuple[_Hello | None, _Hello]:
    msgs = _Messages("server")
    hrr: _Hello | None = None
    ccs = 0
    for ctype, payload, raw, _ in _records(server_bytes, "server"):
        if ctype == _CT_CCS:
            if raw != _CCS_RECORD or ccs or hrr is None:
                raise HandshakeRejected("server: unexpected ChangeCipherSpec before the ServerHello")
            ccs += 1
            continue
        if ctype != _CT_HANDSHAKE:
            raise HandshakeRejected(f"server: record of type {ctype} before the ServerHello")
        for msg in msgs.feed(payload):
            if msg[0] != _HT_SERVER_HELLO:
                raise HandshakeRejected(f"server: handshake message {msg[0]} before the ServerHello")
            if msgs.buf:
                raise HandshakeRejected("server: a ServerHello does not end its record")
            hello = _server_hello(msg)
            if hello.random != _HRR_RANDOM:
                if _EXT_KEY_SHARE not in hello.extensions:
                    raise HandshakeRejected("ServerHello: no key_share (SPEC §2: (EC)DHE only)")
                return hrr, hello
            if hrr is not None:
                raise HandshakeRejected("server: a second HelloRetryRequest")
            hrr = hello
    raise AssertionError("unreachable")  # pragma: no cover - _records raises at the end


def parse_channel(
    client_bytes: bytes, server_bytes: bytes, *, seen_randoms: Container[bytes] = ()
) -> ChannelView:
    """Check the handshake bytes against SPEC §2 and derive ``H2``, the Finished ciphertext and the suite.

    ``client_bytes``/``server_bytes``: the TCP payload in each direction from the first byte (more
    may follow; only what is needed is read).  ``seen_randoms``: ClientHello randoms of earlier
    connections (SPEC §2: a repeated random is refused).
    """
    client_bytes, server_bytes = bytes(client_bytes), bytes(server_bytes)
    hrr, sh = _server_side(server_bytes)
    suite = suite_by_code(sh.suites[0])

    msgs = _Messages("client")
    hellos: list[_Hello] = []
    ccs = 0
    for ctype, payload, raw, end_offset in _records(client_bytes, "client"):
        if ctype == _CT_HANDSHAKE:
            if len(hellos) == (2 if hrr is not None else 1):
                raise HandshakeRejected("client: handshake record after the last ClientHello")
            for msg in msgs.feed(payload):
                if msg[0] != _HT_CLIENT_HELLO:
                    raise HandshakeRejected(f"client: plaintext handshake message {msg[0]}")
                if msgs.buf:
                    raise HandshakeRejected("client: a ClientHello does not end its record")
                if len(hellos) == (2 if hrr is not None else 1):
                    raise HandshakeRejected("client: one ClientHello too many")
                hellos.append(_client_hello(msg))
            continue
        if ctype == _CT_CCS:
            if raw != _CCS_RECORD or ccs or not hellos or msgs.buf:
                raise HandshakeRejected("client: ChangeCipherSpec not admitted here (SPEC §2)")
            ccs += 1
            continue
        if ctype == _CT_ALERT:
            raise HandshakeRejected("client: alert record during the handshake")
        # the first protected record: the client Finished
        if len(hellos) != (2 if hrr is not None else 1) or msgs.buf:
            raise HandshakeRejected("client: protected record before the ClientHello(s) are complete")
        if len(raw) != FINISHED_RECORD_LEN:
            raise HandshakeRejected(
                f"client: the Finished record has {len(payload)} bytes of payload, not 53"
            )
        finished, end = raw, end_offset
        break
    ch1 = hellos[0]
    if ch1.random in seen_randoms:
        raise HandshakeRejected("ClientHello random already seen on another connection")
    if suite.code not in ch1.suites:
        raise HandshakeRejected("ServerHello selects a cipher suite the client did not offer")
    if hrr is not None:
        ch2 = hellos[1]
        if ch2.random != ch1.random:
            raise HandshakeRejected("the second ClientHello changes the random (RFC 8446 §4.1.2)")
        if hrr.suites != sh.suites:
            raise HandshakeRejected("ServerHello and HelloRetryRequest select different suites")
        if suite.code not in ch2.suites:
            raise HandshakeRejected("ServerHello selects a cipher suite the second ClientHello did not offer")
        message_hash = bytes([254, 0, 0, 32]) + hashlib.sha256(ch1.raw).digest()
        transcript = message_hash + hrr.raw + ch2.raw + sh.raw
        last = ch2
    else:
        transcript = ch1.raw + sh.raw
        last = ch1
    if sh.session_id != last.session_id:
        raise HandshakeRejected("ServerHello does not echo the legacy_session_id")
    return ChannelView(
        suite=suite,
        h2=hashlib.sha256(transcript).digest(),
        finished_ct=finished[5 : 5 + FINISHED_CT_LEN],
        finished_record=finished,
        client_random=ch1.random,
        hello_retry=hrr is not None,
        client_app_offset=end,
    )


# --------------------------------------------------------------------------- public input vectors


def _field(x: int, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < R:
        raise PublicInputRejected(f"{what} is not a field element in [0, r)")
    return x


def co_public_inputs(view: ChannelView, comm_k: int) -> list[int]:
    """The CO public vector: ``pack(H2)`` (2), ``pack(Finished ciphertext)`` (2), ``comm_k``."""
    return [*pack_bytes(view.h2), *pack_bytes(view.finished_ct), _field(comm_k, "comm_k")]


def pad_public_inputs(
    comm_k: int, n: int, j: int, comm_pad: int, *, next_record: int | None = None, window: int = PAD_WINDOW
) -> list[int]:
    """The PAD public vector ``[comm_k, n, j, comm_pad]``, refusing what SPEC §4 excludes.

    ``j`` must be in [0, 7); ``n`` a 64-bit record number (below 2^64 - 1, TLS never uses the last
    one), and with ``next_record`` (the middlebox's next unreleased record) in
    [next_record, next_record + window].
    """
    for v, what in ((n, "n"), (j, "j")):
        if not isinstance(v, int) or isinstance(v, bool):
            raise PublicInputRejected(f"{what} must be an int")
    if not 0 <= j < PAD_BLOCKS:
        raise PublicInputRejected(f"block index j = {j} outside [0, {PAD_BLOCKS})")
    if not 0 <= n < (1 << 64) - 1:
        raise PublicInputRejected(f"record number n = {n} outside [0, 2^64 - 1)")
    if next_record is not None and not next_record <= n <= next_record + window:
        raise PublicInputRejected(f"record number n = {n} outside [{next_record}, {next_record + window}]")
    return [_field(comm_k, "comm_k"), n, j, _field(comm_pad, "comm_pad")]
