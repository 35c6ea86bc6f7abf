"""The Groth16 prover: witness -> proof, in the snarkjs QAP convention (see r1cs_to_qap)."""

from __future__ import annotations

import secrets

import numpy as np

from ..algebra import fast
from ..algebra.params import R
from ..errors import InvalidInput, ZkmbError
from .keys import ProvingKey, VerifyingKey
from .proof import Proof
from .r1cs_to_qap import h_odd_evaluations


class UnsatisfiedWitness(ZkmbError):
    """The witness does not satisfy the constraint system; the message names the failing scope."""


def _g1(*terms: np.ndarray) -> np.ndarray:
    acc = terms[0].reshape(1, 2, 4)
    for t in terms[1:]:
        acc = fast.g1_add(acc, t.reshape(1, 2, 4))
    return acc


def _g2(*terms: np.ndarray) -> np.ndarray:
    acc = terms[0].reshape(1, 2, 2, 4)
    for t in terms[1:]:
        acc = fast.g2_add(acc, t.reshape(1, 2, 2, 4))
    return acc


def prove(pk: ProvingKey, witness, *, cs=None, r: int | None = None, s: int | None = None) -> Proof:
    """A proof for ``witness`` (a zkmb.r1cs Witness or an (n_vars, 4) Montgomery array).

    With ``cs`` the witness is first checked against the constraint system (raising
    UnsatisfiedWitness naming the failing constraint's scope) and the key's digest against the
    circuit's.  r and s are the zero-knowledge blinders, fresh from the CSPRNG unless given (tests).
    """
    w = getattr(witness, "values", witness)
    if not isinstance(w, np.ndarray) or w.shape != (pk.n_vars, 4) or w.dtype != np.uint64:
        raise InvalidInput(f"witness must have {pk.n_vars} wires")
    if cs is not None:
        if cs.digest() != pk.digest:
            raise InvalidInput("proving key was made for another circuit (digest mismatch)")
        where = cs.which_is_unsatisfied(witness)
        if where is not None:
            raise UnsatisfiedWitness(f"witness does not satisfy the circuit: {where}")
    r = secrets.randbelow(R) if r is None else r % R
    s = secrets.randbelow(R) if s is None else s % R

    h = h_odd_evaluations(pk.a_rows, pk.b_rows, w, pk.domain_size)
    priv = np.ascontiguousarray(w[pk.n_public + 1 :])
    vk = pk.vk
    a_m = fast.msm_g1(pk.a, w)
    b1_m = fast.msm_g1(pk.b1, w)
    b2_m = fast.msm_g2(pk.b2, w)
    c_m = fast.msm_g1(pk.c, priv) if priv.shape[0] else fast.g1_infinity(1)
    h_m = fast.msm_g1(pk.h, h)

    rs = fast.g1_mul(np.stack([pk.delta_1, pk.delta_1, pk.delta_1]), [r, s, (-r * s) % R])
    a = _g1(vk.alpha_1, a_m, rs[0])
    b2 = _g2(vk.beta_2, b2_m, fast.g2_mul(vk.delta_2[None], [s]))
    b1 = _g1(pk.beta_1, b1_m, rs[1])
    sa_rb = fast.g1_mul(np.concatenate([a, b1]), [s, r])
    c = _g1(c_m, h_m, sa_rb[0], sa_rb[1], rs[2])
    return Proof(a[0], b2[0], c[0])


def rerandomize(vk: VerifyingKey, proof: Proof) -> Proof:
    """A fresh proof of the same statement: A' = A/t, B' = t B + t u delta, C' = C + u A."""
    t = 1 + secrets.randbelow(R - 1)
    u = secrets.randbelow(R)
    a = fast.g1_mul(proof.a[None], [pow(t, -1, R)])
    b = _g2(fast.g2_mul(proof.b[None], [t]), fast.g2_mul(vk.delta_2[None], [t * u % R]))
    c = _g1(proof.c, fast.g1_mul(proof.a[None], [u]))
    return Proof(a[0], b[0], c[0])
