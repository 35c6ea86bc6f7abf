"""A small public structured reference string: powers of one tau, against which keys are checked.

An :class:`Srs` holds ``T_k = tau^k G1`` for ``k = 0 .. m-1`` and the G2 powers ``G2, tau G2, tau^2 G2,
tau^4 G2, ..., tau^(2^e) G2`` (``2^e <= m``): the KZG-style powers of tau, with no alpha/beta sections and
no Lagrange preparation.  :func:`zkmb.groth16.keycheck.verify_key_srs` checks a Groth16 key for a domain of
size n against it using the powers ``0 .. n-1`` and ``tau^n G2`` (:attr:`Srs.max_domain`); an SRS without
the G2 powers (format version 1: only ``G2, tau G2``) needs the powers ``0 .. 2n-2`` instead.  The SRS comes
either from our own setup (:func:`srs_generate`, with the tau the keys were made with) or from a public
ceremony's ``.ptau`` (:func:`srs_from_ptau`).

File format ``srs.bin`` (all integers little-endian)::

    magic    8 bytes  b"zkmbsrs1"
    version  u32      SRS_VERSION (2; version 1 files, with n_g2 = 2, are still read)
    n_g2     u32      number of G2 points (2 + the powers tau^2 G2, tau^4 G2, ...)
    n_g1     u64      number of G1 points m
    sha256   32 bytes SHA-256 of the payload
    payload  m G1 points then n_g2 G2 points, affine, Montgomery limbs (the fast backend's in-memory
             layout: 64 bytes per G1 point, 128 per G2 point; infinity = all zeros)

:func:`read_srs` checks every byte of that (sizes, checksum, canonical coordinates, points on the curve,
G2 points in the subgroup, the first points the generators, ``tau G1`` not infinity);
:func:`verify_srs` then checks that the points are powers of one tau with two pairing equations.

**Compact parts** (what a client downloads, :func:`write_srs_parts` / :func:`read_srs_parts`): the G1
powers split at powers of two, ``[0, 2^12), [2^12, 2^13), [2^13, 2^14), ...``, one file ``srs_<i>.srsc``
each, in the compressed point form of :mod:`zkmb.algebra.serialize` (32 bytes per G1 point, 64 per G2
point, no point at infinity); part 0 also holds every G2 point.  A client that checks keys up to domain
n downloads only the parts below n (:func:`parts_needed`).  Part layout::

    magic    8 bytes  b"zkmbsrc1"
    version  u32      1
    index    u32      part number i
    start    u64      first power in the part
    count    u64      number of G1 points
    n_g2     u32      number of G2 points (0 except in part 0)
    payload  count compressed G1 points, then n_g2 compressed G2 points
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
    "PART0_LOG",
    "parts_needed",
    "read_srs_parts",
    "write_srs_parts",
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
SRS_VERSION = 2
_HEAD = struct.Struct("<8sIIQ32s")
_MAX_G1 = (1 << 29) - 1  # enough for a 2^28 domain; anything larger is a corrupt count
_MAX_G2 = 2 + 29  # G2, tau G2, then tau^(2^e) G2 for 2^e <= _MAX_G1
_G1_BYTES, _G2_BYTES = 64, 128
PART_MAGIC = b"zkmbsrc1"
PART_VERSION = 1
PART0_LOG = 12
"""Part 0 holds the powers below 2^PART0_LOG; part i >= 1 those in [2^(PART0_LOG+i-1), 2^(PART0_LOG+i))."""
_PART_HEAD = struct.Struct("<8sIIQQI")


class SrsCheckFailed(InvalidInput):
    """The SRS points are not consecutive powers of one tau."""


@dataclass(eq=False)
class Srs:
    """``tau_g1[k] = tau^k G1`` (k < m); ``tau_g2 = (G2, tau G2, tau^2 G2, tau^4 G2, ...)``, i.e.
    ``tau_g2[j] = tau^(2^(j-1)) G2`` for j >= 1; fast-backend affine arrays."""

    tau_g1: np.ndarray
    tau_g2: np.ndarray

    @property
    def n_g1(self) -> int:
        return int(self.tau_g1.shape[0])

    @property
    def n_g2(self) -> int:
        return int(self.tau_g2.shape[0])

    def g2_power(self, n: int) -> np.ndarray | None:
        """``tau^n G2`` for a power of two n, if the SRS holds it (shape ``(2, 2, 4)``), else None."""
        if n < 1 or n & (n - 1):
            return None
        j = n.bit_length()  # n = 2^(j-1)
        return self.tau_g2[j] if j < self.n_g2 else None

    def powers_for_domain(self, n: int) -> int:
        """How many G1 powers a key check for domain n needs with this SRS: n when it holds ``tau^n G2``,
        else 2n - 1 (the version-1 equation)."""
        return n if self.g2_power(n) is not None else 2 * n - 1

    @property
    def max_domain(self) -> int:
        """The largest power-of-two domain n whose keys can be checked: powers 0..n-1 and ``tau^n G2``
        present, or (version 1) powers 0..2n-2."""
        n = 1
        while self.powers_for_domain(2 * n) <= self.n_g1:
            n *= 2
        return n


def srs_size_for_domain(n: int) -> int:
    """The number of G1 powers an SRS with G2 powers needs for domain n: n (the key check uses
    ``tau^k G1`` for k < n and ``tau^n G2``)."""
    return n


def _g2_exponents(m: int) -> list[int]:
    """The G2 powers of an SRS with m G1 powers: 0, 1, then 2^e for 2 <= 2^e <= m."""
    out = [0, 1]
    e = 2
    while e <= m:
        out.append(e)
        e *= 2
    return out


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
    size = 1 << m.bit_length()  # tau^k for k <= m (the last G2 power may be tau^m)
    powers = np.empty((size, 4), dtype=np.uint64)
    _geometric(1, tau, size, powers)  # tau^k, Montgomery, in parallel chunks
    g1 = _curves._G1.mul_generator_limbs(fast.fr_from_mont_limbs(np.ascontiguousarray(powers[:m])))
    g2_exps = _g2_exponents(m)
    g2 = _curves._G2.mul_generator_limbs(fast.fr_from_mont_limbs(np.ascontiguousarray(powers[g2_exps])))
    return Srs(g1, g2)


def srs_from_ptau(path: str | os.PathLike, count: int | None = None) -> Srs:
    """The first ``count`` (default: all) tau^k G1 of a snarkjs ``.ptau`` and its ``G2, tau G2, tau^2 G2,
    tau^4 G2, ...`` (as far as the ptau's tau_g2 section and the G1 count go).

    The points are range- and curve-checked by the reader and the G2 points subgroup-checked here;
    call :func:`verify_srs` to check that they are powers of one tau."""
    from .snarkjs import read_ptau_info, read_ptau_points

    g1 = read_ptau_points(path, "tau_g1", 0, count)
    n_tau_g2 = 1 << read_ptau_info(path).power
    exps = [e for e in _g2_exponents(g1.shape[0]) if e < n_tau_g2]
    g2 = np.concatenate([read_ptau_points(path, "tau_g2", e, 1) for e in exps])
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
    version = 1 if srs.n_g2 == 2 else SRS_VERSION  # without G2 powers: readable by older versions
    head = _HEAD.pack(SRS_MAGIC, version, srs.tau_g2.shape[0], srs.n_g1, h.digest())
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
        if version not in (1, SRS_VERSION):
            raise InvalidInput(f"{path}: SRS format version {version}, this zkmb reads 1 and {SRS_VERSION}")
        if not (2 <= n_g2 <= _MAX_G2 and (version == 2 or n_g2 == 2)) or not 2 <= n_g1 <= _MAX_G1:
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
    if (
        not isinstance(g2, np.ndarray)
        or g2.dtype != np.uint64
        or g2.ndim != 4
        or g2.shape[1:] != (2, 2, 4)
        or not 2 <= g2.shape[0] <= _MAX_G2
    ):
        raise InvalidInput(f"{what}: tau_g2 must be a uint64 array (k, 2, 2, 4), 2 <= k <= {_MAX_G2}")
    if not 2 <= g1.shape[0] <= _MAX_G1:
        raise InvalidInput(f"{what}: {g1.shape[0]} G1 powers, expected 2..{_MAX_G1}")
    if g2.shape[0] > len(_g2_exponents(g1.shape[0])):
        raise InvalidInput(f"{what}: G2 powers beyond the G1 powers (tau^n G2 needs n <= {g1.shape[0]})")


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
    """Raise :class:`SrsCheckFailed` unless ``tau_g1[k] = tau^k G1`` and ``tau_g2 = (G2, tau G2, tau^2 G2,
    tau^4 G2, ...)`` for one tau not in {0, 1} (and InvalidInput if a point is malformed).

    Checks the points (as :func:`read_srs`), ``tau_g1[1]`` not in {infinity, G1}, then with one random
    rho (uniform in Fr) and ``U = sum_k rho^k T_k`` (k < m), i.e. the batched equation
    ``e(sum_i rho^i T_(i+1), G2) = e(sum_i rho^i T_i, tau G2)`` (i < m - 1) from a single MSM:
    ``e(U - T_0, G2) = e(rho (U - rho^(m-1) T_(m-1)), tau G2)``.  If some T_(i+1) != tau T_i, the two
    sides differ by a nonzero polynomial of degree <= m - 2 in rho, so the check passes with
    probability at most (m - 2)/r < 2^-232 for m <= 2^21 (Schwartz-Zippel); by induction from T_0 = G1
    every T_k is then tau^k G1 with tau the discrete log of tau G2.  The G2 powers: with independent
    uniform s_j, ``e(sum_j s_j T_(2^(j-1)-1), tau G2) = e(G1, sum_j s_j tau_g2[j])`` (j >= 2; one more
    pairing product); a wrong tau_g2[j] (all are in G2, so each has a discrete log) leaves a nonzero
    linear form in the s_j, zero with probability 1/r."""
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
    if not fast.pairing_check(ps, np.ascontiguousarray(g2[:2])):
        raise SrsCheckFailed("SRS rejected: the G1 points are not consecutive powers of the G2 tau")
    if g2.shape[0] > 2:
        idx = [e - 1 for e in _g2_exponents(m)[2 : g2.shape[0]]]  # T_(2^(j-1) - 1) pairs with tau G2
        sc = [1 + secrets.randbelow(R - 1) for _ in idx]
        left = fast.msm_g1(np.ascontiguousarray(g1[idx]), fast.fr_from_ints(sc)).reshape(1, 2, 4)
        right = fast.msm_g2(np.ascontiguousarray(g2[2:]), fast.fr_from_ints(sc)).reshape(1, 2, 2, 4)
        if not fast.pairing_check(
            np.concatenate([left, fast.g1_neg(g1[0:1])]), np.concatenate([g2[1:2], right])
        ):
            raise SrsCheckFailed("SRS rejected: a G2 power tau^(2^e) G2 does not match the G1 powers")


# --------------------------------------------------------------------------- compact parts


def _part_ranges(m: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` of the parts of an SRS with m G1 powers."""
    out, start, end = [], 0, 1 << PART0_LOG
    while start < m:
        out.append((start, min(end, m)))
        start, end = end, 2 * end
    return out


def parts_needed(n_powers: int) -> int:
    """How many parts (0, 1, ...) hold the powers below ``n_powers``."""
    return sum(1 for start, _ in _part_ranges(max(n_powers, 1)) if start < n_powers)


def write_srs_parts(srs: Srs, out_dir: str | os.PathLike, prefix: str = "srs") -> list[dict]:
    """Write ``srs`` as compact parts ``<prefix>_<i>.srsc`` into ``out_dir`` (atomically each); returns
    ``[{"file", "index", "start", "count", "bytes", "sha256"}]`` in order."""
    from ..algebra.serialize import g1_compress_many, g2_compress_many

    _check_shapes(srs, "SRS")
    out = []
    d = Path(out_dir)
    ranges = _part_ranges(srs.n_g1)
    for old in d.glob(f"{prefix}_*.srsc"):  # parts of a larger SRS this one replaces
        if old.stem.rsplit("_", 1)[-1].isdigit() and int(old.stem.rsplit("_", 1)[-1]) >= len(ranges):
            old.unlink()
    for i, (start, end) in enumerate(ranges):
        g1 = g1_compress_many(np.ascontiguousarray(srs.tau_g1[start:end]))
        g2 = g2_compress_many(np.ascontiguousarray(srs.tau_g2)) if i == 0 else b""
        n_g2 = srs.n_g2 if i == 0 else 0
        data = _PART_HEAD.pack(PART_MAGIC, PART_VERSION, i, start, end - start, n_g2) + g1 + g2
        path = d / f"{prefix}_{i}.srsc"
        tmp = Path(f"{path}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        out.append(
            {
                "file": path.name,
                "index": i,
                "start": start,
                "count": end - start,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return out


def read_srs_parts(paths, progress=None) -> Srs:
    """The SRS prefix held by the compact parts ``paths`` (parts 0, 1, ... in order, contiguous), every
    point decompressed and validated (canonical, on its curve, G2 in G2, no infinity), the generators
    and tau != 0 checked as :func:`read_srs` does; the G2 powers kept are those the prefix can check
    (``tau^n G2`` with n <= the number of G1 powers).  ``progress(done, total)`` counts G1 points.
    Raises InvalidInput naming the part and the problem."""
    from ..algebra.serialize import g1_decompress_many, g2_decompress_many

    paths = [Path(p) for p in paths]
    if not paths:
        raise InvalidInput("no SRS parts")
    heads = []
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as f:
                head = f.read(_PART_HEAD.size)
                size = os.fstat(f.fileno()).st_size
        except OSError as e:
            raise InvalidInput(f"cannot read SRS part {path}: {e.strerror}") from e
        if len(head) != _PART_HEAD.size:
            raise InvalidInput(f"{path}: truncated SRS part")
        magic, version, index, start, count, n_g2 = _PART_HEAD.unpack(head)
        if magic != PART_MAGIC or version != PART_VERSION:
            raise InvalidInput(f"{path}: not a zkmb SRS part of version {PART_VERSION}")
        want = _part_ranges(start + count)[i] if start + count <= _MAX_G1 else None
        if index != i or want is None or want != (start, start + count) or count == 0:
            raise InvalidInput(f"{path}: part {index} covers powers {start}..{start + count}, not part {i}")
        if (i == 0) != (n_g2 > 0) or n_g2 > _MAX_G2 or (i == 0 and n_g2 < 2):
            raise InvalidInput(f"{path}: {n_g2} G2 points in part {i}")
        if heads and heads[-1][1] + heads[-1][2] != start:
            raise InvalidInput(f"{path}: part {i} does not continue part {i - 1} (a short part before it)")
        if size != _PART_HEAD.size + 32 * count + 64 * n_g2:
            raise InvalidInput(f"{path}: file size {size} does not match its header (truncated or padded)")
        heads.append((path, start, count, n_g2))
    m = heads[-1][1] + heads[-1][2]
    g1 = np.empty((m, 2, 4), dtype=np.uint64)
    g2 = None
    done = 0
    chunk = 1 << 16
    for path, start, count, n_g2 in heads:
        with open(path, "rb") as f:
            f.seek(_PART_HEAD.size)
            for off in range(0, count, chunk):
                k = min(chunk, count - off)
                data = f.read(32 * k)
                try:
                    g1[start + off : start + off + k] = g1_decompress_many(data, k, base=start + off)
                except InvalidInput as e:
                    raise InvalidInput(f"{path}: {e}") from e
                done += k
                if progress is not None:
                    progress(done, m)
            if n_g2:
                try:
                    g2 = g2_decompress_many(f.read(64 * n_g2), n_g2)
                except InvalidInput as e:
                    raise InvalidInput(f"{path}: {e}") from e
    keep = min(g2.shape[0], len(_g2_exponents(m)))
    srs = Srs(g1, np.ascontiguousarray(g2[:keep]))
    _validate(srs, f"SRS parts {paths[0].name}..{paths[-1].name}")
    return srs
