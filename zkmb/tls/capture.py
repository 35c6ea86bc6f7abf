"""What the prover needs from one TLS connection (SPEC §2-§3), and the NSS key log writer."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .records import HEADER_LEN, SUITE_NAMES


@dataclass(frozen=True)
class CapturedRecord:
    """A protected record exactly as on the wire, with its sequence number in its key epoch."""

    seq: int
    raw: bytes

    @property
    def header(self) -> bytes:
        """The 5-byte record header (the AEAD additional data)."""
        return self.raw[:HEADER_LEN]

    @property
    def payload(self) -> bytes:
        """Ciphertext including the 16-byte tag."""
        return self.raw[HEADER_LEN:]


@dataclass
class CapturedSession:
    """Everything the client saw and derived on one connection.

    ``handshake_messages`` lists (sender, message) in wire order, including a first ClientHello and a
    HelloRetryRequest; ``h2``/``h3`` are the transcript hashes through ServerHello and through the server
    Finished (with the RFC 8446 §4.4.1 message_hash rule after a HelloRetryRequest). Record sequence
    numbers follow SPEC §2: per key epoch, ChangeCipherSpec not counted.
    """

    client_random: bytes
    server_name: str | None
    client_bytes: bytearray = field(default_factory=bytearray)
    server_bytes: bytearray = field(default_factory=bytearray)
    handshake_messages: list[tuple[str, bytes]] = field(default_factory=list)
    hello_retry: bool = False
    suite: int | None = None
    group: int | None = None
    alpn: str | None = None
    h2: bytes | None = None
    h3: bytes | None = None
    handshake_secret: bytes | None = None
    client_handshake_traffic_secret: bytes | None = None
    server_handshake_traffic_secret: bytes | None = None
    client_application_traffic_secret: bytes | None = None
    server_application_traffic_secret: bytes | None = None
    server_handshake_records: list[CapturedRecord] = field(default_factory=list)
    client_finished_record: CapturedRecord | None = None
    client_app_records: list[CapturedRecord] = field(default_factory=list)
    server_app_records: list[CapturedRecord] = field(default_factory=list)
    peer_certificate_der: bytes | None = None

    @property
    def suite_name(self) -> str | None:
        """``chacha20`` or ``aes128gcm`` once negotiated."""
        return None if self.suite is None else SUITE_NAMES[self.suite]

    def keylog_lines(self) -> str:
        """The traffic secrets in NSS key log format (one line per known secret, newline-terminated)."""
        rnd = self.client_random.hex()
        out = []
        for label, secret in (
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", self.client_handshake_traffic_secret),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", self.server_handshake_traffic_secret),
            ("CLIENT_TRAFFIC_SECRET_0", self.client_application_traffic_secret),
            ("SERVER_TRAFFIC_SECRET_0", self.server_application_traffic_secret),
        ):
            if secret is not None:
                out.append(f"{label} {rnd} {secret.hex()}\n")
        return "".join(out)


def write_keylog(path: str | os.PathLike, session: CapturedSession) -> None:
    """Append the session's secrets to ``path`` (SSLKEYLOGFILE format), creating it with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(session.keylog_lines())


def parse_keylog(text: str) -> dict[tuple[str, bytes], bytes]:
    """Parse NSS key log text into {(label, client_random): secret}; comment and blank lines are skipped."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            continue
        out[(parts[0], bytes.fromhex(parts[1]))] = bytes.fromhex(parts[2])
    return out
