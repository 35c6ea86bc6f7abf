"""Bridge mode without a kernel: synthetic packets of a recorded real session through the NFQUEUE adapter."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from zkmb.circuits.query import size_class
from zkmb.middlebox.bridge import Bridge
from zkmb.middlebox.cli import serve
from zkmb.middlebox.flow import Flow, FlowConfig, resolver_set
from zkmb.middlebox.tcp import ACK, FIN, PSH, RST, SYN, build_packet, parse_packet

from zkmb.errors import InvalidInput

from .test_flow import COMM_K, _co, _pads, _q, _split

C, S = ("10.253.0.1", 40000), ("10.253.0.2", 853)
CISN, SISN = 0xFFFFFFF0, 0x12345678


class Pkt:
    def __init__(self, raw: bytes):
        self.raw, self.verdict = raw, None

    def get_payload(self) -> bytes:
        return self.raw

    def accept(self):
        assert self.verdict is None, "two verdicts"
        self.verdict = "accept"

    def drop(self):
        assert self.verdict is None, "two verdicts"
        self.verdict = "drop"


class Session:
    """A bridge and the packets of one connection: client bytes at offset ``co``, server at ``so``."""

    def __init__(self, verifier, clock, **cfg):
        self.sent: list[bytes] = []
        cfg.setdefault("resolvers", frozenset({S[0]}))
        self.b = Bridge(
            verifier, config=FlowConfig(**cfg), clock=clock, inject=lambda raw, dst: self.sent.append(raw)
        )
        self.co = self.so = 0

    def feed(self, raw: bytes) -> Pkt:
        p = Pkt(raw)
        self.b.packet(p)
        return p

    def client(self, data: bytes = b"", flags=ACK | PSH, off=None) -> Pkt:
        off = self.co if off is None else off
        self.co = max(self.co, off + len(data))
        return self.feed(build_packet(C, S, CISN + 1 + off, SISN + 1 + self.so, flags, data))

    def server(self, data: bytes = b"", flags=ACK | PSH) -> Pkt:
        p = self.feed(build_packet(S, C, SISN + 1 + self.so, CISN + 1 + self.co, flags, data))
        self.so += len(data)
        return p

    def open(self):
        assert self.feed(build_packet(C, S, CISN, 0, SYN)).verdict == "accept"
        assert self.feed(build_packet(S, C, SISN, CISN + 1, SYN | ACK)).verdict == "accept"
        assert self.client(b"", ACK).verdict == "accept"

    @property
    def conn(self):
        return self.b.conns[(C, S)]

    def sync(self):
        self.b._sync((C, S), self.conn)


def _handshake(s: Session, cap):
    view, hs, apps = _split(cap)
    ch_len = 5 + int.from_bytes(hs[3:5], "big")
    first = s.client(hs[:100])  # a partial ClientHello: held until the whole message is checked
    assert first.verdict is None
    rest = s.client(hs[100:ch_len])
    assert first.verdict == rest.verdict == "accept"
    assert s.server(bytes(cap.server_bytes)).verdict == "accept"  # never held
    fin = s.client(hs[ch_len:])
    assert fin.verdict == "accept"
    return view, apps


@pytest.fixture
def session(fake_verifier, clock):
    return Session(fake_verifier, clock)


def test_records_pass_only_once_verified(recorded, session):
    s, cap = session, recorded("chacha20")
    s.open()
    view, apps = _handshake(s, cap)
    p0 = s.client(apps[0])
    p1a, p1b = s.client(apps[1][:30]), s.client(apps[1][30:])
    assert [p.verdict for p in (p0, p1a, p1b)] == [None] * 3
    assert s.client(apps[0], off=s.co - len(apps[1]) - len(apps[0])).verdict == "drop"  # dup, held
    flow = s.conn.flow
    flow.co(COMM_K, _co(view, "chacha20"))
    pads = [_pads(flow, "chacha20", n, size_class(len(apps[n]) - 21) // 64) for n in range(2)]
    flow.q(1, _q(apps[1], pads[1]))
    s.sync()
    assert [p.verdict for p in (p0, p1a, p1b)] == [None] * 3  # in order: record 1 waits for 0
    flow.q(0, _q(apps[0], pads[0]))
    s.sync()
    assert [p.verdict for p in (p0, p1a, p1b)] == ["accept"] * 3
    # an identical retransmission of released bytes passes (the resolver may have lost it)
    assert s.client(apps[1][30:], off=s.co - len(apps[1]) + 30).verdict == "accept"
    assert s.server(b"\x17\x03\x03\x00\x20" + b"a" * 32).verdict == "accept"
    # FIN after every byte was released: passes, the teardown is not a block
    assert s.client(b"", ACK | FIN).verdict == "accept"
    assert s.server(b"", ACK | FIN).verdict == "accept"
    assert s.client(b"", ACK, off=s.co + 1).verdict == "accept"
    assert s.sent == [] and not s.conn.blocked


def test_out_of_order_and_different_retransmission_block(recorded, session):
    s, cap = session, recorded("chacha20")
    s.open()
    _, apps = _handshake(s, cap)
    base = s.co
    late = s.client(apps[0][40:], off=base + 40)  # ahead of a gap: held
    assert late.verdict is None
    early = s.client(apps[0][:40], off=base)
    assert early.verdict is None  # the record is whole now, but unverified
    forged = bytes([apps[0][45] ^ 1])
    bad = s.client(forged, off=base + 45)  # a retransmission with different bytes
    assert bad.verdict == "drop" and late.verdict == early.verdict == "drop"
    assert s.conn.blocked and "differs" in s.conn.flow.closed
    rsts = [parse_packet(r) for r in s.sent]
    assert {(r.src, r.dst) for r in rsts} == {(S, C), (C, S)} and all(r.flags & RST for r in rsts)
    to_server = next(r for r in rsts if r.dst == S)
    assert to_server.seq == (CISN + 1 + base) % (1 << 32)  # exactly what the resolver expects next
    assert s.server(b"x" * 10).verdict == "drop" and s.client(b"", ACK).verdict == "drop"


def test_deadline_blocks_unproven_record(recorded, fake_verifier, clock):
    s = Session(fake_verifier, clock, q_deadline=2.0)
    s.open()
    _, apps = _handshake(s, recorded("chacha20"))
    p = s.client(apps[0])
    clock.t += 30
    s.b.tick()
    assert p.verdict == "drop" and s.conn.blocked and len(s.sent) == 2


@pytest.mark.parametrize(
    "raw, why",
    [
        (lambda: build_packet(C, S, CISN + 1, 0, ACK | 0x20, b"urgent"), "URG"),
        (lambda: build_packet(C, S, CISN + 1, 0, SYN, b"data"), "SYN data"),
        (lambda: build_packet(C, S, CISN + 1, 0, ACK, b"data")[:-1] + b"\x00", "checksum"),
    ],
)
def test_refused_packets_are_dropped_and_unknown_flows_too(session, raw, why):
    s = session
    assert s.feed(raw()).verdict == "drop"
    assert s.client(b"x").verdict == "drop"  # no SYN seen: nothing to normalise against
    s.open()
    assert s.feed(raw()).verdict == "drop"


def test_partial_overlap_dropped_not_blocked(recorded, session):
    s = session
    s.open()
    hs = _split(recorded("chacha20"))[1]
    s.client(hs[:50])
    assert s.client(hs[40:80], off=40).verdict == "drop" and not s.conn.blocked
    assert s.client(hs[50:80]).verdict is None


def test_held_packets_bounded_and_port_reuse_after_clean_close(recorded, fake_verifier, clock):
    s = Session(fake_verifier, clock)
    s.b.max_held = 3
    s.open()
    _, apps = _handshake(s, recorded("chacha20"))
    held = [s.client(apps[0][i : i + 10]) for i in range(0, 30, 10)]
    assert [p.verdict for p in held] == [None] * 3
    assert s.client(apps[0][30:40]).verdict == "drop" and s.conn.cs.nxt == s.co - 10  # not taken
    s.conn.finished = True
    assert s.feed(build_packet(C, S, 5, 0, SYN)).verdict == "accept" and s.conn.cs.isn == 5


def test_internal_error_drops(session, monkeypatch):
    monkeypatch.setattr(session.b, "_dispatch", lambda pkt, p: 1 / 0)
    assert session.feed(build_packet(C, S, CISN, 0, SYN)).verdict == "drop"


def test_parse_queues():
    from zkmb.middlebox.multiqueue import parse_queues

    from zkmb.errors import InvalidInput

    assert parse_queues("7") == [7] and parse_queues(3) == [3] and parse_queues("0:1") == [0, 1]
    for bad in ("1:0", "x", "0:65536", "-1", "0:64", ""):
        with pytest.raises(InvalidInput):
            parse_queues(bad)


def test_resolver_not_allowed_cut_at_the_first_packet(session, caplog):
    s, other = session, ("10.253.0.3", 853)
    with caplog.at_level("INFO", logger="zkmb.middlebox"):
        assert s.feed(build_packet(C, other, CISN, 0, SYN)).verdict == "drop"
    assert "what=syn n=- len=- action=block reason=resolver_not_allowed" in caplog.text
    assert s.b.conns == {} and s.sent == []  # no state kept, nothing injected
    # every later packet of that 4-tuple, either direction, is dropped (no flow), and so is a retried SYN
    assert s.feed(build_packet(other, C, SISN, CISN + 1, SYN | ACK)).verdict == "drop"
    assert s.feed(build_packet(C, other, CISN + 1, SISN + 1, ACK | PSH, b"\x16\x03\x01")).verdict == "drop"
    assert s.feed(build_packet(C, other, CISN, 0, SYN)).verdict == "drop"
    s.open()  # the allowed resolver is unaffected
    assert (C, S) in s.b.conns


def test_bridge_requires_a_resolver_allowlist(fake_verifier, clock):
    for config in (None, FlowConfig()):
        with pytest.raises(InvalidInput, match="resolver"):
            Bridge(fake_verifier, config=config, clock=clock, inject=lambda raw, dst: None)
    assert resolver_set(["10.0.0.1", "[::1]", "0:0::1"]) == {"10.0.0.1", "::1"}
    for bad in ([], ["resolver.example"], ["10.0.0.256"]):
        with pytest.raises(InvalidInput):
            resolver_set(bad)


def test_flow_admit_resolver(fake_verifier, clock):
    free = Flow(fake_verifier, clock, FlowConfig())
    assert free.admit_resolver("192.0.2.9") and not free.closed  # no allowlist: relay mode
    cfg = FlowConfig(resolvers=resolver_set(["10.253.0.2"]))
    assert Flow(fake_verifier, clock, cfg).admit_resolver("10.253.0.2")
    for ip in ("10.253.0.3", "not an ip"):
        f = Flow(fake_verifier, clock, cfg)
        assert not f.admit_resolver(ip)
        assert f.closed == "resolver not allowed" and f.decisions[-1].action == "block"


@pytest.mark.parametrize("allow, why", [(None, "needs --allow"), (["dns.example"], "not an IP address")])
def test_cli_bridge_mode_fails_closed_without_a_valid_allowlist(allow, why):
    # refused before any key or policy file is read
    args = argparse.Namespace(bridge="7", allow=allow, policy="/nonexistent", keys="/nonexistent")
    with pytest.raises(InvalidInput, match=why):
        asyncio.run(serve(args))


def test_dead_flows_do_not_count_toward_the_per_address_limit(recorded, fake_verifier, clock, caplog):
    """40 sequential connections from one address, each cut (the client's FIN before any proof; or a
    bad record) or finished cleanly: every SYN is admitted (dead flows stayed in the table for the
    idle period and counted toward max_flows_per_ip = 16, so the 17th SYN was dropped with no log)."""
    import logging

    from zkmb.middlebox.metrics import Metrics

    metrics = Metrics()
    b = Bridge(
        fake_verifier,
        config=FlowConfig(resolvers=frozenset({S[0]})),
        clock=clock,
        inject=lambda raw, dst: None,
        metrics=metrics,
    )
    for i in range(40):
        c = (C[0], 41000 + i)
        syn = Pkt(build_packet(c, S, CISN, 0, SYN))
        b.packet(syn)
        assert syn.verdict == "accept", i
        synack = Pkt(build_packet(S, c, SISN, CISN + 1, SYN | ACK))
        b.packet(synack)
        if i % 2:  # cut: a record of an unknown content type
            bad = Pkt(build_packet(c, S, CISN + 1, SISN + 1, ACK | PSH, b"\x63\x03\x03\x00\x01\x00"))
            b.packet(bad)
            assert b.conns[(c, S)].blocked
        else:  # the client closes before sending anything
            fin = Pkt(build_packet(c, S, CISN + 1, SISN + 1, ACK | FIN))
            b.packet(fin)
        clock.t += 1
    assert len(b.conns) == 40 and not any(b._live(x) for x in b.conns.values())
    # live flows still count: 16 open connections, the 17th is refused, logged and counted
    with caplog.at_level(logging.INFO, logger="zkmb.middlebox"):
        for i in range(17):
            syn = Pkt(build_packet((C[0], 42000 + i), S, CISN, 0, SYN))
            b.packet(syn)
            assert syn.verdict == ("accept" if i < 16 else "drop"), i
    assert "action=refuse reason=too_many_flows_from_this_address" in caplog.text
    assert 'zkmb_connections_refused_total{reason="too many flows from this address"} 1' in metrics.render()
    # a ban is refused with its own reason
    b.ban("10.253.0.9", "no valid Q proof by the deadline")
    syn = Pkt(build_packet(("10.253.0.9", 40000), S, CISN, 0, SYN))
    b.packet(syn)
    assert syn.verdict == "drop"
    text = metrics.render()
    assert 'zkmb_connections_refused_total{reason="client banned"} 1' in text
    assert 'zkmb_bans_total{reason="no valid Q proof by the deadline"} 1' in text
    assert 'zkmb_cuts_total{mode="strict",reason="record of unknown content type 99"} 20' in text


def test_dead_flow_table_bounded(fake_verifier, clock):
    """Dead flows are kept only up to twice max_flows: the longest-idle ones go first."""
    b = Bridge(
        fake_verifier,
        config=FlowConfig(resolvers=frozenset({S[0]})),
        clock=clock,
        inject=lambda raw, dst: None,
        max_flows=4,
        max_flows_per_ip=4,
    )
    for i in range(20):
        c = (C[0], 43000 + i)
        b.packet(Pkt(build_packet(c, S, CISN, 0, SYN)))
        b.packet(Pkt(build_packet(c, S, CISN + 1, 0, ACK | PSH, b"\x63\x03\x03\x00\x01\x00")))
        clock.t += 1
    assert len(b.conns) <= 8 and (C[0], 43019) in {k[0] for k in b.conns}
