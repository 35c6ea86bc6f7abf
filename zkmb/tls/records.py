"""TLS 1.3 record layer (RFC 8446 §5): strict record parsing, AEAD protection per key epoch.

Only the two suites of the profile (SPEC §2) exist here; both use SHA-256. Key derivation is written with
``hmac``/``hashlib`` so it is independent of aioquic's key schedule.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .errors import RecordOverflow, TlsError, TlsProtocolError

CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
CONTENT_TYPES = (CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA)

TLS_AES_128_GCM_SHA256 = 0x1301
TLS_CHACHA20_POLY1305_SHA256 = 0x1303
SUITE_NAMES = {TLS_CHACHA20_POLY1305_SHA256: "chacha20", TLS_AES_128_GCM_SHA256: "aes128gcm"}
SUITES_BY_NAME = {v: k for k, v in SUITE_NAMES.items()}

HEADER_LEN = 5
TAG_LEN = 16
MAX_PLAINTEXT = 1 << 14  # TLSPlaintext.length and TLSInnerPlaintext content
MAX_CIPHERTEXT = MAX_PLAINTEXT + 256  # TLSCiphertext.length
LEGACY_VERSION = b"\x03\x03"
HASH_LEN = 32


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256 (RFC 5869)."""
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-256 (RFC 5869); ``length`` at most 255 * 32."""
    if not 0 < length <= 255 * HASH_LEN:
        raise ValueError("bad HKDF output length")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label of RFC 8446 §7.1 (SHA-256)."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + bytes([len(context)]) + context
    return hkdf_expand(secret, info, length)


def traffic_key_iv(suite: int, secret: bytes) -> tuple[bytes, bytes]:
    """The record key and IV of a traffic secret (RFC 8446 §7.3) for ``suite``."""
    if suite == TLS_CHACHA20_POLY1305_SHA256:
        key_len = 32
    elif suite == TLS_AES_128_GCM_SHA256:
        key_len = 16
    else:
        raise TlsError(f"cipher suite 0x{suite:04x} is not in the profile")
    return hkdf_expand_label(secret, b"key", b"", key_len), hkdf_expand_label(secret, b"iv", b"", 12)


def next_traffic_secret(secret: bytes) -> bytes:
    """application_traffic_secret_N+1 (RFC 8446 §7.2)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", HASH_LEN)


@dataclass(frozen=True)
class Record:
    """One TLS record as read from the wire: ``raw`` = 5-byte header + ``payload``."""

    content_type: int
    payload: bytes
    raw: bytes


class RecordProtection:
    """AEAD state of one direction in one key epoch: key, IV and the record sequence number."""

    def __init__(self, suite: int, secret: bytes):
        self.suite = suite
        self.secret = secret
        key, self.iv = traffic_key_iv(suite, secret)
        self._aead = ChaCha20Poly1305(key) if suite == TLS_CHACHA20_POLY1305_SHA256 else AESGCM(key)
        self.seq = 0

    def _nonce(self, seq: int) -> bytes:
        if seq >= (1 << 64) - 1:
            raise TlsError("record sequence number exhausted")
        return bytes(a ^ b for a, b in zip(self.iv, seq.to_bytes(12, "big"), strict=True))

    def seal(self, inner_type: int, content: bytes) -> tuple[int, bytes]:
        """Encrypt ``content`` (no padding) as the next record; returns (sequence number, record bytes)."""
        if len(content) > MAX_PLAINTEXT:
            raise TlsError(f"record content of {len(content)} bytes exceeds 2^14")
        inner = content + bytes([inner_type])
        header = bytes([CT_APPLICATION_DATA]) + LEGACY_VERSION + struct.pack("!H", len(inner) + TAG_LEN)
        seq = self.seq
        ct = self._aead.encrypt(self._nonce(seq), inner, header)
        self.seq += 1
        return seq, header + ct

    def open(self, record: Record) -> tuple[int, int, bytes]:
        """Decrypt a protected record; returns (sequence number, inner content type, content).

        Raises TlsProtocolError for a bad tag (bad_record_mac), an over-long plaintext or an all-zero inner
        plaintext (RFC 8446 §5.2, §5.4).
        """
        if record.content_type != CT_APPLICATION_DATA:
            raise TlsProtocolError("protected record with outer type other than application_data", 10)
        if len(record.payload) < TAG_LEN + 1:
            raise TlsProtocolError("protected record too short", 50)
        seq = self.seq
        try:
            inner = self._aead.decrypt(self._nonce(seq), record.payload, record.raw[:HEADER_LEN])
        except InvalidTag:
            raise TlsProtocolError(f"record {seq} failed authentication", 20) from None
        self.seq += 1
        if len(inner) > MAX_PLAINTEXT + 1:
            raise RecordOverflow(f"inner plaintext of {len(inner)} bytes exceeds 2^14 + 1")
        end = len(inner)
        while end > 0 and inner[end - 1] == 0:
            end -= 1
        if end == 0:
            raise TlsProtocolError("protected record has no non-zero content type", 10)
        return seq, inner[end - 1], inner[: end - 1]


def plaintext_records(content_type: int, data: bytes) -> bytes:
    """``data`` as unprotected records of ``content_type``, fragmented at 2^14 bytes."""
    out = bytearray()
    for i in range(0, len(data), MAX_PLAINTEXT):
        frag = data[i : i + MAX_PLAINTEXT]
        out += bytes([content_type]) + LEGACY_VERSION + struct.pack("!H", len(frag)) + frag
    return bytes(out)


class RecordReader:
    """Splits a byte stream into records, checking each header before its body is awaited.

    Checks: known content type, legacy_record_version 0x0303 (0x0301 also accepted, RFC 8446 §5.1),
    non-zero length, length at most 2^14 + 256 (record_overflow). ``protected`` tells it that plaintext
    records are over (then at most 2^14 for unprotected types still holds for their own bounds).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete record."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Record]:
        """Append ``data`` and return every record now complete, in order."""
        self._buf += data
        records = []
        while len(self._buf) >= HEADER_LEN:
            ctype = self._buf[0]
            version = bytes(self._buf[1:3])
            (length,) = struct.unpack_from("!H", self._buf, 3)
            if ctype not in CONTENT_TYPES:
                if self._buf[:1] == b"H" or ctype & 0x80:
                    raise TlsProtocolError("the server does not speak TLS (not a TLS record)", 10)
                raise TlsProtocolError(f"unknown record content type {ctype}", 10)
            if version not in (b"\x03\x03", b"\x03\x01"):
                raise TlsProtocolError(f"bad legacy_record_version {version.hex()}", 70)
            if length == 0:
                raise TlsProtocolError("zero-length record", 50)
            if ctype == CT_APPLICATION_DATA:
                if length > MAX_CIPHERTEXT:
                    raise RecordOverflow(f"protected record of {length} bytes exceeds 2^14 + 256")
            elif length > MAX_PLAINTEXT:
                raise RecordOverflow(f"record of {length} bytes exceeds 2^14")
            if len(self._buf) < HEADER_LEN + length:
                break
            raw = bytes(self._buf[: HEADER_LEN + length])
            del self._buf[: HEADER_LEN + length]
            records.append(Record(ctype, raw[HEADER_LEN:], raw))
        return records
