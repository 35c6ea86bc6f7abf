"""zkey_from_ptau: the phase-2 starting key from a prepared ptau, as ``snarkjs groth16 setup`` makes it.

Cross-checked byte for byte against snarkjs's own ``zkey0.zkey`` for the fixture circuits, accepted by
``verify_zkey`` and ``snarkjs zkey verify`` (before and after a contribution) for a circuit of ours, and
the ``zkmb setup keys`` path writes keys that ``load_keys`` accepts and that prove and verify.
"""

from __future__ import annotations

import pytest

from zkmb.errors import InvalidInput
from zkmb.groth16.convert import proving_key_from_zkey
from zkmb.groth16.keycheck import KeyCheckFailed, verify_zkey
from zkmb.groth16.phase2 import contribute
from zkmb.groth16.prover import prove
from zkmb.groth16.snarkjs import read_zkey, write_zkey
from zkmb.groth16.verifier import verify
from zkmb.groth16.zkey_new import zkey_from_ptau
from zkmb.r1cs import Circuit, Public, Secret, compile
from zkmb.r1cs.circom import read_r1cs, write_r1cs

from .conftest import snarkjs


class Tiny(Circuit):
    x = Public()
    y = Public()
    w = Secret(count=3)
    unused = Secret()

    def define(self, api):
        p = api.mul(self.w[0], self.w[1])
        q = api.mul(p, api.add(self.w[2], self.x))
        api.assert_equal(api.add(q, api.mul_const(self.x, 5)), self.y)


def _tiny_witness(cs):
    w0, w1, w2, x = 3, 7, 11, 2
    return cs.solve({"x": x, "y": w0 * w1 * (w2 + x) + 5 * x, "w": [w0, w1, w2], "unused": 9})


@pytest.fixture(scope="module")
def art(snarkjs_artifacts):
    return snarkjs_artifacts


@pytest.mark.parametrize("name", ["poseidon", "mul"])
def test_same_bytes_as_snarkjs_setup(art, tmp_path, name):
    c = art.circuits[name]
    zk = zkey_from_ptau(read_r1cs(c.path("circuit.r1cs")), art.ptau)
    out = tmp_path / "ours.zkey"
    write_zkey(out, zk)
    assert out.read_bytes() == c.path("zkey0.zkey").read_bytes()


def test_our_circuit_accepted_by_us_and_snarkjs(art, tmp_path):
    cs = compile(Tiny)
    r1cs = tmp_path / "tiny.r1cs"
    write_r1cs(cs, r1cs)
    zk = zkey_from_ptau(cs, art.ptau)
    assert zk.n_contributions == 0
    rep = verify_zkey(zk, cs, art.ptau)
    assert (rep.n_public, rep.n_vars) == (cs.n_public, cs.n_wires)
    z1 = contribute(zk, name="zkmb test")
    for i, key in enumerate((zk, z1)):
        path = tmp_path / f"k{i}.zkey"
        write_zkey(path, key)
        assert verify_zkey(path, r1cs, art.ptau).n_contributions == i
        res = snarkjs("zkey", "verify", r1cs, art.ptau, path, cwd=tmp_path, check=False)
        assert res.returncode == 0 and "ZKey Ok!" in res.stdout + res.stderr, res.stdout + res.stderr
    w = _tiny_witness(cs)
    pk = proving_key_from_zkey(z1)  # digest from csHash, not cs.digest(): prove without cs
    assert cs.is_satisfied(w)
    assert verify(pk.vk, w.public_inputs(), prove(pk, w))
    # The uncontributed key with a changed C point is refused.
    bad = read_zkey(tmp_path / "k1.zkey")
    bad.c[[0, 1]] = bad.c[[1, 0]]
    with pytest.raises(KeyCheckFailed):
        verify_zkey(bad, cs, art.ptau)


def test_refuses_unprepared_ptau(art):
    with pytest.raises(InvalidInput, match="not prepared"):
        zkey_from_ptau(compile(Tiny), art.root / "pot1.ptau")


def test_setup_keys_from_ptau(art, tmp_path, monkeypatch):
    from zkmb.circuits import keys as K

    from zkmb.groth16.ceremony_cli import setup_keys_from_ptau

    cs = compile(Tiny)
    monkeypatch.setitem(K.CIRCUITS, "tiny", lambda: cs)
    assert setup_keys_from_ptau(art.ptau, tmp_path, ["tiny"]) == ["tiny"]
    entry = K.read_manifest(tmp_path)["tiny"]
    assert entry["zkey_file"] == "tiny.zkey" and entry["digest"] == cs.digest().hex()
    assert verify_zkey(tmp_path / "tiny.zkey", cs, art.ptau).n_contributions == 1
    pk = K.load_keys(tmp_path, ["tiny"], "prover")["tiny"]
    vk = K.load_keys(tmp_path, ["tiny"], "verifier")["tiny"]
    w = _tiny_witness(cs)
    assert verify(vk, w.public_inputs(), prove(pk, w, cs=cs))
