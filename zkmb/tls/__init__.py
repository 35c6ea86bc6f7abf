"""TLS 1.3 DNS-over-TLS client that captures what the zkmb prover needs (SPEC §2-§5)."""

from .capture import CapturedRecord, CapturedSession, parse_keylog, write_keylog
from .client import (
    GROUP_SECP256R1,
    GROUP_X25519,
    ApplicationData,
    ConnectionClosed,
    HandshakeComplete,
    TlsClient,
    TlsClientConfig,
)
from .dot import (
    AsyncDotClient,
    DnsResponse,
    DotClient,
    DotConnection,
    ReconnectRequired,
    make_config,
    query,
)
from .records import SUITES_BY_NAME, TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256

__all__ = [
    "GROUP_SECP256R1",
    "GROUP_X25519",
    "SUITES_BY_NAME",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ApplicationData",
    "AsyncDotClient",
    "CapturedRecord",
    "CapturedSession",
    "ConnectionClosed",
    "DnsResponse",
    "DotClient",
    "DotConnection",
    "HandshakeComplete",
    "ReconnectRequired",
    "TlsClient",
    "TlsClientConfig",
    "make_config",
    "parse_keylog",
    "query",
    "write_keylog",
]
