"""The publishing endpoint (SPEC §6, §8): a minimal HTTP/1.1 server so a client can bootstrap from the
middlebox's address alone.

``GET /policy`` the policy file as loaded; ``GET /root`` JSON ``{"root": hex, "version": int, "rules":
int, "previous": hex|null, "grace_s": float}`` plus the enforcement the middlebox announces (``mode``
``strict``/``async``, ``co_deadline_ms``, ``record_deadline_ms``, ``max_before_co``, ``pad_window``);
``GET /keys/manifest.json`` (the key directory's own ``manifest.json`` if it has one, else
``{name: {"vk": {"bytes", "sha256"}, "pk": {...}}}`` computed once);
``GET /keys/<name>.vk`` / ``.pk`` / ``.pkc`` (``name`` as in the key directory; ``.pkc`` is the compact
proving key clients download, :mod:`zkmb.groth16.compact`), ``GET /keys/srs.bin`` and the compact SRS
parts ``GET /keys/srs_<i>.srsc`` (the SRS the clients check every proving key against, SPEC §8);
``GET /metrics`` when a :class:`~zkmb.middlebox.metrics.Metrics` is given.  Only GET and HEAD; one
request per connection (``Connection: close``); request heads are bounded; file names are matched against
the directory's listing, never joined from the request path.  Every ``200`` body can be fetched in part
with one ``Range: bytes=FIRST-[LAST]`` or ``bytes=-SUFFIX`` (``206 Partial Content`` with
``Content-Range``; a range outside the body, reversed, or several ranges: ``416`` with ``Content-Range:
bytes */SIZE``), so a client resumes an interrupted download.  :meth:`Publisher.reload_policy` loads a
new policy file and rotates the root with the grace window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from zkmb.errors import InvalidInput

from .metrics import Metrics

__all__ = ["HttpServer", "Publisher", "parse_range"]

log = logging.getLogger("zkmb.middlebox")

_MAX_HEAD = 8192
_CHUNK = 1 << 16
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_STATUS = {
    200: "OK",
    206: "Partial Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
    500: "Internal Error",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None | str:
    """The byte range ``(first, last)`` (inclusive) a ``Range`` header asks of a body of ``size`` bytes:
    None when there is no header or it is not a byte range (serve the whole body), ``"unsatisfiable"``
    for a range this server refuses with 416 (outside the body, reversed, empty, several ranges)."""
    if value is None:
        return None
    value = value.strip()
    if not value.lower().startswith("bytes="):
        return None  # another unit: ignored (RFC 9110, 14.2)
    m = _RANGE.match("bytes=" + value[6:].replace(" ", ""))
    if m is None or (not m.group(1) and not m.group(2)):
        return "unsatisfiable"
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    a = int(first)
    b = int(last) if last else size - 1
    if a >= size or b < a:
        return "unsatisfiable"
    return a, min(b, size - 1)


class Publisher:
    """What the endpoint serves: the policy (file, root, version) and the key files of ``key_dir``.

    ``on_rotate(root)`` is called after a policy reload changed the root (the relay's
    :meth:`~zkmb.middlebox.relay.Middlebox.rotate_root`).
    """

    def __init__(
        self,
        policy_path: str | os.PathLike,
        key_dir: str | os.PathLike,
        *,
        on_rotate: Callable[[int], None] | None = None,
        grace: Callable[[], tuple[int | None, float]] | None = None,
        policy=None,
        enforcement: dict | None = None,
    ):
        self.key_dir = Path(key_dir)
        self.on_rotate = on_rotate
        self.grace = grace
        self.enforcement = dict(enforcement or {})
        """Published with the root: the enforcement mode and deadlines (SPEC §7), as in ANNOUNCED."""
        self.version = 0
        self.policy = None
        self.policy_bytes = b""
        self._manifest: bytes | None = None
        self._install(Path(policy_path), policy)

    def _install(self, path: Path, policy=None) -> None:
        from zkmb.policy import load_policy

        try:
            data = path.read_bytes()
        except OSError as e:
            raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
        policy = policy if policy is not None else load_policy(path)
        self.policy, self.policy_bytes, self.policy_path = policy, data, path
        self.version += 1

    @property
    def root(self) -> int:
        return self.policy.root

    def reload_policy(self, path: str | os.PathLike | None = None) -> int:
        """Load the policy file (default: the same path again) and rotate to its root; returns the root.

        A file that fails to load (bad syntax, root mismatch) leaves the current policy in place and
        raises :class:`~zkmb.errors.InvalidInput`.
        """
        old = self.policy.root
        self._install(Path(path) if path is not None else self.policy_path)
        log.info(
            "policy version=%d root=0x%064x rules=%d action=loaded", self.version, self.root, len(self.policy)
        )
        if self.root != old and self.on_rotate is not None:
            self.on_rotate(self.root)
        return self.root

    def root_json(self) -> bytes:
        previous, grace_s = self.grace() if self.grace is not None else (None, 0.0)
        return json.dumps(
            {
                "root": f"0x{self.root:064x}",
                "version": self.version,
                "rules": len(self.policy),
                "previous": None if previous is None else f"0x{previous:064x}",
                "grace_s": grace_s,
                **self.enforcement,
            }
        ).encode()

    def key_file(self, name: str, ext: str) -> Path | None:
        """The file ``<name>.<ext>`` of the key directory if it exists (name checked, never a path):
        a circuit's ``.pk``/``.vk``/``.pkc``, the SRS ``srs.bin`` the clients check the keys against, or
        one of its compact parts ``srs_<i>.srsc``."""
        if not _NAME.match(name) or ext not in ("vk", "pk", "pkc", "bin", "srsc"):
            return None
        if (ext == "bin") != (name == "srs") or (ext == "srsc") != bool(re.fullmatch(r"srs_\d{1,2}", name)):
            return None
        path = self.key_dir / f"{name}.{ext}"
        return path if path.is_file() else None

    def manifest(self) -> bytes:
        """The key manifest (the directory's own ``manifest.json`` if present), computed once."""
        if self._manifest is None:
            own = self.key_dir / "manifest.json"
            if own.is_file():
                self._manifest = own.read_bytes()
                _warn_without_compact(self.key_dir, self._manifest)
            else:
                table: dict[str, dict] = {}
                for path in sorted(self.key_dir.iterdir()):
                    if path.suffix in (".vk", ".pk", ".pkc") and _NAME.match(path.stem):
                        table.setdefault(path.stem, {})[path.suffix[1:]] = {
                            "bytes": path.stat().st_size,
                            "sha256": _sha256(path),
                        }
                srs = self.key_dir / "srs.bin"
                if srs.is_file():  # not a circuit: the bootstrap reads it as the SRS record
                    table["srs"] = {"file": srs.name, "bytes": srs.stat().st_size, "sha256": _sha256(srs)}
                self._manifest = json.dumps(table, sort_keys=True).encode()
        return self._manifest


def _warn_without_compact(key_dir: Path, manifest: bytes) -> None:
    """Log once when the manifest lists no compact files: clients bootstrap only from those."""
    try:
        doc = json.loads(manifest)
        circuits = doc.get("circuits", {})
        bare = sorted(n for n, e in circuits.items() if isinstance(e, dict) and "pkc_file" not in e)
        parts = isinstance(doc.get("srs"), dict) and bool(doc["srs"].get("parts"))
    except (ValueError, AttributeError):
        return
    if bare or not parts:
        log.warning(
            "publish: %s has no compact client files for %s: clients cannot bootstrap; run "
            "`zkmb setup --keys %s --circuits %s` (it writes NAME.pkc and the SRS parts, keys unchanged)",
            key_dir,
            ", ".join(bare) if bare else "the SRS",
            key_dir,
            ",".join(sorted(circuits)),
        )


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class HttpServer:
    """GET/HEAD routes over asyncio streams; ``publisher`` and/or ``metrics`` decide what exists."""

    def __init__(self, publisher: Publisher | None = None, metrics: Metrics | None = None):
        self.publisher, self.metrics = publisher, metrics
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port."""
        self._server = await asyncio.start_server(self._tracked, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and cut every open request, a download to a stalled client included (it
        kept a stopped middlebox from exiting: its handler waited for the send buffer to drain)."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _tracked(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        finally:
            self._writers.discard(writer)

    def _route(self, path: str) -> tuple[int, str, bytes | Path]:
        pub = self.publisher
        if path == "/metrics" and self.metrics is not None:
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render().encode()
        if pub is not None:
            if path == "/policy":
                return 200, "text/plain; charset=utf-8", pub.policy_bytes
            if path == "/root":
                return 200, "application/json", pub.root_json()
            if path == "/keys/manifest.json":
                return 200, "application/json", pub.manifest()
            m = re.fullmatch(r"/keys/([a-z0-9_]{1,64})\.(vk|pk|pkc|bin|srsc)", path)
            if m:
                f = pub.key_file(m.group(1), m.group(2))
                if f is not None:
                    return 200, "application/octet-stream", f
        return 404, "text/plain", b"not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
                return
            if len(head) > _MAX_HEAD:
                await self._send(writer, 400, "text/plain", b"request too large\n", head=False)
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                await self._send(writer, 400, "text/plain", b"bad request\n", head=False)
                return
            method, target = parts[0], parts[1].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                await self._send(writer, 405, "text/plain", b"GET or HEAD only\n", head=False)
                return
            ranges = [
                line.split(b":", 1)[1].decode("latin-1")
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(b"range:")
            ]
            try:
                status, ctype, body = self._route(target)
            except (OSError, InvalidInput) as e:
                log.warning("publish path=%s error=%s", target, e)
                status, ctype, body = 500, "text/plain", b"internal error\n"
            span = None
            if status == 200:
                size = body.stat().st_size if isinstance(body, Path) else len(body)
                span = parse_range(ranges[0] if len(ranges) == 1 else None, size)
                if len(ranges) > 1:
                    span = "unsatisfiable"
                if span == "unsatisfiable":
                    await self._send(
                        writer,
                        416,
                        "text/plain",
                        b"range not satisfiable\n",
                        head=False,
                        extra=f"Content-Range: bytes */{size}\r\n",
                    )
                    return
            await self._send(writer, status, ctype, body, head=method == "HEAD", span=span)
        except (OSError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _send(
        self,
        writer,
        status: int,
        ctype: str,
        body: bytes | Path,
        *,
        head: bool,
        span: tuple[int, int] | None = None,
        extra: str = "",
    ) -> None:
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        first, last = span if span is not None else (0, size - 1)
        if span is not None:
            status = 206
            extra += f"Content-Range: bytes {first}-{last}/{size}\r\n"
        if status in (200, 206):
            extra += "Accept-Ranges: bytes\r\n"
        length = last - first + 1
        writer.write(
            (
                f"HTTP/1.1 {status} {_STATUS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {length}\r\n{extra}Connection: close\r\n\r\n"
            ).encode()
        )
        if head:
            await writer.drain()
            return
        if isinstance(body, Path):
            with open(body, "rb") as f:
                f.seek(first)
                left = length
                while left > 0 and (chunk := f.read(min(_CHUNK, left))):
                    writer.write(chunk)
                    left -= len(chunk)
                    await writer.drain()
        else:
            writer.write(body[first : last + 1])
        await writer.drain()
