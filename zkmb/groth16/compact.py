"""Compact proving-key files for distribution: compressed points, no points at infinity, no R1CS rows.

A client downloads ``NAME.pkc`` instead of the full ``NAME.pk`` (:mod:`zkmb.groth16.keys`): every point
in the compressed form of :mod:`zkmb.algebra.serialize` (x and a sign flag: 32 bytes per G1 point, 64 per
G2 point, against 64/128 in the full file), points at infinity left out (a presence bitmap per array says
which), and no QAP rows: the client compiles the circuit from its own code, checks the file's circuit
digest against it and rebuilds the rows (:func:`~zkmb.groth16.r1cs_to_qap.qap_matrices`).  Decompression
(:func:`read_compact_pk`) validates every point exactly (canonical x, flags, on the curve, G2 points in
the subgroup, no infinity where the bitmap says a point is present) and the client writes the result once
as a full key file, its decompressed cache, which later starts memory-map (``source_sha256`` in its header
names the compact file it came from).

Layout (integers little-endian)::

    magic    8 bytes  b"ZKMBPKC\\0"
    version  u32      COMPACT_VERSION
    flags    u32      0
    digest   32 bytes the circuit digest
    hlen     u64      length of the JSON header
    header   JSON     {"n_vars", "n_public", "domain_size", "present": [one count per array],
                       "payload_sha256"}
    payload  per array, in the order of :data:`ARRAYS`: its presence bitmap (ceil(count / 8) bytes, bit
             i & 7 of byte i >> 3 set when point i is not infinity, unused bits zero), then its present
             points, compressed, in index order

The arrays and their lengths follow from the three counts (``n_vars`` wires, ``n_public`` public inputs,
domain ``n``): alpha_1, beta_1, delta_1 (G1, 1), beta_2, gamma_2, delta_2 (G2, 1), ic (G1, n_public + 1),
a, b1 (G1, n_vars), b2 (G2, n_vars), c (G1, n_vars - n_public - 1), h (G1, n).  The single points must be
present (not infinity).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InvalidInput
from .keys import ProvingKey, VerifyingKey

__all__ = [
    "ARRAYS",
    "COMPACT_MAGIC",
    "COMPACT_VERSION",
    "compact_file_header",
    "read_compact_pk",
    "write_compact_pk",
]

COMPACT_MAGIC = b"ZKMBPKC\0"
COMPACT_VERSION = 1
_PREFIX = struct.Struct("<8sII32sQ")
_MAX_HEADER = 1 << 16
_MAX_COUNT = 1 << 28
_G2_WEIGHT = 10
"""Progress units per G2 point (one G1 point is 1): a G2 decompression costs about ten G1 ones."""

ARRAYS: tuple[tuple[str, int], ...] = (
    ("alpha_1", 1),
    ("beta_1", 1),
    ("delta_1", 1),
    ("beta_2", 2),
    ("gamma_2", 2),
    ("delta_2", 2),
    ("ic", 1),
    ("a", 1),
    ("b1", 1),
    ("b2", 2),
    ("c", 1),
    ("h", 1),
)
"""(name, group) of every array in file order."""
_SINGLE = {"alpha_1", "beta_1", "delta_1", "beta_2", "gamma_2", "delta_2"}


def _counts(nv: int, npub: int, n: int) -> dict[str, int]:
    return {
        **dict.fromkeys(("alpha_1", "beta_1", "delta_1", "beta_2", "gamma_2", "delta_2"), 1),
        "ic": npub + 1,
        "a": nv,
        "b1": nv,
        "b2": nv,
        "c": nv - npub - 1,
        "h": n,
    }


def _arrays(pk: ProvingKey) -> dict[str, np.ndarray]:
    vk = pk.vk
    return {
        "alpha_1": vk.alpha_1.reshape(1, 2, 4),
        "beta_1": pk.beta_1.reshape(1, 2, 4),
        "delta_1": pk.delta_1.reshape(1, 2, 4),
        "beta_2": vk.beta_2.reshape(1, 2, 2, 4),
        "gamma_2": vk.gamma_2.reshape(1, 2, 2, 4),
        "delta_2": vk.delta_2.reshape(1, 2, 2, 4),
        "ic": vk.ic,
        "a": pk.a,
        "b1": pk.b1,
        "b2": pk.b2,
        "c": pk.c,
        "h": pk.h,
    }


def write_compact_pk(pk: ProvingKey, path: str | os.PathLike) -> dict:
    """Write ``pk`` as a compact file (atomically); returns ``{"bytes", "sha256"}`` of the file.
    The key is our own (from a setup or a checked file): its points are not re-validated."""
    from ..algebra.serialize import g1_compress_many, g2_compress_many

    pk.check_shapes()
    arrays = _arrays(pk)
    present, blobs = [], []
    for name, group in ARRAYS:
        arr = np.ascontiguousarray(arrays[name])
        mask = arr.reshape(arr.shape[0], -1).any(axis=1)
        if name in _SINGLE and not mask.all():
            raise InvalidInput(f"compact key: {name} is infinity")
        pts = np.ascontiguousarray(arr[mask])
        blobs.append(np.packbits(mask, bitorder="little").tobytes())
        blobs.append(g1_compress_many(pts) if group == 1 else g2_compress_many(pts))
        present.append(int(mask.sum()))
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    header = json.dumps(
        {
            "n_vars": pk.n_vars,
            "n_public": pk.n_public,
            "domain_size": pk.domain_size,
            "present": present,
            "payload_sha256": h.hexdigest(),
        },
        sort_keys=True,
    ).encode()
    tmp = Path(f"{path}.tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as f:
        for part in (_PREFIX.pack(COMPACT_MAGIC, COMPACT_VERSION, 0, pk.digest, len(header)), header, *blobs):
            f.write(part)
            digest.update(part)
    os.replace(tmp, path)
    return {"bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def compact_file_header(path: str | os.PathLike) -> tuple[bytes, dict]:
    """``(circuit digest, header)`` of a compact key file (prefix and JSON only); InvalidInput if it is
    not one."""
    try:
        with open(path, "rb") as f:
            return _parse_head(f.read(_PREFIX.size + _MAX_HEADER), path)[:2]
    except OSError as e:
        raise InvalidInput(f"cannot read compact key file {path}: {e.strerror}") from e


def _parse_head(data, path) -> tuple[bytes, dict, int]:
    if len(data) < _PREFIX.size:
        raise InvalidInput(f"{path}: truncated compact key file")
    magic, version, flags, digest, hlen = _PREFIX.unpack(bytes(data[: _PREFIX.size]))
    if magic != COMPACT_MAGIC:
        raise InvalidInput(f"{path}: not a zkmb compact proving key (bad magic)")
    if version != COMPACT_VERSION or flags != 0:
        raise InvalidInput(f"{path}: compact key version {version}, this zkmb reads {COMPACT_VERSION}")
    if hlen > _MAX_HEADER or _PREFIX.size + hlen > len(data):
        raise InvalidInput(f"{path}: truncated or corrupt header")
    try:
        header = json.loads(bytes(data[_PREFIX.size : _PREFIX.size + hlen]))
        nv, npub, n = (header[k] for k in ("n_vars", "n_public", "domain_size"))
        present = header["present"]
        str(header["payload_sha256"])
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidInput(f"{path}: corrupt header") from e
    ints = [nv, npub, n, *present] if isinstance(present, list) else []
    if (
        len(ints) != 3 + len(ARRAYS)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
        or not (0 <= npub < nv <= _MAX_COUNT)
        or not (0 < n <= _MAX_COUNT)
        or n & (n - 1)
    ):
        raise InvalidInput(f"{path}: inconsistent key counts")
    return digest, header, _PREFIX.size + hlen


def read_compact_pk(
    path: str | os.PathLike,
    cs,
    *,
    expect_digest: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ProvingKey:
    """Decompress a compact key file for the compiled circuit ``cs`` into an in-memory
    :class:`ProvingKey` (QAP rows rebuilt from ``cs``; ``source_sha256`` = the file's SHA-256).

    Checks: format, the header's counts against ``cs`` (wires, public inputs, domain), the digest
    (``expect_digest``, default ``cs.digest()``), the payload checksum and size, canonical bitmaps, the
    single points present, and every point exactly (canonical, flags, on its curve, G2 points in G2).
    ``progress(done, total)`` in work units (a G1 point 1, a G2 point 10).  Raises InvalidInput (an
    InvalidPoint for a bad point) naming the array and the point."""
    from ..algebra.serialize import g1_decompress_many, g2_decompress_many
    from .r1cs_to_qap import domain_size_for, qap_matrices

    want_digest = cs.digest() if expect_digest is None else expect_digest
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InvalidInput(f"cannot read compact key file {path}: {e.strerror}") from e
    size = len(raw)
    if size < _PREFIX.size:
        raise InvalidInput(f"{path}: truncated compact key file")
    buf = memoryview(raw)
    file_sha = hashlib.sha256(buf).hexdigest()
    digest, header, start = _parse_head(buf[: _PREFIX.size + _MAX_HEADER], path)
    if digest != want_digest:
        raise InvalidInput(
            f"{path}: key is for another circuit (digest {digest.hex()[:16]}..., "
            f"expected {want_digest.hex()[:16]}...)"
        )
    nv, npub, n = header["n_vars"], header["n_public"], header["domain_size"]
    want = (cs.n_wires, cs.n_public, domain_size_for(cs.n_constraints, cs.n_public))
    if (nv, npub, n) != want:
        raise InvalidInput(
            f"{path}: {nv} wires, {npub} public inputs, domain {n}; the circuit has {want[0]}, "
            f"{want[1]}, {want[2]} (a key for another circuit?)"
        )
    counts = _counts(nv, npub, n)
    present = dict(zip((a for a, _ in ARRAYS), header["present"], strict=True))
    layout, off = [], start
    for name, group in ARRAYS:
        cnt, k = counts[name], present[name]
        if not 0 <= k <= cnt or (name in _SINGLE and k != 1):
            raise InvalidInput(f"{path}: {name} has {k} of {cnt} points present")
        nb = (cnt + 7) // 8
        layout.append((name, group, cnt, k, off, off + nb))
        off += nb + k * (32 if group == 1 else 64)
    if off != size:
        raise InvalidInput(f"{path}: file size {size}, its header implies {off} (truncated or padded)")
    if hashlib.sha256(buf[start:]).hexdigest() != header["payload_sha256"]:
        raise InvalidInput(f"{path}: payload checksum mismatch (corrupt compact key file)")
    total = sum(k * (1 if g == 1 else _G2_WEIGHT) for _, g, _, k, _, _ in layout)
    done = 0
    out: dict[str, np.ndarray] = {}
    for name, group, cnt, k, boff, poff in layout:
        bits = np.frombuffer(buf[boff:poff], dtype=np.uint8)
        mask = np.unpackbits(bits, bitorder="little")[:cnt].astype(bool)
        if int(mask.sum()) != k or np.unpackbits(bits, bitorder="little")[cnt:].any():
            raise InvalidInput(f"{path}: {name}: the presence bitmap does not match the header")
        shape = (cnt, 2, 4) if group == 1 else (cnt, 2, 2, 4)
        arr = np.zeros(shape, dtype=np.uint64)
        idx = np.flatnonzero(mask)
        psize, decode = (32, g1_decompress_many) if group == 1 else (64, g2_decompress_many)
        chunk = 1 << 16 if group == 1 else 1 << 13
        for c0 in range(0, k, chunk):
            c1 = min(k, c0 + chunk)
            data = np.frombuffer(buf[poff + c0 * psize : poff + c1 * psize], dtype=np.uint8)
            try:
                arr[idx[c0:c1]] = decode(data, c1 - c0, base=c0)
            except InvalidInput as e:
                raise type(e)(f"{path}: {name}: {e} (point {int(idx[c0])} + ...)") from e
            done += (c1 - c0) * (1 if group == 1 else _G2_WEIGHT)
            if progress is not None:
                progress(done, total)
        out[name] = arr
    del buf, raw
    a_rows, b_rows, _ = qap_matrices(cs)
    vk = VerifyingKey(
        alpha_1=out["alpha_1"][0],
        beta_2=out["beta_2"][0],
        gamma_2=out["gamma_2"][0],
        delta_2=out["delta_2"][0],
        ic=out["ic"],
        digest=digest,
    )
    pk = ProvingKey(
        nv,
        npub,
        n,
        vk,
        beta_1=out["beta_1"][0],
        delta_1=out["delta_1"][0],
        a=out["a"],
        b1=out["b1"],
        b2=out["b2"],
        c=out["c"],
        h=out["h"],
        a_rows=a_rows,
        b_rows=b_rows,
    )
    pk.source_sha256 = file_sha
    pk.check_shapes()
    return pk
