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


# ------------------------------------------------------------------ several blocks in one proof (SPEC §4)

PADS_COUNTS = {("chacha20", 3): 65_182, ("chacha20", 6): 129_301, ("aes128gcm", 4): 128_852}
"""Multi-block PAD: each fills its power-of-two QAP domain (2^16, 2^17, 2^17)."""


@pytest.mark.parametrize(("suite", "k"), list(PADS_COUNTS))
def test_multi_block_counts(suite, k):
    from zkmb.circuits.pad import pads_circuit

    from tests.gadgets.tamper import count_under
    from zkmb.groth16.r1cs_to_qap import domain_size_for

    cs = pads_circuit(suite, k)
    assert cs.n_constraints == PADS_COUNTS[suite, k]
    assert cs.n_public == 1 + 3 * k
    domain = domain_size_for(cs.n_constraints, cs.n_public)
    assert domain == {3: 1 << 16, 4: 1 << 17, 6: 1 << 17}[k]
    one = pad_circuit(suite)
    assert domain / k < domain_size_for(one.n_constraints, one.n_public)  # fewer QAP rows per block
    blocks = [count_under(cs, f"block{i}") for i in range(k)]
    if suite == "chacha20":
        # the block: 21,328 less 29 (only 3 counter bits vary, so 29 xors into word 12 are free);
        # block 0 makes what every block shares: the first column round's quarter round on words 1,
        # 5, 9, 13 (260) and the first additions of columns 0, 2, 3 (3 x 33); the index check
        # takes 65 + 4 + 2, the nonce 64, comm_pad 298
        chacha = 21_328 - 29
        assert blocks == [chacha + 71 + 64 + 298] + [chacha - 260 - 99 + 71 + 64 + 298] * (k - 1)
        assert cs.n_constraints == sum(blocks) + count_under(cs, "inputs") + count_under(cs, "comm_k")


@pytest.mark.parametrize("suite", SUITES)
def test_multi_block_pads_are_the_keystream(sessions, suite):
    from zkmb.circuits.pad import pads_circuit
    from zkmb.circuits.witness import pads_assignment

    keys = co_assignment(sessions(suite)).keys
    k = 3
    cs = pads_circuit(suite, k)
    blocks = [(7, 0), (7, 6), (2**64 - 2, 3)]  # two blocks of one record, one of another
    pa = pads_assignment(keys, blocks)
    w = cs.solve(pa.assignment)
    assert cs.is_satisfied(w)
    assert w.public_inputs() == pa.public == [keys.comm_k, 7, 7, 2**64 - 2, 0, 6, 3, *pa.comm_pads]
    for (n, j), pad, b, cp in zip(blocks, pa.pads, pa.blinders, pa.comm_pads, strict=True):
        single = pad_assignment(keys, n, j, blinder=b)
        assert pad == single.pad == pad_block_native(keys.suite, keys.key, keys.iv, n, j)
        assert cp == single.comm_pad  # the same commitment Q opens as a single PAD's
    # the same block twice is allowed (each with its own blinder)
    cs.solve(pads_assignment(keys, [(1, 1)] * 3).assignment)


@pytest.mark.parametrize("suite", SUITES)
def test_multi_block_soundness(sessions, suite):
    from zkmb.circuits.pad import pads_circuit
    from zkmb.circuits.witness import pads_assignment

    keys = co_assignment(sessions(suite)).keys
    cs = pads_circuit(suite, 3)
    pa = pads_assignment(keys, [(4, 0), (4, 1), (5, 0)])
    a = pa.assignment
    cps, ns, js = list(pa.comm_pads), a["n"], a["j"]
    other = pad_assignment(keys, 6, 0)
    bads = [
        {"comm_pad": [cps[1], cps[0], cps[2]]},  # commitments swapped between blocks
        {"comm_pad": [cps[0], cps[1], other.comm_pad]},  # another record's pad for block 2
        {"n": [ns[0], ns[1], 6]},
        {"j": [js[0], 2, js[2]]},
        {"j": [js[0], js[1], 7]},  # out of range
        {"j": [cs_neg1(), js[1], js[2]]},
        {"n": [1 << 64, ns[1], ns[2]]},
        {"pad_blinder": [a["pad_blinder"][0], a["pad_blinder"][1] + 1, a["pad_blinder"][2]]},
        {"comm_k": keys.comm_k + 1},
        {"key_blinder": keys.blinder + 1},
    ]
    for bad in bads:
        with pytest.raises(UnsatisfiedError):
            cs.solve({**a, **bad})


def test_multi_block_shared_wires_tampered(sessions):
    """A word that the blocks share (made once, in block 0) is fixed by its constraints: changed, or
    forged with everything after it recomputed, the proof fails where it was made."""
    from zkmb.circuits.commit import comm_pad_native
    from zkmb.circuits.pad import pads_circuit
    from zkmb.circuits.witness import pads_assignment

    from tests.gadgets.tamper import (
        assert_fails_in,
        bit_wires,
        flip,
        product_wires,
        rows_in_scope,
        solve_pinned,
        violated_scopes,
    )

    keys = co_assignment(sessions("chacha20")).keys
    cs = pads_circuit("chacha20", 3)
    a = pads_assignment(keys, [(4, 0), (9, 1), (9, 2)]).assignment
    w = cs.solve(a)
    r0 = "block0/pad/double_round_0"
    bits, prods = bit_wires(cs, r0), product_wires(cs, r0)
    # block 1's first double round reuses block 0's shared words instead of making its own
    assert len(rows_in_scope(cs, "block1/pad/double_round_0")) == len(rows_in_scope(cs, r0)) - 260 - 99
    for wire in (bits[40], bits[-1]):
        assert_fails_in(cs, flip(w, wire), r0)
    assert_fails_in(cs, flip(w, prods[40]), r0)
    # a cheating prover forges one bit of a shared first addition, recomputes every later wire of
    # all three blocks and claims the commitments of the pads that come out: only that addition's
    # carry check fails
    pin = {bits[0]: 1 - w.value(bits[0])}
    cheat = solve_pinned(cs, a, pin)
    forged = []
    for i, blinder in enumerate(a["pad_blinder"]):
        out = bit_wires(cs, f"block{i}/pad/final_add")  # 16 words, least significant bit first
        words = [sum(cheat.value(b) << k for k, b in enumerate(out[32 * m : 32 * m + 32])) for m in range(16)]
        pad = b"".join(x.to_bytes(4, "little") for x in words)
        assert pad != pad_block_native(keys.suite, keys.key, keys.iv, a["n"][i], a["j"][i])
        forged.append(comm_pad_native(pad, blinder))
    cheat = solve_pinned(cs, {**a, "comm_pad": forged}, pin)
    assert violated_scopes(cs, cheat) == {r0: 1}


def test_multi_block_groth16_round_trip(sessions):
    from zkmb.circuits.pad import pads_circuit
    from zkmb.circuits.witness import pads_assignment

    cs = pads_circuit("chacha20", 3)
    pk, vk = setup(cs)
    keys = co_assignment(sessions("chacha20")).keys
    pa = pads_assignment(keys, [(0, 0), (0, 1), (1, 0)])
    proof = prove(pk, cs.solve(pa.assignment), cs=cs)
    assert verify(vk, pa.public, proof)
    ck, n0, n1, n2, j0, j1, j2, c0, c1, c2 = pa.public
    # the middlebox's vector must say which block each commitment is for
    assert not verify(vk, [ck, n0, n1, n2, j0, j1, j2, c1, c0, c2], proof)
    assert not verify(vk, [ck, n0, n1, n2 + 1, j0, j1, j2, c0, c1, c2], proof)
    assert not verify(vk, [ck, n0, n1, n2, j0, j1, j2 + 1, c0, c1, c2], proof)
    other = co_assignment(sessions("chacha20", True)).keys
    assert not verify(vk, [other.comm_k, *pa.public[1:]], proof)
