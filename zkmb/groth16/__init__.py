"""Groth16 over BN254: keys, prover, verifier and the snarkjs/circom interoperability layer.

Import the submodules directly (e.g. :mod:`zkmb.groth16.snarkjs`); this package file stays light.
"""
