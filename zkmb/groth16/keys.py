"""Groth16 proving and verifying keys and their versioned binary file format.

File layout (all integers little-endian)::

    magic      8 bytes  b"ZKMBG16\\0"
    version    u32      FORMAT_VERSION
    kind       u32      1 = proving key, 2 = verifying key
    digest     32 bytes the circuit digest the key was made for
    hlen       u64      length of the JSON header that follows
    header     JSON     counts, the array table (name, dtype, shape, offset, nbytes), payload SHA-256
    payload    the arrays, raw little-endian, each 64-byte aligned (points and field elements as
               Montgomery limbs, exactly the in-memory layout of the fast backend)

Loading memory-maps the arrays (no conversion to Python ints), checks every size against the file,
the payload hash, the expected shapes, and the small key parts (alpha, beta, gamma, delta, IC) for
being on the curve and in the subgroup.  Any mismatch raises InvalidInput naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..algebra import fast
from ..errors import InvalidInput
from .r1cs_to_qap import CsrRows

MAGIC = b"ZKMBG16\0"
FORMAT_VERSION = 1
KIND_PK, KIND_VK = 1, 2
_PREFIX = struct.Struct("<8sII32sQ")
_ALIGN = 64
_MAX_HEADER = 1 << 20
_VK_ARRAYS = {
    "alpha_1": (2, 4),
    "beta_2": (2, 2, 4),
    "gamma_2": (2, 2, 4),
    "delta_2": (2, 2, 4),
    "ic": (None, 2, 4),
}


TABLE_PARTS = ("a", "b1", "b2", "c", "h")
"""The MSM bases of a proving key, in the order a proof uses them."""

FIXED_BASE_WINDOW = 4
"""Bits per digit of :func:`fixed_base_table` (64 windows cover a scalar below 2^256)."""


def fixed_base_table(points: np.ndarray) -> np.ndarray:
    """``t[i, w, d - 1] = [d 2^(4 w)] points[i]`` for d = 1..15, w = 0..63, affine G1 ``(n, 64, 15, 2, 4)``
    (63 * 4 doublings and 14 additions of vectors; a few ms per point)."""
    n, wins, per = points.shape[0], 256 // FIXED_BASE_WINDOW, (1 << FIXED_BASE_WINDOW) - 1
    base = np.empty((n, wins, 2, 4), dtype=np.uint64)
    cur = np.ascontiguousarray(points)
    for w in range(wins):
        base[:, w] = cur
        if w + 1 < wins:
            for _ in range(FIXED_BASE_WINDOW):
                cur = fast.g1_double(cur)
    flat = base.reshape(n * wins, 2, 4)
    table = np.empty((n * wins, per, 2, 4), dtype=np.uint64)
    acc = flat
    table[:, 0] = acc
    for d in range(1, per):
        acc = fast.g1_add(acc, flat)
        table[:, d] = acc
    return table.reshape(n, wins, per, 2, 4)


@dataclass(eq=False)
class VerifyingKey:
    """alpha in G1, beta/gamma/delta in G2, IC (one G1 point per public input plus one), circuit digest."""

    alpha_1: np.ndarray
    beta_2: np.ndarray
    gamma_2: np.ndarray
    delta_2: np.ndarray
    ic: np.ndarray
    digest: bytes = bytes(32)
    # caches derived from the points: init=False, so dataclasses.replace(vk, ic=...) starts them afresh
    _alphabeta: np.ndarray | None = field(default=None, init=False, repr=False)
    _ic_table: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def n_public(self) -> int:
        return int(self.ic.shape[0] - 1)

    @property
    def alphabeta(self) -> np.ndarray:
        """e(alpha, beta), computed once (the verifier's constant pairing)."""
        if self._alphabeta is None:
            self._alphabeta = fast.pairing(self.alpha_1, self.beta_2)
        return self._alphabeta

    @property
    def ic_table(self) -> np.ndarray:
        """The fixed-base table of the IC points, computed once: ``t[i, w, d - 1] = [d 16^w] IC_i`` for
        d = 1..15 and 64 windows (affine, ``(n_public + 1, 64, 15, 2, 4)``, 61 KiB per point).  With it
        ``sum_i x_i IC_i`` is one batch-affine sum of a point per non-zero 4-bit digit of the ``x_i``
        instead of a Pippenger MSM whose per-window inversions dominate for a few scalars."""
        if self._ic_table is None:
            self._ic_table = fixed_base_table(self.ic)
        return self._ic_table

    def validate(self) -> None:
        """Raise InvalidPoint unless every point is on its curve and in its subgroup."""
        fast.g1_validate(self.alpha_1.reshape(1, 2, 4))
        fast.g1_validate(self.ic)
        fast.g2_validate(np.stack([self.beta_2, self.gamma_2, self.delta_2]))

    def save(self, path: str | os.PathLike) -> None:
        _write(path, KIND_VK, self.digest, {}, self._arrays())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("alpha_1", "beta_2", "gamma_2", "delta_2", "ic")}

    @classmethod
    def load(cls, path: str | os.PathLike, *, expect_digest: bytes | None = None) -> VerifyingKey:
        kind, digest, meta, arrays, _mm = _read(path, expect_digest)
        if kind != KIND_VK:
            raise InvalidInput(f"{path}: not a verifying key file (kind {kind})")
        vk = cls(
            **_take(
                arrays,
                path,
                _VK_ARRAYS,
            ),
            digest=digest,
        )
        vk.validate()
        return vk


@dataclass(eq=False)
class ProvingKey:
    """The prover's key: snarkjs's layout (see docs/snarkjs-interop.md) plus the QAP rows of A and B.

    a[s] = A_s(tau) G1, b1[s] = B_s(tau) G1, b2[s] = B_s(tau) G2 for every wire s;
    c[s - n_public - 1] = (beta A_s + alpha B_s + C_s)(tau)/delta G1 for the private wires;
    h[j] = L_(2j+1)(tau)/delta G1 over the 2n-th roots of unity; vk holds alpha, beta, gamma, delta, IC.
    """

    n_vars: int
    n_public: int
    domain_size: int
    vk: VerifyingKey
    beta_1: np.ndarray
    delta_1: np.ndarray
    a: np.ndarray
    b1: np.ndarray
    b2: np.ndarray
    c: np.ndarray
    h: np.ndarray
    a_rows: CsrRows
    b_rows: CsrRows

    @property
    def digest(self) -> bytes:
        return self.vk.digest

    def check_shapes(self) -> None:
        """Raise InvalidInput unless the arrays have the sizes the counts imply."""
        nv, npub, n = self.n_vars, self.n_public, self.domain_size
        want = {
            "a": (nv, 2, 4),
            "b1": (nv, 2, 4),
            "b2": (nv, 2, 2, 4),
            "c": (nv - npub - 1, 2, 4),
            "h": (n, 2, 4),
            "beta_1": (2, 4),
            "delta_1": (2, 4),
        }
        for name, shape in want.items():
            arr = getattr(self, name)
            if arr.shape != shape or arr.dtype != np.uint64:
                raise InvalidInput(f"proving key: {name} has shape {arr.shape}, expected {shape}")
        if self.vk.ic.shape != (npub + 1, 2, 4):
            raise InvalidInput("proving key: IC does not match the number of public inputs")
        if n & (n - 1) or n < npub + 1:
            raise InvalidInput("proving key: bad domain size")
        for name, rows in (("A", self.a_rows), ("B", self.b_rows)):
            if rows.n_rows > n or rows.ptr[0] != 0 or np.any(np.diff(rows.ptr) < 0):
                raise InvalidInput(f"proving key: malformed {name} rows")
            if rows.ptr[-1] != rows.cols.shape[0] or rows.vals.shape != (rows.cols.shape[0], 4):
                raise InvalidInput(f"proving key: {name} row table does not match its entries")
            if rows.cols.size and (rows.cols.min() < 0 or rows.cols.max() >= nv):
                raise InvalidInput(f"proving key: {name} refers to a wire outside the witness")

    tables: dict[str, fast.WindowTable] = field(default_factory=dict, compare=False, repr=False)
    """Window tables of some of the MSM bases (``"a"``, ``"b1"``, ``"b2"``, ``"c"``, ``"h"``), built in
    memory by :meth:`build_table` (never saved): the prover uses them where present."""

    def build_table(self, part: str, threads: int | None = None) -> fast.WindowTable:
        """Build (once) the window table of the MSM bases ``part``: 20 times their memory (Q-64: 60 MB
        for all five), ~20% less time for that MSM on one thread when its scalars are mostly full-size
        (a query proof's Poseidon wires and its H evaluations; a whole Q-64 proof ~12% less).  A PAD or
        CO proof's scalars are mostly bits and its H MSM is large: tables do not pay there (measured:
        PAD's A/B/C MSMs 1.5x slower, its H MSM no faster)."""
        *_, wt = self.table_steps(part, threads)
        return wt

    _dead: dict[tuple[str, int, int], np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    """``(part, lo, m)`` -> offsets (from ``lo``) of the bases at infinity among those m: a wire that
    never occurs in B has B_s(tau) = 0, a third of a query key's B bases."""

    def dead_rows(self, part: str, lo: int, m: int) -> np.ndarray:
        """Offsets j < m of the MSM bases ``part`` at row ``lo + j`` that are the point at infinity
        (read once per chunk, from the key's points, then remembered)."""
        key = (part, lo, m)
        dead = self._dead.get(key)
        if dead is None:
            pts = getattr(self, part)[lo : lo + m]
            dead = np.flatnonzero(~pts.reshape(pts.shape[0], -1).any(axis=1))
            self._dead[key] = dead
        return dead

    def msm(self, part: str, plain: np.ndarray, lo: int = 0) -> np.ndarray:
        """sum_j [plain_j] of the MSM bases ``part`` from row ``lo`` on (plain scalar limbs, e.g. a chunk
        of a proof's): on the window table where one is built, the key's points otherwise.  Scalars of
        bases at infinity are dropped first ([k] O = O): the MSM never spends a bucket addition on them."""
        dead = self.dead_rows(part, lo, plain.shape[0])
        if dead.size:
            plain = plain.copy()
            plain[dead] = 0
        wt = self.tables.get(part)
        if wt is not None:  # the same sum, and no page of the key file is read
            return fast.msm_table_plain(wt, plain, lo)
        return fast.msm_plain(getattr(self, part)[lo : lo + plain.shape[0]], plain)

    def table_steps(self, part: str, threads: int | None = None) -> Iterator[fast.WindowTable | None]:
        """:meth:`build_table` one window level per step (None after each level, the table last; the
        prover sees the table only when it is complete)."""
        if part not in TABLE_PARTS:
            raise InvalidInput(f"no MSM bases named {part!r} (one of {', '.join(TABLE_PARTS)})")
        wt = self.tables.get(part)
        if wt is None:
            for wt in fast.window_table_steps(getattr(self, part), threads=threads):
                if wt is None:
                    yield None
            self.tables[part] = wt
        yield wt

    source_sha256: str | None = field(default=None, compare=False, repr=False)
    """For a key file that is a decompressed cache (:mod:`zkmb.groth16.compact`): the SHA-256 of the
    compact file it was expanded from (stored in the header; None for a key written by a setup)."""

    def save(self, path: str | os.PathLike) -> None:
        arrays = {
            "alpha_1": self.vk.alpha_1,
            "beta_2": self.vk.beta_2,
            "gamma_2": self.vk.gamma_2,
            "delta_2": self.vk.delta_2,
            "ic": self.vk.ic,
            "beta_1": self.beta_1,
            "delta_1": self.delta_1,
            "a": self.a,
            "b1": self.b1,
            "b2": self.b2,
            "c": self.c,
            "h": self.h,
            "a_ptr": self.a_rows.ptr,
            "a_cols": self.a_rows.cols,
            "a_vals": self.a_rows.vals,
            "b_ptr": self.b_rows.ptr,
            "b_cols": self.b_rows.cols,
            "b_vals": self.b_rows.vals,
        }
        meta = {"n_vars": self.n_vars, "n_public": self.n_public, "domain_size": self.domain_size}
        if self.source_sha256 is not None:
            meta["source_sha256"] = self.source_sha256
        _write(path, KIND_PK, self.digest, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, *, expect_digest: bytes | None = None) -> ProvingKey:
        """Memory-map a proving key file; raises InvalidInput if it is corrupt, truncated or mismatched."""
        kind, digest, meta, arrays, mm = _read(path, expect_digest)
        if kind != KIND_PK:
            raise InvalidInput(f"{path}: not a proving key file (kind {kind})")
        try:
            nv, npub, n = (int(meta[k]) for k in ("n_vars", "n_public", "domain_size"))
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"{path}: header lacks the key counts") from e
        if not (0 <= npub < nv) or n <= 0:
            raise InvalidInput(f"{path}: inconsistent key counts")
        vk = VerifyingKey(
            **_take(
                arrays,
                path,
                _VK_ARRAYS,
            ),
            digest=digest,
        )
        rest = _take(
            arrays,
            path,
            {
                "beta_1": (2, 4),
                "delta_1": (2, 4),
                "a": (None, 2, 4),
                "b1": (None, 2, 4),
                "b2": (None, 2, 2, 4),
                "c": (None, 2, 4),
                "h": (None, 2, 4),
            },
        )
        rows = {}
        for m in ("a", "b"):
            ptr, cols, vals = (arrays.get(f"{m}_{k}") for k in ("ptr", "cols", "vals"))
            if ptr is None or cols is None or vals is None or ptr.dtype != np.int64 or cols.dtype != np.int64:
                raise InvalidInput(f"{path}: missing or mistyped {m.upper()} rows")
            rows[m] = CsrRows(ptr, cols, _typed(vals, (None, 4), path, f"{m}_vals"))
        source = meta.get("source_sha256")
        pk = cls(nv, npub, n, vk, a_rows=rows["a"], b_rows=rows["b"], **rest)
        pk.source_sha256 = source if isinstance(source, str) else None
        pk.check_shapes()
        vk.validate()
        fast.g1_validate(np.stack([pk.beta_1, pk.delta_1]))
        pk._mapping = mm
        pk.release_pages()  # the checksum read every page: keep none resident until a proof needs them
        return pk

    def release_array(self, arr: np.ndarray) -> None:
        """Drop the file pages lying wholly inside ``arr`` (a view of this key's mapping, e.g. the
        points of one MSM chunk) once a proof has used them: a channel opening then never has its
        whole key resident at once.  No-op for arrays outside the mapping or without madvise."""
        mm = getattr(self, "_mapping", None)
        if mm is None or not hasattr(mmap, "MADV_DONTNEED") or arr.size == 0:
            return
        try:
            import ctypes

            base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
            start = arr.__array_interface__["data"][0] - base
            end = start + arr.nbytes
            page = mmap.PAGESIZE
            lo, hi = -(-start // page) * page, (end // page) * page
            if 0 <= lo < hi <= len(mm):
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError, TypeError):
            pass

    def release_pages(self) -> None:
        """Drop this key's file pages from the process (they stay in the page cache and come back on
        the next access): a channel-opening key is ~450 MB used once per connection.  No-op for a key
        that is not a memory-mapped file, or where the OS has no madvise."""
        mm = getattr(self, "_mapping", None)
        if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            try:
                mm.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):
                pass


# --------------------------------------------------------------------------- container


def _write(path, kind: int, digest: bytes, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    if len(digest) != 32:
        raise InvalidInput("circuit digest must be 32 bytes")
    table, offset, blobs = [], 0, []
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        pad = (-offset) % _ALIGN
        offset += pad
        blobs.append((pad, arr))
        table.append(
            {
                "name": name,
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": offset,
                "nbytes": int(arr.nbytes),
            }
        )
        offset += arr.nbytes
    h = hashlib.sha256()
    for pad, arr in blobs:
        h.update(bytes(pad))
        h.update(memoryview(arr).cast("B"))
    header = json.dumps(
        {**meta, "arrays": table, "payload_size": offset, "payload_sha256": h.hexdigest()}, sort_keys=True
    ).encode()
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, kind, digest, len(header)) + header
    head += bytes((-len(head)) % _ALIGN)
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as f:
        f.write(head)
        for pad, arr in blobs:
            f.write(bytes(pad))
            f.write(memoryview(arr).cast("B"))
    os.replace(tmp, path)


def _read(path, expect_digest: bytes | None):
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InvalidInput(f"cannot open key file {path}: {e.strerror}") from e
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < _PREFIX.size:
            raise InvalidInput(f"{path}: truncated key file")
        magic, version, kind, digest, hlen = _PREFIX.unpack(f.read(_PREFIX.size))
        if magic != MAGIC:
            raise InvalidInput(f"{path}: not a zkmb Groth16 key file (bad magic)")
        if version != FORMAT_VERSION:
            raise InvalidInput(f"{path}: key format version {version}, this zkmb reads {FORMAT_VERSION}")
        if expect_digest is not None and digest != expect_digest:
            raise InvalidInput(
                f"{path}: key is for another circuit (digest {digest.hex()[:16]}..., "
                f"expected {expect_digest.hex()[:16]}...)"
            )
        if hlen > _MAX_HEADER or _PREFIX.size + hlen > size:
            raise InvalidInput(f"{path}: truncated or corrupt header")
        try:
            header = json.loads(f.read(hlen))
            table = header["arrays"]
            payload_size = int(header["payload_size"])
            want_hash = str(header["payload_sha256"])
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInput(f"{path}: corrupt header") from e
        start = _PREFIX.size + hlen
        start += (-start) % _ALIGN
        if start + payload_size != size:
            raise InvalidInput(f"{path}: file size {size} does not match its header (truncated or padded)")
        # copy-on-write: pages load lazily, and the arrays are writeable so the kernels see the same
        # array types as for in-memory keys (a read-only array would be a second compiled signature)
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    payload = memoryview(mm)[start:]
    if hashlib.sha256(payload).hexdigest() != want_hash:
        raise InvalidInput(f"{path}: payload checksum mismatch (corrupt key file)")
    arrays = {}
    for ent in table:
        try:
            name, dtype, shape = str(ent["name"]), np.dtype(ent["dtype"]), tuple(int(s) for s in ent["shape"])
            off, nbytes = int(ent["offset"]), int(ent["nbytes"])
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"{path}: corrupt array table") from e
        if dtype not in (np.dtype("<u8"), np.dtype("<i8")) or any(s < 0 for s in shape):
            raise InvalidInput(f"{path}: array {name} has an unsupported type")
        if off < 0 or off % _ALIGN or off + nbytes > payload_size or nbytes != int(np.prod(shape)) * 8:
            raise InvalidInput(f"{path}: array {name} lies outside the payload")
        arrays[name] = np.frombuffer(payload, dtype=dtype, count=nbytes // 8, offset=off).reshape(shape)
    return kind, digest, header, arrays, mm


def read_key_header(path: str | os.PathLike) -> tuple[int, bytes, dict]:
    """``(kind, digest, header)`` of a key file from its prefix and JSON header, without reading or
    checking the payload (a cheap look; :meth:`ProvingKey.load` checks everything)."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(_PREFIX.size)
            if len(prefix) != _PREFIX.size:
                raise InvalidInput(f"{path}: truncated key file")
            magic, version, kind, digest, hlen = _PREFIX.unpack(prefix)
            if magic != MAGIC or version != FORMAT_VERSION or hlen > _MAX_HEADER:
                raise InvalidInput(f"{path}: not a zkmb key file of format {FORMAT_VERSION}")
            header = json.loads(f.read(hlen))
    except OSError as e:
        raise InvalidInput(f"cannot read key file {path}: {e.strerror}") from e
    except ValueError as e:
        raise InvalidInput(f"{path}: corrupt header") from e
    if not isinstance(header, dict):
        raise InvalidInput(f"{path}: corrupt header")
    return kind, digest, header


def _typed(arr: np.ndarray, shape: tuple, path, name: str) -> np.ndarray:
    if (
        arr.dtype != np.uint64
        or arr.ndim != len(shape)
        or any(w is not None and s != w for s, w in zip(arr.shape, shape, strict=True))
    ):
        raise InvalidInput(f"{path}: array {name} has shape {arr.shape}, expected {shape}")
    return arr


def _take(arrays: dict, path, spec: dict[str, tuple]) -> dict[str, np.ndarray]:
    out = {}
    for name, shape in spec.items():
        if name not in arrays:
            raise InvalidInput(f"{path}: key file lacks {name}")
        out[name] = _typed(arrays[name], shape, path, name)
    return out
