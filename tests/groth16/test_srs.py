"""Keys checked against a small SRS (zkmb.groth16.srs, keycheck.verify_key_srs, circuits.keys.verify_key_dir).

The SRS format and its validation, the powers check, the H interpolation identity at the scalar level,
acceptance of honest keys (ours sharing one tau, and a snarkjs-style key from a ptau ceremony, which
shows the check does not depend on our setup code) and rejection of each kind of tampering.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from dataclasses import replace

import numpy as np
import pytest
from py_ecc import optimized_bn128 as ob

from tests.groth16.test_groth16 import Bits, Cube
from tests.groth16.test_snarkjs_format import twist_point_outside_g2
from tests.groth16.test_zkey_new import Tiny
from zkmb.algebra import fast
from zkmb.algebra.params import R
from zkmb.algebra.ref.ntt import domain_root
from zkmb.errors import InvalidInput
from zkmb.groth16 import srs as S
from zkmb.groth16.keycheck import KeyCheckFailed, cached_verify_key_srs, verify_key_srs
from zkmb.groth16.r1cs_to_qap import CsrRows, lagrange_at
from zkmb.groth16.setup import Trapdoor, random_tau, setup
from zkmb.r1cs import compile

TAU = 0x1234_5678_9ABC_DEF0_1122_3344


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared():
    """Two circuits' keys made with one tau, and the SRS of that tau covering both domains."""
    tau = random_tau()
    cs1, cs2 = compile(Cube), compile(Bits)
    pk1, _ = setup(cs1, trapdoor=Trapdoor.random(tau))
    pk2, _ = setup(cs2, trapdoor=Trapdoor.random(tau))
    n = max(pk1.domain_size, pk2.domain_size)
    srs = S.srs_generate(S.srs_size_for_domain(n), tau)
    return cs1, pk1, cs2, pk2, srs


def _g1_int(k: int):
    p = ob.normalize(ob.multiply(ob.G1, k % R))
    return (int(p[0]), int(p[1]))


def _g1(k: int) -> np.ndarray:
    return fast.g1_from_affine([_g1_int(k)])


def _g2(k: int) -> np.ndarray:
    return fast.g2_mul_generator([k])


# --------------------------------------------------------------------------- SRS format


def test_generate_matches_py_ecc_and_roundtrip(tmp_path):
    srs = S.srs_generate(9, TAU)
    # G1 powers 0..8, G2 powers 1, tau, tau^2, tau^4, tau^8: domains up to 8 (powers < n and tau^n G2)
    assert srs.n_g1 == 9 and srs.n_g2 == 5 and srs.max_domain == 8
    got = fast.g1_to_affine(srs.tau_g1)
    for k in (0, 1, 2, 8):
        assert got[k] == _g1_int(pow(TAU, k, R))
    assert np.array_equal(srs.tau_g2, fast.g2_mul_generator([pow(TAU, e, R) for e in (0, 1, 2, 4, 8)]))
    assert np.array_equal(srs.g2_power(4), srs.tau_g2[3]) and srs.g2_power(16) is None
    assert srs.g2_power(3) is None
    S.verify_srs(srs)
    path = tmp_path / "srs.bin"
    S.write_srs(path, srs)
    back = S.read_srs(path)
    assert np.array_equal(back.tau_g1, srs.tau_g1) and np.array_equal(back.tau_g2, srs.tau_g2)
    assert path.stat().st_size == 56 + 9 * 64 + 5 * 128
    assert S.srs_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    # without the G2 powers: a version-1 file, readable as before
    v1 = S.Srs(srs.tau_g1, np.ascontiguousarray(srs.tau_g2[:2]))
    S.write_srs(path, v1)
    assert struct.unpack("<I", path.read_bytes()[8:12])[0] == 1 and S.read_srs(path).max_domain == 4


@pytest.mark.parametrize(("m", "n"), [(2, 1), (3, 2), (6, 2), (7, 4), (14, 4), (15, 8)])
def test_max_domain_version_1(m, n):
    """Only G2 and tau G2: a domain n needs the powers 0..2n-2."""
    srs = S.Srs(np.zeros((m, 2, 4), dtype=np.uint64), np.zeros((2, 2, 2, 4), dtype=np.uint64))
    assert srs.max_domain == n
    assert 2 * n - 1 <= m < 4 * n - 1


@pytest.mark.parametrize(("m", "n"), [(2, 2), (3, 2), (4, 4), (7, 4), (8, 8), (15, 8)])
def test_max_domain_with_g2_powers(m, n):
    """With tau^n G2: a domain n needs the powers 0..n-1 only."""
    k = len(S._g2_exponents(m))
    srs = S.Srs(np.zeros((m, 2, 4), dtype=np.uint64), np.zeros((k, 2, 2, 4), dtype=np.uint64))
    assert srs.max_domain == n and S.srs_size_for_domain(n) == n


def test_generate_rejects_bad_arguments():
    for m, tau in ((1, TAU), (5, 0), (5, 1), (5, R + 1)):
        with pytest.raises(InvalidInput):
            S.srs_generate(m, tau)


def _rewrite(path, srs: S.Srs) -> None:
    """Write points as they are (write_srs checks shapes only), with a valid checksum."""
    S.write_srs(path, srs)


def _corrupt(tmp_path, name: str, edit) -> object:
    srs = S.srs_generate(7, TAU)
    path = tmp_path / f"{name}.bin"
    S.write_srs(path, srs)
    raw = bytearray(path.read_bytes())
    out = edit(raw, srs, path)
    if out is not None:
        path.write_bytes(bytes(out))
    return path


def _bad_g1_gen(raw, srs, path):
    srs.tau_g1[0] = _g1(2)[0]
    _rewrite(path, srs)


def _bad_g2_gen(raw, srs, path):
    srs.tau_g2[0] = _g2(2)[0]
    _rewrite(path, srs)


def _off_curve(raw, srs, path):
    srs.tau_g1[3, 1] = srs.tau_g1[2, 1]  # y of another point
    _rewrite(path, srs)


def _g2_outside(raw, srs, path):
    srs.tau_g2[1] = fast.g2_from_affine([twist_point_outside_g2()])[0]
    _rewrite(path, srs)


def _g2_beyond_g1(raw, srs, path):
    """tau^4 G2 with 3 G1 powers (write_srs refuses that shape: packed by hand, valid checksum)."""
    g1, g2 = np.ascontiguousarray(srs.tau_g1[:3]).tobytes(), np.ascontiguousarray(srs.tau_g2).tobytes()
    head = S._HEAD.pack(S.SRS_MAGIC, 2, srs.n_g2, 3, hashlib.sha256(g1 + g2).digest())
    path.write_bytes(head + g1 + g2)


def _tau_zero(raw, srs, path):
    srs.tau_g1[1:] = 0
    _rewrite(path, srs)


def _noncanonical(raw, srs, path):
    srs.tau_g1[2, 0] = np.uint64(2**64 - 1)
    _rewrite(path, srs)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda raw, s, p: raw[:-1], "size"),
        (lambda raw, s, p: raw[:40], "truncated"),
        (lambda raw, s, p: b"zkmbsrs2" + raw[8:], "bad magic"),
        (lambda raw, s, p: raw[:8] + struct.pack("<I", 3) + raw[12:], "version"),
        (lambda raw, s, p: raw[:16] + struct.pack("<Q", 1 << 40) + raw[24:], "absurd"),
        (lambda raw, s, p: raw[:12] + struct.pack("<I", 1) + raw[16:], "absurd"),
        (lambda raw, s, p: raw[:8] + struct.pack("<I", 1) + raw[12:], "absurd"),  # v1 has 2 G2 points
        (_g2_beyond_g1, "G2 powers beyond"),
        (lambda raw, s, p: raw[:-1] + bytes([raw[-1] ^ 1]), "checksum"),
        (lambda raw, s, p: raw + b"\0", "size"),
        (_bad_g1_gen, "tau_g1\\[0\\] is not the G1 generator"),
        (_bad_g2_gen, "tau_g2\\[0\\] is not the G2 generator"),
        (_off_curve, "tau_g1\\[3\\] is not a point"),
        (_noncanonical, "tau_g1\\[2\\] is not a point"),
        (_g2_outside, "tau_g2\\[1\\] is not a point of G2"),
        (_tau_zero, "tau_g1\\[1\\] is infinity"),
    ],
)
def test_read_srs_rejects(tmp_path, edit, match):
    path = _corrupt(tmp_path, "bad", edit)
    with pytest.raises(InvalidInput, match=match):
        S.read_srs(path)


def test_read_srs_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="cannot open"):
        S.read_srs(tmp_path / "nope.bin")


# --------------------------------------------------------------------------- powers check


def _altered(edit) -> S.Srs:
    srs = S.srs_generate(9, TAU)
    edit(srs)
    return srs


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.tau_g1.__setitem__([3, 4], s.tau_g1[[4, 3]]),  # swapped powers
        lambda s: s.tau_g1.__setitem__(5, fast.g1_add(s.tau_g1[5:6], _g1(1))[0]),  # one power + G1
        lambda s: s.tau_g1.__setitem__(8, _g1(pow(TAU, 9, R))[0]),  # last power wrong
        lambda s: s.tau_g2.__setitem__(1, _g2(TAU + 1)[0]),  # G2 tau of another tau
        lambda s: s.tau_g2.__setitem__(3, _g2(pow(TAU, 4, R) + 1)[0]),  # tau^4 G2 wrong
        lambda s: s.tau_g2.__setitem__(4, s.tau_g2[3]),  # tau^8 G2 = tau^4 G2
        lambda s: s.tau_g1.__setitem__(slice(1, None), _g1(1)),  # tau = 1
    ],
)
def test_verify_srs_catches_altered_powers(edit):
    with pytest.raises(S.SrsCheckFailed):
        S.verify_srs(_altered(edit))


def test_verify_srs_other_tau_everywhere_ok():
    S.verify_srs(S.srs_generate(9, TAU + 5))


# --------------------------------------------------------------------------- compact parts


def test_srs_parts_roundtrip_and_prefix(tmp_path):
    srs = S.srs_generate(10_000, TAU)
    recs = S.write_srs_parts(srs, tmp_path)
    assert [(r["start"], r["count"]) for r in recs] == [(0, 4096), (4096, 4096), (8192, 1808)]
    assert recs[0]["bytes"] == 36 + 4096 * 32 + srs.n_g2 * 64 and recs[1]["bytes"] == 36 + 4096 * 32
    for r in recs:
        assert r["sha256"] == hashlib.sha256((tmp_path / r["file"]).read_bytes()).hexdigest()
    back = S.read_srs_parts([tmp_path / r["file"] for r in recs])
    assert np.array_equal(back.tau_g1, srs.tau_g1) and np.array_equal(back.tau_g2, srs.tau_g2)
    prefix = S.read_srs_parts([tmp_path / r["file"] for r in recs[:2]])
    assert prefix.n_g1 == 8192 and prefix.n_g2 == 2 + 13 and prefix.max_domain == 8192  # tau^8192 G2 kept
    S.verify_srs(prefix)
    assert S.parts_needed(8192) == 2 and S.parts_needed(8193) == 3 and S.parts_needed(1) == 1
    # a smaller SRS written over it removes the parts it no longer has
    S.write_srs_parts(S.srs_generate(5000, TAU), tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.srsc")) == ["srs_0.srsc", "srs_1.srsc"]


def _part_edit(tmp_path, edit):
    srs = S.srs_generate(5000, TAU)
    recs = S.write_srs_parts(srs, tmp_path)
    paths = [tmp_path / r["file"] for r in recs]
    raw = bytearray(paths[0].read_bytes())
    edit(raw, paths)
    paths[0].write_bytes(bytes(raw))
    return paths


def _flip_point(raw, paths, k=5, byte=31):
    raw[36 + 32 * k + byte] ^= 1  # the last byte of x: usually no curve point, else another point


def _set_flags(raw, paths, k=7, flags=0b01):
    raw[36 + 32 * k] = (raw[36 + 32 * k] & 0x3F) | (flags << 6)


def _non_canonical(raw, paths, k=3):
    from zkmb.algebra.params import P

    x = int.from_bytes(bytes(raw[36 + 32 * k : 36 + 32 * k + 32]), "big") & ((1 << 254) - 1)
    flags = raw[36 + 32 * k] >> 6
    raw[36 + 32 * k : 36 + 32 * k + 32] = (x + P).to_bytes(32, "big")  # x + p < 2^254: same point mod p
    raw[36 + 32 * k] |= flags << 6


def _g2_outside_part(raw, paths):
    from zkmb.algebra.serialize import g2_to_bytes

    off = len(raw) - 64 * 3
    raw[off : off + 64] = g2_to_bytes(twist_point_outside_g2(), compressed=True)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda raw, p: raw.__delitem__(slice(-1, None)), "size"),
        (lambda raw, p: raw.__setitem__(slice(0, 8), b"zkmbsrcX"), "not a zkmb SRS part"),
        (_flip_point, "G1 point 5: x coordinate has no point|SRS rejected"),
        (_set_flags, "G1 point 7: the point at infinity is not allowed"),
        (lambda raw, p: _set_flags(raw, p, 2, 0b00), "G1 point 2: invalid flag bits"),
        (_non_canonical, "G1 point 3: coordinate not canonical"),
        (_g2_outside_part, "G2 point .*: point not in the prime-order subgroup"),
    ],
)
def test_srs_parts_refuse_bad_points(tmp_path, edit, match):
    paths = _part_edit(tmp_path, edit)
    with pytest.raises(InvalidInput, match=match):
        S.verify_srs(S.read_srs_parts(paths))


def test_srs_parts_must_be_contiguous(tmp_path):
    recs = S.write_srs_parts(S.srs_generate(10_000, TAU), tmp_path)
    paths = [tmp_path / r["file"] for r in recs]
    with pytest.raises(InvalidInput, match="not part 0"):
        S.read_srs_parts(paths[1:])
    with pytest.raises(InvalidInput, match="not part 1"):
        S.read_srs_parts([paths[0], paths[2]])


# --------------------------------------------------------------------------- the H identity (scalars)


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_h_interpolation_identity(n):
    """sum_j sigma_j L^(2n)_(2j+1)(tau) = c(tau) (1 - tau^n) with c = coset_intt(sigma/2, omega_2n),
    and c is the first half of the coefficients of the 2n interpolant of (0, sigma_0, 0, sigma_1, ...)."""
    rng = np.random.default_rng(n)
    sigma_i = [int(rng.integers(0, 2**62)) * 7919 + 1 for _ in range(n)]
    sigma = fast.fr_from_ints(sigma_i)
    tau = 0xC0FFEE_1234
    lag = fast.fr_to_ints(lagrange_at(tau, 2 * n))
    direct = sum(s * lag[2 * j + 1] for j, s in enumerate(sigma_i)) % R
    half = fast.fr_from_ints([(R + 1) // 2] * n)
    c = fast.fr_to_ints(fast.coset_intt(fast.fr_mul(sigma, half), domain_root(2 * n)))
    c_tau = sum(ck * pow(tau, k, R) for k, ck in enumerate(c)) % R
    assert direct == c_tau * (1 - pow(tau, n, R)) % R
    # the same c from the full 2n inverse NTT, whose upper half is -c
    v = [0] * (2 * n)
    v[1::2] = sigma_i
    full = fast.fr_to_ints(fast.intt(fast.fr_from_ints(v)))
    assert full[:n] == c and full[n:] == [(-ck) % R for ck in c]
    # and the key-check form: powers 0..n-1 plus tau * powers n-1..2n-2
    hi = sum(ck * pow(tau, k + n - 1, R) for k, ck in enumerate(c)) % R
    assert direct == (c_tau - tau * hi) % R


# --------------------------------------------------------------------------- verify_key_srs


def test_honest_keys_sharing_one_srs_accepted(shared):
    cs1, pk1, cs2, pk2, srs = shared
    for cs, pk in ((cs1, pk1), (cs2, pk2)):
        rep = verify_key_srs(pk, cs, srs)
        assert (rep.n_vars, rep.n_public, rep.domain_size) == (cs.n_wires, cs.n_public, pk.domain_size)
        assert rep.timings["total"] > 0


def _distinct_pair(arr: np.ndarray) -> tuple[int, int]:
    flat = arr.reshape(arr.shape[0], -1)
    nz = [i for i in range(arr.shape[0]) if flat[i].any()]
    for i in nz:
        for j in range(arr.shape[0]):
            if j != i and not np.array_equal(flat[i], flat[j]):
                return i, j
    raise AssertionError("no two distinct points")


def _swap(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    i, j = _distinct_pair(out)
    out[[i, j]] = out[[j, i]]
    return out


def _with(pk, **kw):
    vk_kw = {
        k: kw.pop(k) for k in list(kw) if k in ("ic", "alpha_1", "beta_2", "gamma_2", "delta_2", "digest")
    }
    vk = replace(pk.vk, **vk_kw) if vk_kw else pk.vk
    return replace(pk, vk=vk, **kw)


def _tampered_rows(rows: CsrRows) -> CsrRows:
    vals = np.array(rows.vals, copy=True)
    vals[0] = fast.fr_add(vals[0:1], fast.fr_from_ints([1]))[0]
    return CsrRows(rows.ptr, rows.cols, vals)


TAMPER = {
    "swap_a": lambda pk: _with(pk, a=_swap(pk.a)),
    "swap_b1": lambda pk: _with(pk, b1=_swap(pk.b1)),
    "swap_b2": lambda pk: _with(pk, b2=_swap(pk.b2)),
    "swap_c": lambda pk: _with(pk, c=_swap(pk.c)),
    "swap_h": lambda pk: _with(pk, h=_swap(pk.h)),
    "swap_ic": lambda pk: _with(pk, ic=_swap(pk.vk.ic)),
    "a_plus_g": lambda pk: _with(pk, a=np.concatenate([fast.g1_add(pk.a[:1], _g1(1)), pk.a[1:]])),
    "h_times_2": lambda pk: _with(pk, h=np.concatenate([pk.h[:-1], fast.g1_double(pk.h[-1:])])),
    "delta_zero": lambda pk: _with(
        pk, delta_1=np.zeros((2, 4), np.uint64), delta_2=np.zeros((2, 2, 4), np.uint64)
    ),
    "delta_1_other": lambda pk: _with(pk, delta_1=fast.g1_double(pk.delta_1[None])[0]),
    "delta_2_other": lambda pk: _with(pk, delta_2=fast.g2_double(pk.vk.delta_2[None])[0]),
    "beta_1_other": lambda pk: _with(pk, beta_1=fast.g1_double(pk.beta_1[None])[0]),
    "beta_2_other": lambda pk: _with(pk, beta_2=fast.g2_double(pk.vk.beta_2[None])[0]),
    "alpha_other": lambda pk: _with(pk, alpha_1=fast.g1_double(pk.vk.alpha_1[None])[0]),
    "gamma_zero": lambda pk: _with(pk, gamma_2=np.zeros((2, 2, 4), np.uint64)),
    "gamma_other": lambda pk: _with(pk, gamma_2=fast.g2_double(pk.vk.gamma_2[None])[0]),
    "a_rows": lambda pk: _with(pk, a_rows=_tampered_rows(pk.a_rows)),
    "b_rows": lambda pk: _with(pk, b_rows=_tampered_rows(pk.b_rows)),
    "digest": lambda pk: _with(pk, digest=bytes(32)),
    "off_curve": lambda pk: _with(pk, c=np.concatenate([pk.c[:1, ::-1], pk.c[1:]])),
    "b2_outside": lambda pk: _with(
        pk, b2=np.concatenate([fast.g2_from_affine([twist_point_outside_g2()]), pk.b2[1:]])
    ),
}


@pytest.mark.parametrize("what", list(TAMPER))
def test_tampered_key_rejected(shared, what):
    _, _, cs2, pk2, srs = shared
    bad = TAMPER[what](pk2)
    with pytest.raises(KeyCheckFailed, match="proving key rejected"):
        verify_key_srs(bad, cs2, srs)


def test_b2_outside_subgroup_refused_exactly(shared, monkeypatch):
    """A used B2 point plus a point of order 10069 (the smallest factor of the G2 cofactor): the random
    combination misses it whenever rho_s = 0 mod 10069 (probability 1/10069, forced here), so only the
    exact per-point subgroup test, the default, refuses it every time."""
    import py_ecc.optimized_bn128 as bn

    from tests.algebra.curve_oracle import G2 as G2O
    from tests.algebra.curve_oracle import G2_COFACTOR
    from zkmb.groth16 import keycheck as KC

    _, _, cs2, pk2, srs = shared
    s = int(np.flatnonzero(pk2.b2.reshape(pk2.b2.shape[0], -1).any(axis=1))[1])  # a wire in some B row
    small = G2O.un(bn.multiply(G2O.pe(twist_point_outside_g2()), G2_COFACTOR // 10069 * R))
    assert small is not None and G2O.un(bn.multiply(G2O.pe(small), 10069)) is None
    b2 = np.array(pk2.b2, copy=True)
    b2[s] = fast.g2_add(b2[s : s + 1], fast.g2_from_affine([small]))[0]
    bad = _with(pk2, b2=b2)
    orig = KC._random_fr

    def rho_zero_mod_10069(n):
        out = orig(n)
        if n == pk2.n_vars:
            out[s] = fast.fr_from_ints([10069 * 123457])[0]
        return out

    monkeypatch.setattr(KC, "_random_fr", rho_zero_mod_10069)
    verify_key_srs(bad, cs2, srs, strict_b2=False)  # the sampled check alone is fooled
    with pytest.raises(KeyCheckFailed, match=f"b2\\[{s}\\] is a point outside the G2 subgroup"):
        verify_key_srs(bad, cs2, srs)  # the default


def test_key_for_other_circuit_rejected(shared):
    cs1, pk1, cs2, pk2, srs = shared
    with pytest.raises(KeyCheckFailed, match="another circuit"):
        verify_key_srs(pk1, cs2, srs)
    with pytest.raises(KeyCheckFailed, match="another circuit"):
        verify_key_srs(pk2, cs1, srs)


def test_key_with_other_tau_rejected(shared):
    _, _, cs2, _, srs = shared
    pk, _ = setup(cs2)  # a fresh tau
    with pytest.raises(KeyCheckFailed, match="A or B1"):
        verify_key_srs(pk, cs2, srs)


def test_srs_too_small_rejected(shared):
    _, _, cs2, pk2, srs = shared
    n = pk2.domain_size
    k = len(S._g2_exponents(n - 1))
    small = S.Srs(np.ascontiguousarray(srs.tau_g1[: n - 1]), np.ascontiguousarray(srs.tau_g2[:k]))
    with pytest.raises(KeyCheckFailed, match="too small"):
        verify_key_srs(pk2, cs2, small)
    v1 = S.Srs(np.ascontiguousarray(srs.tau_g1[: 2 * n - 2]), np.ascontiguousarray(srs.tau_g2[:2]))
    with pytest.raises(KeyCheckFailed, match="too small"):
        verify_key_srs(pk2, cs2, v1)


def test_version_1_srs_equation(shared):
    """Without tau^n G2 the check uses the powers up to 2n-2 (the H part through tau G2): honest keys pass,
    a tampered H is caught."""
    tau = random_tau()
    cs = compile(Bits)
    pk, _ = setup(cs, trapdoor=Trapdoor.random(tau))
    full = S.srs_generate(2 * pk.domain_size - 1, tau)
    v1 = S.Srs(full.tau_g1, np.ascontiguousarray(full.tau_g2[:2]))
    assert v1.powers_for_domain(pk.domain_size) == 2 * pk.domain_size - 1
    verify_key_srs(pk, cs, v1)
    for what in ("swap_h", "h_times_2", "swap_c"):
        with pytest.raises(KeyCheckFailed, match="C \\(L\\), IC or H"):
            verify_key_srs(TAMPER[what](pk), cs, v1)


def test_trapdoor_validation():
    cs = compile(Cube)
    with pytest.raises(InvalidInput, match="nonzero"):
        setup(cs, trapdoor=Trapdoor(TAU, 1, 2, 3, 0))
    with pytest.raises(InvalidInput, match="root of unity"):
        setup(cs, trapdoor=Trapdoor(domain_root(16), 1, 2, 3, 4))
    with pytest.raises(InvalidInput, match="nonzero"):
        setup(cs, trapdoor=Trapdoor(R, 1, 2, 3, 4))


# --------------------------------------------------------------------------- files and caching


def test_cached_verdict(shared, tmp_path):
    cs1, pk1, cs2, pk2, srs = shared
    pk_path, srs_path, cache = tmp_path / "k.pk", tmp_path / "srs.bin", tmp_path / "cache"
    pk2.save(pk_path)
    S.write_srs(srs_path, srs)
    rep = cached_verify_key_srs(pk_path, cs2, srs_path, cache)
    assert "cached" not in rep.timings and "verify_srs" in rep.timings
    assert rep.digest == hashlib.sha256(pk_path.read_bytes()).hexdigest()
    assert "cached" in cached_verify_key_srs(pk_path, cs2, srs_path, cache).timings
    # another key file: recomputed, and a rejection is never cached
    _with(pk2, h=_swap(pk2.h)).save(pk_path)
    for _ in range(2):
        with pytest.raises(KeyCheckFailed):
            cached_verify_key_srs(pk_path, cs2, srs_path, cache)
    # a key for another circuit is refused when loading (digest)
    pk1.save(pk_path)
    with pytest.raises(InvalidInput, match="another circuit"):
        cached_verify_key_srs(pk_path, cs2, srs_path, cache)
    # an SRS that is not powers of one tau
    bad = S.Srs(np.array(srs.tau_g1, copy=True), srs.tau_g2)
    bad.tau_g1[[2, 3]] = bad.tau_g1[[3, 2]]
    S.write_srs(srs_path, bad)
    pk2.save(pk_path)
    with pytest.raises(S.SrsCheckFailed):
        cached_verify_key_srs(pk_path, cs2, srs_path, cache)


# --------------------------------------------------------------------------- independent of our setup


def test_srs_from_ptau_checks_a_ceremony_key(tmp_path):
    """A key derived from a ptau (phase 2, snarkjs layout, converted) passes against the ptau's SRS, and
    `zkmb setup srs --from-ptau` writes the same SRS."""
    from zkmb.cli import main
    from zkmb.groth16 import ptau as P
    from zkmb.groth16.convert import proving_key_from_zkey, zkey_digest
    from zkmb.groth16.phase2 import contribute
    from zkmb.groth16.zkey_new import zkey_from_ptau

    cs = compile(Tiny)
    power = 4
    pt = P.ptau_contribute(P.ptau_new(power), name="alice")
    path = tmp_path / "pot.ptau"
    P.write_ptau(path, P.ptau_prepare_phase2(pt))
    zk = contribute(zkey_from_ptau(cs, path), name="bob")
    pk = proving_key_from_zkey(zk)
    srs = S.srs_from_ptau(path)
    S.verify_srs(srs)
    assert srs.n_g1 == 2 ** (power + 1) - 1
    rep = verify_key_srs(pk, cs, srs, expect_digest=zkey_digest(zk))
    assert rep.domain_size == zk.domain_size
    with pytest.raises(KeyCheckFailed):
        verify_key_srs(_with(pk, c=_swap(pk.c)), cs, srs, expect_digest=zkey_digest(zk))
    # our own setup with another tau is refused against this SRS
    with pytest.raises(KeyCheckFailed):
        verify_key_srs(setup(cs)[0], cs, srs)
    out = tmp_path / "srs.bin"
    assert main(["setup", "srs", "--from-ptau", str(path), "--domain", "4", str(out)]) == 0
    back = S.read_srs(out)
    assert np.array_equal(back.tau_g1, srs.tau_g1[:4]) and back.max_domain == 4
    assert np.array_equal(back.tau_g2, srs.tau_g2[:4])  # G2, tau, tau^2, tau^4


# --------------------------------------------------------------------------- key directories


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    from zkmb.circuits.keys import generate_keys

    d = tmp_path_factory.mktemp("srskeys")
    steps = []
    res = generate_keys(d, ["q_64", "pad_block"], progress=lambda n, s, t: steps.append((n, s)))
    assert [r.status for r in res] == ["created", "created"]
    assert [s for n, s in steps if n == "srs.bin"] == ["setup", "done"]
    return d


def test_key_dir_manifest_and_verify(key_dir, tmp_path, capsys):
    from zkmb.circuits.keys import MANIFEST_NAME, read_manifest, read_manifest_srs, verify_key_dir

    from zkmb.cli import main

    data = json.loads((key_dir / MANIFEST_NAME).read_text())
    rec = read_manifest_srs(key_dir)
    assert data["srs"] == rec and rec["file"] == "srs.bin"
    assert (
        rec["sha256"] == S.srs_digest(key_dir / "srs.bin")
        and rec["bytes"] == (key_dir / "srs.bin").stat().st_size
    )
    assert rec["max_domain"] == 32768 and rec["g1_powers"] == 32768  # pad_block: 2^15
    assert rec["g2_powers"] == 2 + 15 and [p["count"] for p in rec["parts"]] == [4096, 4096, 8192, 16384]
    for name, e in read_manifest(key_dir).items():
        pkc = key_dir / e["pkc_file"]
        assert e["pkc_bytes"] == pkc.stat().st_size and e["pkc_sha256"] == S.srs_digest(pkc)
        assert e["vk_sha256"] == S.srs_digest(key_dir / f"{name}.vk")
    assert all(e["srs_sha256"] == rec["sha256"] for e in read_manifest(key_dir).values())
    cache = tmp_path / "cache"
    reps = verify_key_dir(key_dir, ["q_64", "pad_block"], cache)
    assert set(reps) == {"q_64", "pad_block"} and all("cached" not in r.timings for r in reps.values())
    assert all("cached" in r.timings for r in verify_key_dir(key_dir, ["q_64", "pad_block"], cache).values())
    assert (
        main(["setup", "--keys", str(key_dir), "verify-keys", "--circuits", "q_64", "--cache", str(cache)])
        == 0
    )
    assert "q_64" in capsys.readouterr().out


def test_key_dir_tampered_and_stale(key_dir, tmp_path):
    from zkmb.circuits.keys import KeyMismatch, generate_keys, key_paths, verify_key_dir

    from zkmb.groth16.keys import ProvingKey

    d = tmp_path / "copy"
    shutil.copytree(key_dir, d)
    pk_path = key_paths(d, "q_64")[0]
    pk = ProvingKey.load(pk_path)
    _with(pk, b1=_swap(pk.b1)).save(pk_path)
    with pytest.raises(KeyCheckFailed, match="q_64: proving key rejected"):
        verify_key_dir(d, ["q_64"])
    raw = bytearray(pk_path.read_bytes())
    raw[-5] ^= 1
    pk_path.write_bytes(bytes(raw))
    with pytest.raises(KeyMismatch, match="q_64: .*checksum"):
        verify_key_dir(d, ["q_64"])
    # regenerating one circuit draws a new tau: the other key is reported stale and refused
    res = generate_keys(d, ["q_64"], force=True)
    assert [(r.name, r.status) for r in res] == [("q_64", "created"), ("pad_block", "stale")]
    verify_key_dir(d, ["q_64"])
    with pytest.raises(KeyMismatch, match="pad_block: .*another SRS"):
        verify_key_dir(d, ["pad_block"])
    # current keys are skipped (the SRS is not rewritten)
    before = (d / "srs.bin").stat().st_mtime_ns
    assert [r.status for r in generate_keys(d, ["q_64"])] == ["skipped"]
    assert (d / "srs.bin").stat().st_mtime_ns == before
    # no srs.bin: the compact parts the manifest lists are used instead; without them, refused
    (d / "srs.bin").unlink()
    verify_key_dir(d, ["q_64"])
    for p in d.glob("srs_*.srsc"):
        p.unlink()
    with pytest.raises(KeyMismatch, match="no srs.bin, and the SRS part srs_0.srsc is missing"):
        verify_key_dir(d, ["q_64"])
    m = json.loads((d / "manifest.json").read_text())
    del m["srs"]["parts"]
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(KeyMismatch, match="no srs.bin"):
        verify_key_dir(d, ["q_64"])


def test_ceremony_key_dir_verifies(tmp_path, monkeypatch):
    """`zkmb setup keys --ptau` writes srs.bin from the ptau, so verify_key_dir checks ceremony keys too."""
    from zkmb.circuits import keys as K

    from zkmb.groth16 import ptau as P
    from zkmb.groth16.ceremony_cli import setup_keys_from_ptau

    cs = compile(Tiny)
    monkeypatch.setitem(K.CIRCUITS, "tiny", lambda: cs)
    path = tmp_path / "pot.ptau"
    P.write_ptau(path, P.ptau_prepare_phase2(P.ptau_contribute(P.ptau_new(4), name="alice")))
    d = tmp_path / "keys"
    assert setup_keys_from_ptau(path, d, ["tiny"]) == ["tiny"]
    rec = K.read_manifest_srs(d)
    assert rec["g1_powers"] == 15 and K.read_manifest(d)["tiny"]["srs_sha256"] == rec["sha256"]
    assert rec["parts"] and K.read_manifest(d)["tiny"]["pkc_file"] == "tiny.pkc"  # what clients download
    assert K.verify_key_dir(d, ["tiny"])["tiny"].domain_size == cs_domain(cs)


def cs_domain(cs) -> int:
    from zkmb.groth16.r1cs_to_qap import domain_size_for

    return domain_size_for(cs.n_constraints, cs.n_public)
