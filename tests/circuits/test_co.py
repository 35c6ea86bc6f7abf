"""Statement CO (SPEC §3) on real TLS 1.3 handshakes: satisfiability, MB/client agreement, soundness."""

from __future__ import annotations

import os
import secrets

import pytest
from zkmb.circuits.co import co_circuit
from zkmb.circuits.commit import comm_k_native
from zkmb.circuits.public import co_public_inputs, parse_channel
from zkmb.circuits.witness import WitnessError, co_assignment

from zkmb.gadgets.bits import pack_bytes
from zkmb.r1cs import UnsatisfiedError

from .conftest import SUITES

CO_COUNTS = {"chacha20": 786_452, "aes128gcm": 790_923}  # were 794,603 and 799,134 (issue #16)
KEY_SCHEDULE = {"chacha20": 763_997, "aes128gcm": 763_717}  # 32-byte and 16-byte traffic keys
FINISHED = {"chacha20": 21_074 + 258, "aes128gcm": 26_116}  # keystream (37 bytes) + xor and packing


@pytest.mark.parametrize("suite", SUITES)
def test_constraint_count(suite):
    from tests.gadgets.tamper import count_under

    cs = co_circuit(suite)
    assert cs.n_constraints == CO_COUNTS[suite]
    assert cs.n_constraints <= 1 << 20
    assert cs.n_public == 5
    assert count_under(cs, "inputs") == 3 * (249 + 9)  # HS, H2, H3: 31 + 1 bytes each
    assert count_under(cs, "co_keys") == KEY_SCHEDULE[suite]
    assert count_under(cs, "finished") == FINISHED[suite]


@pytest.mark.parametrize("hrr", [False, True], ids=["full", "hrr"])
@pytest.mark.parametrize("suite", SUITES)
def test_real_handshake_satisfies_and_mb_agrees(sessions, suite, hrr):
    cap = sessions(suite, hrr)
    co = co_assignment(cap)
    view = parse_channel(cap.client_bytes, cap.server_bytes)
    assert view.suite is co.suite and view.hello_retry == hrr
    assert view.h2 == cap.h2 and view.client_random == cap.client_random
    assert view.finished_record == cap.client_finished_record.raw
    # the middlebox's vector, from the wire bytes alone, is the one the client proves against
    assert co_public_inputs(view, co.keys.comm_k) == co.public
    w = co_circuit(suite).solve(co.assignment)
    assert w.public_inputs() == co.public
    # the committed key is the one the connection uses (captured CATS -> key/IV)
    from tests.tls.independent import key_iv

    key, iv = key_iv(cap.suite, cap.client_application_traffic_secret)
    assert (co.keys.key, co.keys.iv) == (key, iv)
    assert co.keys.comm_k == comm_k_native(co.suite, key, iv, co.keys.blinder)


def test_blinders_are_fresh(sessions):
    cap = sessions("chacha20")
    a, b = co_assignment(cap), co_assignment(cap)
    assert a.keys.blinder != b.keys.blinder and a.keys.comm_k != b.keys.comm_k


def _solve_fails(suite: str, assignment: dict) -> None:
    with pytest.raises(UnsatisfiedError):
        co_circuit(suite).solve(assignment)


@pytest.mark.parametrize("suite", SUITES)
def test_wrong_hs(sessions, suite):
    cap = sessions(suite)
    co = co_assignment(cap)
    # the native check refuses it first
    good_hs = cap.handshake_secret
    cap.handshake_secret = bytes([good_hs[0] ^ 1]) + good_hs[1:]
    try:
        with pytest.raises(WitnessError):
            co_assignment(cap)
    finally:
        cap.handshake_secret = good_hs
    # a prover that ignores it: another HS, everything else honest, cannot satisfy the circuit
    _solve_fails(suite, {**co.assignment, "hs": pack_bytes(os.urandom(32))})


@pytest.mark.parametrize("suite", SUITES)
def test_tampered_witness_unsatisfied(sessions, suite):
    cs = co_circuit(suite)
    co = co_assignment(sessions(suite))
    w = cs.solve(co.assignment)
    hs0 = cs.inputs["hs"].first_wire
    assert not cs.is_satisfied(w.replace(hs0, w.value(hs0) + 1))
    # an internal wire in the middle of the key schedule
    mid = cs.n_wires // 2
    assert not cs.is_satisfied(w.replace(mid, w.value(mid) + 1))


def test_tampered_shared_and_partial_wires(sessions):
    """Wires that the CO circuit's cost cuts rely on stay fixed: a product made once and reused by
    later compressions from the same pad state, and the partial last keystream word (one byte)."""
    from tests.gadgets.tamper import assert_fails_in, bit_wires, flip, product_wires

    cs = co_circuit("chacha20")
    w = cs.solve(co_assignment(sessions("chacha20")).assignment)
    scope = "co_keys/hs_traffic/key/hmac/inner/sha256_compress/round0"
    shared = product_wires(cs, scope)
    assert len(shared) == 224  # Σ1, Ch, Σ0, Maj of CHTS's inner state: reused by iv and finished_key
    assert_fails_in(cs, w.replace(shared[100], w.value(shared[100]) + 1), scope)
    final = "finished/block_0/final_add"
    low_byte = bit_wires(cs, final)[-8:]
    for wire in (low_byte[0], low_byte[7]):
        assert_fails_in(cs, flip(w, wire), final)


@pytest.mark.parametrize("suite", SUITES)
def test_forged_h3(sessions, suite):
    cap = sessions(suite)
    co = co_assignment(cap)
    # H3 decides the key committed to: a prover that picks its own H3 (and commits to the key it
    # derives from it) cannot make the real Finished ciphertext open
    from zkmb.gadgets.hmac import co_key_schedule_native

    h3 = os.urandom(32)
    ks = co_key_schedule_native(cap.handshake_secret, cap.h2, h3, co.suite.key_len)
    b = secrets.randbelow(1 << 250)
    forged = {
        **co.assignment,
        "h3": pack_bytes(h3),
        "comm_k": comm_k_native(co.suite, ks["ap_key"], ks["ap_iv"], b),
    }
    _solve_fails(suite, {**forged, "blinder": b})
    _solve_fails(suite, {**co.assignment, "h3": pack_bytes(h3)})


@pytest.mark.parametrize("suite", SUITES)
def test_finished_changed_unsatisfied(sessions, suite):
    cap = sessions(suite)
    co = co_assignment(cap)
    client = bytearray(cap.client_bytes)
    off = bytes(client).index(cap.client_finished_record.raw)
    client[off + 5 + 17] ^= 0x40
    view = parse_channel(bytes(client), cap.server_bytes)
    public = co_public_inputs(view, co.keys.comm_k)
    assert public != co.public
    _solve_fails(suite, {**co.assignment, "fin_ct": public[2:4]})


@pytest.mark.parametrize("suite", SUITES)
def test_wrong_comm_k_unsatisfied(sessions, suite):
    co = co_assignment(sessions(suite))
    _solve_fails(suite, {**co.assignment, "comm_k": (co.keys.comm_k + 1)})
    _solve_fails(suite, {**co.assignment, "blinder": co.keys.blinder + 1})
