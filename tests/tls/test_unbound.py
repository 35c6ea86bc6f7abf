"""Against a real resolver: unbound (Debian package ``unbound``) on a loopback port, local-data only."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time

import dns.message
import dns.rcode
import pytest

from tests.conftest import require
from zkmb.resolver.certs import make_self_signed, write_pair
from zkmb.tls import DotClient, TlsClientConfig
from zkmb.tls.records import SUITES_BY_NAME

from .independent import check_session

OPENSSL_NAMES = {"chacha20": "TLS_CHACHA20_POLY1305_SHA256", "aes128gcm": "TLS_AES_128_GCM_SHA256"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def unbound(tmp_path, suite: str):
    exe = shutil.which("unbound")
    require(exe is not None, "unbound is needed for the real-resolver tests (apt-get install unbound)")
    cert, key = write_pair(tmp_path, *make_self_signed())
    port = _free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(
        f"""server:
    interface: 127.0.0.1@{port}
    tls-port: {port}
    tls-service-key: "{key}"
    tls-service-pem: "{cert}"
    tls-ciphersuites: "{OPENSSL_NAMES[suite]}"
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{tmp_path}"
    pidfile: "{tmp_path}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-ip6: no
    do-udp: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: yes
    local-zone: "." refuse
    local-zone: "example.test." static
    local-data: "www.example.test. 300 IN A 192.0.2.1"
    local-data: "h1.example.test. 300 IN A 192.0.2.11"
    local-data: "h2.example.test. 300 IN A 192.0.2.12"
    local-data: "h3.example.test. 300 IN AAAA 2001:db8::3"
remote-control:
    control-enable: no
"""
    )
    proc = subprocess.Popen([exe, "-d", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                pytest.fail(f"unbound did not start: {out}")
            time.sleep(0.05)
        yield port, cert
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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
