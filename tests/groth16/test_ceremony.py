"""Verifiable setup: client check of a proving key against R1CS + ptau, and phase-2 contributions.

Keys come from real snarkjs (the ``snarkjs_artifacts`` fixture); tampered copies must be refused, our
contributions must pass ``snarkjs zkey verify`` and snarkjs's must pass ours.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from zkmb.errors import InvalidInput, InvalidPoint
from zkmb.groth16.keycheck import KeyCheckFailed, cached_verify_zkey, expected_domain_size, verify_zkey
from zkmb.groth16.phase2 import (
    Contribution,
    contribute,
    hash_to_g2,
    parse_contributions,
    verify_contributions,
)
from zkmb.groth16.snarkjs import read_zkey, write_zkey

from .conftest import snarkjs


@pytest.fixture(scope="module")
def art(snarkjs_artifacts):
    return snarkjs_artifacts


def _paths(art, name="poseidon"):
    c = art.circuits[name]
    return c.path("circuit.r1cs"), art.ptau, c


@pytest.mark.parametrize("name", ["poseidon", "mul"])
@pytest.mark.parametrize("key", ["zkey0.zkey", "zkey1.zkey"])
def test_snarkjs_keys_accepted(art, name, key):
    r1cs, ptau, c = _paths(art, name)
    rep = verify_zkey(c.path(key), r1cs, ptau)
    assert rep.n_contributions == (key == "zkey1.zkey")
    assert rep.domain_size == expected_domain_size(rep.n_constraints, rep.n_public)


def test_key_for_another_circuit(art):
    r1cs, ptau, _ = _paths(art, "poseidon")
    with pytest.raises(KeyCheckFailed, match="another circuit"):
        verify_zkey(art.circuits["mul"].path("zkey1.zkey"), r1cs, ptau)


def _swap(arr: np.ndarray, i: int, j: int) -> np.ndarray:
    """Swap rows i and j, moving j forward to the first row that differs from row i."""
    while np.array_equal(arr[i], arr[j]):
        j += 1
    out = arr.copy()
    out[[i, j]] = arr[[j, i]]
    return out


def _tampered(zk):
    """(label, tampered key, expected message fragment)."""
    f = zk.coef_value.copy()
    f[3] = zk.coef_value[4] if not np.array_equal(zk.coef_value[3], zk.coef_value[4]) else zk.coef_value[0]
    return [
        ("A swap", replace(zk, a=_swap(zk.a, 1, 2)), "A query"),
        ("B1 swap", replace(zk, b1=_swap(zk.b1, 0, 1)), "B1 query"),
        ("B2 swap", replace(zk, b2=_swap(zk.b2, 0, 1)), "B2 query"),
        ("IC swap", replace(zk, ic=_swap(zk.ic, 0, 1)), "IC, C"),
        ("C swap", replace(zk, c=_swap(zk.c, 0, 1)), "IC, C"),
        ("H swap", replace(zk, h=_swap(zk.h, 0, 1)), "IC, C"),
        ("coef", replace(zk, coef_value=f), "coefficient"),
        ("alpha", replace(zk, alpha_1=zk.beta_1.copy()), "alpha"),
        ("delta_1 only", replace(zk, delta_1=zk.alpha_1.copy()), "same delta"),
    ]


@pytest.mark.parametrize("idx", range(9))
def test_tampered_keys_refused(art, idx):
    r1cs, ptau, c = _paths(art)
    zk = read_zkey(c.path("zkey1.zkey"))
    label, bad, msg = _tampered(zk)[idx]
    with pytest.raises(KeyCheckFailed, match=msg):
        verify_zkey(bad, r1cs, ptau)


def test_delta_zero_refused(art, tmp_path):
    """delta = 0 (both deltas and the C/H queries at infinity) removes the blinding: refused both when
    read from a file and when handed over as an object."""
    r1cs, ptau, c = _paths(art)
    zk = read_zkey(c.path("zkey1.zkey"))
    bad = replace(
        zk,
        delta_1=np.zeros_like(zk.delta_1),
        delta_2=np.zeros_like(zk.delta_2),
        c=np.zeros_like(zk.c),
        h=np.zeros_like(zk.h),
    )
    with pytest.raises(KeyCheckFailed, match="delta is zero"):
        verify_zkey(bad, r1cs, ptau)
    write_zkey(tmp_path / "bad.zkey", bad)
    with pytest.raises(InvalidPoint):
        verify_zkey(tmp_path / "bad.zkey", r1cs, ptau)


def test_delta_rescaled_without_record_refused(art):
    """A consistent delta change (C, H rescaled) that no contribution record accounts for."""
    r1cs, ptau, c = _paths(art)
    zk = read_zkey(c.path("zkey1.zkey"))
    z2 = contribute(zk, secret=12345)
    silent = replace(z2, contributions=zk.contributions)
    with pytest.raises(InvalidInput, match="deltaAfter"):
        verify_zkey(silent, r1cs, ptau)


def test_hash_to_g2_matches_snarkjs(art):
    """snarkjs's own contribution verifies with our hash_to_g2 (a wrong map fails the pairing)."""
    zk = read_zkey(art.circuits["poseidon"].path("zkey1.zkey"))
    assert verify_contributions(zk) == 1
    pt = hash_to_g2(bytes(range(64)))
    assert pt is not None
    from py_ecc.optimized_bn128 import FQ2, b2, is_on_curve, multiply

    q = (FQ2(list(pt[0])), FQ2(list(pt[1])), FQ2.one())
    assert is_on_curve(q, b2)
    assert (
        multiply(q, 21888242871839275222246405745257275088548364400416034343698204186575808495617)[2]
        == FQ2.zero()
    )


def test_forged_transcript_refused(art):
    zk = read_zkey(art.circuits["poseidon"].path("zkey1.zkey"))
    (rec,) = parse_contributions(zk.contributions)
    bad = Contribution(rec.delta_after, rec.g1_s, rec.g1_sx, rec.g2_spx, bytes(64), rec.type, rec.params)
    with pytest.raises(InvalidInput, match="transcript"):
        verify_contributions(replace(zk, contributions=zk.contributions[:4] + bad.encode()))
    # A wrong g1_sx (no knowledge of x): transcript recomputed to match, pairing fails.
    bad2 = replace(zk, contributions=zk.contributions)
    recs = parse_contributions(bad2.contributions)
    assert recs[0].transcript == rec.transcript


@pytest.mark.parametrize("start", ["zkey0.zkey", "zkey1.zkey"])
def test_our_contribution_accepted_by_snarkjs_and_us(art, tmp_path, start):
    r1cs, ptau, c = _paths(art)
    zk = read_zkey(c.path(start))
    z2 = contribute(contribute(zk, name="zkmb test"), name="second")
    out = tmp_path / "ours.zkey"
    write_zkey(out, z2)
    rep = verify_zkey(out, r1cs, ptau)
    assert rep.n_contributions == zk.n_contributions + 2
    res = snarkjs("zkey", "verify", r1cs, ptau, out, cwd=c.dir, check=False)
    assert res.returncode == 0 and "ZKey Ok!" in res.stdout + res.stderr, res.stdout + res.stderr


def test_snarkjs_rejects_our_tampered_h(art, tmp_path):
    """Sanity of the interop test itself: snarkjs refuses a key of ours with a swapped H point, as do we."""
    r1cs, ptau, c = _paths(art)
    z2 = contribute(read_zkey(c.path("zkey0.zkey")))
    bad = replace(z2, h=_swap(z2.h, 2, 3))
    out = tmp_path / "bad.zkey"
    write_zkey(out, bad)
    res = snarkjs("zkey", "verify", r1cs, ptau, out, cwd=c.dir, check=False)
    assert "ZKey Ok!" not in res.stdout + res.stderr
    with pytest.raises(KeyCheckFailed):
        verify_zkey(out, r1cs, ptau)


def test_cached_verdict(art, tmp_path):
    r1cs, ptau, c = _paths(art, "mul")
    rep = cached_verify_zkey(c.path("zkey1.zkey"), r1cs, ptau, tmp_path)
    assert "total" in rep.timings
    rep2 = cached_verify_zkey(c.path("zkey1.zkey"), r1cs, ptau, tmp_path)
    assert rep2.timings == {"cached": 0.0} and rep2.digest == rep.digest
