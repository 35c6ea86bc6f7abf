"""snarkjs/circom interoperability: .zkey/.wtns/.ptau readers and writers, JSON, and the QAP/H semantics.

Everything is cross-checked against real snarkjs 0.7.6 / circom2 artifacts (``snarkjs_artifacts``) and
py_ecc: the key read back equals what snarkjs exports, keys we write are accepted by snarkjs, and a
proof computed independently with the documented formula (docs/snarkjs-interop.md) verifies in snarkjs.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py_ecc import optimized_bn128 as ob
from py_ecc.fields import optimized_bn128_FQ as FQ
from py_ecc.fields import optimized_bn128_FQ2 as FQ2

from zkmb.algebra import fast
from zkmb.algebra.params import FR_ROOT_OF_UNITY, FR_TWO_ADICITY, G1_GEN, G2_GEN, P, R
from zkmb.errors import InvalidInput, InvalidPoint
from zkmb.groth16 import snarkjs as sj
from zkmb.r1cs.circom import read_wtns, wtns_bytes

from .conftest import snarkjs

pytestmark = pytest.mark.needs_system

MONT = 1 << 256


# --------------------------------------------------------------------------- helpers


def g1_list(pts: np.ndarray) -> list:
    return fast.g1_to_affine(pts.reshape(-1, 2, 4))


def g2_list(pts: np.ndarray) -> list:
    return fast.g2_to_affine(pts.reshape(-1, 2, 2, 4))


def wtns_ints(path: Path) -> list[int]:
    return fast.fr_to_ints(read_wtns(path).values)


def load_json(path: Path):
    return json.loads(path.read_text())


def sections_of(data: bytes) -> dict[int, tuple[int, int]]:
    """Section id -> (data offset, size) of a binfile (test-side parser)."""
    (n,) = struct.unpack_from("<I", data, 8)
    pos, out = 12, {}
    for _ in range(n):
        sid, size = struct.unpack_from("<IQ", data, pos)
        out[sid] = (pos + 12, size)
        pos += 12 + size
    return out


def read_r1cs(path: Path):
    """Minimal r1cs parser (test oracle): header values and constraints as [(A, B, C)] of [(wire, value)]."""
    data = path.read_bytes()
    secs = sections_of(data)
    off, _ = secs[1]
    (n8,) = struct.unpack_from("<I", data, off)
    prime = int.from_bytes(data[off + 4 : off + 4 + n8], "little")
    n_wires, n_out, n_pub_in, n_prv_in = struct.unpack_from("<IIII", data, off + 4 + n8)
    (n_constraints,) = struct.unpack_from("<I", data, off + 4 + n8 + 16 + 8)
    pos, _ = secs[2]
    constraints = []
    for _ in range(n_constraints):
        lcs = []
        for _ in range(3):
            (k,) = struct.unpack_from("<I", data, pos)
            pos += 4
            lc = []
            for _ in range(k):
                (wire,) = struct.unpack_from("<I", data, pos)
                lc.append((wire, int.from_bytes(data[pos + 4 : pos + 4 + n8], "little")))
                pos += 4 + n8
            lcs.append(lc)
        constraints.append(tuple(lcs))
    return dict(prime=prime, n_wires=n_wires, n_public=n_out + n_pub_in, constraints=constraints)


def mont_bytes(x: int) -> bytes:
    return (x * MONT % P).to_bytes(32, "little")


def g1_mont_bytes(pt) -> bytes:
    return mont_bytes(pt[0]) + mont_bytes(pt[1])


def g2_mont_bytes(pt) -> bytes:
    (x0, x1), (y0, y1) = pt
    return mont_bytes(x0) + mont_bytes(x1) + mont_bytes(y0) + mont_bytes(y1)


def to_py1(pt):
    return ob.Z1 if pt is None else (FQ(pt[0]), FQ(pt[1]), FQ.one())


def to_py2(pt):
    return ob.Z2 if pt is None else (FQ2(list(pt[0])), FQ2(list(pt[1])), FQ2.one())


def from_py1(p):
    if ob.is_inf(p):
        return None
    x, y = ob.normalize(p)
    return (int(x), int(y))


def from_py2(p):
    if ob.is_inf(p):
        return None
    x, y = ob.normalize(p)
    return (tuple(int(c) for c in x.coeffs), tuple(int(c) for c in y.coeffs))


def twist_point_outside_g2(seed: int = 1):
    """A point on the twist y^2 = x^3 + 3/(9+u) that is not in the r-torsion subgroup."""
    rng = random.Random(seed)
    b2 = ob.b2
    while True:
        x = FQ2([rng.randrange(P), rng.randrange(P)])
        rhs = x**3 + b2
        # sqrt in Fq2 for p = 3 mod 4 (Adj, Rodriguez-Henriquez, Alg. 9)
        a1 = rhs ** ((P - 3) // 4)
        alpha = a1 * a1 * rhs
        a0 = alpha ** (P + 1)  # alpha^p * alpha (the norm)
        if a0 == FQ2([P - 1, 0]):
            continue
        x0 = a1 * rhs
        if alpha == FQ2([P - 1, 0]):
            y = FQ2([0, 1]) * x0
        else:
            y = (FQ2.one() + alpha) ** ((P - 1) // 2) * x0
        assert y * y == rhs
        pt = (x, y, FQ2.one())
        assert ob.is_on_curve(pt, b2)
        if not ob.is_inf(ob.multiply(pt, R)):
            return from_py2(pt)


def fr_fft(a: list[int], w: int) -> list[int]:
    """out[i] = sum_k a[k] w^(ik) mod r (radix-2, len(a) a power of two)."""
    n = len(a)
    if n == 1:
        return list(a)
    even, odd = fr_fft(a[0::2], w * w % R), fr_fft(a[1::2], w * w % R)
    out, x = [0] * n, 1
    for i in range(n // 2):
        t = x * odd[i] % R
        out[i], out[i + n // 2] = (even[i] + t) % R, (even[i] - t) % R
        x = x * w % R
    return out


def root_of_unity(n: int) -> int:
    """snarkjs's primitive n-th root: Fr.w[log2 n] = 5^((r-1)/n)."""
    return pow(FR_ROOT_OF_UNITY, 1 << (FR_TWO_ADICITY - (n.bit_length() - 1)), R)


def snarkjs_h_scalars(zk: sj.ZkeyGroth16, w: list[int], *, w2n: int | None = None) -> list[int]:
    """The documented H scalars: with a_i = (A w)_i, b_i = (B w)_i over the n rows and c_i = a_i b_i,
    h_j = A(x_j) B(x_j) - C(x_j) at x_j = w_2n^(2j+1) (A, B, C the interpolants on the n-th roots)."""
    n = zk.domain_size
    rows = [[0] * n, [0] * n]
    vals = fast.fr_to_ints(zk.coef_value)
    for m, c, s, v in zip(zk.coef_matrix, zk.coef_constraint, zk.coef_signal, vals, strict=True):
        rows[int(m)][int(c)] = (rows[int(m)][int(c)] + v * w[int(s)]) % R
    a, b = rows
    c = [x * y % R for x, y in zip(a, b, strict=True)]
    wn = root_of_unity(n)
    w2n = root_of_unity(2 * n) if w2n is None else w2n
    n_inv = pow(n, -1, R)

    def on_odd_coset(vals_: list[int]) -> list[int]:
        coeffs = [v * n_inv % R for v in fr_fft(vals_, pow(wn, -1, R))]  # iFFT
        return fr_fft([cf * pow(w2n, k, R) % R for k, cf in enumerate(coeffs)], wn)

    ao, bo, co = on_odd_coset(a), on_odd_coset(b), on_odd_coset(c)
    return [(x * y - z) % R for x, y, z in zip(ao, bo, co, strict=True)]


def msm1(points, scalars):
    acc = ob.Z1
    for p, s in zip(points, scalars, strict=True):
        if p is not None and s % R:
            acc = ob.add(acc, ob.multiply(to_py1(p), s % R))
    return acc


def msm2(points, scalars):
    acc = ob.Z2
    for p, s in zip(points, scalars, strict=True):
        if p is not None and s % R:
            acc = ob.add(acc, ob.multiply(to_py2(p), s % R))
    return acc


def reference_prove(zk: sj.ZkeyGroth16, w: list[int], r: int, s: int, **h_kw) -> sj.Groth16Proof:
    """An independent (py_ecc) Groth16 prover following docs/snarkjs-interop.md."""
    h = snarkjs_h_scalars(zk, w, **h_kw)
    alpha, beta1, delta1 = (to_py1(g1_list(x)[0]) for x in (zk.alpha_1, zk.beta_1, zk.delta_1))
    beta2, delta2 = (to_py2(g2_list(x)[0]) for x in (zk.beta_2, zk.delta_2))
    pi_a = ob.add(ob.add(msm1(g1_list(zk.a), w), alpha), ob.multiply(delta1, r))
    pi_b = ob.add(ob.add(msm2(g2_list(zk.b2), w), beta2), ob.multiply(delta2, s))
    b1 = ob.add(ob.add(msm1(g1_list(zk.b1), w), beta1), ob.multiply(delta1, s))
    pi_c = ob.add(msm1(g1_list(zk.c), w[zk.n_public + 1 :]), msm1(g1_list(zk.h), h))
    pi_c = ob.add(ob.add(pi_c, ob.multiply(pi_a, s)), ob.multiply(b1, r))
    pi_c = ob.add(pi_c, ob.multiply(delta1, (-r * s) % R))
    return sj.Groth16Proof(from_py1(pi_a), from_py2(pi_b), from_py1(pi_c))


@pytest.fixture(scope="module")
def poseidon(snarkjs_artifacts):
    return snarkjs_artifacts.circuits["poseidon"]


@pytest.fixture(scope="module")
def mul(snarkjs_artifacts):
    return snarkjs_artifacts.circuits["mul"]


@pytest.fixture(scope="module")
def mul_zkey_bytes(mul) -> bytes:
    return mul.path("zkey1.zkey").read_bytes()


# --------------------------------------------------------------------------- zkey reading


@pytest.mark.parametrize("name", ["poseidon", "mul"])
@pytest.mark.parametrize("key", ["zkey0", "zkey1"])
def test_read_zkey_matches_r1cs(snarkjs_artifacts, name, key):
    art = snarkjs_artifacts.circuits[name]
    zk = sj.read_zkey(art.path(f"{key}.zkey"))
    r1 = read_r1cs(art.path("circuit.r1cs"))
    m = len(r1["constraints"])
    assert r1["prime"] == R
    assert (zk.n_vars, zk.n_public) == (r1["n_wires"], r1["n_public"])
    # snarkjs: domain = 2^(floor(log2(m + nPublic)) + 1), the smallest power of two > m + nPublic
    assert zk.domain_size == 1 << (m + zk.n_public).bit_length()
    assert (zk.q, zk.r, zk.n8q, zk.n8r) == (P, R, 32, 32)
    # Coefficients: A and B entries of every constraint in r1cs order, then A[m + s][s] = 1 for s <= nPublic.
    expect = []
    for c, (a_lc, b_lc, _) in enumerate(r1["constraints"]):
        expect += [(0, c, wire, v) for wire, v in a_lc]
        expect += [(1, c, wire, v) for wire, v in b_lc]
    expect += [(0, m + s, s, 1) for s in range(zk.n_public + 1)]
    got = list(
        zip(
            zk.coef_matrix.tolist(),
            zk.coef_constraint.tolist(),
            zk.coef_signal.tolist(),
            fast.fr_to_ints(zk.coef_value),
            strict=True,
        )
    )
    assert got == expect
    assert zk.n_contributions == (0 if key == "zkey0" else 1)
    for mat in (0, 1):
        cons, sig, _ = zk.matrix(mat)
        assert len(cons) == sum(1 for e in expect if e[0] == mat)


@pytest.mark.parametrize("name", ["poseidon", "mul"])
@pytest.mark.parametrize("key", ["0", "1"])
def test_vk_equals_snarkjs_export(snarkjs_artifacts, name, key):
    art = snarkjs_artifacts.circuits[name]
    zk = sj.read_zkey(art.path(f"zkey{key}.zkey"))
    exported = load_json(art.path(f"vk{key}.json"))
    assert sj.vk_to_json(zk.vk()) == exported  # including vk_alphabeta_12 (snarkjs's pairing exponent)
    assert sj.vk_from_json(exported) == zk.vk()
    if key == "0":  # a fresh key: gamma = delta = 1
        assert zk.vk().gamma_2 == G2_GEN and zk.vk().delta_2 == G2_GEN
        assert g1_list(zk.delta_1) == [G1_GEN]


def test_points_are_ffjavascript_lem_zero_copy(poseidon):
    """The file's point bytes are exactly our (n, 2, 4) Montgomery layout (x * 2^256 mod p, LE limbs)."""
    data = poseidon.path("zkey1.zkey").read_bytes()
    zk = sj.read_zkey(poseidon.path("zkey1.zkey"))
    secs = sections_of(data)
    off, _ = secs[2]
    vk = load_json(poseidon.path("vk1.json"))
    alpha = (int(vk["vk_alpha_1"][0]), int(vk["vk_alpha_1"][1]))
    assert data[off + 84 : off + 148] == g1_mont_bytes(alpha)
    assert zk.alpha_1.tobytes() == data[off + 84 : off + 148]
    beta2 = tuple(tuple(int(c) for c in vk["vk_beta_2"][k]) for k in (0, 1))
    assert data[off + 212 : off + 340] == g2_mont_bytes(beta2)
    for sid, arr in ((3, zk.ic), (5, zk.a), (6, zk.b1), (7, zk.b2), (8, zk.c), (9, zk.h)):
        o, n = secs[sid]
        assert arr.tobytes() == data[o : o + n]
        assert arr.dtype == np.uint64 and arr.flags.c_contiguous and arr.flags.aligned
    # infinity is all zeros: signals absent from every A row have zero A points
    in_a = set(zk.matrix(0)[1].tolist())
    zero_rows = {i for i in range(zk.n_vars) if not zk.a[i].any()}
    assert zero_rows == set(range(zk.n_vars)) - in_a and zero_rows


# --------------------------------------------------------------------------- zkey writing


@pytest.mark.parametrize("name", ["poseidon", "mul"])
@pytest.mark.parametrize("key", ["zkey0", "zkey1"])
def test_write_zkey_round_trip_is_byte_identical(snarkjs_artifacts, tmp_path, name, key):
    src = snarkjs_artifacts.circuits[name].path(f"{key}.zkey")
    out = tmp_path / "rt.zkey"
    sj.write_zkey(out, sj.read_zkey(src))
    assert out.read_bytes() == src.read_bytes()


def test_written_zkey_accepted_by_snarkjs(snarkjs_artifacts, poseidon, tmp_path):
    """A key written in another section order: snarkjs verifies it against r1cs+ptau, exports the same
    vk, and proves with it."""
    zk = sj.read_zkey(poseidon.path("zkey1.zkey"))
    zk.section_order = tuple(reversed(sj.SNARKJS_SECTION_ORDER))
    out = tmp_path / "w.zkey"
    sj.write_zkey(out, zk)
    assert out.read_bytes() != poseidon.path("zkey1.zkey").read_bytes()
    d = poseidon.dir
    res = snarkjs("zkey", "verify", d / "circuit.r1cs", snarkjs_artifacts.ptau, out, cwd=tmp_path)
    assert "ZKey Ok!" in res.stdout
    snarkjs("zkey", "export", "verificationkey", out, tmp_path / "vk.json", cwd=tmp_path)
    assert load_json(tmp_path / "vk.json") == load_json(d / "vk1.json")
    p, pub = tmp_path / "p.json", tmp_path / "pub.json"
    snarkjs("groth16", "prove", out, d / "circuit.wtns", p, pub, cwd=tmp_path)
    snarkjs("groth16", "verify", d / "vk1.json", pub, p, cwd=tmp_path)
    assert load_json(tmp_path / "pub.json") == load_json(d / "public1.json")


def test_write_zkey_rejects_inconsistent_keys(mul, tmp_path):
    zk = sj.read_zkey(mul.path("zkey1.zkey"))
    bad = [
        ("a", zk.a[:-1]),
        ("b2", zk.b2.astype(np.int64)),
        ("h", np.full_like(zk.h, np.uint64(2**64 - 1))),
        ("coef_signal", zk.coef_signal + np.uint32(zk.n_vars)),
        ("coef_matrix", zk.coef_matrix + np.uint32(2)),
        ("domain_size", 24),
        ("cs_hash", b"short"),
        ("contributions", b"\x01\x00\x00\x00"),
        ("section_order", (1, 2, 3)),
    ]
    for attr, value in bad:
        orig = getattr(zk, attr)
        setattr(zk, attr, value)
        with pytest.raises(InvalidInput):
            sj.write_zkey(tmp_path / "x.zkey", zk)
        setattr(zk, attr, orig)
    assert not (tmp_path / "x.zkey").exists()


# --------------------------------------------------------------------------- QAP / H semantics


@pytest.mark.parametrize("name", ["poseidon", "mul"])
def test_cs_hash_and_hexps_match_ptau(snarkjs_artifacts, name):
    art = snarkjs_artifacts.circuits[name]
    zk = sj.read_zkey(art.path("zkey0.zkey"))
    assert sj.snarkjs_cs_hash(zk, snarkjs_artifacts.ptau) == zk.cs_hash
    assert sj.read_zkey(art.path("zkey1.zkey")).cs_hash == zk.cs_hash  # contributions keep the hash
    # hExps (delta = 1) are the odd-index Lagrange points of the 2n-th roots of unity
    lag = sj.read_ptau_lagrange(snarkjs_artifacts.ptau, "tau_g1", 2 * zk.domain_size)
    assert np.array_equal(lag[1::2], zk.h)
    with pytest.raises(InvalidInput):
        sj.snarkjs_cs_hash(sj.read_zkey(art.path("zkey1.zkey")), snarkjs_artifacts.ptau)


def test_hexps_formula_from_tau_powers(snarkjs_artifacts, mul):
    """h[j] = L_(2j+1)(tau) G1 with L_k(X) = (1/2n) sum_i (X / w^k)^i and w = 5^((r-1)/2n)."""
    zk = sj.read_zkey(mul.path("zkey0.zkey"))
    n2 = 2 * zk.domain_size
    tau = g1_list(sj.read_ptau_points(snarkjs_artifacts.ptau, "tau_g1", 0, n2))
    w = root_of_unity(n2)
    inv = pow(n2, -1, R)
    h = g1_list(zk.h)
    for j in (0, 1, zk.domain_size - 1):
        k = 2 * j + 1
        scalars = [inv * pow(w, (-k * i) % n2, R) % R for i in range(n2)]
        assert from_py1(msm1(tau, scalars)) == h[j]


def test_independent_prover_accepted_by_snarkjs(mul, tmp_path):
    """A proof computed by the documented formula (py_ecc, own r, s) verifies in snarkjs; the same with the
    odd coset taken in the wrong order (w_2n^-1) does not -- so the test pins the formula down."""
    zk = sj.read_zkey(mul.path("zkey1.zkey"))  # delta != 1
    w = wtns_ints(mul.path("circuit.wtns"))
    rng = random.Random(7)
    r, s = rng.randrange(1, R), rng.randrange(1, R)
    public = w[1 : zk.n_public + 1]
    (tmp_path / "pub.json").write_text(json.dumps(sj.public_to_json(public)))
    assert load_json(tmp_path / "pub.json") == load_json(mul.path("public1.json"))
    vk = mul.path("vk1.json")

    proof = reference_prove(zk, w, r, s)
    (tmp_path / "p.json").write_text(json.dumps(sj.proof_to_json(proof)))
    pub = tmp_path / "pub.json"
    ok = snarkjs("groth16", "verify", vk, pub, tmp_path / "p.json", cwd=tmp_path, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    wrong = reference_prove(zk, w, r, s, w2n=pow(root_of_unity(2 * zk.domain_size), -1, R))
    (tmp_path / "q.json").write_text(json.dumps(sj.proof_to_json(wrong)))
    bad = snarkjs("groth16", "verify", vk, pub, tmp_path / "q.json", cwd=tmp_path, check=False)
    assert bad.returncode != 0


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("name", ["poseidon", "mul"])
def test_proof_and_public_json_round_trip(snarkjs_artifacts, name):
    art = snarkjs_artifacts.circuits[name]
    obj = load_json(art.path("proof1.json"))
    proof = sj.proof_from_json(obj)
    assert sj.proof_to_json(proof) == obj
    assert obj["pi_b"][0] == [str(proof.b[0][0]), str(proof.b[0][1])]  # [x.c0, x.c1]: real part first
    pub = load_json(art.path("public1.json"))
    assert sj.public_to_json(sj.public_from_json(pub)) == pub
    # public.json = witness signals 1..nPublic (outputs, then public inputs)
    zk = sj.read_zkey(art.path("zkey1.zkey"), check_points=False)
    assert sj.public_from_json(pub) == wtns_ints(art.path("circuit.wtns"))[1 : zk.n_public + 1]


def test_proof_infinity_encoding():
    obj = sj.proof_to_json((None, None, None))
    assert obj["pi_a"] == ["0", "1", "0"] and obj["pi_b"] == [["0", "0"], ["1", "0"], ["0", "0"]]
    assert sj.proof_from_json(obj) == (None, None, None)


def _mutations(obj):
    """(description, mutated copy) pairs of a proof object that must be rejected."""
    a, b, c = obj["pi_a"], obj["pi_b"], obj["pi_c"]
    yield "leading zero", {**obj, "pi_a": ["0" + a[0], a[1], "1"]}
    yield "sign", {**obj, "pi_a": ["-" + a[0], a[1], "1"]}
    yield "space", {**obj, "pi_a": [a[0] + " ", a[1], "1"]}
    yield "number", {**obj, "pi_a": [int(a[0]), a[1], "1"]}
    yield "hex", {**obj, "pi_a": [hex(int(a[0])), a[1], "1"]}
    yield "x = p", {**obj, "pi_a": [str(P), a[1], "1"]}
    yield "x + p", {**obj, "pi_a": [str(int(a[0]) + P), a[1], "1"]}
    yield "z = 2", {**obj, "pi_a": [a[0], a[1], "2"]}
    yield "two coords", {**obj, "pi_a": a[:2]}
    yield "bad infinity", {**obj, "pi_a": ["0", "0", "0"]}
    yield "off curve", {**obj, "pi_c": [c[0], str((int(c[1]) + 1) % P), "1"]}
    yield "G2 off curve", {**obj, "pi_b": [b[0], [b[1][0], str((int(b[1][1]) + 1) % P)], b[2]]}
    yield "G2 z", {**obj, "pi_b": [b[0], b[1], ["1", "1"]]}
    yield "G2 shape", {**obj, "pi_b": [b[0], b[1]]}
    yield "G2 flat", {**obj, "pi_b": b[0] + b[1] + b[2]}
    yield "G2 swapped c0/c1", {**obj, "pi_b": [b[0][::-1], b[1][::-1], b[2]]}
    yield "protocol", {**obj, "protocol": "plonk"}
    yield "curve", {**obj, "curve": "bls12381"}
    yield "missing", {k: v for k, v in obj.items() if k != "pi_c"}
    yield "not an object", [a, b, c]
    bad = twist_point_outside_g2()
    yield "G2 not in subgroup", {**obj, "pi_b": sj.proof_to_json((None, bad, None))["pi_b"]}


def test_proof_from_json_is_strict(poseidon):
    obj = load_json(poseidon.path("proof1.json"))
    for desc, mutated in _mutations(obj):
        with pytest.raises(InvalidInput):
            sj.proof_from_json(mutated)
            pytest.fail(f"accepted: {desc}")
    bad = twist_point_outside_g2()
    outside = {**obj, "pi_b": sj.proof_to_json((None, bad, None))["pi_b"]}
    with pytest.raises(InvalidPoint, match="subgroup"):
        sj.proof_from_json(outside)
    assert sj.proof_from_json(outside, check_subgroup=False).b == bad


def test_public_json_is_strict():
    assert sj.public_from_json([]) == []
    assert sj.public_from_json(["0", str(R - 1)]) == [0, R - 1]
    for bad in (["01"], [str(R)], [5], ["1.0"], "5", [["1"]], [None], ["1e3"], ["+1"]):
        with pytest.raises(InvalidInput):
            sj.public_from_json(bad)
    with pytest.raises(InvalidInput):
        sj.public_to_json([R])
    with pytest.raises(InvalidInput):
        sj.public_to_json([-1])


def test_vk_from_json_is_strict(poseidon):
    vk = load_json(poseidon.path("vk1.json"))
    ab = vk["vk_alphabeta_12"]
    tampered_ab = json.loads(json.dumps(ab))
    tampered_ab[1][2][1] = str((int(ab[1][2][1]) + 1) % P)
    cases = [
        {**vk, "nPublic": vk["nPublic"] + 1},
        {**vk, "nPublic": str(vk["nPublic"])},
        {**vk, "nPublic": True},
        {**vk, "protocol": "plonk"},
        {**vk, "curve": "bls12381"},
        {k: v for k, v in vk.items() if k != "curve"},
        {k: v for k, v in vk.items() if k != "vk_delta_2"},
        {**vk, "IC": vk["IC"][:-1]},
        {**vk, "vk_gamma_2": [["0", "0"], ["1", "0"], ["0", "0"]]},
        {**vk, "vk_alpha_1": ["0", "1", "0"]},
        {**vk, "vk_alphabeta_12": tampered_ab},
        {**vk, "vk_alphabeta_12": ab[0]},
        {**vk, "vk_delta_2": sj.proof_to_json((None, twist_point_outside_g2(3), None))["pi_b"]},
    ]
    for i, bad in enumerate(cases):
        with pytest.raises(InvalidInput):
            sj.vk_from_json(bad)
            pytest.fail(f"accepted case {i}")
    # without the consistency check a tampered alphabeta parses; a missing one is fine
    assert sj.vk_from_json({**vk, "vk_alphabeta_12": tampered_ab}, check_alphabeta=False)
    assert sj.vk_from_json({k: v for k, v in vk.items() if k != "vk_alphabeta_12"})


def test_alphabeta_is_pairing_to_snarkjs_exponent(poseidon):
    """snarkjs's vk_alphabeta_12 = py_ecc's e(alpha, beta)^(2x(6x^2+3x+1)), in tower order (an oracle
    independent of the fast pairing used by the implementation)."""
    vk = sj.vk_from_json(load_json(poseidon.path("vk1.json")))
    got = sj.snarkjs_alphabeta_12(vk.alpha_1, vk.beta_2)
    e = ob.pairing(to_py2(vk.beta_2), to_py1(vk.alpha_1))
    coeffs = [int(c) % P for c in (e ** (sj.SNARKJS_GT_EXPONENT % R)).coeffs]
    expect = [0] * 12
    for i in range(2):
        for j in range(3):
            k = 2 * j + i  # py_ecc: sum c_k w^k, w^6 = 9 + u, v = w^2
            expect[6 * i + 2 * j + 1] = coeffs[k + 6]
            expect[6 * i + 2 * j] = (coeffs[k] + 9 * coeffs[k + 6]) % P
    assert got == tuple(expect)
    exported = load_json(poseidon.path("vk1.json"))["vk_alphabeta_12"]
    assert got == tuple(int(c) for c in np.array(exported).ravel())
    assert coeffs != [int(c) % P for c in e.coeffs]  # not py_ecc's value itself


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ka=st.integers(1, R - 1), kb=st.integers(1, R - 1), kc=st.integers(0, R - 1))
def test_proof_json_round_trip_property(ka, kb, kc):
    proof = (
        from_py1(ob.multiply(ob.G1, ka)),
        from_py2(ob.multiply(ob.G2, kb)),
        from_py1(ob.multiply(ob.G1, kc)) if kc else None,
    )
    obj = json.loads(json.dumps(sj.proof_to_json(proof)))
    assert sj.proof_from_json(obj) == proof


# --------------------------------------------------------------------------- malformed zkeys


def _patch(data: bytes, off: int, new: bytes) -> bytes:
    return data[:off] + new + data[off + len(new) :]


def _malformed_zkeys(data: bytes):
    """(description, bytes, expected exception) for a valid zkey ``data``."""
    secs = sections_of(data)
    h, _ = secs[2]
    n_vars, n_public, _ = struct.unpack_from("<III", data, h + 72)
    yield "empty", b"", InvalidInput
    for cut in (3, 11, 20, h + 10, secs[5][0] + 7, len(data) - 1):
        yield f"truncated at {cut}", data[:cut], InvalidInput
    yield "trailing byte", data + b"\0", InvalidInput
    yield "bad magic", b"zkez" + data[4:], InvalidInput
    yield "version 3", _patch(data, 4, struct.pack("<I", 3)), InvalidInput
    yield "version 0", _patch(data, 4, struct.pack("<I", 0)), InvalidInput
    yield "plonk", _patch(data, secs[1][0], struct.pack("<I", 2)), InvalidInput
    yield "wrong q", _patch(data, h + 4, (P + 2).to_bytes(32, "little")), InvalidInput
    yield "q = r", _patch(data, h + 4, R.to_bytes(32, "little")), InvalidInput
    yield "wrong r", _patch(data, h + 40, (R - 2).to_bytes(32, "little")), InvalidInput
    yield "n8q = 48", _patch(data, h, struct.pack("<I", 48)), InvalidInput
    yield "nVars + 1", _patch(data, h + 72, struct.pack("<I", n_vars + 1)), InvalidInput
    yield "nVars huge", _patch(data, h + 72, struct.pack("<I", 2**32 - 1)), InvalidInput
    yield "nPublic = nVars", _patch(data, h + 76, struct.pack("<I", n_vars)), InvalidInput
    yield "domain not pow2", _patch(data, h + 80, struct.pack("<I", 24)), InvalidInput
    yield "domain 2^29", _patch(data, h + 80, struct.pack("<I", 1 << 29)), InvalidInput
    # section headers lying about their size
    for sid in (2, 5, 9):
        off = secs[sid][0] - 8
        for delta in (1, -1, 1 << 40):
            size = secs[sid][1] + delta
            yield f"section {sid} size {delta:+}", _patch(data, off, struct.pack("<Q", size)), InvalidInput
    yield "nSections + 1", _patch(data, 8, struct.pack("<I", 11)), InvalidInput
    yield "nSections - 1", _patch(data, 8, struct.pack("<I", 9)), InvalidInput
    sec1 = data[secs[1][0] - 12 : secs[1][0] + 4]
    yield "duplicate section", _patch(data, 8, struct.pack("<I", 11)) + sec1, InvalidInput
    yield "unknown section", _patch(data, 8, struct.pack("<I", 11)) + struct.pack("<IQ", 11, 0), InvalidInput
    yield "section id 10 -> 11", _patch(data, secs[10][0] - 12, struct.pack("<I", 11)), InvalidInput
    # coefficient section
    c0 = secs[4][0]
    (n_coef,) = struct.unpack_from("<I", data, c0)
    yield "coef count + 1", _patch(data, c0, struct.pack("<I", n_coef + 1)), InvalidInput
    yield "coef matrix 2", _patch(data, c0 + 4, struct.pack("<I", 2)), InvalidInput
    yield "coef constraint", _patch(data, c0 + 8, struct.pack("<I", 1 << 20)), InvalidInput
    yield "coef signal", _patch(data, c0 + 12, struct.pack("<I", n_vars)), InvalidInput
    yield "coef value = r", _patch(data, c0 + 16, R.to_bytes(32, "little")), InvalidInput
    # points
    yield "alpha x = p", _patch(data, h + 84, P.to_bytes(32, "little")), InvalidInput
    yield "alpha off curve", _patch(data, h + 84, mont_bytes(5)), InvalidPoint
    yield "alpha infinity", _patch(data, h + 84, bytes(64)), InvalidPoint
    yield "gamma2 infinity", _patch(data, h + 340, bytes(128)), InvalidPoint
    outside = g2_mont_bytes(twist_point_outside_g2(2))
    yield "delta2 not in G2", _patch(data, h + 532, outside), InvalidPoint
    yield "IC off curve", _patch(data, secs[3][0], mont_bytes(5)), InvalidPoint
    yield "H off curve", _patch(data, secs[9][0] + 64, mont_bytes(5)), InvalidPoint
    yield "C x >= p", _patch(data, secs[8][0] + 24, b"\xff" * 8), InvalidInput
    yield "B2 off curve", _patch(data, secs[7][0] + 128 * (n_vars - 1), mont_bytes(5)), InvalidPoint
    # contributions
    m0, msize = secs[10]
    yield "contributions count", _patch(data, m0 + 64, struct.pack("<I", 7)), InvalidInput


def test_malformed_zkeys_rejected(mul_zkey_bytes, tmp_path):
    path = tmp_path / "bad.zkey"
    for desc, data, exc in _malformed_zkeys(mul_zkey_bytes):
        path.write_bytes(data)
        with pytest.raises(exc):
            sj.read_zkey(path)
            pytest.fail(f"accepted: {desc}")


def test_bulk_point_checks_can_be_skipped(mul, mul_zkey_bytes, tmp_path):
    secs = sections_of(mul_zkey_bytes)
    path = tmp_path / "bad.zkey"
    path.write_bytes(_patch(mul_zkey_bytes, secs[9][0] + 64, mont_bytes(5)))
    with pytest.raises(InvalidPoint, match="h"):
        sj.read_zkey(path)
    assert sj.read_zkey(path, check_points=False).domain_size == 16
    # a B2 point on the twist but outside G2 passes the default checks, not b2_subgroup=True
    path.write_bytes(_patch(mul_zkey_bytes, secs[7][0] + 128, g2_mont_bytes(twist_point_outside_g2(5))))
    assert sj.read_zkey(path).n_vars == 10
    with pytest.raises(InvalidPoint, match="subgroup"):
        sj.read_zkey(path, b2_subgroup=True)
    assert sj.read_zkey(mul.path("zkey1.zkey"), b2_subgroup=True).n_vars == 10
    with pytest.raises(InvalidInput):
        sj.read_zkey(tmp_path / "missing.zkey")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_zkey_fuzz_only_invalid_input(mul_zkey_bytes, tmp_path_factory, data):
    """Random corruption either still parses or raises InvalidInput -- never another exception."""
    buf = bytearray(mul_zkey_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    path = tmp_path_factory.mktemp("fuzz") / "f.zkey"
    path.write_bytes(bytes(buf))
    try:
        sj.read_zkey(path)
    except InvalidInput:
        pass


# --------------------------------------------------------------------------- wtns (zkmb.r1cs.circom) and ptau


@pytest.mark.parametrize("name", ["poseidon", "mul"])
def test_wtns_interop(snarkjs_artifacts, name):
    """The circuit frontend's .wtns reader/writer (zkmb.r1cs.circom, reused here) agrees with snarkjs."""
    art = snarkjs_artifacts.circuits[name]
    expect = [int(v) for v in load_json(art.path("wtns.json"))]
    assert wtns_ints(art.path("circuit.wtns")) == expect and expect[0] == 1
    assert wtns_bytes(read_wtns(art.path("circuit.wtns"))) == art.path("circuit.wtns").read_bytes()
    assert len(expect) == sj.read_zkey(art.path("zkey0.zkey"), check_points=False).n_vars


def test_ptau_reader(snarkjs_artifacts, tmp_path):
    ptau = snarkjs_artifacts.ptau
    info = sj.read_ptau_info(ptau)
    assert (info.power, info.ceremony_power, info.n_contributions, info.prepared) == (10, 10, 1, True)
    assert g1_list(sj.read_ptau_points(ptau, "tau_g1", 0, 1)) == [G1_GEN]
    assert g2_list(sj.read_ptau_points(ptau, "tau_g2", 0, 1)) == [G2_GEN]
    assert sj.read_ptau_points(ptau, "tau_g1").shape == (2**11 - 1, 2, 4)
    assert sj.read_ptau_points(ptau, "beta_g2").shape == (1, 2, 2, 4)
    # tau^1 in G1 and G2 have the same discrete log: e(tau G1, G2) = e(G1, tau G2)
    t1 = g1_list(sj.read_ptau_points(ptau, "tau_g1", 1, 1))[0]
    t2 = g2_list(sj.read_ptau_points(ptau, "tau_g2", 1, 1))[0]
    assert ob.pairing(ob.G2, to_py1(t1)) == ob.pairing(to_py2(t2), ob.G1)
    # Lagrange size 1 is the generator itself; size 2: L_0 + L_1 = 1
    assert g1_list(sj.read_ptau_lagrange(ptau, "tau_g1", 1)) == [G1_GEN]
    l2 = g1_list(sj.read_ptau_lagrange(ptau, "tau_g1", 2))
    assert from_py1(ob.add(to_py1(l2[0]), to_py1(l2[1]))) == G1_GEN
    for args in (("tau_g1", 2**11 - 1, 1), ("tau_g2", -1, 1), ("nope", 0, 1)):
        with pytest.raises(InvalidInput):
            sj.read_ptau_points(ptau, *args)
    with pytest.raises(InvalidInput):
        sj.read_ptau_lagrange(ptau, "tau_g1", 3)
    with pytest.raises(InvalidInput):
        sj.read_ptau_lagrange(ptau, "tau_g1", 2**12)
    data = ptau.read_bytes()
    secs = sections_of(data)
    for bad in (
        data[:100],
        b"ptaX" + data[4:],
        _patch(data, secs[1][0] + 4, R.to_bytes(32, "little")),
        _patch(data, secs[1][0] + 36, struct.pack("<I", 11)),
    ):
        (tmp_path / "bad.ptau").write_bytes(bad)
        with pytest.raises(InvalidInput):
            sj.read_ptau_info(tmp_path / "bad.ptau")
