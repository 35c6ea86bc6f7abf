"""The Groth16 prover: witness -> proof, in the snarkjs QAP convention (see r1cs_to_qap)."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..algebra import fast
from ..algebra.kernels.mont import FR_ONE
from ..algebra.params import R
from ..algebra.ref.ntt import domain_root
from ..errors import InvalidInput, ZkmbError
from .keys import ProvingKey, VerifyingKey
from .proof import Proof
from .r1cs_to_qap import CsrRows


class UnsatisfiedWitness(ZkmbError):
    """The witness does not satisfy the constraint system; the message names the failing scope."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row
        """The first failing constraint (-1: wire 0 is not 1), where known."""


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


@dataclass(frozen=True)
class ProofStep:
    """One step of a :class:`ProofPlan`: ``run()`` does its part of the arithmetic (``name`` for
    timings); steps of one stage are independent and may run on different threads at once."""

    name: str
    run: Callable[[], None]


class ProofPlan:
    """The Groth16 prover cut into independent steps, for a scheduler that runs each step on one
    thread (numba threads = 1), several at once, interleaved with other proofs' steps.

    Stages (each step of a stage only reads what earlier stages wrote):

    0. ``qap``: A w, B w (those of ``known_rows`` given) and their product on the domain (with
       ``check``, the circuit's C rows: also C w, which must equal that product on every row: the whole
       R1CS check for one sparse product);
    1. the three polynomial chains (inverse NTT, coset NTT) and the MSMs A, B1, C (G1) and B2 (G2), each
       MSM in ``split`` chunks of its points;
    2. ``h``: the odd-coset evaluations of p = a b - c;
    3. the H MSM in ``h_split`` chunks (default ``split``).

    :meth:`finish` adds the blinding terms and returns the proof.  :meth:`run` runs every step in
    order on the calling thread (with the kernels' own threads): :func:`prove` does exactly that.
    A plan never touches the proving key's arrays other than to read them.
    """

    def __init__(
        self,
        pk: ProvingKey,
        witness,
        *,
        r: int | None = None,
        s: int | None = None,
        split: int = 1,
        h_split: int | None = None,
        release: Callable[[np.ndarray], None] | None = None,
        check: CsrRows | None = None,
        scope_of: Callable[[int], str] | None = None,
        known_rows=None,
    ):
        w = getattr(witness, "values", witness)
        if not isinstance(w, np.ndarray) or w.shape != (pk.n_vars, 4) or w.dtype != np.uint64:
            raise InvalidInput(f"witness must have {pk.n_vars} wires")
        self.pk, self.w = pk, w
        self.r = secrets.randbelow(R) if r is None else r % R
        self.s = secrets.randbelow(R) if s is None else s % R
        self.split = max(1, int(split))
        self.h_split = self.split if h_split is None else max(1, int(h_split))
        """Chunks of the H MSM (stage 3 runs alone: two chunks let two threads share it)."""
        self.release = release
        """Called with each key array (or chunk of one) once the proof no longer needs it."""
        self.check, self.scope_of = check, scope_of
        """The circuit's C rows: the ``qap`` step raises UnsatisfiedWitness (naming the constraint's scope
        with ``scope_of``) unless wire 0 is 1 and C w = A w o B w; a proof is never made for a witness
        that does not satisfy the circuit (it would not verify)."""
        if check is not None and check.n_rows > pk.domain_size:
            raise InvalidInput("the C rows to check are not this key's circuit's (more rows than the domain)")
        self.known_rows = known_rows
        """The witness solver's A w and B w on its product rows (:class:`zkmb.r1cs.system.RowValues`,
        from ``solve(rows=True)`` of this key's circuit and this witness): the ``qap`` step evaluates
        only the other rows (a query proof's QAP step 5.5 -> 1 ms).  ``check`` still compares every
        row."""
        if known_rows is not None and not (
            known_rows.a.shape == known_rows.b.shape == (known_rows.known.shape[0], 4)
            and known_rows.known.shape[0] <= min(pk.a_rows.n_rows, pk.b_rows.n_rows)
        ):
            raise InvalidInput("the known row values are not this key's circuit's")
        self._plain = fast.plain_scalars(w)
        self._parts: dict[str, list] = {k: [] for k in ("a", "b1", "b2", "c", "h")}
        self._evals: list[np.ndarray] = []
        self._h_plain: np.ndarray | None = None
        n_priv = pk.n_vars - pk.n_public - 1
        self.stages: list[list[ProofStep]] = [
            [ProofStep("qap", self._qap)],
            [ProofStep(f"ntt_{i}", functools.partial(self._chain, i)) for i in range(3)]
            + self._msm_steps("a", pk.a, 0)
            + self._msm_steps("b2", pk.b2, 0)
            + self._msm_steps("b1", pk.b1, 0)
            + (self._msm_steps("c", pk.c, pk.n_public + 1) if n_priv else []),
            [ProofStep("h", self._combine_h)],
            self._msm_steps("h", pk.h, None),
        ]

    def _msm_steps(self, part: str, points: np.ndarray, offset: int | None) -> list[ProofStep]:
        n = points.shape[0]
        k = min(self.h_split if part == "h" else self.split, max(1, n // 2048))
        bounds = [n * i // k for i in range(k + 1)]
        return [
            ProofStep(f"msm_{part}", functools.partial(self._msm, part, points, offset, lo, hi))
            for lo, hi in zip(bounds, bounds[1:], strict=False)
            if hi > lo
        ]

    def _msm(self, part: str, points: np.ndarray, offset: int | None, lo: int, hi: int) -> None:
        if offset is None:  # the H query: scalars are the h evaluations of stage 2
            scalars = self._h_plain[lo:hi]
        else:
            scalars = self._plain[offset + lo : offset + hi]
        self._parts[part].append(self.pk.msm(part, scalars, lo))
        if self.release is not None:
            self.release(points[lo:hi])

    def _qap(self) -> None:
        pk, n, kr = self.pk, self.pk.domain_size, self.known_rows
        a = pk.a_rows.matvec(self.w, n, None if kr is None else (kr.a, kr.known))
        b = pk.b_rows.matvec(self.w, n, None if kr is None else (kr.b, kr.known))
        self._evals = [a, b, fast.fr_mul(a, b)]
        if self.check is not None:
            self._check_rows(self._evals[2])
        if self.release is not None:
            for rows in (pk.a_rows, pk.b_rows):
                for arr in (rows.ptr, rows.cols, rows.vals):
                    self.release(arr)

    def _check_rows(self, ab: np.ndarray) -> None:
        if not np.array_equal(self.w[0], np.array(FR_ONE, dtype=np.uint64)):
            raise UnsatisfiedWitness(
                "witness does not satisfy the circuit: wire 0 (the constant one) is not 1", -1
            )
        cw = self.check.matvec(self.w, self.pk.domain_size)
        bad = np.flatnonzero((cw != ab).any(axis=1))
        if bad.size:
            i = int(bad[0])
            scope = self.scope_of(i) if self.scope_of is not None else ""
            raise UnsatisfiedWitness(
                f"witness does not satisfy the circuit: constraint {i} in scope '{scope or '<root>'}'", i
            )

    def _chain(self, i: int) -> None:
        v = self._evals[i]
        fast.intt_inplace(v)
        fast.coset_ntt_inplace(v, domain_root(2 * self.pk.domain_size))

    def _combine_h(self) -> None:
        a, b, c = self._evals
        self._h_plain = fast.plain_scalars(fast.fr_sub(fast.fr_mul(a, b), c))
        self._evals = []

    def _sum(self, part: str, g2: bool = False) -> np.ndarray:
        parts = self._parts[part]
        if not parts:
            return fast.g2_infinity(1) if g2 else fast.g1_infinity(1)
        return (_g2 if g2 else _g1)(*parts)

    def steps(self) -> list[ProofStep]:
        """Every step, stage by stage (the order :meth:`run` uses)."""
        return [step for stage in self.stages for step in stage]

    def run(self) -> Proof:
        for step in self.steps():
            step.run()
        return self.finish()

    def finish(self) -> Proof:
        """The proof from the MSM results (after every stage ran): A, B and C with the blinders r, s."""
        pk, vk, r, s = self.pk, self.pk.vk, self.r, self.s
        a_m, b1_m, b2_m = self._sum("a"), self._sum("b1"), self._sum("b2", g2=True)
        c_m, h_m = self._sum("c"), self._sum("h")
        rs = fast.g1_mul(np.stack([pk.delta_1, pk.delta_1, pk.delta_1]), [r, s, (-r * s) % R])
        a = _g1(vk.alpha_1, a_m, rs[0])
        b2 = _g2(vk.beta_2, b2_m, fast.g2_mul(vk.delta_2[None], [s]))
        b1 = _g1(pk.beta_1, b1_m, rs[1])
        sa_rb = fast.g1_mul(np.concatenate([a, b1]), [s, r])
        c = _g1(c_m, h_m, sa_rb[0], sa_rb[1], rs[2])
        return Proof(a[0], b2[0], c[0])


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
    return ProofPlan(pk, w, r=r, s=s).run()


def rerandomize(vk: VerifyingKey, proof: Proof) -> Proof:
    """A fresh proof of the same statement: A' = A/t, B' = t B + t u delta, C' = C + u A."""
    t = 1 + secrets.randbelow(R - 1)
    u = secrets.randbelow(R)
    a = fast.g1_mul(proof.a[None], [pow(t, -1, R)])
    b = _g2(fast.g2_mul(proof.b[None], [t]), fast.g2_mul(vk.delta_2[None], [t * u % R]))
    c = _g1(proof.c, fast.g1_mul(proof.a[None], [u]))
    return Proof(a[0], b[0], c[0])
