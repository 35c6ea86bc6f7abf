"""The publishing endpoint (SPEC §6, §8): a minimal HTTP/1.1 server so a client can bootstrap from the
middlebox's address alone.

``GET /policy`` the policy file as loaded; ``GET /root`` JSON ``{"root": hex, "version": int, "rules":
int, "previous": hex|null, "grace_s": float}`` plus the enforcement the middlebox announces (``mode``
``strict``/``async``, ``co_deadline_ms``, ``record_deadline_ms``, ``max_before_co``, ``pad_window``);
``GET /keys/manifest.json`` (the key directory's own ``manifest.json`` if it has one, else
``{name: {"vk": {"bytes", "sha256"}, "pk": {...}}}`` computed once);
``GET /keys/<name>.vk`` / ``.pk`` (``name`` as in the key directory), ``GET /keys/srs.bin`` (the SRS
the clients check every proving key against, SPEC §8); ``GET /metrics`` when a
:class:`~zkmb.middlebox.metrics.Metrics` is given.  Only GET and HEAD; one request per connection
(``Connection: close``); request heads are bounded; file names are matched against the directory's
listing, never joined from the request path.  :meth:`Publisher.reload_policy` loads a new policy file and
rotates the root with the grace window.
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

__all__ = ["HttpServer", "Publisher"]

log = logging.getLogger("zkmb.middlebox")

_MAX_HEAD = 8192
_CHUNK = 1 << 16
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_STATUS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Error"}


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
        a circuit's ``.pk``/``.vk`` or the SRS ``srs.bin`` the clients check the keys against."""
        if not _NAME.match(name) or ext not in ("vk", "pk", "bin") or (ext == "bin") != (name == "srs"):
            return None
        path = self.key_dir / f"{name}.{ext}"
        return path if path.is_file() else None

    def manifest(self) -> bytes:
        """The key manifest (the directory's own ``manifest.json`` if present), computed once."""
        if self._manifest is None:
            own = self.key_dir / "manifest.json"
            if own.is_file():
                self._manifest = own.read_bytes()
            else:
                table: dict[str, dict] = {}
                for path in sorted(self.key_dir.iterdir()):
                    if path.suffix in (".vk", ".pk") and _NAME.match(path.stem):
                        table.setdefault(path.stem, {})[path.suffix[1:]] = {
                            "bytes": path.stat().st_size,
                            "sha256": _sha256(path),
                        }
                srs = self.key_dir / "srs.bin"
                if srs.is_file():  # not a circuit: the bootstrap reads it as the SRS record
                    table["srs"] = {"file": srs.name, "bytes": srs.stat().st_size, "sha256": _sha256(srs)}
                self._manifest = json.dumps(table, sort_keys=True).encode()
        return self._manifest


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
            m = re.fullmatch(r"/keys/([a-z0-9_]{1,64})\.(vk|pk|bin)", path)
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
            try:
                status, ctype, body = self._route(target)
            except (OSError, InvalidInput) as e:
                log.warning("publish path=%s error=%s", target, e)
                status, ctype, body = 500, "text/plain", b"internal error\n"
            await self._send(writer, status, ctype, body, head=method == "HEAD")
        except (OSError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _send(self, writer, status: int, ctype: str, body: bytes | Path, *, head: bool) -> None:
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        writer.write(
            (
                f"HTTP/1.1 {status} {_STATUS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        if head:
            await writer.drain()
            return
        if isinstance(body, Path):
            with open(body, "rb") as f:
                while chunk := f.read(_CHUNK):
                    writer.write(chunk)
                    await writer.drain()
        else:
            writer.write(body)
        await writer.drain()
