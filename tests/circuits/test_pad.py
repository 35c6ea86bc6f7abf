"""Statement PAD (SPEC §4) on real sessions: the pad is the record's keystream, soundness, Groth16."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from zkmb.circuits.pad import pad_circuit
from zkmb.circuits.public import PublicInputRejected, pad_public_inputs
from zkmb.circuits.witness import co_assignment, pad_assignment, pad_block_native

from tests.tls.independent import key_iv
from zkmb.gadgets.bits import pack_bytes
from zkmb.groth16.prover import prove
from zkmb.groth16.setup import setup
from zkmb.groth16.verifier import verify
from zkmb.r1cs import UnsatisfiedError

from .conftest import SUITES

PAD_COUNTS = {"chacha20": 22_437, "aes128gcm": 34_632}
"""Issue #16: comm_pad takes its tag in the capacity element (Poseidon(4), 297), 21 fewer than with the
tag as an input (22,458 / 34,653 before)."""


@pytest.mark.parametrize("suite", SUITES)
def test_constraint_count(suite):
    cs = pad_circuit(suite)
    assert cs.n_constraints == PAD_COUNTS[suite]
    assert cs.n_public == 4
    if suite == "chacha20":
        assert cs.n_constraints <= 25_000


@pytest.mark.parametrize("suite", SUITES)
def test_pad_is_the_record_keystream(sessions, suite):
    """pad_{n,0} xor the record's ciphertext is the plaintext `cryptography` decrypts (independent)."""
    cap = sessions(suite)
    keys = co_assignment(cap).keys
    key, iv = key_iv(cap.suite, cap.client_application_traffic_secret)
    aead = ChaCha20Poly1305(key) if suite == "chacha20" else AESGCM(key)
    assert len(cap.client_app_records) >= 2
    for rec in cap.client_app_records:
        nonce = (int.from_bytes(iv, "big") ^ rec.seq).to_bytes(12, "big")
        inner = aead.decrypt(nonce, rec.payload, rec.header)
        ct = rec.payload[:-16]
        ks = b"".join(
            pad_block_native(keys.suite, keys.key, keys.iv, rec.seq, j) for j in range(-(-len(ct) // 64))
        )
        assert bytes(a ^ b for a, b in zip(ct, ks, strict=False)) == inner
        pa = pad_assignment(keys, rec.seq, 0)
        assert pa.pad[: len(ct)] == ks[: len(ct)][:64]
        w = pad_circuit(suite).solve(pa.assignment)
        assert w.public_inputs() == pa.public == pad_public_inputs(keys.comm_k, rec.seq, 0, pa.comm_pad)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize(("n", "j"), [(0, 6), (2**64 - 2, 3), (0x0123456789ABCDEF, 1)])
def test_edge_indices_satisfy(sessions, suite, n, j):
    keys = co_assignment(sessions(suite)).keys
    pad_circuit(suite).solve(pad_assignment(keys, n, j).assignment)


@pytest.mark.parametrize("suite", SUITES)
def test_out_of_range_j_and_n_unsatisfiable(sessions, suite):
    keys = co_assignment(sessions(suite)).keys
    cs = pad_circuit(suite)
    base = pad_assignment(keys, 5, 6).assignment
    for bad in ({"j": 7}, {"j": cs_neg1()}, {"n": 1 << 64}, {"n": cs_neg1()}):
        with pytest.raises(UnsatisfiedError):
            cs.solve({**base, **bad})


def cs_neg1() -> int:
    from zkmb.algebra.params import R

    return R - 1


@pytest.mark.parametrize("suite", SUITES)
def test_pad_commitment_of_other_record_unsatisfied(sessions, suite):
    keys = co_assignment(sessions(suite)).keys
    cs = pad_circuit(suite)
    a = pad_assignment(keys, 1, 0)
    other = pad_assignment(keys, 2, 0)
    for bad in ({"comm_pad": other.comm_pad}, {"n": 2}, {"j": 1}, {"pad_blinder": a.blinder + 1}):
        with pytest.raises(UnsatisfiedError):
            cs.solve({**a.assignment, **bad})


def test_pad_commitment_of_other_session_unsatisfied(sessions):
    ka = co_assignment(sessions("chacha20")).keys
    kb = co_assignment(sessions("chacha20", True)).keys
    a, b = pad_assignment(ka, 0, 0), pad_assignment(kb, 0, 0)
    cs = pad_circuit("chacha20")
    with pytest.raises(UnsatisfiedError):
        cs.solve({**a.assignment, "comm_pad": b.comm_pad})
    with pytest.raises(UnsatisfiedError):  # B's key under A's commitment
        cs.solve({**b.assignment, "comm_k": ka.comm_k, "key_blinder": ka.blinder})
    with pytest.raises(UnsatisfiedError):  # the key of B but the IV of A
        cs.solve({**b.assignment, "iv": pack_bytes(ka.iv)[0]})


def test_tampered_pad_witness_unsatisfied(sessions):
    cs = pad_circuit("chacha20")
    w = cs.solve(pad_assignment(co_assignment(sessions("chacha20")).keys, 3, 2).assignment)
    key0 = cs.inputs["key"].first_wire
    assert not cs.is_satisfied(w.replace(key0, w.value(key0) + 1))
    mid = cs.n_wires // 2
    assert not cs.is_satisfied(w.replace(mid, 1 - w.value(mid) if w.value(mid) < 2 else 0))


@pytest.mark.parametrize(
    ("n", "j", "kw"),
    [
        (0, 7, {}),
        (0, -1, {}),
        (-1, 0, {}),
        (2**64 - 1, 0, {}),
        (2**64, 0, {}),
        (10, 0, {"next_record": 11}),
        (76, 0, {"next_record": 11}),
        (True, 0, {}),
        (0, 1.0, {}),
    ],
)
def test_public_builder_rejects_out_of_range(n, j, kw):
    with pytest.raises(PublicInputRejected):
        pad_public_inputs(1, n, j, 2, **kw)


def test_public_builder_rejects_non_field_commitments():
    from zkmb.algebra.params import R

    for ck, cp in ((R, 0), (0, R), (-1, 0), (0, "1")):
        with pytest.raises(PublicInputRejected):
            pad_public_inputs(ck, 0, 0, cp)
    assert pad_public_inputs(1, 75, 6, 2, next_record=11) == [1, 75, 6, 2]


@pytest.fixture(scope="module")
def pad_keys():
    """Groth16 keys of both PAD circuits (one setup each, a few seconds)."""
    return {s: setup(pad_circuit(s)) for s in SUITES}


@pytest.mark.parametrize("suite", SUITES)
def test_groth16_round_trip(sessions, pad_keys, suite):
    pk, vk = pad_keys[suite]
    cs = pad_circuit(suite)
    keys = co_assignment(sessions(suite)).keys
    pa = pad_assignment(keys, 1, 2)
    proof = prove(pk, cs.solve(pa.assignment), cs=cs)
    mb = pad_public_inputs(keys.comm_k, 1, 2, pa.comm_pad, next_record=0)
    assert verify(vk, mb, proof)
    # the same proof for another record number, block, or a commitment of another record: rejected
    other = pad_assignment(keys, 2, 2)
    assert not verify(vk, pad_public_inputs(keys.comm_k, 2, 2, pa.comm_pad), proof)
    assert not verify(vk, pad_public_inputs(keys.comm_k, 1, 3, pa.comm_pad), proof)
    assert not verify(vk, pad_public_inputs(keys.comm_k, 1, 2, other.comm_pad), proof)


def test_groth16_other_session_rejected(sessions, pad_keys):
    pk, vk = pad_keys["chacha20"]
    cs = pad_circuit("chacha20")
    ka = co_assignment(sessions("chacha20")).keys
    kb = co_assignment(sessions("chacha20", True)).keys
    pb = pad_assignment(kb, 0, 0)
    proof_b = prove(pk, cs.solve(pb.assignment), cs=cs)
    assert verify(vk, pb.public, proof_b)
    # B's proof presented on connection A (the MB uses A's comm_k)
    assert not verify(vk, pad_public_inputs(ka.comm_k, 0, 0, pb.comm_pad), proof_b)
