"""Errors of the TLS 1.3 / DNS-over-TLS client; every class derives from :class:`zkmb.errors.ZkmbError`."""

from __future__ import annotations

from ..errors import InvalidInput, ZkmbError

# TLS AlertDescription names (RFC 8446 §6), for messages.
ALERT_NAMES = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}


def alert_name(code: int) -> str:
    """Name of a TLS alert description, or ``alert_<n>`` for unknown codes."""
    return ALERT_NAMES.get(code, f"alert_{code}")


class TlsError(ZkmbError):
    """The TLS connection failed; it cannot be used any more."""


class TlsProtocolError(TlsError, InvalidInput):
    """The peer sent bytes that violate TLS 1.3 or this client's profile.

    ``alert`` is the RFC 8446 alert description that names the violation (the client never sends it:
    it closes the TCP connection instead).
    """

    def __init__(self, message: str, alert: int = 10):
        super().__init__(f"{message} ({alert_name(alert)})")
        self.alert = alert


class RecordOverflow(TlsProtocolError):
    """A TLS record is longer than RFC 8446 §5 allows."""

    def __init__(self, message: str):
        super().__init__(message, alert=22)


class NoApplicationProtocol(TlsProtocolError):
    """The server selected an ALPN protocol the client did not offer (or none when one is required)."""

    def __init__(self, message: str):
        super().__init__(message, alert=120)


class TlsAlertReceived(TlsError):
    """The server sent a fatal alert (or close_notify before the handshake completed)."""

    def __init__(self, description: int, protected: bool):
        hint = ""
        if description in (40, 70) and not protected:
            hint = " (does the server support TLS 1.3 with ChaCha20-Poly1305 or AES-128-GCM?)"
        where = "" if protected else " unprotected"
        super().__init__(f"server sent{where} alert {alert_name(description)} ({description}){hint}")
        self.description = description
        self.protected = protected


class CertificateVerifyError(TlsError):
    """The server certificate did not verify (untrusted chain, wrong name, expired, unusable key)."""


class TruncatedStream(TlsError, ConnectionError):
    """The connection ended in the middle of a record, the handshake, a DNS frame or an outstanding query."""


class KeyUpdateRequested(TlsError):
    """The server requested a KeyUpdate or a post-handshake client certificate: reconnect (SPEC §2).

    The client never answers either (it would need a KeyUpdate record or a client certificate, neither
    of which the middlebox admits), so the connection is over. ``events`` holds what the records before
    the request delivered (authenticated, complete), so a response that arrived with it is not lost.
    """

    def __init__(self, message: str, events: list | None = None):
        super().__init__(message)
        self.events = list(events or [])


class DotError(ZkmbError):
    """A DNS-over-TLS level failure (framing, unmatched response, misuse of the client)."""


class DotProtocolError(DotError, InvalidInput):
    """The resolver sent a malformed DNS frame or a response that matches no outstanding query."""


class DotTimeout(DotError, TimeoutError):
    """A connect, handshake or query did not finish within its timeout."""
