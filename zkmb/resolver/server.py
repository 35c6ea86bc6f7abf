"""A small DoT server on Python's ``ssl`` (TLS 1.3 only) answering from a zone file or a static map.

It is the demo's default upstream and the independent OpenSSL peer of the client tests
(``keylog_filename`` gives OpenSSL's own view of the traffic secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import struct
import threading
from collections.abc import Mapping

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

log = logging.getLogger(__name__)


class Responder:
    """Answers queries from local data only (never recursion).

    ``static`` maps a name to an address string or a list of ``"TYPE RDATA"`` / address strings, e.g.
    ``{"www.example.test": "192.0.2.1", "mx.example.test": ["MX 10 mail.example.test."]}``.
    Names under a zone's origin get authoritative answers (NXDOMAIN/NODATA); other unknown names REFUSED.
    """

    def __init__(
        self, zone: dns.zone.Zone | None = None, static: Mapping[str, object] | None = None, ttl: int = 300
    ):
        self.zone = zone
        self.static: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        self.static_names: set[dns.name.Name] = set()
        for name, values in (static or {}).items():
            owner = dns.name.from_text(name)
            self.static_names.add(owner)
            for item in [values] if isinstance(values, str) else list(values):  # type: ignore[arg-type]
                text = str(item).strip()
                if " " in text:
                    rdtype, rdata = text.split(None, 1)
                else:
                    rdtype, rdata = ("AAAA" if ":" in text else "A"), text
                rt = dns.rdatatype.from_text(rdtype)
                rrset = self.static.get((owner, rt))
                if rrset is None:
                    rrset = self.static[(owner, rt)] = dns.rrset.RRset(owner, dns.rdataclass.IN, rt)
                rrset.add(_rdata(rt, rdata), ttl)

    @classmethod
    def from_zone_file(cls, path: str, origin: str | None = None) -> Responder:
        """Load a master file (``$ORIGIN`` in the file, or ``origin``)."""
        return cls(zone=dns.zone.from_file(path, origin=origin, relativize=False))

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one DNS message, or None when not even a header can be echoed."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            if len(wire) < 12:
                return None
            hdr = bytearray(wire[:12])
            hdr[2] = 0x80 | (hdr[2] & 0x79)  # QR=1, keep opcode and RD
            hdr[3] = dns.rcode.FORMERR
            return bytes(hdr[:4]) + bytes(8)
        resp = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY:
            resp.set_rcode(dns.rcode.NOTIMP)
            return resp.to_wire()
        if len(query.question) != 1:
            resp.set_rcode(dns.rcode.FORMERR)
            return resp.to_wire()
        q = query.question[0]
        name, rdtype = q.name, q.rdtype
        if (name, rdtype) in self.static:
            resp.answer.append(self.static[(name, rdtype)])
            resp.flags |= dns.flags.AA
        elif name in self.static_names:
            resp.flags |= dns.flags.AA
        elif self.zone is not None and name.is_subdomain(self.zone.origin):
            resp.flags |= dns.flags.AA
            node = self.zone.get_node(name)
            if node is None:
                resp.set_rcode(dns.rcode.NXDOMAIN)
            else:
                rds = node.get_rdataset(q.rdclass, rdtype)
                if rds is not None:
                    rrset = dns.rrset.RRset(name, rds.rdclass, rds.rdtype)
                    rrset.update(rds)
                    resp.answer.append(rrset)
        else:
            resp.set_rcode(dns.rcode.REFUSED)
        return resp.to_wire()


def _rdata(rdtype: int, text: str):
    import dns.rdata

    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def make_server_context(
    certfile: str | os.PathLike,
    keyfile: str | os.PathLike,
    keylog: str | os.PathLike | None = None,
    alpn: list[str] | None = None,
    ecdh_curve: str | None = None,
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
) -> ssl.SSLContext:
    """A TLS 1.3-only server context (``max_version`` may be lowered, for negative tests only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = min(ssl.TLSVersion.TLSv1_3, max_version)
    ctx.maximum_version = max_version
    ctx.load_cert_chain(str(certfile), str(keyfile))
    ctx.set_alpn_protocols(alpn if alpn is not None else ["dot"])
    if ecdh_curve is not None:
        ctx.set_ecdh_curve(ecdh_curve)
    if keylog is not None:
        ctx.keylog_filename = str(keylog)
    return ctx


class DotResolver:
    """asyncio DoT server: RFC 7858/7766 framing, several queries per connection, idle timeout."""

    def __init__(self, responder: Responder, ssl_context: ssl.SSLContext, idle_timeout: float = 30.0):
        self.responder = responder
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self._server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self.queries = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the port."""
        self._server = await asyncio.start_server(
            self._serve, host, port, ssl=self.ssl_context, ssl_handshake_timeout=10.0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                hdr = await asyncio.wait_for(reader.readexactly(2), self.idle_timeout)
                (n,) = struct.unpack("!H", hdr)
                wire = await asyncio.wait_for(reader.readexactly(n), self.idle_timeout)
                self.queries += 1
                resp = self.responder.answer(wire)
                if resp is None:
                    break
                writer.write(struct.pack("!H", len(resp)) + resp)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError) as e:
            log.debug("DoT connection ended: %r", e)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


class BackgroundResolver:
    """Runs a :class:`DotResolver` on its own event loop in a daemon thread (for sync code and tests)."""

    def __init__(self, responder: Responder, ssl_context: ssl.SSLContext, host: str = "127.0.0.1"):
        self._resolver = DotResolver(responder, ssl_context)
        self._host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port: int = 0

    def __enter__(self) -> BackgroundResolver:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._resolver.start(self._host, 0), self._loop)
        self.port = fut.result(10)
        return self

    def __exit__(self, *exc) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._resolver.close(), self._loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def queries(self) -> int:
        return self._resolver.queries
