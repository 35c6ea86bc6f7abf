"""DNS-over-TLS (RFC 7858 / RFC 7766) on the capturing TLS client: a sans-IO core, an asyncio adapter and
a blocking helper in the style of ``dns.query``.

One DNS message per TLS record (SPEC §2); several queries may be outstanding on one connection and are
matched by ID and question; an optional EDNS(0) block padding (RFC 8467). Connections go to IP literals
only: this client never asks the system resolver for anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import select
import socket
import struct
import time
from dataclasses import dataclass

import dns.exception
import dns.message

from ..dns.padding import pad_to_block
from ..errors import InvalidInput
from .capture import CapturedSession
from .client import ApplicationData, ConnectionClosed, HandshakeComplete, TlsClient, TlsClientConfig
from .errors import DotError, DotProtocolError, DotTimeout, KeyUpdateRequested, TlsError, TruncatedStream

DEFAULT_PORT = 853
MAX_OUTSTANDING = 1024


@dataclass(frozen=True)
class DnsResponse:
    """A response matched to an outstanding query (same ID and question)."""

    query: dns.message.Message
    response: dns.message.Message
    wire: bytes


@dataclass(frozen=True)
class ReconnectRequired:
    """The server sent KeyUpdate(update_requested) or a CertificateRequest; this connection is over (SPEC §2).

    Responses that arrived before the request were delivered as :class:`DnsResponse` events first.
    ``unanswered`` lists the queries sent on this connection without a response; they are not resent
    automatically (each sent record is a query the middlebox has already seen and proved).
    """

    reason: KeyUpdateRequested
    unanswered: tuple[dns.message.Message, ...]


def _reconnect_message(reason: KeyUpdateRequested, unanswered: int) -> str:
    return f"{reason}; {unanswered} queries sent on that connection are unanswered: resend them"


class DotConnection:
    """Sans-IO DoT client connection over :class:`TlsClient`.

    ``send_query`` gives the query an ID unique among outstanding ones (the message is modified), pads it if
    ``padding_block`` is set, and sends it as one TLS record (queued until the handshake completes).
    ``receive_data`` returns :class:`HandshakeComplete`, :class:`DnsResponse`, :class:`ConnectionClosed` and
    :class:`ReconnectRequired` events; protocol violations raise :class:`TlsError` or
    :class:`DotProtocolError`.
    """

    def __init__(self, config: TlsClientConfig, padding_block: int | None = None):
        self.tls = TlsClient(config)
        self.padding_block = padding_block
        self.outstanding: dict[int, dns.message.Message] = {}
        self._abandoned: set[int] = set()
        self._pending_wires: list[bytes] = []
        self._frames = bytearray()
        self.closed = False
        self.reconnect_reason: KeyUpdateRequested | None = None

    @property
    def capture(self) -> CapturedSession:
        return self.tls.capture

    def start(self) -> None:
        self.tls.start()

    def data_to_send(self) -> bytes:
        return self.tls.data_to_send()

    def send_query(self, query: dns.message.Message) -> int:
        """Queue ``query``; returns the ID it was sent with."""
        if self.closed:
            raise DotError("connection is closed")
        if len(self.outstanding) + len(self._abandoned) >= MAX_OUTSTANDING:
            raise DotError("too many outstanding queries on one connection")
        qid = query.id
        while qid in self.outstanding or qid in self._abandoned:
            qid = secrets.randbelow(1 << 16)
        query.id = qid
        wire = pad_to_block(query, self.padding_block) if self.padding_block else query.to_wire()
        if len(wire) > 0xFFFF:
            raise InvalidInput("DNS message longer than 65535 bytes")
        self.outstanding[qid] = query
        frame = struct.pack("!H", len(wire)) + wire
        if self.tls.handshake_complete:
            self.tls.send_application_data(frame)
        else:
            self._pending_wires.append(frame)
        return qid

    def abandon(self, qid: int) -> None:
        """Stop waiting for ``qid`` (after a timeout); a late response to it is dropped silently."""
        if self.outstanding.pop(qid, None) is not None:
            self._abandoned.add(qid)

    def receive_data(self, data: bytes) -> list:
        try:
            tls_events = self.tls.receive_data(data)
        except KeyUpdateRequested as exc:
            events = self._dispatch(exc.events)
            self.closed = True
            self.reconnect_reason = exc
            unanswered = tuple(self.outstanding.values())
            self.outstanding.clear()
            return [*events, ReconnectRequired(exc, unanswered)]
        return self._dispatch(tls_events)

    def _dispatch(self, tls_events: list) -> list:
        events = []
        for ev in tls_events:
            if isinstance(ev, HandshakeComplete):
                events.append(ev)
                for frame in self._pending_wires:
                    self.tls.send_application_data(frame)
                self._pending_wires.clear()
            elif isinstance(ev, ApplicationData):
                self._frames += ev.data
                events += self._parse_frames()
            elif isinstance(ev, ConnectionClosed):
                events += self._closed()
        return events

    def receive_eof(self) -> list:
        self.tls.receive_eof()
        return self._closed()

    def _closed(self) -> list:
        self.closed = True
        if self._frames:
            raise TruncatedStream(f"connection closed inside a DNS frame ({len(self._frames)} bytes)")
        if self.outstanding:
            raise TruncatedStream(f"connection closed with {len(self.outstanding)} queries unanswered")
        return [ConnectionClosed()]

    def _parse_frames(self) -> list:
        events = []
        while len(self._frames) >= 2:
            (n,) = struct.unpack_from("!H", self._frames)
            if len(self._frames) < 2 + n:
                break
            wire = bytes(self._frames[2 : 2 + n])
            del self._frames[: 2 + n]
            if n < 12:
                raise DotProtocolError(f"DNS frame of {n} bytes is shorter than a header")
            qid = int.from_bytes(wire[:2], "big")
            if qid in self._abandoned:
                self._abandoned.discard(qid)
                continue
            query = self.outstanding.get(qid)
            if query is None:
                raise DotProtocolError(f"response with ID {qid} matches no outstanding query")
            try:
                resp = dns.message.from_wire(wire)
            except dns.exception.DNSException as e:
                raise DotProtocolError(f"malformed DNS response: {e}") from None
            if not query.is_response(resp):
                raise DotProtocolError(f"response with ID {qid} does not answer the query's question")
            del self.outstanding[qid]
            events.append(DnsResponse(query, resp, wire))
        return events


def _check_ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise InvalidInput(
            f"{host!r}: the DoT server must be an IP address (no system DNS lookups)"
        ) from None


def make_config(host: str, *, server_name: str | None = None, **kwargs) -> TlsClientConfig:
    """A client config for ``host``: the certificate is checked against ``server_name`` (default: the IP)."""
    return TlsClientConfig(server_name=server_name or host, **kwargs)


class _DotClientBase:
    """What the blocking and the asyncio adapters share: the target and the sans-IO DoT connection."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        config: TlsClientConfig | None = None,
        padding_block: int | None = None,
        timeout: float = 5.0,
        reconnect: bool = True,
    ):
        self.host = _check_ip(host)
        self.port = port
        self.conn = DotConnection(config or make_config(self.host), padding_block)
        self.timeout = timeout
        self.reconnect = reconnect
        self.closed_captures: list[CapturedSession] = []


class AsyncDotClient(_DotClientBase):
    """asyncio DoT client with pipelining. Use ``async with AsyncDotClient(...) as c: await c.query(q)``.

    When the server asks for a KeyUpdate or a client certificate (SPEC §2), queries waiting on that
    connection fail with :class:`KeyUpdateRequested`; with ``reconnect`` (default) the next ``query`` opens
    a new connection first. ``closed_captures`` keeps the captures of connections given up that way.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        config: TlsClientConfig | None = None,
        padding_block: int | None = None,
        timeout: float = 5.0,
        reconnect: bool = True,
    ):
        super().__init__(host, port, config, padding_block, timeout, reconnect)
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self._handshake: asyncio.Future | None = None
        self._futures: dict[int, asyncio.Future] = {}
        self._error: BaseException | None = None
        self._reconnect_lock: asyncio.Lock | None = None

    @property
    def capture(self) -> CapturedSession:
        return self.conn.capture

    async def __aenter__(self) -> AsyncDotClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open TCP and complete the TLS handshake within ``timeout``."""
        loop = asyncio.get_running_loop()
        try:
            reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except TimeoutError:
            raise DotTimeout(f"TCP connect to {self.host}:{self.port} timed out") from None
        self._handshake = loop.create_future()
        self.conn.start()
        self._flush()
        self._task = asyncio.create_task(self._read_loop(reader))
        try:
            await asyncio.wait_for(asyncio.shield(self._handshake), self.timeout)
        except TimeoutError:
            await self.close()
            raise DotTimeout(f"TLS handshake with {self.host}:{self.port} timed out") from None
        except BaseException:
            await self.close()
            raise

    async def query(self, query: dns.message.Message, timeout: float | None = None) -> dns.message.Message:
        """Send ``query`` on this connection and wait for its response (concurrent calls pipeline)."""
        if self.conn.reconnect_reason is not None and self.reconnect:
            await self._reconnect()
        if self._error is not None:
            raise self._error
        if self._writer is None:
            raise DotError("not connected")
        qid = self.conn.send_query(query)
        fut = asyncio.get_running_loop().create_future()
        self._futures[qid] = fut
        self._flush()
        try:
            return await asyncio.wait_for(fut, timeout if timeout is not None else self.timeout)
        except TimeoutError:
            self.conn.abandon(qid)
            raise DotTimeout(f"no response to query {qid} within the timeout") from None
        finally:
            self._futures.pop(qid, None)

    async def _reconnect(self) -> None:
        """Replace a connection the server asked to rekey by a fresh one (once, however many callers)."""
        if self._reconnect_lock is None:
            self._reconnect_lock = asyncio.Lock()
        async with self._reconnect_lock:
            if self.conn.reconnect_reason is None:
                return  # another caller already reconnected
            await self.close()
            self.closed_captures.append(self.conn.capture)
            self.conn = DotConnection(self.conn.tls.config, self.conn.padding_block)
            self._error = None
            self._handshake = None
            self._futures = {}
            await self.connect()

    async def close(self) -> None:
        """Close the TCP connection (TCP FIN; this client never sends TLS alerts)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = None
        self._fail(DotError("connection closed"))

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self._writer is not None:
            self._writer.write(data)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(exc)
            self._handshake.exception()  # mark retrieved; connect() re-raises it
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(exc)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                events = self.conn.receive_data(data) if data else self.conn.receive_eof()
                self._flush()
                for ev in events:
                    if isinstance(ev, HandshakeComplete) and self._handshake and not self._handshake.done():
                        self._handshake.set_result(ev)
                    elif isinstance(ev, DnsResponse):
                        fut = self._futures.get(ev.query.id)
                        if fut is not None and not fut.done():
                            fut.set_result(ev.response)
                    elif isinstance(ev, ReconnectRequired):
                        self._fail(KeyUpdateRequested(_reconnect_message(ev.reason, len(ev.unanswered))))
                        if self._writer is not None:
                            self._writer.close()  # TCP FIN, no alert (SPEC §2)
                        return
                if not data or self.conn.closed:
                    self._fail(TruncatedStream("server closed the connection"))
                    return
        except (TlsError, DotError) as e:
            self._fail(e)
        except OSError as e:
            self._fail(TruncatedStream(f"connection error: {e}"))


class DotClient(_DotClientBase):
    """Blocking DoT client (one socket, pipelining via ``query_many``); every wait bounded by ``timeout``.

    When the server asks for a KeyUpdate or a client certificate (SPEC §2), the connection is closed;
    queries sent on it and still unanswered raise :class:`KeyUpdateRequested`. With ``reconnect`` (default)
    a later ``query``/``query_many`` first reads what already arrived and, if the connection was given up,
    connects again before sending. ``closed_captures`` keeps the captures of connections given up that way.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        config: TlsClientConfig | None = None,
        padding_block: int | None = None,
        timeout: float = 5.0,
        reconnect: bool = True,
    ):
        super().__init__(host, port, config, padding_block, timeout, reconnect)
        self._sock: socket.socket | None = None
        self._responses: dict[int, dns.message.Message] = {}

    @property
    def capture(self) -> CapturedSession:
        return self.conn.capture

    def __enter__(self) -> DotClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError:
            raise DotTimeout(f"TCP connect to {self.host}:{self.port} timed out") from None
        except OSError as e:
            raise DotError(f"cannot connect to {self.host}:{self.port}: {e}") from None
        self.conn.start()
        try:
            self._pump(deadline, lambda: self.conn.tls.handshake_complete, "TLS handshake")
        except BaseException:
            self.close()  # a failed handshake never leaves the socket open
            raise

    def query(self, query: dns.message.Message) -> dns.message.Message:
        return self.query_many([query])[0]

    def query_many(self, queries: list[dns.message.Message]) -> list[dns.message.Message]:
        """Send all queries at once (pipelined) and return their responses in query order."""
        if self._sock is None and self.conn.reconnect_reason is None:
            raise DotError("not connected")
        if self._sock is not None and self.reconnect:
            self._poll()
        if self.conn.reconnect_reason is not None:
            if not self.reconnect:
                raise KeyUpdateRequested(f"{self.conn.reconnect_reason}; reconnect is disabled")
            self.closed_captures.append(self.conn.capture)
            self.conn = DotConnection(self.conn.tls.config, self.conn.padding_block)
            self.connect()
        ids = [self.conn.send_query(q) for q in queries]
        deadline = time.monotonic() + self.timeout
        try:
            self._pump(deadline, lambda: all(i in self._responses for i in ids), "DNS response")
        except DotTimeout:
            for i in ids:
                self.conn.abandon(i)
            raise
        return [self._responses.pop(i) for i in ids]

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _poll(self) -> None:
        """Process bytes that already arrived (e.g. a KeyUpdate request between queries), without waiting."""
        assert self._sock is not None
        while select.select([self._sock], [], [], 0)[0]:
            try:
                data = self._sock.recv(65536)
            except OSError as e:
                raise TruncatedStream(f"connection error: {e}") from None
            if not data:
                return  # EOF: left for the next query to report
            self._handle(self.conn.receive_data(data), lambda: True)
            if self.conn.reconnect_reason is not None:
                return

    def _handle(self, events: list, done) -> None:
        for ev in events:
            if isinstance(ev, DnsResponse):
                self._responses[ev.query.id] = ev.response
            elif isinstance(ev, ReconnectRequired):
                self.close()  # TCP FIN, no alert (SPEC §2)
                if not done():
                    raise KeyUpdateRequested(_reconnect_message(ev.reason, len(ev.unanswered)))

    def _pump(self, deadline: float, done, what: str) -> None:
        assert self._sock is not None
        while True:
            out = self.conn.data_to_send()
            if out:
                self._sock.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    self._sock.sendall(out)
                except OSError as e:
                    raise TruncatedStream(f"send failed: {e}") from None
            if done():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DotTimeout(f"{what} timed out after {self.timeout} s")
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise DotTimeout(f"{what} timed out after {self.timeout} s") from None
            except OSError as e:
                raise TruncatedStream(f"connection error: {e}") from None
            events = self.conn.receive_data(data) if data else self.conn.receive_eof()
            self._handle(events, done)
            if self.conn.reconnect_reason is not None:
                return  # every awaited response arrived before the server's request
            if not data or self.conn.closed:
                self.conn.data_to_send()
                if done():
                    return
                raise TruncatedStream(f"server closed the connection before the {what}")


def query(
    q: dns.message.Message,
    where: str,
    port: int = DEFAULT_PORT,
    *,
    server_name: str | None = None,
    cafile: str | None = None,
    suites: tuple[int, ...] | None = None,
    timeout: float = 5.0,
    padding_block: int | None = None,
) -> tuple[dns.message.Message, CapturedSession]:
    """One DoT query (``dns.query.tls`` style); returns the response and the connection's capture."""
    kwargs = {"cafile": cafile}
    if suites is not None:
        kwargs["suites"] = tuple(suites)
    config = make_config(_check_ip(where), server_name=server_name, **kwargs)
    with DotClient(where, port, config, padding_block=padding_block, timeout=timeout) as c:
        return c.query(q), c.capture
