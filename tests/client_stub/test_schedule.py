"""The stub's proving scheduler: Q work first, look-ahead only when no Q is queued or running, PADs a
query waits for promoted, and the CO of a further connection in the background process (escalated when
it is slow)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import dns.asyncquery
import dns.message
import dns.rcode
from zkmb.client_stub.upstream import BACKGROUND, CRITICAL, ProofScheduler

from ..tls.conftest import embedded
from .test_relay_e2e import FakeProver, _stack, policy22, token_frames  # noqa: F401


def test_critical_jobs_start_first_and_block_background():
    sched = ProofScheduler(workers=2)
    order: list[str] = []
    gate = threading.Event()

    def job(name, wait=None):
        order.append(f"start {name}")
        if wait is not None:
            wait.wait(5)
        order.append(f"end {name}")
        return name

    try:
        first = sched.submit(CRITICAL, job, "q0", gate)  # holds a worker until released
        time.sleep(0.05)
        bg = [sched.submit(BACKGROUND, job, f"pad{i}") for i in range(3)]
        q1 = sched.submit(CRITICAL, job, "q1")
        assert q1.result(5) == "q1"  # the second worker takes the critical job
        time.sleep(0.1)
        assert not any(f.done() for f in bg)  # q0 still running: no background job may start
        gate.set()
        assert [f.result(5) for f in bg] == ["pad0", "pad1", "pad2"]
        assert first.result(5) == "q0"
        assert order.index("start q1") < order.index("start pad0")
        assert order.index("end q0") < order.index("start pad0")
        assert order[-2:] == ["start pad2", "end pad2"]  # background in submission order, one at a time
        assert getattr(q1, "queued_s", None) is not None
    finally:
        sched.shutdown()


def test_queued_background_cancelled_on_shutdown():
    sched = ProofScheduler(workers=1)
    gate, started = threading.Event(), threading.Event()

    def hold():
        started.set()
        return gate.wait(5)

    running = sched.submit(CRITICAL, hold)
    assert started.wait(5)
    queued = sched.submit(BACKGROUND, lambda: 1)
    sched.shutdown()
    gate.set()
    assert running.result(5) is True
    assert queued.cancelled()


class SlowPadProver(FakeProver):
    """PAD proofs take ``pad_s``: look-ahead cannot keep up with back-to-back queries."""

    pad_s = 0.15

    def pad(self, keys, n, j):
        time.sleep(self.pad_s)
        return super().pad(keys, n, j)


def test_back_to_back_queries_promote_pads(cert_pair, policy22, token_frames):  # noqa: F811
    async def body(udp, tcp, mb, up):
        out = []
        for i in range(6):  # no gap: every query needs a PAD the look-ahead has not made yet
            q = dns.message.make_query(f"h{i % 4}.example.test", "A" if i < 4 else "AAAA")
            out.append(await dns.asyncquery.udp(q, "127.0.0.1", port=udp, timeout=20))
        return out, dict(up.timings)

    with embedded(cert_pair) as res:
        rs, timings = asyncio.run(
            _stack(cert_pair, res.port, policy22, body, prover=SlowPadProver(), pool_size=1)
        )
    assert all(r.rcode() == dns.rcode.NOERROR for r in rs)
    assert timings.get("pad_promoted")  # some query waited for its PAD, which then went first
    assert len(timings["q_queue"]) == 6 and len(timings["upstream"]) == 6


class StuckBackground:
    """A background process that never finishes (a starved niced process)."""

    def __init__(self):
        self.calls = 0

    def co(self, session):
        self.calls += 1
        return concurrent.futures.Future()

    def close(self):
        pass


class BackgroundCoProver(FakeProver):
    def __init__(self):
        self.bg = StuckBackground()

    def spawn_background(self):
        return self.bg

    def co(self, session):
        # a CO takes seconds for real; an instant stand-in would let the first connection be ready
        # before the second one's handshake ends, making that start-up CO a "replacement" (a race)
        time.sleep(1.0)
        return super().co(session)


def test_replacement_co_goes_background_and_escalates(cert_pair, policy22, token_frames):  # noqa: F811
    """Start-up COs are proven in-process; a replacement connection's CO (another one serving) goes to the
    background process, and when that is too slow it is proven in-process as well."""
    prover = BackgroundCoProver()

    async def until_two_ready(up):
        deadline = time.monotonic() + 15
        while sum(c.ready for c in up.conns) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return sum(c.ready for c in up.conns)

    async def body(udp, tcp, mb, up):
        first = await until_two_ready(up)
        calls_at_start = prover.bg.calls
        up.conns[0].fail("test: connection replaced")
        await asyncio.sleep(0.1)
        again = await until_two_ready(up)
        r = await dns.asyncquery.udp(
            dns.message.make_query("www.example.test", "A"), "127.0.0.1", port=udp, timeout=20
        )
        return r, first, calls_at_start, again, dict(up.timings)

    with embedded(cert_pair) as res:
        stack = _stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=2, co_escalate_s=0.3)
        r, first, calls_at_start, again, timings = asyncio.run(stack)
    assert r.rcode() == dns.rcode.NOERROR
    assert first == 2 and calls_at_start == 0  # start-up: both in-process
    assert again == 2 and prover.bg.calls == 1  # the replacement's CO went to the background process ...
    assert len(timings.get("co_escalated", [])) == 1  # ... which was too slow: proven in-process as well
    assert len(timings["co"]) == 3
