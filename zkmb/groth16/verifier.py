"""The Groth16 verifier: one proof with three Miller loops against the cached e(alpha, beta), and
batches with a random linear combination and one multi-Miller loop.

``vk_x = sum_i x_i IC_i`` uses the key's fixed-base table (:attr:`VerifyingKey.ic_table`, built on
first use): one batch-affine sum of a table point per non-zero 4-bit digit of the scalars.  For the
statements' few public inputs this is 5-10x faster than a Pippenger MSM, whose windows each pay a
field inversion (issue #16: Q-448 verified in 2.7 ms, most of it that MSM).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from ..algebra import fast
from ..algebra.fast.msm import sum_points
from ..algebra.params import R
from ..errors import InvalidInput
from .keys import VerifyingKey
from .proof import Proof


def _check_public(vk: VerifyingKey, public: Sequence[int]) -> None:
    if len(public) != vk.n_public:
        raise InvalidInput(f"expected {vk.n_public} public inputs, got {len(public)}")
    for x in public:
        if not isinstance(x, int) or not 0 <= x < R:
            raise InvalidInput("public input is not a canonical Fr element")


def _public_vec(vk: VerifyingKey, public: Sequence[int]) -> np.ndarray:
    _check_public(vk, public)
    return fast.fr_from_ints([1, *public])


def ic_combination(vk: VerifyingKey, scalars: Sequence[int]) -> np.ndarray:
    """sum_i scalars_i IC_i (i = 0..n_public, ints in [0, r)) as a (1, 2, 4) vector, from the key's
    fixed-base table: the 4-bit digits of each scalar pick table points, summed in one batch-affine
    tree (complete: doublings, inverses and infinity are handled per pair)."""
    table = vk.ic_table
    n = len(scalars)
    raw = np.frombuffer(b"".join(x.to_bytes(32, "little") for x in scalars), dtype=np.uint8).reshape(n, 32)
    digits = np.empty((n, 64), dtype=np.int64)
    digits[:, 0::2] = raw & 15
    digits[:, 1::2] = raw >> 4
    i, w = np.nonzero(digits)
    if i.size == 0:
        return fast.g1_infinity(1)
    return sum_points(np.ascontiguousarray(table[i, w, digits[i, w] - 1]), threads=1)


def _vk_x(vk: VerifyingKey, public: Sequence[int]) -> np.ndarray:
    """IC_0 + sum_i x_i IC_i as a (1, 2, 4) vector."""
    _check_public(vk, public)
    return ic_combination(vk, [1, *public])


def verify(vk: VerifyingKey, public: Sequence[int], proof: Proof) -> bool:
    """True iff e(A, B) = e(alpha, beta) e(vk_x, gamma) e(C, delta).

    Malformed public inputs raise InvalidInput; the proof's points must already be validated
    (Proof.from_bytes / from_canonical do that)."""
    vk_x = _vk_x(vk, public)
    ps = np.stack([proof.a, fast.g1_neg(vk_x)[0], fast.g1_neg(proof.c[None])[0]])
    qs = np.stack([proof.b, vk.gamma_2, vk.delta_2])
    f = fast.final_exponentiation(fast.miller_loop(ps, qs))
    return fast.fq12_eq(f, vk.alphabeta)


def batch_verify(vk: VerifyingKey, items: Sequence[tuple[Sequence[int], Proof]]) -> bool:
    """True iff every (public, proof) verifies (except with probability ~2^-128 over the coins).

    prod_j e(r_j A_j, B_j) = e(alpha, beta)^(sum r_j) e(sum r_j vk_x_j, gamma) e(sum r_j C_j, delta)
    with independent random 128-bit r_j: k + 3 Miller loops and one final exponentiation."""
    k = len(items)
    if k == 0:
        return True
    coins = [1 + secrets.randbits(128) for _ in range(k)]
    coins_fr = fast.fr_from_ints(coins)
    pubs = np.concatenate([_public_vec(vk, pub) for pub, _ in items])  # (k * (n_public + 1), 4)
    # sum_j r_j vk_x_j = sum_i (sum_j r_j x_{j,i}) IC_i
    weights = fast.fr_mul(pubs, np.repeat(coins_fr, vk.n_public + 1, axis=0))
    per_ic = weights.reshape(k, vk.n_public + 1, 4)
    acc = per_ic[0].copy()
    for j in range(1, k):
        acc = fast.fr_add(acc, np.ascontiguousarray(per_ic[j]))
    vk_x = ic_combination(vk, fast.fr_to_ints(acc))
    a = fast.g1_mul(np.stack([p.a for _, p in items]), coins)
    c = fast.msm_g1(np.stack([p.c for _, p in items]), coins_fr)
    alpha = fast.g1_mul(vk.alpha_1[None], [sum(coins) % R])
    ps = np.concatenate([a, fast.g1_neg(np.concatenate([vk_x, c, alpha]))])
    qs = np.concatenate([np.stack([p.b for _, p in items]), np.stack([vk.gamma_2, vk.delta_2, vk.beta_2])])
    return fast.pairing_check(ps, qs)
