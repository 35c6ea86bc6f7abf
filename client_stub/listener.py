"""The stub's front door: plain DNS over UDP and TCP on loopback (asyncio).

Every query is parsed strictly with dnspython; anything malformed gets FORMERR (or is dropped when not
even a header can be echoed), never an exception out of the server.  The name is checked against the
public policy locally first: a blocked name is answered at once with NXDOMAIN and an Extended DNS Error
(RFC 8914) INFO-CODE 15 "Blocked" and nothing is sent upstream (SPEC §6: the stub never sends a query it
cannot prove).  Then the cache, then the upstream, under a time bound; any upstream failure becomes
SERVFAIL.  Identical questions in flight share one upstream query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from zkmb.errors import ZkmbError
from zkmb.policy import Policy
from zkmb.policy.rules import InvalidName
from zkmb.policy.witness import check_name

from .cache import AnswerCache, CacheKey

__all__ = ["EDE_BLOCKED", "Listener", "ListenerStats", "Question", "UpstreamError"]

log = logging.getLogger("zkmb.stub")

EDE_BLOCKED = 15
EDE_PROHIBITED = 18
UDP_DEFAULT_PAYLOAD = 512
OUR_PAYLOAD = 1232
MAX_TCP_CONNS = 256


class UpstreamError(ZkmbError):
    """The upstream could not answer (middlebox unreachable, proof rejected, resolver down, timeout)."""


@dataclass(frozen=True)
class Question:
    """What the stub forwards: one question plus the RD bit (nothing else from the client's message)."""

    name: dns.name.Name
    rdtype: int
    rdclass: int
    rd: bool = True

    @property
    def key(self) -> CacheKey:
        return (self.name.to_text().lower(), self.rdtype, self.rdclass)

    @property
    def text(self) -> str:
        return self.name.to_text(omit_final_dot=True)


Upstream = Callable[[Question], Awaitable[dns.message.Message]]


@dataclass
class ListenerStats:
    queries: int = 0
    formerr: int = 0
    blocked: int = 0
    refused: int = 0
    cache_hits: int = 0
    upstream: int = 0
    servfail: int = 0
    coalesced: int = 0
    latencies: list = field(default_factory=list)  # (name, seconds, outcome) of upstream queries (last 1000)


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR echoing the ID and opcode of a message dnspython refused, or None (too short / a response)."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] << 8 & 0x7900) | dns.rcode.FORMERR  # QR, keep opcode and RD
    return struct.pack("!HHHHHH", int.from_bytes(wire[:2], "big"), flags, 0, 0, 0, 0)


class Listener:
    """The DNS service: ``await start()``, then ``await close()``.  ``upstream`` is an async callable
    ``Question -> dns.message.Message`` raising :class:`UpstreamError` (or anything) on failure."""

    def __init__(
        self,
        upstream: Upstream,
        policy: Policy | None,
        *,
        host: str = "127.0.0.1",
        port: int = 5300,
        cache: AnswerCache | None = None,
        upstream_timeout: float = 10.0,
    ):
        self.upstream, self.policy = upstream, policy
        self.host, self.port = host, port
        self.cache = cache if cache is not None else AnswerCache()
        self.upstream_timeout = upstream_timeout
        self.stats = ListenerStats()
        self._inflight: dict[CacheKey, asyncio.Future] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._tcp_conns = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> tuple[int, int]:
        """Bind UDP and TCP (port 0 picks one, the same number for both when possible); returns the ports."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port)
        tcp_port = self._tcp.sockets[0].getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, tcp_port)
        )
        udp_port = self._udp.get_extra_info("sockname")[1]
        self.port = tcp_port
        log.info("stub listening on %s port %d (udp, tcp)", self.host, tcp_port)
        return udp_port, tcp_port

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ transports

    async def _udp_query(self, wire: bytes, addr, transport: asyncio.DatagramTransport) -> None:
        out = await self.handle(wire, udp=True)
        if out is not None and not transport.is_closing():
            transport.sendto(out, addr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tcp_conns >= MAX_TCP_CONNS:
            writer.close()
            return
        self._tcp_conns += 1
        pending: set[asyncio.Task] = set()

        async def one(wire: bytes) -> None:
            out = await self.handle(wire, udp=False)
            if out is not None and not writer.is_closing():
                writer.write(struct.pack("!H", len(out)) + out)

        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 30.0)
                (n,) = struct.unpack("!H", head)
                wire = await asyncio.wait_for(reader.readexactly(n), 10.0)
                t = asyncio.ensure_future(one(wire))  # RFC 7766: answer pipelined queries concurrently
                pending.add(t)
                t.add_done_callback(pending.discard)
        except (asyncio.IncompleteReadError, TimeoutError, OSError, asyncio.CancelledError):
            pass
        finally:
            if pending:
                with contextlib.suppress(BaseException):
                    await asyncio.wait(pending, timeout=self.upstream_timeout + 1)
            self._tcp_conns -= 1
            writer.close()

    # ------------------------------------------------------------------ the logic

    async def handle(self, wire: bytes, *, udp: bool) -> bytes | None:
        """The response wire to one query message, or None when nothing should be sent back."""
        self.stats.queries += 1
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException as e:
            self.stats.formerr += 1
            log.info("query malformed (%s): FORMERR", type(e).__name__)
            return _formerr(wire)
        except Exception as e:  # dnspython can raise others on hostile input: never crash the server
            self.stats.formerr += 1
            log.info("query unparseable (%s): FORMERR", type(e).__name__)
            return _formerr(wire)
        if query.flags & dns.flags.QR:
            return None  # never answer a response
        resp = await self._answer(query)
        return self._to_wire(query, resp, udp)

    def _error(self, query: dns.message.Message, rcode: int, ede: tuple[int, str] | None = None):
        """A response with ``rcode``; the EDE option (RFC 8914) and any OPT only when the query had EDNS
        (RFC 6891 §7: no OPT in a reply to a query without one), as EDNS version 0 with our UDP payload
        size and the query's DO bit."""
        resp = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        resp.set_rcode(rcode)
        if query.edns >= 0:
            options = [dns.edns.EDEOption(ede[0], ede[1])] if ede is not None else []
            resp.use_edns(0, query.ednsflags & dns.flags.DO, OUR_PAYLOAD, options=options)
        return resp

    async def _answer(self, query: dns.message.Message) -> dns.message.Message:
        if query.opcode() != dns.opcode.QUERY:
            return self._error(query, dns.rcode.NOTIMP)
        if len(query.question) != 1 or query.answer or query.authority:
            self.stats.formerr += 1
            return self._error(query, dns.rcode.FORMERR)
        rrset = query.question[0]
        meta = dns.rdatatype.is_metatype(rrset.rdtype) and rrset.rdtype != dns.rdatatype.ANY
        if rrset.rdclass != dns.rdataclass.IN or meta:
            self.stats.refused += 1
            return self._error(query, dns.rcode.REFUSED)
        q = Question(rrset.name, rrset.rdtype, rrset.rdclass, bool(query.flags & dns.flags.RD))
        if self.policy is not None:
            try:
                blocked = check_name(self.policy, q.text)
            except (InvalidName, ZkmbError) as e:
                self.stats.refused += 1
                log.info("name not provable (%s): REFUSED, nothing sent", e)
                return self._error(query, dns.rcode.REFUSED, (EDE_PROHIBITED, "name cannot be proven"))
            if blocked is not None:
                self.stats.blocked += 1
                log.info("blocked %s by the %s: NXDOMAIN, nothing sent", q.text, blocked.describe())
                # EDE 15 only to a client that sent OPT: RFC 6891 §7 forbids OPT in a reply to a query without
                return self._error(query, dns.rcode.NXDOMAIN, (EDE_BLOCKED, "Blocked"))
        cached = self.cache.get(q.key)
        if cached is not None:
            self.stats.cache_hits += 1
            return self._copy(query, cached)
        try:
            upstream = await self._resolve(q)
        except Exception as e:  # every failure is SERVFAIL, logged with its reason
            self.stats.servfail += 1
            log.warning("upstream failed for %s (%s): SERVFAIL", q.text, e or type(e).__name__)
            return self._error(query, dns.rcode.SERVFAIL)
        return self._copy(query, upstream)

    async def _resolve(self, q: Question) -> dns.message.Message:
        """One upstream query per distinct question in flight; the answer is cached."""
        fut = self._inflight.get(q.key)
        if fut is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[q.key] = fut
        t0 = time.perf_counter()
        outcome = "error"
        try:
            self.stats.upstream += 1
            resp = await asyncio.wait_for(self.upstream(q), self.upstream_timeout)
            self.cache.put(q.key, resp)
            fut.set_result(resp)
            outcome = dns.rcode.to_text(resp.rcode())
            return resp
        except TimeoutError:
            exc = UpstreamError(f"no answer within {self.upstream_timeout} s")
            fut.set_exception(exc)
            raise exc from None
        except BaseException as e:
            fut.set_exception(e)
            raise
        finally:
            fut.exception() if fut.done() and not fut.cancelled() else None  # mark retrieved
            del self._inflight[q.key]
            self.stats.latencies.append((q.text, time.perf_counter() - t0, outcome))
            del self.stats.latencies[:-1000]

    def _copy(self, query: dns.message.Message, upstream: dns.message.Message) -> dns.message.Message:
        """The client's response: its ID, question and EDNS; the upstream's rcode, flags and records."""
        resp = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        resp.set_rcode(upstream.rcode())
        resp.flags |= upstream.flags & (dns.flags.AA | dns.flags.RA | dns.flags.AD)
        resp.answer = [r for r in upstream.answer]
        resp.authority = [r for r in upstream.authority]
        resp.additional = [r for r in upstream.additional if r.rdtype != dns.rdatatype.OPT]
        return resp

    def _to_wire(self, query: dns.message.Message, resp: dns.message.Message, udp: bool) -> bytes:
        limit = 65535
        if udp:
            limit = max(UDP_DEFAULT_PAYLOAD, min(query.payload, OUR_PAYLOAD)) if query.edns >= 0 else 512
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            short = dns.message.make_response(query)
            short.set_rcode(resp.rcode())
            short.flags |= dns.flags.TC
            return short.to_wire()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, listener: Listener):
        self.listener = listener
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.transport is not None:
            self.listener._spawn(self.listener._udp_query(data, addr, self.transport))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)
