"""BN254 (alt_bn128) parameters as Python integers.

The same curve as Ethereum's precompiles, circom, snarkjs and py_ecc.
"""

from __future__ import annotations

# Base field modulus p and scalar field modulus r (the group order).
P = 21888242871839275222246405745257275088696311157297823662689037894645226208583
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617

# BN parameter x (the curve is parametrised by p(x), r(x)); the ate loop count is 6x + 2.
BN_X = 4965661367192848881
ATE_LOOP_COUNT = 6 * BN_X + 2

# E: y^2 = x^3 + 3 over Fq; E': y^2 = x^3 + 3/(9+u) over Fq2 = Fq[u]/(u^2 + 1).
B_G1 = 3
XI = (9, 1)  # the non-residue 9 + u used for the Fq6 and Fq12 towers and the twist


def _fq2_inv(a: tuple[int, int]) -> tuple[int, int]:
    t = pow(a[0] * a[0] + a[1] * a[1], -1, P)
    return (a[0] * t % P, -a[1] * t % P)


def _fq2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


B_G2 = _fq2_mul((3, 0), _fq2_inv(XI))

G1_GEN = (1, 2)
G2_GEN = (
    (
        10857046999023057135944570762232829481370756359578518086990519993285655852781,
        11559732032986387107991004021392285783925812861821192530917403151452391805634,
    ),
    (
        8495653923123431417604973247489272438418190587263600148770280649306958101930,
        4082367875863433681332203403145435568316851327593401208105741076214120093531,
    ),
)

# Fr has 2-adicity 28: r - 1 = 2^28 * odd.  5 generates Fr^*.
FR_TWO_ADICITY = 28
FR_GENERATOR = 5
FR_ROOT_OF_UNITY = pow(FR_GENERATOR, (R - 1) >> FR_TWO_ADICITY, R)  # primitive 2^28-th root

LIMBS = 4
MASK64 = (1 << 64) - 1


def to_limbs(x: int) -> tuple[int, int, int, int]:
    """Little-endian 64-bit limbs of a non-negative integer below 2^256."""
    return (x & MASK64, (x >> 64) & MASK64, (x >> 128) & MASK64, (x >> 192) & MASK64)


def from_limbs(limbs) -> int:
    return int(limbs[0]) | (int(limbs[1]) << 64) | (int(limbs[2]) << 128) | (int(limbs[3]) << 192)
