"""Verifier.warm: the verification kernels and IC tables are ready before the first proof."""

from __future__ import annotations

from zkmb.middlebox.verifier import PolicyRoots, Verifier

from zkmb.groth16.prover import prove
from zkmb.groth16.setup import setup
from zkmb.r1cs import Circuit, Public, Secret, compile


class Sq(Circuit):
    x = Public()
    y = Secret()

    def define(self, api):
        api.assert_equal(api.mul(self.y, self.y), self.x)


def test_warm_runs_the_real_check_and_leaves_verdicts_unchanged():
    cs = compile(Sq())
    pk, vk = setup(cs)
    v = Verifier({"q_64": vk}, PolicyRoots(1))
    v.warm()  # a failing proof through the pairing check and the batch check: no error, no state
    proof = prove(pk, cs.solve({"x": 49, "y": 7}))
    assert v.verify("q_64", [49], proof) and not v.verify("q_64", [50], proof)
    assert v.verify_many("q_64", [([49], proof), ([49], proof)]) == [True, True]


def test_warm_skips_an_injected_check():
    calls = []
    v = Verifier({"q_64": object()}, PolicyRoots(1), check=lambda *a: calls.append(a) or True)
    v.warm()
    assert not calls
