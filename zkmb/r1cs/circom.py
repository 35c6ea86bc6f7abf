"""circom interop: read and write iden3 ``.r1cs`` and ``.wtns`` binary files (BN254 only).

Both formats use the iden3 binary container: magic (4 bytes), version (u32), section count (u32),
then sections ``(type u32, size u64, payload)``; all integers little-endian, field elements
``n8 = 32`` bytes little-endian in canonical (non-Montgomery) form.

``.r1cs`` (version 1): section 1 header ``n8, prime, nWires, nPubOut, nPubIn, nPrvIn (u32),
nLabels (u64), mConstraints (u32)``; section 2 the constraints, each three LCs ``nTerms (u32)``
then ``(wireId u32, coefficient)`` per term; section 3 the wire -> label map (u64 per wire).
Sections 4/5 (PLONK custom gates) are rejected; unknown section types are ignored.

``.wtns`` (version 2; version 1 has the same layout): section 1 ``n8, prime, nWitness (u32)``,
section 2 the values.  Everything read is validated and every failure raises InvalidInput.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from numba import njit

from ..algebra.kernels import mont
from ..algebra.params import R
from ..errors import InvalidInput
from . import solver
from .system import ConstraintSystem, InputSpec, SparseMatrix, Witness

__all__ = ["r1cs_bytes", "read_r1cs", "read_wtns", "write_r1cs", "write_wtns", "wtns_bytes"]

_N8 = 32
_R_BYTES = R.to_bytes(_N8, "little")
_TERM = 4 + _N8  # wire id + coefficient
_jit = dict(cache=True, nogil=True)

Source = str | os.PathLike | bytes | bytearray | memoryview


def _load(src: Source) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src)
    return Path(src).read_bytes()


def _container(data: bytes, magic: bytes, versions: tuple[int, ...]) -> dict[int, list[tuple[int, int]]]:
    """Section table ``{type: [(offset, size), ...]}`` of an iden3 binary container, fully bounds-checked."""
    what = magic.decode()
    if len(data) < 12:
        raise InvalidInput(f".{what}: truncated header")
    if data[:4] != magic:
        raise InvalidInput(f".{what}: wrong magic {data[:4]!r}")
    version, n_sections = struct.unpack_from("<II", data, 4)
    if version not in versions:
        raise InvalidInput(f".{what}: unsupported version {version}")
    pos = 12
    sections: dict[int, list[tuple[int, int]]] = {}
    for _ in range(n_sections):
        if len(data) - pos < 12:
            raise InvalidInput(f".{what}: truncated section header")
        stype, size = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if size > len(data) - pos:
            raise InvalidInput(f".{what}: section {stype} runs past the end of the file")
        sections.setdefault(stype, []).append((pos, size))
        pos += size
    if pos != len(data):
        raise InvalidInput(f".{what}: {len(data) - pos} trailing bytes after the last section")
    return sections


def _unique(sections: dict, stype: int, what: str, required: bool = True) -> tuple[int, int] | None:
    found = sections.get(stype, [])
    if len(found) > 1:
        raise InvalidInput(f".{what}: section {stype} appears {len(found)} times")
    if not found:
        if required:
            raise InvalidInput(f".{what}: missing section {stype}")
        return None
    return found[0]


def _field_header(data: bytes, off: int, size: int, what: str, rest: int) -> int:
    """Check ``n8`` and the prime at ``off``; returns the offset after them (``rest`` bytes must follow)."""
    if size < 4:
        raise InvalidInput(f".{what}: header section too short")
    (n8,) = struct.unpack_from("<I", data, off)
    if n8 != _N8:
        raise InvalidInput(f".{what}: field size {n8} bytes, expected {_N8} (BN254)")
    if size != 4 + _N8 + rest:
        raise InvalidInput(f".{what}: header section has size {size}, expected {4 + _N8 + rest}")
    if data[off + 4 : off + 4 + _N8] != _R_BYTES:
        raise InvalidInput(f".{what}: the field is not BN254's scalar field r")
    return off + 4 + _N8


def _to_mont_checked(plain: np.ndarray, what: str) -> np.ndarray:
    out = np.empty_like(plain)
    if not mont.fr_vec_to_mont(plain, out):
        raise InvalidInput(f"{what}: a field element is not below r")
    return out


# --------------------------------------------------------------------------- numba (de)serialisers


@njit(inline="always", **_jit)
def _u32(buf, p):
    lo = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
    return lo | (np.int64(buf[p + 2]) << 16) | (np.int64(buf[p + 3]) << 24)


@njit(inline="always", **_jit)
def _u64(buf, p):
    v = np.uint64(0)
    for i in range(8):
        v |= np.uint64(buf[p + i]) << np.uint64(8 * i)
    return v


@njit(**_jit)
def _scan_constraints(buf, m, n_wires, lens):
    """Bounds-check the constraint section and record each LC's length in lens (3, m).

    Returns 0, or -1 truncated / count past the end, -2 wire id out of range, -3 trailing bytes.
    """
    n = buf.shape[0]
    pos = 0
    for i in range(m):
        for k in range(3):
            if n - pos < 4:
                return -1
            cnt = _u32(buf, pos)
            pos += 4
            if cnt > (n - pos) // 36:
                return -1
            lens[k, i] = cnt
            for _ in range(cnt):
                if _u32(buf, pos) >= n_wires:
                    return -2
                pos += 36
    if pos != n:
        return -3
    return 0


@njit(**_jit)
def _fill_constraints(buf, m, base, cols, limbs):
    """Second pass after _scan_constraints: columns and plain coefficient limbs of A, B, C (A's terms
    first from ``base[0]``, then B's from ``base[1]``, C's from ``base[2]``)."""
    pos = 0
    fill = np.zeros(3, dtype=np.int64)
    for _ in range(m):
        for k in range(3):
            cnt = _u32(buf, pos)
            pos += 4
            for _ in range(cnt):
                j = base[k] + fill[k]
                cols[j] = _u32(buf, pos)
                for li in range(4):
                    limbs[j, li] = _u64(buf, pos + 4 + 8 * li)
                fill[k] += 1
                pos += 36


@njit(**_jit)
def _write_constraints(buf, m, a_ptr, a_col, a_lim, b_ptr, b_col, b_lim, c_ptr, c_col, c_lim):
    pos = 0
    for i in range(m):
        for k in range(3):
            if k == 0:
                ptr, col, lim = a_ptr, a_col, a_lim
            elif k == 1:
                ptr, col, lim = b_ptr, b_col, b_lim
            else:
                ptr, col, lim = c_ptr, c_col, c_lim
            lo = ptr[i]
            hi = ptr[i + 1]
            cnt = hi - lo
            for t in range(4):
                buf[pos + t] = (cnt >> (8 * t)) & 0xFF
            pos += 4
            for j in range(lo, hi):
                wid = col[j]
                for t in range(4):
                    buf[pos + t] = (wid >> (8 * t)) & 0xFF
                pos += 4
                for li in range(4):
                    v = lim[j, li]
                    for t in range(8):
                        buf[pos + t] = np.uint8((v >> np.uint64(8 * t)) & np.uint64(0xFF))
                    pos += 8
    return pos


# --------------------------------------------------------------------------- .r1cs


def read_r1cs(src: Source) -> ConstraintSystem:
    """Parse a circom ``.r1cs`` file (path or bytes) into a ConstraintSystem without a witness program.

    Public wires are circom's outputs followed by its public inputs (``n_public = nPubOut + nPubIn``);
    ``inputs`` describes them as the pseudo-inputs ``public`` and ``private``.  Zero coefficients are
    dropped and terms sorted; a wire repeated within one LC is rejected.
    """
    data = _load(src)
    sections = _container(data, b"r1cs", (1,))
    if 4 in sections or 5 in sections:
        raise InvalidInput(".r1cs: PLONK custom gates (sections 4/5) are not supported")
    off, size = _unique(sections, 1, "r1cs")
    p = _field_header(data, off, size, "r1cs", 4 * 4 + 8 + 4)
    n_wires, n_pub_out, n_pub_in, n_prv_in, n_labels, m = struct.unpack_from("<IIIIQI", data, p)
    n_public = n_pub_out + n_pub_in
    if n_wires < 1 or 1 + n_public + n_prv_in > n_wires:
        raise InvalidInput(".r1cs: input counts exceed the number of wires")
    off, size = _unique(sections, 2, "r1cs")
    if m > size // 12:  # every constraint takes at least 3 * 4 bytes
        raise InvalidInput(".r1cs: constraint count exceeds the section size")
    buf = np.frombuffer(data, dtype=np.uint8, count=size, offset=off)
    lens = np.zeros((3, m), dtype=np.int64)
    err = _scan_constraints(buf, m, n_wires, lens)
    if err == -1:
        raise InvalidInput(".r1cs: constraint section truncated")
    if err == -2:
        raise InvalidInput(".r1cs: a constraint refers to a wire beyond nWires")
    if err == -3:
        raise InvalidInput(".r1cs: constraint section has bytes after the last constraint")
    ptrs = np.zeros((3, m + 1), dtype=np.int64)
    np.cumsum(lens, axis=1, out=ptrs[:, 1:])
    nnz = ptrs[:, -1].copy()
    base = np.concatenate(([0], np.cumsum(nnz)[:-1])).astype(np.int64)
    cols = np.empty(int(nnz.sum()), dtype=np.int64)
    limbs = np.empty((int(nnz.sum()), 4), dtype=np.uint64)
    _fill_constraints(buf, m, base, cols, limbs)
    mats = []
    for k in range(3):
        lo, hi = int(base[k]), int(base[k] + nnz[k])
        mats.append(_canonical_matrix(ptrs[k].copy(), cols[lo:hi], limbs[lo:hi]))
    labels = None
    lab = _unique(sections, 3, "r1cs", required=False)
    if lab is not None:
        off, size = lab
        if size != 8 * n_wires:
            raise InvalidInput(".r1cs: wire-to-label section size does not match nWires")
        labels = np.frombuffer(data, dtype="<u8", count=n_wires, offset=off).astype(np.uint64)
        if n_wires and int(labels.max()) >= max(n_labels, 1):
            raise InvalidInput(".r1cs: a label id exceeds nLabels")
    inputs = {}
    if n_public:
        inputs["public"] = InputSpec("public", True, 1, n_public)
    if n_prv_in:
        inputs["private"] = InputSpec("private", False, 1 + n_public, n_prv_in)
    return ConstraintSystem(
        n_public=n_public,
        n_wires=n_wires,
        A=mats[0],
        B=mats[1],
        C=mats[2],
        inputs=inputs,
        name="circom",
        labels=labels,
    )


def _canonical_matrix(ptr: np.ndarray, cols: np.ndarray, plain: np.ndarray) -> SparseMatrix:
    """Drop zero coefficients, sort rows by column (rejecting repeats), convert to Montgomery."""
    keep = plain.any(axis=1)
    if not keep.all():
        rows = np.repeat(np.arange(ptr.shape[0] - 1), np.diff(ptr))
        counts = np.bincount(rows[keep], minlength=ptr.shape[0] - 1)
        ptr = np.zeros_like(ptr)
        np.cumsum(counts, out=ptr[1:])
        cols, plain = cols[keep], plain[keep]
    ids = np.arange(cols.shape[0], dtype=np.int64)
    cols = cols.copy()
    if not solver.sort_rows(ptr, cols, ids):
        raise InvalidInput(".r1cs: a linear combination repeats a wire")
    return SparseMatrix(ptr, cols, _to_mont_checked(np.ascontiguousarray(plain[ids]), ".r1cs"))


def r1cs_bytes(cs: ConstraintSystem) -> bytes:
    """Serialise a ConstraintSystem as a circom ``.r1cs`` (version 1; public wires written as nPubIn)."""
    m = cs.n_constraints
    n_prv = sum(s.n_wires for s in cs.inputs.values() if not s.public)
    labels = cs.labels if cs.labels is not None else np.arange(cs.n_wires, dtype=np.uint64)
    n_labels = int(labels.max()) + 1 if labels.shape[0] else 0
    header = struct.pack("<I", _N8) + _R_BYTES
    header += struct.pack("<IIIIQI", cs.n_wires, 0, cs.n_public, n_prv, n_labels, m)
    total = 12 * m + _TERM * (cs.A.nnz + cs.B.nnz + cs.C.nnz)
    buf = np.empty(total, dtype=np.uint8)
    a, b, c = cs.A, cs.B, cs.C
    _write_constraints(
        buf, m, a.row_ptr, a.cols, a.coeffs_plain(), b.row_ptr, b.cols, b.coeffs_plain(),
        c.row_ptr, c.cols, c.coeffs_plain(),
    )  # fmt: skip
    body = buf.tobytes()
    lab = labels.astype("<u8").tobytes()
    out = [b"r1cs", struct.pack("<II", 1, 3)]
    for stype, payload in ((1, header), (2, body), (3, lab)):
        out.append(struct.pack("<IQ", stype, len(payload)))
        out.append(payload)
    return b"".join(out)


def write_r1cs(cs: ConstraintSystem, path: str | os.PathLike) -> None:
    """Write :func:`r1cs_bytes` to ``path``."""
    Path(path).write_bytes(r1cs_bytes(cs))


# --------------------------------------------------------------------------- .wtns


def read_wtns(src: Source, cs: ConstraintSystem | None = None) -> Witness:
    """Parse a ``.wtns`` file (path or bytes); with ``cs``, check the wire count and take n_public from it."""
    data = _load(src)
    sections = _container(data, b"wtns", (1, 2))
    off, size = _unique(sections, 1, "wtns")
    p = _field_header(data, off, size, "wtns", 4)
    (n,) = struct.unpack_from("<I", data, p)
    off, size = _unique(sections, 2, "wtns")
    if size != n * _N8:
        raise InvalidInput(f".wtns: value section has {size} bytes, expected {n * _N8} for {n} values")
    if cs is not None and n != cs.n_wires:
        raise InvalidInput(f".wtns: {n} values but the constraint system has {cs.n_wires} wires")
    plain = np.frombuffer(data, dtype="<u8", count=4 * n, offset=off).astype(np.uint64).reshape(n, 4)
    return Witness(_to_mont_checked(plain, ".wtns"), None if cs is None else cs.n_public)


def wtns_bytes(witness: Witness) -> bytes:
    """Serialise a Witness as a ``.wtns`` (version 2)."""
    vals = witness.scalars().astype("<u8").tobytes()
    header = struct.pack("<I", _N8) + _R_BYTES + struct.pack("<I", len(witness))
    return b"".join(
        [b"wtns", struct.pack("<II", 2, 2), struct.pack("<IQ", 1, len(header)), header,
         struct.pack("<IQ", 2, len(vals)), vals]
    )  # fmt: skip


def write_wtns(witness: Witness, path: str | os.PathLike) -> None:
    """Write :func:`wtns_bytes` to ``path``."""
    Path(path).write_bytes(wtns_bytes(witness))
