"""Embedded DNS-over-TLS resolver (Python ``ssl``/OpenSSL, TLS 1.3 only) answering from local data."""

from .certs import ensure_certificate, make_self_signed
from .server import BackgroundResolver, DotResolver, Responder, make_server_context

__all__ = [
    "BackgroundResolver",
    "DotResolver",
    "Responder",
    "ensure_certificate",
    "make_self_signed",
    "make_server_context",
]
