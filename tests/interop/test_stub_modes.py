"""The real stub (Groth16 proofs) through a real middlebox to each real resolver at its defaults
(issue #20 item 1, issue #15 items 3-4).

- async mode: every resolver works at its default idle time-out, dnsdist's 2 s and Knot Resolver's
  10 s included (records leave at once; the proofs follow within the middlebox's deadline): A, AAAA
  and a > 1,200-byte answer, a blocked name never in the resolver's log, nobody cut or banned;
- strict mode behind a resolver that closes unused connections before the channel opening can be
  accepted (dnsdist, 2 s): one diagnosis naming the setting to raise, SERVFAIL at once while backing
  off, no reconnect loop, and the middlebox counts the closes;
- idle connections: Knot Resolver closes them after 10 s and the next query is answered all the same
  (async); unbound keeps a connection the stub keeps alive with its own queries, so a query after 35 s
  of silence needs no new channel opening (strict).
"""

from __future__ import annotations

import asyncio
import logging
import time

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from .resolvers import BLOCKED, WWW, ask_through_stub, diagnose, ede_codes, running_stub

pytestmark = [pytest.mark.needs_system, pytest.mark.slow]


@pytest.mark.parametrize("name", ["unbound", "bind", "knot", "dnsdist"])
def test_async_mode_works_with_every_resolver_at_its_defaults(
    start_resolver, start_middlebox, prover, interop_policy, name
):
    resolver = start_resolver(name)
    mb = start_middlebox(resolver, mode="async")
    questions = [(WWW, "A", "udp"), (WWW, "AAAA", "udp"), (WWW, "TXT", "tcp"), (BLOCKED, "A", "udp")]
    run = asyncio.run(ask_through_stub(mb, resolver, prover, interop_policy, questions, settle=60.0))
    a, aaaa, txt, blocked = run.responses
    why = diagnose(run, mb, resolver)
    assert all(r.rcode() == dns.rcode.NOERROR for r in (a, aaaa, txt)), why
    assert len(txt.to_wire()) > 1200
    assert blocked.rcode() == dns.rcode.NXDOMAIN and ede_codes(blocked) == [15]
    assert resolver.wait_queries(3) == [(WWW, "A"), (WWW, "AAAA"), (WWW, "TXT")]
    time.sleep(0.3)
    assert len(resolver.queries()) == 3  # the blocked name never reached the resolver
    assert run.mode == "async"
    assert mb.metric("zkmb_cuts_total") == 0 and mb.metric("zkmb_bans_total") == 0, mb.log_text()[-3000:]
    if name != "dnsdist":  # dnsdist may close the connection (2 s idle) before the proofs are checked
        assert mb.metric("zkmb_proofs_total", circuit="q_64", result="verified") == 3


class _SlowCo:
    """The real prover with every channel opening ``extra`` seconds longer: the CO must outlast
    dnsdist's 2 s idle time-out on any machine (with the IFMA kernels it was accepted in 1.8 s here,
    and the test below lost its premise)."""

    def __init__(self, inner, extra: float = 3.0):
        self._inner, self._extra = inner, extra

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def co_job(self, a):
        def gen():
            result = yield from self._inner.co_job(a)
            yield [lambda: time.sleep(self._extra)]
            return result

        return gen()


def test_strict_mode_behind_a_short_idle_time_out_is_diagnosed(
    start_resolver, start_middlebox, prover, interop_policy, caplog
):
    """dnsdist closes a connection unused for 2 s, before any channel opening is accepted (here one
    takes 3 s more than the proof: :class:`_SlowCo`): the stub says so once (with the setting to
    raise), backs off instead of reconnecting in a loop, and answers SERVFAIL at once meanwhile."""
    resolver = start_resolver("dnsdist")
    mb = start_middlebox(resolver, mode="strict")
    slow = _SlowCo(prover)

    async def body():
        async with running_stub(mb, resolver, slow, interop_policy, ready_timeout=60.0) as (
            lst,
            up,
            udp,
            _,
        ):
            q = dns.message.make_query(WWW, "A")
            first = await dns.asyncquery.udp(q, "127.0.0.1", port=udp, timeout=90)
            t0 = time.monotonic()
            second = await dns.asyncquery.udp(
                dns.message.make_query(WWW, "AAAA"), "127.0.0.1", port=udp, timeout=30
            )
            fast = time.monotonic() - t0
            await asyncio.sleep(6)
            return first, second, fast, up._counter

    with caplog.at_level(logging.INFO, logger="zkmb.stub.upstream"):
        first, second, fast, opened = asyncio.run(body())
    assert first.rcode() == dns.rcode.SERVFAIL and second.rcode() == dns.rcode.SERVFAIL
    assert fast < 1.0  # while backing off: at once, not after the stub's ready time-out
    diagnoses = [r.message for r in caplog.records if "idle time-out is shorter" in r.message]
    assert len(diagnoses) == 1 and "setTCPRecvTimeout" in diagnoses[0] and "async" in diagnoses[0]
    assert opened <= 3  # backing off (2 s, 4 s, ...), not reconnecting in a loop
    assert mb.metric("zkmb_resolver_closed_before_co_total") >= 1
    assert resolver.queries() == []


def test_idle_closes_survived_knot_async(start_resolver, start_middlebox, prover, interop_policy):
    """Knot Resolver closes connections unused for 10 s; queries 12 s apart are all answered."""
    resolver = start_resolver("knot")
    mb = start_middlebox(resolver, mode="async")
    questions = [(WWW, "A", "udp"), (WWW, "AAAA", "udp"), (WWW, "TXT", "tcp")]
    run = asyncio.run(ask_through_stub(mb, resolver, prover, interop_policy, questions, pause=12.0))
    assert all(r.rcode() == dns.rcode.NOERROR for r in run.responses), diagnose(run, mb, resolver)
    assert mb.metric("zkmb_bans_total") == 0


def test_idle_unbound_connection_kept_alive(start_resolver, start_middlebox, prover, interop_policy):
    """Strict mode, unbound at its default (30 s): the stub keeps its connection with proved queries of
    its own, so a query after 35 s of silence is answered on the same connection (no new CO)."""
    resolver = start_resolver("unbound")
    mb = start_middlebox(resolver, mode="strict")
    questions = [(WWW, "A", "udp"), (WWW, "AAAA", "udp")]
    run = asyncio.run(ask_through_stub(mb, resolver, prover, interop_policy, questions, pause=35.0))
    assert all(r.rcode() == dns.rcode.NOERROR for r in run.responses), diagnose(run, mb, resolver)
    assert len(run.timings.get("co", [])) == 1  # one channel opening for the whole test
    assert run.timings.get("keepalive")  # ... kept alive by the stub's own queries
    assert mb.metric("zkmb_proofs_total", circuit="co_chacha20", result="verified") == 1


def _busy_loops(n: int):
    import subprocess
    import sys

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def test_burst_of_30_names_strict_unbound(start_resolver, start_middlebox, prover, interop_policy):
    """Issue 15: a page load (30 distinct names at once) through the strict middlebox to unbound: every
    name answered by the resolver, none SERVFAIL (12-29 of 30 failed before)."""
    resolver = start_resolver("unbound")
    mb = start_middlebox(resolver, mode="strict")
    names = [f"n{i}.burst.example.test" for i in range(30)]

    async def body():
        async with running_stub(mb, resolver, prover, interop_policy) as (_, up, udp, _):
            await dns.asyncquery.udp(dns.message.make_query(WWW, "A"), "127.0.0.1", port=udp, timeout=120)
            await asyncio.sleep(3)  # the look-ahead PADs
            qs = [dns.message.make_query(n, "A") for n in names]
            sends = [dns.asyncquery.udp(q, "127.0.0.1", port=udp, timeout=60) for q in qs]
            return await asyncio.gather(*sends)

    rs = asyncio.run(body())
    assert [r.rcode() for r in rs].count(dns.rcode.SERVFAIL) == 0
    assert {n for n, _ in resolver.wait_queries(31)} >= set(names)


def test_busy_machine_strict_unbound(start_resolver, start_middlebox, prover, interop_policy):
    """Issue 15: with two busy-loop processes on the 2-core machine from before the stub starts, its
    channel opening meets the middlebox's default 20 s deadline and every query is answered (10 of
    10 failed before)."""
    resolver = start_resolver("unbound")
    mb = start_middlebox(resolver, mode="strict")
    busy = _busy_loops(2)
    try:
        questions = [(f"b{i}.busy.example.test", "A", "udp") for i in range(8)]
        run = asyncio.run(ask_through_stub(mb, resolver, prover, interop_policy, questions, pause=0.5))
    finally:
        for b in busy:
            b.kill()
            b.wait()
    assert [r.rcode() for r in run.responses].count(dns.rcode.SERVFAIL) == 0, diagnose(run, mb, resolver)
    assert mb.metric("zkmb_cuts_total") == 0
