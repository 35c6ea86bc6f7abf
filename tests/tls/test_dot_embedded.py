"""Handshake, queries and capture against the embedded resolver (OpenSSL via Python ssl)."""

from __future__ import annotations

import asyncio
import struct

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from zkmb.tls import (
    GROUP_SECP256R1,
    GROUP_X25519,
    AsyncDotClient,
    DotClient,
    TlsClientConfig,
    parse_keylog,
    query,
)
from zkmb.tls.records import SUITES_BY_NAME

from .conftest import embedded
from .independent import check_session, server_app_plaintexts

SUITES = ["chacha20", "aes128gcm"]


def _answer_ips(resp):
    return sorted(r.to_text() for rrset in resp.answer for r in rrset)


@pytest.mark.parametrize("suite", SUITES)
def test_query_each_suite_keylog_matches_openssl(cert_pair, tmp_path, suite):
    keylog = tmp_path / "server.keylog"
    with embedded(cert_pair, keylog=keylog) as r:
        q = dns.message.make_query("www.example.test", "A")
        resp, cap = query(
            q, "127.0.0.1", r.port, cafile=str(cert_pair[0]), suites=(SUITES_BY_NAME[suite],), timeout=5
        )
    assert _answer_ips(resp) == ["192.0.2.1"]
    assert cap.suite_name == suite and cap.alpn == "dot" and not cap.hello_retry
    theirs = parse_keylog(keylog.read_text())
    mine = parse_keylog(cap.keylog_lines())
    assert len(mine) == 4
    for k, v in mine.items():
        assert theirs[k] == v, k
    (qwire,) = check_session(cap, 1)
    assert dns.message.from_wire(qwire).question == q.question
    # The server's application records hold NewSessionTickets (ignored) and the DoT response.
    plains = server_app_plaintexts(cap)
    data = b"".join(c for t, c in plains if t == 23)
    assert dns.message.from_wire(data[2:]).id == q.id


@pytest.mark.parametrize("suite", SUITES)
def test_hello_retry_request(cert_pair, tmp_path, suite):
    """A server that only accepts P-256 makes a client that sent an X25519 share retry (RFC 8446 §4.1.4)."""
    keylog = tmp_path / "server.keylog"
    with embedded(cert_pair, keylog=keylog, ecdh_curve="prime256v1") as r:
        config = TlsClientConfig(
            "127.0.0.1",
            cafile=str(cert_pair[0]),
            suites=(SUITES_BY_NAME[suite],),
            key_share_groups=(GROUP_X25519,),
        )
        with DotClient("127.0.0.1", r.port, config, timeout=5) as c:
            resp = c.query(dns.message.make_query("v6.example.test", "AAAA"))
            cap = c.capture
    assert _answer_ips(resp) == ["2001:db8::1"]
    assert cap.hello_retry and cap.group == GROUP_SECP256R1
    hellos = [m for s, m in cap.handshake_messages if m[0] == 1]
    assert len(hellos) == 2 and hellos[0][6:38] == hellos[1][6:38] == cap.client_random
    theirs = parse_keylog(keylog.read_text())
    for k, v in parse_keylog(cap.keylog_lines()).items():
        assert theirs[k] == v
    check_session(cap, 1)


def test_pipelining_async(cert_pair):
    names = [f"h{i}.example.test" for i in range(8)]

    async def main(port):
        config = TlsClientConfig("127.0.0.1", cafile=str(cert_pair[0]))
        async with AsyncDotClient("127.0.0.1", port, config, timeout=5) as c:
            qs = [dns.message.make_query(n, "A") for n in names]
            qs[1].id = qs[0].id  # a colliding ID gets replaced, not confused
            resps = await asyncio.gather(*(c.query(q) for q in qs))
            more = await c.query(dns.message.make_query("nx.example.test", "A"))
            return resps, more, c.capture

    with embedded(cert_pair) as r:
        resps, more, cap = asyncio.run(asyncio.wait_for(main(r.port), 20))
        assert r.queries == 9
    assert [_answer_ips(x) for x in resps] == [[f"192.0.2.{10 + i}"] for i in range(8)]
    assert more.rcode() == dns.rcode.REFUSED
    queries = check_session(cap, 9)
    assert len({dns.message.from_wire(w).id for w in queries}) == 9
    assert cap.suite_name == "chacha20"  # offered first


def test_pipelining_sync_with_padding(cert_pair):
    with embedded(cert_pair) as r:
        config = TlsClientConfig("127.0.0.1", cafile=str(cert_pair[0]))
        with DotClient("127.0.0.1", r.port, config, padding_block=128, timeout=5) as c:
            qs = [dns.message.make_query(f"h{i}.example.test", "A") for i in range(4)]
            qs.append(dns.message.make_query("mail.example.test", "MX"))
            resps = c.query_many(qs)
            cap = c.capture
    assert [_answer_ips(x) for x in resps[:4]] == [[f"192.0.2.{10 + i}"] for i in range(4)]
    assert resps[4].answer[0].rdtype == dns.rdatatype.MX
    for wire in check_session(cap, 5):
        assert len(wire) % 128 == 0
    for rec in cap.client_app_records:
        assert len(rec.payload) == 2 + 128 + 1 + 16  # one message, no TLS padding


def test_hostname_sni_verification(cert_pair):
    with embedded(cert_pair) as r:
        q = dns.message.make_query("www.example.test", "A")
        resp, cap = query(q, "127.0.0.1", r.port, server_name="dot.zkmb.test", cafile=str(cert_pair[0]))
    assert _answer_ips(resp) == ["192.0.2.1"]
    assert cap.server_name == "dot.zkmb.test"
    assert b"dot.zkmb.test" in cap.handshake_messages[0][1]  # SNI in the ClientHello


def test_cli_query_and_keylog(cert_pair, tmp_path, capsys):
    from zkmb.cli import main

    keylog = tmp_path / "client.keylog"
    with embedded(cert_pair) as r:
        rc = main(
            [
                "query",
                "www.example.test",
                "A",
                "--dot",
                f"127.0.0.1:{r.port}",
                "--ca",
                str(cert_pair[0]),
                "--suite",
                "aes128gcm",
                "--keylog",
                str(keylog),
            ]
        )
    out = capsys.readouterr()
    assert rc == 0
    assert "192.0.2.1" in out.out and "aes128gcm" in out.err
    labels = sorted(k[0] for k in parse_keylog(keylog.read_text()))
    assert labels == [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_TRAFFIC_SECRET_0",
    ]


def test_frame_is_one_record(cert_pair):
    """The DoT length prefix and the message travel in one record: P[0..2] = M, L = M + 3 (SPEC §5.2)."""
    with embedded(cert_pair) as r:
        q = dns.message.make_query("www.example.test", "A")
        _, cap = query(q, "127.0.0.1", r.port, cafile=str(cert_pair[0]))
    (rec,) = cap.client_app_records
    m = len(q.to_wire())
    assert len(rec.payload) - 16 == m + 3
    assert struct.unpack(">H", rec.header[3:5])[0] == m + 3 + 16
