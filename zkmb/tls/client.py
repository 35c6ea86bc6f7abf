"""Sans-IO TLS 1.3 client on ``aioquic.tls.Context`` with a record layer and a full capture (SPEC §2-§3).

aioquic supplies the handshake state machine (ECDHE, certificate and signature checks, key schedule) but no
record layer and no HelloRetryRequest; this module adds both, and records what the prover needs: raw bytes,
handshake messages, transcript hashes H2/H3, the Handshake Secret and every protected record with its
sequence number. Profile: ChaCha20-Poly1305 / AES-128-GCM with SHA-256, X25519 / secp256r1, no PSK,
resumption or 0-RTT; the client never sends alerts, KeyUpdate or padding.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import ssl
import struct
from dataclasses import dataclass

from aioquic import tls as aq
from aioquic.buffer import Buffer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import InvalidInput
from .capture import CapturedRecord, CapturedSession
from .errors import (
    CertificateVerifyError,
    KeyUpdateRequested,
    NoApplicationProtocol,
    TlsAlertReceived,
    TlsError,
    TlsProtocolError,
)
from .records import (
    CT_ALERT,
    CT_APPLICATION_DATA,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    HASH_LEN,
    MAX_PLAINTEXT,
    SUITE_NAMES,
    TLS_AES_128_GCM_SHA256,
    TLS_CHACHA20_POLY1305_SHA256,
    Record,
    RecordProtection,
    RecordReader,
    hkdf_expand_label,
    hkdf_extract,
    next_traffic_secret,
    plaintext_records,
)

GROUP_X25519 = 0x001D
GROUP_SECP256R1 = 0x0017
GROUP_NAMES = {GROUP_X25519: "x25519", GROUP_SECP256R1: "secp256r1"}

HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
HT_CLIENT_HELLO = 1
HT_SERVER_HELLO = 2
HT_NEW_SESSION_TICKET = 4
HT_CERTIFICATE_REQUEST = 13
HT_FINISHED = 20
HT_KEY_UPDATE = 24
HT_MESSAGE_HASH = 254
EXT_SUPPORTED_VERSIONS = 43
EXT_COOKIE = 44
EXT_KEY_SHARE = 51
MAX_HANDSHAKE_MESSAGE = 1 << 17

# Signature algorithms offered (aioquic's list without SHA-1); PKCS#1 is only for certificate signatures.
_SIGNATURE_ALGORITHMS = [
    aq.SignatureAlgorithm.ECDSA_SECP256R1_SHA256,
    aq.SignatureAlgorithm.RSA_PSS_RSAE_SHA256,
    aq.SignatureAlgorithm.RSA_PKCS1_SHA256,
    aq.SignatureAlgorithm.ECDSA_SECP384R1_SHA384,
    aq.SignatureAlgorithm.RSA_PSS_RSAE_SHA384,
    aq.SignatureAlgorithm.RSA_PKCS1_SHA384,
    aq.SignatureAlgorithm.RSA_PSS_RSAE_SHA512,
    aq.SignatureAlgorithm.RSA_PKCS1_SHA512,
    aq.SignatureAlgorithm.ED25519,
]


@dataclass(frozen=True)
class TlsClientConfig:
    """Client settings. ``server_name`` is verified against the certificate (a DNS name, or an IP literal
    checked against IP SANs) and sent as SNI when it is a DNS name. Without ``cafile``/``cadata`` the system
    store is used. ``key_share_groups`` (default: all ``groups``) lets a test provoke a HelloRetryRequest.
    """

    server_name: str
    cafile: str | None = None
    cadata: bytes | None = None
    suites: tuple[int, ...] = (TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256)
    groups: tuple[int, ...] = (GROUP_X25519, GROUP_SECP256R1)
    key_share_groups: tuple[int, ...] | None = None
    alpn: tuple[str, ...] = ("dot",)
    require_alpn: bool = False

    def __post_init__(self) -> None:
        if not self.server_name:
            raise InvalidInput("server_name is required (the name or IP the certificate must match)")
        if (
            not self.suites
            or any(s not in SUITE_NAMES for s in self.suites)
            or len(set(self.suites)) != len(self.suites)
        ):
            raise InvalidInput(
                "suites must be a non-empty subset of TLS_CHACHA20_POLY1305_SHA256 (0x1303), "
                "TLS_AES_128_GCM_SHA256 (0x1301)"
            )
        if not self.groups or any(g not in GROUP_NAMES for g in self.groups):
            raise InvalidInput("groups must be a non-empty subset of x25519 (0x1d), secp256r1 (0x17)")
        ks = self.key_share_groups if self.key_share_groups is not None else self.groups
        if not ks or any(g not in self.groups for g in ks):
            raise InvalidInput("key_share_groups must be a non-empty subset of groups")
        if any(not p or len(p.encode()) > 255 for p in self.alpn):
            raise InvalidInput("ALPN protocol names must be 1..255 bytes")
        if self.require_alpn and not self.alpn:
            raise InvalidInput("require_alpn needs an ALPN protocol to offer")


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake finished; the client Finished is queued in ``data_to_send``."""

    suite: int
    alpn: str | None


@dataclass(frozen=True)
class ApplicationData:
    """Decrypted application data of one server record (``seq`` in the server application epoch)."""

    data: bytes
    seq: int


@dataclass(frozen=True)
class ConnectionClosed:
    """The server sent close_notify after the handshake; later records are ignored."""


class _Context(aq.Context):
    """aioquic's client context with our own ClientHello: chosen key shares, cookie, transcript prefix."""

    zk_alpn: list[str] | None = None
    zk_sni: str | None = None
    zk_groups: list[int] = []
    zk_key_share_groups: list[int] = []
    zk_cookie: bytes | None = None
    zk_transcript_prefix: bytes = b""

    def _client_send_hello(self, output_buf: Buffer) -> None:
        key_share = []
        self._x25519_private_key = None
        self._ec_private_keys = []
        for group in self.zk_key_share_groups:
            if group == GROUP_X25519:
                self._x25519_private_key = x25519.X25519PrivateKey.generate()
                key_share.append(aq.encode_public_key(self._x25519_private_key.public_key()))
            else:
                key = ec.generate_private_key(ec.SECP256R1())
                self._ec_private_keys.append(key)
                key_share.append(aq.encode_public_key(key.public_key()))
        hello = aq.ClientHello(
            random=self.client_random,
            legacy_session_id=b"",
            cipher_suites=[int(s) for s in self._cipher_suites],
            legacy_compression_methods=[aq.CompressionMethod.NULL],
            alpn_protocols=self.zk_alpn,
            key_share=key_share,
            psk_key_exchange_modes=None,
            server_name=self.zk_sni,
            signature_algorithms=self._signature_algorithms,
            supported_groups=list(self.zk_groups),
            supported_versions=[aq.TLS_VERSION_1_3],
            other_extensions=(
                [(EXT_COOKIE, struct.pack("!H", len(self.zk_cookie)) + self.zk_cookie)]
                if self.zk_cookie
                else []
            ),
        )
        proxy = aq.KeyScheduleProxy(self._cipher_suites)
        proxy.extract(None)
        if self.zk_transcript_prefix:
            proxy.update_hash(self.zk_transcript_prefix)
        with aq.push_message(proxy, output_buf):
            aq.push_client_hello(output_buf, hello)
        self._key_schedule_proxy = proxy
        self._set_state(aq.State.CLIENT_EXPECT_SERVER_HELLO)


def _split_messages(data: bytes) -> list[bytes]:
    """Split a concatenation of complete handshake messages (our own output)."""
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i + 1 : i + 4], "big")
        out.append(data[i : i + 4 + n])
        i += 4 + n
    return out


def _parse_server_hello(msg: bytes) -> tuple[bytes, bytes, int, int, dict[int, bytes]]:
    """Strictly parse a ServerHello or HelloRetryRequest: (random, session_id, suite, compression, exts)."""
    err = TlsProtocolError
    body = msg[4:]
    if len(body) < 2 + 32 + 1:
        raise err("ServerHello too short", 50)
    if body[:2] != b"\x03\x03":
        raise err("ServerHello legacy_version is not 0x0303", 70)
    random = body[2:34]
    sid_len = body[34]
    pos = 35 + sid_len
    if len(body) < pos + 2 + 1 + 2:
        raise err("ServerHello truncated", 50)
    sid = body[35:pos]
    (suite,) = struct.unpack_from("!H", body, pos)
    compression = body[pos + 2]
    (ext_len,) = struct.unpack_from("!H", body, pos + 3)
    pos += 5
    if pos + ext_len != len(body):
        raise err("ServerHello extensions length mismatch", 50)
    exts: dict[int, bytes] = {}
    while pos < len(body):
        if pos + 4 > len(body):
            raise err("ServerHello extension header truncated", 50)
        etype, elen = struct.unpack_from("!HH", body, pos)
        if pos + 4 + elen > len(body):
            raise err("ServerHello extension truncated", 50)
        if etype in exts:
            raise err(f"duplicate ServerHello extension {etype}", 47)
        exts[etype] = body[pos + 4 : pos + 4 + elen]
        pos += 4 + elen
    return random, sid, suite, compression, exts


def _default_verify_locations() -> tuple[str | None, str | None]:
    """The system trust store (OpenSSL's default cafile/capath) where it exists."""
    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile if paths.cafile and os.path.isfile(paths.cafile) else None
    capath = paths.capath if paths.capath and os.path.isdir(paths.capath) else None
    return cafile, capath


_CERT_ALERTS = (aq.AlertBadCertificate, aq.AlertCertificateExpired, aq.AlertUnsupportedCertificate)


class TlsClient:
    """A sans-IO TLS 1.3 client connection.

    Usage: ``start()``, then loop: send ``data_to_send()``, feed received bytes to ``receive_data`` (which
    returns events) and EOF to ``receive_eof``. ``send_application_data`` makes exactly one record. Every
    failure raises a :class:`~zkmb.tls.errors.TlsError`; after one, the connection is dead.
    """

    def __init__(self, config: TlsClientConfig):
        self.config = config
        is_ip = True
        try:
            ipaddress.ip_address(config.server_name)
        except ValueError:
            is_ip = False
        cafile, capath = config.cafile, None
        if config.cafile is None and config.cadata is None:
            cafile, capath = _default_verify_locations()
        ctx = _Context(
            is_client=True,
            cadata=config.cadata,
            cafile=cafile,
            capath=capath,
            cipher_suites=[aq.CipherSuite(s) for s in config.suites],
            server_name=config.server_name,
        )
        ctx._alpn_protocols = None  # we check ALPN ourselves (a server may legitimately not negotiate any)
        ctx._signature_algorithms = list(_SIGNATURE_ALGORITHMS)
        ctx.zk_alpn = list(config.alpn) or None
        ctx.zk_sni = None if is_ip else config.server_name
        ctx.zk_groups = list(config.groups)
        ctx.zk_key_share_groups = list(config.key_share_groups or config.groups)
        ctx.update_traffic_key_cb = self._on_traffic_key
        self._ctx = ctx
        self.capture = CapturedSession(client_random=ctx.client_random, server_name=config.server_name)
        self._reader = RecordReader()
        self._read: RecordProtection | None = None
        self._write: dict[aq.Epoch, RecordProtection] = {}
        self._out = bytearray()
        self._hs_buf = bytearray()
        self._transcript: list[bytes] = []
        self._started = False
        self._hrr_done = False
        self._key_changed = False
        self.handshake_complete = False
        self.peer_closed = False
        self._failed: TlsError | None = None
        self._events: list = []

    # -- public API -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the ClientHello."""
        if self._started:
            raise TlsError("start() called twice")
        self._started = True
        self._run_context(b"")

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport now (and clears them)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes) -> list:
        """Process bytes from the server; returns HandshakeComplete / ApplicationData / ConnectionClosed."""
        self._check_alive()
        self.capture.server_bytes += data
        try:
            for record in self._reader.feed(data):
                if self.peer_closed:
                    break
                self._handle_record(record)
        except KeyUpdateRequested as exc:
            exc.events, self._events = self._events, []
            self._failed = exc
            raise
        except TlsError as exc:
            self._events = []
            self._failed = exc
            raise
        events, self._events = self._events, []
        return events

    def receive_eof(self) -> list:
        """The server closed the TCP stream. Raises TruncatedStream unless that is a clean end."""
        from .errors import TruncatedStream

        if self._failed is not None:
            raise self._failed
        if self._reader.pending:
            exc: TlsError = TruncatedStream(
                f"connection closed inside a TLS record ({self._reader.pending} "
                "bytes of an incomplete record)"
            )
        elif self.capture.h2 is None:
            exc = TruncatedStream(
                "connection closed before the ServerHello (does the server support TLS 1.3 with the "
                "offered suites and groups?)"
            )
        elif not self.handshake_complete:
            exc = TruncatedStream("connection closed during the TLS handshake")
        elif self._hs_buf:
            exc = TruncatedStream("connection closed inside a post-handshake message")
        else:
            self.peer_closed = True
            return [ConnectionClosed()]
        self._failed = exc
        raise exc

    def send_application_data(self, data: bytes) -> int:
        """Encrypt ``data`` as exactly one application record (no padding); returns its sequence number."""
        self._check_alive()
        if not self.handshake_complete:
            raise TlsError("handshake not complete")
        if len(data) > MAX_PLAINTEXT:
            raise InvalidInput(f"{len(data)} bytes do not fit one TLS record (max 2^14)")
        seq, rec = self._write[aq.Epoch.ONE_RTT].seal(CT_APPLICATION_DATA, data)
        self.capture.client_app_records.append(CapturedRecord(seq, rec))
        self._emit(rec)
        return seq

    @property
    def alpn(self) -> str | None:
        """The ALPN protocol the server selected (None if it selected none)."""
        return self._ctx.alpn_negotiated

    # -- internals --------------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._failed is not None:
            raise TlsError(f"connection already failed: {self._failed}")
        if not self._started:
            raise TlsError("start() not called")

    def _emit(self, data: bytes) -> None:
        self._out += data
        self.capture.client_bytes += data

    def _on_traffic_key(self, direction: aq.Direction, epoch: aq.Epoch, suite: aq.CipherSuite, secret: bytes):
        cap = self.capture
        if int(suite) not in SUITE_NAMES:
            raise TlsProtocolError(f"suite 0x{int(suite):04x} outside the profile", 40)
        prot = RecordProtection(int(suite), secret)
        if direction == aq.Direction.DECRYPT:
            self._read = prot
            self._key_changed = True
            if epoch == aq.Epoch.HANDSHAKE:
                cap.server_handshake_traffic_secret = secret
            else:
                cap.server_application_traffic_secret = secret
        else:
            self._write[epoch] = prot
            if epoch == aq.Epoch.HANDSHAKE:
                cap.client_handshake_traffic_secret = secret
            else:
                cap.client_application_traffic_secret = secret

    def _handle_record(self, record: Record) -> None:
        ctype = record.content_type
        if ctype == CT_CHANGE_CIPHER_SPEC:
            # Compatibility CCS: exactly 0x01, only before the server Finished (RFC 8446 §5); not counted.
            if record.payload != b"\x01" or self.handshake_complete:
                raise TlsProtocolError("unexpected ChangeCipherSpec", 10)
            return
        if ctype == CT_ALERT:
            self._handle_alert(record.payload, protected=False)
            return
        if self._read is None:
            if ctype != CT_HANDSHAKE:
                raise TlsProtocolError("protected record before the ServerHello", 10)
            self._handle_handshake_data(record.payload)
            return
        if ctype != CT_APPLICATION_DATA:
            raise TlsProtocolError("unprotected handshake record after the ServerHello", 10)
        seq, inner, content = self._read.open(record)
        if self.handshake_complete:
            self.capture.server_app_records.append(CapturedRecord(seq, record.raw))
        else:
            self.capture.server_handshake_records.append(CapturedRecord(seq, record.raw))
        if inner == CT_HANDSHAKE:
            if not content:
                raise TlsProtocolError("empty handshake fragment", 10)
            self._handle_handshake_data(content)
        elif inner == CT_ALERT:
            self._handle_alert(content, protected=True)
        elif inner == CT_APPLICATION_DATA:
            if not self.handshake_complete:
                raise TlsProtocolError("application data before the server Finished", 10)
            if content:
                self._events.append(ApplicationData(content, seq))
        else:
            raise TlsProtocolError(f"protected record with inner content type {inner}", 10)

    def _handle_alert(self, payload: bytes, protected: bool) -> None:
        if len(payload) != 2:
            raise TlsProtocolError("malformed alert", 50)
        description = payload[1]
        if description == 0 and protected and self.handshake_complete:
            self.peer_closed = True
            self._events.append(ConnectionClosed())
            return
        raise TlsAlertReceived(description, protected)

    def _handle_handshake_data(self, data: bytes) -> None:
        self._hs_buf += data
        while len(self._hs_buf) >= 4:
            length = int.from_bytes(self._hs_buf[1:4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                raise TlsProtocolError(f"handshake message of {length} bytes is too long", 50)
            if len(self._hs_buf) < 4 + length:
                break
            msg = bytes(self._hs_buf[: 4 + length])
            del self._hs_buf[: 4 + length]
            self._key_changed = False
            if self.handshake_complete:
                self._handle_post_handshake(msg)
            else:
                self._handle_handshake_message(msg)
            # Messages before a key change must end at a record boundary (RFC 8446 §5.1).
            if self._key_changed and self._hs_buf:
                raise TlsProtocolError("handshake data after a key change in the same record", 10)

    def _handle_handshake_message(self, msg: bytes) -> None:
        ctx, cap = self._ctx, self.capture
        state = ctx.state
        if state == aq.State.CLIENT_EXPECT_SERVER_HELLO and msg[0] == HT_SERVER_HELLO:
            random, sid, suite, compression, exts = _parse_server_hello(msg)
            if sid != b"":
                raise TlsProtocolError("ServerHello does not echo the empty legacy_session_id", 47)
            if EXT_SUPPORTED_VERSIONS not in exts:
                raise TlsProtocolError("server did not negotiate TLS 1.3 (no supported_versions)", 70)
            if exts[EXT_SUPPORTED_VERSIONS] != b"\x03\x04":
                raise TlsProtocolError("server selected a version other than TLS 1.3", 70)
            if random == HRR_RANDOM:
                cap.handshake_messages.append(("server", msg))
                self._handle_hello_retry(msg, suite, compression, exts)
                return
            unknown = set(exts) - {EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE}
            if unknown:
                raise TlsProtocolError(f"ServerHello carries unsolicited extensions {sorted(unknown)}", 110)
            if random[-8:] in (b"DOWNGRD\x01", b"DOWNGRD\x00"):
                raise TlsProtocolError("ServerHello random carries a downgrade sentinel", 47)
            ks = exts.get(EXT_KEY_SHARE, b"")
            if len(ks) >= 2:
                cap.group = int.from_bytes(ks[:2], "big")
            self._record_and_run(msg)
            if ctx.key_schedule is None or ctx.key_schedule.generation != 2:
                raise TlsError("key schedule did not reach the Handshake Secret")
            cap.suite = int(ctx.key_schedule.cipher_suite)
            cap.handshake_secret = ctx.key_schedule.secret
            cap.h2 = self._transcript_hash()
            chts = hkdf_expand_label(cap.handshake_secret, b"c hs traffic", cap.h2, HASH_LEN)
            if chts != cap.client_handshake_traffic_secret:
                raise TlsError("internal error: CHTS recomputed from HS and H2 differs from aioquic's")
            return
        if msg[0] in (HT_CLIENT_HELLO, HT_SERVER_HELLO) or state == aq.State.CLIENT_EXPECT_SERVER_HELLO:
            raise TlsProtocolError(f"unexpected handshake message type {msg[0]}", 10)
        self._record_and_run(msg)
        if state == aq.State.CLIENT_EXPECT_ENCRYPTED_EXTENSIONS:
            self._check_alpn()
        if ctx.state == aq.State.CLIENT_POST_HANDSHAKE:
            self._finish_handshake()

    def _handle_hello_retry(self, msg: bytes, suite: int, compression: int, exts: dict[int, bytes]) -> None:
        err = TlsProtocolError
        if self._hrr_done:
            raise err("second HelloRetryRequest", 10)
        self._hrr_done = True
        if suite not in self.config.suites:
            raise err(f"HelloRetryRequest selects suite 0x{suite:04x} that was not offered", 47)
        if compression != 0:
            raise err("HelloRetryRequest with non-null compression", 47)
        unknown = set(exts) - {EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE, EXT_COOKIE}
        if unknown:
            raise err(f"HelloRetryRequest carries unsupported extensions {sorted(unknown)}", 110)
        ctx = self._ctx
        group = None
        if EXT_KEY_SHARE in exts:
            ks = exts[EXT_KEY_SHARE]
            if len(ks) != 2:
                raise err("malformed HelloRetryRequest key_share", 50)
            group = int.from_bytes(ks, "big")
            if group not in self.config.groups or group in ctx.zk_key_share_groups:
                raise err(
                    f"HelloRetryRequest asks for group 0x{group:04x} (not offered, or already shared)", 47
                )
        cookie = None
        if EXT_COOKIE in exts:
            c = exts[EXT_COOKIE]
            if len(c) < 3 or int.from_bytes(c[:2], "big") != len(c) - 2:
                raise err("malformed HelloRetryRequest cookie", 50)
            cookie = c[2:]
        if group is None and cookie is None:
            raise err("HelloRetryRequest would not change the ClientHello", 47)
        ch1 = self._transcript[0]
        self._transcript = [
            bytes([HT_MESSAGE_HASH, 0, 0, HASH_LEN]) + hashlib.sha256(ch1).digest(),
            msg,
        ]
        self.capture.hello_retry = True
        if group is not None:
            ctx.zk_key_share_groups = [group]
        ctx.zk_cookie = cookie
        ctx.zk_transcript_prefix = b"".join(self._transcript)
        ctx._cipher_suites = [aq.CipherSuite(suite)]
        ctx.state = aq.State.CLIENT_HANDSHAKE_START
        self._run_context(b"")

    def _check_alpn(self) -> None:
        chosen = self._ctx.alpn_negotiated
        self.capture.alpn = chosen
        if chosen is None:
            if self.config.require_alpn:
                raise NoApplicationProtocol(
                    f"server negotiated no ALPN protocol; {list(self.config.alpn)} required"
                )
        elif chosen not in self.config.alpn:
            raise NoApplicationProtocol(f"server selected ALPN {chosen!r}, offered {list(self.config.alpn)}")

    def _finish_handshake(self) -> None:
        cap = self.capture
        ms = hkdf_extract(
            hkdf_expand_label(cap.handshake_secret, b"derived", hashlib.sha256().digest(), HASH_LEN),
            bytes(HASH_LEN),
        )
        if hkdf_expand_label(ms, b"c ap traffic", cap.h3, HASH_LEN) != cap.client_application_traffic_secret:
            raise TlsError("internal error: CATS recomputed from HS and H3 differs from aioquic's")
        peer = self._ctx._peer_certificate
        cap.peer_certificate_der = peer.public_bytes(Encoding.DER) if peer is not None else None
        self.handshake_complete = True
        self._events.append(HandshakeComplete(cap.suite, cap.alpn))

    def _handle_post_handshake(self, msg: bytes) -> None:
        mtype = msg[0]
        if mtype == HT_NEW_SESSION_TICKET:
            return  # no resumption: tickets are ignored
        if mtype == HT_KEY_UPDATE:
            if len(msg) != 5 or msg[4] not in (0, 1):
                raise TlsProtocolError("malformed KeyUpdate", 50)
            if msg[4] == 1:
                raise KeyUpdateRequested("server sent KeyUpdate with update_requested: reconnect")
            if self._read is None:
                raise TlsProtocolError("KeyUpdate before traffic keys", 10)
            self._read = RecordProtection(self._read.suite, next_traffic_secret(self._read.secret))
            self._key_changed = True
            return
        if mtype == HT_CERTIFICATE_REQUEST:
            raise KeyUpdateRequested("server sent a post-handshake CertificateRequest: reconnect")
        raise TlsProtocolError(f"unexpected post-handshake message type {mtype}", 10)

    def _record_and_run(self, msg: bytes) -> None:
        self._transcript.append(msg)
        self.capture.handshake_messages.append(("server", msg))
        if msg[0] == HT_FINISHED:
            self.capture.h3 = self._transcript_hash()  # through the server Finished, before ours is added
        self._run_context(msg)

    def _transcript_hash(self) -> bytes:
        return hashlib.sha256(b"".join(self._transcript)).digest()

    def _run_context(self, msg: bytes) -> None:
        bufs = {epoch: Buffer(capacity=1 << 16) for epoch in aq.Epoch}
        try:
            self._ctx.handle_message(msg, bufs)
        except _CERT_ALERTS as exc:
            raise CertificateVerifyError(
                f"server certificate rejected: {exc or type(exc).__name__}"
            ) from None
        except x509.InvalidVersion as exc:
            # aioquic maps only ValueError from certificate parsing to bad_certificate (found by fuzzing).
            raise CertificateVerifyError(f"server certificate rejected: {exc}") from None
        except aq.AlertNoApplicationProtocol as exc:
            raise NoApplicationProtocol(str(exc)) from None
        except aq.Alert as exc:
            raise TlsProtocolError(str(exc) or type(exc).__name__, int(exc.description)) from None
        for epoch in (aq.Epoch.INITIAL, aq.Epoch.HANDSHAKE, aq.Epoch.ONE_RTT):
            data = bufs[epoch].data
            if not data:
                continue
            for m in _split_messages(data):
                self._transcript.append(m)
                self.capture.handshake_messages.append(("client", m))
            if epoch == aq.Epoch.INITIAL:
                self._emit(plaintext_records(CT_HANDSHAKE, data))
                continue
            seq, rec = self._write[epoch].seal(CT_HANDSHAKE, data)
            if epoch == aq.Epoch.HANDSHAKE:
                self.capture.client_finished_record = CapturedRecord(seq, rec)
            self._emit(rec)
