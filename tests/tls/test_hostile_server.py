"""End-to-end tests against the scriptable hostile TLS 1.3 server (tests/tls/hostile_server.py).

All sockets are on 127.0.0.1; every client and server wait is bounded.
"""

from __future__ import annotations

import asyncio
import os

import dns.message
import pytest

from zkmb.resolver import Responder
from zkmb.resolver.certs import make_self_signed
from zkmb.tls import GROUP_SECP256R1, GROUP_X25519, AsyncDotClient, DotClient, TlsClientConfig
from zkmb.tls.errors import KeyUpdateRequested, NoApplicationProtocol, TlsError, TlsProtocolError

from .conftest import STATIC
from .hostile_server import HostileServer, Script
from .independent import check_session

RESPONDER = Responder(static=STATIC)


@pytest.fixture(scope="module")
def pem():
    """(certificate PEM, key PEM) of a self-signed P-256 certificate for 127.0.0.1."""
    return make_self_signed()


def _server(pem, *scripts: Script) -> HostileServer:
    return HostileServer(*pem, list(scripts) or None, responder=RESPONDER, timeout=5.0)


def _config(pem, **kw) -> TlsClientConfig:
    return TlsClientConfig("127.0.0.1", cadata=pem[0], **kw)


def _q(i: int = 0) -> dns.message.Message:
    return dns.message.make_query(f"h{i % 8}.example.test", "A")


def _ip(resp) -> str:
    (rrset,) = resp.answer
    (rr,) = rrset
    return rr.to_text()


def _sync(pem, srv: HostileServer, **kw) -> DotClient:
    return DotClient("127.0.0.1", srv.port, _config(pem, **kw), timeout=3)


def _run_async(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


def test_correct_server_baseline(pem):
    with _server(pem) as srv, _sync(pem, srv) as c:
        assert _ip(c.query(_q(1))) == "192.0.2.11"
        cap = c.capture
    assert srv.errors == [] and srv.cores[0].facts["client_finished_payload_len"] == 53
    assert cap.alpn is None  # like unbound 1.17: no ALPN negotiated, accepted by default
    check_session(cap, 1)


def test_alpn_not_offered(pem):
    with _server(pem, Script(alpn="h2")) as srv:
        with pytest.raises(NoApplicationProtocol, match="'h2'.*no_application_protocol"):
            _sync(pem, srv).connect()
    with _server(pem, Script(alpn="dot")) as srv, _sync(pem, srv) as c:
        c.query(_q())
        assert c.capture.alpn == "dot"


# -- KeyUpdate / CertificateRequest ----------------------------------------------------------------------


def test_key_update_not_requested(pem):
    script = Script(before={1: ("key_update",)}, after={2: ("key_update",)})
    with _server(pem, script) as srv, _sync(pem, srv) as c:
        ips = [_ip(c.query(_q(i))) for i in range(4)]
        cap = c.capture
    assert ips == [f"192.0.2.{10 + i}" for i in range(4)]
    assert srv.errors == [] and srv.cores[0].facts["key_updates"] == 2 and len(srv.cores) == 1
    # Read key updated twice: server application records are numbered per epoch (SPEC §2).
    seqs = [r.seq for r in cap.server_app_records]
    assert seqs == [0, 1, 0, 1, 2, 0]  # resp0 | KU, resp1, resp2, KU | resp3
    assert cap.server_application_traffic_secret is not None  # stays the epoch-0 secret
    check_session(cap, 4)  # our own records never change key


def test_key_update_not_requested_async(pem):
    async def main(port):
        async with AsyncDotClient("127.0.0.1", port, _config(pem), timeout=3) as c:
            return [_ip(await c.query(_q(i))) for i in range(3)]

    with _server(pem, Script(before={0: ("key_update", "key_update")})) as srv:
        assert _run_async(main(srv.port)) == ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
    assert srv.errors == []


@pytest.mark.parametrize("action", ["key_update_requested", "certificate_request"])
def test_rekey_request_with_query_outstanding(pem, action):
    """The request arrives before the answer: a clear error; the next query reconnects."""
    with _server(pem, Script(before={1: (action,)}), Script()) as srv, _sync(pem, srv) as c:
        assert _ip(c.query(_q(0))) == "192.0.2.10"
        with pytest.raises(KeyUpdateRequested, match="reconnect.*1 queries.*unanswered"):
            c.query(_q(1))
        assert _ip(c.query(_q(1))) == "192.0.2.11"  # transparently on a new connection
        assert len(c.closed_captures) == 1 and c.capture is not c.closed_captures[0]
        check_session(c.closed_captures[0], 2)
        check_session(c.capture, 1)
    assert [len(core.queries) for core in srv.cores] == [2, 1] and srv.errors == []


def test_rekey_request_without_reconnect(pem):
    with _server(pem, Script(after={0: ("key_update_requested",)})) as srv:
        c = DotClient("127.0.0.1", srv.port, _config(pem), timeout=3, reconnect=False)
        with c:
            c.query(_q(0))
            with pytest.raises(KeyUpdateRequested, match="reconnect is disabled"):
                c.query(_q(1))


@pytest.mark.parametrize("action", ["key_update_requested", "certificate_request"])
def test_rekey_request_between_queries_is_transparent(pem, action):
    """The request follows an answer: that answer is delivered, the next query goes to a new connection."""
    with _server(pem, Script(after={0: (action,)}), Script()) as srv, _sync(pem, srv) as c:
        assert _ip(c.query(_q(0))) == "192.0.2.10"
        assert [_ip(r) for r in c.query_many([_q(1), _q(2)])] == ["192.0.2.11", "192.0.2.12"]
        assert len(c.closed_captures) == 1
    assert [len(core.queries) for core in srv.cores] == [1, 2] and srv.errors == []


@pytest.mark.parametrize("action", ["key_update_requested", "certificate_request"])
def test_rekey_request_async(pem, action):
    async def main(port):
        async with AsyncDotClient("127.0.0.1", port, _config(pem), timeout=3) as c:
            first = _ip(await c.query(_q(0)))
            with pytest.raises(KeyUpdateRequested, match="unanswered"):
                await c.query(_q(1))
            again = await asyncio.gather(c.query(_q(2)), c.query(_q(3)))  # one reconnect for both
            return first, [_ip(r) for r in again], len(c.closed_captures)

    with _server(pem, Script(before={1: (action,)}), Script()) as srv:
        first, again, closed = _run_async(main(srv.port))
    assert first == "192.0.2.10" and again == ["192.0.2.12", "192.0.2.13"] and closed == 1
    assert [len(core.queries) for core in srv.cores] == [2, 2] and srv.errors == []


# -- record layer ------------------------------------------------------------------------------------------


def test_change_cipher_spec_during_handshake_is_ignored(pem):
    with _server(pem, Script(ccs_after_server_hello=True)) as srv, _sync(pem, srv) as c:
        assert _ip(c.query(_q(3))) == "192.0.2.13"
        cap = c.capture
    assert bytes.fromhex("140303000101") in bytes(cap.server_bytes)
    assert [r.seq for r in cap.server_handshake_records] == [0]  # CCS is not counted
    check_session(cap, 1)


def test_change_cipher_spec_after_handshake_is_rejected(pem):
    with _server(pem, Script(before={0: ("ccs",)})) as srv, _sync(pem, srv) as c:
        with pytest.raises(TlsProtocolError, match="ChangeCipherSpec"):
            c.query(_q())


@pytest.mark.parametrize("pad", [1, 300, 15000])
def test_padded_server_records(pem, pad):
    with _server(pem, Script(pad=pad)) as srv, _sync(pem, srv) as c:
        assert _ip(c.query(_q(2))) == "192.0.2.12"
        cap = c.capture
    assert all(len(r.payload) > pad + 16 for r in cap.server_handshake_records + cap.server_app_records)
    check_session(cap, 1)


def test_padding_beyond_the_limit_is_rejected(pem):
    with _server(pem, Script(pad=1 << 14)) as srv:
        with pytest.raises(TlsProtocolError, match="record_overflow"):
            _sync(pem, srv).connect()


def test_bad_tag(pem):
    with _server(pem, Script(before={1: ("bad_tag",)})) as srv, _sync(pem, srv) as c:
        c.query(_q(0))
        with pytest.raises(TlsProtocolError, match="record 1 failed authentication.*bad_record_mac"):
            c.query(_q(1))
        with pytest.raises(TlsError, match="already failed"):
            c.query(_q(2))  # the connection is dead, never silently reused


def test_bad_tag_in_handshake_flight(pem):
    with _server(pem, Script(bad_tag_in_flight=True)) as srv:
        with pytest.raises(TlsProtocolError, match="record 0 failed authentication"):
            _sync(pem, srv).connect()


@pytest.mark.parametrize(
    "cookie, group, shares",
    [
        (os.urandom(40), None, None),
        (b"\x00", GROUP_SECP256R1, (GROUP_X25519,)),
        (None, GROUP_SECP256R1, (GROUP_X25519,)),
    ],
)
def test_hello_retry_request_cookie(pem, cookie, group, shares):
    script = Script(hrr_cookie=cookie, hrr_group=group)
    with _server(pem, script) as srv, _sync(pem, srv, key_share_groups=shares) as c:
        assert _ip(c.query(_q(4))) == "192.0.2.14"
        cap = c.capture
    facts = srv.cores[0].facts
    assert srv.errors == [] and facts["same_random"]
    assert facts["cookie_echoed"] == (cookie is not None)
    assert cap.hello_retry and cap.group == (group or GROUP_X25519)
    hellos = [m for s, m in cap.handshake_messages if s == "client" and m[0] == 1]
    assert len(hellos) == 2
    if cookie is not None:
        ext = b"\x00\x2c" + (len(cookie) + 2).to_bytes(2, "big") + len(cookie).to_bytes(2, "big") + cookie
        assert ext in hellos[1] and ext not in hellos[0]
    check_session(cap, 1)  # independent H2/H3 with the message_hash rule


# -- TCP segmentation ---------------------------------------------------------------------------------------


def _count_reads(client: DotClient) -> list[int]:
    sizes: list[int] = []
    orig = client.conn.receive_data

    def wrapped(data: bytes):
        sizes.append(len(data))
        return orig(data)

    client.conn.receive_data = wrapped
    return sizes


def test_records_split_across_tcp_segments(pem):
    with _server(pem, Script(chunk=7)) as srv, _sync(pem, srv) as c:
        sizes = _count_reads(c)
        resps = c.query_many([_q(i) for i in range(3)])
        n_records = len(c.capture.server_app_records)
    assert [_ip(r) for r in resps] == ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
    assert n_records == 3 and len(sizes) >= 3 and min(sizes) <= 7  # records arrived in pieces


def test_several_records_in_one_segment_and_frames_across_records(pem):
    with _server(pem, Script(record_size=5)) as srv, _sync(pem, srv) as c:
        sizes = _count_reads(c)
        resps = c.query_many([_q(i) for i in range(8)])
        cap = c.capture
    assert [_ip(r) for r in resps] == [f"192.0.2.{10 + i}" for i in range(8)]
    assert len(cap.server_app_records) >= 8 * 10  # each ~50-byte frame cut into 5-byte records
    assert len(sizes) < len(cap.server_app_records)  # so at least one read held several records
    check_session(cap, 8)


def test_split_and_chunked_async(pem):
    async def main(port):
        async with AsyncDotClient("127.0.0.1", port, _config(pem), timeout=5) as c:
            resps = await asyncio.gather(*(c.query(_q(i)) for i in range(4)))
            return [_ip(r) for r in resps]

    with _server(pem, Script(record_size=17, chunk=64, chunk_pause=0.005)) as srv:
        assert _run_async(main(srv.port)) == [f"192.0.2.{10 + i}" for i in range(4)]
    assert srv.errors == []
