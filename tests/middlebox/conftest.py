"""Recorded real DoT sessions (embedded resolver + zkmb.tls client) and a verifier with stand-in proofs.

``FakeProof(public)`` verifies exactly for the public vector it names: the flow core must therefore
build, from the wire alone, the same public inputs the test derives independently from the capture.
"""

from __future__ import annotations

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


NAMES = ["co_chacha20", "co_aes128gcm", "pad_chacha20", "pad_aes128gcm"] + [
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
