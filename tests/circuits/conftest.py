"""Real TLS 1.3 sessions with the embedded resolver (both suites, with and without HelloRetryRequest)."""

from __future__ import annotations

import dns.message
import pytest

from zkmb.resolver.certs import make_self_signed, write_pair
from zkmb.tls import GROUP_X25519, DotClient, TlsClientConfig
from zkmb.tls.records import SUITES_BY_NAME

from ..tls.conftest import embedded

SUITES = ["chacha20", "aes128gcm"]


@pytest.fixture(scope="session")
def circuit_cert_pair(tmp_path_factory):
    """(cert path, key path) of a self-signed certificate for 127.0.0.1."""
    return write_pair(tmp_path_factory.mktemp("circuit-certs"), *make_self_signed())


def real_session(cert_pair, suite: str, *, hrr: bool = False, n_queries: int = 1):
    """One DoT connection to the embedded resolver; returns its CapturedSession after ``n_queries``.

    With ``hrr`` the server only accepts P-256 and the client offers an X25519 share first, so the
    server answers with a HelloRetryRequest (RFC 8446 §4.1.4).
    """
    kwargs = {"ecdh_curve": "prime256v1"} if hrr else {}
    with embedded(cert_pair, **kwargs) as r:
        config = TlsClientConfig(
            "127.0.0.1",
            cafile=str(cert_pair[0]),
            suites=(SUITES_BY_NAME[suite],),
            **({"key_share_groups": (GROUP_X25519,)} if hrr else {}),
        )
        with DotClient("127.0.0.1", r.port, config, timeout=5) as c:
            for i in range(n_queries):
                c.query(dns.message.make_query(f"h{i % 8}.example.test", "A"))
            cap = c.capture
    assert cap.suite_name == suite and cap.hello_retry == hrr
    return cap


@pytest.fixture(scope="session")
def sessions(circuit_cert_pair):
    """Lazily made real sessions keyed by (suite, hrr); each has two client application records."""
    cache: dict = {}

    def get(suite: str, hrr: bool = False):
        if (suite, hrr) not in cache:
            cache[(suite, hrr)] = real_session(circuit_cert_pair, suite, hrr=hrr, n_queries=2)
        return cache[(suite, hrr)]

    return get
