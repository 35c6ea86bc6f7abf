"""Fixtures for the TLS/DoT tests: certificates, the embedded resolver, raw hostile servers.

Every socket is on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from zkmb.resolver import BackgroundResolver, Responder, make_server_context
from zkmb.resolver.certs import make_self_signed, write_pair

STATIC = {
    "www.example.test": "192.0.2.1",
    "v6.example.test": "2001:db8::1",
    "mail.example.test": ["MX 10 mx.example.test."],
}
for _i in range(8):
    STATIC[f"h{_i}.example.test"] = f"192.0.2.{10 + _i}"


@pytest.fixture(scope="session")
def cert_pair(tmp_path_factory):
    """(cert path, key path) of a self-signed P-256 certificate for localhost / 127.0.0.1."""
    d = tmp_path_factory.mktemp("certs")
    return write_pair(d, *make_self_signed())


@pytest.fixture(scope="session")
def other_cert(tmp_path_factory):
    """A second, unrelated self-signed certificate (an untrusted CA for the first)."""
    d = tmp_path_factory.mktemp("othercert")
    return write_pair(d, *make_self_signed(), stem="other")


@contextlib.contextmanager
def embedded(cert_pair, keylog=None, responder=None, **ctx_kwargs):
    cert, key = cert_pair
    ctx = make_server_context(cert, key, keylog=keylog, **ctx_kwargs)
    with BackgroundResolver(responder or Responder(static=STATIC), ctx) as r:
        yield r


@contextlib.contextmanager
def raw_server(handler, timeout: float = 5.0):
    """A one-connection TCP server on 127.0.0.1 running ``handler(conn)`` in a thread; yields the port."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(timeout)
    port = lsock.getsockname()[1]

    def run():
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        conn.settimeout(timeout)
        with conn:
            with contextlib.suppress(OSError):
                handler(conn)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield port
    finally:
        lsock.close()
        t.join(timeout)


def read_record(conn: socket.socket) -> bytes:
    """Read one TLS record (header + body) from a socket."""
    buf = b""
    while len(buf) < 5:
        chunk = conn.recv(5 - len(buf))
        if not chunk:
            return buf
        buf += chunk
    n = int.from_bytes(buf[3:5], "big")
    while len(buf) < 5 + n:
        chunk = conn.recv(5 + n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf
