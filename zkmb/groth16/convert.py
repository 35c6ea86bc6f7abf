"""Conversions between the core Groth16 types and snarkjs's (zkey, JSON)."""

from __future__ import annotations

import hashlib

import numpy as np

from ..algebra import fast
from .keys import ProvingKey, VerifyingKey
from .proof import Proof
from .r1cs_to_qap import CsrRows
from .snarkjs import Groth16Proof, Groth16Vk, ZkeyGroth16


def zkey_digest(zk: ZkeyGroth16) -> bytes:
    """Our 32-byte circuit digest for a snarkjs key: SHA-256 of its 64-byte csHash."""
    return hashlib.sha256(b"zkmb-snarkjs-cshash\0" + bytes(zk.cs_hash)).digest()


def proving_key_from_zkey(zk: ZkeyGroth16) -> ProvingKey:
    """A ProvingKey that proves with a snarkjs .zkey's material (arrays shared, not copied)."""
    n = zk.domain_size
    rows = {}
    for m in (0, 1):
        cons, sig, val = zk.matrix(m)
        rows[m] = CsrRows.from_triplets(cons.astype(np.int64), sig.astype(np.int64), val, n)
    vk = VerifyingKey(zk.alpha_1, zk.beta_2, zk.gamma_2, zk.delta_2, zk.ic, digest=zkey_digest(zk))
    pk = ProvingKey(
        n_vars=zk.n_vars,
        n_public=zk.n_public,
        domain_size=n,
        vk=vk,
        beta_1=zk.beta_1,
        delta_1=zk.delta_1,
        a=zk.a,
        b1=zk.b1,
        b2=zk.b2,
        c=zk.c,
        h=zk.h,
        a_rows=rows[0],
        b_rows=rows[1],
    )
    pk.check_shapes()
    return pk


def verifying_key_from_snarkjs(vk: Groth16Vk, digest: bytes = bytes(32)) -> VerifyingKey:
    """From canonical points (e.g. vk_from_json); the points are validated."""
    g1 = fast.g1_from_affine([vk.alpha_1, *vk.ic])
    g2 = fast.g2_from_affine([vk.beta_2, vk.gamma_2, vk.delta_2])
    out = VerifyingKey(g1[0], g2[0], g2[1], g2[2], np.ascontiguousarray(g1[1:]), digest=digest)
    out.validate()
    return out


def verifying_key_to_snarkjs(vk: VerifyingKey) -> Groth16Vk:
    g2 = fast.g2_to_affine(np.stack([vk.beta_2, vk.gamma_2, vk.delta_2]))
    return Groth16Vk(
        fast.g1_to_affine(vk.alpha_1[None])[0], g2[0], g2[1], g2[2], tuple(fast.g1_to_affine(vk.ic))
    )


def proof_to_snarkjs(proof: Proof) -> Groth16Proof:
    return Groth16Proof(*proof.to_canonical())


def proof_from_snarkjs(proof: Groth16Proof) -> Proof:
    """From canonical points; validated on the curve and in the subgroups."""
    return Proof.from_canonical(proof.a, proof.b, proof.c)
