"""Relay mode (asyncio): the client's DoT connection ends at the middlebox, which re-originates it to the
configured resolver and passes client bytes only as the flow core releases them; the proof endpoint
runs in the same process.  All rules live in :mod:`zkmb.middlebox.flow`; this module only moves bytes.

With a :class:`~zkmb.middlebox.workers.VerifyPool` proofs are verified in worker threads (batched per
circuit) and each flow is re-run (:meth:`Flow.retry`) on the loop when its verdicts are in; without
one they are verified inline (tests with stand-in proofs).  With :class:`~zkmb.middlebox.metrics.Metrics`
every decision, verdict and hold time is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from zkmb.errors import InvalidInput
from zkmb.proofchannel import (
    MAX_RETRY_MS,
    RATE_LIMITED,
    Accepted,
    Announce,
    Announced,
    CoMsg,
    MessageRejected,
    PadMsg,
    PadsMsg,
    QMsg,
    RateLimited,
    Rejected,
    from_wire,
    peek_refs,
    split_frame,
    to_wire,
)

from .flow import RESOLVER_CLOSED_BEFORE_CO, Decision, Flow, FlowConfig, Mode, RandomSet
from .metrics import Metrics
from .verifier import Verifier
from .workers import FlowVerifier, VerifyPool

__all__ = ["Middlebox", "RateLimiter", "announced_for"]


def announced_for(config: FlowConfig) -> Announced:
    """The ANNOUNCED answer (SPEC §7: the client follows the operator's mode) for a flow config."""
    strict = config.mode is Mode.STRICT
    return Announced(
        mode=config.mode.value,
        co_deadline_ms=max(1, round(config.co_deadline * 1000)),
        record_deadline_ms=max(1, round((config.q_deadline if strict else config.async_q_deadline) * 1000)),
        max_before_co=0 if strict else config.async_max_before_co,
        pad_window=config.pad_window,
    )


log = logging.getLogger("zkmb.middlebox")
_READ = 1 << 14


class RateLimiter:
    """A token bucket per key (client IP): ``rate`` per second, ``burst`` at most; bounded key count."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float], max_keys: int = 4096):
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._b: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when none is left."""
        return self.take(key) == 0.0

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if one was there, else the seconds until one will be."""
        now = self.clock()
        tokens, last = self._b.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if len(self._b) >= self.max_keys and key not in self._b:
            self._b.clear()  # crude but bounded
        if tokens < 1:
            self._b[key] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else float("inf")
        self._b[key] = (tokens - 1, now)
        return 0.0


@dataclass
class _Conn:
    flow: Flow
    client_w: asyncio.StreamWriter
    upstream_w: asyncio.StreamWriter | None = None
    proof_w: asyncio.StreamWriter | None = None
    tasks: list = field(default_factory=list)


class Middlebox:
    """The relay and proof endpoint of one process (``start`` both, then ``close``)."""

    def __init__(
        self,
        verifier: Verifier,
        upstream: tuple[str, int],
        *,
        config: FlowConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_flows_per_ip: int = 16,
        ban_seconds: float = 60.0,
        proof_rate: float = 200.0,
        pool: VerifyPool | None = None,
        metrics: Metrics | None = None,
        max_flows: int = 4096,
        max_bans: int = 1 << 16,
        max_proof_conns: int = 4096,
    ):
        self.verifier, self.upstream, self.config, self.clock = verifier, upstream, config, clock
        self.max_flows_per_ip, self.ban_seconds = max_flows_per_ip, ban_seconds
        self.max_flows, self.max_bans = max_flows, max_bans
        self.max_proof_conns = max_proof_conns
        self.max_proof_conns_per_ip = 2 * max_flows_per_ip
        self._proof_ips: dict[str, int] = {}
        self.conns: dict[tuple, _Conn] = {}
        self.bans: dict[str, float] = {}
        self.randoms = RandomSet()
        self.limiter = RateLimiter(proof_rate, 2 * proof_rate, clock)
        self._servers: list[asyncio.base_events.Server] = []
        self._counter = 0
        self._proof_tasks: set[asyncio.Task] = set()
        self.pool = pool
        self.metrics = metrics
        if metrics is not None:
            metrics.gauge(
                "zkmb_active_flows",
                "Client connections being relayed (live: not cut or closed).",
                lambda: sum(self._live(c) for c in self.conns.values()),
            )
            if pool is not None:
                metrics.gauge("zkmb_verify_queue", "Verification jobs waiting.", lambda: pool.queued)
                pool.on_verdict = pool.on_verdict or metrics.verdict
                pool.on_drop = pool.on_drop or metrics.drop

    def announced(self) -> Announced:
        """What an accepted ANNOUNCE is answered with: the mode and deadlines of this middlebox."""
        return announced_for(self.config or FlowConfig())

    def rotate_root(self, root: int) -> None:
        """Make ``root`` the current policy root; the previous one stays acceptable for the grace window."""
        self.verifier.roots.rotate(root, self.clock())
        log.info("policy root=0x%064x action=rotate grace=%s", root, self.verifier.roots.grace)

    async def start(self, listen: tuple[str, int], proof_listen: tuple[str, int]) -> tuple[int, int]:
        """Listen for DoT clients and for proof connections; returns the two bound ports."""
        s1 = await asyncio.start_server(self._client, *listen)
        s2 = await asyncio.start_server(self._proofs, *proof_listen)
        self._servers = [s1, s2]
        if self.pool is not None:
            self.pool.start()
        return s1.sockets[0].getsockname()[1], s2.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for s in self._servers:
            s.close()
        for c in list(self.conns.values()):
            self._shutdown(c)
        for t in list(self._proof_tasks):
            t.cancel()
        if self._proof_tasks:
            await asyncio.gather(*self._proof_tasks, return_exceptions=True)
        for s in self._servers:
            # Python >= 3.12 waits here for every accepted connection: bounded, never a stop that hangs
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(s.wait_closed(), 2.0)
        if self.pool is not None:
            self.pool.close()

    # ------------------------------------------------------------------ DoT side

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[:2]
        local = writer.get_extra_info("sockname")[:2]
        ip = peer[0]
        why = self.refusal(ip)
        if why is not None:
            self._refuse(ip, why)
            writer.close()
            return
        key = (tuple(peer), tuple(local))
        flow = self._new_flow(key)
        conn = _Conn(flow, writer)
        self.conns[key] = conn
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except (TimeoutError, OSError):
            flow.close("resolver unreachable")
            self._finish(key, conn)
            return
        conn.upstream_w = up_w
        conn.tasks = [
            asyncio.ensure_future(self._pump(key, conn, up_r, server=True)),
            asyncio.ensure_future(self._deadlines(key, conn)),
        ]
        await self._pump(key, conn, reader, server=False)

    async def _pump(self, key, conn: _Conn, reader: asyncio.StreamReader, *, server: bool) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while not conn.flow.closed:
                data = await reader.read(_READ)
                if not data:
                    if server:
                        conn.flow.server_eof()
                    else:
                        conn.flow.client_eof()
                    break
                (conn.flow.server_data if server else conn.flow.client_data)(data)
                self._sync(key, conn)
        self._sync(key, conn)

    async def _deadlines(self, key, conn: _Conn) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while not conn.flow.closed:
                due = conn.flow.next_deadline()
                await asyncio.sleep(0.05 if due is None else max(0.0, min(0.5, due - self.clock())) + 0.001)
                conn.flow.tick()
                self._sync(key, conn)

    def _new_flow(self, key) -> Flow:
        """A fresh flow core for the connection ``key``: its verifier (the worker pool's, waking this
        connection when a verdict arrives, or the synchronous one), numbered, decisions observed."""
        self._counter += 1
        verifier = self.verifier
        if self.pool is not None:
            verifier = FlowVerifier(self.pool, lambda: self._wake(key))
        return Flow(
            verifier,
            self.clock,
            self.config,
            seen_randoms=self.randoms,
            flow_id=str(self._counter),
            on_decision=self._observe,
        )

    def _wake(self, key) -> None:
        """Verdicts for this flow are in: re-run its pending checks and move what that released."""
        conn = self.conns.get(key)
        if conn is not None:
            conn.flow.retry()
            self._sync(key, conn)

    def _observe(self, d: Decision) -> None:
        """Every decision of every flow, as it is made: counted in the metrics."""
        if self.metrics is not None:
            self.metrics.decision(d.action, d.reason)
            if d.held is not None:
                self.metrics.hold(d.held)
            if d.cut:
                self.metrics.cut(self._mode, d.reason)
            elif d.reason == RESOLVER_CLOSED_BEFORE_CO:
                self.metrics.resolver_closed_before_co += 1

    @property
    def _mode(self) -> str:
        return (self.config.mode if self.config is not None else FlowConfig().mode).value

    def refusal(self, ip: str) -> str | None:
        """Why a new connection from ``ip`` is refused (banned, too many live flows), or None."""
        if self.bans.get(ip, 0) > self.clock():
            return "client banned"
        live = [k for k, c in self.conns.items() if self._live(c)]
        if len(live) >= self.max_flows:
            return "too many flows"
        if sum(k[0][0] == ip for k in live) >= self.max_flows_per_ip:
            return "too many flows from this address"
        return None

    def _live(self, conn) -> bool:
        return not conn.flow.closed

    def _refuse(self, ip: str, reason: str) -> None:
        log.info("flow=- what=accept client=%s action=refuse reason=%s", ip, reason.replace(" ", "_"))
        if self.metrics is not None:
            self.metrics.refuse(reason)

    def _sync(self, key, conn: _Conn) -> None:
        """Move what the flow produced; cut both sides once it is closed."""
        flow = conn.flow
        out = flow.take_to_server()
        if out and conn.upstream_w is not None:
            conn.upstream_w.write(out)
        back = flow.take_to_client()
        if back:
            conn.client_w.write(back)
        for a in flow.take_answers():
            if conn.proof_w is not None:
                msg = Accepted(a.kind, a.n, a.j) if a.accepted else Rejected(a.kind, a.n, a.j, a.reason)
                conn.proof_w.write(to_wire(msg))
        if flow.closed:
            self._finish(key, conn)

    def _finish(self, key, conn: _Conn) -> None:
        if self.conns.get(key) is conn:
            del self.conns[key]
            if conn.flow.ban:
                self.ban(key[0][0], conn.flow.closed or "")
        self._shutdown(conn)

    def ban(self, ip: str, reason: str = "") -> None:
        """Refuse new flows from ``ip`` for ``ban_seconds`` (logged, counted by ``reason``).  The table
        is bounded (``max_bans``): expired bans are purged first; if it is still full, the ban that
        ends soonest is given up (logged) -- bans deter, the connection that broke the rules is cut
        regardless."""
        now = self.clock()
        if ip not in self.bans and len(self.bans) >= self.max_bans:
            for k in [k for k, until in self.bans.items() if until <= now]:
                del self.bans[k]
            if len(self.bans) >= self.max_bans:
                victim = min(self.bans, key=self.bans.__getitem__)
                del self.bans[victim]
                log.warning("ban table full (%d): the ban of %s ends early", self.max_bans, victim)
        self.bans[ip] = now + self.ban_seconds
        why = (reason or "-").replace(" ", "_")
        log.warning("client=%s action=ban seconds=%g reason=%s", ip, self.ban_seconds, why)
        if self.metrics is not None:
            self.metrics.ban(reason or "-")

    def _shutdown(self, conn: _Conn) -> None:
        conn.flow.close("middlebox shut down")
        for w in (conn.client_w, conn.upstream_w):
            if w is not None:
                w.close()
        for t in conn.tasks:
            t.cancel()

    # ------------------------------------------------------------------ proof endpoint

    async def _proofs(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, initial: bytes = b""
    ) -> None:
        ip = writer.get_extra_info("peername")[0]
        if (
            len(self._proof_tasks) >= self.max_proof_conns
            or self._proof_ips.get(ip, 0) >= self.max_proof_conns_per_ip
        ):
            log.info("proof client=%s result=disconnected reason=too_many_proof_connections", ip)
            writer.close()
            return
        task = asyncio.current_task()
        self._proof_tasks.add(task)
        self._proof_ips[ip] = self._proof_ips.get(ip, 0) + 1
        buf = bytearray()
        bound: tuple | None = None
        try:
            if initial:
                buf += initial
                bound = self._proof_frames(ip, buf, writer, bound)
            while True:
                data = await reader.read(_READ)
                if not data:
                    break
                buf += data
                bound = self._proof_frames(ip, buf, writer, bound)
                await writer.drain()
        except MessageRejected as e:
            log.info("proof client=%s result=disconnected reason=%s", ip, str(e).replace(" ", "_"))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._proof_tasks.discard(task)
            left = self._proof_ips.pop(ip, 1) - 1
            if left > 0:
                self._proof_ips[ip] = left
            writer.close()

    def _proof_frames(self, ip: str, buf: bytearray, writer, bound):
        """Handle every whole frame at the start of ``buf`` (consumed); returns the binding."""
        while True:
            head = split_frame(buf)  # raises on an unframeable stream: drop this proof connection
            if head is None:
                return bound
            frame = bytes(buf[: head[1]])
            del buf[: head[1]]
            wait = self.limiter.take(ip)
            if wait > 0:
                self._rate_limited(ip, frame, writer, wait)
                continue
            bound = self._proof_message(ip, frame, writer, bound)

    def _rate_limited(self, ip: str, frame: bytes, writer, wait: float) -> None:
        """Answer a frame over the rate limit with RATE_LIMITED (not decoded, not processed), each
        block of a PADS frame."""
        retry_ms = MAX_RETRY_MS if wait * 1000 >= MAX_RETRY_MS else math.ceil(wait * 1000)
        refs = peek_refs(frame)
        kind, n, j = refs[0]
        log.info(
            "proof client=%s proof=%s n=%d j=%d result=rate_limited retry_after_ms=%d",
            *(ip, kind, n, j, retry_ms),
        )
        if self.metrics is not None:
            self.metrics.rate_limit(kind)
        for kind, n, j in refs:
            writer.write(to_wire(RateLimited(kind, n, j, RATE_LIMITED, retry_ms)))

    def _proof_message(self, ip: str, frame: bytes, writer, bound):
        try:
            msg = from_wire(frame)
        except InvalidInput as e:
            log.info("proof client=%s result=discarded reason=%s", ip, str(e).replace(" ", "_"))
            return bound
        if isinstance(msg, Announce):
            key = (msg.client, msg.server)
            conn = self.conns.get(key)
            ok = conn is not None and ip == msg.client[0] and conn.flow.client_random == msg.client_random
            if ok:
                conn.proof_w = writer
                writer.write(to_wire(self.announced()))
                return key
            writer.write(to_wire(Rejected("announce", reason="no such connection")))
            log.info("proof client=%s result=rejected reason=unknown_connection", ip)
            return bound
        conn = self.conns.get(bound) if bound is not None else None
        if conn is None or conn.proof_w is not writer:
            kind = {CoMsg: "co", PadMsg: "pad", PadsMsg: "pad", QMsg: "q"}.get(type(msg))
            if kind is not None:
                # bound but gone: the flow was cut (deadline, violation, EOF); late proofs learn it
                why = "connection closed" if bound is not None else "announce the connection first"
                refs = (
                    [(n, j) for n, j, _ in msg.blocks]
                    if isinstance(msg, PadsMsg)
                    else [(getattr(msg, "n", 0), getattr(msg, "j", 0))]
                )
                for n, j in refs:
                    writer.write(to_wire(Rejected(kind, n, j, why)))
            return bound
        if isinstance(msg, CoMsg):
            conn.flow.co(msg.comm_k, msg.proof)
        elif isinstance(msg, PadMsg):
            conn.flow.pad(msg.n, msg.j, msg.comm_pad, msg.proof)
        elif isinstance(msg, PadsMsg):
            conn.flow.pads(msg.blocks, msg.proof)
        elif isinstance(msg, QMsg):
            conn.flow.q(msg.n, msg.proof)
        self._sync(bound, conn)
        return bound
