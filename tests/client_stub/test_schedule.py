"""How the stub schedules proofs and connections (stand-in proofs, real relay, embedded resolver):
PADs a query waits for are promoted, one channel opening at a time, a replacement connection's CO
escalates, a dead connection's proofs are dropped, a slow query never poisons its connection, a query
whose connection dies is retried on another."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import dns.asyncquery
import dns.message
import dns.rcode
import pytest
from zkmb.circuits.witness import pad_assignment

from ..tls.conftest import embedded
from .test_relay_e2e import FakeProver, _stack, policy22, token_frames  # noqa: F401


class SlowPadProver(FakeProver):
    """PAD proofs take ``pad_s``: look-ahead cannot keep up with back-to-back queries."""

    pad_s = 0.15

    def pad(self, keys, n, j):
        time.sleep(self.pad_s)
        return super().pad(keys, n, j)


class SlowCoProver(FakeProver):
    """A CO takes ``co_s`` (a real one takes seconds); records which COs ran to the end."""

    co_s = 1.0

    def __init__(self):
        self.finished: list[int] = []
        self.started = 0
        self.lock = threading.Lock()

    def co_proof(self, a):
        with self.lock:
            self.started += 1
        time.sleep(self.co_s)
        with self.lock:
            self.finished.append(a.keys.comm_k)
        return super().co_proof(a)


class SlowQueryProver(FakeProver):
    """Q proofs of names containing ``slow`` take ``q_s`` seconds."""

    q_s = 3.0

    def q(self, pads, blinders, ct, policy, size):
        plain = bytes(a ^ b for a, b in zip(ct, b"".join(pads), strict=False))
        if b"slow" in plain:
            time.sleep(self.q_s)
        return super().q(pads, blinders, ct, policy, size)


async def _udp(port: int, name: str, rdtype: str = "A", timeout: float = 20):
    q = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=timeout)


def _answered(r) -> bool:
    """Answered by the resolver (it refuses names outside its static data), not the stub's SERVFAIL."""
    return r.rcode() != dns.rcode.SERVFAIL


async def _until(pred, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return pred()


def test_back_to_back_queries_promote_pads(cert_pair, policy22, token_frames):  # noqa: F811
    async def body(udp, tcp, mb, up):
        out = [await _udp(udp, f"h{i % 4}.example.test", "A" if i < 4 else "AAAA") for i in range(6)]
        return out, dict(up.timings)

    with embedded(cert_pair) as res:
        stack = _stack(cert_pair, res.port, policy22, body, prover=SlowPadProver(), pool_size=1, pad_ahead=1)
        rs, timings = asyncio.run(stack)
    assert all(r.rcode() == dns.rcode.NOERROR for r in rs)
    assert timings.get("pad_promoted")  # some query waited for a look-ahead PAD, which then went first
    assert len(timings["upstream"]) == 6


def test_one_channel_opening_at_a_time(cert_pair, policy22, token_frames):  # noqa: F811
    """At start-up the second handshake (which starts the middlebox's CO clock) waits for the first
    CO: COs are never proven side by side, each is on time."""
    prover = SlowCoProver()

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: sum(c.co_accepted.is_set() for c in up.conns) == 2)
        a, b = sorted(up.conns, key=lambda c: c.ident)
        return a.handshake_at, up.co_at(a), b.handshake_at, up.co_at(b)

    with embedded(cert_pair) as res:
        h1, co1, h2, co2 = asyncio.run(
            _stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=2)
        )
    assert h1 < co1 <= h2 < co2
    assert co1 - h1 < 2.5 and co2 - h2 < 2.5  # each CO took its own time only


def test_dead_connections_co_is_dropped_and_replacement_escalates(cert_pair, policy22, token_frames):  # noqa: F811
    """A connection that dies while its CO is queued gets no proof; the replacement's CO (another
    connection serving) waits behind queries, then becomes the most urgent after co_escalate_s."""
    prover = SlowCoProver()
    prover.co_s = 0.6

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: sum(c.co_accepted.is_set() for c in up.conns) == 2)
        started = prover.started
        victim = max(up.conns, key=lambda c: c.ident)
        victim.fail("test: connection replaced")
        assert await _until(lambda: any(c.ident > victim.ident and c._co_job is not None for c in up.conns))
        new = next(c for c in up.conns if c.ident > victim.ident)
        new.fail("test: this one dies too, its CO still queued or running")
        assert await _until(lambda: sum(c.co_accepted.is_set() for c in up.conns) == 2, 20)
        answers = [await _udp(udp, f"x{i}.example.test") for i in range(3)]
        return started, answers, dict(up.timings)

    with embedded(cert_pair) as res:
        stack = _stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=2, co_escalate_s=0.2)
        started, answers, timings = asyncio.run(stack)
    assert all(_answered(r) for r in answers), [dns.rcode.to_text(r.rcode()) for r in answers]
    assert started == 2
    assert prover.started <= 4  # the second victim's CO never ran, or ran once: no CO is retried for it
    assert len(timings.get("co_escalated", [])) >= 1  # a replacement CO became the most urgent


def test_slow_query_does_not_poison_its_connection(cert_pair, policy22, token_frames):  # noqa: F811
    """The listener gives up on a query whose proof takes longer than its time-out (SERVFAIL), but the
    record number it took is still proven and sent: the connection stays, later queries are answered
    on it, no new channel opening (issue 15: a cancelled query closed the connection).  (Records
    leave in order, so on one connection the next records wait for the slow one: the pool's other
    connections take the next queries, test_query_retried_... and the burst tests.)"""
    prover = SlowQueryProver()

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: any(c.co_accepted.is_set() for c in up.conns))
        first = [c.ident for c in up.conns]
        up_list = up.timings.get("co", [])
        cos = len(up_list)
        slow = await _udp(udp, "slow.example.test", timeout=10)
        await asyncio.sleep(prover.q_s)  # the slow record's proof ends, the record is sent
        later = [await _udp(udp, f"after{i}.example.test") for i in range(3)]
        last = await _udp(udp, "last.example.test")
        return slow, later, last, first, [c.ident for c in up.conns], cos, len(up.timings.get("co", []))

    with embedded(cert_pair) as res:
        stack = _stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=1, listener_timeout=1.0)
        slow, later, last, before, after, cos0, cos1 = asyncio.run(stack)
    assert slow.rcode() == dns.rcode.SERVFAIL
    assert all(_answered(r) for r in later) and _answered(last)
    assert before == after and cos0 == cos1  # the same connection, no reconnect


def test_query_retried_when_its_connection_dies(cert_pair, policy22, token_frames):  # noqa: F811
    """A query on a connection that dies before its answer (here: the middlebox cuts it) is retried on
    the other connection and answered."""
    prover = SlowQueryProver()
    prover.q_s = 0.5

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: sum(c.co_accepted.is_set() for c in up.conns) == 2)
        task = asyncio.ensure_future(_udp(udp, "slow.example.test"))
        assert await _until(lambda: any(c.in_flight for c in up.conns), 5)
        busy = next(c for c in up.conns if c.in_flight)
        busy.fail("test: the middlebox cut the connection")
        return await task, dict(up.timings)

    with embedded(cert_pair) as res:
        r, timings = asyncio.run(_stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=2))
    assert _answered(r)
    assert timings.get("retried")


def test_async_mode_followed_records_leave_before_proofs(cert_pair, policy22, token_frames):  # noqa: F811
    """The middlebox announces async mode; the stub follows it without configuration: records are
    forwarded at once (decision reason ``async``), proofs follow, nothing is cut or banned."""
    from zkmb.middlebox.flow import FlowConfig, Mode

    async def body(udp, tcp, mb, up):
        answers = await asyncio.gather(*(_udp(udp, f"h{i}.example.test") for i in range(8)))
        assert await _until(lambda: not any(c._unproven for c in up.conns), 10)
        forwarded = []
        for c in mb.conns.values():
            forwarded += [d for d in c.flow.decisions if d.what == "record" and d.action == "forward"]
        return answers, up.mode, forwarded, dict(mb.bans), dict(up.timings)

    with embedded(cert_pair) as res:
        stack = _stack(
            cert_pair, res.port, policy22, body, pool_size=2, mb_config=FlowConfig(mode=Mode.ASYNC)
        )
        answers, mode, forwarded, bans, timings = asyncio.run(stack)
    assert mode == "async"
    assert all(r.rcode() == dns.rcode.NOERROR for r in answers)
    assert forwarded and all(d.reason == "async" for d in forwarded)
    assert not bans and len(timings["async_proof"]) >= 8


class BatchingProver(FakeProver):
    """Proves look-ahead PADs three blocks at a time (as the Groth16 prover with its batch key)."""

    def pads_job(self, keys, blocks):
        from zkmb.circuits.witness import pads_assignment
        from zkmb.client_stub.scheduler import blocking_job

        from .test_relay_e2e import Token

        if len(blocks) != 3:
            return None

        def prove():
            a = pads_assignment(keys, blocks)
            return a, Token("pads3_chacha20", a.public)

        return blocking_job(prove)


def test_look_ahead_pads_go_in_batches(cert_pair, policy22, token_frames, monkeypatch):  # noqa: F811
    """With a batch key the look-ahead PADs are proven three at a time and sent as one PADS message;
    the middlebox checks each block; queries find their pads ready."""
    from zkmb.middlebox.flow import Flow

    batches, singles = [], []
    real_pads, real_pad = Flow.pads, Flow.pad
    monkeypatch.setattr(Flow, "pads", lambda self, b, p: batches.append(b) or real_pads(self, b, p))
    monkeypatch.setattr(Flow, "pad", lambda self, *a: singles.append(a[:2]) or real_pad(self, *a))

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: any(c.co_accepted.is_set() for c in up.conns))
        out = [await _udp(udp, f"h{i}.example.test") for i in range(6)]
        flows = [c.flow for c in mb.conns.values()]
        return out, dict(up.timings), flows

    with embedded(cert_pair) as res:
        stack = _stack(cert_pair, res.port, policy22, body, prover=BatchingProver(), pool_size=1, pad_ahead=9)
        out, timings, flows = asyncio.run(stack)
    assert all(r.rcode() == dns.rcode.NOERROR for r in out)
    assert len(batches) >= 3 and all(len(b) == 3 for b in batches)
    assert len(singles) <= 2  # only while fewer than a batch was ready ahead
    assert not timings.get("pad_promoted")  # the queries found their pads ready


def _pad_accepted(c, n: int) -> bool:
    """Whether PAD block 0 of record ``n`` is proven and accepted on connection ``c`` (kept ahead)."""
    p = c._pads.get((n, 0))
    return (
        p is not None
        and p.task is not None
        and p.task.done()
        and not p.task.cancelled()
        and (p.task.exception() is None)
    )


@pytest.fixture
def submissions(monkeypatch) -> list[tuple[int, str]]:
    """(priority, name) of every job submitted to a proving pool, in order."""
    from zkmb.client_stub.scheduler import ProvingPool

    seen: list[tuple[int, str]] = []
    real_submit = ProvingPool.submit

    def submit(self, priority, gen, name=""):
        seen.append((priority, name))
        return real_submit(self, priority, gen, name)

    monkeypatch.setattr(ProvingPool, "submit", submit)
    return seen


def test_refill_is_submitted_after_the_querys_proof(cert_pair, policy22, token_frames, submissions):  # noqa: F811
    """A query's record is refilled ahead (a PAD for a later record) only after its own Q proof is in
    the pool, in strict and async mode: background work is never taken by a free worker between the
    query's arrival and its proof's submission (it took a worker and the GIL beside the Q proof)."""
    from zkmb.client_stub.scheduler import AHEAD, QUERY
    from zkmb.middlebox.flow import FlowConfig, Mode

    submitted = submissions

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: any(c.co_accepted.is_set() for c in up.conns))
        c = next(c for c in up.conns if c.co_accepted.is_set())
        assert await _until(lambda: all(_pad_accepted(c, n) for n in range(c._next_n, c._next_n + 3)))
        await asyncio.sleep(0.2)
        del submitted[:]
        out = []
        for i in range(3):
            out.append(await _udp(udp, f"h{i}.example.test"))
            await asyncio.sleep(0.3)
        return out

    for mode in (Mode.STRICT, Mode.ASYNC):
        with embedded(cert_pair) as res:
            stack = _stack(
                cert_pair, res.port, policy22, body, pool_size=1, pad_ahead=3, mb_config=FlowConfig(mode=mode)
            )
            out = asyncio.run(stack)
        assert all(r.rcode() == dns.rcode.NOERROR for r in out)
        order = [(p, name) for p, name in submitted if p in (QUERY, AHEAD)]
        queries = [i for i, (p, _) in enumerate(order) if p == QUERY]
        refills = [i for i, (p, _) in enumerate(order) if p == AHEAD]
        assert len(queries) >= 3 and len(refills) >= 3, order
        assert order[0][0] == QUERY, order  # the first query's proof before any refill
        for k, q in enumerate(queries):  # each refill follows the query proof it refills for
            assert sum(r < q for r in refills) <= k, (mode, order)
        submitted.clear()


def test_async_late_records_q_proof_is_submitted_urgent(cert_pair, policy22, token_frames, submissions):  # noqa: F811
    """Async mode: a record past 40 % of its deadline has its proofs made before anything else, the
    Q proof too when it is submitted only after that moment (its PAD was late): submitted at
    QUERY, it queued behind later records' proofs and an honest stub under load was cut and banned."""
    from zkmb.client_stub.scheduler import URGENT
    from zkmb.middlebox.flow import FlowConfig, Mode

    submitted = submissions
    prover = SlowPadProver()
    prover.pad_s = 1.0  # past 40 % of the 2 s deadline before the pad's value is known

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: any(c.co_accepted.is_set() for c in up.conns))
        del submitted[:]
        out = await _udp(udp, "h1.example.test")
        assert await _until(lambda: not any(c._unproven for c in up.conns), 10)
        return out, dict(mb.bans)

    cfg = FlowConfig(mode=Mode.ASYNC, async_q_deadline=2.0)
    with embedded(cert_pair) as res:
        stack = _stack(
            cert_pair, res.port, policy22, body, prover=prover, pool_size=1, pad_ahead=0, mb_config=cfg
        )
        out, bans = asyncio.run(stack)
    assert out.rcode() == dns.rcode.NOERROR and not bans
    q = [p for p, name in submitted if name.startswith("q")]
    assert q == [URGENT], submitted  # not QUERY


class StepPadProver(FakeProver):
    """PAD proofs (as jobs, taking an assignment the stub made) and Q proofs each take ``dt`` s."""

    dt = 0.4

    def __init__(self):
        self.given = 0

    def pad_job(self, keys, n, j, *, assignment=None):
        from zkmb.client_stub.scheduler import blocking_job

        from .test_relay_e2e import Token

        def prove():
            time.sleep(self.dt)
            a = pad_assignment(keys, n, j) if assignment is None else assignment
            self.given += assignment is not None
            return a, Token("pad_chacha20", a.public)

        return blocking_job(prove)

    def q(self, pads, blinders, ct, policy, size):
        time.sleep(self.dt)
        return super().q(pads, blinders, ct, policy, size)


def test_a_needed_pad_is_proven_beside_its_query(cert_pair, policy22, token_frames):  # noqa: F811
    """A block no look-ahead covers (here: every block, pad_ahead=0) gets its pad and blinder from the
    stub at once, so the Q proof runs beside the PAD proof: the answer takes about one proof time, not
    two, and the middlebox accepts both (the Q proof commits to the PAD proof's pad)."""
    prover = StepPadProver()

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: any(c.co_accepted.is_set() for c in up.conns))
        t0 = time.perf_counter()
        r = await _udp(udp, "h1.example.test")
        return r, time.perf_counter() - t0

    with embedded(cert_pair) as res:
        r, took = asyncio.run(
            _stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=1, pad_ahead=0)
        )
    assert r.rcode() == dns.rcode.NOERROR
    assert prover.given >= 1
    assert took < 2 * prover.dt - 0.1, took


class BatchingStepProver(StepPadProver):
    """StepPadProver with a batch key: three PAD blocks per proof, taking an assignment the stub made."""

    dt = 0.05

    def __init__(self):
        super().__init__()
        self.batches_given = 0

    def pads_job(self, keys, blocks, *, assignment=None):
        from zkmb.circuits.witness import pads_assignment
        from zkmb.client_stub.scheduler import blocking_job

        from .test_relay_e2e import Token

        if len(blocks) != 3:
            return None

        def prove():
            time.sleep(self.dt)
            a = pads_assignment(keys, blocks) if assignment is None else assignment
            self.batches_given += assignment is not None
            return a, Token("pads3_chacha20", a.public)

        return blocking_job(prove)


def test_a_burst_needs_its_pads_in_batches(cert_pair, policy22, token_frames, monkeypatch):  # noqa: F811
    """A burst of class-128 queries with no look-ahead: the blocks they need now are proven three per
    proof (pads and blinders fixed by the stub, so the Q proofs start at once), the middlebox checks
    every block, and every query is answered."""
    from zkmb.middlebox.flow import Flow

    batches = []
    real_pads = Flow.pads
    monkeypatch.setattr(Flow, "pads", lambda self, b, p: batches.append(b) or real_pads(self, b, p))
    prover = BatchingStepProver()
    long = "a-long-label-that-pushes-the-query-into-class-128"

    async def body(udp, tcp, mb, up):
        assert await _until(lambda: any(c.co_accepted.is_set() for c in up.conns))
        out = await asyncio.gather(*(_udp(udp, f"{long}.h{i}.example.test") for i in range(6)))
        return out, dict(up.timings)

    with embedded(cert_pair) as res:
        out, timings = asyncio.run(
            _stack(cert_pair, res.port, policy22, body, prover=prover, pool_size=1, pad_ahead=0)
        )
    assert all(_answered(r) for r in out)
    assert len(timings.get("q_128", [])) == 6  # every query was class 128: two blocks each
    assert prover.batches_given >= 2 and len(timings["pads_needed_batched"]) == prover.batches_given
    assert len(batches) >= 2 and all(len(b) == 3 for b in batches)


def test_keepalive_margin_follows_proof_times(policy22):  # noqa: F811
    """A keep-alive goes 4 s before the resolver's idle time-out runs out, earlier when query proofs
    are slow (ten times the slowest recent one), never before half the time-out; the user counts as
    active for that long after a query."""
    from zkmb.client_stub.upstream import ProvingUpstream

    up = ProvingUpstream(("127.0.0.1", 1), ("127.0.0.1", 2), FakeProver(), policy22, server_name="x")
    assert up.keepalive_after() == 26.0
    up.timings["q_64"] = [0.1, 0.2]
    assert up.keepalive_after() == 26.0
    up.timings["q_128"] = [0.6]
    assert abs(up.keepalive_after() - 24.0) < 1e-9
    up.timings["q_64"].append(2.0)
    assert up.keepalive_after() == 15.0
    up.timings["q_64"] += [0.1] * 5  # only the last five of each class count
    assert abs(up.keepalive_after() - 24.0) < 1e-9
    up.timings["pad"] = [9.0]  # not a query proof
    assert abs(up.keepalive_after() - 24.0) < 1e-9
    up._last_user -= 25.0
    assert not up._active()


def _pacing_stub(q_cpu: float, records: list[tuple[int, float]], now: float, workers: int = 2):
    """A stand-in ProvingUpstream (only what async pacing reads) whose one async connection has the
    unproven records ``(n, sent_at)``, every PAD proven ahead and its CO accepted long ago."""
    from types import SimpleNamespace

    from zkmb.client_stub.upstream import ProvingUpstream

    conn = SimpleNamespace(
        ident=1,
        closed=False,
        is_async=True,
        _unproven={n: SimpleNamespace(sent_at=sent, jobs=[], size=64) for n, sent in records},
        _next_n=max((n for n, _ in records), default=0) + 1,
        pad_work=lambda n, k, pad_s, seen: 0.0,
        enforcement=SimpleNamespace(record_deadline_ms=3000),
    )
    up = SimpleNamespace(
        timings={"q_cpu": [q_cpu] * 20},
        pool=_HoldCounter(workers),
        conns=[conn],
        _co_at={1: now - 60},
        async_budget=0.5,
        _proven=asyncio.Event(),
        _q_fresh_from=0,
        timing=lambda what, seconds: None,
    )
    up._async_backlog_s = lambda new: ProvingUpstream._async_backlog_s(up, new)
    up._wait_for_room = lambda c, deadline: ProvingUpstream._wait_for_room(up, c, deadline)
    return up, conn


class _HoldCounter:
    """A stand-in pool: no load, ``workers`` workers, and the background holds it was given
    (``held`` now, ``peak`` at most)."""

    def __init__(self, workers: int):
        self.workers, self.held, self.peak = workers, 0, 0

    def stretch(self) -> float:
        return 1.0

    @contextlib.contextmanager
    def tables_held(self):
        self.held += 1
        self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            self.held -= 1


def test_async_pacing_projects_each_records_proof():
    """Async pacing sends a record when its proof is projected within the budget (1.5 s of the 3 s
    deadline) and stops only when an earlier record is projected late.  Regression: the rule "oldest
    unproven record under 40 % of the deadline" refused every record of a burst's second half (each
    admitted with up to 1.5 s of work ahead of it is 1.2 s old long before its proof is done), so the
    last ones waited for the whole first half: 2.8 s for 30 names instead of 1.3 s (measured)."""
    from zkmb.client_stub.upstream import ProvingUpstream, UpstreamError

    now = time.monotonic()
    # a burst in flight: one record sent 1.25 s ago, 13 sent over the last second; 0.16 s of work each
    recs = [(1, now - 1.25)] + [(2 + i, now - 1.0 + i * 0.075) for i in range(13)]
    up, conn = _pacing_stub(0.16, recs, now)
    need, worst = ProvingUpstream._async_backlog_s(up, conn)
    assert need == pytest.approx(15 * 0.16 / 2)  # every unproven record and the new one, over two workers
    # the oldest is done after its own work (1.25 + 0.08 s), the new one after all of it (1.2 s)
    assert abs(worst - max(1.25 + 0.08, 1.0 - 12 * 0.075 + 14 * 0.08, 1.2)) < 0.01
    asyncio.run(asyncio.wait_for(ProvingUpstream._async_room(up, conn, time.monotonic() + 1), 0.5))

    # the same with twice the work per record: the new record's proof is projected at 2.4 s
    up, conn = _pacing_stub(0.32, recs, now)
    with_more = ProvingUpstream._async_backlog_s(up, conn)[0]
    assert with_more > 0.5 * 3.0
    with pytest.raises(UpstreamError, match="behind"):
        asyncio.run(ProvingUpstream._async_room(up, conn, time.monotonic() + 0.2))
    # while it waited, MSM table steps were held off (it waits for proofs), and no longer
    assert up.pool.peak == 1 and up.pool.held == 0

    # a little work left but one record already 2.5 s old (the machine got slower): wait
    up, conn = _pacing_stub(0.05, [(1, now - 2.5), (2, now - 0.1)], now)
    need, worst = ProvingUpstream._async_backlog_s(up, conn)
    assert need < 0.5 * 3.0 and worst > 0.8 * 3.0
    with pytest.raises(UpstreamError, match="behind"):
        asyncio.run(ProvingUpstream._async_room(up, conn, time.monotonic() + 0.2))


def test_async_pacing_counts_proof_work_done_and_fresh_costs():
    """The projection counts a record's Q proof less the CPU it has had (nothing once it is made), and
    judges the cost of a query proof by those made since the MSM tables came in (a burst admitted on the
    costs from before them waited for room it had: 0.22-0.29 s for 30 names instead of 0.16 s)."""
    from types import SimpleNamespace

    from zkmb.client_stub.upstream import ProvingUpstream

    now = time.monotonic()
    up, conn = _pacing_stub(0.1, [(1, now - 0.05), (2, now - 0.04), (3, now - 0.03)], now)
    conn._unproven[1].jobs = [SimpleNamespace(done=True, cpu_s=0.1)]  # made, waiting for its ACCEPT
    conn._unproven[2].jobs = [SimpleNamespace(done=False, cpu_s=0.06)]  # 40 ms left
    conn._unproven[3].jobs = [SimpleNamespace(done=False, cpu_s=0.5)]  # over its estimate: none left
    need, _ = ProvingUpstream._async_backlog_s(up, None)
    assert need == pytest.approx(0.04 / 2)

    up, conn = _pacing_stub(0.1, [(1, now)], now)
    up.timings["q_cpu"] = [0.14] * 12 + [0.09, 0.1, 0.095]  # tables in after the 12th
    up._q_fresh_from = 12
    assert ProvingUpstream._async_backlog_s(up, None)[0] == pytest.approx(0.095 / 2)
    up._q_fresh_from = 15  # none made since: the older ones still count
    assert ProvingUpstream._async_backlog_s(up, None)[0] == pytest.approx(0.14 / 2)


def test_async_proving_waits_for_the_answers_in_flight():
    """Async mode starts a record's proof when every answer in flight on its connection is in (not
    only its own: a burst's later answers are not read beside the proofs), or at the head start's end
    when one never comes."""
    from types import SimpleNamespace

    from zkmb.client_stub.upstream import ProvedConnection

    async def body():
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(3)]
        conn = SimpleNamespace(_responses={i: SimpleNamespace(response=f) for i, f in enumerate(futs)})
        t0 = time.monotonic()
        futs[0].set_result(None)  # its own answer is in at once
        loop.call_later(0.1, futs[1].set_result, None)
        loop.call_later(0.2, futs[2].set_result, None)
        await ProvedConnection._answers_first(conn, t0 + 5)
        waited = time.monotonic() - t0
        assert all(f.done() for f in futs) and 0.19 <= waited < 2
        late = loop.create_future()  # an answer that never comes: the head start bounds the wait
        conn._responses = {9: SimpleNamespace(response=late)}
        t0 = time.monotonic()
        await ProvedConnection._answers_first(conn, t0 + 0.15)
        assert 0.14 <= time.monotonic() - t0 < 2 and not late.done()

    asyncio.run(body())


def test_async_proving_starts_after_the_answer_is_written():
    """With ``reply_s``, a record's proving starts after the listener wrote its answer out, though the
    answer travels through several awaits (time-outs, the upstream call, the listener's handler) before
    it is written: the proof's Python work never delays the answer."""
    from types import SimpleNamespace

    from zkmb.client_stub.upstream import ProvedConnection

    async def body():
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        conn = SimpleNamespace(_responses={1: SimpleNamespace(response=answer)})
        events: list[str] = []

        async def listener():  # the path the real answer takes: three nested waits, then the write
            async def upstream():
                return await asyncio.wait_for(asyncio.shield(answer), 5)

            await asyncio.wait_for(upstream(), 5)
            events.append("written")

        async def drive(reply_s):
            await ProvedConnection._answers_first(conn, time.monotonic() + 5, reply_s)
            events.append("proving")

        for reply_s, first in ((0.0, "proving"), (0.003, "written")):
            answer = loop.create_future()
            conn._responses = {1: SimpleNamespace(response=answer)}
            events.clear()
            tasks = [asyncio.ensure_future(drive(reply_s)), asyncio.ensure_future(listener())]
            await asyncio.sleep(0.01)
            answer.set_result(None)
            await asyncio.gather(*tasks)
            assert events[0] == first, (reply_s, events)

    asyncio.run(body())


def test_async_room_wait_ends_before_the_listener_gives_up():
    """A query waits for async room almost as long as the listener waits for it (a burst on a busy
    machine needs it), but never so long that its record is sent after the listener answered SERVFAIL."""
    import inspect

    from zkmb.client_stub.listener import Listener
    from zkmb.client_stub.upstream import ProvingUpstream

    wait = inspect.signature(ProvingUpstream).parameters["async_wait_s"].default
    listener = inspect.signature(Listener).parameters["upstream_timeout"].default
    assert listener - 1.0 <= wait < listener


def test_async_pacing_charges_a_pad_batch_once_and_whole():
    """What a record's PAD blocks still cost: nothing once proven; a block in a look-ahead batch that
    is not done waits for the whole batch (three blocks' CPU less what the batch has had), counted
    once for all its records; a block nobody proves yet, one block.  Charging one block per record
    let a busy machine's burst reach 2.6 s of the 3 s deadline (measured)."""
    from types import SimpleNamespace

    from zkmb.client_stub.prover import PAD_BATCH
    from zkmb.client_stub.upstream import ProvedConnection, _Pad

    def job(done: bool, cpu: float):
        return SimpleNamespace(done=done, cpu_s=cpu)

    loop = asyncio.new_event_loop()
    proven_values = loop.create_future()
    proven_values.set_result((b"", 0))
    batch = job(False, 0.1)
    conn = SimpleNamespace(
        _pads={
            (1, 0): _Pad(job=job(True, 0.2), values=proven_values),  # proven
            (2, 0): _Pad(job=batch, shared=True),  # a batch of three, 0.1 s of CPU in
            (3, 0): _Pad(job=batch, shared=True),
            (4, 0): _Pad(job=batch, shared=True),
            (5, 0): _Pad(job=job(False, 0.05)),  # a single block under way
        }
    )
    work = lambda n, k, seen: ProvedConnection.pad_work(conn, n, k, 0.2, seen)  # noqa: E731
    seen: set[int] = set()
    assert work(1, 1, seen) == 0.0
    assert work(2, 1, seen) == pytest.approx(PAD_BATCH * 0.2 - 0.1)  # the whole batch's rest
    assert work(3, 1, seen) == 0.0 and work(4, 1, seen) == 0.0  # counted once
    assert work(5, 1, seen) == pytest.approx(0.15)
    assert work(6, 1, seen) == pytest.approx(0.2)  # nobody proves it yet
    assert work(1, 2, set()) == pytest.approx(0.2)  # a class-128 record's second block: none yet
    loop.close()
