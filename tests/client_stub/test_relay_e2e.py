"""The stub end to end through the middlebox relay to the embedded resolver, with stand-in proofs.

The stand-in prover builds the real CO/PAD/Q assignments and sends, instead of a Groth16 proof, a token
naming (circuit, public vector) that the middlebox's verifier accepts only if its own public inputs,
derived from the wire, are the same: the whole pipeline (record numbers, padding to L = B, pads kept
ahead, release order, proof channel) is exercised without proving cost.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import dns.asyncquery
import dns.edns
import dns.message
import dns.rcode
import pytest
from zkmb.circuits.query_witness import query_assignment
from zkmb.circuits.witness import pad_assignment
from zkmb.client_stub.listener import Listener
from zkmb.client_stub.upstream import ProvingUpstream
from zkmb.middlebox.flow import FlowConfig
from zkmb.middlebox.relay import Middlebox
from zkmb.middlebox.verifier import PolicyRoots, Verifier

from zkmb.policy import policy_from_rules
from zkmb.policy.normalise import normalise
from zkmb.policy.rules import Kind, Rule, name_key

from ..middlebox.conftest import NAMES, FakeProof, fake_check
from ..tls.conftest import embedded

REGISTRY: dict[bytes, FakeProof] = {}


class Token:
    def __init__(self, circuit, public):
        self.data = secrets.token_bytes(256)
        REGISTRY[self.data] = FakeProof(circuit, tuple(public))

    def to_bytes(self):
        return self.data


class FakeProver:
    suites = ("chacha20",)
    sizes = (64, 128)

    def co_proof(self, a):
        return Token(f"co_{a.suite.name}", a.public)

    def pad(self, keys, n, j):
        a = pad_assignment(keys, n, j)
        return a, Token("pad_chacha20", a.public)

    def q(self, pads, blinders, ct, policy, size):
        a = query_assignment(pads, ct, policy, blinders=blinders, size=size)
        return Token(f"q_{size}", a.public)


@pytest.fixture(scope="module")
def policy22():
    rules = [("evil.test", Kind.SUBTREE)]
    return policy_from_rules(normalise(Rule(name_key(n), k, n, "t", 1) for n, k in rules))


@pytest.fixture
def token_frames(monkeypatch):
    from zkmb.groth16.proof import Proof

    monkeypatch.setattr(Proof, "from_bytes", classmethod(lambda cls, data: REGISTRY[bytes(data)]))


async def _stack(
    cert_pair,
    upstream_port,
    policy,
    fn,
    *,
    prover=None,
    pool_size=2,
    listener_timeout=25,
    mb_config=None,
    **upstream_kw,
):
    verifier = Verifier({n: n for n in NAMES}, PolicyRoots(policy.root), check=fake_check)
    mb = Middlebox(verifier, ("127.0.0.1", upstream_port), config=mb_config or FlowConfig())
    relay_port, proof_port = await mb.start(("127.0.0.1", 0), ("127.0.0.1", 0))
    up = ProvingUpstream(
        ("127.0.0.1", relay_port),
        ("127.0.0.1", proof_port),
        prover or FakeProver(),
        policy,
        server_name="127.0.0.1",
        cafile=str(cert_pair[0]),
        pool_size=pool_size,
        answer_timeout=10,
        ready_timeout=20,
        **upstream_kw,
    )
    await up.start()
    lst = Listener(up, policy, port=0, upstream_timeout=listener_timeout)
    udp, tcp = await lst.start()
    try:
        return await fn(udp, tcp, mb, up)
    finally:
        await lst.close()
        await up.close()
        await mb.close()


def test_allowed_and_blocked_through_relay(cert_pair, policy22, token_frames):
    async def body(udp, tcp, mb, up):
        r1 = await dns.asyncquery.udp(
            dns.message.make_query("www.example.test", "A"), "127.0.0.1", port=udp, timeout=25
        )
        long = "h3.example.test"
        r2 = await dns.asyncquery.tcp(dns.message.make_query(long, "A"), "127.0.0.1", port=tcp, timeout=25)
        r3 = await dns.asyncquery.udp(
            dns.message.make_query("a.evil.test", "A"), "127.0.0.1", port=udp, timeout=5
        )
        return r1, r2, r3

    with embedded(cert_pair) as res:
        r1, r2, r3 = asyncio.run(_stack(cert_pair, res.port, policy22, body))
        assert r1.rcode() == dns.rcode.NOERROR and r1.answer[0][0].to_text() == "192.0.2.1"
        assert r2.answer[0][0].to_text() == "192.0.2.13"
        assert r3.rcode() == dns.rcode.NXDOMAIN
        assert res.queries == 2  # the blocked name never reached the resolver


def test_many_queries_through_relay(cert_pair, policy22, token_frames):
    n_clients, per_client = 4, 5

    async def body(udp, tcp, mb, up):
        async def client(c):
            out = []
            for i in range(per_client):
                name = f"h{(c * per_client + i) % 8}.example.test"
                q = dns.message.make_query(name, "A" if i % 2 else "AAAA")
                r = await dns.asyncquery.tcp(q, "127.0.0.1", port=tcp, timeout=25)
                out.append((name, r.rcode()))
            return out

        return await asyncio.gather(*(client(c) for c in range(n_clients)))

    with embedded(cert_pair) as res:
        got = asyncio.run(_stack(cert_pair, res.port, policy22, body))
    flat = [x for g in got for x in g]
    assert len(flat) == n_clients * per_client
    assert all(rc == dns.rcode.NOERROR for _, rc in flat)


def test_middlebox_unreachable_servfail_fast(cert_pair, policy22):
    async def body():
        up = ProvingUpstream(
            ("127.0.0.1", 9), ("127.0.0.1", 9), FakeProver(), policy22, server_name="127.0.0.1"
        )
        await up.start()
        lst = Listener(up, policy22, port=0, upstream_timeout=5)
        udp, _ = await lst.start()
        try:
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            r = await dns.asyncquery.udp(
                dns.message.make_query("www.example.test", "A"), "127.0.0.1", port=udp, timeout=6
            )
            return r, time.monotonic() - t0
        finally:
            await lst.close()
            await up.close()

    r, dt = asyncio.run(body())
    assert r.rcode() == dns.rcode.SERVFAIL and dt < 2.0


@pytest.mark.needs_system
def test_stub_through_relay_to_unbound(tmp_path, policy22, token_frames):
    """The real stub and the middlebox in relay mode in front of unbound (a real DoT resolver, local data
    only): an allowed name is answered, a name unbound does not have is its NXDOMAIN (no EDE), a blocked
    name is refused locally (NXDOMAIN + EDE 15) and never reaches the middlebox or unbound."""
    from tests.tls.test_unbound import unbound

    def ede(r):
        return [o.code for o in r.options if isinstance(o, dns.edns.EDEOption)]

    async def body(udp, tcp, mb, up):
        r1 = await dns.asyncquery.udp(
            dns.message.make_query("www.example.test", "A"), "127.0.0.1", port=udp, timeout=25
        )
        r2 = await dns.asyncquery.tcp(
            dns.message.make_query("h3.example.test", "AAAA"), "127.0.0.1", port=tcp, timeout=25
        )
        r3 = await dns.asyncquery.udp(
            dns.message.make_query("nosuch.example.test", "A"), "127.0.0.1", port=udp, timeout=25
        )
        upstream_before = up.timings.get("upstream", [])[:]
        r4 = await dns.asyncquery.udp(
            dns.message.make_query("a.evil.test", "A", use_edns=0), "127.0.0.1", port=udp, timeout=5
        )
        return r1, r2, r3, r4, len(upstream_before), len(up.timings.get("upstream", [])), mb

    with unbound(tmp_path, "chacha20") as (port, cert):
        r1, r2, r3, r4, n_before, n_after, mb = asyncio.run(
            _stack((cert, None), port, policy22, body, pool_size=1)
        )
    assert r1.rcode() == dns.rcode.NOERROR and [rd.to_text() for rd in r1.answer[0]] == ["192.0.2.1"]
    assert r2.rcode() == dns.rcode.NOERROR and r2.answer[0][0].to_text() == "2001:db8::3"
    assert r3.rcode() == dns.rcode.NXDOMAIN and ede(r3) == []  # unbound's own answer, proven and relayed
    assert r4.rcode() == dns.rcode.NXDOMAIN and ede(r4) == [15]  # refused by the stub itself
    assert n_before == n_after == 3  # the blocked name never went upstream
    assert mb._counter == 1  # one relay flow carried all three
