"""snarkjs / circom file formats for Groth16 over BN254 (bn128): ``.zkey``, ``.wtns``, ``.ptau`` and JSON.

The formats and the exact prover semantics (the QAP and the ``hExps`` section) are specified in
``docs/snarkjs-interop.md``; this module implements them from that description.

Representations:

* Bulk key material is returned as fast-backend arrays: G1 affine ``(n, 2, 4)`` and G2 affine
  ``(n, 2, 2, 4)`` uint64, coordinates in Montgomery form (x * 2^256 mod p, little-endian 64-bit limbs),
  the point at infinity all zeros. This is byte for byte the "LEM" encoding snarkjs/ffjavascript write,
  so sections are read straight into the arrays (``readinto``) without any conversion.
* Small values (verification keys, proofs, public inputs) are canonical tuples of ints: G1 ``(x, y)``,
  G2 ``((x0, x1), (y0, y1))`` with ``x = x0 + x1*u``, ``None`` for infinity; Fq12 as the 12-tuple in
  tower order (index ``6*i + 2*j + k``).

Every reader validates its untrusted input (magic, version, section table, field moduli, sizes
against counts, value ranges, points on the curve / in the subgroup) and raises
:class:`zkmb.errors.InvalidInput` (or :class:`zkmb.errors.InvalidPoint`) on failure.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from ..algebra.params import B_G2, BN_X, FR_TWO_ADICITY, P, R
from ..errors import InvalidInput, InvalidPoint

__all__ = [
    "G1Point",
    "G2Point",
    "Groth16Proof",
    "Groth16Vk",
    "ZkeyGroth16",
    "PtauInfo",
    "SNARKJS_SECTION_ORDER",
    "SNARKJS_GT_EXPONENT",
    "read_zkey",
    "write_zkey",
    "read_ptau_info",
    "read_ptau_points",
    "read_ptau_lagrange",
    "snarkjs_cs_hash",
    "proof_to_json",
    "proof_from_json",
    "public_to_json",
    "public_from_json",
    "vk_to_json",
    "vk_from_json",
    "snarkjs_alphabeta_12",
]

PathLike = str | os.PathLike
G1Point = tuple[int, int] | None
G2Point = tuple[tuple[int, int], tuple[int, int]] | None

N8 = 32  # bytes per Fq / Fr element (n8q = n8r = 32 for BN254)
G1_SIZE = 2 * N8
G2_SIZE = 4 * N8
COEF_SIZE = 12 + N8
GROTH16_PROTOCOL_ID = 1
ZKEY_HEADER_SIZE = 4 + N8 + 4 + N8 + 12 + 3 * G1_SIZE + 3 * G2_SIZE  # section 2 = 660 bytes
ZKEY_SECTION_IDS = tuple(range(1, 11))
#: Section order in the files snarkjs writes (``zkey new`` / ``zkey contribute``).
SNARKJS_SECTION_ORDER = (1, 2, 4, 3, 9, 8, 5, 6, 7, 10)
#: snarkjs's pairing (ffjavascript/wasmcurves) equals the textbook optimal ate pairing (py_ecc) raised
#: to this power (checked against snarkjs output; consistent with a final-exponentiation hard part that
#: computes this multiple of (p^4 - p^2 + 1)/r). ``vk_alphabeta_12`` is e(alpha, beta)^this.
SNARKJS_GT_EXPONENT = 2 * BN_X * (6 * BN_X * BN_X + 3 * BN_X + 1)

_MAX_DOMAIN_LOG = FR_TWO_ADICITY
_LE_U64 = np.dtype("<u8")
_COEF_DTYPE = np.dtype([("m", "<u4"), ("c", "<u4"), ("s", "<u4"), ("v", "<u8", (4,))])
_MAX_SECTIONS = 64  # zkey has 10, ptau at most 15, wtns 2
_CHUNK = 1 << 18  # rows per chunk in the vectorised on-curve checks (bounds temporary memory)
_DEC_RE = re.compile(r"0|[1-9][0-9]{0,77}")

# The files are little-endian and are read straight into native uint64 arrays.
if not np.little_endian or _COEF_DTYPE.itemsize != COEF_SIZE:
    raise ImportError("zkmb.groth16.snarkjs needs a little-endian host")


class Groth16Proof(NamedTuple):
    """A Groth16 proof in canonical form (A in G1, B in G2, C in G1)."""

    a: G1Point
    b: G2Point
    c: G1Point


class Groth16Vk(NamedTuple):
    """A Groth16 verification key in canonical form; ``ic[0]`` is the constant term, len(ic) = nPublic+1."""

    alpha_1: G1Point
    beta_2: G2Point
    gamma_2: G2Point
    delta_2: G2Point
    ic: tuple[G1Point, ...]


# --------------------------------------------------------------------------- fast backend (lazy)


def _fast():
    """The fast backend's field vectors (imported lazily: the first import compiles kernels)."""
    from ..algebra import fast

    return fast


def _mont():
    from ..algebra.kernels import mont

    return mont


# --------------------------------------------------------------------------- limbs and points


def _as_limbs(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 4)


def _all_below(limbs: np.ndarray, m: int) -> bool:
    """True iff every 4-limb little-endian row of ``limbs`` is an integer below ``m``."""
    a = _as_limbs(limbs)
    if a.shape[0] == 0:
        return True
    mm = [np.uint64((m >> (64 * i)) & ((1 << 64) - 1)) for i in range(4)]
    lt = np.zeros(a.shape[0], dtype=bool)
    eq = np.ones(a.shape[0], dtype=bool)
    for i in (3, 2, 1, 0):
        col = a[:, i]
        lt |= eq & (col < mm[i])
        eq &= col == mm[i]
    return bool(lt.all())


def _zero_rows(pts: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of a G1/G2 affine array that encode infinity (all zeros)."""
    return ~pts.reshape(pts.shape[0], -1).any(axis=1)


def _tile(v: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(v, (n, 4)))


def _g1_off_curve(pts: np.ndarray) -> int:
    """Index of the first point of a Montgomery G1 array that is neither infinity nor on y^2 = x^3 + 3; -1.

    (G1 has cofactor 1, so on the curve means in the group.)"""
    if pts.shape[0] == 0:
        return -1
    ok = _fast().g1_is_on_curve(pts)
    return -1 if ok.all() else int(np.argmin(ok))


def _g2_not_in_subgroup(pts: np.ndarray) -> int:
    """Index of the first point of a Montgomery G2 array not in G2 (infinity allowed); -1.

    Uses the fast backend's exact check (El Housni et al., one 63-bit multiplication), about 50 us per point
    on one core."""
    if pts.shape[0] == 0:
        return -1
    ok = _fast().g2_in_subgroup(pts)
    return -1 if ok.all() else int(np.argmin(ok))


def _fq2_mul_vec(f, a0, a1, b0, b1):
    t0 = f.fq_mul(a0, b0)
    t1 = f.fq_mul(a1, b1)
    return f.fq_sub(t0, t1), f.fq_sub(f.fq_sub(f.fq_mul(f.fq_add(a0, a1), f.fq_add(b0, b1)), t0), t1)


def _g2_off_curve(pts: np.ndarray) -> int:
    """Index of the first point of a Montgomery G2 array neither infinity nor on y^2 = x^3 + 3/(9+u); -1.

    Vectorised Fq2 arithmetic from the fast field kernels (~4 us per point): the curve kernels' own
    check always includes the (~15x dearer) subgroup test, which this cheap default check avoids."""
    f = _fast()
    b = f.fq_from_ints(B_G2)
    for lo in range(0, pts.shape[0], _CHUNK):
        blk = pts[lo : lo + _CHUNK]
        n = blk.shape[0]
        x0, x1 = (np.ascontiguousarray(blk[:, 0, k]) for k in (0, 1))
        y0, y1 = (np.ascontiguousarray(blk[:, 1, k]) for k in (0, 1))
        l0, l1 = _fq2_mul_vec(f, y0, y1, y0, y1)
        s0, s1 = _fq2_mul_vec(f, x0, x1, x0, x1)
        c0, c1 = _fq2_mul_vec(f, s0, s1, x0, x1)
        r0 = f.fq_add(c0, _tile(b[0], n))
        r1 = f.fq_add(c1, _tile(b[1], n))
        ok = ((l0 == r0).all(axis=1) & (l1 == r1).all(axis=1)) | _zero_rows(blk)
        if not ok.all():
            return lo + int(np.argmin(ok))
    return -1


def _g1_list(pts: np.ndarray) -> list[G1Point]:
    return _fast().g1_to_affine(pts.reshape(-1, 2, 4))


def _g2_list(pts: np.ndarray) -> list[G2Point]:
    return _fast().g2_to_affine(pts.reshape(-1, 2, 2, 4))


# --------------------------------------------------------------------------- canonical point checks


def _check_g1(pt: G1Point, what: str, *, allow_infinity: bool) -> None:
    """Raise unless ``pt`` is a canonical point of G1 (or infinity, if allowed)."""
    if pt is None:
        if not allow_infinity:
            raise InvalidPoint(f"{what}: point at infinity not allowed")
        return
    if not all(isinstance(c, int) and 0 <= c < P for c in pt):
        raise InvalidInput(f"{what}: coordinate not in [0, p)")
    f = _fast()
    if not f.g1_is_on_curve(f.g1_from_affine([pt]))[0]:  # cofactor 1: on the curve = in G1
        raise InvalidPoint(f"{what}: G1 point not on the curve")


def _check_g2(pt: G2Point, what: str, *, allow_infinity: bool, subgroup: bool = True) -> None:
    """Raise unless ``pt`` is a canonical point on the twist and (with ``subgroup``) in G2."""
    if pt is None:
        if not allow_infinity:
            raise InvalidPoint(f"{what}: point at infinity not allowed")
        return
    if not all(isinstance(c, int) and 0 <= c < P for c in (*pt[0], *pt[1])):
        raise InvalidInput(f"{what}: coordinate not in [0, p)")
    f = _fast()
    v = f.g2_from_affine([pt])
    if _g2_off_curve(v) >= 0:
        raise InvalidPoint(f"{what}: G2 point not on the twist curve")
    if subgroup and not f.g2_in_subgroup(v)[0]:
        raise InvalidPoint(f"{what}: G2 point not in the prime-order subgroup")


# --------------------------------------------------------------------------- binfile container


@dataclass(frozen=True)
class _Section:
    offset: int  # of the section data (after its 12-byte header)
    size: int


class _BinFile:
    """The iden3 "binfile" container: magic(4) version(u32) nSections(u32) then {id u32, size u64, data}."""

    def __init__(self, f: BinaryIO, file_size: int, magic: bytes, max_version: int, what: str):
        self.f = f
        self.what = what
        head = f.read(12)
        if len(head) < 12:
            raise InvalidInput(f"{what}: file too short for a header ({file_size} bytes)")
        if head[:4] != magic:
            raise InvalidInput(f"{what}: bad magic {head[:4]!r}, expected {magic!r}")
        self.version, n_sections = struct.unpack_from("<II", head, 4)
        if not 1 <= self.version <= max_version:
            raise InvalidInput(f"{what}: unsupported version {self.version}")
        if n_sections > _MAX_SECTIONS:
            raise InvalidInput(f"{what}: {n_sections} sections (at most {_MAX_SECTIONS} expected)")
        self.sections: dict[int, list[_Section]] = {}
        self.order: list[int] = []
        pos = 12
        for i in range(n_sections):
            if pos + 12 > file_size:
                raise InvalidInput(f"{what}: section table entry {i} runs past the end of the file")
            f.seek(pos)
            sid, size = struct.unpack("<IQ", f.read(12))
            pos += 12
            if size > file_size - pos:
                raise InvalidInput(f"{what}: section {sid} ({size} bytes) runs past the end of the file")
            self.sections.setdefault(sid, []).append(_Section(pos, size))
            self.order.append(sid)
            pos += size
        if pos != file_size:
            raise InvalidInput(f"{what}: {file_size - pos} trailing bytes after the last section")

    def unique(self, sid: int) -> _Section:
        secs = self.sections.get(sid)
        if not secs:
            raise InvalidInput(f"{self.what}: missing section {sid}")
        if len(secs) > 1:
            raise InvalidInput(f"{self.what}: duplicated section {sid}")
        return secs[0]

    def expect_size(self, sid: int, size: int, desc: str) -> _Section:
        sec = self.unique(sid)
        if sec.size != size:
            raise InvalidInput(f"{self.what}: section {sid} ({desc}) has {sec.size} bytes, expected {size}")
        return sec

    def read(self, sec: _Section, start: int = 0, length: int | None = None) -> bytes:
        length = sec.size - start if length is None else length
        self.f.seek(sec.offset + start)
        data = self.f.read(length)
        if len(data) != length:
            raise InvalidInput(f"{self.what}: short read")
        return data

    def read_into(self, sec: _Section, arr: np.ndarray, start: int = 0) -> np.ndarray:
        """Fill the C-contiguous array ``arr`` from the section's bytes at ``start`` (no conversion)."""
        self.f.seek(sec.offset + start)
        view = memoryview(arr).cast("B")
        if self.f.readinto(view) != view.nbytes:
            raise InvalidInput(f"{self.what}: short read")
        return arr


def _open(path: PathLike) -> tuple[BinaryIO, int]:
    try:
        f = open(path, "rb")  # closed by the callers' ``with f``
    except OSError as e:
        raise InvalidInput(f"cannot open {os.fspath(path)!r}: {e}") from e
    return f, os.fstat(f.fileno()).st_size


def _int_le(b: bytes) -> int:
    return int.from_bytes(b, "little")


# --------------------------------------------------------------------------- zkey


def _g1_empty(n: int) -> np.ndarray:
    return np.empty((n, 2, 4), dtype=np.uint64)


def _g2_empty(n: int) -> np.ndarray:
    return np.empty((n, 2, 2, 4), dtype=np.uint64)


@dataclass(eq=False)
class ZkeyGroth16:
    """A snarkjs Groth16 proving key (``.zkey``), key material as fast-backend Montgomery arrays.

    Points (see ``docs/snarkjs-interop.md`` for their exact meaning): ``a[s] = A_s(tau) G1``,
    ``b1[s] = B_s(tau) G1``, ``b2[s] = B_s(tau) G2`` for every signal s; ``c[s - nPublic - 1]`` =
    ``(beta A_s + alpha B_s + C_s)(tau)/delta G1`` for private signals; ``ic[s]`` the same over gamma
    (= 1) for s <= nPublic; ``h[j] = L_{2j+1}(tau)/delta G1`` (odd Lagrange basis of the 2n-th roots).
    The coefficient list holds only the A (``coef_matrix == 0``) and B (``== 1``) entries of the QAP
    rows, with ``coef_value`` in our Montgomery form (x * 2^256 mod r).
    """

    n_vars: int
    n_public: int
    domain_size: int
    alpha_1: np.ndarray  # (2, 4)
    beta_1: np.ndarray  # (2, 4)
    beta_2: np.ndarray  # (2, 2, 4)
    gamma_2: np.ndarray  # (2, 2, 4)
    delta_1: np.ndarray  # (2, 4)
    delta_2: np.ndarray  # (2, 2, 4)
    ic: np.ndarray  # (n_public + 1, 2, 4)
    coef_matrix: np.ndarray  # (k,) uint32, 0 = A, 1 = B
    coef_constraint: np.ndarray  # (k,) uint32, row in [0, domain_size)
    coef_signal: np.ndarray  # (k,) uint32, signal in [0, n_vars)
    coef_value: np.ndarray  # (k, 4) uint64, Montgomery Fr
    a: np.ndarray  # (n_vars, 2, 4)
    b1: np.ndarray  # (n_vars, 2, 4)
    b2: np.ndarray  # (n_vars, 2, 2, 4)
    c: np.ndarray  # (n_vars - n_public - 1, 2, 4)
    h: np.ndarray  # (domain_size, 2, 4)
    cs_hash: bytes = bytes(64)
    #: Section 10 after the circuit hash: u32 count + the phase-2 contribution records, kept verbatim.
    contributions: bytes = bytes(4)
    version: int = 1
    section_order: tuple[int, ...] = SNARKJS_SECTION_ORDER

    # Header constants (always BN254; checked on read).
    n8q = N8
    q = P
    n8r = N8
    r = R

    @property
    def power(self) -> int:
        """log2 of the domain size."""
        return self.domain_size.bit_length() - 1

    @property
    def n_contributions(self) -> int:
        return struct.unpack_from("<I", self.contributions, 0)[0]

    def matrix(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(constraint, signal, Montgomery value) arrays of the A (m = 0) or B (m = 1) coefficients."""
        sel = self.coef_matrix == m
        return self.coef_constraint[sel], self.coef_signal[sel], self.coef_value[sel]

    def vk(self) -> Groth16Vk:
        """The verification key (canonical points)."""
        return Groth16Vk(
            _g1_list(self.alpha_1)[0],
            _g2_list(self.beta_2)[0],
            _g2_list(self.gamma_2)[0],
            _g2_list(self.delta_2)[0],
            tuple(_g1_list(self.ic)),
        )

    def check_shapes(self) -> None:
        """Raise InvalidInput unless every array has the dtype/shape the header counts imply and
        all field elements are fully reduced (what write_zkey and the kernels rely on)."""
        nv, npub, ds = self.n_vars, self.n_public, self.domain_size
        for name, v in (("n_vars", nv), ("n_public", npub), ("domain_size", ds)):
            if not isinstance(v, int | np.integer) or not 0 <= int(v) < 1 << 32:
                raise InvalidInput(f"zkey: {name} must be a u32, got {v!r}")
        if nv < npub + 1:
            raise InvalidInput(f"zkey: nVars={nv} < nPublic+1={npub + 1}")
        if ds < 1 or ds & (ds - 1) or ds > 1 << _MAX_DOMAIN_LOG:
            raise InvalidInput(f"zkey: domainSize={ds} is not a power of two <= 2^{_MAX_DOMAIN_LOG}")
        k = self.coef_matrix.shape[0] if isinstance(self.coef_matrix, np.ndarray) else -1
        shapes = {
            "alpha_1": (2, 4),
            "beta_1": (2, 4),
            "beta_2": (2, 2, 4),
            "gamma_2": (2, 2, 4),
            "delta_1": (2, 4),
            "delta_2": (2, 2, 4),
            "ic": (npub + 1, 2, 4),
            "a": (nv, 2, 4),
            "b1": (nv, 2, 4),
            "b2": (nv, 2, 2, 4),
            "c": (nv - npub - 1, 2, 4),
            "h": (ds, 2, 4),
            "coef_value": (k, 4),
        }
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != np.uint64 or arr.shape != shape:
                got = (getattr(arr, "dtype", type(arr)), getattr(arr, "shape", None))
                raise InvalidInput(f"zkey: {name} must be uint64 {shape}, got {got}")
            if not _all_below(arr, R if name == "coef_value" else P):
                raise InvalidInput(f"zkey: {name} has an element not below the modulus")
        for name in ("coef_matrix", "coef_constraint", "coef_signal"):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != (k,) or arr.dtype.kind not in "ui":
                raise InvalidInput(f"zkey: {name} must be an integer array of shape ({k},)")
        if k and (
            (self.coef_matrix > 1).any()
            or (self.coef_matrix < 0).any()
            or (self.coef_constraint < 0).any()
            or (self.coef_constraint >= ds).any()
            or (self.coef_signal < 0).any()
            or (self.coef_signal >= nv).any()
        ):
            raise InvalidInput("zkey: coefficient matrix/constraint/signal index out of range")
        if k >= 1 << 32:
            raise InvalidInput("zkey: too many coefficients")
        if len(self.cs_hash) != 64:
            raise InvalidInput("zkey: cs_hash must be 64 bytes")
        _parse_contributions(self.contributions)
        if sorted(self.section_order) != list(ZKEY_SECTION_IDS):
            raise InvalidInput(f"zkey: section_order {self.section_order} is not a permutation of 1..10")
        if not 1 <= self.version <= 2:
            raise InvalidInput(f"zkey: unsupported version {self.version}")

    def check_points(self, *, bulk: bool = True, b2_subgroup: bool = False) -> None:
        """Raise InvalidPoint unless the key's points are valid.

        Always: alpha_1, beta_1, delta_1 on G1 and not infinity; beta_2, gamma_2, delta_2 on the twist,
        in the r-torsion subgroup and not infinity; IC on G1. With ``bulk``: every point of A, B1,
        C, H on G1 (= in G1, cofactor 1) and every B2 point on the twist; with ``b2_subgroup`` also
        every B2 point in G2 (~50 us per point; off by default for reading, on in the key checks of
        :mod:`zkmb.groth16.keycheck`).
        """
        for name in ("alpha_1", "beta_1", "delta_1"):
            _check_g1(_g1_list(getattr(self, name))[0], f"zkey {name}", allow_infinity=False)
        for name in ("beta_2", "gamma_2", "delta_2"):
            _check_g2(_g2_list(getattr(self, name))[0], f"zkey {name}", allow_infinity=False)
        if (i := _g1_off_curve(self.ic)) >= 0:
            raise InvalidPoint(f"zkey: IC[{i}] not on the curve")
        if bulk:
            for name in ("a", "b1", "c", "h"):
                if (i := _g1_off_curve(getattr(self, name))) >= 0:
                    raise InvalidPoint(f"zkey: {name}[{i}] not on the curve")
            if (i := _g2_off_curve(self.b2)) >= 0:
                raise InvalidPoint(f"zkey: b2[{i}] not on the twist curve")
        if b2_subgroup and (i := _g2_not_in_subgroup(self.b2)) >= 0:
            raise InvalidPoint(f"zkey: b2[{i}] not in the prime-order subgroup")


def _parse_contributions(data: bytes) -> int:
    """Validate the structure of section 10 after the circuit hash; return the number of contributions."""
    if len(data) < 4:
        raise InvalidInput("zkey: contributions section too short")
    (n,) = struct.unpack_from("<I", data, 0)
    pos = 4
    fixed = 3 * G1_SIZE + G2_SIZE + 64 + 4  # deltaAfter, g1_s, g1_sx, g2_spx, transcript, type
    for i in range(n):
        if pos + fixed + 4 > len(data):
            raise InvalidInput(f"zkey: contribution {i} truncated")
        pos += fixed
        (plen,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if plen > len(data) - pos:
            raise InvalidInput(f"zkey: contribution {i} parameters truncated")
        pos += plen
    if pos != len(data):
        raise InvalidInput(f"zkey: {len(data) - pos} unexpected bytes after the contributions")
    return n


def _read_field_header(b: bytes, pos: int, modulus: int, what: str) -> int:
    (n8,) = struct.unpack_from("<I", b, pos)
    if n8 != N8:
        raise InvalidInput(f"{what}: field size {n8} bytes, expected {N8} (BN254)")
    if _int_le(b[pos + 4 : pos + 4 + N8]) != modulus:
        raise InvalidInput(f"{what}: field modulus is not BN254's")
    return pos + 4 + N8


def read_zkey(path: PathLike, *, check_points: bool = True, b2_subgroup: bool = False) -> ZkeyGroth16:
    """Read and validate a snarkjs Groth16 ``.zkey``.

    Checks: magic ``zkey``, version 1-2, a well-formed section table covering the file exactly,
    sections 1-10 each present once (no others), protocol 1 (Groth16), n8q = n8r = 32 with q, r the
    BN254 moduli, every section size equal to what nVars/nPublic/domainSize/the coefficient count
    imply (checked before anything is allocated), coefficient indices in range and values below r,
    every coordinate below p, and the points (:meth:`ZkeyGroth16.check_points`; the bulk on-curve
    checks can be skipped with ``check_points=False`` for a trusted file, and ``b2_subgroup=True`` adds
    the G2 subgroup check of every B2 point). Raises InvalidInput (InvalidPoint for bad points).
    """
    f, size = _open(path)
    with f:
        bf = _BinFile(f, size, b"zkey", 2, "zkey")
        unknown = sorted(set(bf.sections) - set(ZKEY_SECTION_IDS))
        if unknown:
            raise InvalidInput(f"zkey: unexpected sections {unknown}")
        for sid in ZKEY_SECTION_IDS:
            bf.unique(sid)
        proto = bf.read(bf.expect_size(1, 4, "protocol"))
        if struct.unpack("<I", proto)[0] != GROTH16_PROTOCOL_ID:
            raise InvalidInput(f"zkey: protocol id {struct.unpack('<I', proto)[0]} is not Groth16 (1)")
        hdr = bf.read(bf.expect_size(2, ZKEY_HEADER_SIZE, "Groth16 header"))
        pos = _read_field_header(hdr, 0, P, "zkey")
        pos = _read_field_header(hdr, pos, R, "zkey")
        n_vars, n_public, domain_size = struct.unpack_from("<III", hdr, pos)
        pos += 12
        if n_vars < n_public + 1:
            raise InvalidInput(f"zkey: nVars={n_vars} < nPublic+1={n_public + 1}")
        if domain_size < 1 or domain_size & (domain_size - 1) or domain_size > 1 << _MAX_DOMAIN_LOG:
            raise InvalidInput(f"zkey: domainSize={domain_size} is not a power of two <= 2^{_MAX_DOMAIN_LOG}")

        def take(nbytes: int, shape: tuple[int, ...]) -> np.ndarray:
            nonlocal pos
            arr = np.frombuffer(hdr, dtype=_LE_U64, count=nbytes // 8, offset=pos).reshape(shape).copy()
            pos += nbytes
            return arr

        alpha_1 = take(G1_SIZE, (2, 4))
        beta_1 = take(G1_SIZE, (2, 4))
        beta_2 = take(G2_SIZE, (2, 2, 4))
        gamma_2 = take(G2_SIZE, (2, 2, 4))
        delta_1 = take(G1_SIZE, (2, 4))
        delta_2 = take(G2_SIZE, (2, 2, 4))

        n_priv = n_vars - n_public - 1
        sec_ic = bf.expect_size(3, (n_public + 1) * G1_SIZE, "IC")
        sec_coef = bf.unique(4)
        if sec_coef.size < 4:
            raise InvalidInput("zkey: coefficient section too short")
        (n_coef,) = struct.unpack("<I", bf.read(sec_coef, 0, 4))
        if sec_coef.size != 4 + n_coef * COEF_SIZE:
            raise InvalidInput(
                f"zkey: section 4 (coefficients) has {sec_coef.size} bytes, expected {4 + n_coef * COEF_SIZE}"
            )
        sec_a = bf.expect_size(5, n_vars * G1_SIZE, "A")
        sec_b1 = bf.expect_size(6, n_vars * G1_SIZE, "B1")
        sec_b2 = bf.expect_size(7, n_vars * G2_SIZE, "B2")
        sec_c = bf.expect_size(8, n_priv * G1_SIZE, "C")
        sec_h = bf.expect_size(9, domain_size * G1_SIZE, "H")
        sec_mpc = bf.unique(10)
        if sec_mpc.size < 68:
            raise InvalidInput("zkey: section 10 (contributions) too short")

        ic = bf.read_into(sec_ic, _g1_empty(n_public + 1))
        coefs = np.empty(n_coef, dtype=_COEF_DTYPE)
        bf.read_into(sec_coef, coefs, 4)
        a = bf.read_into(sec_a, _g1_empty(n_vars))
        b1 = bf.read_into(sec_b1, _g1_empty(n_vars))
        b2 = bf.read_into(sec_b2, _g2_empty(n_vars))
        c = bf.read_into(sec_c, _g1_empty(n_priv))
        h = bf.read_into(sec_h, _g1_empty(domain_size))
        mpc = bf.read(sec_mpc)
        order = tuple(bf.order)
        version = bf.version

    stored = np.ascontiguousarray(coefs["v"], dtype=np.uint64)
    if not _all_below(stored, R):
        raise InvalidInput("zkey: a coefficient is not below r")
    value = np.empty_like(stored)
    if n_coef:
        _mont().fr_vec_from_mont(stored, value)  # file holds x*R^2; ours is x*R
    zk = ZkeyGroth16(
        n_vars=n_vars,
        n_public=n_public,
        domain_size=domain_size,
        alpha_1=alpha_1,
        beta_1=beta_1,
        beta_2=beta_2,
        gamma_2=gamma_2,
        delta_1=delta_1,
        delta_2=delta_2,
        ic=ic,
        coef_matrix=np.ascontiguousarray(coefs["m"], dtype=np.uint32),
        coef_constraint=np.ascontiguousarray(coefs["c"], dtype=np.uint32),
        coef_signal=np.ascontiguousarray(coefs["s"], dtype=np.uint32),
        coef_value=value,
        a=a,
        b1=b1,
        b2=b2,
        c=c,
        h=h,
        cs_hash=mpc[:64],
        contributions=mpc[64:],
        version=version,
        section_order=order,
    )
    zk.check_shapes()  # ranges of indices, coordinates below p, contributions structure
    zk.check_points(bulk=check_points, b2_subgroup=b2_subgroup)
    return zk


def _g1_bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype=_LE_U64).tobytes()


def write_zkey(path: PathLike, zk: ZkeyGroth16) -> None:
    """Write ``zk`` as a snarkjs Groth16 ``.zkey`` (sections in ``zk.section_order``).

    A key read with :func:`read_zkey` is written back byte for byte. The structure is validated
    first (:meth:`ZkeyGroth16.check_shapes`); the points are not re-checked.
    """
    zk.check_shapes()
    stored = np.empty_like(zk.coef_value)
    if zk.coef_value.shape[0]:
        _mont().fr_vec_to_mont(np.ascontiguousarray(zk.coef_value), stored)  # x*R -> x*R^2
    coefs = np.empty(zk.coef_value.shape[0], dtype=_COEF_DTYPE)
    coefs["m"] = zk.coef_matrix
    coefs["c"] = zk.coef_constraint
    coefs["s"] = zk.coef_signal
    coefs["v"] = stored
    header = b"".join(
        [
            struct.pack("<I", N8),
            P.to_bytes(N8, "little"),
            struct.pack("<I", N8),
            R.to_bytes(N8, "little"),
            struct.pack("<III", zk.n_vars, zk.n_public, zk.domain_size),
            _g1_bytes(zk.alpha_1),
            _g1_bytes(zk.beta_1),
            _g1_bytes(zk.beta_2),
            _g1_bytes(zk.gamma_2),
            _g1_bytes(zk.delta_1),
            _g1_bytes(zk.delta_2),
        ]
    )
    bodies: dict[int, Sequence[bytes | np.ndarray]] = {
        1: [struct.pack("<I", GROTH16_PROTOCOL_ID)],
        2: [header],
        3: [zk.ic],
        4: [struct.pack("<I", coefs.shape[0]), coefs],
        5: [zk.a],
        6: [zk.b1],
        7: [zk.b2],
        8: [zk.c],
        9: [zk.h],
        10: [bytes(zk.cs_hash), bytes(zk.contributions)],
    }
    _write_binfile(path, b"zkey", zk.version, [(sid, bodies[sid]) for sid in zk.section_order])


def _byte_view(p: bytes | np.ndarray) -> memoryview:
    return memoryview(p if isinstance(p, bytes) else np.ascontiguousarray(p)).cast("B")


def _write_binfile(path: PathLike, magic: bytes, version: int, sections) -> None:
    """Write a binfile atomically (a temporary file next to ``path``, then rename)."""
    tmp = Path(os.fspath(path) + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(magic + struct.pack("<II", version, len(sections)))
            for sid, parts in sections:
                chunks = [_byte_view(p) for p in parts]
                f.write(struct.pack("<IQ", sid, sum(c.nbytes for c in chunks)))
                for c in chunks:
                    f.write(c)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- ptau


@dataclass(frozen=True)
class PtauInfo:
    """Header of a snarkjs powers-of-tau file; ``sections`` maps id -> (offset, size) of the data."""

    power: int
    ceremony_power: int
    n_contributions: int
    sections: Mapping[int, tuple[int, int]] = field(repr=False)

    @property
    def prepared(self) -> bool:
        """True after ``powersoftau prepare phase2`` (the Lagrange sections 12-15 exist)."""
        return all(s in self.sections for s in (12, 13, 14, 15))


_PTAU_SECTIONS = {
    # name: (section id, group, count(power))
    "tau_g1": (2, 1, lambda k: 2 ** (k + 1) - 1),
    "tau_g2": (3, 2, lambda k: 2**k),
    "alpha_tau_g1": (4, 1, lambda k: 2**k),
    "beta_tau_g1": (5, 1, lambda k: 2**k),
    "beta_g2": (6, 2, lambda k: 1),
    "lagrange_tau_g1": (12, 1, lambda k: 2 ** (k + 2) - 1),
    "lagrange_tau_g2": (13, 2, lambda k: 2 ** (k + 1) - 1),
    "lagrange_alpha_tau_g1": (14, 1, lambda k: 2 ** (k + 1) - 1),
    "lagrange_beta_tau_g1": (15, 1, lambda k: 2 ** (k + 1) - 1),
}


def read_ptau_info(path: PathLike) -> PtauInfo:
    """Read and validate the header and section table of a ``.ptau`` file.

    Checks magic ``ptau``, version 1, header (n8 = 32, q = p, power <= 28, ceremonyPower), the point
    sections 2-6 (and 12-15 when present) with exactly the sizes the power implies, and section 7
    holding at least its contribution count.
    """
    f, size = _open(path)
    with f:
        bf = _BinFile(f, size, b"ptau", 1, "ptau")
        for sid, secs in bf.sections.items():
            if len(secs) > 1:
                raise InvalidInput(f"ptau: duplicated section {sid}")
        hdr = bf.read(bf.expect_size(1, 4 + N8 + 8, "header"))
        pos = _read_field_header(hdr, 0, P, "ptau")
        power, ceremony_power = struct.unpack_from("<II", hdr, pos)
        if not 1 <= power <= _MAX_DOMAIN_LOG:
            raise InvalidInput(f"ptau: power {power} out of range")
        for name, (sid, grp, count) in _PTAU_SECTIONS.items():
            if sid >= 12 and sid not in bf.sections:
                continue
            bf.expect_size(sid, count(power) * (G1_SIZE if grp == 1 else G2_SIZE), name)
        sec7 = bf.unique(7)
        if sec7.size < 4:
            raise InvalidInput("ptau: contributions section too short")
        (n_contrib,) = struct.unpack("<I", bf.read(sec7, 0, 4))
        sections = {sid: (secs[0].offset, secs[0].size) for sid, secs in bf.sections.items()}
    return PtauInfo(power, ceremony_power, n_contrib, sections)


def read_ptau_points(
    path: PathLike, name: str, start: int = 0, count: int | None = None, *, check_points: bool = True
) -> np.ndarray:
    """Points ``start .. start+count`` of a ``.ptau`` section as a Montgomery G1/G2 affine array.

    ``name`` is one of ``tau_g1`` (tau^i G1, 2^(power+1)-1 points), ``tau_g2``, ``alpha_tau_g1``,
    ``beta_tau_g1`` (2^power points), ``beta_g2`` (1), or a raw Lagrange section ``lagrange_*``
    (see :func:`read_ptau_lagrange`). Coordinates are range-checked and, with ``check_points``,
    the points are checked to lie on the curve (G2 points are not subgroup-checked).
    """
    if name not in _PTAU_SECTIONS:
        raise InvalidInput(f"ptau: unknown section name {name!r}")
    info = read_ptau_info(path)
    sid, grp, cnt = _PTAU_SECTIONS[name]
    if sid not in info.sections:
        raise InvalidInput(f"ptau: section {name} missing (not prepared for phase 2?)")
    total = cnt(info.power)
    count = total - start if count is None else count
    if start < 0 or count < 0 or start + count > total:
        raise InvalidInput(f"ptau: points {start}..{start + count} outside {name} (0..{total})")
    psize = G1_SIZE if grp == 1 else G2_SIZE
    off, _ = info.sections[sid]
    arr = _g1_empty(count) if grp == 1 else _g2_empty(count)
    with open(path, "rb") as f:
        f.seek(off + start * psize)
        view = memoryview(arr).cast("B")
        if f.readinto(view) != view.nbytes:
            raise InvalidInput("ptau: short read")
    if not _all_below(arr, P):
        raise InvalidInput(f"ptau: {name} has a coordinate not below p")
    if check_points:
        i = _g1_off_curve(arr) if grp == 1 else _g2_off_curve(arr)
        if i >= 0:
            raise InvalidPoint(f"ptau: {name}[{start + i}] not on the curve")
    return arr


def read_ptau_lagrange(path: PathLike, name: str, size: int, *, check_points: bool = True) -> np.ndarray:
    """The ``size`` points ``L_i(tau) X`` (i < size) of a prepared ``.ptau``, for a power-of-two ``size``.

    ``name`` is ``tau_g1``, ``tau_g2``, ``alpha_tau_g1`` or ``beta_tau_g1``; ``L_i`` is the Lagrange
    basis of the ``size``-th roots of unity ``w^i`` (``w`` = 5^((r-1)/size)). The sections store the
    bases for sizes 1, 2, 4, ... consecutively, so size ``m`` starts at point ``m - 1``.
    """
    if size < 1 or size & (size - 1):
        raise InvalidInput(f"ptau: Lagrange size {size} is not a power of two")
    return read_ptau_points(path, "lagrange_" + name, size - 1, size, check_points=check_points)


def _uncompressed(pts: np.ndarray) -> bytes:
    """ffjavascript's "U" encoding of a Montgomery G1/G2 affine array: each Fq (G1) or Fq2 (G2)
    coordinate as a plain big-endian integer (an Fq2 ``c0 + c1 u`` as BE(c1) || BE(c0)); infinity
    stays all zeros."""
    n = pts.shape[0]
    plain = np.empty((pts.size // 4, 4), dtype=np.uint64)
    if n:
        _mont().fq_vec_from_mont(np.ascontiguousarray(pts.reshape(-1, 4)), plain)
    coord = 32 if pts.ndim == 3 else 64
    raw = plain.astype(_LE_U64, copy=False).view(np.uint8).reshape(n, 2, coord)
    return np.ascontiguousarray(raw[:, :, ::-1]).tobytes()


def snarkjs_cs_hash(zk: ZkeyGroth16, ptau_path: PathLike) -> bytes:
    """The circuit hash (``csHash``, section 10) that ``snarkjs zkey new`` gives a key made from ``ptau``.

    Only defined for a key without phase-2 contributions (delta = 1): BLAKE2b-512 over, in order,
    alpha1, beta1, beta2, gamma2, delta1, delta2, then [u32 BE count, points] for IC, then
    [u32 BE n-1, (tau^(i+n) - tau^i) G1 for i < n-1] from the ptau, then C, A, B1, B2 -- all points in
    the "U" encoding. ``snarkjs zkey verify`` compares it with the hash it recomputes.
    """
    import hashlib

    f = _fast()
    one1 = f.g1_from_affine([(1, 2)])[0]
    if not np.array_equal(zk.delta_1, one1) or zk.n_contributions:
        raise InvalidInput("cs hash: only defined for a key with delta = 1 and no contributions")
    n = zk.domain_size
    tau = read_ptau_points(ptau_path, "tau_g1", 0, 2 * n - 1)
    diffs = f.g1_add(tau[n:], f.g1_neg(tau[: n - 1]))  # (tau^(i+n) - tau^i) G1, i < n-1
    hs = hashlib.blake2b(digest_size=64)
    for pt in (zk.alpha_1, zk.beta_1, zk.beta_2, zk.gamma_2, zk.delta_1, zk.delta_2):
        hs.update(_uncompressed(pt[None]))
    hs.update(struct.pack(">I", zk.ic.shape[0]))
    hs.update(_uncompressed(zk.ic))
    hs.update(struct.pack(">I", n - 1))
    hs.update(_uncompressed(diffs))
    for arr in (zk.c, zk.a, zk.b1, zk.b2):
        hs.update(struct.pack(">I", arr.shape[0]))
        hs.update(_uncompressed(arr))
    return hs.digest()


# --------------------------------------------------------------------------- JSON


def _dec(s: Any, modulus: int, what: str) -> int:
    """A canonical decimal string (no sign, no leading zeros, no spaces) of an integer below ``modulus``."""
    if not isinstance(s, str) or not _DEC_RE.fullmatch(s):
        raise InvalidInput(f"{what}: expected a decimal string, got {s!r:.80}")
    v = int(s)
    if v >= modulus:
        raise InvalidInput(f"{what}: value not below the modulus")
    return v


def _seq(obj: Any, n: int, what: str) -> Sequence[Any]:
    if not isinstance(obj, list | tuple) or len(obj) != n:
        raise InvalidInput(f"{what}: expected a list of {n} entries")
    return obj


def _g1_to_json(pt: G1Point) -> list[str]:
    if pt is None:
        return ["0", "1", "0"]
    return [str(int(pt[0])), str(int(pt[1])), "1"]


def _g2_to_json(pt: G2Point) -> list[list[str]]:
    if pt is None:
        return [["0", "0"], ["1", "0"], ["0", "0"]]
    (x0, x1), (y0, y1) = pt
    return [[str(int(x0)), str(int(x1))], [str(int(y0)), str(int(y1))], ["1", "0"]]


def _g1_from_json(obj: Any, what: str, *, allow_infinity: bool) -> G1Point:
    x, y, z = (_dec(v, P, what) for v in _seq(obj, 3, what))
    if z == 0:
        if (x, y) != (0, 1):
            raise InvalidPoint(f"{what}: infinity must be encoded as [0, 1, 0]")
        pt = None
    elif z == 1:
        pt = (x, y)
    else:
        raise InvalidInput(f"{what}: only affine points (z = 1) are accepted")
    _check_g1(pt, what, allow_infinity=allow_infinity)
    return pt


def _g2_from_json(obj: Any, what: str, *, allow_infinity: bool, subgroup: bool = True) -> G2Point:
    x, y, z = (tuple(_dec(v, P, what) for v in _seq(c, 2, what)) for c in _seq(obj, 3, what))
    if z == (0, 0):
        if (x, y) != ((0, 0), (1, 0)):
            raise InvalidPoint(f"{what}: infinity must be encoded as [[0,0],[1,0],[0,0]]")
        pt = None
    elif z == (1, 0):
        pt = (x, y)
    else:
        raise InvalidInput(f"{what}: only affine points (z = [1, 0]) are accepted")
    _check_g2(pt, what, allow_infinity=allow_infinity, subgroup=subgroup)
    return pt


def _check_tag(obj: Mapping[str, Any], key: str, value: str, what: str, *, required: bool) -> None:
    if key not in obj:
        if required:
            raise InvalidInput(f"{what}: missing {key!r}")
        return
    if obj[key] != value:
        raise InvalidInput(f"{what}: {key} is {obj[key]!r:.40}, expected {value!r}")


def proof_to_json(proof: Sequence[Any]) -> dict[str, Any]:
    """Canonical ``(A, B, C)`` -> the snarkjs ``proof.json`` object (affine, projective z = 1)."""
    a, b, c = proof
    return {
        "pi_a": _g1_to_json(a),
        "pi_b": _g2_to_json(b),
        "pi_c": _g1_to_json(c),
        "protocol": "groth16",
        "curve": "bn128",
    }


def proof_from_json(obj: Any, *, check_subgroup: bool = True) -> Groth16Proof:
    """Parse a snarkjs ``proof.json`` object strictly into canonical points.

    Requires ``pi_a``, ``pi_b``, ``pi_c`` as decimal strings in snarkjs's shapes with z = 1 (or the
    exact infinity encoding); ``protocol``/``curve``, if present, must be ``groth16``/``bn128``;
    other keys are ignored. A, C must be on G1; B on the twist and (unless ``check_subgroup`` is
    False) in the prime-order subgroup.
    """
    if not isinstance(obj, Mapping):
        raise InvalidInput("proof: expected a JSON object")
    _check_tag(obj, "protocol", "groth16", "proof", required=False)
    _check_tag(obj, "curve", "bn128", "proof", required=False)
    for k in ("pi_a", "pi_b", "pi_c"):
        if k not in obj:
            raise InvalidInput(f"proof: missing {k!r}")
    return Groth16Proof(
        _g1_from_json(obj["pi_a"], "proof pi_a", allow_infinity=True),
        _g2_from_json(obj["pi_b"], "proof pi_b", allow_infinity=True, subgroup=check_subgroup),
        _g1_from_json(obj["pi_c"], "proof pi_c", allow_infinity=True),
    )


def public_to_json(values: Iterable[int]) -> list[str]:
    """Public inputs (ints in [0, r)) -> snarkjs ``public.json`` list of decimal strings."""
    out = []
    for v in values:
        v = int(v)
        if not 0 <= v < R:
            raise InvalidInput("public input out of [0, r)")
        out.append(str(v))
    return out


def public_from_json(obj: Any) -> list[int]:
    """Parse ``public.json`` (a list of canonical decimal strings, each below r)."""
    if not isinstance(obj, list):
        raise InvalidInput("public: expected a JSON list")
    return [_dec(v, R, f"public[{i}]") for i, v in enumerate(obj)]


def snarkjs_alphabeta_12(alpha_1: G1Point, beta_2: G2Point) -> tuple[int, ...]:
    """``vk_alphabeta_12`` as snarkjs computes it: e(alpha, beta)^SNARKJS_GT_EXPONENT (canonical 12-tuple).

    e is the fast backend's optimal ate pairing (textbook value, final exponent (p^12 - 1)/r).
    """
    _check_g1(alpha_1, "alpha_1", allow_infinity=False)
    _check_g2(beta_2, "beta_2", allow_infinity=False)
    f = _fast()
    base = f.pairing(f.g1_from_affine([alpha_1]), f.g2_from_affine([beta_2])[0])
    acc = f.fq12_one()
    k = SNARKJS_GT_EXPONENT
    while k:
        if k & 1:
            acc = f.fq12_mul(acc, base)
        base = f.fq12_mul(base, base)
        k >>= 1
    return f.fq12_to_canonical(acc)


def _fq12_to_json(v: Sequence[int]) -> list[list[list[str]]]:
    return [[[str(v[6 * i + 2 * j + k]) for k in range(2)] for j in range(3)] for i in range(2)]


def _fq12_from_json(obj: Any, what: str) -> tuple[int, ...]:
    out = [0] * 12
    for i, ci in enumerate(_seq(obj, 2, what)):
        for j, cij in enumerate(_seq(ci, 3, what)):
            for k, s in enumerate(_seq(cij, 2, what)):
                out[6 * i + 2 * j + k] = _dec(s, P, what)
    return tuple(out)


def vk_to_json(vk: Groth16Vk | Sequence[Any], *, alphabeta: Sequence[int] | None = None) -> dict[str, Any]:
    """Canonical verification key -> snarkjs ``verification_key.json`` object (same keys and order).

    ``vk_alphabeta_12`` is computed (one pairing, see :func:`snarkjs_alphabeta_12`) unless given.
    """
    alpha_1, beta_2, gamma_2, delta_2, ic = vk
    ab = snarkjs_alphabeta_12(alpha_1, beta_2) if alphabeta is None else tuple(alphabeta)
    if len(ab) != 12:
        raise InvalidInput("vk: alphabeta must have 12 Fq coordinates")
    return {
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": len(ic) - 1,
        "vk_alpha_1": _g1_to_json(alpha_1),
        "vk_beta_2": _g2_to_json(beta_2),
        "vk_gamma_2": _g2_to_json(gamma_2),
        "vk_delta_2": _g2_to_json(delta_2),
        "vk_alphabeta_12": _fq12_to_json(ab),
        "IC": [_g1_to_json(p) for p in ic],
    }


def vk_from_json(obj: Any, *, check_alphabeta: bool = True) -> Groth16Vk:
    """Parse a snarkjs ``verification_key.json`` strictly.

    Requires protocol ``groth16``, curve ``bn128``, an integer ``nPublic`` equal to ``len(IC) - 1``,
    alpha on G1, beta/gamma/delta on the twist and in the subgroup (none at infinity), IC on G1.
    ``vk_alphabeta_12``, if present, must be well formed and (with ``check_alphabeta``) equal to the
    value snarkjs computes.
    """
    if not isinstance(obj, Mapping):
        raise InvalidInput("vk: expected a JSON object")
    _check_tag(obj, "protocol", "groth16", "vk", required=True)
    _check_tag(obj, "curve", "bn128", "vk", required=True)
    for k in ("nPublic", "vk_alpha_1", "vk_beta_2", "vk_gamma_2", "vk_delta_2", "IC"):
        if k not in obj:
            raise InvalidInput(f"vk: missing {k!r}")
    n_public = obj["nPublic"]
    if type(n_public) is not int or n_public < 0:
        raise InvalidInput("vk: nPublic must be a non-negative integer")
    ic_obj = obj["IC"]
    if not isinstance(ic_obj, list) or len(ic_obj) != n_public + 1:
        raise InvalidInput(f"vk: IC must list nPublic+1 = {n_public + 1} points")
    vk = Groth16Vk(
        _g1_from_json(obj["vk_alpha_1"], "vk_alpha_1", allow_infinity=False),
        _g2_from_json(obj["vk_beta_2"], "vk_beta_2", allow_infinity=False),
        _g2_from_json(obj["vk_gamma_2"], "vk_gamma_2", allow_infinity=False),
        _g2_from_json(obj["vk_delta_2"], "vk_delta_2", allow_infinity=False),
        tuple(_g1_from_json(p, f"vk IC[{i}]", allow_infinity=True) for i, p in enumerate(ic_obj)),
    )
    if "vk_alphabeta_12" in obj:
        ab = _fq12_from_json(obj["vk_alphabeta_12"], "vk_alphabeta_12")
        if check_alphabeta and ab != snarkjs_alphabeta_12(vk.alpha_1, vk.beta_2):
            raise InvalidInput("vk: vk_alphabeta_12 is not e(alpha, beta)")
    return vk
