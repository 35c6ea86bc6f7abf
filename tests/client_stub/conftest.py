"""Fixtures shared with the TLS tests (certificates)."""

from ..tls.conftest import cert_pair  # noqa: F401
