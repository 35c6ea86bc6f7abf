"""``zkmb bench baseline``: plain DoT through stubby, the no-privacy-no-filter baseline for the e2e numbers.

stubby (Debian package ``stubby``, getdns) listens for plain DNS on a loopback UDP port and forwards
over DoT to the embedded resolver (:mod:`zkmb.resolver`, self-signed certificate) and nowhere else:
stub resolution, TLS only, authentication required (the certificate as CA file and its SPKI pin),
no DNSSEC (so no trust-anchor fetching), an app-data directory of its own.  The application side is
the same as the zkmb stub's in ``zkmb bench e2e``: one UDP query at a time on loopback for a distinct
(uncached) name of the e2e shapes.  The same names are then asked straight over one kept-open DoT
connection (no proxy) for ``added`` = stubby - direct per name.

Keys: ``stubby_p50_ms``/``stubby_p99_ms`` and ``stubby_samples_ms`` (per query, in order),
``direct_p50_ms``/``direct_samples_ms``, ``added_p50_ms``/``added_p99_ms``/``added_samples_ms``;
``skipped`` (with the reason) when stubby is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import ZkmbError

GAP_S = 0.05
"""Pause between queries (stubby keeps its upstream connection open; idle_timeout is 60 s)."""

STUBBY_CONFIG = """resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list:
  - GETDNS_TRANSPORT_TLS
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_query_padding_blocksize: 128
edns_client_subnet_private: 1
round_robin_upstreams: 0
idle_timeout: 60000
appdata_dir: "{appdata}"
tls_ca_file: "{cafile}"
listen_addresses:
  - 127.0.0.1@{listen_port}
upstream_recursive_servers:
  - address_data: 127.0.0.1
    tls_port: {upstream_port}
    tls_auth_name: "{auth_name}"
    tls_pubkey_pinset:
      - digest: "sha256"
        value: {pin}
"""


def stubby_path() -> str | None:
    """The stubby executable, or None when it is not installed."""
    return shutil.which("stubby") or (shutil.which("stubby", path="/usr/sbin:/usr/bin:/sbin") or None)


def spki_pin(cert_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo DER)) of a PEM certificate (RFC 7469 pin, as getdns wants)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def _ask_udp(name: str, port: int, timeout: float) -> tuple[list[str], float]:
    import dns.message
    import dns.query

    q = dns.message.make_query(name, "A")
    t0 = time.perf_counter()
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    dt = time.perf_counter() - t0
    return [rd.to_text() for rrset in r.answer for rd in rrset], dt


def _direct_dot(names: list[str], port: int, cafile: str, timeout: float = 10) -> list[float]:
    """Seconds per query on one kept-open DoT connection straight to the resolver."""
    import dns.message
    import dns.query

    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            for name in names:
                q = dns.message.make_query(name, "A", use_edns=0)
                t0 = time.perf_counter()
                dns.query.tls(q, "127.0.0.1", timeout=timeout, sock=s)
                times.append(time.perf_counter() - t0)
    return times


def run(quick: bool = False) -> dict[str, Any]:
    import dns.exception

    from ..resolver import BackgroundResolver, Responder, make_server_context
    from ..resolver.certs import make_self_signed, write_pair
    from .e2e import bench_names

    exe = stubby_path()
    if exe is None:
        return {"skipped": "stubby is not installed (Debian package `stubby`)"}
    from .smoke import smoke

    n = (3 if smoke(quick) else 20) if quick else 200
    names = bench_names(n + 1, "s")
    static = {name: f"198.51.100.{i % 250 + 1}" for i, name in enumerate(names)}
    out: dict[str, Any] = {"stubby": exe, "gap_s": GAP_S, "queries": n}
    if smoke(quick):
        out["smoke"] = True
    version = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10)
    out["stubby_version"] = (version.stdout or version.stderr).strip().splitlines()[0] if version else ""
    with tempfile.TemporaryDirectory() as tmp:
        cert_pem, key_pem = make_self_signed()
        cert, key = write_pair(tmp, cert_pem, key_pem)
        ctx = make_server_context(cert, key)
        appdata = Path(tmp) / "appdata"
        appdata.mkdir()
        with BackgroundResolver(Responder(static=static), ctx) as r:
            port = _free_udp_port()
            conf = Path(tmp) / "stubby.yml"
            conf.write_text(
                STUBBY_CONFIG.format(
                    appdata=appdata,
                    cafile=cert,
                    listen_port=port,
                    upstream_port=r.port,
                    auth_name="localhost",
                    pin=spki_pin(cert_pem),
                )
            )
            log = open(Path(tmp) / "stubby.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [exe, "-C", str(conf), "-v", "4"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp},
            )
            try:
                warm, deadline = names[0], time.monotonic() + 15
                while True:  # ready and connected: the first query opens the TLS connection
                    if proc.poll() is not None:
                        raise ZkmbError(f"stubby exited with {proc.returncode}: {_tail(tmp)}")
                    try:
                        addrs, _ = _ask_udp(warm, port, 2)
                        if addrs == [static[warm]]:
                            break
                    except (OSError, EOFError, ValueError, dns.exception.DNSException) as e:
                        if time.monotonic() > deadline:
                            raise ZkmbError(f"stubby did not answer: {e}; {_tail(tmp)}") from e
                    if time.monotonic() > deadline:
                        raise ZkmbError(f"stubby answered {warm} wrongly; {_tail(tmp)}")
                    time.sleep(0.2)
                samples = []
                for name in names[1:]:
                    time.sleep(GAP_S)
                    addrs, dt = _ask_udp(name, port, 5)
                    if addrs != [static[name]]:
                        raise ZkmbError(f"stubby: wrong answer for {name}: {addrs}")
                    samples.append(dt)
            finally:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                log.close()
            if r.queries < len(names):
                raise ZkmbError(f"the resolver saw {r.queries} queries, fewer than stubby was asked")
            direct = _direct_dot(names[1:], r.port, str(cert))
    ms = 1e3
    added = [s - d for s, d in zip(samples, direct, strict=True)]
    for label, xs in (("stubby", samples), ("direct", direct), ("added", added)):
        out[f"{label}_p50_ms"] = _quantile(xs, 0.5) * ms
        out[f"{label}_p99_ms"] = _quantile(xs, 0.99) * ms
        out[f"{label}_samples_ms"] = [x * ms for x in xs]
    return out


def _tail(tmp: str) -> str:
    try:
        return (Path(tmp) / "stubby.log").read_text()[-1500:]
    except OSError:
        return "(no log)"
