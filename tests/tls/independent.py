"""An independent check of a captured session: plain HKDF (hashlib/hmac) and `cryptography`'s AEADs.

Nothing here imports zkmb's key schedule or record layer; it recomputes the transcript hashes from the
captured handshake messages, the traffic secrets from HS, and decrypts the captured records.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305


def expand_label(secret: bytes, label: bytes, context: bytes, length: int = 32) -> bytes:
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def key_iv(suite: int, secret: bytes) -> tuple[bytes, bytes]:
    klen = {0x1303: 32, 0x1301: 16}[suite]
    return expand_label(secret, b"key", b"", klen), expand_label(secret, b"iv", b"", 12)


def open_record(suite: int, secret: bytes, seq: int, raw: bytes) -> tuple[int, bytes]:
    """Decrypt a whole record (header + ciphertext) as record ``seq``; returns (inner type, content)."""
    key, iv = key_iv(suite, secret)
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    aead = ChaCha20Poly1305(key) if suite == 0x1303 else AESGCM(key)
    inner = aead.decrypt(nonce, raw[5:], raw[:5]).rstrip(b"\x00")
    return inner[-1], inner[:-1]


def transcript_hashes(messages: list[tuple[str, bytes]]) -> tuple[bytes, bytes]:
    """(H2, H3) from the handshake messages in wire order, applying the HRR message_hash rule."""
    hrr_random = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    transcript: list[bytes] = []
    h2 = h3 = None
    for sender, msg in messages:
        if sender == "server" and msg[0] == 2 and msg[6:38] == hrr_random:
            transcript = [b"\xfe\x00\x00\x20" + hashlib.sha256(transcript[0]).digest(), msg]
            continue
        transcript.append(msg)
        if sender == "server" and msg[0] == 2:
            h2 = hashlib.sha256(b"".join(transcript)).digest()
        if sender == "server" and msg[0] == 20:
            h3 = hashlib.sha256(b"".join(transcript)).digest()
    return h2, h3


def check_session(cap, n_queries: int) -> list[bytes]:
    """Assert every relation between the captured values; returns the decrypted DNS query wires."""
    suite = cap.suite
    h2, h3 = transcript_hashes(cap.handshake_messages)
    assert (h2, h3) == (cap.h2, cap.h3)
    hs = cap.handshake_secret
    assert expand_label(hs, b"c hs traffic", h2) == cap.client_handshake_traffic_secret
    assert expand_label(hs, b"s hs traffic", h2) == cap.server_handshake_traffic_secret
    derived = expand_label(hs, b"derived", hashlib.sha256(b"").digest())
    ms = hmac.new(derived, bytes(32), hashlib.sha256).digest()
    assert expand_label(ms, b"c ap traffic", h3) == cap.client_application_traffic_secret
    assert expand_label(ms, b"s ap traffic", h3) == cap.server_application_traffic_secret

    # Server handshake records: decrypt in order, and the reassembled messages are the captured ones.
    stream = b""
    for i, rec in enumerate(cap.server_handshake_records):
        assert rec.seq == i
        inner, content = open_record(suite, cap.server_handshake_traffic_secret, rec.seq, rec.raw)
        assert inner == 22
        stream += content
    server_encrypted = [m for s, m in cap.handshake_messages if s == "server" and m[0] != 2]
    assert stream == b"".join(server_encrypted)
    assert server_encrypted[-1][0] == 20  # the server Finished is among them, last
    assert stream.endswith(server_encrypted[-1])

    # Client Finished: SPEC §3 relation 2 (53-byte payload, plaintext 14 00 00 20 || HMAC || 16).
    fin = cap.client_finished_record
    assert fin.seq == 0 and len(fin.raw) == 5 + 53 and fin.raw[:5] == bytes.fromhex("1703030035")
    fk = expand_label(cap.client_handshake_traffic_secret, b"finished", b"")
    inner, content = open_record(suite, cap.client_handshake_traffic_secret, 0, fin.raw)
    assert inner == 22 and content == b"\x14\x00\x00\x20" + hmac.new(fk, h3, hashlib.sha256).digest()

    # Client application records: one DNS message per record, numbered from 0.
    queries = []
    assert len(cap.client_app_records) == n_queries
    for i, rec in enumerate(cap.client_app_records):
        assert rec.seq == i
        inner, content = open_record(suite, cap.client_application_traffic_secret, i, rec.raw)
        assert inner == 23
        (m,) = struct.unpack(">H", content[:2])
        assert len(content) == m + 2
        queries.append(content[2:])

    # The raw client stream is exactly the records we captured (no CCS, no alerts, nothing else).
    records = b"".join(r for s, r in _plain_client_records(cap))
    records += fin.raw + b"".join(r.raw for r in cap.client_app_records)
    assert bytes(cap.client_bytes) == records
    return queries


def server_app_plaintexts(cap) -> list[tuple[int, bytes]]:
    """(inner type, content) of every captured server application record."""
    return [
        open_record(cap.suite, cap.server_application_traffic_secret, r.seq, r.raw)
        for r in cap.server_app_records
    ]


def _plain_client_records(cap):
    for sender, msg in cap.handshake_messages:
        if sender == "client" and msg[0] == 1:
            yield sender, bytes([22, 3, 3]) + struct.pack(">H", len(msg)) + msg
