"""The initial circuit-specific Groth16 key from a prepared ptau, as ``snarkjs groth16 setup`` makes it.

:func:`zkey_from_ptau` derives every key element from the Lagrange sections of a prepared ``.ptau``
(``L_i = L_i(tau) G1``, ``L_i G2``, ``alpha L_i G1``, ``beta L_i G1``) and the R1CS:

* ``A[s] = sum_c A[c][s] L_c`` including the extra rows ``A[m + s][s] = 1`` for ``s <= nPublic``;
  ``B1[s]``, ``B2[s]`` the same over B (no extra rows);
* ``IC[s]`` (``s <= nPublic``) and ``C[s]`` (private ``s``) = ``sum_c A[c][s] beta L_c +
  B[c][s] alpha L_c + C[c][s] L_c`` (gamma = delta = 1);
* ``H[j] = L^(2n)_(2j+1)`` (odd points of the 2n Lagrange block);
* alpha1, beta1, beta2 the ptau's, gamma2 = delta2 = G2, delta1 = G1, csHash as snarkjs, no contributions;
* the coefficient section in snarkjs's order (per constraint its A then its B terms, then the extra rows).

The result has no phase-2 contribution (delta = 1): add one with :func:`zkmb.groth16.phase2.contribute`
before use. The ptau is trusted (verify it with :func:`zkmb.groth16.ptau.ptau_verify`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..algebra.fast import curves as _curves
from ..algebra.fast.fields import fr_from_mont_limbs
from ..algebra.kernels import mont
from ..errors import InvalidInput
from .keycheck import expected_domain_size
from .snarkjs import (
    PathLike,
    ZkeyGroth16,
    read_ptau_info,
    read_ptau_lagrange,
    read_ptau_points,
    snarkjs_cs_hash,
)

__all__ = ["zkey_from_ptau"]

_FR_ONE = np.array(mont.FR_ONE, dtype=np.uint64)


def _triplets(mat, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, Montgomery value) of a CSR matrix's terms, in storage order."""
    r = np.repeat(np.arange(rows, dtype=np.int64), np.diff(np.asarray(mat.row_ptr, dtype=np.int64)))
    return r, np.asarray(mat.cols, dtype=np.int64), np.asarray(mat.coeffs, dtype=np.uint64).reshape(-1, 4)


def _scaled(g, pts: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Elementwise ``[v_k] P_k`` (Montgomery Fr ``v``), skipping the multiplication where ``v = 1``."""
    out = np.array(pts, copy=True)
    todo = np.nonzero(~(vals == _FR_ONE).all(axis=1))[0]
    if todo.size:
        plain = np.ascontiguousarray(fr_from_mont_limbs(np.ascontiguousarray(vals[todo])))
        jac = g.empty(todo.size, 3)
        _curves.K.mul_vec(np.ascontiguousarray(pts[todo]), plain, jac)
        out[todo] = g.from_jac(jac)
    return out


def _segment_sums(g, pts: np.ndarray, seg: np.ndarray, n_seg: int) -> np.ndarray:
    """``out[s] = sum of pts[k] with seg[k] == s`` (affine; infinity for an empty segment).

    Pairwise tree reduction inside each segment: ceil(log2(largest segment)) vectorised batch additions."""
    order = np.argsort(seg, kind="stable")
    pts, seg = np.ascontiguousarray(pts[order]), seg[order]
    while seg.size:
        same_next = np.zeros(seg.size, dtype=bool)
        same_next[:-1] = seg[1:] == seg[:-1]
        if not same_next.any():
            break
        idx = np.arange(seg.size)
        first = np.ones(seg.size, dtype=bool)
        first[1:] = ~same_next[:-1]
        start = np.maximum.accumulate(np.where(first, idx, 0))
        even = (idx - start) % 2 == 0
        keep = np.nonzero(even)[0]
        pair = np.nonzero(even & same_next)[0]
        new = pts[keep]
        new[np.searchsorted(keep, pair)] = _curves._add(g, pts[pair], pts[pair + 1])
        pts, seg = np.ascontiguousarray(new), seg[keep]
    out = np.zeros((n_seg, *pts.shape[1:]), dtype=np.uint64)
    out[seg] = pts
    return out


def zkey_from_ptau(cs, ptau: PathLike) -> ZkeyGroth16:
    """The key ``snarkjs groth16 setup`` (``zkey new``) derives for ``cs`` from the prepared ``ptau``.

    ``cs`` is a ConstraintSystem (ours or :func:`zkmb.r1cs.circom.read_r1cs`'s). Raises InvalidInput
    if the ptau is not prepared for phase 2 or too small for the circuit's domain. The result passes
    :func:`zkmb.groth16.keycheck.verify_zkey` and ``snarkjs zkey verify`` (zero contributions).
    """
    m, npub, nv = cs.n_constraints, cs.n_public, cs.n_wires
    if nv < npub + 1:
        raise InvalidInput(f"circuit has {nv} wires but {npub} public inputs")
    n = expected_domain_size(m, npub)
    info = read_ptau_info(ptau)
    if not info.prepared:
        raise InvalidInput("the ptau is not prepared for phase 2 (run `zkmb setup ptau prepare`)")
    if n > 1 << info.power:
        raise InvalidInput(f"the ptau (2^{info.power}) is too small: the circuit needs domain size {n}")
    g1, g2 = _curves._G1, _curves._G2
    lag = read_ptau_lagrange(ptau, "tau_g1", n)
    lag2 = read_ptau_lagrange(ptau, "tau_g2", n)
    lag_a = read_ptau_lagrange(ptau, "alpha_tau_g1", n)
    lag_b = read_ptau_lagrange(ptau, "beta_tau_g1", n)
    h = np.ascontiguousarray(read_ptau_lagrange(ptau, "tau_g1", 2 * n)[1::2])

    ar, ac, av = _triplets(cs.A, m)
    br, bc, bv = _triplets(cs.B, m)
    cr, cc, cv = _triplets(cs.C, m)
    ext = np.arange(npub + 1, dtype=np.int64)
    ar, ac = np.concatenate([ar, m + ext]), np.concatenate([ac, ext])
    av = np.concatenate([av, np.tile(_FR_ONE, (npub + 1, 1))])

    a = _segment_sums(g1, _scaled(g1, lag[ar], av), ac, nv)
    b1 = _segment_sums(g1, _scaled(g1, lag[br], bv), bc, nv)
    b2 = _segment_sums(g2, _scaled(g2, lag2[br], bv), bc, nv)
    lin_pts = np.concatenate([lag_b[ar], lag_a[br], lag[cr]])
    lin = _segment_sums(
        g1, _scaled(g1, lin_pts, np.concatenate([av, bv, cv])), np.concatenate([ac, bc, cc]), nv
    )

    # Coefficients in snarkjs's order: per constraint its A terms then its B terms (storage order),
    # then the extra rows A[m + s][s] = 1.
    k_a = ar.size - (npub + 1)
    mats = np.concatenate([np.zeros(k_a, dtype=np.int64), np.ones(br.size, dtype=np.int64)])
    rows = np.concatenate([ar[:k_a], br])
    order = np.lexsort((mats, rows))  # stable: keeps storage order within (row, matrix)
    coef_m = np.concatenate([mats[order], np.zeros(npub + 1, dtype=np.int64)]).astype(np.uint32)
    coef_c = np.concatenate([rows[order], m + ext]).astype(np.uint32)
    coef_s = np.concatenate([np.concatenate([ac[:k_a], bc])[order], ext]).astype(np.uint32)
    coef_v = np.ascontiguousarray(np.concatenate([np.concatenate([av[:k_a], bv])[order], av[k_a:]]))

    zk = ZkeyGroth16(
        n_vars=nv,
        n_public=npub,
        domain_size=n,
        alpha_1=read_ptau_points(ptau, "alpha_tau_g1", 0, 1)[0],
        beta_1=read_ptau_points(ptau, "beta_tau_g1", 0, 1)[0],
        beta_2=read_ptau_points(ptau, "beta_g2", 0, 1)[0],
        gamma_2=g2.from_affine([g2.gen])[0],
        delta_1=g1.from_affine([g1.gen])[0],
        delta_2=g2.from_affine([g2.gen])[0],
        ic=np.ascontiguousarray(lin[: npub + 1]),
        coef_matrix=coef_m,
        coef_constraint=coef_c,
        coef_signal=coef_s,
        coef_value=coef_v,
        a=a,
        b1=b1,
        b2=b2,
        c=np.ascontiguousarray(lin[npub + 1 :]),
        h=h,
    )
    zk.check_shapes()
    return replace(zk, cs_hash=snarkjs_cs_hash(zk, ptau))
