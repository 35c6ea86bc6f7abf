"""Recorded real DoT sessions (embedded resolver + zkmb.tls client) and a verifier with stand-in proofs.

``FakeProof(public)`` verifies exactly for the public vector it names: the flow core must therefore
build, from the wire alone, the same public inputs the test derives independently from the capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

import pytest
from zkmb.middlebox.verifier import PolicyRoots, Verifier

from ..circuits.conftest import real_session

ROOT = 12345
OLD_ROOT = 999


@dataclass(frozen=True)
class FakeProof:
    circuit: str
    public: tuple


def fake_check(vk, public, proof) -> bool:
    return isinstance(proof, FakeProof) and proof.circuit == vk and tuple(public) == proof.public


NAMES = ["co_chacha20", "co_aes128gcm", "pad_chacha20", "pad_aes128gcm", "pads3_chacha20"] + [
    f"q_{b}" for b in (64, 128, 192, 320, 448)
]


@pytest.fixture
def fake_verifier():
    return Verifier({n: n for n in NAMES}, PolicyRoots(ROOT), check=fake_check)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(scope="session")
def mb_cert_pair(tmp_path_factory):
    from zkmb.resolver.certs import make_self_signed, write_pair

    return write_pair(tmp_path_factory.mktemp("mb-certs"), *make_self_signed())


@pytest.fixture(scope="session")
def recorded(mb_cert_pair):
    """Lazily recorded sessions keyed by (suite, hrr), each with three client application records."""
    cache: dict = {}

    def get(suite: str = "chacha20", hrr: bool = False):
        if (suite, hrr) not in cache:
            cache[(suite, hrr)] = real_session(mb_cert_pair, suite, hrr=hrr, n_queries=3)
        return cache[(suite, hrr)]

    return get


@contextlib.contextmanager
def running_relay(verifier, upstream_port: int, *, pool: bool = False, metrics=None, **cfg):
    """A relay-mode Middlebox on 127.0.0.1 (ephemeral relay and proof ports) running in its own event-loop
    thread, with a two-worker verification pool when ``pool``; yields ``(mb, (relay_port, proof_port))``."""
    from zkmb.middlebox.flow import FlowConfig
    from zkmb.middlebox.relay import Middlebox
    from zkmb.middlebox.workers import VerifyPool

    loop = asyncio.new_event_loop()
    mb = Middlebox(
        verifier,
        ("127.0.0.1", upstream_port),
        config=FlowConfig(**cfg),
        pool=VerifyPool(verifier, workers=2) if pool else None,
        metrics=metrics,
    )
    ports = loop.run_until_complete(mb.start(("127.0.0.1", 0), ("127.0.0.1", 0)))
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        yield mb, ports
    finally:
        asyncio.run_coroutine_threadsafe(mb.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()
