"""Real DoT resolvers from their Debian packages, started in the foreground on loopback for tests.

One class per server: :class:`Unbound` (``unbound``), :class:`Bind` (``bind9``: named, its own TLS
listener), :class:`KnotResolver` (``knot-resolver``: kresd, GnuTLS) and :class:`Dnsdist` (``dnsdist``, in
front of an :class:`Unbound` backend on a plain-DNS loopback port).  Each one:

- writes its configuration into its own work directory, with a self-signed certificate
  (:mod:`zkmb.resolver.certs`) unless one is given;
- listens for DoT on ``host:port`` only (127.0.0.1 and a free port by default): no port 53, no control
  channel on a port, no web/console listener;
- serves the same local data (:data:`DEFAULT_RECORDS`: ``www.example.test`` A, AAAA and a TXT set that
  makes the answer > 1,200 bytes; ``ads.blocked.test`` resolvable so that a leaked blocked query would be
  answered and logged) and never recurses or resolves anything else: no root priming, no trust-anchor
  updates, no security polling; other names are refused;
- logs every query it receives to a file (:meth:`ResolverDaemon.queries` parses it);
- keeps the server's own default idle time-out unless ``idle`` is given (seconds);
- is ready when :meth:`start` returns and gone when :meth:`stop` returns (SIGTERM, then SIGKILL); the
  child also gets SIGTERM if the process that started it dies (``PR_SET_PDEATHSIG``).

``suite`` restricts the server to one TLS 1.3 cipher suite.  unbound (``tls-ciphersuites``) and dnsdist
(``ciphersTLS13``) do that in their own configuration; BIND 9.18 and Knot Resolver 5.6 have no such
setting, so for them the TLS library's system-wide policy is narrowed for that process only
(``OPENSSL_CONF``, ``GNUTLS_SYSTEM_PRIORITY_FILE``).  ``docs/resolvers.md`` has the configurations and
what each server does by default.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .certs import make_self_signed, write_pair

__all__ = [
    "BIG_TXT",
    "DAEMONS",
    "DEFAULT_RECORDS",
    "Bind",
    "DaemonError",
    "Dnsdist",
    "KnotResolver",
    "ResolverDaemon",
    "Unbound",
    "free_port",
]

OPENSSL_SUITES = {"chacha20": "TLS_CHACHA20_POLY1305_SHA256", "aes128gcm": "TLS_AES_128_GCM_SHA256"}
GNUTLS_CIPHERS = {"chacha20": "CHACHA20-POLY1305", "aes128gcm": "AES-128-GCM"}
_GNUTLS_TLS13 = ("AES-256-GCM", "CHACHA20-POLY1305", "AES-128-GCM", "AES-128-CCM")

BIG_TXT = tuple(f"zkmb-interop-{i}-".ljust(220, chr(ord("a") + i)) for i in range(6))
"""The strings of ``www.example.test`` TXT: 6 x 221 bytes of RDATA, a DNS answer of ~1,380 bytes."""

ZONES = ("example.test", "blocked.test")
DEFAULT_RECORDS: tuple[tuple[str, str, str], ...] = (
    ("www.example.test", "A", "192.0.2.1"),
    ("www.example.test", "AAAA", "2001:db8::1"),
    ("www.example.test", "TXT", " ".join(f'"{s}"' for s in BIG_TXT)),
    ("h1.example.test", "A", "192.0.2.11"),
    ("h2.example.test", "A", "192.0.2.12"),
    ("h3.example.test", "AAAA", "2001:db8::3"),
    ("ads.blocked.test", "A", "192.0.2.66"),
)
"""(owner, type, RDATA in presentation format) served by every daemon, TTL 300.  Other names under
:data:`ZONES` do not exist (NXDOMAIN); names outside them are refused."""


class DaemonError(RuntimeError):
    """A resolver did not start (its log tail is in the message) or did not stop."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the daemon binds it itself)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _which(name: str) -> str | None:
    """``name`` on PATH, else in /usr/sbin or /usr/bin (Debian puts daemons in sbin)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin"):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _lua_bytes(data: bytes) -> str:
    return "'" + "".join(f"\\{b:03d}" for b in data) + "'"


def _txt_wire(rdata: str) -> bytes:
    out = b""
    for s in re.findall(r'"([^"]*)"', rdata):
        raw = s.encode()
        out += bytes([len(raw)]) + raw
    return out


class ResolverDaemon:
    """Base class: a resolver process, its work directory, its DoT port and its query log."""

    name = "?"
    package = "?"
    executable = "?"
    default_idle_s: float = 0.0
    """The server's own idle time-out for a DoT connection that sends nothing (its packaged default)."""
    idle_setting = "?"
    """The configuration statement that sets it, as an operator writes it."""
    suite_in_config = False
    """Whether the server's own configuration can restrict the TLS 1.3 cipher suites."""
    ready_marker: str | None = None
    """A log line (regex) that says the server is answering; None: the port accepting is enough."""

    def __init__(
        self,
        workdir: str | os.PathLike,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        cert: tuple[str | os.PathLike, str | os.PathLike] | None = None,
        suite: str | None = None,
        idle: float | None = None,
        records: Sequence[tuple[str, str, str]] = DEFAULT_RECORDS,
        zones: Sequence[str] = ZONES,
        argv_prefix: Sequence[str] = (),
        extra: Sequence[str] = (),
        start_timeout: float = 30.0,
    ):
        if suite is not None and suite not in OPENSSL_SUITES:
            raise ValueError(f"unknown suite {suite!r}")
        self.workdir = Path(workdir)
        self.host = host
        self.port = port
        self.suite = suite
        self.idle = idle
        self.records = tuple(records)
        self.zones = tuple(zones)
        self.argv_prefix = tuple(argv_prefix)
        """Run the daemon under this command (e.g. ``ip netns exec NS``)."""
        self.extra = tuple(extra)
        """Further configuration lines, as the server reads them (unbound: ``server:`` clause, BIND:
        ``options { }`` statements, Knot Resolver and dnsdist: Lua), e.g. ``incoming-num-tcp: 100``."""
        self.start_timeout = start_timeout
        self._cert = cert
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        self.query_log = self.workdir / "query.log"

    # ------------------------------------------------------------------ discovery

    @classmethod
    def path(cls) -> str | None:
        """The daemon's executable, or None when its package is not installed."""
        return _which(cls.executable)

    @classmethod
    def available(cls) -> bool:
        return cls.path() is not None

    @classmethod
    def version(cls) -> str:
        """The version line the daemon prints (e.g. ``unbound 1.17.1``)."""
        raise NotImplementedError

    @classmethod
    def _first_line(cls, *args: str, pattern: str) -> str:
        exe = cls.path()
        if exe is None:
            return f"{cls.name} not installed"
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=20, check=False)
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(0).strip() if m else (out.stdout + out.stderr).strip().splitlines()[0]

    # ------------------------------------------------------------------ files

    @property
    def cert(self) -> Path:
        """The server certificate (self-signed, its own trust anchor: the client's CA file)."""
        assert self._cert is not None, "start() first"
        return Path(self._cert[0])

    @property
    def key(self) -> Path:
        assert self._cert is not None, "start() first"
        return Path(self._cert[1])

    def config_text(self) -> str:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def write_files(self) -> None:
        """Certificate (unless given), configuration and data files into the work directory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._cert is None:
            self._cert = write_pair(self.workdir, *make_self_signed())
        self.config_path.write_text(self.config_text())

    @property
    def config_path(self) -> Path:
        raise NotImplementedError

    # ------------------------------------------------------------------ run

    def start(self) -> ResolverDaemon:
        """Write the files, start the daemon and wait until it serves DoT; a port taken meanwhile by
        someone else is retried with another free port."""
        exe = self.path()
        if exe is None:
            raise DaemonError(f"{self.executable} not found (apt-get install {self.package})")
        fixed = self.port is not None
        for attempt in range(3):
            if not fixed:
                self.port = free_port(self.host)
            self.write_files()
            self.query_log.touch()
            try:
                self._spawn()
                self._wait_ready()
                return self
            except DaemonError as e:
                self.stop()
                if fixed or attempt == 2 or "in use" not in str(e).lower():
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.argv_prefix, *self.argv()],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        marker = re.compile(self.ready_marker) if self.ready_marker else None
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise DaemonError(
                    f"{self.name} exited with status {self.proc.returncode} at start:\n{self.log_tail()}"
                )
            if (marker is None or marker.search(self.log_text())) and self._connectable():
                return
            if time.monotonic() > deadline:
                raise DaemonError(f"{self.name} not ready within {self.start_timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _connectable(self) -> bool:
        if self.argv_prefix:  # e.g. in another network namespace: probe from where the daemon runs
            probe = f"import socket; socket.create_connection(({self.host!r}, {self.port}), 0.5).close()"
            cmd = [*self.argv_prefix, sys.executable, "-c", probe]
            return subprocess.run(cmd, capture_output=True, timeout=10, check=False).returncode == 0
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; returns when the process is gone."""
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
        with contextlib.suppress(ProcessLookupError):  # anything the daemon left in its process group
            os.killpg(p.pid, signal.SIGKILL)

    def __enter__(self) -> ResolverDaemon:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ what it saw

    def queries(self) -> list[tuple[str, str]]:
        """``(name, type)`` of every query in the query log, names lower case without the final dot."""
        try:
            text = self.query_log.read_text(errors="replace")
        except OSError:
            return []
        return [(n.rstrip(".").lower(), t.upper()) for n, t in self._parse_queries(text)]

    def _parse_queries(self, text: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def wait_queries(self, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
        """The query log once it has at least ``n`` entries (logs are written asynchronously)."""
        deadline = time.monotonic() + timeout
        while len(got := self.queries()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def describe(self) -> str:
        return f"{self.name} on {self.host}:{self.port} (work dir {self.workdir})"


# ---------------------------------------------------------------------------------------------- unbound


class Unbound(ResolverDaemon):
    """unbound: ``local-zone``/``local-data`` only, ``local-zone: "." refuse``, never queries upstream
    (``do-not-query-address`` everything).  ``tls=False`` serves plain DNS on UDP and TCP instead (the
    dnsdist backend).  Idle: ``tcp-idle-timeout`` (ms, default 30000)."""

    name = "unbound"
    package = "unbound"
    executable = "unbound"
    default_idle_s = 30.0
    idle_setting = "tcp-idle-timeout: 30000  # ms, server: clause"
    suite_in_config = True
    ready_marker = r"start of service"

    def __init__(self, workdir, *, tls: bool = True, **kw):
        self.tls = tls
        super().__init__(workdir, **kw)
        self.log_path = self.workdir / "unbound.log"
        self.query_log = self.log_path  # log-queries lines go to the same file

    @classmethod
    def version(cls) -> str:
        line = cls._first_line("-V", pattern=r"Version \S+")
        return "unbound " + line.split()[-1]

    @property
    def config_path(self) -> Path:
        return self.workdir / "unbound.conf"

    def write_files(self) -> None:
        if not self.tls and self._cert is None:
            self._cert = ("", "")
        super().write_files()

    def config_text(self) -> str:
        w = self.workdir
        lines = [
            "server:",
            f"    interface: {self.host}@{self.port}",
            "    do-daemonize: no",
            '    username: ""',
            '    chroot: ""',
            f'    directory: "{w}"',
            f'    pidfile: "{w}/unbound.pid"',
            "    use-syslog: no",
            f'    logfile: "{self.log_path}"',
            "    log-queries: yes",
            "    verbosity: 1",
            "    do-ip6: no",
            "    access-control: 0.0.0.0/0 allow",
            "    do-not-query-localhost: yes",
            "    do-not-query-address: 0.0.0.0/0",
            "    do-not-query-address: ::/0",
            '    local-zone: "." refuse',
        ]
        if self.tls:
            lines += [
                f"    tls-port: {self.port}",
                f'    tls-service-key: "{self.key}"',
                f'    tls-service-pem: "{self.cert}"',
                "    do-udp: no",
            ]
            if self.suite is not None:
                lines.append(f'    tls-ciphersuites: "{OPENSSL_SUITES[self.suite]}"')
        if self.idle is not None:
            lines.append(f"    tcp-idle-timeout: {int(self.idle * 1000)}")
        lines += [f'    local-zone: "{z}." static' for z in self.zones]
        lines += [f"    local-data: '{o}. 300 IN {t} {r}'" for o, t, r in self.records]
        lines += [f"    {line}" for line in self.extra]
        lines += ["remote-control:", "    control-enable: no", ""]
        return "\n".join(lines)

    def argv(self) -> list[str]:
        return [str(self.path()), "-d", "-c", str(self.config_path)]

    def _parse_queries(self, text):
        # "[1700000000] unbound[123:0] info: 127.0.0.1 www.example.test. A IN"
        return re.findall(r"\] unbound\[[^\]]*\] info: \S+ (\S+) (\S+) IN$", text, re.M)

    @classmethod
    def config_default(cls, option: str, workdir: str | os.PathLike) -> str:
        """What ``unbound-checkconf -o OPTION`` says for a minimal configuration (a packaged default)."""
        conf = Path(workdir) / "defaults.conf"
        conf.write_text('server:\n    username: ""\n    chroot: ""\n')
        exe = _which("unbound-checkconf")
        if exe is None:
            raise DaemonError("unbound-checkconf not found (apt-get install unbound)")
        out = subprocess.run([exe, "-o", option, str(conf)], capture_output=True, text=True, check=True)
        return out.stdout.strip()


# ---------------------------------------------------------------------------------------------- BIND


class Bind(ResolverDaemon):
    """BIND 9 (named) with its own TLS listener, authoritative for :data:`ZONES`, ``recursion no``, no
    control channel.  Idle: ``tcp-idle-timeout`` (units of 100 ms, default 300), which in 9.18 also
    bounds a DoT connection that never sent a query (``tcp-initial-timeout`` does not)."""

    name = "bind"
    package = "bind9"
    executable = "named"
    default_idle_s = 30.0
    idle_setting = "tcp-idle-timeout 300;  # units of 100 ms, options { }"
    ready_marker = r"\brunning\b"

    @classmethod
    def version(cls) -> str:
        return cls._first_line("-v", pattern=r"BIND \S+")

    @property
    def config_path(self) -> Path:
        return self.workdir / "named.conf"

    def write_files(self) -> None:
        super().write_files()
        for zone in self.zones:
            self._zone_path(zone).write_text(self._zone_text(zone))
        if self.suite is not None:
            (self.workdir / "openssl.cnf").write_text(
                "openssl_conf = zkmb_conf\n[zkmb_conf]\nssl_conf = zkmb_ssl\n[zkmb_ssl]\n"
                f"system_default = zkmb_tls\n[zkmb_tls]\nCiphersuites = {OPENSSL_SUITES[self.suite]}\n"
            )

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.suite is not None:  # 9.18 has no cipher-suites statement (9.20 has)
            env["OPENSSL_CONF"] = str(self.workdir / "openssl.cnf")
        return env

    def _zone_path(self, zone: str) -> Path:
        return self.workdir / f"{zone}.zone"

    def _zone_text(self, zone: str) -> str:
        out = [
            "$TTL 300",
            f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 300",
            f"@ IN NS ns.{zone}.",
            f"ns IN A {self.host if ':' not in self.host else '127.0.0.1'}",
        ]
        for owner, t, r in self.records:
            if owner == zone or owner.endswith("." + zone):
                out.append(f"{owner}. IN {t} {r}")
        return "\n".join(out) + "\n"

    def config_text(self) -> str:
        w = self.workdir
        idle = f"    tcp-idle-timeout {max(1, round(self.idle * 10))};\n" if self.idle is not None else ""
        extra = "".join(f"    {line}\n" for line in self.extra)
        zones = "".join(f'zone "{z}" {{ type primary; file "{self._zone_path(z)}"; }};\n' for z in self.zones)
        return f"""options {{
    directory "{w}";
    pid-file "{w}/named.pid";
    session-keyfile "{w}/session.key";
    managed-keys-directory "{w}";
    listen-on port {self.port} tls zkmb-tls {{ {self.host}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    querylog yes;
{idle}{extra}}};
controls {{ }};
tls zkmb-tls {{
    cert-file "{self.cert}";
    key-file "{self.key}";
}};
logging {{
    channel zkmb_queries {{ file "{self.query_log}"; print-time yes; }};
    channel zkmb_log {{ file "{self.log_path}"; print-time yes; severity info; }};
    category queries {{ zkmb_queries; }};
    category default {{ zkmb_log; }};
}};
{zones}"""

    def argv(self) -> list[str]:
        return [str(self.path()), "-f", "-4", "-c", str(self.config_path)]

    def _parse_queries(self, text):
        # "... client @0x... 127.0.0.1#36598 (www.example.test): query: www.example.test IN A +T (127.0.0.1)"
        return re.findall(r"query: (\S+) IN (\S+) ", text)

    def query_ports(self) -> list[int]:
        """The client's source port of every logged query (one per TCP connection)."""
        text = self.query_log.read_text(errors="replace") if self.query_log.exists() else ""
        return [int(p) for p in re.findall(r"#(\d+) \([^)]*\): query:", text)]

    @classmethod
    def builtin_default(cls, statement: str) -> str:
        """The value of ``statement`` in ``named -C`` (the built-in default configuration)."""
        out = subprocess.run([str(cls.path()), "-C"], capture_output=True, text=True, timeout=20, check=True)
        m = re.search(rf"^\s*{re.escape(statement)}\s+([^;]+);", out.stdout, re.M)
        if m is None:
            raise DaemonError(f"named -C has no {statement}")
        return m.group(1).strip()


# ---------------------------------------------------------------------------------------------- Knot


class KnotResolver(ResolverDaemon):
    """Knot Resolver 5 (kresd, GnuTLS): ``policy.ANSWER`` rules for the local data, names under
    :data:`ZONES` otherwise ``policy.DENY`` (NXDOMAIN), everything else ``policy.REFUSE``; no priming,
    no trust anchor and none of the modules that query the root on their own.  A policy rule in front
    writes each query to the query log.  Idle: ``net.tcp_in_idle(ms)`` (default 10000)."""

    name = "knot"
    package = "knot-resolver"
    executable = "kresd"
    default_idle_s = 10.0
    idle_setting = "net.tcp_in_idle(10000)  -- ms"

    @classmethod
    def version(cls) -> str:
        line = cls._first_line("--version", pattern=r"version \S+")
        return "Knot Resolver " + line.split()[-1]

    @property
    def config_path(self) -> Path:
        return self.workdir / "kresd.conf"

    def write_files(self) -> None:
        super().write_files()
        if self.suite is not None:  # kresd 5 has no priority setting: narrow GnuTLS's system policy
            off = [c for c in _GNUTLS_TLS13 if c != GNUTLS_CIPHERS[self.suite]]
            (self.workdir / "gnutls.config").write_text(
                "[overrides]\n" + "".join(f"tls-disabled-cipher = {c}\n" for c in off)
            )

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.suite is not None:
            env["GNUTLS_SYSTEM_PRIORITY_FILE"] = str(self.workdir / "gnutls.config")
        return env

    def _answers(self) -> str:
        by_owner: dict[str, dict[str, list[str]]] = {}
        for owner, t, r in self.records:
            by_owner.setdefault(owner, {}).setdefault(t, []).append(r)
        rules = []
        for owner, types in by_owner.items():
            entries = []
            for t, rdatas in types.items():
                if t in ("A", "AAAA"):
                    wire = [f"kres.str2ip('{r}')" for r in rdatas]
                elif t == "TXT":
                    wire = [_lua_bytes(_txt_wire(r)) for r in rdatas]
                else:
                    raise ValueError(f"KnotResolver serves A, AAAA and TXT only, not {t}")
                entries.append(f"    [kres.type.{t}] = {{ rdata = {{ {', '.join(wire)} }}, ttl = 300 }},")
            body = "\n".join(entries)
            rules.append(
                f"policy.add(policy.domains(policy.ANSWER({{\n{body}\n}}, true), "
                f"policy.todnames({{ '{owner}.' }})))"
            )
        return "\n".join(rules)

    def config_text(self) -> str:
        idle = f"net.tcp_in_idle({int(self.idle * 1000)})\n" if self.idle is not None else ""
        extra = "".join(f"{line}\n" for line in self.extra)
        zones = ", ".join(f"'{z}.'" for z in self.zones)
        return f"""-- zkmb interop: DoT on {self.host}:{self.port}, local answers only, no recursion
log_target('stderr')
for _, m in ipairs({{ 'priming', 'ta_update', 'ta_signal_query', 'ta_sentinel',
                     'detect_time_skew', 'detect_time_jump' }}) do
    modules.unload(m)
end
trust_anchors.remove('.')
cache.open(10 * MB, 'lmdb://{self.workdir}/cache')
net.listen('{self.host}', {self.port}, {{ kind = 'tls' }})
net.tls('{self.cert}', '{self.key}')
{idle}{extra}local qlog = assert(io.open('{self.query_log}', 'a'))
qlog:setvbuf('line')
policy.add(function(_, query)
    qlog:write('query: ', kres.dname2str(query:name()), ' ', kres.tostring.type[query.stype], '\\n')
    return nil
end)
{self._answers()}
policy.add(policy.suffix(policy.DENY, policy.todnames({{ {zones} }})))
policy.add(policy.all(policy.REFUSE))
"""

    def argv(self) -> list[str]:
        return [str(self.path()), "-n", "-c", str(self.config_path), str(self.workdir)]

    def _parse_queries(self, text):
        return re.findall(r"^query: (\S+) (\S+)$", text, re.M)


# ---------------------------------------------------------------------------------------------- dnsdist


class Dnsdist(ResolverDaemon):
    """dnsdist with one TLS frontend (``addTLSLocal``, OpenSSL) and no other listener, in front of an
    :class:`Unbound` backend serving the local data as plain DNS on another loopback port; security
    polling off (``setSecurityPollSuffix("")``).  Every query is logged at the frontend (``LogAction``).
    Idle: ``setTCPRecvTimeout(2)`` (seconds, the default)."""

    name = "dnsdist"
    package = "dnsdist"
    executable = "dnsdist"
    default_idle_s = 2.0
    idle_setting = "setTCPRecvTimeout(2)  -- seconds"
    suite_in_config = True
    ready_marker = r"Marking downstream \S+ as 'up'"

    def __init__(self, workdir, **kw):
        super().__init__(workdir, **kw)
        self.backend = Unbound(
            self.workdir / "backend",
            tls=False,
            records=self.records,
            zones=self.zones,
            host=self.host,
            argv_prefix=self.argv_prefix,
        )

    @classmethod
    def available(cls) -> bool:
        return super().available() and Unbound.available()

    @classmethod
    def version(cls) -> str:
        return cls._first_line("--version", pattern=r"dnsdist \S+")

    @property
    def config_path(self) -> Path:
        return self.workdir / "dnsdist.conf"

    def config_text(self) -> str:
        opts = ' provider = "openssl"'
        if self.suite is not None:
            opts += f', ciphersTLS13 = "{OPENSSL_SUITES[self.suite]}"'
        idle = f"setTCPRecvTimeout({self.idle:g})\n" if self.idle is not None else ""
        extra = "".join(f"{line}\n" for line in self.extra)
        return f"""-- zkmb interop: DoT on {self.host}:{self.port} only, backend unbound {self.backend.port}
setSecurityPollSuffix("")
addTLSLocal("{self.host}:{self.port}", "{self.cert}", "{self.key}", {{{opts} }})
newServer({{ address = "{self.host}:{self.backend.port}" }})
addAction(AllRule(), LogAction("{self.query_log}", false, true, false))
{idle}{extra}"""

    def argv(self) -> list[str]:
        return [str(self.path()), "--supervised", "--disable-syslog", "-C", str(self.config_path)]

    def start(self) -> Dnsdist:
        if not self.backend.running:
            self.backend.start()
        try:
            super().start()
        except BaseException:
            self.backend.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        try:
            super().stop(timeout)
        finally:
            self.backend.stop(timeout)

    @property
    def running(self) -> bool:
        return super().running and self.backend.running

    def _parse_queries(self, text):
        # "Packet from 127.0.0.1:47606 for www.example.test. A with id 54822"
        return re.findall(r"^Packet from \S+ for (\S+) (\S+) with id \d+", text, re.M)


DAEMONS: dict[str, type[ResolverDaemon]] = {
    "unbound": Unbound,
    "bind": Bind,
    "knot": KnotResolver,
    "dnsdist": Dnsdist,
}
"""The four servers of the interop matrix, by the short name the tests and docs use."""
