"""The flow core on recorded real sessions and adversarial byte streams (SPEC §2, §4, §5, §7)."""

from __future__ import annotations

import pytest
from zkmb.circuits.public import co_public_inputs, pad_public_inputs, parse_channel
from zkmb.circuits.query import query_public_inputs, size_class
from zkmb.middlebox.flow import Flow, FlowConfig, Mode, RandomSet

from .conftest import OLD_ROOT, ROOT, FakeProof

COMM_K = 777


def _split(cap):
    """(handshake client bytes through the Finished, [app record raw bytes])."""
    view = parse_channel(cap.client_bytes, cap.server_bytes)
    hs = bytes(cap.client_bytes[: view.client_app_offset])
    return view, hs, [r.raw for r in cap.client_app_records]


def _co(view, suite, comm_k=COMM_K):
    return FakeProof(f"co_{suite}", tuple(co_public_inputs(view, comm_k)))


def _pads(flow, suite, n, k, base=100):
    for j in range(k):
        cp = base + 10 * n + j
        flow.pad(n, j, cp, FakeProof(f"pad_{suite}", tuple(pad_public_inputs(COMM_K, n, j, cp))))
    return [base + 10 * n + j for j in range(k)]


def _q(raw, pads, root=ROOT):
    inner = len(raw) - 5 - 16
    b = size_class(inner)
    return FakeProof(f"q_{b}", tuple(query_public_inputs(pads, raw[5 : 5 + inner], inner, root, b)))


def _open(recorded, fake_verifier, clock, suite="chacha20", hrr=False, **cfg):
    cap = recorded(suite, hrr)
    view, hs, apps = _split(cap)
    flow = Flow(fake_verifier, clock, FlowConfig(**cfg))
    flow.server_data(bytes(cap.server_bytes))
    assert flow.take_to_client() == bytes(cap.server_bytes)  # never held
    flow.client_data(hs)
    assert flow.take_to_server() == hs and not flow.closed
    return flow, view, apps


@pytest.mark.parametrize("suite,hrr", [("chacha20", False), ("aes128gcm", True)])
def test_strict_holds_until_proofs_and_releases_in_order(recorded, fake_verifier, clock, suite, hrr):
    flow, view, apps = _open(recorded, fake_verifier, clock, suite, hrr)
    assert view.hello_retry == hrr
    flow.client_data(b"".join(apps))
    assert flow.take_to_server() == b"" and [d.action for d in flow.decisions[-3:]] == ["hold"] * 3
    flow.co(COMM_K, _co(view, suite))
    assert flow.take_answers()[-1].accepted and flow.comm_k == COMM_K
    k = [size_class(len(r) - 21) // 64 for r in apps]
    pads = [_pads(flow, suite, n, k[n]) for n in range(3)]
    assert all(a.accepted for a in flow.take_answers())
    # Q for record 1 first: verified but held behind record 0
    flow.q(1, _q(apps[1], pads[1]))
    assert flow.take_answers()[-1].accepted and flow.take_to_server() == b""
    flow.q(0, _q(apps[0], pads[0]))
    assert flow.take_to_server() == apps[0] + apps[1]
    # a proof against the wrong pads (another record's) is rejected, nothing closes
    flow.q(2, _q(apps[2], pads[1]))
    assert not flow.take_answers()[-1].accepted and not flow.closed
    flow.q(2, _q(apps[2], pads[2]))
    assert flow.take_to_server() == apps[2] and flow.next_record == 3 and not flow.closed


def test_q_before_record_and_previous_root_grace(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock)
    flow.co(COMM_K, _co(view, "chacha20"))
    k = size_class(len(apps[0]) - 21) // 64
    pads = _pads(flow, "chacha20", 0, k)
    fake_verifier.roots.rotate(ROOT + 1, clock())
    flow.q(0, _q(apps[0], pads, root=ROOT))  # before the record arrives: kept pending
    flow.client_data(apps[0])
    assert flow.take_to_server() == apps[0]
    # after the grace window the old root is refused
    clock.t += 601
    pads1 = _pads(flow, "chacha20", 1, size_class(len(apps[1]) - 21) // 64)
    flow.client_data(apps[1])
    flow.q(1, _q(apps[1], pads1, root=ROOT))
    assert not flow.take_answers()[-1].accepted
    flow.q(1, _q(apps[1], pads1, root=ROOT + 1))
    assert flow.take_to_server() == apps[1]
    assert OLD_ROOT not in fake_verifier.roots.acceptable(clock())


def test_fragmented_byte_by_byte(recorded, fake_verifier, clock):
    cap = recorded()
    view, hs, apps = _split(cap)
    flow = Flow(fake_verifier, clock)
    flow.server_data(bytes(cap.server_bytes))
    out = b""
    for i in range(len(hs)):
        flow.client_data(hs[i : i + 1])
        out += flow.take_to_server()
    assert out == hs and not flow.closed
    flow.co(COMM_K, _co(view, "chacha20"))
    pads = _pads(flow, "chacha20", 0, size_class(len(apps[0]) - 21) // 64)
    flow.client_data(apps[0][:3])
    flow.q(0, _q(apps[0], pads))  # the record is not complete yet: pending
    flow.client_data(apps[0][3:])
    assert flow.take_to_server() == apps[0]


def test_record_without_proof_closed_at_deadline(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock)
    flow.co(COMM_K, _co(view, "chacha20"))
    flow.client_data(apps[0])
    clock.t += 1.9
    flow.tick()
    assert not flow.closed and flow.next_deadline() == pytest.approx(clock.t + 0.1)
    clock.t += 0.2
    flow.tick()
    assert flow.closed and "deadline" in flow.closed and flow.take_to_server() == b"" and not flow.ban


def test_co_deadline(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock)
    clock.t += 21
    flow.co(COMM_K, _co(view, "chacha20"))
    assert flow.closed and "CO" in flow.closed


def test_proof_for_another_flow_is_rejected_without_closing(recorded, fake_verifier, clock):
    flow_a, view_a, _ = _open(recorded, fake_verifier, clock, "chacha20")
    flow_b, view_b, _ = _open(recorded, fake_verifier, clock, "aes128gcm", True)
    flow_b.co(COMM_K, _co(view_a, "chacha20"))
    flow_a.co(COMM_K + 1, _co(view_a, "chacha20"))  # right flow, other comm_k
    assert not flow_b.take_answers()[0].accepted and not flow_a.take_answers()[0].accepted
    assert not flow_a.closed and not flow_b.closed and flow_b.comm_k is None
    flow_a.pad(0, 0, 5, FakeProof("pad_chacha20", tuple(pad_public_inputs(COMM_K, 0, 0, 5))))
    assert flow_a.take_answers()[0].reason.startswith("no verified CO")
    flow_b.co(COMM_K, _co(view_b, "aes128gcm"))
    assert flow_b.take_answers()[0].accepted
    flow_b.co(COMM_K, _co(view_b, "aes128gcm"))
    assert flow_b.take_answers()[0].reason == "channel already opened"
    # PAD outside the window / bad j: rejected
    for n, j in ((65, 0), (0, 7)):
        flow_b.pad(n, j, 5, FakeProof("pad_aes128gcm", ()))
        ans = flow_b.take_answers()[0]
        assert not ans.accepted and (ans.n, ans.j) == (n, j)  # echoed, so the client can match it
    assert not flow_b.closed


def test_async_mode_forwards_then_cuts_and_bans(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock, mode=Mode.ASYNC)
    flow.client_data(apps[0])
    assert flow.take_to_server() == apps[0]
    flow.co(COMM_K, _co(view, "chacha20"))
    pads = _pads(flow, "chacha20", 0, size_class(len(apps[0]) - 21) // 64)
    flow.q(0, _q(apps[0], pads))
    assert flow.take_answers()[-1].accepted and flow.next_record == 1
    flow.client_data(apps[1])
    assert flow.take_to_server() == apps[1]
    clock.t += 3.01
    flow.tick()
    assert flow.closed and flow.ban
    assert flow.decisions[-1].cut and flow.decisions[-1].reason == "no valid Q proof by the deadline"


def test_async_record_deadline_starts_at_co_acceptance(recorded, fake_verifier, clock):
    """SPEC §7 async: a record sent before the CO is accepted is due 3 s after the CO's acceptance (the
    CO keeps its own 20 s deadline meanwhile), one sent later 3 s after its arrival."""
    flow, view, apps = _open(recorded, fake_verifier, clock, mode=Mode.ASYNC)
    flow.client_data(apps[0])
    assert flow.take_to_server() == apps[0]
    clock.t += 10  # long past 3 s from arrival, but the CO is not in yet: not due
    flow.tick()
    assert not flow.closed and flow.next_deadline() == pytest.approx(clock.t - 10 + 20)
    flow.co(COMM_K, _co(view, "chacha20"))
    assert flow.next_deadline() == pytest.approx(clock.t + 3)
    clock.t += 2.9
    flow.tick()
    assert not flow.closed
    clock.t += 0.2
    flow.tick()
    assert flow.closed and flow.ban and "deadline" in flow.closed


def test_async_at_most_eight_records_before_co(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock, mode=Mode.ASYNC)
    for _ in range(8):
        flow.client_data(apps[0])
    assert flow.take_to_server() == apps[0] * 8 and not flow.closed
    flow.client_data(apps[0])
    assert flow.take_to_server() == b"" and flow.closed and flow.ban
    assert flow.closed == "too many records before the CO was accepted"


def test_async_co_deadline_cuts_and_bans(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock, mode=Mode.ASYNC)
    flow.client_data(apps[0])
    clock.t += 20.01
    flow.tick()
    assert flow.closed == "no valid CO proof by the deadline" and flow.ban
    # no record forwarded before the late CO: cut, but nothing was answered without a proof: no ban
    flow, view, apps = _open(recorded, fake_verifier, clock, mode=Mode.ASYNC)
    clock.t += 20.01
    flow.tick()
    assert flow.closed == "no valid CO proof by the deadline" and not flow.ban


def _hs_parts(cap):
    """The client handshake split into records: [(type, raw)]."""
    out, data, pos = [], bytes(cap.client_bytes), 0
    while pos < len(data):
        n = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append(data[pos : pos + 5 + n])
        pos += 5 + n
    return out


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda hs, app: hs[0] + hs[0], "ClientHello"),  # a second ClientHello without HRR
        (lambda hs, app: b"\x99\x03\x03\x00\x01\x00", "unknown content type"),  # garbage
        (lambda hs, app: b"\x14\x03\x03\x00\x01\x01", "ChangeCipherSpec"),  # CCS before the ClientHello
        (lambda hs, app: hs[0] + b"\x14\x03\x03\x00\x01\x01" * 2, "ChangeCipherSpec"),  # two CCS
        (lambda hs, app: hs[0] + b"\x14\x03\x03\x00\x01\x02", "ChangeCipherSpec"),  # bad CCS body
        (lambda hs, app: hs[0] + b"\x17\x03\x03\x00\x36" + bytes(54), "53"),  # Finished of 54 bytes
        (lambda hs, app: b"".join(hs) + b"\x14\x03\x03\x00\x01\x01", "type 20"),  # CCS after Finished
        (lambda hs, app: b"".join(hs) + b"\x17\x03\x03\x01\xd1" + bytes(465), "limit 464"),  # oversized
        (lambda hs, app: b"".join(hs) + b"\x17\x03\x03\x00\x20" + bytes(32), "too short"),
        (lambda hs, app: b"".join(hs) + b"\x16\x03\x03\x00\x04\x01\x00\x00\x00", "type 22"),
        (lambda hs, app: b"".join(hs) + b"\x15\x03\x03\x00\x02\x01\x00", "type 21"),
        (lambda hs, app: hs[0] + b"\x15\x03\x03\x00\x02\x02\x28", "alert"),
    ],
)
def test_adversarial_client_streams(recorded, fake_verifier, clock, mutate, reason):
    cap = recorded()
    view, hs, apps = _split(cap)
    parts = _hs_parts(type("C", (), {"client_bytes": hs})())
    flow = Flow(fake_verifier, clock)
    flow.server_data(bytes(cap.server_bytes))
    flow.client_data(mutate(parts, apps))
    assert flow.closed and reason.lower() in flow.closed.lower(), flow.closed
    assert flow.decisions[-1].action == "block"


def test_finished_before_server_hello(recorded, fake_verifier, clock):
    cap = recorded()
    _, hs, _ = _split(cap)
    parts = _hs_parts(type("C", (), {"client_bytes": hs})())
    flow = Flow(fake_verifier, clock)
    flow.client_data(parts[0])
    assert flow.take_to_server() == parts[0]
    flow.client_data(parts[-1])
    assert flow.closed and "handshake admits" in flow.closed


def test_repeated_random_refused(recorded, fake_verifier, clock):
    cap = recorded()
    _, hs, _ = _split(cap)
    seen = RandomSet()
    Flow(fake_verifier, clock, seen_randoms=seen).client_data(hs[:10_000])
    again = Flow(fake_verifier, clock, seen_randoms=seen)
    again.client_data(_hs_parts(type("C", (), {"client_bytes": hs})())[0])
    assert again.closed and "already seen" in again.closed and again.take_to_server() == b""


def test_bad_server_hello_closes(fake_verifier, clock):
    flow = Flow(fake_verifier, clock)
    flow.server_data(b"\x16\x03\x03\x00\x04\x0b\x00\x00\x00")  # a Certificate in plaintext
    assert flow.closed and "server" in flow.closed


def test_unverified_bound(recorded, fake_verifier, clock):
    flow, view, apps = _open(recorded, fake_verifier, clock, max_unverified=2)
    flow.client_data(apps[0] + apps[1])
    assert not flow.closed
    flow.client_data(apps[2])
    assert flow.closed and "too many" in flow.closed


def test_long_lived_flow_state_is_bounded(recorded, clock):
    """100k records on one connection: decisions, pads, pending proofs and memory stay bounded."""
    import gc
    import os

    from zkmb.middlebox.verifier import PolicyRoots, Verifier

    from .conftest import NAMES

    everything = Verifier({n: n for n in NAMES}, PolicyRoots(ROOT), check=lambda vk, pub, proof: True)
    cap = recorded("chacha20")
    view, hs, apps = _split(cap)
    rec = apps[0]
    k = size_class(len(rec) - 21) // 64
    seen = []
    flow = Flow(everything, clock, FlowConfig(keep_decisions=64), on_decision=seen.append)
    flow.server_data(bytes(cap.server_bytes))
    flow.client_data(hs)
    flow.co(COMM_K, "co")
    assert flow.take_to_server() == hs and flow.comm_k == COMM_K
    before = flow.decision_count
    total = 100_000

    def run(lo, hi):
        for n in range(lo, hi):
            for j in range(k):
                flow.pad(n, j, 5, "pad")
            flow.client_data(rec)
            flow.q(n, "q")
            flow.take_answers()
            assert len(flow.take_to_server()) == len(rec)
            seen.clear()

    def rss() -> int:
        gc.collect()
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    run(0, 10_000)
    mid = rss()
    run(10_000, total)
    end = rss()
    assert not flow.closed and flow.next_record == total
    assert flow.decision_count == before + 2 * total and 64 <= len(flow.decisions) <= 128
    assert not flow._pads and not flow._pending_q and not flow._pending_pad and not flow._records
    # 90k more records: no growth beyond allocator noise (keeping every Decision would be ~30 MB)
    assert end - mid < 4 << 20, (mid, end)


def test_pending_pad_proofs_bounded_with_an_answer(recorded, clock):
    """Queued PAD verifications are bounded per flow; one over the bound is REJECTED, not lost."""
    from zkmb.middlebox.verifier import PolicyRoots, Verifier

    class Queued(Verifier):
        def verify(self, circuit, public, proof):
            return None  # every verification is still queued

    flow, view, apps = _open(recorded, Queued({}, PolicyRoots(ROOT)), clock, max_pending_pad=3)
    flow.comm_k = COMM_K
    for n in range(4):
        flow.pad(n, 0, 5, "pad")
    answers = flow.take_answers()
    assert [(a.n, a.accepted, a.reason) for a in answers] == [(3, False, "too many PAD proofs pending")]
    flow.close("test")
    assert [(a.kind, a.n, a.accepted) for a in flow.take_answers()] == [("pad", n, False) for n in range(3)]


@pytest.mark.parametrize("proof_root", [OLD_ROOT, ROOT + 1])
def test_grace_window_q_accepted_in_one_verification_round(recorded, clock, proof_root):
    """A Q proof against the previous root (in the grace window) or the current one is accepted after
    one round of queued verification: both roots' checks go to the pool at once and are each run once
    (it took three rounds when a verdict was consumed on reading and the current root re-queued)."""
    import asyncio

    from zkmb.middlebox.verifier import PolicyRoots, Verifier
    from zkmb.middlebox.workers import FlowVerifier, VerifyPool

    from .conftest import NAMES, fake_check

    checks: list[tuple] = []

    def counting_check(vk, public, proof):
        checks.append((vk, tuple(public)))
        return fake_check(vk, public, proof)

    async def run():
        verifier = Verifier({n: n for n in NAMES}, PolicyRoots(OLD_ROOT), check=counting_check)
        verifier.roots.rotate(ROOT + 1, clock())
        pool = VerifyPool(verifier, workers=1, max_batch=1)
        woke = asyncio.Event()
        rounds = 0
        fv = FlowVerifier(pool, woke.set)
        flow, view, apps = _open(recorded, fv, clock)
        flow.comm_k = COMM_K
        flow.view = view
        k = size_class(len(apps[0]) - 21) // 64
        for j in range(k):
            flow._pads[(0, j)] = 100 + j
        pads = [100 + j for j in range(k)]
        flow.client_data(apps[0])
        flow.take_to_server()
        checks.clear()
        flow.q(0, _q(apps[0], pads, root=proof_root))
        assert flow.take_to_server() == b""  # queued
        out = b""
        while not out and rounds < 5:
            await asyncio.wait_for(woke.wait(), 5)
            woke.clear()
            rounds += 1
            flow.retry()
            out = flow.take_to_server()
        pool.close()
        return rounds, out, apps[0], flow.take_answers()

    rounds, out, raw, answers = asyncio.run(run())
    assert out == raw and answers[-1].accepted
    assert rounds == 1
    q_checks = [c for c in checks if c[0].startswith("q_")]
    assert len(q_checks) <= 2 and len({c[1] for c in q_checks}) == len(q_checks)  # each root once


def test_grace_window_q_refused_when_neither_root_verifies(recorded, clock):
    """A proof that verifies under neither root is refused once both verdicts are in, never re-queued."""
    import asyncio

    from zkmb.middlebox.verifier import PolicyRoots, Verifier
    from zkmb.middlebox.workers import FlowVerifier, VerifyPool

    from .conftest import NAMES, fake_check

    submitted: list[str] = []

    async def run():
        verifier = Verifier({n: n for n in NAMES}, PolicyRoots(OLD_ROOT), check=fake_check)
        verifier.roots.rotate(ROOT + 1, clock())
        pool = VerifyPool(verifier, workers=1, max_batch=1)
        real_submit = pool.submit
        pool.submit = lambda c, *a: submitted.append(c) or real_submit(c, *a)
        woke = asyncio.Event()
        fv = FlowVerifier(pool, woke.set)
        flow, view, apps = _open(recorded, fv, clock)
        flow.comm_k, flow.view = COMM_K, view
        k = size_class(len(apps[0]) - 21) // 64
        for j in range(k):
            flow._pads[(0, j)] = 100 + j
        flow.client_data(apps[0])
        flow.q(0, _q(apps[0], [100 + j for j in range(k)], root=ROOT + 7))
        answers = []
        while not answers:
            await asyncio.wait_for(woke.wait(), 5)
            woke.clear()
            flow.retry()
            answers = [a for a in flow.take_answers() if a.kind == "q"]
        pool.close()
        return answers

    answers = asyncio.run(run())
    assert [(a.n, a.accepted) for a in answers] == [(0, False)]
    assert submitted.count("q_64") + submitted.count("q_128") == 2  # both roots, once each


def test_resolver_closing_before_co_has_its_own_reason(recorded, fake_verifier, clock):
    """A resolver whose idle time-out is shorter than the channel opening (dnsdist 2 s) closes the
    connection after the Finished, before the CO: its own reason, counted on the metrics."""
    from zkmb.middlebox.flow import RESOLVER_CLOSED_BEFORE_CO
    from zkmb.middlebox.metrics import Metrics
    from zkmb.middlebox.relay import Middlebox

    flow, view, apps = _open(recorded, fake_verifier, clock)
    metrics = Metrics()
    mb = Middlebox(fake_verifier, ("127.0.0.1", 9), metrics=metrics)
    flow.on_decision = mb._observe
    flow.server_eof()
    assert flow.closed == RESOLVER_CLOSED_BEFORE_CO and not flow.ban
    assert "zkmb_resolver_closed_before_co_total 1" in metrics.render()
    assert "zkmb_cuts_total{" not in metrics.render()  # the resolver's close is not a cut
    flow2, view2, _ = _open(recorded, fake_verifier, clock)
    flow2.co(COMM_K, _co(view2, "chacha20"))
    flow2.server_eof()
    assert flow2.closed == "resolver closed the connection"


def _pads_proof(suite, blocks, comm_k=COMM_K):
    ns, js, cps = zip(*blocks, strict=True)
    return FakeProof(f"pads{len(blocks)}_{suite}", (comm_k, *ns, *js, *cps))


def test_pads_one_proof_several_blocks(recorded, fake_verifier, clock):
    """SPEC §4: one PAD proof covering several blocks is checked block by block as PAD is and
    answered per block; the records' Q proofs then find every comm_pad."""
    flow, view, apps = _open(recorded, fake_verifier, clock)
    flow.co(COMM_K, _co(view, "chacha20"))
    flow.take_answers()
    blocks = ((0, 0, 100), (1, 0, 110), (2, 0, 120))
    flow.pads(blocks, _pads_proof("chacha20", blocks))
    assert [(a.n, a.j, a.accepted) for a in flow.take_answers()] == [(0, 0, True), (1, 0, True), (2, 0, True)]
    flow.client_data(apps[0])
    size = size_class(len(apps[0]) - 21)
    if size == 64:
        flow.q(0, _q(apps[0], [100]))
        assert flow.take_to_server() == apps[0]
    flow.take_answers()
    # a proof for other comm_pads, a repeated block, a block outside the window: every block refused
    bad = ((3, 0, 130), (4, 0, 140), (5, 0, 150))
    flow.pads(bad, _pads_proof("chacha20", ((3, 0, 1), (4, 0, 140), (5, 0, 150))))
    assert [a.accepted for a in flow.take_answers()] == [False, False, False]
    dup = ((3, 0, 130), (3, 0, 130), (5, 0, 150))
    flow.pads(dup, _pads_proof("chacha20", dup))
    assert {a.reason for a in flow.take_answers()} == {"a block twice in one PAD proof"}
    far = ((3, 0, 130), (4, 0, 140), (500, 0, 150))
    flow.pads(far, _pads_proof("chacha20", far))
    assert all(not a.accepted and "outside" in a.reason for a in flow.take_answers())
    # a block committed meanwhile keeps its first comm_pad; the others of the batch are taken
    flow.pad(3, 0, 130, FakeProof("pad_chacha20", tuple(pad_public_inputs(COMM_K, 3, 0, 130))))
    flow.take_answers()
    mixed = ((3, 0, 999), (4, 0, 140), (5, 0, 150))
    flow.pads(mixed, _pads_proof("chacha20", mixed))
    assert all(a.accepted for a in flow.take_answers())
    assert flow._pads[(3, 0)] == 130 and flow._pads[(4, 0)] == 140
    assert not flow.closed


def test_pads_without_a_key_or_before_co(recorded, fake_verifier, clock):
    del fake_verifier.keys["pads3_chacha20"]  # a middlebox whose key directory has no batch key
    flow, view, apps = _open(recorded, fake_verifier, clock)
    blocks = ((0, 0, 100), (1, 0, 110), (2, 0, 120))
    flow.pads(blocks, _pads_proof("chacha20", blocks))
    assert {a.reason for a in flow.take_answers()} == {"no verified CO for this connection yet"}
    flow.co(COMM_K, _co(view, "chacha20"))
    flow.take_answers()
    flow.pads(blocks, _pads_proof("chacha20", blocks))  # no pads3 key loaded: refused, not closed
    assert [a.accepted for a in flow.take_answers()] == [False, False, False] and not flow.closed
