"""A small public structured reference string: powers of one tau, against which keys are checked.

An :class:`Srs` holds ``tau^k G1`` for ``k = 0 .. m-1`` and ``(G2, tau G2)``: the KZG-style powers of
tau, with no alpha/beta sections and no Lagrange preparation.  :func:`zkmb.groth16.keycheck.verify_key_srs`
checks a Groth16 key for a domain of size n against it using the powers ``0 .. 2n-2``
(:attr:`Srs.max_domain`).  The SRS comes either from our own setup (:func:`srs_generate`, with the tau the
keys were made with) or from a public ceremony's ``.ptau`` (:func:`srs_from_ptau`).

File format (all integers little-endian)::

    magic    8 bytes  b"zkmbsrs1"
    version  u32      SRS_VERSION
    n_g2     u32      number of G2 points (2)
    n_g1     u64      number of G1 points m
    sha256   32 bytes SHA-256 of the payload
    payload  m G1 points then n_g2 G2 points, affine, Montgomery limbs (the fast backend's in-memory
             layout: 64 bytes per G1 point, 128 per G2 point; infinity = all zeros)

:func:`read_srs` checks every byte of that (sizes, checksum, canonical coordinates, points on the curve,
G2 points in the subgroup, the first points the generators, ``tau G1`` not infinity);
:func:`verify_srs` then checks that the points are powers of one tau with one pairing equation.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..algebra import fast
from ..algebra.fast import curves as _curves
from ..algebra.fast.ntt import _geometric
from ..algebra.params import R
from ..errors import InvalidInput

__all__ = [
    "SRS_MAGIC",
    "SRS_VERSION",
    "Srs",
    "SrsCheckFailed",
    "read_srs",
    "srs_digest",
    "srs_from_ptau",
    "srs_generate",
    "srs_size_for_domain",
    "verify_srs",
    "write_srs",
]

SRS_MAGIC = b"zkmbsrs1"
SRS_VERSION = 1
_HEAD = struct.Struct("<8sIIQ32s")
_MAX_G1 = (1 << 29) - 1  # enough for a 2^28 domain; anything larger is a corrupt count
_G1_BYTES, _G2_BYTES = 64, 128


class SrsCheckFailed(InvalidInput):
    """The SRS points are not consecutive powers of one tau."""


@dataclass(eq=False)
class Srs:
    """``tau_g1[k] = tau^k G1`` (k < m), ``tau_g2 = (G2, tau G2)``, fast-backend affine arrays."""

    tau_g1: np.ndarray
    tau_g2: np.ndarray

    @property
    def n_g1(self) -> int:
        return int(self.tau_g1.shape[0])

    @property
    def max_domain(self) -> int:
        """The largest power-of-two domain n whose keys can be checked: powers 0..2n-2 present
        (2n - 1 <= m, i.e. n <= (m + 1)/2)."""
        n = 1
        while srs_size_for_domain(2 * n) <= self.n_g1:
            n *= 2
        return n


def srs_size_for_domain(n: int) -> int:
    """The number of G1 powers a domain of size n needs: 2n - 1."""
    return 2 * n - 1


def _g1_gen() -> np.ndarray:
    return fast.g1_generator().reshape(2, 4)


def _g2_gen() -> np.ndarray:
    return fast.g2_generator().reshape(2, 2, 4)


def srs_generate(m: int, tau: int) -> Srs:
    """The SRS of ``m >= 2`` powers of ``tau`` (tau not 0 or 1 mod r), by the fixed-base comb."""
    tau %= R
    if m < 2 or m > _MAX_G1:
        raise InvalidInput(f"SRS size {m} out of range 2..{_MAX_G1}")
    if tau in (0, 1):
        raise InvalidInput("SRS tau must not be 0 or 1")
    size = 1 << (m - 1).bit_length()
    powers = np.empty((size, 4), dtype=np.uint64)
    _geometric(1, tau, size, powers)  # tau^k, Montgomery, in parallel chunks
    g1 = _curves._G1.mul_generator_limbs(fast.fr_from_mont_limbs(np.ascontiguousarray(powers[:m])))
    g2 = _curves._G2.mul_generator_limbs(fast.fr_from_mont_limbs(np.ascontiguousarray(powers[:2])))
    return Srs(g1, g2)


def srs_from_ptau(path: str | os.PathLike, count: int | None = None) -> Srs:
    """The first ``count`` (default: all) tau^k G1 of a snarkjs ``.ptau`` and its ``(G2, tau G2)``.

    The points are range- and curve-checked by the reader and the G2 points subgroup-checked here;
    call :func:`verify_srs` to check that they are powers of one tau."""
    from .snarkjs import read_ptau_points

    g1 = read_ptau_points(path, "tau_g1", 0, count)
    g2 = read_ptau_points(path, "tau_g2", 0, 2)
    srs = Srs(np.ascontiguousarray(g1), np.ascontiguousarray(g2))
    _validate(srs, str(path))
    return srs


def _payload_parts(srs: Srs) -> tuple[memoryview, memoryview]:
    return (
        memoryview(np.ascontiguousarray(srs.tau_g1)).cast("B"),
        memoryview(np.ascontiguousarray(srs.tau_g2)).cast("B"),
    )


def write_srs(path: str | os.PathLike, srs: Srs) -> None:
    """Write ``srs`` in the format above (atomically: a temporary file, then a rename)."""
    _check_shapes(srs, "SRS")
    g1, g2 = _payload_parts(srs)
    h = hashlib.sha256(g1)
    h.update(g2)
    head = _HEAD.pack(SRS_MAGIC, SRS_VERSION, srs.tau_g2.shape[0], srs.n_g1, h.digest())
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(g1)
        f.write(g2)
    os.replace(tmp, path)


def srs_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of an SRS file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_srs(path: str | os.PathLike) -> Srs:
    """Read and validate an SRS file; InvalidInput naming the problem if it is not a well-formed SRS."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InvalidInput(f"cannot open SRS file {path}: {e.strerror}") from e
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_HEAD.size)
        if len(head) != _HEAD.size:
            raise InvalidInput(f"{path}: truncated SRS file")
        magic, version, n_g2, n_g1, want = _HEAD.unpack(head)
        if magic != SRS_MAGIC:
            raise InvalidInput(f"{path}: not a zkmb SRS file (bad magic)")
        if version != SRS_VERSION:
            raise InvalidInput(f"{path}: SRS format version {version}, this zkmb reads {SRS_VERSION}")
        if n_g2 != 2 or not 2 <= n_g1 <= _MAX_G1:
            raise InvalidInput(f"{path}: absurd SRS point counts ({n_g1} G1, {n_g2} G2)")
        expect = _HEAD.size + n_g1 * _G1_BYTES + n_g2 * _G2_BYTES
        if size != expect:
            raise InvalidInput(f"{path}: file size {size}, its header implies {expect} (truncated or padded)")
        g1 = np.empty((n_g1, 2, 4), dtype=np.uint64)
        g2 = np.empty((n_g2, 2, 2, 4), dtype=np.uint64)
        for arr in (g1, g2):
            view = memoryview(arr).cast("B")
            if f.readinto(view) != view.nbytes:
                raise InvalidInput(f"{path}: truncated SRS file")
    srs = Srs(g1, g2)
    h = hashlib.sha256()
    for part in _payload_parts(srs):
        h.update(part)
    if h.digest() != want:
        raise InvalidInput(f"{path}: SRS payload checksum mismatch (corrupt file)")
    _validate(srs, str(path))
    return srs


def _check_shapes(srs: Srs, what: str) -> None:
    g1, g2 = srs.tau_g1, srs.tau_g2
    if not isinstance(g1, np.ndarray) or g1.dtype != np.uint64 or g1.ndim != 3 or g1.shape[1:] != (2, 4):
        raise InvalidInput(f"{what}: tau_g1 must be a uint64 array (m, 2, 4)")
    if not isinstance(g2, np.ndarray) or g2.dtype != np.uint64 or g2.shape != (2, 2, 2, 4):
        raise InvalidInput(f"{what}: tau_g2 must be a uint64 array (2, 2, 2, 4)")
    if not 2 <= g1.shape[0] <= _MAX_G1:
        raise InvalidInput(f"{what}: {g1.shape[0]} G1 powers, expected 2..{_MAX_G1}")


def _first_bad(ok: np.ndarray) -> int:
    return -1 if ok.all() else int(np.argmin(ok))


def _validate(srs: Srs, what: str) -> None:
    """Shapes, canonical coordinates, points on the curve, G2 in the subgroup, generators, tau G1 finite."""
    _check_shapes(srs, what)
    i = _first_bad(fast.g1_is_on_curve(srs.tau_g1))
    if i >= 0:
        raise InvalidInput(f"{what}: tau_g1[{i}] is not a point of G1 (off the curve or non-canonical)")
    i = _first_bad(fast.g2_in_subgroup(srs.tau_g2))
    if i >= 0:
        raise InvalidInput(
            f"{what}: tau_g2[{i}] is not a point of G2 (off the curve or outside the subgroup)"
        )
    if not np.array_equal(srs.tau_g1[0], _g1_gen()):
        raise InvalidInput(f"{what}: tau_g1[0] is not the G1 generator")
    if not np.array_equal(srs.tau_g2[0], _g2_gen()):
        raise InvalidInput(f"{what}: tau_g2[0] is not the G2 generator")
    if not srs.tau_g1[1].any():
        raise InvalidInput(f"{what}: tau_g1[1] is infinity (tau = 0)")


def _random_fr(n: int) -> np.ndarray:
    """n independent uniform values below 2^253 from the OS CSPRNG, as Montgomery Fr limbs.

    (A uniform 253-bit integer read as Montgomery limbs is the Montgomery form of another uniform
    value below 2^253 times R^-1 mod r; what matters is that the values are independent and uniform
    over a set of 2^253 field elements.)"""
    a = np.frombuffer(os.urandom(32 * n), dtype="<u8").reshape(n, 4).astype(np.uint64)
    a[:, 3] &= np.uint64((1 << 61) - 1)
    return a


def verify_srs(srs: Srs) -> None:
    """Raise :class:`SrsCheckFailed` unless ``tau_g1[k] = tau^k G1`` and ``tau_g2 = (G2, tau G2)`` for one
    tau not in {0, 1} (and InvalidInput if a point is malformed).

    Checks the points (as :func:`read_srs`), ``tau_g1[1]`` not in {infinity, G1}, then with one random
    rho (uniform in Fr) and ``U = sum_k rho^k T_k`` (k < m), i.e. the batched equation
    ``e(sum_i rho^i T_(i+1), G2) = e(sum_i rho^i T_i, tau G2)`` (i < m - 1) from a single MSM:
    ``e(U - T_0, G2) = e(rho (U - rho^(m-1) T_(m-1)), tau G2)``.  If some T_(i+1) != tau T_i, the two
    sides differ by a nonzero polynomial of degree <= m - 2 in rho, so the check passes with
    probability at most (m - 2)/r < 2^-232 for m <= 2^21 (Schwartz-Zippel); by induction from T_0 = G1
    every T_k is then tau^k G1 with tau the discrete log of tau G2."""
    _validate(srs, "SRS")
    g1, g2 = srs.tau_g1, srs.tau_g2
    if not g1[1].any() or np.array_equal(g1[1], _g1_gen()):
        raise SrsCheckFailed("SRS rejected: tau is 0 or 1")
    m = g1.shape[0]
    rho = 1 + secrets.randbelow(R - 1)
    size = 1 << (m - 1).bit_length()
    powers = np.empty((size, 4), dtype=np.uint64)
    _geometric(1, rho, size, powers)
    u = fast.msm_g1(np.ascontiguousarray(g1), np.ascontiguousarray(powers[:m])).reshape(1, 2, 4)
    lo = fast.g1_add(u, fast.g1_neg(fast.g1_mul(g1[m - 1 : m], [pow(rho, m - 1, R)])))
    lhs = fast.g1_add(u, fast.g1_neg(g1[0:1]))
    rhs = fast.g1_mul(lo, [rho])
    ps = np.concatenate([lhs, fast.g1_neg(rhs)])
    if not fast.pairing_check(ps, np.ascontiguousarray(g2)):
        raise SrsCheckFailed("SRS rejected: the G1 points are not consecutive powers of the G2 tau")
