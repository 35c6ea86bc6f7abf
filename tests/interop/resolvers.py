"""Helpers of the resolver interop matrix (issue #20): the four real DoT servers of
:mod:`zkmb.resolver.daemons`, what a test measures on them, a real ``zkmb middlebox`` process in front of
one, and the real stub (in process, as the demo runs it) through that middlebox.

Everything is on 127.0.0.1; every wait is bounded; every process started here is stopped by the fixture
that started it (``conftest.py``), also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from zkmb.client_stub.demo import DEMO_CIRCUITS

from zkmb.errors import ZkmbError
from zkmb.resolver.daemons import DAEMONS, ResolverDaemon
from zkmb.tls import ConnectionClosed, DotConnection, TlsClientConfig
from zkmb.tls.records import SUITES_BY_NAME

from ..tls.independent import server_app_plaintexts

KEYS = DEMO_CIRCUITS
"""The demo's keys: every user of the demo's key directory asks for the same set (a key directory
regenerates every key, one shared SRS, when asked for a different set)."""

REPO = Path(__file__).resolve().parents[2]
RESOLVERS = tuple(DAEMONS)
"""unbound, bind, knot, dnsdist."""
SUITES = ("chacha20", "aes128gcm")

# the same set: a key directory regenerates every key (one shared SRS) when asked for a different one
"""The demo key pairs the middlebox and the stub use (ChaCha20, size class 64)."""
BLOCKED = "ads.blocked.test"
"""A name the interop policy blocks and every resolver would answer (so a leak shows in its log)."""
WWW = "www.example.test"
HT_NAMES = {4: "NewSessionTicket", 24: "KeyUpdate", 13: "CertificateRequest"}


def tls_config(daemon: ResolverDaemon, suite: str | None = None) -> TlsClientConfig:
    """zkmb's client profile for ``daemon`` (its certificate as the only anchor, the IP as the name)."""
    suites = (SUITES_BY_NAME[suite],) if suite else tuple(SUITES_BY_NAME[s] for s in SUITES)
    return TlsClientConfig("127.0.0.1", cafile=str(daemon.cert), suites=suites)


def post_handshake_messages(capture) -> list[str]:
    """The names of the handshake messages the server sent after its Finished (inner type 22 records
    under the application key): NewSessionTicket, KeyUpdate, ...  Read with the independent AEAD of
    ``tests/tls/independent.py``; after a KeyUpdate the later records are not opened (new key)."""
    out = []
    try:
        plain = server_app_plaintexts(capture)
    except Exception:  # noqa: BLE001 - a record after a KeyUpdate does not open under the old key
        return [*out, "?"]
    for inner, content in plain:
        if inner != 22:
            continue
        i = 0
        while i + 4 <= len(content):
            mtype, n = content[i], int.from_bytes(content[i + 1 : i + 4], "big")
            out.append(HT_NAMES.get(mtype, f"type{mtype}"))
            i += 4 + n
    return out


@dataclass
class IdleResult:
    """What :func:`measure_idle` saw on one connection that never sent a query."""

    seconds: float
    """From the client Finished leaving to the server's close (EOF, alert or reset)."""
    how: str
    """``fin``, ``close_notify``, ``alert ...``, ``reset`` or ``open`` (still open at the limit)."""
    suite: str
    post_handshake: list[str] = field(default_factory=list)


def measure_idle(host: str, port: int, config: TlsClientConfig, limit: float) -> IdleResult:
    """Connect with zkmb's TLS client, finish the handshake, send nothing, and time how long the server
    keeps the connection (at most ``limit`` seconds)."""
    conn = DotConnection(config)
    with socket.create_connection((host, port), timeout=10) as sock:
        conn.start()
        deadline = time.monotonic() + 10
        while not conn.tls.handshake_complete:
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            conn.receive_data(data)
        sock.sendall(conn.data_to_send())  # the client Finished
        t0 = time.monotonic()
        how = "open"
        while True:
            left = t0 + limit - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not data:
                how = "fin"
                break
            try:
                events = conn.receive_data(data)
            except ZkmbError as e:
                how = f"alert {e}"
                break
            if any(isinstance(ev, ConnectionClosed) for ev in events):
                how = "close_notify"
                break
        seconds = time.monotonic() - t0
    return IdleResult(seconds, how, conn.capture.suite_name, post_handshake_messages(conn.capture))


def zkmb_query(
    daemon_or_port, cafile, name: str, rdtype: str = "A", suite: str | None = None, timeout: float = 10
) -> tuple[subprocess.CompletedProcess, str | None]:
    """``zkmb query NAME TYPE --dot 127.0.0.1:PORT --ca CERT [--suite S]`` as a process; returns the
    completed process and the suite it reports (``;; DoT ... TLS 1.3 SUITE``)."""
    port = daemon_or_port.port if isinstance(daemon_or_port, ResolverDaemon) else int(daemon_or_port)
    cmd = [sys.executable, "-m", "zkmb.cli", "query", name, rdtype, "--dot", f"127.0.0.1:{port}"]
    cmd += ["--ca", str(cafile), "--timeout", str(timeout)]
    if suite:
        cmd += ["--suite", suite]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, check=False)
    m = re.search(r";; DoT \S+\s+TLS 1\.3 (\S+)", r.stderr)
    return r, m.group(1) if m else None


# ---------------------------------------------------------------------------------------------- middlebox


class MiddleboxProcess:
    """A real ``zkmb middlebox`` in relay mode in front of ``upstream`` (``--mode strict|async``), with the
    demo keys and the interop policy; its ports are read from its log.  ``extra`` adds arguments;
    ``co_deadline`` (seconds, ``--co-deadline``) replaces SPEC §2's [20 s] where a test needs it."""

    def __init__(
        self,
        workdir: Path,
        upstream: tuple[str, int],
        key_dir: Path,
        policy_file: Path,
        mode: str = "strict",
        extra: tuple[str, ...] = (),
        co_deadline: float | None = None,
        start_timeout: float = 120.0,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.upstream, self.key_dir, self.policy_file, self.mode = upstream, key_dir, policy_file, mode
        self.extra = tuple(extra)
        self.co_deadline = co_deadline
        self.start_timeout = start_timeout
        self.log_path = self.workdir / "middlebox.log"
        self.proc: subprocess.Popen | None = None
        self.relay_port = self.proof_port = self.metrics_port = 0

    @property
    def relay(self) -> tuple[str, int]:
        return ("127.0.0.1", self.relay_port)

    @property
    def proof(self) -> tuple[str, int]:
        return ("127.0.0.1", self.proof_port)

    def start(self) -> MiddleboxProcess:
        host, port = self.upstream
        cmd = [sys.executable, "-m", "zkmb.cli", "middlebox", "--listen", "127.0.0.1:0"]
        if self.co_deadline is not None:
            cmd += ["--co-deadline", str(self.co_deadline)]
        cmd += ["--proof-listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--upstream", f"{host}:{port}"]
        cmd += ["--keys", str(self.key_dir), "--key-check", "manifest", "--policy", str(self.policy_file)]
        cmd += ["--mode", self.mode, *self.extra]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            m = re.search(r"middlebox listening (.*)", self.log_text())
            if m:
                ports = dict(kv.split("=", 1) for kv in m.group(1).split())
                self.relay_port, self.proof_port = int(ports["listen"]), int(ports["proofs"])
                self.metrics_port = int(ports["metrics"])
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"zkmb middlebox did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def metrics(self) -> dict[str, float]:
        """The Prometheus samples of ``/metrics``: ``{'name{labels}': value}``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        total = 0.0
        for key, v in self.metrics().items():
            base, _, rest = key.partition("{")
            if base == name and all(f'{k}="{val}"' in rest for k, val in labels.items()):
                total += v
        return total

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


def small_policy():
    """The interop policy: the subtree ``blocked.test`` (so ``ads.blocked.test`` is blocked)."""
    from zkmb.policy import policy_from_rules
    from zkmb.policy.normalise import normalise
    from zkmb.policy.rules import Kind, Rule, name_key

    return policy_from_rules(
        normalise([Rule(name_key("blocked.test"), Kind.SUBTREE, "blocked.test", "t", 1)])
    )


@contextlib.asynccontextmanager
async def running_stub(mb: MiddleboxProcess, daemon: ResolverDaemon, prover, policy, **upstream_kw):
    """The real stub (ProvingUpstream + Listener, as ``zkmb stub`` and the demo build it) through ``mb``
    to ``daemon``; yields ``(listener, upstream, udp_port, tcp_port)``.  ``upstream_kw`` goes to
    :class:`~zkmb.client_stub.upstream.ProvingUpstream` (defaults: one connection, generous waits)."""
    from zkmb.client_stub.listener import Listener
    from zkmb.client_stub.upstream import ProvingUpstream

    kw = {"pool_size": 1, "ready_timeout": 120.0, "answer_timeout": 60.0, **upstream_kw}
    up = ProvingUpstream(
        mb.relay, mb.proof, prover, policy, server_name="127.0.0.1", cafile=str(daemon.cert), **kw
    )
    await up.start()
    lst = Listener(up, policy, port=0, upstream_timeout=150)
    try:
        udp, tcp = await lst.start()
        yield lst, up, udp, tcp
    finally:
        await lst.close()
        await up.close()


def dot_frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


@dataclass
class StubRun:
    """What :func:`ask_through_stub` got: the responses in question order, the stub's upstream timings
    and listener statistics."""

    responses: list
    timings: dict
    stats: object
    mode: str | None = None
    """The enforcement mode the middlebox announced to the stub."""


async def ask_through_stub(
    mb: MiddleboxProcess,
    daemon: ResolverDaemon,
    prover,
    policy,
    questions,
    *,
    pause: float = 0.0,
    settle: float = 0.0,
    **kw,
) -> StubRun:
    """Start the stub through ``mb`` to ``daemon`` and ask ``questions`` one after the other:
    ``(name, type, transport)`` with transport ``udp`` or ``tcp`` (a > 1,200-byte answer needs TCP);
    ``pause`` seconds between them (e.g. past the resolver's idle time-out); then up to ``settle``
    seconds for proofs still on their way (async mode).  ``kw`` goes to :func:`running_stub`."""
    import asyncio

    import dns.asyncquery
    import dns.message

    out = []
    async with running_stub(mb, daemon, prover, policy, **kw) as (lst, up, udp, tcp):
        for i, (name, rdtype, transport) in enumerate(questions):
            if i and pause:
                await asyncio.sleep(pause)
            q = dns.message.make_query(name, rdtype, use_edns=0)
            if transport == "tcp":
                r = await dns.asyncquery.tcp(q, "127.0.0.1", port=tcp, timeout=180)
            else:
                r = await dns.asyncquery.udp(q, "127.0.0.1", port=udp, timeout=180)
            out.append(r)
        deadline = asyncio.get_running_loop().time() + settle
        while any(c._unproven for c in up.conns) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return StubRun(out, {k: list(v) for k, v in up.timings.items()}, lst.stats, up.mode)


def diagnose(run: StubRun, mb: MiddleboxProcess, daemon: ResolverDaemon) -> str:
    """A failure message: the stub's proof timings, the resolver's idle time-out and the middlebox's
    decisions that closed something (why a stub query got SERVFAIL)."""
    co = [round(x, 1) for x in run.timings.get("co", [])]
    idle = daemon.idle if daemon.idle is not None else daemon.default_idle_s
    closed = [ln for ln in mb.log_text().splitlines() if "action=block" in ln or "result=rejected" in ln]
    return (
        f"{daemon.name} (idle time-out {idle:g} s): CO proof(s) {co} s, rcodes "
        f"{[r.rcode() for r in run.responses]}; middlebox: {closed[-5:]}"
    )


def ede_codes(r) -> list[int]:
    import dns.edns

    return [o.code for o in r.options if isinstance(o, dns.edns.EDEOption)]
