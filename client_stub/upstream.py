"""The proved upstream: a pool of DoT connections through the middlebox relay, with the proof channel.

Per connection (:class:`ProvedConnection`): TCP to the relay, the TLS 1.3 handshake, ANNOUNCE on the proof
channel, the CO proof made in a background worker right after the handshake, PAD proofs for the next
records kept ahead of demand.  Per query: pad the DNS message with EDNS(0) padding so the record fills its
size class (L = B, SPEC §5), encrypt it (fixing its record number ``n``), make sure the PAD blocks
``(n, 0..B/64-1)`` are accepted, prove Q in a worker, send the Q proof, then release the record (records
leave in record-number order), then wait for the response.  Any failure after a record number was taken
poisons the connection (later records cannot be decrypted without it): the connection is closed, its
queries fail with :class:`UpstreamError` and the pool opens a new one.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dns.flags
import dns.message
from zkmb.middlebox.messages import (
    Accepted,
    Announce,
    CoMsg,
    MessageRejected,
    PadMsg,
    QMsg,
    Rejected,
    from_wire,
    split_frame,
    to_wire,
)

from zkmb.dns.padding import pad_to_length
from zkmb.errors import InvalidInput
from zkmb.tls import DnsResponse, DotConnection, HandshakeComplete, TlsClientConfig
from zkmb.tls.dot import ReconnectRequired
from zkmb.tls.records import SUITES_BY_NAME

from .listener import Question, UpstreamError

__all__ = ["ProvedConnection", "ProvingUpstream", "choose_size"]

log = logging.getLogger("zkmb.stub.upstream")
TAG = 16
HEADER = 5


def choose_size(msg: dns.message.Message, sizes) -> tuple[int, bytes]:
    """Pad ``msg`` so its DoT record's inner plaintext is exactly the smallest class that fits
    (``L = M + 3 = B``); returns ``(B, wire)``.  InvalidInput when no available class fits."""
    for b in sorted(sizes):
        try:
            return b, pad_to_length(msg, b - 3)
        except InvalidInput:
            continue
    raise InvalidInput(f"query does not fit the size classes {sorted(sizes)}")


class ProvedConnection:
    """One DoT connection through the relay plus its proof-channel connection."""

    def __init__(self, owner: ProvingUpstream, ident: int):
        self.o, self.ident = owner, ident
        self.conn = DotConnection(owner.tls_config())
        self.ready = False
        self.closed = False
        self.error: str | None = None
        self.in_flight = 0
        self.keys = None
        self._w: asyncio.StreamWriter | None = None
        self._pw: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task] = []
        self._handshake: asyncio.Future | None = None
        self._responses: dict[int, asyncio.Future] = {}
        self._answers: dict[tuple[str, int, int], asyncio.Future] = {}
        self._pads: dict[tuple[int, int], asyncio.Future] = {}
        self._released = 0  # records 0.._released-1 have been written
        self._turn = asyncio.Event()
        self.opened_at = time.monotonic()

    # ------------------------------------------------------------------ setup

    async def open(self) -> None:
        """Connect, handshake, announce, prove and send CO; ``ready`` once the middlebox accepted CO."""
        o = self.o
        loop = asyncio.get_running_loop()
        try:
            reader, self._w = await asyncio.wait_for(asyncio.open_connection(*o.relay), o.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise UpstreamError(
                f"middlebox relay {o.relay[0]}:{o.relay[1]} unreachable ({e or 'timeout'})"
            ) from None
        self._handshake = loop.create_future()
        self.conn.start()
        self._flush()
        self._tasks.append(asyncio.ensure_future(self._read_loop(reader)))
        try:
            await asyncio.wait_for(asyncio.shield(self._handshake), o.connect_timeout)
        except TimeoutError:
            raise UpstreamError("TLS handshake through the relay timed out") from None
        try:
            preader, self._pw = await asyncio.wait_for(asyncio.open_connection(*o.proof), o.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise UpstreamError(
                f"proof endpoint {o.proof[0]}:{o.proof[1]} unreachable ({e or 'timeout'})"
            ) from None
        self._tasks.append(asyncio.ensure_future(self._proof_loop(preader)))
        local = self._w.get_extra_info("sockname")[:2]
        peer = self._w.get_extra_info("peername")[:2]
        await self._ask(
            Announce(tuple(local), tuple(peer), self.conn.capture.client_random), ("announce", 0, 0)
        )
        t0 = time.perf_counter()
        self.keys, proof = await loop.run_in_executor(o.background, o.prover.co, self.conn.capture)
        o.timing("co", time.perf_counter() - t0)
        await self._ask(CoMsg(self.keys.comm_k, proof), ("co", 0, 0), timeout=o.answer_timeout)
        self.ready = True
        log.info(
            "conn=%d ready: CO accepted %.1f s after connect", self.ident, time.monotonic() - self.opened_at
        )
        self._keep_ahead(0)

    async def _ask(self, msg, ref: tuple[str, int, int], timeout: float | None = None) -> None:
        fut = self._answer_future(ref)
        self._send_proof(msg)
        try:
            ans = await asyncio.wait_for(asyncio.shield(fut), timeout or self.o.answer_timeout)
        except TimeoutError:
            raise UpstreamError(
                f"no answer from the middlebox to {ref[0]} (n={ref[1]}, j={ref[2]})"
            ) from None
        finally:
            if self._answers.get(ref) is fut:
                del self._answers[ref]
        if isinstance(ans, Rejected):
            raise UpstreamError(f"middlebox rejected {ref[0]} (n={ref[1]}, j={ref[2]}): {ans.reason}")

    def _answer_future(self, ref) -> asyncio.Future:
        fut = self._answers.get(ref)
        if fut is None or fut.done():
            fut = self._answers[ref] = asyncio.get_running_loop().create_future()
        return fut

    def _send_proof(self, msg) -> None:
        if self._pw is None or self._pw.is_closing():
            raise UpstreamError("proof channel is closed")
        self._pw.write(to_wire(msg))

    # ------------------------------------------------------------------ PAD

    def _keep_ahead(self, start: int) -> None:
        """Background PAD proofs for block 0 of the next ``pad_ahead`` records (SPEC §4)."""
        for n in range(start, start + self.o.pad_ahead):
            self._pad(n, 0, critical=False)

    def _pad(self, n: int, j: int, *, critical: bool) -> asyncio.Future:
        fut = self._pads.get((n, j))
        if fut is None:
            fut = self._pads[(n, j)] = asyncio.ensure_future(self._make_pad(n, j, critical))
            self._tasks.append(fut)
        return fut

    async def _make_pad(self, n: int, j: int, critical: bool) -> tuple[bytes, int]:
        o = self.o
        pool = o.critical if critical else o.background
        t0 = time.perf_counter()
        a, proof = await asyncio.get_running_loop().run_in_executor(pool, o.prover.pad, self.keys, n, j)
        o.timing("pad", time.perf_counter() - t0)
        await self._ask(PadMsg(n, j, a.comm_pad, proof), ("pad", n, j))
        return a.pad, a.blinder

    # ------------------------------------------------------------------ queries

    async def query(self, q: Question) -> dns.message.Message:
        """Send one proved query on this connection; UpstreamError (and the connection closed) on failure."""
        o = self.o
        msg = dns.message.make_query(q.name, q.rdtype, q.rdclass, use_edns=0)
        if not q.rd:
            msg.flags &= ~dns.flags.RD
        size, _ = choose_size(msg, o.prover.sizes)  # InvalidInput: nothing reserved yet
        # -- from here until the record is released, a failure poisons the connection
        self.in_flight += 1
        n = len(self.conn.capture.client_app_records)
        try:
            qid = self.conn.send_query(msg)
            raw = self.conn.data_to_send()
            rec = self.conn.capture.client_app_records[n]
            if rec.seq != n or raw != rec.raw or len(raw) != HEADER + size + TAG:
                raise UpstreamError(f"record {n} was not encrypted as expected")
            resp_fut = self._responses[qid] = asyncio.get_running_loop().create_future()
            self._keep_ahead(n + 1)
            k = size // 64
            pads = await asyncio.wait_for(
                asyncio.gather(*(asyncio.shield(self._pad(n, j, critical=True)) for j in range(k))),
                o.answer_timeout,
            )
            t0 = time.perf_counter()
            proof = await asyncio.get_running_loop().run_in_executor(
                o.critical,
                o.prover.q,
                [p for p, _ in pads],
                [b for _, b in pads],
                raw[HEADER:-TAG],
                o.policy,
                size,
            )
            o.timing(f"q_{size}", time.perf_counter() - t0)
            q_ans = self._answer_future(("q", n, 0))
            self._send_proof(QMsg(n, proof))
            await self._release(n, raw)
        except asyncio.CancelledError:
            self.fail(f"query on record {n} cancelled before its record was sent")
            raise
        except Exception as e:
            self.fail(f"record {n}: {e}")
            self.in_flight -= 1
            raise UpstreamError(f"record {n}: {e}") from e
        try:
            done, _ = await asyncio.wait(
                {resp_fut, q_ans}, timeout=o.answer_timeout, return_when="FIRST_COMPLETED"
            )
            if q_ans in done and isinstance(q_ans.result(), Rejected):
                self.fail(f"Q proof for record {n} rejected: {q_ans.result().reason}")
            resp = await asyncio.wait_for(resp_fut, o.answer_timeout)
            return resp
        except TimeoutError:
            self.fail(f"no response to record {n}")
            raise UpstreamError(f"no response to record {n} within {o.answer_timeout} s") from None
        finally:
            self.in_flight -= 1
            self._responses.pop(qid, None)
            self._answers.pop(("q", n, 0), None)
            for j in range(7):
                self._pads.pop((n, j), None)

    async def _release(self, n: int, raw: bytes) -> None:
        """Write record ``n`` once every earlier record has been written."""
        while self._released != n:
            if self.closed:
                raise UpstreamError(self.error or "connection closed")
            self._turn.clear()
            await self._turn.wait()
        if self.closed or self._w is None:
            raise UpstreamError(self.error or "connection closed")
        self._w.write(raw)
        self._released = n + 1
        self._turn.set()

    # ------------------------------------------------------------------ I/O and failure

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self._w is not None:
            self._w.write(data)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                events = self.conn.receive_data(data) if data else self.conn.receive_eof()
                self._flush()  # the Finished after the handshake; nothing else is ever queued here
                for ev in events:
                    if isinstance(ev, HandshakeComplete):
                        if self._handshake is not None and not self._handshake.done():
                            self._handshake.set_result(ev)
                    elif isinstance(ev, DnsResponse):
                        fut = self._responses.get(ev.query.id)
                        if fut is not None and not fut.done():
                            fut.set_result(ev.response)
                    elif isinstance(ev, ReconnectRequired):
                        self.fail("resolver asked for a KeyUpdate or a certificate: reconnecting")
                        return
                if not data or self.conn.closed:
                    self.fail("the relay closed the DoT connection")
                    return
        except asyncio.CancelledError:
            pass
        except Exception as e:
            self.fail(f"DoT connection error: {e}")

    async def _proof_loop(self, reader: asyncio.StreamReader) -> None:
        buf = bytearray()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self.fail("the middlebox closed the proof channel")
                    return
                buf += data
                while (head := split_frame(buf)) is not None:
                    frame = bytes(buf[: head[1]])
                    del buf[: head[1]]
                    try:
                        msg = from_wire(frame)
                    except MessageRejected as e:
                        log.warning("conn=%d malformed answer from the middlebox: %s", self.ident, e)
                        continue
                    if isinstance(msg, (Accepted, Rejected)):
                        if isinstance(msg, Rejected):
                            log.warning(
                                "conn=%d middlebox rejected %s n=%d j=%d: %s",
                                self.ident,
                                msg.kind,
                                msg.n,
                                msg.j,
                                msg.reason,
                            )
                        fut = self._answers.get((msg.kind, msg.n, msg.j))
                        if fut is not None and not fut.done():
                            fut.set_result(msg)
        except asyncio.CancelledError:
            pass
        except Exception as e:
            self.fail(f"proof channel error: {e}")

    def fail(self, reason: str) -> None:
        """Close both connections and fail everything waiting on them (idempotent)."""
        if self.closed:
            return
        self.closed, self.ready, self.error = True, False, reason
        log.warning("conn=%d closed: %s", self.ident, reason)
        exc = UpstreamError(reason)
        for futs in (self._responses, self._answers):
            for fut in futs.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(exc)
            self._handshake.exception()
        self._turn.set()
        for w in (self._w, self._pw):
            if w is not None:
                w.close()  # TCP FIN, no alert (SPEC §2)
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        self.o._connection_closed(self)


class ProvingUpstream:
    """The pool: ``await start()``, then the listener's upstream (``await up(question)``), ``await close()``.

    ``relay`` and ``proof`` are the middlebox's DoT relay and proof endpoint; ``server_name``/``cafile``
    are the resolver's certificate name and trust anchor (TLS is end to end with the resolver).
    """

    def __init__(
        self,
        relay: tuple[str, int],
        proof: tuple[str, int],
        prover,
        policy,
        *,
        server_name: str,
        cafile: str | None = None,
        pool_size: int = 2,
        pad_ahead: int = 2,
        connect_timeout: float = 3.0,
        answer_timeout: float = 30.0,
        ready_timeout: float = 60.0,
        workers: int = 2,
        on_timing: Callable[[str, float], None] | None = None,
    ):
        self.relay, self.proof, self.prover, self.policy = relay, proof, prover, policy
        self.server_name, self.cafile = server_name, cafile
        self.pool_size, self.pad_ahead = pool_size, pad_ahead
        self.connect_timeout, self.answer_timeout, self.ready_timeout = (
            connect_timeout,
            answer_timeout,
            ready_timeout,
        )
        self.critical = ThreadPoolExecutor(workers, thread_name_prefix="zkmb-prove-q")
        self.background = ThreadPoolExecutor(1, thread_name_prefix="zkmb-prove-bg")
        self.conns: list[ProvedConnection] = []
        self.last_error: str | None = None
        self.timings: dict[str, list[float]] = {}
        self._on_timing = on_timing
        self._counter = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def tls_config(self) -> TlsClientConfig:
        suites = tuple(SUITES_BY_NAME[s] for s in self.prover.suites)
        return TlsClientConfig(self.server_name, cafile=self.cafile, suites=suites)

    def timing(self, what: str, seconds: float) -> None:
        self.timings.setdefault(what, []).append(seconds)
        if self._on_timing is not None:
            self._on_timing(what, seconds)

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._maintain())

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for c in list(self.conns):
            c.fail("stub shutting down")
        self.critical.shutdown(wait=False, cancel_futures=True)
        self.background.shutdown(wait=False, cancel_futures=True)

    def _connection_closed(self, c: ProvedConnection) -> None:
        if c in self.conns:
            self.conns.remove(c)
        self.last_error = c.error
        self._changed.set()

    async def _open_one(self) -> None:
        self._counter += 1
        c = ProvedConnection(self, self._counter)
        self.conns.append(c)
        try:
            await c.open()
            self.last_error = None
        except Exception as e:
            c.fail(str(e))
        finally:
            self._changed.set()

    async def _maintain(self) -> None:
        """Keep ``pool_size`` connections open or opening; back off (up to 5 s) after failures."""
        backoff = 0.2
        opening: set[asyncio.Task] = set()
        while not self._closing:
            while len(self.conns) < self.pool_size:
                t = asyncio.ensure_future(self._open_one())
                opening.add(t)
                t.add_done_callback(opening.discard)
                await asyncio.sleep(0)  # let it register in self.conns
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 5.0)
            if self.last_error is not None and not any(c.ready for c in self.conns):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    async def __call__(self, q: Question) -> dns.message.Message:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            ready = [c for c in self.conns if c.ready]
            if ready:
                return await min(ready, key=lambda c: c.in_flight).query(q)
            setting_up = [c for c in self.conns if not c.closed and c._w is not None]
            if not setting_up and self.last_error is not None:
                raise UpstreamError(f"no upstream connection: {self.last_error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise UpstreamError(f"no proved connection ready within {self.ready_timeout} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
