"""Phase 1 (powers of tau): our files against snarkjs and snarkjs's against ours, plus tampering."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import require
from tests.groth16.conftest import TOOLS, snarkjs, tools_available
from zkmb.groth16 import ptau as P
from zkmb.groth16.snarkjs import read_ptau_info, read_ptau_lagrange, read_ptau_points

POWER = 4


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """A power-4 ptau: new, two contributions, prepared; written and read back."""
    d = tmp_path_factory.mktemp("ptau")
    pt = P.ptau_contribute(P.ptau_new(POWER), name="alice")
    pt = P.ptau_contribute(pt, name="bob", entropy=b"more")
    P.write_ptau(d / "raw.ptau", pt)
    prepared = P.ptau_prepare_phase2(pt)
    P.write_ptau(d / "pot.ptau", prepared)
    return d, prepared


@pytest.mark.parametrize("n", [0, 1, 63, 127, 128, 129, 255, 256, 257, 1000])
def test_blake2b_matches_hashlib_and_resumes(n):
    data = os.urandom(n)
    h = P._Blake2b()
    h.update(data[: n // 3]).update(data[n // 3 :])
    assert h.digest() == hashlib.blake2b(data).digest()
    h2 = P._Blake2b.from_partial(h.partial()).update(b"tail")
    assert h2.digest() == hashlib.blake2b(data + b"tail").digest()


def test_roundtrip_and_verify(ours):
    d, pt = ours
    rd = P.read_ptau(d / "pot.ptau")
    assert (d / "pot.ptau").read_bytes() == (
        P.write_ptau(d / "again.ptau", rd) or (d / "again.ptau").read_bytes()
    )
    rep = P.ptau_verify(d / "pot.ptau")
    assert rep.n_contributions == 2 and rep.prepared and rep.names == ["alice", "bob"]
    assert read_ptau_info(d / "pot.ptau").prepared


def test_points_are_powers():
    t, a, b = 7, 11, 13
    pt = P.ptau_contribute(P.ptau_new(2), secrets_=(t, a, b))
    f = P._fast()
    assert np.array_equal(pt.tau_g1, f.g1_mul_generator([t**i for i in range(7)]))
    assert np.array_equal(pt.tau_g2, f.g2_mul_generator([t**i for i in range(4)]))
    assert np.array_equal(pt.alpha_tau_g1, f.g1_mul_generator([a * t**i for i in range(4)]))
    assert np.array_equal(pt.beta_g2, f.g2_mul_generator([b])[0])


def test_lagrange_matches_definition():
    t = 5
    pt = P.ptau_prepare_phase2(P.ptau_contribute(P.ptau_new(2), secrets_=(t, 3, 4)))
    from zkmb.algebra.params import FR_ROOT_OF_UNITY, R

    f = P._fast()
    for m in (1, 2, 4, 8):
        w = pow(FR_ROOT_OF_UNITY, 2**28 // m, R)
        top = 7 if m == 8 else m  # the missing power tau^7
        want = [
            sum(pow(t, k, R) * pow(w, -i * k, R) for k in range(top)) * pow(m, -1, R) % R for i in range(m)
        ]
        assert np.array_equal(pt.lagrange[12][m - 1 : 2 * m - 1], f.g1_mul_generator(want))


@pytest.fixture
def node_tools() -> None:
    """The snarkjs tests: skipped without node and the pinned tools, a failure in CI (conftest.require)."""
    require(tools_available(), f"node, snarkjs, circom2 and circomlib are needed (looked in {TOOLS})")


needs_tools = pytest.mark.usefixtures("node_tools")


@needs_tools
def test_snarkjs_accepts_ours(ours):
    d, _ = ours
    res = snarkjs("powersoftau", "verify", d / "pot.ptau", cwd=d)
    assert "Powers of Tau Ok!" in res.stdout + res.stderr


@needs_tools
def test_lagrange_equals_snarkjs_prepare(ours):
    d, pt = ours
    snarkjs("powersoftau", "prepare", "phase2", d / "raw.ptau", d / "theirs.ptau", cwd=d)
    for size in (1, 2, 16, 32):
        for name in ("tau_g1", "tau_g2", "alpha_tau_g1", "beta_tau_g1"):
            if size == 32 and name != "tau_g1":
                continue
            assert np.array_equal(
                read_ptau_lagrange(d / "theirs.ptau", name, size),
                read_ptau_lagrange(d / "pot.ptau", name, size),
            )


@needs_tools
def test_snarkjs_contribution_then_ours(ours):
    d, _ = ours
    snarkjs("powersoftau", "contribute", d / "raw.ptau", d / "c3.ptau", "--name=carol", "-e=x", cwd=d)
    pt = P.ptau_contribute(P.read_ptau(d / "c3.ptau"), name="dave")
    P.write_ptau(d / "c4.ptau", pt)
    assert P.ptau_verify(d / "c4.ptau").names == ["alice", "bob", "carol", "dave"]
    res = snarkjs("powersoftau", "verify", d / "c4.ptau", cwd=d)
    assert "Powers of Tau Ok!" in res.stdout + res.stderr


@needs_tools
def test_we_verify_snarkjs_fixture(snarkjs_artifacts):
    rep = P.ptau_verify(snarkjs_artifacts.ptau)
    assert rep.power == 10 and rep.n_contributions == 1 and rep.prepared


def _bad(pt: P.Ptau, match: str) -> None:
    with pytest.raises(P.PtauCheckFailed, match=match):
        P.ptau_verify(pt)


def test_tampering_rejected(ours):
    _, pt = ours
    f = P._fast()
    t = pt.tau_g1.copy()
    t[[3, 4]] = t[[4, 3]]
    _bad(replace(pt, tau_g1=t), "powers do not match")
    g2 = pt.tau_g2.copy()
    g2[[2, 3]] = g2[[3, 2]]
    _bad(replace(pt, tau_g2=g2), "tauG2 section")
    al = pt.alpha_tau_g1.copy()
    al[5] = f.g1_double(al[5][None])[0]
    _bad(replace(pt, alpha_tau_g1=al), "alphaTauG1")
    lag = dict(pt.lagrange)
    lag[14] = lag[14].copy()
    lag[14][[7, 8]] = lag[14][[8, 7]]
    _bad(replace(pt, lagrange=lag), "Lagrange section 14")
    # a contribution whose proof of knowledge is wrong (g2_spx for a different secret)
    c = pt.contributions[0]
    kg2 = c.key_g2.copy()
    kg2[1] = f.g2_double(kg2[1][None])[0]
    _bad(replace(pt, contributions=[replace(c, key_g2=kg2), pt.contributions[1]]), "alpha")
    # a record whose points do not follow the previous one
    c1 = pt.contributions[1]
    _bad(replace(pt, contributions=[c, replace(c1, beta_g1=c.beta_g1)]), "beta")
    # the hash chain binds the points
    c1b = replace(c1, next_challenge=bytes(64))
    _bad(replace(pt, contributions=[c, c1b]), "next challenge")
    _bad(P.ptau_new(POWER), "no contributions")


def test_read_points_consistent(ours):
    d, pt = ours
    assert np.array_equal(read_ptau_points(d / "pot.ptau", "tau_g1"), pt.tau_g1)


@pytest.mark.parametrize("power", [3, 5])
def test_ptau_single_equals_contribute_then_prepare(power):
    """The fixed-base one-contribution accumulator has the slow path's sections exactly (powers and
    every Lagrange block) for the same secrets, and verifies as a ceremony file."""
    from zkmb.groth16.ptau import ptau_contribute, ptau_new, ptau_prepare_phase2, ptau_single, ptau_verify

    s = (123456789, 987654321, 55555)
    slow = ptau_prepare_phase2(ptau_contribute(ptau_new(power), secrets_=s))
    fast = ptau_single(power, secrets_=s, name="single")
    for name in ("tau_g1", "tau_g2", "alpha_tau_g1", "beta_tau_g1", "beta_g2"):
        assert np.array_equal(getattr(slow, name), getattr(fast, name)), name
    assert sorted(fast.lagrange) == [12, 13, 14, 15]
    for sid in (12, 13, 14, 15):
        assert np.array_equal(slow.lagrange[sid], fast.lagrange[sid]), sid
    rep = ptau_verify(fast)
    assert rep.prepared and rep.n_contributions == 1 and rep.names == ["single"]
    bad = ptau_single(power, secrets_=s)
    bad.lagrange[12][3] = bad.lagrange[12][4]
    with pytest.raises(P.PtauCheckFailed):
        ptau_verify(bad)
