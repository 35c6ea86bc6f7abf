"""Groth16 key generation from OS randomness (a single-party "toxic waste" setup).

The trapdoor (tau, alpha, beta, gamma, delta) is drawn with :mod:`secrets`, used, and dropped; or it is
passed in (:class:`Trapdoor`), so that several circuits share one tau and their keys can be checked
against one public SRS of its powers (:mod:`zkmb.groth16.srs`, ``circuits.keys.generate_keys``).  A
verifiable multi-party setup (powers of tau + phase-2 contributions) produces keys of the same layout.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

from ..algebra import fast
from ..algebra.fast import curves as _curves
from ..algebra.params import R
from ..errors import InvalidInput
from .keys import ProvingKey, VerifyingKey
from .r1cs_to_qap import domain_size_for, lagrange_at, qap_matrices


def _rand_nonzero() -> int:
    return 1 + secrets.randbelow(R - 1)


def _mul_g1(scalars_mont: np.ndarray) -> np.ndarray:
    """[k_i] G1 for a Montgomery Fr vector (fixed-base comb)."""
    return _curves._G1.mul_generator_limbs(fast.fr_from_mont_limbs(scalars_mont))


def _mul_g2(scalars_mont: np.ndarray) -> np.ndarray:
    return _curves._G2.mul_generator_limbs(fast.fr_from_mont_limbs(scalars_mont))


@dataclass(frozen=True, repr=False)
class Trapdoor:
    """The setup's secret exponents (ints mod r).  Sharing ``tau`` lets several circuits' keys be checked
    against one SRS (:mod:`zkmb.groth16.srs`); alpha, beta, gamma, delta should be fresh per circuit."""

    tau: int
    alpha: int
    beta: int
    gamma: int
    delta: int

    @classmethod
    def random(cls, tau: int | None = None) -> Trapdoor:
        """Fresh nonzero alpha, beta, gamma, delta (and tau unless given) from the OS CSPRNG."""
        return cls(tau if tau is not None else random_tau(), *(_rand_nonzero() for _ in range(4)))


def random_tau() -> int:
    """A uniform tau in [2, r) (not 0 or 1), from the OS CSPRNG."""
    return 2 + secrets.randbelow(R - 2)


def setup(
    cs, *, digest: bytes | None = None, trapdoor: Trapdoor | None = None
) -> tuple[ProvingKey, VerifyingKey]:
    """Proving and verifying keys for the constraint system ``cs`` (snarkjs-compatible layout).

    Without ``trapdoor`` every exponent is fresh OS randomness.  With one, its values are used; they
    must be nonzero mod r and tau must not be a 2n-th root of unity (InvalidInput otherwise)."""
    npub, nv = cs.n_public, cs.n_wires
    n = domain_size_for(cs.n_constraints, npub)
    a_rows, b_rows, c_rows = qap_matrices(cs)
    if trapdoor is None:
        while True:
            tau = _rand_nonzero()
            if pow(tau, 2 * n, R) != 1:
                break
        alpha, beta, gamma, delta = (_rand_nonzero() for _ in range(4))
    else:
        tau, alpha, beta, gamma, delta = (
            int(x) % R for x in (trapdoor.tau, trapdoor.alpha, trapdoor.beta, trapdoor.gamma, trapdoor.delta)
        )
        if 0 in (tau, alpha, beta, gamma, delta):
            raise InvalidInput("setup trapdoor: tau, alpha, beta, gamma and delta must be nonzero mod r")
        if pow(tau, 2 * n, R) == 1:
            raise InvalidInput(f"setup trapdoor: tau is a {2 * n}-th root of unity (domain {n})")

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
