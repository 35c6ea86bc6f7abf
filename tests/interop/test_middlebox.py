"""A real ``zkmb middlebox`` (relay mode, the demo's Groth16 keys) in front of each real resolver
(issue #20 item 2).

- Every resolver: a DoT client that proves nothing gets no query past a strict middlebox, so the blocked
  name (which the resolver would answer, ``test_direct.py``) never appears in the resolver's query log.
- unbound and BIND at their defaults (idle time-outs 30 s, longer than a CO proof), and dnsdist with
  its idle time-out raised: the real stub through the strict middlebox gets A, AAAA and a > 1,200-byte
  answer on one proved connection, and a blocked name is answered by the stub itself and never reaches
  the resolver.

Knot Resolver (10 s) and dnsdist (2 s) at their defaults behind a strict middlebox, async mode, and idle
connections being closed under the stub need the stub's async mode and idle handling (issue #20 item 1);
with the fixtures here each is a few lines (``conftest.py``).
"""

from __future__ import annotations

import asyncio
import time

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from zkmb.errors import ZkmbError
from zkmb.resolver.daemons import BIG_TXT, Bind
from zkmb.tls import DotClient

from .resolvers import BLOCKED, RESOLVERS, WWW, ask_through_stub, diagnose, ede_codes, tls_config

pytestmark = pytest.mark.needs_system
CO_DEADLINE = 60.0
"""The stub tests' middlebox CO deadline: a CO proof takes ~15 s on the shared 2-core machine under load,
too close to SPEC §2's [20 s]; the resolvers keep their own idle time-outs (unbound and BIND 30 s)."""


@pytest.mark.parametrize("resolver", RESOLVERS, indirect=True)
def test_proofless_client_gets_nothing_to_the_resolver(resolver, start_middlebox):
    """Strict mode: the TLS handshake passes through (ClientHello, the server's flight, the client
    Finished), but an application record without its proofs is held and the connection cut at its
    deadline: neither the blocked name nor an allowed one reaches the resolver."""
    mb = start_middlebox(resolver, mode="strict")
    t0 = time.monotonic()
    with DotClient("127.0.0.1", mb.relay_port, tls_config(resolver), timeout=8) as c:
        assert c.capture.suite_name in ("chacha20", "aes128gcm")  # the handshake went through
        with pytest.raises((ZkmbError, OSError)):  # DotTimeout, TruncatedStream, "connection is closed"
            c.query_many([dns.message.make_query(BLOCKED, "A"), dns.message.make_query(WWW, "A")])
    assert time.monotonic() - t0 < 15
    time.sleep(0.3)
    assert resolver.queries() == []
    if resolver.name != "dnsdist":  # dnsdist's own 2 s idle time-out may close the connection first
        assert mb.metric("zkmb_cuts_total") >= 1, mb.log_text()[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, idle",
    [("unbound", None), ("bind", None), ("dnsdist", 60.0)],
    ids=["unbound", "bind", "dnsdist-setTCPRecvTimeout-60"],
)
def test_stub_through_strict_middlebox(start_resolver, start_middlebox, prover, interop_policy, name, idle):
    """The real stub (Groth16 proofs) -> middlebox (strict) -> resolver: A, AAAA and the > 1,200-byte TXT
    on one proved connection (one CO verified, three Q proofs), then the blocked name: NXDOMAIN with EDE
    15 from the stub, and only the three allowed queries in the resolver's log.  unbound and BIND at their
    defaults (30 s); dnsdist with its idle time-out raised as docs/resolvers.md says (its 2 s default is
    shorter than any CO proof)."""
    resolver = start_resolver(name, idle=idle)
    mb = start_middlebox(resolver, mode="strict", co_deadline=CO_DEADLINE)
    questions = [(WWW, "A", "udp"), (WWW, "AAAA", "udp"), (WWW, "TXT", "tcp"), (BLOCKED, "A", "udp")]
    run = asyncio.run(ask_through_stub(mb, resolver, prover, interop_policy, questions))
    a, aaaa, txt, blocked = run.responses
    why = diagnose(run, mb, resolver)  # e.g. a CO proof slower than the idle time-out on a loaded machine
    assert all(r.rcode() == dns.rcode.NOERROR for r in (a, aaaa, txt)), why
    assert a.rcode() == dns.rcode.NOERROR and [rd.to_text() for rd in a.answer[0]] == ["192.0.2.1"]
    assert aaaa.rcode() == dns.rcode.NOERROR and [rd.to_text() for rd in aaaa.answer[0]] == ["2001:db8::1"]
    assert txt.rcode() == dns.rcode.NOERROR and len(txt.to_wire()) > 1200
    assert [s.decode() for rd in txt.answer[0] for s in rd.strings] == list(BIG_TXT)
    assert txt.answer[0].rdtype == dns.rdatatype.TXT
    assert blocked.rcode() == dns.rcode.NXDOMAIN and ede_codes(blocked) == [15]
    assert run.stats.blocked == 1 and run.stats.upstream == 3
    assert resolver.wait_queries(3) == [(WWW, "A"), (WWW, "AAAA"), (WWW, "TXT")]
    time.sleep(0.3)
    assert len(resolver.queries()) == 3  # the blocked name never reached the resolver
    assert mb.metric("zkmb_proofs_total", circuit="co_chacha20", result="verified") == 1  # one connection
    assert mb.metric("zkmb_proofs_total", circuit="q_64", result="verified") == 3
    assert mb.metric("zkmb_proofs_total", result="failed") == 0
    assert mb.metric("zkmb_cuts_total") == 0
    if isinstance(resolver, Bind):
        assert len(set(resolver.query_ports())) == 1
