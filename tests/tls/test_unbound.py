"""Against a real resolver: unbound (Debian package ``unbound``) on a loopback port, local-data only."""

from __future__ import annotations

import contextlib

import dns.message
import dns.rcode
import pytest

from tests.conftest import require
from zkmb.resolver.daemons import Unbound
from zkmb.tls import DotClient, TlsClientConfig
from zkmb.tls.records import SUITES_BY_NAME

from .independent import check_session


@contextlib.contextmanager
def unbound(tmp_path, suite: str):
    """unbound restricted to ``suite``, local data only (:class:`zkmb.resolver.daemons.Unbound`);
    yields ``(port, cert)``."""
    require(Unbound.available(), "unbound is needed for the real-resolver tests (apt-get install unbound)")
    with Unbound(tmp_path, suite=suite) as d:
        yield d.port, d.cert


@pytest.mark.needs_system
@pytest.mark.parametrize("suite", ["chacha20", "aes128gcm"])
def test_unbound_each_suite(tmp_path, suite):
    with unbound(tmp_path, suite) as (port, cert):
        # Offer both suites: the server's restriction alone decides, and the client follows it.
        config = TlsClientConfig("127.0.0.1", cafile=str(cert))
        with DotClient("127.0.0.1", port, config, padding_block=128, timeout=5) as c:
            qs = [
                dns.message.make_query(n, t)
                for n, t in [
                    ("www.example.test", "A"),
                    ("h1.example.test", "A"),
                    ("h2.example.test", "A"),
                    ("h3.example.test", "AAAA"),
                    ("nope.example.test", "A"),
                    ("elsewhere.org", "A"),
                ]
            ]
            resps = c.query_many(qs)
            cap = c.capture
    assert cap.suite_name == suite
    ans = [[r.to_text() for rr in x.answer for r in rr] for x in resps]
    assert ans[:4] == [["192.0.2.1"], ["192.0.2.11"], ["192.0.2.12"], ["2001:db8::3"]]
    assert resps[4].rcode() == dns.rcode.NXDOMAIN
    assert resps[5].rcode() == dns.rcode.REFUSED
    check_session(cap, 6)


@pytest.mark.needs_system
def test_unbound_single_offered_suite_mismatch(tmp_path):
    """Offering only a suite the server refuses fails cleanly."""
    from zkmb.tls.errors import TlsError

    with unbound(tmp_path, "aes128gcm") as (port, cert):
        config = TlsClientConfig("127.0.0.1", cafile=str(cert), suites=(SUITES_BY_NAME["chacha20"],))
        with pytest.raises(TlsError):
            DotClient("127.0.0.1", port, config, timeout=3).connect()
