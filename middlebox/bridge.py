"""Bridge mode (SPEC §7): the middlebox sits on the path (NFQUEUE) and strictly normalises TCP.

Every forwarded TCP packet to or from port 853 is queued to this process (``iptables ... -j NFQUEUE``,
see ``scripts/bridge-setup.sh``; without a listener the kernel drops them: fail closed).  Per
connection, each direction is reassembled by :class:`~zkmb.middlebox.tcp.Stream` from the SYN and fed,
in order and exactly once, to the flow core (:class:`~zkmb.middlebox.flow.Flow`), which decides as in
relay mode.  Verdicts:

* client -> resolver: a packet carrying stream bytes is held (no verdict) until the flow core has
  released every byte up to its end, then accepted; so the resolver only ever receives verified bytes,
  in exactly the segmentation the MB reassembled (a retransmission of released bytes is accepted only
  if identical; one of held bytes is dropped, the held original goes once released);
* resolver -> client: accepted at once (never held) once the reassembler took it (bytes the client
  sees are the bytes the MB parsed);
* a connection to a resolver address not in ``FlowConfig.resolvers`` (SPEC §1, required in bridge
  mode) is cut at its SYN (dropped, decision ``block`` reason ``resolver not allowed``);
* refused packets (bad checksum, IP fragment, URG, SYN data, partial overlap, outside the window,
  no SYN seen) are dropped; a retransmission that differs from accepted bytes, or any flow-core
  violation or deadline, blocks the connection: held packets are dropped, a RST is sent to both ends
  (best effort, raw socket) and every later packet of that 4-tuple is dropped.

The proof endpoint is the relay's (:class:`~zkmb.middlebox.relay.Middlebox`), on an address of the
bridge host; connections are keyed by the client's 4-tuple as the client sees it (no NAT).
Only IPv4.  One queue per process; :mod:`zkmb.middlebox.multiqueue` runs one per queue of an
``--queue-balance`` range behind one proof endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from zkmb.errors import InvalidInput

from .flow import Flow, FlowConfig
from .metrics import Metrics
from .relay import Middlebox
from .tcp import ACK, FIN, RST, SYN, Packet, Status, Stream, build_packet, parse_packet
from .verifier import Verifier
from .workers import VerifyPool

__all__ = ["Bridge", "DOT_PORT"]

log = logging.getLogger("zkmb.middlebox")
DOT_PORT = 853


@dataclass
class _BConn:
    flow: Flow
    client: tuple[str, int]
    server: tuple[str, int]
    cs: Stream
    ss: Stream | None = None
    proof_w: asyncio.StreamWriter | None = None
    released: int = 0  # client stream bytes the flow core released (a prefix of the stream)
    held: list = field(default_factory=list)  # (end offset, packet handle), in arrival order
    finished: bool = False  # the client's FIN went through after all its bytes: teardown passes
    blocked: bool = False
    last: float = 0.0
    tasks: list = field(default_factory=list)


class Bridge(Middlebox):
    """NFQUEUE bridge + proof endpoint in one asyncio process (``start``, feed ``packet``, ``close``)."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        config: FlowConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_flows: int = 4096,
        max_flows_per_ip: int = 16,
        idle: float = 120.0,
        pool: VerifyPool | None = None,
        metrics: Metrics | None = None,
        inject: Callable[[bytes, str], None] | None = None,
        port: int = DOT_PORT,
        max_held: int = 512,
        ban_seconds: float = 60.0,
    ):
        super().__init__(
            verifier,
            ("0.0.0.0", port),
            config=config,
            clock=clock,
            max_flows_per_ip=max_flows_per_ip,
            max_flows=max_flows,
            pool=pool,
            metrics=metrics,
            ban_seconds=ban_seconds,
        )
        if config is None or config.resolvers is None:
            raise InvalidInput("bridge mode needs the allowed resolver addresses (FlowConfig.resolvers)")
        self.port, self.max_flows, self.idle, self.max_held = port, max_flows, idle, max_held
        self.inject = inject if inject is not None else _raw_sender()
        self._nfq = None
        self._reaper: asyncio.Task | None = None

    # ------------------------------------------------------------------ I/O setup

    async def start_bridge(self, queue: int, proof_listen: tuple[str, int] | None) -> int:
        """Bind NFQUEUE ``queue`` and the proof endpoint; returns the proof port.  ``proof_listen``
        None: no endpoint of its own (a child of :class:`~zkmb.middlebox.multiqueue.MultiQueueBridge`,
        whose parent hands it the proof connections); returns 0."""
        from netfilterqueue import NetfilterQueue

        port = 0
        if proof_listen is not None:
            s = await asyncio.start_server(self._proofs, *proof_listen)
            self._servers = [s]
            port = s.sockets[0].getsockname()[1]
        if self.pool is not None:
            self.pool.start()
        nfq = NetfilterQueue()
        nfq.bind(queue, self.packet, max_len=4096)
        self._nfq = nfq
        fd = nfq.get_fd()
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, lambda: nfq.run(block=False))
        self._reaper = asyncio.ensure_future(self._tick_loop())
        return port

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        if self._nfq is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._nfq.get_fd())
            for c in list(self.conns.values()):
                self._block(c, "middlebox shut down")
            self._nfq.unbind()
            self._nfq = None
        await super().close()

    async def _tick_loop(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(0.05)
                self.tick()

    def tick(self) -> None:
        """Apply flow deadlines and forget idle connections."""
        now = self.clock()
        for key, c in list(self.conns.items()):
            if not c.flow.closed:
                c.flow.tick()
                self._sync(key, c)
            if now - c.last > self.idle:
                if not c.finished and not c.blocked:
                    self._block(c, "idle")
                for h in c.held:
                    h[1].drop()
                c.held.clear()
                del self.conns[key]

    # ------------------------------------------------------------------ packets

    def packet(self, pkt) -> None:
        """One queued packet (``get_payload``/``accept``/``drop``): give it a verdict now or hold it."""
        try:
            p = parse_packet(pkt.get_payload())
        except InvalidInput as e:
            log.info("bridge packet action=drop reason=%s", str(e).replace(" ", "_"))
            pkt.drop()
            return
        try:
            self._dispatch(pkt, p)
        except Exception:  # a bug must not leave a packet without a verdict: fail closed
            log.exception("bridge packet action=drop reason=internal_error")
            with contextlib.suppress(Exception):
                pkt.drop()

    def _dispatch(self, pkt, p: Packet) -> None:
        if p.dst[1] == self.port:
            self._client_packet(pkt, p)
        elif p.src[1] == self.port:
            self._server_packet(pkt, p)
        else:
            pkt.accept()  # not DoT: the rule should never queue it

    def _client_packet(self, pkt, p: Packet) -> None:
        key = (p.src, p.dst)
        c = self.conns.get(key)
        if p.flags & SYN:
            if p.flags & ACK:
                pkt.drop()
                return
            if c is not None and c.finished and c.cs.isn != p.seq:
                del self.conns[key]  # the port is reused after a clean close
                c = None
            if c is not None and c.cs.isn == p.seq and not c.blocked:
                c.last = self.clock()
                pkt.accept()  # retransmitted SYN
                return
            if c is not None:
                pkt.drop()  # another ISN on a live or cut connection's 4-tuple (dropped until idle)
                return
            why = self.refusal(p.src[0])
            if why is not None:
                self._refuse(p.src[0], why)
                pkt.drop()
                return
            self._make_room()
            flow = self._new_flow(key)
            if not flow.admit_resolver(p.dst[0]):
                pkt.drop()  # logged by the core; no state kept: every later packet is dropped too
                return
            self.conns[key] = _BConn(flow, p.src, p.dst, Stream(p.seq), last=self.clock())
            log.info("flow=%s what=syn client=%s:%d action=forward", flow.flow_id, *p.src)
            pkt.accept()
            return
        if c is None or c.blocked:
            pkt.drop()
            return
        c.last = self.clock()
        if p.flags & RST:
            pkt.accept()
            self._forget(key, c, "client reset")
            return
        if (p.payload or p.flags & FIN) and len(c.held) >= self.max_held:
            pkt.drop()  # before the reassembler sees it: the client retransmits later
            return
        r = c.cs.segment(p.seq, p.payload, bool(p.flags & FIN))
        if r.status is Status.CONFLICT:
            pkt.drop()
            c.flow.close(f"client TCP: {r.reason}", what="tcp")
        elif r.status is Status.DROP:
            log.info("flow=%s what=tcp action=drop reason=%s", c.flow.flow_id, r.reason.replace(" ", "_"))
            pkt.drop()
        elif r.status is Status.DUP:
            (pkt.accept if r.end <= c.released else pkt.drop)()
        elif r.status is Status.EMPTY and not p.flags & FIN:
            pkt.accept()  # a pure ACK carries no client bytes
        else:  # NEW, HELD, or a FIN: goes once every byte before it is released
            c.held.append((r.end, pkt))
            if r.data and not c.finished:
                c.flow.client_data(r.data)
        self._sync(key, c)

    def _server_packet(self, pkt, p: Packet) -> None:
        key = (p.dst, p.src)
        c = self.conns.get(key)
        if c is None or c.blocked:
            pkt.drop()
            return
        c.last = self.clock()
        if p.flags & SYN:
            if not p.flags & ACK or (c.ss is not None and c.ss.isn != p.seq):
                pkt.drop()
                return
            if c.ss is None:
                c.ss = Stream(p.seq)
            pkt.accept()
            return
        if c.ss is None:
            pkt.drop()
            return
        if p.flags & RST:
            pkt.accept()
            self._forget(key, c, "resolver reset")
            return
        r = c.ss.segment(p.seq, p.payload, bool(p.flags & FIN))
        if r.status is Status.CONFLICT:
            pkt.drop()
            if not c.flow.closed:
                c.flow.close(f"resolver TCP: {r.reason}", what="tcp")
            else:
                self._block(c, f"resolver TCP: {r.reason}")
        elif r.status is Status.DROP:
            pkt.drop()
        else:
            pkt.accept()  # never held
            if r.data:
                c.flow.server_data(r.data)
            if c.ss.eof and not c.flow.closed and c.flow.view is not None and c.flow.comm_k is None:
                c.flow.server_eof()  # the resolver gave up on the connection before its CO: counted
        self._sync(key, c)

    def _live(self, conn: _BConn) -> bool:
        """Only live flows count toward the limits; cut and finished ones stay in the table (their
        later packets are dropped or pass as teardown) until idle, but no longer count."""
        return not (conn.blocked or conn.finished or conn.flow.closed)

    def _make_room(self) -> None:
        """Keep the table bounded (``2 * max_flows``): forget the longest-idle dead flows first."""
        if len(self.conns) < 2 * self.max_flows:
            return
        dead = sorted((c.last, k) for k, c in self.conns.items() if not self._live(c))
        for _, k in dead[: max(1, len(self.conns) - 2 * self.max_flows + 1)]:
            c = self.conns.pop(k)
            for h in c.held:
                h[1].drop()

    # ------------------------------------------------------------------ flow outputs -> verdicts

    def _sync(self, key, conn: _BConn) -> None:
        flow = conn.flow
        conn.released += len(flow.take_to_server())
        flow.take_to_client()  # already passed packet by packet
        for a in flow.take_answers():
            if conn.proof_w is not None:
                from zkmb.proofchannel import Accepted, Rejected, to_wire

                msg = Accepted(a.kind, a.n, a.j) if a.accepted else Rejected(a.kind, a.n, a.j, a.reason)
                conn.proof_w.write(to_wire(msg))
        if conn.blocked:
            return
        if flow.closed and not conn.finished:
            if flow.ban:
                self.ban(key[0][0], flow.closed)
            self._block(conn, flow.closed)
            return
        keep = []
        for end, h in conn.held:
            if end <= conn.released:
                h.accept()
            else:
                keep.append((end, h))
        conn.held = keep
        if conn.cs.eof and not conn.finished and conn.released == conn.cs.fin:
            conn.finished = True  # every client byte went through: FIN and teardown pass
            for _, h in conn.held:
                h.accept()
            conn.held = []
            flow.client_eof()

    def _block(self, conn: _BConn, reason: str) -> None:
        """Drop what is held, reset both ends, and drop every later packet of the connection."""
        if conn.blocked:
            return
        conn.blocked = True
        conn.flow.close(reason)
        for _, h in conn.held:
            h.drop()
        conn.held = []
        log.info("flow=%s what=tcp action=reset reason=%s", conn.flow.flow_id, reason.replace(" ", "_"))
        if conn.ss is not None:
            to_client = build_packet(conn.server, conn.client, conn.ss.seq(conn.ss.nxt), 0, RST)
            to_server = build_packet(conn.client, conn.server, conn.cs.seq(conn.released), 0, RST)
            for raw, dst in ((to_client, conn.client[0]), (to_server, conn.server[0])):
                with contextlib.suppress(OSError):
                    self.inject(raw, dst)

    def _forget(self, key, conn: _BConn, reason: str) -> None:
        conn.flow.close(reason, what="rst")
        for _, h in conn.held:
            h.drop()
        conn.held = []
        if self.conns.get(key) is conn:
            del self.conns[key]

    def _shutdown(self, conn) -> None:
        self._block(conn, "middlebox shut down")

    def _finish(self, key, conn) -> None:  # pragma: no cover - relay-only path
        self._block(conn, conn.flow.closed or "closed")


def _raw_sender() -> Callable[[bytes, str], None]:
    """A sender of whole IPv4 packets (needs CAP_NET_RAW); a no-op when none can be opened."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except OSError:
        log.warning("bridge: no raw socket, blocked connections are dropped without a RST")
        return lambda raw, dst: None
    return lambda raw, dst: s.sendto(raw, (dst, 0))
