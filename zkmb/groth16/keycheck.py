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
probability at most 2^-253 (Schwartz-Zippel over the exponents), except for a B2 point with a
component outside the prime-order subgroup, which one combination misses with probability at most
1/10069 (the smallest prime factor of the G2 cofactor); ``strict_b2=True`` checks every B2 point's
subgroup instead. The ptau is trusted here: verify it (phase 1) separately.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from ..algebra.kernels import mont
from ..errors import InvalidInput
from .snarkjs import PathLike, ZkeyGroth16, read_ptau_info, read_ptau_lagrange, read_ptau_points, read_zkey

__all__ = ["KeyCheckFailed", "KeyCheckReport", "verify_zkey", "expected_domain_size", "key_digest"]


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
    strict_b2: bool = False,
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
    tag = hashlib.sha256("|".join(key_digest(p) for p in (zkey, r1cs, ptau)).encode()).hexdigest()
    marker = Path(cache_dir) / f"zkey-ok-{tag}"
    if marker.exists():
        zk_digest = key_digest(zkey)
        return KeyCheckReport(0, 0, 0, 0, 0, zk_digest, {"cached": 0.0})
    rep = verify_zkey(zkey, r1cs, ptau)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(rep.digest + "\n")
    return rep
