"""Fuzzing the record reader and the handshake / post-handshake parsing paths with hypothesis.

Property: whatever the server sends, the client raises nothing but :class:`zkmb.errors.ZkmbError`
subclasses (no IndexError, struct.error, AssertionError, ... from our code or aioquic's parsers). Inputs are
random bytes and mutations (flip, set, truncate, extend, insert, delete) of real server messages produced
in memory by the hostile server core, re-encrypted under the real keys where they are protected, so the
mutations reach the parsers behind the AEAD.
"""

from __future__ import annotations

import dns.message
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkmb.errors import ZkmbError
from zkmb.resolver.certs import make_self_signed
from zkmb.tls import DotConnection, TlsClient, TlsClientConfig
from zkmb.tls.client import _parse_server_hello
from zkmb.tls.errors import CertificateVerifyError
from zkmb.tls.records import CT_ALERT, CT_APPLICATION_DATA, CT_HANDSHAKE, RecordReader

from .hostile_server import Script, ServerCore, ServerError, seal

# Mutated certificates may carry a negative serial number; cryptography warns when it parses one.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")
PEM = make_self_signed()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A mutation: (op, position, value). Positions are taken modulo the current length.
_op = st.tuples(
    st.sampled_from(["flip", "set", "truncate", "extend", "insert", "delete"]),
    st.integers(0, 1 << 16),
    st.binary(min_size=1, max_size=40),
)
mutations = st.lists(_op, min_size=1, max_size=4)


def mutate(data: bytes, ops) -> bytes:
    """Apply ``ops`` to ``data``; never raises."""
    b = bytearray(data)
    for op, pos, val in ops:
        i = pos % (len(b) + 1)
        if op == "flip" and b:
            b[i % len(b)] ^= 1 << (val[0] % 8)
        elif op == "set" and b:
            b[i % len(b)] = val[0]
        elif op == "truncate":
            del b[i:]
        elif op == "extend":
            b += val
        elif op == "insert":
            b[i:i] = val
        elif op == "delete":
            del b[i : i + len(val)]
    return bytes(b)


def _client() -> TlsClient:
    return TlsClient(TlsClientConfig("127.0.0.1", cadata=PEM[0]))


def drive(client, server: ServerCore, rounds: int = 8) -> None:
    """Start ``client`` and run it against ``server`` in memory until neither has anything to say."""
    client.start()
    for _ in range(rounds):
        out = client.data_to_send()
        if out:
            try:
                server.receive(out)
            except (ServerError, ZkmbError):
                return  # the server gave up on a client that followed a mutated transcript
        writes = b"".join(server.take_writes())
        if not writes:
            return
        client.receive_data(writes)


def _expect_zkmb_error_only(fn) -> None:
    try:
        fn()
    except ZkmbError:
        pass


# -- record reader -------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_record_reader_random_bytes(data, cuts):
    reader = RecordReader()
    got = b""
    pieces, prev = [], 0
    for c in sorted(cuts) + [len(data)]:
        c = min(c, len(data))
        pieces.append(data[prev:c])
        prev = max(prev, c)
    try:
        for piece in pieces:
            got += b"".join(r.raw for r in reader.feed(piece))
    except ZkmbError:
        return
    # Without an error the records and the pending bytes are exactly the input, in order.
    assert got == data[: len(got)] and len(got) + reader.pending == len(data)


@FUZZ
@given(header=st.binary(min_size=5, max_size=5), body=st.binary(max_size=64))
def test_record_reader_headers(header, body):
    _expect_zkmb_error_only(lambda: RecordReader().feed(header + body))


# -- handshake --------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=400))
def test_client_random_server_bytes(data):
    client = _client()
    client.start()
    _expect_zkmb_error_only(lambda: client.receive_data(data))


@FUZZ
@given(data=st.binary(max_size=200))
def test_parse_server_hello_random(data):
    _expect_zkmb_error_only(lambda: _parse_server_hello(bytes([2]) + len(data).to_bytes(3, "big") + data))


@FUZZ
@given(body=st.binary(max_size=120), mtype=st.sampled_from([2, 8, 11, 13, 15, 20, 4, 24, 1, 99]))
def test_client_random_plaintext_handshake_message(body, mtype):
    msg = bytes([mtype]) + len(body).to_bytes(3, "big") + body
    record = bytes([22, 3, 3]) + len(msg).to_bytes(2, "big") + msg
    client = _client()
    client.start()
    _expect_zkmb_error_only(lambda: client.receive_data(record))


@FUZZ
@given(ops=mutations, hrr=st.booleans())
def test_mutated_server_hello(ops, hrr):
    """The ServerHello (or HelloRetryRequest) record as the real server built it, mutated."""
    script = Script(hrr_cookie=b"cookie" if hrr else None, mutate_server_hello=lambda rec: mutate(rec, ops))
    _expect_zkmb_error_only(lambda: drive(_client(), ServerCore(*PEM, script)))


@FUZZ
@given(ops=mutations)
def test_mutated_encrypted_flight(ops):
    """EncryptedExtensions..Finished mutated in plaintext, then sealed under the real handshake key."""
    script = Script(mutate_handshake=lambda flight: mutate(flight, ops))
    _expect_zkmb_error_only(lambda: drive(_client(), ServerCore(*PEM, script)))


@FUZZ
@given(ops=mutations)
def test_mutated_server_stream(ops):
    """A whole real server stream (records included) mutated in flight."""
    server = ServerCore(*PEM, Script())
    client = _client()
    client.start()
    server.receive(client.data_to_send())
    stream = b"".join(server.take_writes())
    _expect_zkmb_error_only(lambda: client.receive_data(mutate(stream, ops)))


# -- after the handshake ------------------------------------------------------------------------------------


def _connected() -> tuple[DotConnection, ServerCore]:
    conn = DotConnection(TlsClientConfig("127.0.0.1", cadata=PEM[0]))
    server = ServerCore(*PEM, Script())
    drive(conn, server)
    assert conn.tls.handshake_complete
    return conn, server


@FUZZ
@given(
    inner=st.sampled_from([CT_HANDSHAKE, CT_ALERT, CT_APPLICATION_DATA, 20, 0, 99]),
    content=st.binary(max_size=80),
    pad=st.integers(0, 3),
)
def test_post_handshake_random_protected_content(inner, content, pad):
    conn, server = _connected()
    conn.send_query(dns.message.make_query("www.example.test", "A"))
    rec = seal(server._write_app, inner, content, pad)
    _expect_zkmb_error_only(lambda: conn.receive_data(rec))


KEY_UPDATE = bytes([24, 0, 0, 1, 0])
CERTIFICATE_REQUEST = bytes([13, 0, 0, 12, 1, 42, 0, 8, 0, 13, 0, 4, 0, 2, 4, 3])
NEW_SESSION_TICKET = bytes([4, 0, 0, 13]) + bytes(4) + bytes(4) + bytes([0]) + bytes([0, 1, 7]) + bytes(2)


@pytest.mark.parametrize(
    "base",
    [KEY_UPDATE, CERTIFICATE_REQUEST, NEW_SESSION_TICKET],
    ids=["key_update", "cert_request", "ticket"],
)
@FUZZ
@given(ops=mutations)
def test_post_handshake_mutated_messages(base, ops):
    """A real KeyUpdate, CertificateRequest or NewSessionTicket, mutated, sealed under the real key."""
    conn, server = _connected()
    conn.send_query(dns.message.make_query("www.example.test", "A"))
    rec = seal(server._write_app, CT_HANDSHAKE, mutate(base, ops) or b"\x04")
    _expect_zkmb_error_only(lambda: conn.receive_data(rec))


@FUZZ
@given(ops=mutations)
def test_mutated_dns_response(ops):
    """The real answer's DoT frame, mutated, sealed as the server's next record."""
    conn, server = _connected()
    q = dns.message.make_query("www.example.test", "A")
    conn.send_query(q)
    resp = server.responder.answer(q.to_wire())
    frame = len(resp).to_bytes(2, "big") + resp
    rec = seal(server._write_app, CT_APPLICATION_DATA, mutate(frame, ops) or b"\x00")
    _expect_zkmb_error_only(lambda: conn.receive_data(rec))


@pytest.mark.parametrize("suite", [0x1301, 0x1303])
def test_fuzz_harness_reaches_application_data(suite):
    """The harness itself works: an unmutated in-memory session answers a query under either suite."""
    conn = DotConnection(TlsClientConfig("127.0.0.1", cadata=PEM[0], suites=(suite,)))
    server = ServerCore(*PEM, Script())
    conn.start()
    conn.send_query(dns.message.make_query("www.example.test", "A"))  # queued until the handshake ends
    events = []
    for _ in range(6):
        out = conn.data_to_send()
        if out:
            server.receive(out)
        writes = b"".join(server.take_writes())
        if not writes:
            break
        events += conn.receive_data(writes)
    assert conn.capture.suite == suite
    assert any(type(e).__name__ == "DnsResponse" for e in events)


def _mutate_certificate(flight: bytes, ops) -> bytes:
    """Mutate only the DER certificate inside the Certificate message, keeping every length consistent."""
    out, i = b"", 0
    while i + 4 <= len(flight):
        n = int.from_bytes(flight[i + 1 : i + 4], "big")
        msg = flight[i : i + 4 + n]
        i += 4 + n
        if msg[0] == 11:
            ctx_len = msg[4]
            der_len = int.from_bytes(msg[5 + ctx_len + 3 : 5 + ctx_len + 6], "big")
            start = 5 + ctx_len + 6
            der = mutate(msg[start : start + der_len], ops)
            entry = len(der).to_bytes(3, "big") + der + b"\x00\x00"
            body = bytes([ctx_len]) + msg[5 : 5 + ctx_len] + len(entry).to_bytes(3, "big") + entry
            msg = bytes([11]) + len(body).to_bytes(3, "big") + body
        out += msg
    return out


@FUZZ
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["flip", "set"]), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=1)
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_certificate_der(ops):
    """Certificates that still parse as DER but carry mutated names, dates, keys or signatures."""
    script = Script(mutate_handshake=lambda flight: _mutate_certificate(flight, ops))
    _expect_zkmb_error_only(lambda: drive(_client(), ServerCore(*PEM, script)))


def test_certificate_with_invalid_x509_version():
    """Regression (found by the fuzzer): cryptography raises InvalidVersion, not ValueError."""

    def bad_version(flight: bytes) -> bytes:
        assert b"\xa0\x03\x02\x01\x02" in flight  # [0] EXPLICIT Version v3
        return flight.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x42", 1)

    with pytest.raises(CertificateVerifyError, match="not a valid X509 version"):
        drive(_client(), ServerCore(*PEM, Script(mutate_handshake=bad_version)))
