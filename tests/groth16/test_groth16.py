"""Our own setup -> prove -> verify round trip, the negatives, batch verification and key files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from zkmb.algebra import fast
from zkmb.algebra.params import G1_GEN, P, R
from zkmb.errors import InvalidInput, InvalidPoint
from zkmb.groth16.keys import ProvingKey, VerifyingKey
from zkmb.groth16.proof import Proof
from zkmb.groth16.prover import UnsatisfiedWitness, prove, rerandomize
from zkmb.groth16.setup import setup
from zkmb.groth16.verifier import batch_verify, verify
from zkmb.r1cs import Circuit, Public, Secret, compile


class Cube(Circuit):
    """Public y, z; secret x with y = x^3 + x + 5 and z = y * x (two public inputs)."""

    y = Public()
    z = Public()
    x = Secret()

    def define(self, api):
        x3 = api.mul(api.mul(self.x, self.x), self.x)
        api.assert_equal(api.add(x3, api.add(self.x, 5)), self.y)
        api.assert_equal(api.mul(self.y, self.x), self.z)


class Bits(Circuit):
    """A circuit of mostly 0/1 wires, like the hash circuits (exercises the MSM's bit path)."""

    v = Public()
    s = Secret()

    def define(self, api):
        bits = api.to_bits(self.s, 64)
        acc = api.from_bits(bits)
        api.assert_equal(api.mul(acc, acc), self.v)


@pytest.fixture(scope="module")
def cube():
    cs = compile(Cube)
    pk, vk = setup(cs)
    w = cs.solve({"x": 3, "y": 35, "z": 105})
    return cs, pk, vk, w


def test_round_trip(cube):
    cs, pk, vk, w = cube
    proof = prove(pk, w, cs=cs)
    assert verify(vk, [35, 105], proof)


def test_window_tables_give_the_same_proof(cube):
    """A proof with MSM window tables equals one without for the same blinders; tables are built once
    and only for the key's MSM bases."""
    cs, pk, vk, w = cube
    pk2 = dataclasses.replace(pk, tables={})
    want = prove(pk2, w, r=5, s=7)
    for part in ("a", "b1", "b2", "c", "h"):
        assert pk2.build_table(part) is pk2.build_table(part)
    assert set(pk2.tables) == {"a", "b1", "b2", "c", "h"} and not pk.tables
    got = prove(pk2, w, r=5, s=7)
    assert got.to_bytes() == want.to_bytes() and verify(vk, [35, 105], got)
    with pytest.raises(InvalidInput):
        pk2.build_table("vk")


def test_two_proofs_differ_but_both_verify(cube):
    cs, pk, vk, w = cube
    p1, p2 = prove(pk, w), prove(pk, w)
    assert p1 != p2  # fresh blinders r, s
    assert verify(vk, [35, 105], p1) and verify(vk, [35, 105], p2)


def test_changed_public_input_rejected(cube):
    _, pk, vk, w = cube
    proof = prove(pk, w)
    assert not verify(vk, [36, 105], proof)
    assert not verify(vk, [35, 106], proof)
    assert not verify(vk, [105, 35], proof)


@pytest.mark.parametrize("element", ["a", "b", "c"])
def test_changed_proof_element_rejected(cube, element):
    _, pk, vk, w = cube
    proof = prove(pk, w)
    parts = {"a": proof.a, "b": proof.b, "c": proof.c}
    if element == "b":
        parts["b"] = fast.g2_double(proof.b[None])[0]
    else:
        parts[element] = fast.g1_add(parts[element][None], fast.g1_generator())[0]
    assert not verify(vk, [35, 105], Proof(**parts))


def test_proof_bytes_round_trip_and_malformed(cube):
    _, pk, vk, w = cube
    proof = prove(pk, w)
    data = proof.to_bytes()
    assert Proof.from_bytes(data) == proof
    assert verify(vk, [35, 105], Proof.from_bytes(data))
    with pytest.raises(InvalidInput):
        Proof.from_bytes(data[:-1])
    off_curve = bytearray(data)
    off_curve[63] ^= 1  # y of A changes: no longer on the curve
    with pytest.raises(InvalidPoint):
        Proof.from_bytes(bytes(off_curve))
    big = bytearray(data)
    big[192:224] = P.to_bytes(32, "big")  # C.x = p is not canonical
    with pytest.raises(InvalidInput):
        Proof.from_bytes(bytes(big))


def test_b_outside_subgroup_rejected():
    """A point on the twist but outside G2 must not be accepted as B."""
    from tests.algebra.test_serialize import OUTSIDE_G2 as q

    with pytest.raises(InvalidPoint):
        Proof.from_canonical(G1_GEN, q, G1_GEN)


def test_unsatisfied_witness_names_scope(cube):
    cs, pk, _, _ = cube
    bad = cs.solve({"x": 3, "y": 35, "z": 105}).replace(cs.n_wires - 1, 7)
    with pytest.raises(UnsatisfiedWitness):
        prove(pk, bad, cs=cs)


def test_plan_checks_the_witness_in_its_qap_step(cube):
    """With the circuit's C rows the plan's QAP step is the whole R1CS check (C w = A w o B w on every
    row, wire 0 = 1): a tampered witness raises naming the first failing constraint and its scope, and
    no MSM step runs; a satisfying one gives the same proof as prove()."""
    from zkmb.groth16.prover import ProofPlan
    from zkmb.groth16.r1cs_to_qap import qap_matrices

    cs, pk, vk, w = cube
    c_rows = qap_matrices(cs)[2]
    good = ProofPlan(pk, w, r=5, s=7, check=c_rows, scope_of=cs.scope_of).run()
    assert good.to_bytes() == prove(pk, w, r=5, s=7).to_bytes() and verify(vk, [35, 105], good)
    bad = w.replace(cs.n_wires - 1, 7)
    want = cs.first_unsatisfied(bad)
    assert want is not None and want >= 0
    plan = ProofPlan(pk, bad, check=c_rows, scope_of=cs.scope_of)
    with pytest.raises(UnsatisfiedWitness, match=f"constraint {want} in scope") as e:
        plan.stages[0][0].run()
    assert e.value.row == want
    one = w.values.copy()
    one[0] = fast.fr_from_ints([2])[0]
    with pytest.raises(UnsatisfiedWitness, match="wire 0") as e:
        ProofPlan(pk, one, check=c_rows).run()
    assert e.value.row == -1
    # without the rows nothing is checked: the proof is made (and does not verify)
    assert not verify(vk, [35, 105], ProofPlan(pk, bad).run())
    with pytest.raises(InvalidInput):
        ProofPlan(pk, w, check=qap_matrices(compile(Bits))[2])


def test_plan_takes_the_solvers_product_rows(cube):
    """A plan given the solver's product rows (solve(rows=True)) evaluates only the other rows and makes
    the same proof; the check still covers every row (a kept value that does not match the witness
    raises); kept rows of another shape are refused."""
    from zkmb.groth16.prover import ProofPlan
    from zkmb.groth16.r1cs_to_qap import qap_matrices
    from zkmb.r1cs.system import RowValues

    cs, pk, vk, _ = cube
    w = cs.solve({"x": 3, "y": 35, "z": 105}, check=False, rows=True)
    assert w.rows is not None and w.rows.known.any()
    c_rows = qap_matrices(cs)[2]
    plan = ProofPlan(pk, w, r=5, s=7, check=c_rows, known_rows=w.rows)
    assert plan.run().to_bytes() == prove(pk, w, r=5, s=7).to_bytes()
    bad_a = w.rows.a.copy()
    i = int(np.flatnonzero(w.rows.known)[0])
    bad_a[i] = fast.fr_from_ints([11])[0]
    with pytest.raises(UnsatisfiedWitness, match=f"constraint {i} "):
        ProofPlan(pk, w, check=c_rows, known_rows=RowValues(bad_a, w.rows.b, w.rows.known)).run()
    with pytest.raises(InvalidInput, match="known row"):
        ProofPlan(pk, w, known_rows=RowValues(w.rows.a[:1], w.rows.b, w.rows.known))


def test_msm_drops_scalars_of_bases_at_infinity(cube):
    """Wires that never occur in B have B_s(tau) = 0: the key's MSM drops their scalars (remembering
    which bases those are per chunk) and still gives the sum of every term."""
    cs, pk, _, _ = cube
    n = pk.b1.shape[0]
    dead = pk.dead_rows("b1", 0, n)
    assert (
        dead.size and not pk.b1[dead].any() and pk.b1[np.setdiff1d(np.arange(n), dead)].any(axis=(1, 2)).all()
    )
    assert pk.dead_rows("b1", 0, n) is dead
    k = fast.plain_scalars(fast.fr_from_ints([3 + 7 * i for i in range(n)]))
    for part in ("a", "b1", "b2"):
        pts = getattr(pk, part)
        assert np.array_equal(pk.msm(part, k), fast.msm_plain(pts, k))
        assert np.array_equal(pk.msm(part, k[1:], 1), fast.msm_plain(pts[1:], k[1:]))


def test_wrong_number_of_public_inputs(cube):
    _, pk, vk, w = cube
    proof = prove(pk, w)
    with pytest.raises(InvalidInput):
        verify(vk, [35], proof)
    with pytest.raises(InvalidInput):
        verify(vk, [35, R], proof)


def test_rerandomized_proof_verifies(cube):
    _, pk, vk, w = cube
    proof = prove(pk, w)
    again = rerandomize(vk, proof)
    assert again != proof
    assert verify(vk, [35, 105], again)
    assert not verify(vk, [36, 105], again)


def test_batch_verify(cube):
    _, pk, vk, w = cube
    proofs = [prove(pk, w) for _ in range(5)]
    items = [([35, 105], p) for p in proofs]
    assert batch_verify(vk, items)
    assert batch_verify(vk, [])
    bad = list(items)
    bad[3] = ([35, 106], proofs[3])
    assert not batch_verify(vk, bad)
    swapped = list(items)
    swapped[1] = ([35, 105], Proof(proofs[1].a, proofs[2].b, proofs[1].c))
    assert not batch_verify(vk, swapped)


def test_ic_fixed_base_table_equals_msm(cube):
    """vk_x from the fixed-base IC table equals the Pippenger MSM for random and edge scalars (0, 1,
    digit 15 and carries, r - 1, equal scalars that make the batch-affine tree double points), and a
    key with an IC point at infinity."""
    import secrets

    from zkmb.groth16.keys import fixed_base_table
    from zkmb.groth16.verifier import ic_combination

    _, _, vk, _ = cube
    t = vk.ic_table
    assert t.shape == (3, 64, 15, 2, 4) and vk.ic_table is t  # built once
    gen = fast.g1_generator()
    assert (t[0, 0, 0] == vk.ic[0]).all()
    cases = [[secrets.randbelow(R) for _ in range(3)] for _ in range(5)]
    cases += [[0, 0, 0], [1, 0, 0], [1, 1, 1], [15, 16, 17], [R - 1] * 3, [2, 2, 2], [0, 1 << 252, 1 << 253]]
    for sc in cases:
        want = fast.msm_g1(vk.ic, fast.fr_from_ints(sc))
        assert (ic_combination(vk, sc) == want).all(), sc
    # a vector with repeated and infinite points: the tree meets P + P and P + O
    pts = np.concatenate([gen, gen, fast.g1_infinity(1), fast.g1_neg(gen)])
    key = VerifyingKey(vk.alpha_1, vk.beta_2, vk.gamma_2, vk.delta_2, pts)
    assert fixed_base_table(pts).shape == (4, 64, 15, 2, 4)
    for sc in ([5, 5, 7, 5], [3, 9, 1, 0], [R - 1, 1, 2, 2]):
        assert (ic_combination(key, sc) == fast.msm_g1(pts, fast.fr_from_ints(sc))).all(), sc


def test_bit_circuit_round_trip():
    cs = compile(Bits)
    pk, vk = setup(cs)
    s = 0xDEADBEEF12345678
    w = cs.solve({"s": s, "v": s * s % R})
    assert verify(vk, [s * s % R], prove(pk, w, cs=cs))
    assert not verify(vk, [(s * s + 1) % R], prove(pk, w))


def test_key_files(cube, tmp_path):
    cs, pk, vk, w = cube
    pk.save(tmp_path / "pk")
    vk.save(tmp_path / "vk")
    pk2 = ProvingKey.load(tmp_path / "pk", expect_digest=cs.digest())
    vk2 = VerifyingKey.load(tmp_path / "vk")
    assert verify(vk2, [35, 105], prove(pk2, w))
    assert np.array_equal(vk2.ic, vk.ic)

    raw = (tmp_path / "pk").read_bytes()
    cases = {
        "truncated": raw[:-8],
        "bad magic": b"X" + raw[1:],
        "flipped payload byte": raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:],
        "version": raw[:8] + (99).to_bytes(4, "little") + raw[12:],
        "empty": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InvalidInput):
            ProvingKey.load(tmp_path / name)
    with pytest.raises(InvalidInput, match="another circuit"):
        ProvingKey.load(tmp_path / "pk", expect_digest=bytes(32))
    with pytest.raises(InvalidInput, match="not a proving key"):
        ProvingKey.load(tmp_path / "vk")
    with pytest.raises(InvalidInput):
        ProvingKey.load(tmp_path / "missing")


def test_replaced_key_does_not_reuse_caches(cube):
    """dataclasses.replace with other points gets fresh e(alpha, beta) and IC table caches."""
    from dataclasses import replace

    cs, pk, vk, w = cube
    proof = prove(pk, w)
    assert verify(vk, [35, 105], proof)  # both caches built
    other = setup(cs)[1]
    mixed = replace(vk, ic=other.ic)
    assert mixed._ic_table is None and mixed._alphabeta is None
    assert not verify(mixed, [35, 105], proof)
    assert (mixed.ic_table[:, 0, 0] == other.ic).all()
