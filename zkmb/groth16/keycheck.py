"""Client-side verification of a Groth16 proving key (snarkjs ``.zkey``) against its circuit and a ptau.

:func:`verify_zkey` recomputes what every key element must be from the phase-1 powers of tau (the
Lagrange sections of a prepared ``.ptau``) and the R1CS, following ``docs/snarkjs-interop.md`` §3.2, and
checks the key against it with random linear combinations (one MSM per query instead of one
scalar multiplication per coefficient) and a few pairings:

* header: nVars, nPublic, domainSize as the R1CS implies; the coefficient list (section 4) equal to the
  R1CS's A and B entries plus the extra rows ``A[m+s][s] = 1``;
* ``alpha_1``, ``beta_1``, ``beta_2`` equal to the ptau's, ``gamma_2`` the G2 generator;
* ``delta_1`` and ``delta_2`` not infinity and ``e(delta_1, G2) = e(G1, delta_2)``;
* ``sum rho_s A[s] = sum_i (A rho)_i L_i`` (same for B1), and ``B2`` consistent with the expected B1
  through ``e(., G2) = e(G1, .)``;
* ``IC`` and ``C`` (over delta) and ``H`` (over delta, odd Lagrange points of the 2n block) in one
  pairing equation ``e(X, G2) = e(Y, delta_2)``.

With independent uniform coefficients below 2^253 each batched equation misses a wrong element with
probability at most 2^-253 (Schwartz-Zippel over the exponents).  Every B2 point is subgroup-checked
exactly (``strict_b2=True``, the default: ~50 us per point): a random combination alone would miss a B2
point with a component of order 10069 (the smallest prime factor of the G2 cofactor) with probability
1/10069.  The ptau is trusted here: verify it (phase 1) separately.

:func:`verify_key_srs` checks a native key (:class:`zkmb.groth16.keys.ProvingKey`) against a small SRS
(:mod:`zkmb.groth16.srs`: ``T_k = tau^k G1`` for k < n, ``tau G2`` and ``tau^n G2``) instead of a
prepared ptau; it shows that the key is *well formed* (every element what ``setup`` computes for the SRS's
tau and some alpha, beta, gamma, delta with gamma, delta != 0), which is what the prover's zero knowledge
needs (subversion zero knowledge; see docs/setup.md).  Exact checks: counts, digest, the QAP rows the
prover uses equal the compiled circuit's (:func:`~zkmb.groth16.r1cs_to_qap.qap_matrices`), every point
on its curve, every G2 point in G2, alpha, beta, gamma, delta not infinity, ``e(delta_1, G2) = e(G1,
delta_2)``, ``e(beta_1, G2) = e(G1, beta_2)``, and the points of wires absent from A (B, all of A/B/C)
infinity in a, b1 (b1 and b2, c).  Then with independent uniform rho_s (per wire), sigma_j (per H point),
x and lam, each from a set of 2^253 field elements (OS CSPRNG), and ``intt`` the size-n inverse NTT
(``sum_i v_i L_i(tau) = sum_k intt(v)_k tau^k`` in :func:`~zkmb.groth16.r1cs_to_qap.lagrange_at`'s
convention), ``c_H = coset_intt(sigma/2, omega_2n)`` (the vector sigma on the odd 2n-th roots, 0 on the
even ones, interpolates to ``(1 - X^n) c_H(X)``, so ``sum_j sigma_j L^(2n)_(2j+1)(tau) = (1 - tau^n)
c_H(tau)``: G1 powers below n and ``Z = tau^n G2 - G2`` only):

* B2: ``sum rho_s b2[s]`` in G2 and ``e(sum rho_s b1[s], G2) = e(G1, sum rho_s b2[s])``;
* one product for A, B1, C, IC and H::

    e(sum_(s>npub) rho_s c[s] + sum_j sigma_j h[j], delta_2) e(sum_(s<=npub) rho_s ic[s], gamma_2)
    e(-sum rho_s a[s], beta_2) e(-alpha_1, sum rho_s b2[s]) e(X, G2) e(T(c_H), tau^n G2 - G2) = 1,
    X = lam (sum rho_s a[s] + x sum rho_s b1[s]) - T(lam intt(A rho + x B rho) + intt(C rho))

  with ``T(v) = sum_k v_k T_k`` (k < n).  (An SRS without ``tau^n G2``, format version 1, uses
  ``(1 - tau^n) c_H(tau) = c_H(tau) - tau sum_k c_H,k tau^(k+n-1)``: ``c_H`` joins the vector of X and
  ``e(T_hi(c_H), tau G2)`` with ``T_hi(v) = sum_k v_k T_(k+n-1)`` replaces the last pairing; powers up to
  2n - 2.)

Soundness: in the exponent (every checked point has a discrete log: G1 has prime order, the G2
elements are subgroup-checked) the product is a polynomial in (lam, x, rho, sigma) of degree <= 3 whose
coefficients are the discrepancies ``a_s - A_s(tau)`` (of lam rho_s), ``b1_s - B_s(tau)`` (lam x rho_s),
``delta c_s - (beta A_s + alpha B_s + C_s)(tau)``, ``gamma ic_s - (...)``, ``delta h_j -
L_(2j+1)(tau)`` (rho_s, sigma_j; given the previous ones are zero), and the B2 equation's is linear with
coefficients ``b1_s - b2_s``.  A nonzero polynomial vanishes at the random point with probability at
most 3/2^253 (Schwartz-Zippel), so any wrong element is caught except with probability <= 2^-251 per
check.  The exponent argument needs every b2 point in G2: each is subgroup-checked exactly (default
``strict_b2=True``; skipped with ``points_checked=True`` when the caller has just validated every point,
as the compact-key decompression does, :mod:`zkmb.groth16.compact`).
Where a check fails, the message names the part (one extra MSM separates A/B1 from C/IC/H).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from ..algebra.kernels import mont
from ..algebra.params import R as R_MOD
from ..errors import InvalidInput
from .snarkjs import PathLike, ZkeyGroth16, read_ptau_info, read_ptau_lagrange, read_ptau_points, read_zkey

__all__ = [
    "KeyCheckFailed",
    "KeyCheckReport",
    "cached_verify_key_srs",
    "expected_domain_size",
    "key_digest",
    "verify_key_srs",
    "verify_zkey",
]


class KeyCheckFailed(InvalidInput):
    """The proving key is not the one the circuit and the phase-1 transcript imply."""


@dataclass
class KeyCheckReport:
    """What :func:`verify_zkey` checked (all passed when it returns)."""

    n_vars: int
    n_public: int
    n_constraints: int
    domain_size: int
    n_contributions: int
    digest: str
    timings: dict[str, float] = field(default_factory=dict)


def key_digest(path: PathLike) -> str:
    """SHA-256 (hex) of the key file's bytes: the cache key of a verdict."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_domain_size(n_constraints: int, n_public: int) -> int:
    """snarkjs's domain: the smallest power of two strictly above ``m + nPublic``."""
    return 1 << (n_constraints + n_public).bit_length()


@njit(cache=True, nogil=True)
def _spmv(row_ptr, cols, coeffs, rho, out):
    """out[i] = sum_k coeffs[k] * rho[cols[k]] over row i's terms (Montgomery Fr); rows beyond stay."""
    for i in range(row_ptr.shape[0] - 1):
        acc = mont.ZERO4
        for k in range(row_ptr[i], row_ptr[i + 1]):
            acc = mont.fr_add(acc, mont.fr_mul(mont.load(coeffs, k), mont.load(rho, cols[k])))
        mont.store(out, i, acc)


def _random_fr(n: int) -> np.ndarray:
    """n independent uniform values below 2^253 (< r) from the OS CSPRNG, as an (n, 4) Fr vector."""
    a = np.frombuffer(os.urandom(32 * n), dtype="<u8").reshape(n, 4).astype(np.uint64)
    a[:, 3] &= np.uint64((1 << 61) - 1)
    return a


def _mat_vec(mat, rho: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, 4), dtype=np.uint64)
    _spmv(
        np.ascontiguousarray(mat.row_ptr, dtype=np.int64),
        np.ascontiguousarray(mat.cols, dtype=np.int64),
        np.ascontiguousarray(mat.coeffs),
        rho,
        out,
    )
    return out


def _coefficient_table(cs) -> tuple[np.ndarray, np.ndarray]:
    """The (matrix, constraint, signal) keys and Montgomery values snarkjs's section 4 must hold, sorted."""
    m = cs.n_constraints
    keys, vals = [], []
    for mat_id, mat in ((0, cs.A), (1, cs.B)):
        rows = np.repeat(np.arange(m, dtype=np.int64), np.diff(mat.row_ptr))
        keys.append(np.stack([np.full(rows.shape[0], mat_id), rows, mat.cols.astype(np.int64)], axis=1))
        vals.append(np.asarray(mat.coeffs, dtype=np.uint64).reshape(-1, 4))
    npub = cs.n_public
    s = np.arange(npub + 1, dtype=np.int64)
    keys.append(np.stack([np.zeros_like(s), m + s, s], axis=1))
    vals.append(np.tile(_fr_one(), (npub + 1, 1)))
    return _sorted(np.concatenate(keys), np.concatenate(vals))


def _fr_one() -> np.ndarray:
    return np.array(mont.FR_ONE, dtype=np.uint64)


def _sorted(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = vals.any(axis=1)
    keys, vals = keys[nz], vals[nz]
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    return keys[order], vals[order]


def _fail(msg: str) -> None:
    raise KeyCheckFailed(f"proving key rejected: {msg}")


def _fast():
    from ..algebra import fast

    return fast


def _eq_points(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)))


def verify_zkey(
    zkey: PathLike | ZkeyGroth16,
    r1cs: PathLike | object,
    ptau: PathLike,
    *,
    strict_b2: bool = True,
) -> KeyCheckReport:
    """Verify a Groth16 proving key against the circuit's R1CS and a prepared phase-1 ``.ptau``.

    ``zkey`` is a path or a key read with :func:`read_zkey`; ``r1cs`` a ``.r1cs`` path or a
    ConstraintSystem. Raises :class:`KeyCheckFailed` (an InvalidInput) with the first failed check;
    returns a report otherwise. Phase-2 contribution records are checked by
    :func:`zkmb.groth16.phase2.verify_contributions` when that module is present (it is called here).
    """
    import time

    from ..r1cs.circom import read_r1cs

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    digest = key_digest(zkey) if not isinstance(zkey, ZkeyGroth16) else ""
    zk = zkey if isinstance(zkey, ZkeyGroth16) else read_zkey(zkey, check_points=True, b2_subgroup=strict_b2)
    cs = r1cs if hasattr(r1cs, "A") else read_r1cs(r1cs)
    timings["read"] = time.perf_counter() - t0
    f = _fast()

    # --- header and coefficients: the key must be for this circuit.
    m, npub, nv = cs.n_constraints, cs.n_public, cs.n_wires
    if zk.n_public != npub:
        _fail(f"it has {zk.n_public} public signals, the circuit {npub} (a key for another circuit?)")
    if zk.n_vars != nv:
        _fail(f"it has {zk.n_vars} signals, the circuit {nv} (a key for another circuit?)")
    n = expected_domain_size(m, npub)
    if zk.domain_size != n:
        _fail(f"domain size {zk.domain_size}, the circuit needs {n}")
    got_keys = np.stack(
        [
            zk.coef_matrix.astype(np.int64),
            zk.coef_constraint.astype(np.int64),
            zk.coef_signal.astype(np.int64),
        ],
        axis=1,
    )
    gk, gv = _sorted(got_keys, zk.coef_value)
    ek, ev = _coefficient_table(cs)
    if not (np.array_equal(gk, ek) and np.array_equal(gv, ev)):
        _fail("the coefficient section (A/B entries) differs from the circuit's R1CS")

    # --- phase-1 elements.
    info = read_ptau_info(ptau)
    if not info.prepared:
        _fail("the ptau is not prepared for phase 2 (no Lagrange sections)")
    if n > 1 << info.power:
        _fail(f"the ptau (2^{info.power}) is too small for domain size {n}")
    if not _eq_points(zk.alpha_1, read_ptau_points(ptau, "alpha_tau_g1", 0, 1)):
        _fail("alpha_1 differs from the ptau's alpha")
    if not _eq_points(zk.beta_1, read_ptau_points(ptau, "beta_tau_g1", 0, 1)):
        _fail("beta_1 differs from the ptau's beta")
    if not _eq_points(zk.beta_2, read_ptau_points(ptau, "beta_g2", 0, 1)):
        _fail("beta_2 differs from the ptau's beta")
    g1 = f.g1_generator()
    g2 = f.g2_generator()
    if not _eq_points(zk.gamma_2, g2):
        _fail("gamma_2 is not the G2 generator")
    inf1, inf2 = not zk.delta_1.any(), not zk.delta_2.any()
    if inf1 or inf2:
        _fail("delta is zero (point at infinity): the prover's blinding would vanish")
    d1 = zk.delta_1.reshape(1, 2, 4)
    d2 = zk.delta_2.reshape(1, 2, 2, 4)
    if not f.pairing_check(np.concatenate([d1, f.g1_neg(g1)]), np.concatenate([g2, d2])):
        _fail("delta_1 and delta_2 are not the same delta")
    if strict_b2 and isinstance(zkey, ZkeyGroth16):  # (read_zkey did it for a file)
        from .snarkjs import _g2_not_in_subgroup

        if (i := _g2_not_in_subgroup(zk.b2)) >= 0:
            _fail(f"b2[{i}] is a point outside the G2 subgroup")
    timings["header"] = time.perf_counter() - t0 - timings["read"]

    # --- Lagrange points of the ptau (the ptau is trusted; on-curve checked on read).
    t1 = time.perf_counter()
    lag = read_ptau_lagrange(ptau, "tau_g1", n)
    lag_a = read_ptau_lagrange(ptau, "alpha_tau_g1", n)
    lag_b = read_ptau_lagrange(ptau, "beta_tau_g1", n)
    lag2n_odd = np.ascontiguousarray(read_ptau_lagrange(ptau, "tau_g1", 2 * n)[1::2])
    timings["read_ptau"] = time.perf_counter() - t1

    # --- A and B1: sum rho_s P[s] = sum_i (M rho)_i L_i; B2 via e(expected B1 sum, G2) = e(G1, sum rho B2).
    t1 = time.perf_counter()
    extra = np.arange(npub + 1)

    def qap_vec(mat, rho: np.ndarray, with_extra: bool) -> np.ndarray:
        v = _mat_vec(mat, rho, n)
        if with_extra:
            v[m + extra] = rho[: npub + 1]
        return v

    rho_a, rho_b = _random_fr(nv), _random_fr(nv)
    if not _eq_points(f.msm_g1(zk.a, rho_a), f.msm_g1(lag, qap_vec(cs.A, rho_a, True))):
        _fail("the A query is not what the circuit and the ptau imply")
    exp_b = f.msm_g1(lag, qap_vec(cs.B, rho_b, False))
    if not _eq_points(f.msm_g1(zk.b1, rho_b), exp_b):
        _fail("the B1 query is not what the circuit and the ptau imply")
    sum_b2 = f.msm_g2(zk.b2, rho_b)
    if not f.g2_in_subgroup(sum_b2)[0] or not f.pairing_check(
        np.concatenate([exp_b, f.g1_neg(g1)]), np.concatenate([g2, sum_b2])
    ):
        _fail("the B2 query is not what the circuit and the ptau imply")
    timings["a_b"] = time.perf_counter() - t1

    # --- IC, C (over delta) and H (over delta): e(X, G2) = e(Y, delta_2) with
    # X = sum_s rho_s (beta A_s + alpha B_s + C_s) - sum_{s<=npub} rho_s IC[s] + sum_j sigma_j L2n_{2j+1},
    # Y = sum_{s>npub} rho_s C[s] + sum_j sigma_j H[j].
    t1 = time.perf_counter()
    rho, sigma = _random_fr(nv), _random_fr(n)
    pts = np.concatenate([lag_b, lag_a, lag, lag2n_odd, zk.ic])
    neg_pub = np.zeros((npub + 1, 4), dtype=np.uint64)
    mont.fr_vec_neg(np.ascontiguousarray(rho[: npub + 1]), neg_pub)
    sc = np.concatenate(
        [qap_vec(cs.A, rho, True), qap_vec(cs.B, rho, False), qap_vec(cs.C, rho, False), sigma, neg_pub]
    )
    x = f.msm_g1(pts, sc)
    y = f.msm_g1(np.concatenate([zk.c, zk.h]), np.concatenate([rho[npub + 1 :], sigma]))
    if not f.pairing_check(np.concatenate([x, f.g1_neg(y)]), np.concatenate([g2, d2])):
        _fail("the IC, C (L) or H query is not what the circuit, the ptau and delta imply")
    timings["ic_c_h"] = time.perf_counter() - t1

    n_contrib = zk.n_contributions
    try:
        from . import phase2
    except ImportError:  # pragma: no cover - phase 2 module absent
        phase2 = None
    if phase2 is not None and hasattr(phase2, "verify_contributions"):
        phase2.verify_contributions(zk)
    timings["total"] = time.perf_counter() - t0
    return KeyCheckReport(nv, npub, m, n, n_contrib, digest, timings)


def cached_verify_zkey(zkey: PathLike, r1cs: PathLike, ptau: PathLike, cache_dir: PathLike) -> KeyCheckReport:
    """:func:`verify_zkey` with the positive verdict cached under ``cache_dir`` by key, r1cs and ptau digest.

    Only acceptance is cached (a file named by the SHA-256 of the three digests); a rejection is
    recomputed every time so the message is always current."""
    # "strict-b2": verdicts of the older check (B2 subgroup only sampled) are not reused
    parts = ["strict-b2", *(key_digest(p) for p in (zkey, r1cs, ptau))]
    tag = hashlib.sha256("|".join(parts).encode()).hexdigest()
    marker = Path(cache_dir) / f"zkey-ok-{tag}"
    if marker.exists():
        zk_digest = key_digest(zkey)
        return KeyCheckReport(0, 0, 0, 0, 0, zk_digest, {"cached": 0.0})
    rep = verify_zkey(zkey, r1cs, ptau)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(rep.digest + "\n")
    return rep


# --------------------------------------------------------------------------- keys against an SRS


def _canonical_rows(rows) -> tuple[np.ndarray, np.ndarray]:
    """A CSR matrix's (row, col) keys and values sorted by row, column, value (zero values dropped)."""
    r = np.repeat(np.arange(rows.n_rows, dtype=np.int64), np.diff(rows.ptr))
    keys = np.stack([r, np.asarray(rows.cols, dtype=np.int64)], axis=1)
    vals = np.asarray(rows.vals, dtype=np.uint64).reshape(-1, 4)
    nz = vals.any(axis=1)
    keys, vals = keys[nz], vals[nz]
    order = np.lexsort((vals[:, 0], vals[:, 1], vals[:, 2], vals[:, 3], keys[:, 1], keys[:, 0]))
    return keys[order], vals[order]


def _same_rows(got, want) -> bool:
    """True iff two CSR matrices have the same terms, trailing empty rows aside (fast path: identical
    storage)."""
    if (
        got.n_rows == want.n_rows
        and np.array_equal(got.ptr, want.ptr)
        and np.array_equal(got.cols, want.cols)
        and np.array_equal(got.vals, want.vals)
    ):
        return True
    gk, gv = _canonical_rows(got)
    wk, wv = _canonical_rows(want)
    return bool(np.array_equal(gk, wk) and np.array_equal(gv, wv))


def _used_columns(rows, n_cols: int) -> np.ndarray:
    """Mask of the wires with at least one term in the matrix (the others' polynomials are zero)."""
    mask = np.zeros(n_cols, dtype=bool)
    mask[np.asarray(rows.cols, dtype=np.int64)] = True
    return mask


def _msm1(f, pts: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """MSM in G1 as a (1, 2, 4) array (infinity for an empty input)."""
    if pts.shape[0] == 0:
        return f.g1_infinity(1)
    return f.msm_g1(np.ascontiguousarray(pts), np.ascontiguousarray(sc)).reshape(1, 2, 4)


def _msm_used(f, pts: np.ndarray, sc: np.ndarray, used: np.ndarray, what: str) -> np.ndarray:
    """sum_s sc_s pts[s] after checking that every point outside ``used`` is infinity (MSM over the rest)."""
    if pts[~used].any():
        _fail(f"a {what} point of a wire in no constraint of that matrix is not infinity")
    if used.all():
        return _msm1(f, pts, sc)
    idx = np.nonzero(used)[0]
    return _msm1(f, pts[idx], sc[idx])


def _not_points(f, pk) -> str | None:
    """The name of the first key array with a point off its curve (or non-canonical), else None."""
    for name in ("a", "b1", "c", "h"):
        arr = getattr(pk, name)
        if arr.shape[0] and not f.g1_is_on_curve(arr).all():
            return name
    if not f.g1_is_on_curve(np.stack([pk.vk.alpha_1, pk.beta_1, pk.delta_1])).all():
        return "alpha_1/beta_1/delta_1"
    if not f.g1_is_on_curve(pk.vk.ic).all():
        return "ic"
    if pk.b2.shape[0] and not f.g2_is_on_curve(pk.b2).all():
        return "b2"
    if not f.g2_in_subgroup(np.stack([pk.vk.beta_2, pk.vk.gamma_2, pk.vk.delta_2])).all():
        return "beta_2/gamma_2/delta_2"
    return None


def verify_key_srs(
    pk,
    cs,
    srs,
    *,
    expect_digest: bytes | None = None,
    strict_b2: bool = True,
    points_checked: bool = False,
    on_step=None,
) -> KeyCheckReport:
    """Check a native :class:`~zkmb.groth16.keys.ProvingKey` against the circuit ``cs`` and an :class:`Srs`.

    Passing means (up to the probabilities in the module docstring and the "Keys checked against an
    SRS" section of docs/setup.md) that every key element is what ``setup`` computes from the QAP of
    ``cs`` for the SRS's tau and some alpha, beta, gamma, delta with gamma, delta != 0: the key is
    well formed, so proofs made with it are zero-knowledge whoever made it.  ``expect_digest`` is the
    circuit digest the key must carry (default ``cs.digest()``).  The SRS itself is checked by
    :func:`zkmb.groth16.srs.verify_srs` (call it too, or use :func:`cached_verify_key_srs`).
    ``strict_b2`` (default) subgroup-checks every b2 point exactly; ``points_checked=True`` skips the
    per-point curve and subgroup checks because the caller has just done them (decompression).
    ``on_step(name)`` is called as each step starts (progress).  Raises :class:`KeyCheckFailed` naming
    the first failed check.
    """
    import time

    from ..algebra.ref.ntt import domain_root
    from .r1cs_to_qap import domain_size_for, qap_matrices

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    f = _fast()

    step = on_step or (lambda name: None)

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = now - since
        return now

    # --- shapes, counts, digest, QAP rows: the key must be for this circuit.
    m, npub, nv = cs.n_constraints, cs.n_public, cs.n_wires
    n = domain_size_for(m, npub)
    if (pk.n_vars, pk.n_public, pk.domain_size) != (nv, npub, n):
        _fail(
            f"it has {pk.n_vars} wires, {pk.n_public} public inputs, domain {pk.domain_size}; the circuit "
            f"needs {nv}, {npub}, {n} (a key for another circuit?)"
        )
    try:
        pk.check_shapes()
    except InvalidInput as e:
        _fail(str(e))
    want_digest = cs.digest() if expect_digest is None else expect_digest
    if pk.vk.digest != want_digest:
        _fail("it carries another circuit digest")
    a_rows, b_rows, c_rows = qap_matrices(cs)
    if not _same_rows(pk.a_rows, a_rows):
        _fail("its A rows (used by the prover for H) differ from the circuit's QAP")
    if not _same_rows(pk.b_rows, b_rows):
        _fail("its B rows (used by the prover for H) differ from the circuit's QAP")
    if srs.powers_for_domain(n) > srs.n_g1:
        _fail(
            f"the SRS ({srs.n_g1} powers) is too small for domain size {n} (needs {srs.powers_for_domain(n)})"
        )
    t = lap("header", t0)

    # --- every point on its curve; the small elements nonzero and consistent.
    step("points")
    if not points_checked:
        bad = _not_points(f, pk)
        if bad is not None:
            _fail(f"{bad} has a point that is not on the curve (or not in the subgroup)")
        if strict_b2 and pk.b2.shape[0]:
            step("b2_subgroup")
            ok = f.g2_in_subgroup(pk.b2)
            if not ok.all():
                _fail(f"b2[{int(np.argmin(ok))}] is a point outside the G2 subgroup")
    vk = pk.vk
    for name, pt in (
        ("alpha_1", vk.alpha_1),
        ("beta_1", pk.beta_1),
        ("delta_1", pk.delta_1),
        ("beta_2", vk.beta_2),
        ("gamma_2", vk.gamma_2),
        ("delta_2", vk.delta_2),
    ):
        if not pt.any():
            _fail(f"{name} is infinity (a zero exponent)")
    g1, g2 = f.g1_generator(), f.g2_generator()
    neg_g1 = f.g1_neg(g1)
    if not f.pairing_check(
        np.concatenate([pk.delta_1.reshape(1, 2, 4), neg_g1]),
        np.concatenate([g2, vk.delta_2.reshape(1, 2, 2, 4)]),
    ):
        _fail("delta_1 and delta_2 are not the same delta")
    if not f.pairing_check(
        np.concatenate([pk.beta_1.reshape(1, 2, 4), neg_g1]),
        np.concatenate([g2, vk.beta_2.reshape(1, 2, 2, 4)]),
    ):
        _fail("beta_1 and beta_2 are not the same beta")
    t = lap("points", t)

    # --- random combinations of the queries (rho per wire, sigma per H point, x and lam scalars).
    step("msm_a_b1")
    rho, sigma = _random_fr(nv), _random_fr(n)
    x, lam = _random_fr(2)
    va = a_rows.matvec(rho, n)
    vb = b_rows.matvec(rho, n)
    vc = c_rows.matvec(rho, n)
    used_a, used_b = _used_columns(a_rows, nv), _used_columns(b_rows, nv)
    used_c = (used_a | used_b | _used_columns(c_rows, nv))[npub + 1 :]
    a_sum = _msm_used(f, pk.a, rho, used_a, "A")
    b1_sum = _msm_used(f, pk.b1, rho, used_b, "B1")
    t = lap("msm_a_b1", t)
    step("msm_b2")
    b2_sum = _msm_used_g2(f, pk.b2, rho, used_b)
    t = lap("msm_b2", t)
    step("msm_c_h_ic")
    if pk.c[~used_c].any():
        _fail("a C point of a wire in no constraint is not infinity")
    idx = np.nonzero(used_c)[0]
    ch_sum = _msm1(  # sum rho_s c[s] + sum_j sigma_j h[j]: both pair with delta_2
        f,
        np.concatenate([pk.c[idx], pk.h]),
        np.concatenate([rho[npub + 1 :][idx], sigma]),
    )
    ic_sum = _msm1(f, vk.ic, np.ascontiguousarray(rho[: npub + 1]))
    t = lap("msm_c_h_ic", t)

    # Coefficient vectors: sum_i v_i L_i(tau) = sum_k intt(v)_k tau^k.  For H, sigma at the odd 2n-th
    # roots (0 at the even ones) interpolates to (1 - X^n) c(X) with c = coset_intt(sigma/2, omega_2n).
    step("ntt")
    xs = np.repeat(x[None], n, axis=0)
    p_ab = f.intt(f.fr_add(va, f.fr_mul(vb, xs)))
    half = f.fr_from_ints([(R_MOD + 1) // 2] * n)
    c_h = f.coset_intt(f.fr_mul(sigma, half), domain_root(2 * n))
    p_c = f.intt(vc)
    lam_n = np.repeat(lam[None], n, axis=0)
    tau_n2 = srs.g2_power(n)
    if tau_n2 is not None:  # (1 - tau^n) c_H(tau) through e(T(c_H), tau^n G2 - G2)
        p_lo = f.fr_add(p_c, f.fr_mul(p_ab, lam_n))
        h_g2 = f.g2_add(tau_n2.reshape(1, 2, 2, 4), f.g2_neg(f.g2_generator()))[0]
    else:  # version-1 SRS: c_H(tau) - tau * sum_k c_H,k tau^(k+n-1)
        p_lo = f.fr_add(f.fr_add(p_c, c_h), f.fr_mul(p_ab, lam_n))
        h_g2 = srs.tau_g2[1]
    t = lap("ntt", t)
    step("msm_srs")
    t_lo = np.ascontiguousarray(srs.tau_g1[:n])
    exp_lo = _msm1(f, t_lo, p_lo)
    exp_h = _msm1(f, t_lo if tau_n2 is not None else np.ascontiguousarray(srs.tau_g1[n - 1 : 2 * n - 1]), c_h)
    t = lap("msm_srs", t)
    step("pairings")

    # B2 against B1: e(sum rho_s b1[s], G2) = e(G1, sum rho_s b2[s]) (B1 itself is in the product below).
    if not f.g2_in_subgroup(b2_sum)[0] or not f.pairing_check(
        np.concatenate([b1_sum, neg_g1]), np.concatenate([g2, b2_sum])
    ):
        _fail("the B2 query is not consistent with B1")
    # One product for A, B1, C, IC and H (docstring):
    # e(C + H, delta) e(IC, gamma) e(-A, beta) e(-alpha, B2) e(X, G2) e(T_hi(c_H), tau G2) = 1 with
    # X = lam (A + x B1) - T_lo(lam p_AB + p_C + c_H).
    lx = f.fr_to_ints(f.fr_mul(lam[None], x[None]))[0]
    ab = f.g1_add(f.g1_mul(a_sum, f.fr_to_ints(lam[None])), f.g1_mul(b1_sum, [lx]))
    ps = np.concatenate(
        [
            ch_sum,
            ic_sum,
            f.g1_neg(a_sum),
            f.g1_neg(vk.alpha_1.reshape(1, 2, 4)),
            f.g1_add(ab, f.g1_neg(exp_lo)),
            exp_h,
        ]
    )
    qs = np.stack([vk.delta_2, vk.gamma_2, vk.beta_2, b2_sum[0], g2[0], h_g2])
    if not f.pairing_check(ps, qs):
        # only on failure: which part (one more MSM)
        got_ab = f.g1_add(a_sum, f.g1_mul(b1_sum, f.fr_to_ints(x[None])))
        if not _eq_points(got_ab, _msm1(f, t_lo, p_ab)):
            _fail("the A or B1 query is not what the circuit and the SRS imply")
        _fail("the C (L), IC or H query is not what the circuit, the SRS, alpha, beta, gamma and delta imply")
    lap("pairings", t)
    timings["total"] = time.perf_counter() - t0
    return KeyCheckReport(nv, npub, m, n, 0, "", timings)


def _msm_used_g2(f, pts: np.ndarray, sc: np.ndarray, used: np.ndarray) -> np.ndarray:
    if pts[~used].any():
        _fail("a B2 point of a wire in no B constraint is not infinity")
    idx = np.nonzero(used)[0]
    if idx.size == 0:
        return f.g2_infinity(1)
    sub = pts if idx.size == pts.shape[0] else pts[idx]
    sc = sc if idx.size == pts.shape[0] else sc[idx]
    return f.msm_g2(np.ascontiguousarray(sub), np.ascontiguousarray(sc)).reshape(1, 2, 2, 4)


def _srs_verdict(load, srs_hex: str, cache_dir: PathLike | None, timings: dict):
    """``load()`` the SRS and run :func:`~zkmb.groth16.srs.verify_srs` unless a cached verdict exists."""
    import time

    from .srs import verify_srs

    t0 = time.perf_counter()
    srs = load()
    timings["read_srs"] = time.perf_counter() - t0
    marker = Path(cache_dir) / f"srs-ok-{srs_hex}" if cache_dir is not None else None
    if marker is None or not marker.exists():
        t0 = time.perf_counter()
        verify_srs(srs)
        timings["verify_srs"] = time.perf_counter() - t0
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(srs_hex + "\n")
    return srs


class _SrsSource:
    """An SRS read and verified at most once (shared by the checks of several keys): an ``srs.bin`` file,
    or (``parts`` given) the compact parts 0, 1, ... a client downloaded, whose ``digest`` the caller
    computed from the parts' SHA-256s.  ``progress(done, total)`` follows the parts' decompression."""

    def __init__(
        self,
        path: PathLike | None,
        cache_dir: PathLike | None,
        *,
        parts: list | None = None,
        digest: str | None = None,
        progress=None,
    ):
        self.path, self.cache_dir, self.parts, self.progress = path, cache_dir, parts, progress
        self.digest = digest if parts is not None else key_digest(path)
        self._srs = None
        self.timings: dict[str, float] = {}

    def get(self):
        if self._srs is None:
            from .srs import read_srs, read_srs_parts

            if self.parts is not None:
                load = lambda: read_srs_parts(self.parts, progress=self.progress)  # noqa: E731
            else:
                load = lambda: read_srs(self.path)  # noqa: E731
            self._srs = _srs_verdict(load, self.digest, self.cache_dir, self.timings)
        return self._srs


def _cached_key_check(pk_path: PathLike, cs, src: _SrsSource, cache_dir: PathLike | None) -> KeyCheckReport:
    import time

    from .keys import ProvingKey

    t0 = time.perf_counter()
    pk_hex = key_digest(pk_path)
    cs_hex = cs.digest().hex()
    tag = hashlib.sha256(f"zkmb-srs-keycheck-v2|{pk_hex}|{cs_hex}|{src.digest}".encode()).hexdigest()
    marker = Path(cache_dir) / f"key-srs-ok-{tag}" if cache_dir is not None else None
    hashed = time.perf_counter() - t0
    if marker is not None and marker.exists():
        return KeyCheckReport(0, 0, 0, 0, 0, pk_hex, {"hash": hashed, "cached": 0.0})
    pk = ProvingKey.load(pk_path, expect_digest=cs.digest())
    loaded = time.perf_counter() - t0 - hashed
    srs = src.get()
    rep = verify_key_srs(pk, cs, srs)
    rep.digest = pk_hex
    rep.timings = {"hash": hashed, "load_pk": loaded, **src.timings, **rep.timings}
    rep.timings["total"] = time.perf_counter() - t0
    src.timings = {}
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(pk_hex + "\n")
    return rep


def cached_verify_key_srs(
    pk_path: PathLike, cs, srs_path: PathLike, cache_dir: PathLike | None
) -> KeyCheckReport:
    """Load the proving key file (format, checksum, digest of ``cs``), read and verify the SRS file, and
    run :func:`verify_key_srs`; the positive verdicts are cached under ``cache_dir`` (None: no cache).

    The key verdict is cached by SHA-256 of (key file digest, ``cs.digest()``, SRS file digest) and the
    SRS verdict by the SRS file digest; a rejection is never cached.  Raises KeyCheckFailed or
    InvalidInput (unreadable or corrupt files)."""
    return _cached_key_check(pk_path, cs, _SrsSource(srs_path, cache_dir), cache_dir)
