"""Fixtures of the resolver interop matrix (issue #20).

- ``start_resolver(name, **kw)``: a real resolver (:mod:`zkmb.resolver.daemons`) in this test's temporary
  directory, started and ready; stopped after the test, and the test fails if one is still running.
- ``resolver``: the same with the server's defaults, parametrised over the four servers
  (``@pytest.mark.parametrize("resolver", [...], indirect=True)`` narrows it).
- ``demo_keys`` / ``interop_policy`` / ``policy_file`` / ``prover``: what the middlebox and the stub need
  (the demo's cached keys, a one-rule policy blocking ``blocked.test``).
- ``start_middlebox(resolver, mode="strict")``: a real ``zkmb middlebox`` relay in front of it.

A stub test is then a few lines::

    def test_x(start_resolver, start_middlebox, prover, interop_policy):
        res = start_resolver("knot")
        mb = start_middlebox(res, mode="async")

        async def body():
            async with running_stub(mb, res, prover, interop_policy) as (lst, up, udp, tcp):
                return await dns.asyncquery.udp(dns.message.make_query(WWW, "A"), "127.0.0.1", port=udp)

        r = asyncio.run(body())
"""

from __future__ import annotations

import pytest

from zkmb.resolver.daemons import DAEMONS

from ..conftest import require
from .resolvers import KEYS, RESOLVERS, MiddleboxProcess, small_policy


def require_daemon(name: str) -> None:
    cls = DAEMONS[name]
    require(
        cls.available(), f"{cls.executable} is needed for the interop matrix (apt-get install {cls.package})"
    )


@pytest.fixture
def start_resolver(tmp_path):
    started = []

    def start(name: str, **kw):
        require_daemon(name)
        daemon = DAEMONS[name](tmp_path / f"{name}-{len(started)}", **kw)
        started.append(daemon)
        daemon.start()
        return daemon

    yield start
    for d in started:
        d.stop()
    left = [d.describe() for d in started if d.running]
    assert not left, f"still running after the test: {left}"


@pytest.fixture(params=RESOLVERS)
def resolver(request, start_resolver):
    return start_resolver(request.param)


@pytest.fixture(scope="session")
def demo_keys():
    """The demo's key pairs (``~/.cache/zkmb/demo/keys``), generated on first use (~1 min, CO setup).
    The SRS check of these keys is the demo test's (tests/client_stub/test_demo_e2e.py)."""
    from zkmb.client_stub.demo import default_state_dir, prepare_keys

    return prepare_keys(default_state_dir(), KEYS, out=lambda s: None, check=False)


@pytest.fixture(scope="session")
def interop_policy():
    return small_policy()


@pytest.fixture(scope="session")
def policy_file(interop_policy, tmp_path_factory):
    path = tmp_path_factory.mktemp("interop-policy") / "policy.zkmbp"
    interop_policy.write(path)
    return path


@pytest.fixture(scope="session")
def prover(demo_keys, tmp_path_factory):
    """The stub's Groth16 prover (ChaCha20, size class 64), warmed up: its circuits compiled and one PAD
    proof made (numba kernels loaded), so that a test's first CO proof costs only its proving time.
    (The stub compiles a circuit on its first proof: ~12 s for CO on a busy 2-core machine, inside the
    middlebox's CO deadline.)"""
    from zkmb.circuits.witness import co_assignment
    from zkmb.client_stub.prover import Groth16Prover

    from zkmb.resolver import BackgroundResolver, Responder, make_server_context
    from zkmb.resolver.certs import make_self_signed, write_pair
    from zkmb.tls import DotClient, TlsClientConfig

    p = Groth16Prover.from_dir(demo_keys, sizes=(64,))
    p.warm()
    cert, key = write_pair(tmp_path_factory.mktemp("warm-up"), *make_self_signed())
    with BackgroundResolver(Responder(static={}), make_server_context(cert, key)) as r:
        with DotClient("127.0.0.1", r.port, TlsClientConfig("127.0.0.1", cafile=str(cert)), timeout=10) as c:
            keys = co_assignment(c.capture).keys
    p.pad(keys, 0, 0)
    return p


@pytest.fixture
def start_middlebox(tmp_path, demo_keys, policy_file):
    started: list[MiddleboxProcess] = []

    def start(daemon, mode: str = "strict", **kw) -> MiddleboxProcess:
        work = tmp_path / f"middlebox-{len(started)}"
        mb = MiddleboxProcess(work, (daemon.host, daemon.port), demo_keys, policy_file, mode, **kw)
        started.append(mb)
        return mb.start()

    yield start
    for mb in started:
        mb.stop()
    assert not [mb for mb in started if mb.running], "a middlebox is still running after the test"
