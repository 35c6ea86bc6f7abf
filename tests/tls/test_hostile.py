"""Hostile or broken servers give clear zkmb errors, never hangs or crashes."""

from __future__ import annotations

import contextlib
import ssl
import time

import dns.message
import pytest

from zkmb.errors import InvalidInput, ZkmbError
from zkmb.resolver import Responder, make_server_context
from zkmb.tls import DotClient, TlsClient, TlsClientConfig, query
from zkmb.tls.errors import (
    CertificateVerifyError,
    DotTimeout,
    NoApplicationProtocol,
    RecordOverflow,
    TlsAlertReceived,
    TlsProtocolError,
    TruncatedStream,
)
from zkmb.tls.records import (
    CT_APPLICATION_DATA,
    TLS_AES_128_GCM_SHA256,
    TLS_CHACHA20_POLY1305_SHA256,
    Record,
    RecordProtection,
    RecordReader,
)

from .conftest import embedded, raw_server, read_record


def _q():
    return dns.message.make_query("www.example.test", "A")


def _query(port, **kw):
    kw.setdefault("timeout", 3)
    return query(_q(), "127.0.0.1", port, **kw)


def test_untrusted_certificate(cert_pair, other_cert):
    with embedded(cert_pair) as r, pytest.raises(CertificateVerifyError, match="certificate rejected"):
        _query(r.port, cafile=str(other_cert[0]))


def test_wrong_hostname(cert_pair):
    with embedded(cert_pair) as r, pytest.raises(CertificateVerifyError, match="doesn't match"):
        _query(r.port, server_name="evil.example", cafile=str(cert_pair[0]))


def test_wrong_ip(cert_pair):
    with embedded(cert_pair) as r, pytest.raises(CertificateVerifyError):
        _query(r.port, server_name="127.0.0.2", cafile=str(cert_pair[0]))


def test_system_store_rejects_self_signed(cert_pair):
    with embedded(cert_pair) as r, pytest.raises(CertificateVerifyError):
        _query(r.port)


def test_no_alpn_when_required(cert_pair):
    with embedded(cert_pair, alpn=["h2"]) as r:
        # Without the requirement a server that negotiates no ALPN is accepted (many DoT servers do not).
        resp, cap = _query(r.port, cafile=str(cert_pair[0]))
        assert cap.alpn is None and resp.answer
        config = TlsClientConfig("127.0.0.1", cafile=str(cert_pair[0]), require_alpn=True)
        with pytest.raises(NoApplicationProtocol, match="no ALPN"):
            DotClient("127.0.0.1", r.port, config, timeout=3).connect()


def test_alpn_not_offered_is_rejected():
    """A server selecting a protocol we did not offer (OpenSSL never does; checked on the client state)."""
    client = TlsClient(TlsClientConfig("127.0.0.1"))
    client._ctx.alpn_negotiated = "h2"
    with pytest.raises(NoApplicationProtocol, match="'h2'"):
        client._check_alpn()


def test_tls12_only_server(cert_pair):
    # asyncio's ssl server drops the connection without flushing its alert ...
    with embedded(cert_pair, max_version=ssl.TLSVersion.TLSv1_2) as r:
        with pytest.raises(TruncatedStream, match="TLS 1.3"):
            _query(r.port, cafile=str(cert_pair[0]))
    # ... a blocking OpenSSL server sends one.
    ctx = make_server_context(*cert_pair, max_version=ssl.TLSVersion.TLSv1_2)

    def handler(conn):
        with contextlib.suppress(ssl.SSLError):
            ctx.wrap_socket(conn, server_side=True)

    with raw_server(handler) as port, pytest.raises(TlsAlertReceived, match="TLS 1.3"):
        _query(port, cafile=str(cert_pair[0]))


def _after_client_hello(reply: bytes, close: bool = True):
    def handler(conn):
        read_record(conn)
        conn.sendall(reply)
        if not close:
            time.sleep(1)

    return handler


def test_alert_from_server():
    with raw_server(_after_client_hello(bytes.fromhex("15030300020228"))) as port:
        with pytest.raises(TlsAlertReceived, match="handshake_failure") as ei:
            _query(port)
    assert ei.value.description == 40


def test_truncated_record():
    with raw_server(_after_client_hello(bytes.fromhex("1603030050") + bytes(10))) as port:
        with pytest.raises(TruncatedStream, match="inside a TLS record"):
            _query(port)


def test_closed_before_server_hello():
    with (
        raw_server(_after_client_hello(b"")) as port,
        pytest.raises(TruncatedStream, match="before the ServerHello"),
    ):
        _query(port)


def test_oversized_record():
    with raw_server(_after_client_hello(bytes.fromhex("1603034801"), close=False)) as port:
        with pytest.raises(RecordOverflow, match="record_overflow"):
            _query(port)


def test_not_tls():
    with raw_server(_after_client_hello(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as port:
        with pytest.raises(TlsProtocolError, match="not speak TLS"):
            _query(port)


def test_garbage_server_hello():
    msg = bytes([2, 0, 0, 4]) + b"\x03\x03\x00\x00"
    rec = bytes([22, 3, 3, 0, len(msg)]) + msg
    with raw_server(_after_client_hello(rec)) as port, pytest.raises(TlsProtocolError, match="ServerHello"):
        _query(port)


def test_silent_server_times_out():
    def handler(conn):
        read_record(conn)
        time.sleep(1.5)

    with raw_server(handler) as port:
        t = time.monotonic()
        with pytest.raises(DotTimeout):
            _query(port, timeout=0.5)
        assert time.monotonic() - t < 2.5


class _Hangup(Responder):
    def answer(self, wire):
        return None


def test_server_closes_with_query_outstanding(cert_pair):
    with embedded(cert_pair, responder=_Hangup()) as r:
        with pytest.raises(TruncatedStream, match="unanswered|closed"):
            _query(r.port, cafile=str(cert_pair[0]))


def test_errors_share_the_root():
    for cls in (CertificateVerifyError, RecordOverflow, TlsAlertReceived, TruncatedStream, DotTimeout):
        assert issubclass(cls, ZkmbError)


def test_bad_config_and_host():
    with pytest.raises(InvalidInput):
        TlsClientConfig("127.0.0.1", suites=(0x1302,))
    with pytest.raises(InvalidInput):
        TlsClientConfig("127.0.0.1", key_share_groups=(0x18,))
    with pytest.raises(InvalidInput):
        TlsClientConfig("")
    with pytest.raises(InvalidInput, match="IP address"):
        DotClient("localhost", 853)


# -- record layer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, exc, match",
    [
        ("1803030001", TlsProtocolError, "content type"),
        ("1603000001", TlsProtocolError, "legacy_record_version"),
        ("1603030000", TlsProtocolError, "zero-length"),
        ("1603034001", RecordOverflow, "2\\^14"),
        ("1703034101", RecordOverflow, "2\\^14 \\+ 256"),
    ],
)
def test_record_reader_rejects(header, exc, match):
    with pytest.raises(exc, match=match):
        RecordReader().feed(bytes.fromhex(header))


def test_record_reader_split_feed():
    rr = RecordReader()
    data = bytes.fromhex("1603030003") + b"abc" + bytes.fromhex("170303000101")
    got = []
    for b in data:
        got += rr.feed(bytes([b]))
    assert [(r.content_type, r.payload) for r in got] == [(22, b"abc"), (23, b"\x01")]
    assert rr.pending == 0


@pytest.mark.parametrize("suite", [TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256])
def test_record_protection_roundtrip_and_tamper(suite):
    secret = bytes(range(32))
    tx, rx = RecordProtection(suite, secret), RecordProtection(suite, secret)
    for i in range(3):
        seq, raw = tx.seal(CT_APPLICATION_DATA, b"hello %d" % i)
        assert seq == i
        (rec,) = RecordReader().feed(raw)
        assert rx.open(rec) == (i, CT_APPLICATION_DATA, b"hello %d" % i)
    _, raw = tx.seal(CT_APPLICATION_DATA, b"x")
    bad = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(TlsProtocolError, match="bad_record_mac"):
        rx.open(Record(23, bad[5:], bad))
    # An inner plaintext of only zeros has no content type.
    tx2, rx2 = RecordProtection(suite, secret), RecordProtection(suite, secret)
    _, raw = tx2.seal(0, b"\x00\x00")
    with pytest.raises(TlsProtocolError, match="content type"):
        rx2.open(Record(23, raw[5:], raw))
