"""The demo's stack end to end with REAL Groth16 proofs: stub -> middlebox relay -> embedded resolver.

The demo's own keys (:func:`prepare_keys` in its state directory: made once per machine, shared with
the other tests that use them), checked against their SRS as a client does.  The policy is a small
one; the tree has the production depth.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest
from zkmb.client_stub.demo import DemoStack, default_state_dir, prepare_keys, run_demo
from zkmb.middlebox.flow import FlowConfig

from zkmb.policy import Kind, Rule, normalise, policy_from_rules
from zkmb.policy.rules import name_key
from zkmb.resolver import ensure_certificate

pytestmark = pytest.mark.slow  # ~35-55 s measured on the shared 2-core machine, mostly CO setup

RULES = [("blocked.test", Kind.SUBTREE), ("evil.example.com", Kind.EXACT)]


@pytest.fixture(scope="session")
def demo_state(tmp_path_factory):
    """(key dir, cert, cert key): the demo's own key directory (shared with the other tests that use the
    demo keys, made once per machine) with the SRS check every client runs (verdicts cached), and a
    certificate in a temporary directory."""
    key_dir = prepare_keys(default_state_dir(), out=lambda s: None)
    cert, key = ensure_certificate(tmp_path_factory.mktemp("demo-cert"))
    return key_dir, cert, key


@pytest.fixture(scope="module")
def small_policy():
    rules = [Rule(name_key(n), k, n, "test", i + 1) for i, (n, k) in enumerate(RULES)]
    return policy_from_rules(normalise(rules))


def _stack(demo_state, policy):
    key_dir, cert, key = demo_state
    # generous deadlines: CO proving on a loaded CI machine can take far longer than on a quiet one
    return DemoStack(
        policy, key_dir, cert, key, sizes=(64,), flow_config=FlowConfig(co_deadline=300), resolver_idle=600
    )


def _plain_dot(port: int, cafile, name: str, timeout: float) -> dns.message.Message:
    """An ordinary DoT client (Python ssl, no proofs at all) through the relay."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return dns.query.tls(dns.message.make_query(name, "A"), "127.0.0.1", timeout=timeout, sock=s)


def test_demo_real_proofs(demo_state, small_policy):
    async def body():
        async with _stack(demo_state, small_policy) as stack:
            res = await run_demo(stack, "example.com", "www.blocked.test", out=lambda s: None, timed=2)
            verified_q = stack.upstream.timings.get("q", [])
            served = stack.resolver.queries
            loop = asyncio.get_running_loop()
            try:
                got = await loop.run_in_executor(
                    None, _plain_dot, stack.relay_port, demo_state[1], "example.com", 15
                )
            except (dns.exception.DNSException, EOFError, OSError, ssl.SSLError) as e:
                got = e
            return res, verified_q, served, stack.resolver.queries, got

    res, _, served, served_after, plain = asyncio.run(body())
    # the allowed name: answered through the relay, every record proven (CO, PAD, Q) and verified
    assert res.allowed_rcode == dns.rcode.NOERROR
    assert res.allowed_answer == ["192.0.2.1"]
    assert res.co_prove_s is not None
    assert len(res.stub_s) == 2 and len(res.direct_s) == 2
    # the blocked name: NXDOMAIN with EDE 15 (Blocked), and nothing left the stub
    assert res.blocked_rcode == dns.rcode.NXDOMAIN
    assert 15 in res.blocked_ede
    assert res.blocked_sent == 0
    assert res.ok
    # a DoT client without proofs gets no answer, and its query never reaches the resolver
    assert not isinstance(plain, dns.message.Message), plain
    assert served_after == served
