"""Our Groth16 against snarkjs 0.7.6 on circom circuits, in both directions, plus the CLI."""

from __future__ import annotations

import json

import pytest

from tests.groth16.conftest import snarkjs
from zkmb.cli import main
from zkmb.groth16 import snarkjs as sj
from zkmb.groth16.convert import (
    proof_from_snarkjs,
    proof_to_snarkjs,
    proving_key_from_zkey,
    verifying_key_from_snarkjs,
)
from zkmb.groth16.prover import prove
from zkmb.groth16.verifier import batch_verify, verify
from zkmb.r1cs import read_r1cs, read_wtns


@pytest.fixture(params=["poseidon", "mul"])
def art(request, snarkjs_artifacts):
    return snarkjs_artifacts.circuits[request.param]


def _vk(art):
    return verifying_key_from_snarkjs(sj.vk_from_json(json.loads(art.path("vk1.json").read_text())))


def test_our_proof_accepted_by_snarkjs(art, tmp_path):
    pk = proving_key_from_zkey(sj.read_zkey(art.path("zkey1.zkey")))
    cs = read_r1cs(art.path("circuit.r1cs"))
    wtns = read_wtns(art.path("circuit.wtns"), cs)
    assert cs.is_satisfied(wtns)
    proof = prove(pk, wtns)
    (tmp_path / "proof.json").write_text(json.dumps(sj.proof_to_json(proof_to_snarkjs(proof))))
    (tmp_path / "public.json").write_text(json.dumps(sj.public_to_json(wtns.public_inputs())))
    res = snarkjs(
        "groth16", "verify", art.path("vk1.json"), "public.json", "proof.json", cwd=tmp_path, check=False
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
    # and snarkjs rejects it for another public input
    bad = wtns.public_inputs()
    bad[0] = (bad[0] + 1) % sj.R
    (tmp_path / "public.json").write_text(json.dumps(sj.public_to_json(bad)))
    res = snarkjs(
        "groth16", "verify", art.path("vk1.json"), "public.json", "proof.json", cwd=tmp_path, check=False
    )
    assert "OK" not in res.stdout


def test_snarkjs_proof_accepted_by_us(art):
    vk = _vk(art)
    proof = proof_from_snarkjs(sj.proof_from_json(json.loads(art.path("proof1.json").read_text())))
    public = sj.public_from_json(json.loads(art.path("public1.json").read_text()))
    assert verify(vk, public, proof)
    assert batch_verify(vk, [(public, proof), (public, proof)])
    changed = [(public[0] + 1) % sj.R, *public[1:]]
    assert not verify(vk, changed, proof)


def test_cli_prove_then_snarkjs_verify_and_cli_verify(art, tmp_path, capsys):
    proof, public = tmp_path / "proof.json", tmp_path / "public.json"
    assert (
        main(
            [
                "groth16",
                "prove",
                str(art.path("zkey1.zkey")),
                str(art.path("circuit.wtns")),
                str(proof),
                str(public),
            ]
        )
        == 0
    )
    res = snarkjs("groth16", "verify", art.path("vk1.json"), public, proof, cwd=tmp_path, check=False)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
    assert main(["groth16", "verify", str(art.path("vk1.json")), str(public), str(proof)]) == 0
    # snarkjs's own proof through our CLI verifier
    assert (
        main(
            [
                "groth16",
                "verify",
                str(art.path("vk1.json")),
                str(art.path("public1.json")),
                str(art.path("proof1.json")),
            ]
        )
        == 0
    )
    # a changed public input: exit status 1
    pub = json.loads(public.read_text())
    pub[0] = str((int(pub[0]) + 1) % sj.R)
    public.write_text(json.dumps(pub))
    assert main(["groth16", "verify", str(art.path("vk1.json")), str(public), str(proof)]) == 1


def test_cli_rejects_malformed_proof(art, tmp_path, capsys):
    proof = json.loads(art.path("proof1.json").read_text())
    proof["pi_a"][1] = str((int(proof["pi_a"][1]) + 1) % sj.P)  # A off the curve
    bad = tmp_path / "proof.json"
    bad.write_text(json.dumps(proof))
    assert (
        main(["groth16", "verify", str(art.path("vk1.json")), str(art.path("public1.json")), str(bad)]) == 1
    )
    assert "error" in capsys.readouterr().err
    bad.write_text("{not json")
    assert (
        main(["groth16", "verify", str(art.path("vk1.json")), str(art.path("public1.json")), str(bad)]) == 1
    )
