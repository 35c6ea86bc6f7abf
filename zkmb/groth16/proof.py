"""A Groth16 proof (A in G1, B in G2, C in G1) with strict conversion from untrusted encodings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algebra import fast
from ..algebra import serialize as ser
from ..errors import InvalidInput

PROOF_BYTES = 64 + 128 + 64  # uncompressed A || B || C


@dataclass(frozen=True, eq=False)
class Proof:
    """Affine points as fast-backend Montgomery arrays: a (2, 4), b (2, 2, 4), c (2, 4)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def to_canonical(self) -> tuple:
        return (
            fast.g1_to_affine(self.a[None])[0],
            fast.g2_to_affine(self.b[None])[0],
            fast.g1_to_affine(self.c[None])[0],
        )

    @classmethod
    def from_canonical(cls, a, b, c) -> Proof:
        """From canonical points; each is checked on its curve and in its subgroup (InvalidPoint)."""
        pa, pc = fast.g1_from_affine([a, c])
        pb = fast.g2_from_affine([b])
        proof = cls(pa, pb[0], pc)
        proof.validate()
        return proof

    def validate(self) -> None:
        """Raise InvalidPoint unless A, C are in G1 and B is in G2 (canonical coordinates)."""
        fast.g1_validate(np.stack([self.a, self.c]))
        fast.g2_validate(self.b[None])

    def to_bytes(self) -> bytes:
        """Uncompressed big-endian encoding (EIP-197 point order), 256 bytes."""
        a, b, c = self.to_canonical()
        return ser.g1_to_bytes(a) + ser.g2_to_bytes(b) + ser.g1_to_bytes(c)

    @classmethod
    def from_bytes(cls, data: bytes) -> Proof:
        """Parse and validate 256 bytes; raises InvalidInput/InvalidPoint on anything malformed."""
        if len(data) != PROOF_BYTES:
            raise InvalidInput(f"a proof is {PROOF_BYTES} bytes, got {len(data)}")
        return cls.from_canonical(
            ser.g1_from_bytes(data[:64]), ser.g2_from_bytes(data[64:192]), ser.g1_from_bytes(data[192:])
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Proof) and all(
            np.array_equal(x, y) for x, y in ((self.a, other.a), (self.b, other.b), (self.c, other.c))
        )

    __hash__ = None  # type: ignore[assignment]
