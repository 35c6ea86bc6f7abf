"""The stub survives a restart of the middlebox or of the resolver, and answers many concurrent clients.

Same stack as test_relay_e2e (real relay, embedded resolver, stand-in proofs).  A restart is simulated the
way a process restart looks on the wire: the listening sockets go away and every live connection is cut;
then a new instance listens on the same port.  Queries in flight at that moment must get SERVFAIL within a
bound; the stub must then open new TLS connections (a new CO each) and answer later queries.
"""

from __future__ import annotations

import asyncio
import threading
import time

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
from zkmb.client_stub.listener import Listener
from zkmb.client_stub.upstream import ProvingUpstream
from zkmb.middlebox.flow import FlowConfig
from zkmb.middlebox.relay import Middlebox
from zkmb.middlebox.verifier import PolicyRoots, Verifier

from zkmb.resolver import Responder, make_server_context
from zkmb.resolver.server import DotResolver

from ..middlebox.conftest import NAMES, fake_check
from ..tls.conftest import STATIC
from .test_relay_e2e import FakeProver, policy22, token_frames  # noqa: F401

N_GEN = 520
GEN = {f"g{i}.example.test": f"10.{i // 250}.{i % 250}.1" for i in range(N_GEN)}
RESOLVER_STATIC = {**STATIC, **GEN}


class SlowProver(FakeProver):
    """FakeProver whose Q proof takes ``delay`` seconds for names starting with ``slow``: keeps queries in
    flight (proof being made) while a component is restarted."""

    delay = 1.0

    def q(self, pads, blinders, ct, policy, size):
        if b"slow" in self._plain(pads, ct):
            time.sleep(self.delay)
        return super().q(pads, blinders, ct, policy, size)

    @staticmethod
    def _plain(pads, ct) -> bytes:
        stream = b"".join(pads)
        return bytes(a ^ b for a, b in zip(ct, stream, strict=False))


class Resolver:
    """The embedded DoT resolver on its own loop/thread, startable on a fixed port and stoppable as a crash:
    the listener closes and every live connection is cut."""

    def __init__(self, cert_pair):
        self.ctx = make_server_context(*cert_pair)
        self.port = 0
        self.queries = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._res: DotResolver | None = None

    def start(self) -> int:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._res = DotResolver(Responder(static=RESOLVER_STATIC), self.ctx)
        fut = asyncio.run_coroutine_threadsafe(self._res.start("127.0.0.1", self.port), self._loop)
        self.port = fut.result(10)
        return self.port

    def stop(self) -> None:
        loop, res = self._loop, self._res
        if loop is None or res is None:
            return

        async def crash():
            await res.close()
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 3)

        asyncio.run_coroutine_threadsafe(crash(), loop).result(10)
        self.queries += res.queries
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5)
        loop.close()
        self._loop = self._res = None

    def total_queries(self) -> int:
        return self.queries + (self._res.queries if self._res is not None else 0)


async def _middlebox(upstream_port: int, policy, relay_port: int = 0, proof_port: int = 0, **kw):
    verifier = Verifier({n: n for n in NAMES}, PolicyRoots(policy.root), check=fake_check)
    mb = Middlebox(verifier, ("127.0.0.1", upstream_port), config=FlowConfig(), **kw)
    ports = await mb.start(("127.0.0.1", relay_port), ("127.0.0.1", proof_port))
    return mb, ports


async def _udp(port: int, name: str, rdtype: str = "A", timeout: float = 20):
    return await dns.asyncquery.udp(
        dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=timeout
    )


async def _tcp(port: int, name: str, rdtype: str = "A", timeout: float = 20):
    return await dns.asyncquery.tcp(
        dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=timeout
    )


def _addr(r) -> str:
    return r.answer[0][0].to_text() if r.answer else ""


async def _answered_eventually(port: int, names, deadline: float):
    """Query ``names`` one after another, retrying a name (new cache key each try is not needed: SERVFAIL is
    not cached) until it is answered or ``deadline`` passes; returns the answers."""
    out = []
    for name in names:
        while True:
            r = await _udp(port, name)
            if r.rcode() == dns.rcode.NOERROR:
                out.append(r)
                break
            assert time.monotonic() < deadline, f"{name} still {dns.rcode.to_text(r.rcode())} after restart"
            await asyncio.sleep(0.2)
    return out


def _upstream(cert_pair, relay_port, proof_port, policy, prover, pool_size=2):
    return ProvingUpstream(
        ("127.0.0.1", relay_port),
        ("127.0.0.1", proof_port),
        prover,
        policy,
        server_name="127.0.0.1",
        cafile=str(cert_pair[0]),
        pool_size=pool_size,
        answer_timeout=8,
        ready_timeout=10,
    )


async def _restart_scenario(cert_pair, policy, res: Resolver, which: str):
    mb, (relay_port, proof_port) = await _middlebox(res.port, policy)
    prover = SlowProver()
    up = _upstream(cert_pair, relay_port, proof_port, policy, prover)
    await up.start()
    lst = Listener(up, policy, port=0, upstream_timeout=12)
    udp, tcp = await lst.start()
    report: dict[str, object] = {}
    try:
        # 1. queries flow
        r = await _udp(udp, "www.example.test")
        assert r.rcode() == dns.rcode.NOERROR and _addr(r) == "192.0.2.1"
        r = await _tcp(tcp, "g0.example.test")
        assert _addr(r) == "10.0.0.1"
        idents_before = {c.ident for c in up.conns}
        co_before = len(up.timings.get("co", []))

        # 2. queries in flight (their Q proof being made) when the component goes down
        inflight = [
            asyncio.ensure_future(_udp(udp, f"slow{i}.example.test", timeout=30)) for i in range(3)
        ] + [asyncio.ensure_future(_tcp(tcp, f"slow{i}.example.test", "AAAA", timeout=30)) for i in range(3)]
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        if which == "middlebox":
            await mb.close()
        else:
            await asyncio.to_thread(res.stop)
        got = await asyncio.wait_for(asyncio.gather(*inflight), 15)
        report["servfail_s"] = time.monotonic() - t0
        assert all(g.rcode() == dns.rcode.SERVFAIL for g in got), [dns.rcode.to_text(g.rcode()) for g in got]

        # while it is down, new queries fail fast (no hang)
        t1 = time.monotonic()
        r = await _udp(udp, "g1.example.test", timeout=15)
        assert r.rcode() == dns.rcode.SERVFAIL
        report["down_query_s"] = time.monotonic() - t1

        # 3. restart on the same port(s); the stub reconnects and later queries are answered
        await asyncio.sleep(0.5)
        t2 = time.monotonic()
        if which == "middlebox":
            mb, ports = await _middlebox(res.port, policy, relay_port, proof_port)
            assert ports == (relay_port, proof_port)
        else:
            old = res.port
            await asyncio.to_thread(res.start)
            assert res.port == old
        answers = await _answered_eventually(
            udp, ["g1.example.test", "g2.example.test", "h3.example.test"], time.monotonic() + 25
        )
        report["recover_s"] = time.monotonic() - t2
        assert [_addr(a) for a in answers] == ["10.0.1.1", "10.0.2.1", "192.0.2.13"]
        r = await _tcp(tcp, "g3.example.test")
        assert _addr(r) == "10.0.3.1"
        new = {c.ident for c in up.conns if c.ready}
        assert new and not (new & idents_before), "queries must run on new connections"
        assert len(up.timings["co"]) > co_before, "a new CO proof for the new connection"
        return report
    finally:
        await lst.close()
        await up.close()
        await mb.close()


def test_middlebox_restart(cert_pair, policy22, token_frames):  # noqa: F811
    res = Resolver(cert_pair)
    res.start()
    try:
        t0 = time.monotonic()
        report = asyncio.run(asyncio.wait_for(_restart_scenario(cert_pair, policy22, res, "middlebox"), 60))
        print(f"middlebox restart: {report}, total {time.monotonic() - t0:.1f} s")
    finally:
        res.stop()
    assert report["servfail_s"] < 5.0 and report["down_query_s"] < 5.0


def test_resolver_restart(cert_pair, policy22, token_frames):  # noqa: F811
    res = Resolver(cert_pair)
    res.start()
    try:
        t0 = time.monotonic()
        report = asyncio.run(asyncio.wait_for(_restart_scenario(cert_pair, policy22, res, "resolver"), 60))
        print(f"resolver restart: {report}, total {time.monotonic() - t0:.1f} s")
    finally:
        res.stop()
    assert report["servfail_s"] < 5.0 and report["down_query_s"] < 5.0


def test_500_queries_20_clients(cert_pair, policy22, token_frames):  # noqa: F811
    n_clients, per_client = 20, 25
    total = n_clients * per_client

    async def body(res: Resolver):
        # stand-in proofs are instant, so one stub sends ~250 proof messages/s here, more than the
        # middlebox's default per-IP proof rate (200/s, excess dropped silently); real proofs cannot
        mb, (relay_port, proof_port) = await _middlebox(res.port, policy22, proof_rate=5000.0)
        up = _upstream(cert_pair, relay_port, proof_port, policy22, FakeProver(), pool_size=4)
        await up.start()
        lst = Listener(up, policy22, port=0, upstream_timeout=20)
        udp, tcp = await lst.start()
        try:

            async def client(c: int):
                out = []
                for i in range(per_client):
                    k = c * per_client + i
                    name = f"g{k}.example.test"
                    send = _tcp if (c + i) % 2 else _udp
                    r = await send(tcp if send is _tcp else udp, name, timeout=30)
                    out.append((k, r))
                return out

            t0 = time.monotonic()
            got = await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(n_clients))), 60)
            return got, time.monotonic() - t0, lst.stats
        finally:
            await lst.close()
            await up.close()
            await mb.close()

    res = Resolver(cert_pair)
    res.start()
    try:
        got, dt, stats = asyncio.run(body(res))
    finally:
        res.stop()
    flat = [x for g in got for x in g]
    print(
        f"{total} queries from {n_clients} clients in {dt:.1f} s ({total / dt:.0f} q/s); "
        f"servfail={stats.servfail}"
    )
    assert sorted(k for k, _ in flat) == list(range(total))  # each asked once, each answered once
    for k, r in flat:
        assert r.rcode() == dns.rcode.NOERROR, (k, dns.rcode.to_text(r.rcode()))
        assert len(r.answer) == 1 and len(r.answer[0]) == 1
        assert r.answer[0].name.to_text() == f"g{k}.example.test."
        assert r.answer[0].rdtype == dns.rdatatype.A and _addr(r) == GEN[f"g{k}.example.test"]
    assert res.queries == total  # none lost, none duplicated upstream
