"""Relay mode with REAL Groth16 proofs (SPEC §3-§5, §7): verified in the worker pool, batched per circuit.

The demo's keys for co_chacha20, pad_block and q_64.  A zkmb.tls DoT client goes
through the relay; the test makes CO/PAD/Q proofs from the client's CapturedSession and sends them on
the proof channel.
"""

from __future__ import annotations

import socket
import threading
import time

import dns.message
import pytest
from zkmb.circuits.co import co_circuit
from zkmb.circuits.pad import pad_circuit
from zkmb.circuits.query import query_circuit
from zkmb.circuits.query_witness import QueryBlocked, query_assignment
from zkmb.circuits.witness import co_assignment, pad_assignment
from zkmb.middlebox.metrics import Metrics
from zkmb.middlebox.verifier import PolicyRoots, Verifier

from zkmb.errors import ZkmbError
from zkmb.groth16.prover import prove
from zkmb.policy import Kind, Rule, normalise, policy_from_rules
from zkmb.policy.rules import name_key
from zkmb.proofchannel import (
    Accepted,
    Announce,
    Announced,
    CoMsg,
    PadMsg,
    QMsg,
    Rejected,
    from_wire,
    split_frame,
    to_wire,
)
from zkmb.tls import DotClient, TlsClientConfig

from ..tls.conftest import embedded
from .conftest import running_relay

pytestmark = pytest.mark.slow

RULES = [("evil.com", Kind.EXACT), ("ads.example.org", Kind.SUBTREE), ("blocked.example.test", Kind.EXACT)]


@pytest.fixture(scope="session")
def real_keys():
    """(cs, pk, vk) per middlebox circuit name: the demo's keys (made once per machine, shared with the
    other tests that use them)."""
    from zkmb.circuits.keys import load_keys
    from zkmb.client_stub.demo import default_state_dir, prepare_keys

    key_dir = prepare_keys(default_state_dir(), out=lambda s: None, check=False)
    names = {"co_chacha20": "co_chacha20", "pad_chacha20": "pad_block", "q_64": "q_64"}
    pks = load_keys(key_dir, list(names.values()), "prover", against="manifest")
    vks = load_keys(key_dir, list(names.values()), "verifier", against="manifest")
    circuits = {"co_chacha20": co_circuit("chacha20"), "pad_chacha20": pad_circuit("chacha20")}
    circuits["q_64"] = query_circuit(64)
    return {n: (circuits[n], pks[reg], vks[reg]) for n, reg in names.items()}


@pytest.fixture(scope="session")
def e2e_policy():
    rs = [Rule(name_key(n), k, n, "test", i + 1) for i, (n, k) in enumerate(RULES)]
    return policy_from_rules(normalise(rs))


class _Channel:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""

    def send(self, msg):
        self.sock.sendall(to_wire(msg))

    def recv(self):
        while (head := split_frame(self.buf)) is None:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("proof channel closed")
            self.buf += data
        frame, self.buf = self.buf[: head[1]], self.buf[head[1] :]
        return from_wire(frame)


class _Prover:
    """Makes the client's CO / PAD / Q proofs from its CapturedSession (the client_stub's job)."""

    def __init__(self, keys, policy):
        self.keys, self.policy = keys, policy

    def _prove(self, name, assignment):
        cs, pk, _ = self.keys[name]
        return prove(pk, cs.solve(assignment), cs=cs)

    def co(self, cap):
        co = co_assignment(cap)
        self.client_keys = co.keys
        return CoMsg(co.keys.comm_k, self._prove("co_chacha20", co.assignment))

    def pad(self, n, j):
        pa = pad_assignment(self.client_keys, n, j)
        self.pads = getattr(self, "pads", {})
        self.pads[(n, j)] = pa
        return PadMsg(n, j, pa.comm_pad, self._prove("pad_chacha20", pa.assignment))

    def q(self, n, record_raw):
        inner = len(record_raw) - 5 - 16
        pa = self.pads[(n, 0)]
        qa = query_assignment(
            [pa.pad], record_raw[5 : 5 + inner], self.policy, blinders=[pa.blinder], size=64
        )
        return QMsg(n, self._prove("q_64", qa.assignment))


def _wait(pred, timeout=10.0):
    end = time.time() + timeout
    while not pred() and time.time() < end:
        time.sleep(0.01)
    return pred()


def _connect(cert_pair, port):
    config = TlsClientConfig("127.0.0.1", cafile=str(cert_pair[0]))
    c = DotClient("127.0.0.1", port, config, timeout=120)
    c.connect()
    return c


def _open_channel(mb_port, pport, c, prover):
    cap = c.capture
    p = _Channel(pport)
    p.send(Announce(tuple(c._sock.getsockname()[:2]), ("127.0.0.1", mb_port), cap.client_random))
    assert isinstance(p.recv(), Announced)
    assert _wait(lambda: cap.client_finished_record is not None)
    p.send(prover.co(cap))
    ans = p.recv()
    assert isinstance(ans, Accepted) and ans.kind == "co", ans
    p.send(prover.pad(0, 0))
    ans = p.recv()
    assert isinstance(ans, Accepted) and ans.kind == "pad", ans
    return p


def test_real_proofs_end_to_end(mb_cert_pair, real_keys, e2e_policy):
    verifier = Verifier({n: vk for n, (_, _, vk) in real_keys.items()}, PolicyRoots(e2e_policy.root))
    metrics = Metrics()
    with (
        embedded(mb_cert_pair) as r,
        running_relay(verifier, r.port, pool=True, metrics=metrics, co_deadline=600, q_deadline=20) as (
            mb,
            (port, pport),
        ),
    ):
        r._resolver.idle_timeout = 600  # CO proving on a shared CI machine takes a while
        prover = _Prover(real_keys, e2e_policy)

        # 1. an allowed name: CO, PAD and Q verify in the pool and the answer comes back
        c = _connect(mb_cert_pair, port)
        p = _open_channel(port, pport, c, prover)
        out = {}
        t = threading.Thread(
            target=lambda: out.setdefault("r", c.query(dns.message.make_query("www.example.test", "A")))
        )
        t.start()
        assert _wait(lambda: c.capture.client_app_records)
        first = prover.q(0, c.capture.client_app_records[0].raw)
        p.send(first)
        ans = p.recv()
        assert isinstance(ans, Accepted) and ans.kind == "q" and ans.n == 0, ans
        t.join(60)
        assert out["r"].answer and out["r"].answer[0].to_text().endswith("192.0.2.1")

        # 2. a blocked name cannot even be proven (the client refuses to build the witness)
        p.send(prover.pad(1, 0))
        assert isinstance(p.recv(), Accepted)
        pad = prover.pads[(1, 0)]
        wire = dns.message.make_query("blocked.example.test", "A").to_wire()
        plain = len(wire).to_bytes(2, "big") + wire + b"\x17"
        ct = bytes(a ^ b for a, b in zip(plain, pad.pad, strict=False))
        with pytest.raises(QueryBlocked):
            query_assignment([pad.pad], ct, e2e_policy, blinders=[pad.blinder], size=64)

        # 3. a valid proof for another record (record 0) offered for record 1: rejected; record 1 is
        #    never forwarded and the connection is cut at the deadline
        flow = next(iter(mb.conns.values())).flow
        err = {}

        def ask():
            try:
                c.query(dns.message.make_query("www.example.test", "AAAA"))
            except (ZkmbError, OSError) as e:
                err["e"] = e

        t = threading.Thread(target=ask)
        t.start()
        assert _wait(lambda: len(c.capture.client_app_records) == 2)
        p.send(QMsg(1, first.proof))
        ans = p.recv()
        assert isinstance(ans, Rejected) and ans.kind == "q" and ans.n == 1, ans
        t.join(60)
        assert "e" in err
        assert flow.closed == "no valid Q proof by the deadline"
        assert not any(d.what == "record" and d.n == 1 and d.action == "forward" for d in flow.decisions)
        c.close()
    text = metrics.render()
    for circuit in ("co_chacha20", "pad_chacha20", "q_64"):
        assert f'zkmb_proofs_total{{circuit="{circuit}",result="verified"}}' in text
    assert 'zkmb_proofs_total{circuit="q_64",result="failed"} 1' in text
    assert "zkmb_record_hold_seconds_count 1" in text


def test_async_mode_real_proofs_forward_then_cut_and_ban(mb_cert_pair, real_keys, e2e_policy):
    """SPEC §7 async mode with real Groth16 proofs: a record is forwarded before its proof and answered;
    its proof then verifies.  A record whose proof is invalid is forwarded too (the answer comes back:
    what async gives up), but once its deadline passes the connection is cut and the client address
    banned: its next connection is refused at once."""
    from zkmb.middlebox.flow import Mode

    verifier = Verifier({n: vk for n, (_, _, vk) in real_keys.items()}, PolicyRoots(e2e_policy.root))
    metrics = Metrics()
    with (
        embedded(mb_cert_pair) as r,
        running_relay(verifier, r.port, pool=True, metrics=metrics, mode=Mode.ASYNC, co_deadline=600) as (
            mb,
            (port, pport),
        ),
    ):
        r._resolver.idle_timeout = 600
        prover = _Prover(real_keys, e2e_policy)
        c = _connect(mb_cert_pair, port)
        p = _open_channel(port, pport, c, prover)
        flow = next(iter(mb.conns.values())).flow
        # 1. answered before its proof is sent; the proof then verifies
        first = c.query(dns.message.make_query("www.example.test", "A"))
        assert first.answer[0].to_text().endswith("192.0.2.1")
        assert [d.reason for d in flow.decisions if d.what == "record"] == ["async"]
        q0 = prover.q(0, c.capture.client_app_records[0].raw)
        p.send(q0)
        ans = p.recv()
        assert isinstance(ans, Accepted) and ans.kind == "q" and ans.n == 0, ans
        # 2. a record with an invalid proof (record 0's): forwarded and answered, rejected, then cut
        p.send(prover.pad(1, 0))
        assert isinstance(p.recv(), Accepted)
        second = c.query(dns.message.make_query("www.example.test", "AAAA"))
        assert second.rcode() == 0  # what async gives up: the answer came back before the proof
        p.send(QMsg(1, q0.proof))
        ans = p.recv()
        assert isinstance(ans, Rejected) and ans.kind == "q" and ans.n == 1, ans
        assert _wait(lambda: flow.closed is not None, 15)
        assert flow.closed == "no valid Q proof by the deadline" and flow.ban
        assert "127.0.0.1" in mb.bans
        c.close()
        # 3. banned: a new DoT connection from the same address is closed at once
        with pytest.raises((ZkmbError, OSError)):
            _connect(mb_cert_pair, port).query(dns.message.make_query("www.example.test", "A"))
    text = metrics.render()
    assert 'zkmb_bans_total{reason="no valid Q proof by the deadline"} 1' in text
    assert 'zkmb_cuts_total{mode="async",reason="no valid Q proof by the deadline"} 1' in text
    assert 'zkmb_connections_refused_total{reason="client banned"} 1' in text
