"""Groth16 key generation from OS randomness (a single-party "toxic waste" setup).

The trapdoor (tau, alpha, beta, gamma, delta) is drawn with :mod:`secrets`, used, and dropped.  A
verifiable multi-party setup (powers of tau + phase-2 contributions) produces keys of the same layout.
"""

from __future__ import annotations

import secrets

import numpy as np

from ..algebra import fast
from ..algebra.fast import curves as _curves
from ..algebra.params import R
from .keys import ProvingKey, VerifyingKey
from .r1cs_to_qap import domain_size_for, lagrange_at, qap_matrices


def _rand_nonzero() -> int:
    return 1 + secrets.randbelow(R - 1)


def _mul_g1(scalars_mont: np.ndarray) -> np.ndarray:
    """[k_i] G1 for a Montgomery Fr vector (fixed-base comb)."""
    return _curves._G1.mul_generator_limbs(fast.fr_from_mont_limbs(scalars_mont))


def _mul_g2(scalars_mont: np.ndarray) -> np.ndarray:
    return _curves._G2.mul_generator_limbs(fast.fr_from_mont_limbs(scalars_mont))


def setup(cs, *, digest: bytes | None = None) -> tuple[ProvingKey, VerifyingKey]:
    """Proving and verifying keys for the constraint system ``cs`` (snarkjs-compatible layout)."""
    npub, nv = cs.n_public, cs.n_wires
    n = domain_size_for(cs.n_constraints, npub)
    a_rows, b_rows, c_rows = qap_matrices(cs)
    while True:
        tau = _rand_nonzero()
        if pow(tau, 2 * n, R) != 1:
            break
    alpha, beta, gamma, delta = (_rand_nonzero() for _ in range(4))

    lag = lagrange_at(tau, n)
    at = a_rows.matvec_t(lag, nv)
    bt = b_rows.matvec_t(lag, nv)
    ct = c_rows.matvec_t(lag, nv)

    def const(x: int, k: int) -> np.ndarray:
        return np.tile(fast.fr_from_ints([x % R]), (k, 1))

    # (beta A_s + alpha B_s + C_s)(tau): public wires over gamma, private ones over delta.
    lin = fast.fr_add(fast.fr_add(fast.fr_mul(at, const(beta, nv)), fast.fr_mul(bt, const(alpha, nv))), ct)
    ic_s = fast.fr_mul(lin[: npub + 1], const(pow(gamma, -1, R), npub + 1))
    c_s = fast.fr_mul(lin[npub + 1 :], const(pow(delta, -1, R), nv - npub - 1))
    lag2 = lagrange_at(tau, 2 * n)[1::2]
    h_s = fast.fr_mul(np.ascontiguousarray(lag2), const(pow(delta, -1, R), n))

    small1 = _mul_g1(fast.fr_from_ints([alpha, beta, delta]))
    small2 = _mul_g2(fast.fr_from_ints([beta, gamma, delta]))
    vk = VerifyingKey(
        alpha_1=small1[0],
        beta_2=small2[0],
        gamma_2=small2[1],
        delta_2=small2[2],
        ic=_mul_g1(ic_s),
        digest=digest if digest is not None else cs.digest(),
    )
    pk = ProvingKey(
        n_vars=nv,
        n_public=npub,
        domain_size=n,
        vk=vk,
        beta_1=small1[1],
        delta_1=small1[2],
        a=_mul_g1(at),
        b1=_mul_g1(bt),
        b2=_mul_g2(bt),
        c=_mul_g1(c_s),
        h=_mul_g1(h_s),
        a_rows=a_rows,
        b_rows=b_rows,
    )
    del tau, alpha, beta, gamma, delta
    return pk, vk
