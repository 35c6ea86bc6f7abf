"""Relay mode end to end on loopback: embedded resolver upstream, zkmb.tls DotClient, proof channel."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import dns.message
import pytest
from zkmb.circuits.public import co_public_inputs, pad_public_inputs, parse_channel
from zkmb.circuits.query import query_public_inputs, size_class
from zkmb.middlebox.relay import Middlebox

from zkmb.errors import ZkmbError
from zkmb.proofchannel import (
    Accepted,
    Announce,
    Announced,
    CoMsg,
    PadMsg,
    QMsg,
    from_wire,
    split_frame,
    to_wire,
)
from zkmb.tls import DotClient, TlsClientConfig

from ..tls.conftest import embedded
from .conftest import ROOT, FakeProof, running_relay


def _client(cert_pair, port):
    config = TlsClientConfig("127.0.0.1", cafile=str(cert_pair[0]))
    return DotClient("127.0.0.1", port, config, timeout=3)


class _Fake:
    """A stand-in for Groth16 proofs (see conftest.FakeProof): sends them in the documented frames."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, msg):
        self.sock.sendall(to_wire(msg))

    def recv(self):
        while (head := split_frame(self.buf)) is None:
            self.buf += self.sock.recv(4096)
        frame, self.buf = self.buf[: head[1]], self.buf[head[1] :]
        return from_wire(frame)


@pytest.fixture
def fake_frames(monkeypatch):
    """Let FakeProof through the codec: to_bytes/from_bytes carry a pickled stand-in instead of points."""
    import pickle

    from zkmb.groth16.proof import Proof

    monkeypatch.setattr(
        FakeProof, "to_bytes", lambda self: pickle.dumps(self).ljust(256, b"\0"), raising=False
    )
    monkeypatch.setattr(Proof, "from_bytes", classmethod(lambda cls, data: pickle.loads(data)))


def test_client_without_proofs_gets_nothing_through(mb_cert_pair, fake_verifier):
    with embedded(mb_cert_pair) as r, running_relay(fake_verifier, r.port, q_deadline=0.5) as (mb, (port, _)):
        c = _client(mb_cert_pair, port)
        c.connect()  # the handshake passes (it is admitted by SPEC §2)
        with pytest.raises((ZkmbError, OSError)):
            c.query(dns.message.make_query("www.example.test", "A"))
        c.close()
        time.sleep(0.2)
        assert not mb.conns


@pytest.mark.parametrize("pool", [False, True], ids=["inline", "pool"])
def test_query_with_proofs_passes(mb_cert_pair, fake_verifier, fake_frames, pool):
    with embedded(mb_cert_pair) as r, running_relay(fake_verifier, r.port, pool=pool) as (mb, (port, pport)):
        c = _client(mb_cert_pair, port)
        c.connect()
        cap = c.capture
        local = c._sock.getsockname()[:2]
        p = _Fake(pport)
        # a connection that does not exist / a wrong random: rejected
        p.send(Announce(tuple(local), ("127.0.0.1", port), bytes(32)))
        assert not isinstance(p.recv(), Announced)
        p.send(Announce(tuple(local), ("127.0.0.1", port), cap.client_random))
        assert isinstance(p.recv(), Announced)
        deadline = time.time() + 5
        while cap.client_finished_record is None and time.time() < deadline:
            time.sleep(0.01)
        view = parse_channel(cap.client_bytes, cap.server_bytes)
        p.send(CoMsg(7, FakeProof("co_chacha20", tuple(co_public_inputs(view, 7)))))
        assert isinstance(p.recv(), Accepted)
        for j in range(2):
            pub = tuple(pad_public_inputs(7, 0, j, 50 + j))
            p.send(PadMsg(0, j, 50 + j, FakeProof("pad_chacha20", pub)))
            assert isinstance(p.recv(), Accepted)
        out = {}
        t = threading.Thread(
            target=lambda: out.setdefault("r", c.query(dns.message.make_query("www.example.test", "A")))
        )
        t.start()
        while not cap.client_app_records and time.time() < deadline:
            time.sleep(0.01)
        raw = cap.client_app_records[0].raw
        inner = len(raw) - 21
        b = size_class(inner)
        pub = query_public_inputs([50, 51][: b // 64], raw[5 : 5 + inner], inner, ROOT, b)
        p.send(QMsg(0, FakeProof(f"q_{b}", tuple(pub))))
        assert isinstance(p.recv(), Accepted)
        t.join(5)
        assert out["r"].answer and out["r"].answer[0].to_text().endswith("192.0.2.1")
        c.close()


def test_rate_limited_proofs_are_answered_and_counted():
    """Over the per-IP proof rate: RATE_LIMITED (a Rejected, reason rate_limited) with a retry hint."""
    from zkmb.middlebox.metrics import Metrics
    from zkmb.middlebox.verifier import PolicyRoots, Verifier

    from zkmb.algebra.params import G1_GEN, G2_GEN
    from zkmb.groth16.proof import Proof
    from zkmb.proofchannel import RATE_LIMITED, RateLimited, Rejected

    now = [100.0]
    metrics = Metrics()
    verifier = Verifier({}, PolicyRoots(ROOT), check=lambda vk, pub, proof: False)
    proof = Proof.from_canonical(G1_GEN, G2_GEN, G1_GEN)

    async def body():
        mb = Middlebox(
            verifier, ("127.0.0.1", 9), clock=lambda: now[0], proof_rate=0.5, metrics=metrics
        )  # burst 1: one message, then one every 2 s
        _, pport = await mb.start(("127.0.0.1", 0), ("127.0.0.1", 0))
        try:
            r, w = await asyncio.open_connection("127.0.0.1", pport)
            w.write(to_wire(Announce(("127.0.0.1", 1), ("127.0.0.1", 853), bytes(32))))
            w.write(to_wire(QMsg(5, proof)))
            w.write(to_wire(PadMsg(6, 3, 1, proof)))
            out, buf = [], b""
            while len(out) < 3:
                buf += await asyncio.wait_for(r.read(4096), 5)
                while (head := split_frame(buf)) is not None:
                    out.append(from_wire(buf[: head[1]]))
                    buf = buf[head[1] :]
            now[0] += 2.0  # one token again
            w.write(to_wire(QMsg(7, proof)))
            while (head := split_frame(buf)) is None:
                buf += await asyncio.wait_for(r.read(4096), 5)
            out.append(from_wire(buf[: head[1]]))
            w.close()
            return out
        finally:
            await mb.close()

    ann, q, pad, later = asyncio.run(body())
    assert type(ann) is Rejected and ann.reason == "no such connection"
    assert q == RateLimited("q", 5, 0, RATE_LIMITED, 2000) and isinstance(q, Rejected)
    assert pad == RateLimited("pad", 6, 3, RATE_LIMITED, 2000)  # a refused message costs no token
    assert type(later) is Rejected and (later.kind, later.n) == ("q", 7)  # processed: not bound
    text = metrics.render()
    assert 'zkmb_proof_rate_limited_total{kind="pad"} 1' in text
    assert 'zkmb_proof_rate_limited_total{kind="q"} 1' in text


def test_stub_proof_loop_treats_rate_limited_as_rejection():
    """The client stub's answer loop (unchanged) resolves the waiting answer with the RateLimited."""
    from zkmb.client_stub.upstream import ProvedConnection

    from zkmb.proofchannel import RateLimited, Rejected

    async def body():
        conn = ProvedConnection.__new__(ProvedConnection)
        conn.ident, conn._answers = 1, {}
        fut = asyncio.get_running_loop().create_future()
        conn._answers[("q", 4, 0)] = fut
        reader = asyncio.StreamReader()
        reader.feed_data(to_wire(RateLimited("q", 4, 0, retry_after_ms=250)))
        task = asyncio.ensure_future(conn._proof_loop(reader))
        msg = await asyncio.wait_for(fut, 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return msg

    msg = asyncio.run(body())
    assert isinstance(msg, Rejected) and msg.reason == "rate_limited" and msg.retry_after_ms == 250


def test_ban_table_bounded(fake_verifier):
    now = [0.0]
    mb = Middlebox(fake_verifier, ("127.0.0.1", 9), clock=lambda: now[0], ban_seconds=10, max_bans=3)
    for i in range(3):
        now[0] += 1
        mb.ban(f"10.0.0.{i}")
    mb.ban("10.0.0.9")  # full, none expired: the ban ending soonest (10.0.0.0) goes
    assert set(mb.bans) == {"10.0.0.1", "10.0.0.2", "10.0.0.9"}
    now[0] += 100  # all expired: purged before the next one goes in
    mb.ban("10.0.0.7")
    assert set(mb.bans) == {"10.0.0.7"}
