"""Phase 1 (powers of tau) in snarkjs's ``.ptau`` format: new, contribute, verify, prepare phase 2.

A ptau of power ``k`` holds ``tau^i G1`` (i < 2^(k+1) - 1), ``tau^i G2``, ``alpha tau^i G1``,
``beta tau^i G1`` (i < 2^k), ``beta G2`` and the contribution records (section 7, layout in
``docs/snarkjs-interop.md`` §6). A contribution with secrets (t, a, b) multiplies the points by
``t^i``, ``a t^i``, ``b t^i``, ``b`` and appends a record with the proof of knowledge of each secret
``x``: ``g1_s``, ``g1_sx = x g1_s`` and ``g2_spx = x g2_sp`` where ``g2_sp = hash_to_g2(BLAKE2b(
personalization byte || previous challenge || U(g1_s) || U(g1_sx)))`` (0 = tau, 1 = alpha, 2 = beta).

Hash chain (as snarkjs): the response hash is BLAKE2b(challenge || C(new points) || U(pubkey)), where
C is ffjavascript's compressed encoding; the record stores the BLAKE2b state before the pubkey
("partialHash", 216 bytes, @noble/hashes internal layout). The next challenge is BLAKE2b(response
hash || U(new points)); the first challenge is that of the all-generator file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import time
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit

from ..algebra.params import FR_ROOT_OF_UNITY, FR_TWO_ADICITY, G1_GEN, G2_GEN, P, R
from ..errors import InvalidInput
from .phase2 import hash_to_g2
from .snarkjs import G1_SIZE, G2_SIZE, N8, _uncompressed, _write_binfile, read_ptau_info, read_ptau_points

__all__ = [
    "Ptau",
    "PtauContribution",
    "PtauCheckFailed",
    "PtauReport",
    "read_ptau",
    "write_ptau",
    "ptau_new",
    "ptau_contribute",
    "ptau_single",
    "ptau_verify",
    "ptau_prepare_phase2",
    "first_challenge_hash",
]

PathLike = str | os.PathLike
_PUBKEY_SIZE = 6 * G1_SIZE + 3 * G2_SIZE
_RECORD_FIXED = 3 * G1_SIZE + 2 * G2_SIZE + _PUBKEY_SIZE + 216 + 64 + 8
_HALF_P = (P - 1) // 2
_HALF_LIMBS = np.array([(_HALF_P >> (64 * i)) & ((1 << 64) - 1) for i in range(4)], dtype=np.uint64)


class PtauCheckFailed(InvalidInput):
    """A powers-of-tau file failed verification."""


def _fast():
    from ..algebra import fast

    return fast


# --------------------------------------------------------------------------- BLAKE2b with exposed state

_IV = np.array(
    [
        0x6A09E667F3BCC908,
        0xBB67AE8584CAA73B,
        0x3C6EF372FE94F82B,
        0xA54FF53A5F1D36F1,
        0x510E527FADE682D1,
        0x9B05688C2B3E6C1F,
        0x1F83D9ABFB41BD6B,
        0x5BE0CD19137E2179,
    ],
    dtype=np.uint64,
)
_SIGMA = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
        [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
        [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
        [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
        [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
        [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
        [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
        [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
        [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    ],
    dtype=np.int64,
)


@njit(cache=True, nogil=True, inline="always")
def _rotr(x, n):
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


@njit(cache=True, nogil=True)
def _blake2b_compress(h, blocks, t0, last, iv, sigma):
    """Compress the (k, 16) uint64 message blocks into state h; block j has counter t0 + 128 (j + 1)."""
    v = np.empty(16, dtype=np.uint64)
    for j in range(blocks.shape[0]):
        m = blocks[j]
        for i in range(8):
            v[i] = h[i]
            v[i + 8] = iv[i]
        t = np.uint64(t0 + np.int64(128 * (j + 1)))
        v[12] ^= t
        if last and j == blocks.shape[0] - 1:
            v[14] = ~v[14]
        for r in range(12):
            s = sigma[r % 10]
            for g in range(8):
                if g < 4:
                    a, b, c, d = g, g + 4, g + 8, g + 12
                else:
                    a = g - 4
                    b = 4 + (g - 3) % 4
                    c = 8 + (g - 2) % 4
                    d = 12 + (g - 1) % 4
                x = m[s[2 * g]]
                y = m[s[2 * g + 1]]
                v[a] = v[a] + v[b] + x
                v[d] = _rotr(v[d] ^ v[a], 32)
                v[c] = v[c] + v[d]
                v[b] = _rotr(v[b] ^ v[c], 24)
                v[a] = v[a] + v[b] + y
                v[d] = _rotr(v[d] ^ v[a], 16)
                v[c] = v[c] + v[d]
                v[b] = _rotr(v[b] ^ v[c], 63)
        for i in range(8):
            h[i] ^= v[i] ^ v[i + 8]


class _Blake2b:
    """BLAKE2b-512 whose state can be exported/imported in @noble/hashes's layout (snarkjs partialHash).

    Like noble, the last (possibly full) block stays buffered until more data or the digest arrives.
    """

    def __init__(self) -> None:
        self.h = _IV.copy()
        self.h[0] ^= np.uint64(0x01010040)
        self.buf = bytearray(128)
        self.pos = 0
        self.compressed = 0

    def _compress(self, data: bytes, last: bool = False) -> None:
        blocks = np.frombuffer(data, dtype="<u8").astype(np.uint64).reshape(-1, 16)
        t0 = self.compressed - (128 if last else 0)
        _blake2b_compress(self.h, blocks, np.int64(t0), last, _IV, _SIGMA)
        if not last:
            self.compressed += len(data)

    def update(self, data: bytes) -> _Blake2b:
        data = bytes(data)
        i, n = 0, len(data)
        while i < n:
            if self.pos == 128:
                self._compress(bytes(self.buf))
                self.pos = 0
                k = (n - i - 1) // 128  # full blocks that are not the last of the input
                if k:
                    self._compress(data[i : i + 128 * k])
                    i += 128 * k
            take = min(128 - self.pos, n - i)
            self.buf[self.pos : self.pos + take] = data[i : i + take]
            self.pos += take
            i += take
        return self

    def digest(self) -> bytes:
        h = self.h.copy()
        buf = bytes(self.buf[: self.pos]) + bytes(128 - self.pos)
        blocks = np.frombuffer(buf, dtype="<u8").astype(np.uint64).reshape(1, 16)
        _blake2b_compress(h, blocks, np.int64(self.compressed + self.pos - 128), True, _IV, _SIGMA)
        return h.astype("<u8").tobytes()

    def partial(self) -> bytes:
        """The 216-byte state snarkjs stores (buffer, h as u32 pairs, length - pos, pos)."""
        buf = bytes(self.buf[: self.pos]) + bytes(128 - self.pos)
        tail = struct.pack("<QQ", self.compressed, self.pos) + bytes(8)
        return buf + self.h.astype("<u8").tobytes() + tail

    @classmethod
    def from_partial(cls, st: bytes) -> _Blake2b:
        if len(st) != 216:
            raise InvalidInput("ptau: partial hash must be 216 bytes")
        o = cls()
        o.buf = bytearray(st[:128])
        o.h = np.frombuffer(st[128:192], dtype="<u8").astype(np.uint64)
        o.compressed, o.pos = struct.unpack_from("<QQ", st, 192)
        if o.pos > 128 or o.compressed % 128:
            raise InvalidInput("ptau: malformed partial hash")
        return o


# --------------------------------------------------------------------------- encodings


def _compressed(pts: np.ndarray) -> bytes:
    """ffjavascript's "C" encoding: BE x (an Fq2 as BE(c1) || BE(c0)), 0x80 on the first byte when y is
    "negative" (> (p-1)/2, for Fq2 the sign of c1, or of c0 when c1 = 0), infinity = 0x40 then zeros."""
    n = pts.shape[0]
    if n == 0:
        return b""
    g2 = pts.ndim == 4
    coord = 64 if g2 else 32
    u = np.frombuffer(_uncompressed(pts), dtype=np.uint8).reshape(n, 2 * coord).copy()
    out = u[:, :coord]
    plain = np.empty((pts.size // 4, 4), dtype=np.uint64)
    from ..algebra.kernels import mont

    mont.fq_vec_from_mont(np.ascontiguousarray(pts.reshape(-1, 4)), plain)
    plain = plain.reshape(n, 2, -1, 4)[:, 1]  # y: (n, 1 or 2, 4)

    def neg(limbs):  # limbs (n, 4) plain: > (p-1)/2
        gt = np.zeros(n, dtype=bool)
        eq = np.ones(n, dtype=bool)
        for i in (3, 2, 1, 0):
            gt |= eq & (limbs[:, i] > _HALF_LIMBS[i])
            eq &= limbs[:, i] == _HALF_LIMBS[i]
        return gt

    if g2:
        c0, c1 = plain[:, 0], plain[:, 1]
        c1_zero = ~c1.any(axis=1)
        sign = np.where(c1_zero, neg(c0), neg(c1))
    else:
        sign = neg(plain[:, 0])
    inf = ~pts.reshape(n, -1).any(axis=1)
    out[sign & ~inf, 0] |= 0x80
    out[inf, 0] = 0x40
    return np.ascontiguousarray(out).tobytes()


def _g1(pt) -> np.ndarray:
    return _fast().g1_from_affine([pt])[0]


def _g2(pt) -> np.ndarray:
    return _fast().g2_from_affine([pt])[0]


# --------------------------------------------------------------------------- records and file


@dataclass(frozen=True)
class PtauContribution:
    """One section-7 record; points as Montgomery affine arrays (G1 (2, 4), G2 (2, 2, 4)).

    ``key`` holds (tau, alpha, beta) x (g1_s, g1_sx) as six G1 points and then the three g2_spx."""

    tau_g1: np.ndarray
    tau_g2: np.ndarray
    alpha_g1: np.ndarray
    beta_g1: np.ndarray
    beta_g2: np.ndarray
    key_g1: np.ndarray  # (6, 2, 4): tau s, tau sx, alpha s, alpha sx, beta s, beta sx
    key_g2: np.ndarray  # (3, 2, 2, 4): tau spx, alpha spx, beta spx
    partial_hash: bytes
    next_challenge: bytes
    type: int = 0
    params: bytes = b""

    def encode(self) -> bytes:
        pts = [self.tau_g1, self.tau_g2, self.alpha_g1, self.beta_g1, self.beta_g2, self.key_g1, self.key_g2]
        body = b"".join(np.ascontiguousarray(p).astype("<u8").tobytes() for p in pts)
        return (
            body
            + self.partial_hash
            + self.next_challenge
            + struct.pack("<II", self.type, len(self.params))
            + self.params
        )

    def pubkey_u(self) -> bytes:
        return _uncompressed(self.key_g1) + _uncompressed(self.key_g2)

    def response_hash(self) -> bytes:
        return _Blake2b.from_partial(self.partial_hash).update(self.pubkey_u()).digest()

    @property
    def name(self) -> str:
        p = self.params
        if len(p) >= 2 and p[0] == 1:
            return p[2 : 2 + p[1]].decode("utf-8", "replace")
        return ""


def _parse_contributions(data: bytes) -> list[PtauContribution]:
    if len(data) < 4:
        raise InvalidInput("ptau: contributions section too short")
    (n,) = struct.unpack_from("<I", data, 0)
    pos, out = 4, []

    def take(k: int) -> bytes:
        nonlocal pos
        if pos + k > len(data):
            raise InvalidInput("ptau: contribution record truncated")
        pos += k
        return data[pos - k : pos]

    def pts(k: int, g2: bool) -> np.ndarray:
        shape = (k, 2, 2, 4) if g2 else (k, 2, 4)
        a = np.frombuffer(take(k * (G2_SIZE if g2 else G1_SIZE)), "<u8").astype(np.uint64).reshape(shape)
        return a

    for _ in range(n):
        t1, t2, a1, b1, b2 = (
            pts(1, False)[0],
            pts(1, True)[0],
            pts(1, False)[0],
            pts(1, False)[0],
            pts(1, True)[0],
        )
        k1, k2 = pts(6, False), pts(3, True)
        ph, nc = take(216), take(64)
        typ, plen = struct.unpack("<II", take(8))
        params = take(plen)
        last, q = 0, 0
        while q < len(params):  # sorted (type, value) parameters as snarkjs requires
            if params[q] <= last or params[q] > 3:
                raise InvalidInput("ptau: contribution parameters unknown or not sorted")
            last = params[q]
            if q + 1 >= len(params):
                raise InvalidInput("ptau: contribution parameter truncated")
            q += 2 if params[q] == 2 else 2 + params[q + 1]
        if q != len(params):
            raise InvalidInput("ptau: contribution parameters do not match their length")
        out.append(PtauContribution(t1, t2, a1, b1, b2, k1, k2, ph, nc, typ, params))
    if pos != len(data):
        raise InvalidInput("ptau: unexpected bytes after the contributions")
    return out


@dataclass(eq=False)
class Ptau:
    """A powers-of-tau file in memory (Montgomery affine arrays, as :mod:`zkmb.groth16.snarkjs`).

    ``lagrange`` maps section ids 12-15 to their arrays after :func:`ptau_prepare_phase2` (or empty)."""

    power: int
    ceremony_power: int
    tau_g1: np.ndarray
    tau_g2: np.ndarray
    alpha_tau_g1: np.ndarray
    beta_tau_g1: np.ndarray
    beta_g2: np.ndarray  # (2, 2, 4)
    contributions: list[PtauContribution] = field(default_factory=list)
    lagrange: dict[int, np.ndarray] = field(default_factory=dict)

    def point_sections(self) -> list[tuple[int, np.ndarray]]:
        return [
            (2, self.tau_g1),
            (3, self.tau_g2),
            (4, self.alpha_tau_g1),
            (5, self.beta_tau_g1),
            (6, self.beta_g2[None]),
        ]


def read_ptau(path: PathLike, *, check_points: bool = True) -> Ptau:
    """Read a ``.ptau`` (validated as :func:`read_ptau_info`/:func:`read_ptau_points`; points on the curve
    with ``check_points``) including the contribution records and any Lagrange sections."""
    info = read_ptau_info(path)
    rd = lambda name: read_ptau_points(path, name, check_points=check_points)  # noqa: E731
    off, size = info.sections[7]
    with open(path, "rb") as f:
        f.seek(off)
        contrib = f.read(size)
    lag = {}
    if info.prepared:
        for sid, name in ((12, "tau_g1"), (13, "tau_g2"), (14, "alpha_tau_g1"), (15, "beta_tau_g1")):
            lag[sid] = rd("lagrange_" + name)
    return Ptau(
        info.power,
        info.ceremony_power,
        rd("tau_g1"),
        rd("tau_g2"),
        rd("alpha_tau_g1"),
        rd("beta_tau_g1"),
        rd("beta_g2")[0],
        _parse_contributions(contrib),
        lag,
    )


def write_ptau(path: PathLike, pt: Ptau) -> None:
    """Write ``pt`` as a snarkjs ``.ptau`` (sections 1-7, then 12-15 when present), atomically."""
    hdr = struct.pack("<I", N8) + P.to_bytes(N8, "little") + struct.pack("<II", pt.power, pt.ceremony_power)
    contrib = struct.pack("<I", len(pt.contributions)) + b"".join(c.encode() for c in pt.contributions)
    sections = [(1, [hdr])]
    sections += [(sid, [np.ascontiguousarray(a)]) for sid, a in pt.point_sections()]
    sections.append((7, [contrib]))
    sections += [(sid, [np.ascontiguousarray(pt.lagrange[sid])]) for sid in sorted(pt.lagrange)]
    _write_binfile(path, b"ptau", 1, sections)


def first_challenge_hash(power: int) -> bytes:
    """snarkjs's first challenge: BLAKE2b(BLAKE2b() || U of the all-generator sections 2-6)."""
    u1 = _uncompressed(_g1(G1_GEN)[None])
    u2 = _uncompressed(_g2(G2_GEN)[None])
    h = hashlib.blake2b(digest_size=64)
    h.update(hashlib.blake2b(digest_size=64).digest())
    n = 2**power
    h.update(u1 * (2 * n - 1))
    h.update(u2 * n)
    h.update(u1 * (2 * n))
    h.update(u2)
    return h.digest()


def ptau_new(power: int) -> Ptau:
    """The starting accumulator of ``powersoftau new bn128 power``: every point the generator."""
    if not 1 <= power <= FR_TWO_ADICITY - 1:
        raise InvalidInput(f"ptau: power {power} out of range")
    n = 2**power
    g1, g2 = _g1(G1_GEN), _g2(G2_GEN)
    return Ptau(
        power,
        power,
        np.tile(g1, (2 * n - 1, 1, 1)),
        np.tile(g2, (n, 1, 1, 1)),
        np.tile(g1, (n, 1, 1)),
        np.tile(g1, (n, 1, 1)),
        g2.copy(),
    )


def _powers(x: int, first: int, n: int) -> list[int]:
    out, v = [], first % R
    for _ in range(n):
        out.append(v)
        v = v * x % R
    return out


def _g2_sp(pers: int, challenge: bytes, g1_s: np.ndarray, g1_sx: np.ndarray) -> np.ndarray:
    h = hashlib.blake2b(bytes([pers]) + challenge + _uncompressed(g1_s[None]) + _uncompressed(g1_sx[None]))
    return _g2(hash_to_g2(h.digest()))


def _last_challenge(pt: Ptau) -> bytes:
    return (
        pt.contributions[-1].next_challenge if pt.contributions else first_challenge_hash(pt.ceremony_power)
    )


def ptau_contribute(
    pt: Ptau, *, name: str = "", entropy: bytes = b"", secrets_: tuple[int, int, int] | None = None
) -> Ptau:
    """A new accumulator with one more contribution (tau, alpha, beta from the OS CSPRNG mixed with
    ``entropy``; ``secrets_`` fixes them, for tests only). The result drops any Lagrange sections
    (prepare again). Passes ``snarkjs powersoftau verify`` when the input did."""
    f = _fast()
    if pt.power != pt.ceremony_power:
        raise InvalidInput("ptau: cannot contribute to a reduced file")
    if secrets_ is None:
        seed = hashlib.blake2b(os.urandom(64) + entropy, digest_size=64).digest()
        vals = [
            int.from_bytes(hashlib.blake2b(seed + bytes([i])).digest(), "big") % (R - 1) + 1 for i in range(3)
        ]
        t, a, b = vals
    else:
        t, a, b = secrets_
    for x in (t, a, b):
        if not 0 < x < R:
            raise InvalidInput("ptau: contribution secrets must be in [1, r)")
    n = 2**pt.power
    new = Ptau(
        pt.power,
        pt.ceremony_power,
        f.g1_mul(pt.tau_g1, _powers(t, 1, 2 * n - 1)),
        f.g2_mul(pt.tau_g2, _powers(t, 1, n)),
        f.g1_mul(pt.alpha_tau_g1, _powers(t, a, n)),
        f.g1_mul(pt.beta_tau_g1, _powers(t, b, n)),
        f.g2_mul(pt.beta_g2[None], [b])[0],
        list(pt.contributions),
    )
    return _with_record(new, t, a, b, name)


def _with_record(new: Ptau, t: int, a: int, b: int, name: str) -> Ptau:
    """Append the contribution record of secrets (t, a, b) to ``new``, whose sections already carry them
    (proofs of knowledge bound to the previous challenge, response and next-challenge hashes)."""
    f = _fast()
    challenge = _last_challenge(new)  # the record is not appended yet: the previous one's
    key_g1, key_g2 = [], []
    for pers, x in enumerate((t, a, b)):
        s = 1 + secrets.randbelow(R - 1)
        g1_s, g1_sx = f.g1_mul_generator([s, s * x % R])
        key_g1 += [g1_s, g1_sx]
        key_g2.append(f.g2_mul(_g2_sp(pers, challenge, g1_s, g1_sx)[None], [x])[0])
    resp = _Blake2b().update(challenge)
    for _, arr in new.point_sections():
        resp.update(_compressed(arr))
    partial = resp.partial()
    kg1, kg2 = np.stack(key_g1), np.stack(key_g2)
    response = resp.update(_uncompressed(kg1) + _uncompressed(kg2)).digest()
    nxt = hashlib.blake2b(response, digest_size=64)
    for _, arr in new.point_sections():
        nxt.update(_uncompressed(arr))
    params = b""
    if name:
        nb = name[:64].encode()[:255]
        params = bytes([1, len(nb)]) + nb
    rec = PtauContribution(
        new.tau_g1[1],
        new.tau_g2[1],
        new.alpha_tau_g1[0],
        new.beta_tau_g1[0],
        new.beta_g2,
        kg1,
        kg2,
        partial,
        nxt.digest(),
        0,
        params,
    )
    new.contributions.append(rec)
    return new


def ptau_single(
    power: int, *, name: str = "", secrets_: tuple[int, int, int] | None = None, prepare: bool = True
) -> Ptau:
    """``ptau_prepare_phase2(ptau_contribute(ptau_new(power)))`` computed fast: with a single
    contribution every point is a known multiple of a generator, so the powers and the Lagrange
    sections (scalar inverse NTTs of the powers) are made with the fixed-base comb instead of
    variable-base and group-FFT work (seconds instead of hours at power 18-21).  Every section equals the
    slow path's with the same secrets (tested; the record's proofs of knowledge use fresh randomness
    either way) and the file passes :func:`ptau_verify`; OS randomness when ``secrets_`` is None.
    A one-party phase 1: for benchmarks, development and an operator's own keys (whose client check
    needs well-formedness only, docs/setup.md), not a ceremony."""
    from ..algebra import fast as F
    from ..algebra.fast import curves as C

    if not 1 <= power <= FR_TWO_ADICITY - 1:
        raise InvalidInput(f"ptau: power {power} out of range")
    if secrets_ is None:
        secrets_ = tuple(1 + secrets.randbelow(R - 1) for _ in range(3))  # type: ignore[assignment]
    t, a, b = secrets_
    # the sections first (the record's hashes cover them), then the record as a contribution makes it
    n = 2**power

    def comb_g1(vals: np.ndarray) -> np.ndarray:
        return C._G1.mul_generator_limbs(F.fr_from_mont_limbs(vals))

    def comb_g2(vals: np.ndarray) -> np.ndarray:
        return C._G2.mul_generator_limbs(F.fr_from_mont_limbs(vals))

    pw = F.fr_from_ints(_powers(t, 1, 2 * n))  # tau^0 .. tau^(2n-1) (the last only for Lagrange)
    a_pw = F.fr_mul(pw[:n], np.tile(F.fr_from_ints([a]), (n, 1)))
    b_pw = F.fr_mul(pw[:n], np.tile(F.fr_from_ints([b]), (n, 1)))
    pt = Ptau(
        power,
        power,
        comb_g1(pw[: 2 * n - 1]),
        comb_g2(pw[:n]),
        comb_g1(a_pw),
        comb_g1(b_pw),
        F.g2_mul_generator([b])[0],
    )
    pt = _with_record(pt, t, a, b, name)
    if not prepare:
        return pt
    lag = {}
    for sid, src, kmax, comb in (
        (12, pw[: 2 * n - 1], power + 1, comb_g1),
        (13, pw[:n], power, comb_g2),
        (14, a_pw, power, comb_g1),
        (15, b_pw, power, comb_g1),
    ):
        blocks = []
        for j in range(kmax + 1):
            m = 2**j
            block = np.zeros((m, 4), dtype=np.uint64)
            block[: min(m, src.shape[0])] = src[:m]  # tauG1's missing last power counts as 0
            blocks.append(comb(F.intt(block)) if m > 1 else comb(block))
        lag[sid] = np.ascontiguousarray(np.concatenate(blocks))
    return replace(pt, lagrange=lag)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class PtauReport:
    power: int
    n_contributions: int
    prepared: bool
    names: list[str]
    timings: dict[str, float]


def _fail(msg: str) -> None:
    raise PtauCheckFailed(msg)


def _same_ratio(a1, b1, a2, b2) -> bool:
    """e(a1, b2) == e(b1, a2) with none of the four points infinity."""
    f = _fast()
    if not (a1.any() and b1.any() and a2.any() and b2.any()):
        return False
    return f.pairing_check(np.stack([a1, f.g1_neg(b1[None])[0]]), np.stack([b2, a2]))


def _random_fr(n: int) -> np.ndarray:
    a = np.frombuffer(os.urandom(32 * n), dtype="<u8").reshape(n, 4).astype(np.uint64)
    a[:, 3] &= np.uint64((1 << 61) - 1)
    return a


def _eq(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b)


def _check_record(i: int, cur: PtauContribution, prev: dict, challenge: bytes) -> None:
    f = _fast()
    if cur.type == 1:
        _fail(f"ptau contribution {i + 1}: beacon contributions are not supported by this verifier")
    for nm, arr in (
        ("tauG1", cur.tau_g1[None]),
        ("alphaG1", cur.alpha_g1[None]),
        ("betaG1", cur.beta_g1[None]),
    ):
        if not arr.any() or not f.g1_is_on_curve(arr)[0]:
            _fail(f"ptau contribution {i + 1}: {nm} is infinity or not on G1")
    if not f.g1_is_on_curve(cur.key_g1).all():
        _fail(f"ptau contribution {i + 1}: a public-key G1 point is not on the curve")
    g2s = np.concatenate([cur.tau_g2[None], cur.beta_g2[None], cur.key_g2])
    if not f.g2_in_subgroup(g2s).all():
        _fail(f"ptau contribution {i + 1}: a G2 point is not in G2")
    sp = [_g2_sp(k, challenge, cur.key_g1[2 * k], cur.key_g1[2 * k + 1]) for k in range(3)]
    for k, nm in enumerate(("tau", "alpha", "beta")):
        if not _same_ratio(cur.key_g1[2 * k], cur.key_g1[2 * k + 1], sp[k], cur.key_g2[k]):
            _fail(f"ptau contribution {i + 1}: proof of knowledge of {nm} fails")
    checks = [
        (prev["tau_g1"], cur.tau_g1, sp[0], cur.key_g2[0], "tau*G1"),
        (cur.key_g1[0], cur.key_g1[1], prev["tau_g2"], cur.tau_g2, "tau*G2"),
        (prev["alpha_g1"], cur.alpha_g1, sp[1], cur.key_g2[1], "alpha*G1"),
        (prev["beta_g1"], cur.beta_g1, sp[2], cur.key_g2[2], "beta*G1"),
        (cur.key_g1[4], cur.key_g1[5], prev["beta_g2"], cur.beta_g2, "beta*G2"),
    ]
    for a1, b1, a2, b2, nm in checks:
        if not _same_ratio(a1, b1, a2, b2):
            _fail(f"ptau contribution {i + 1}: {nm} does not follow the previous contribution")


def _lagrange_check(g: str, tau: np.ndarray, lag: np.ndarray, kmax: int, truncated_last: bool) -> bool:
    """One random combination over all block sizes 2^k, k <= kmax: sum_k sum_i r^(k)_i T_i equals
    sum_k sum_i ntt(r^(k))_i L^(k)_i (block 2^kmax with the missing last power when truncated)."""
    f = _fast()
    msm = f.msm_g1 if g == "g1" else f.msm_g2
    coef_t = np.zeros((2**kmax, 4), dtype=np.uint64)
    coef_l = np.empty((2 ** (kmax + 1) - 1, 4), dtype=np.uint64)
    for k in range(kmax + 1):
        m = 2**k
        r = _random_fr(m)
        if truncated_last and k == kmax:
            r[m - 1] = 0
        coef_t[:m] = f.fr_add(coef_t[:m], r)
        coef_l[m - 1 : 2 * m - 1] = f.ntt(r)
    nt = tau.shape[0]
    lhs = msm(tau, coef_t[:nt])
    rhs = msm(lag, coef_l)
    neg = f.g1_neg(rhs) if g == "g1" else f.g2_neg(rhs)
    tot = f.g1_add(lhs, neg) if g == "g1" else f.g2_add(lhs, neg)
    return not tot.any()


def ptau_verify(pt: Ptau | PathLike, *, require_contribution: bool = True) -> PtauReport:
    """Check a powers-of-tau accumulator; raise :class:`PtauCheckFailed` on any failure.

    Checks: every record's proofs of knowledge (with ``g2_sp`` bound to the previous challenge) and
    that its tau/alpha/beta points follow the previous record's by the proven ratios; the point
    sections against the last record (first elements) and as consistent powers with random linear
    combinations: ``e(sum r_i T_(i+1), G2) = e(sum r_i T_i, tau G2)`` for tauG1, alphaTauG1, betaTauG1
    and the G2 analogue for tauG2 (r_i uniform < 2^253, OS CSPRNG); the last record's next challenge
    equal to the hash of the points; the Lagrange sections (when present) as the inverse FFTs of the
    powers, one random combination per section. G2 point sections are on-curve checked, and the
    record G2 points subgroup-checked. A file without contributions is refused unless
    ``require_contribution`` is false.
    """
    f = _fast()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if not isinstance(pt, Ptau):
        pt = read_ptau(pt)
    timings["read"] = time.perf_counter() - t0
    n = 2**pt.power
    g1, g2 = _g1(G1_GEN), _g2(G2_GEN)
    if pt.tau_g1.shape[0] != 2 * n - 1 or pt.tau_g2.shape[0] != n:
        _fail("ptau: section sizes do not match the power")
    prev = {"tau_g1": g1, "tau_g2": g2, "alpha_g1": g1, "beta_g1": g1, "beta_g2": g2}
    challenge = first_challenge_hash(pt.ceremony_power)
    if not pt.contributions and require_contribution:
        _fail("ptau: no contributions (the toxic waste is known: tau = 1)")
    for i, c in enumerate(pt.contributions):
        _check_record(i, c, prev, challenge)
        prev = {"tau_g1": c.tau_g1, "tau_g2": c.tau_g2, "alpha_g1": c.alpha_g1, "beta_g1": c.beta_g1}
        prev["beta_g2"] = c.beta_g2
        challenge = c.next_challenge
    timings["contributions"] = time.perf_counter() - t0 - timings["read"]
    last = prev
    if not _eq(pt.tau_g1[0], g1) or not _eq(pt.tau_g2[0], g2):
        _fail("ptau: the first tau point is not the generator")
    if not _eq(pt.tau_g1[1], last["tau_g1"]) or not _eq(pt.tau_g2[1], last["tau_g2"]):
        _fail("ptau: tau G1/G2 does not match the last contribution")
    if not _eq(pt.alpha_tau_g1[0], last["alpha_g1"]) or not _eq(pt.beta_tau_g1[0], last["beta_g1"]):
        _fail("ptau: alpha G1 / beta G1 does not match the last contribution")
    if not _eq(pt.beta_g2, last["beta_g2"]):
        _fail("ptau: beta G2 does not match the last contribution")
    for nm, arr in (("tauG1", pt.tau_g1), ("alphaTauG1", pt.alpha_tau_g1), ("betaTauG1", pt.beta_tau_g1)):
        if not arr.reshape(arr.shape[0], -1).any(axis=1).all():
            _fail(f"ptau: {nm} holds the point at infinity")
        r = _random_fr(arr.shape[0] - 1)
        if not _same_ratio(f.msm_g1(arr[:-1], r)[0], f.msm_g1(arr[1:], r)[0], g2, pt.tau_g2[1]):
            _fail(f"ptau: {nm} section: powers do not match")
    r = _random_fr(n - 1)
    if not _same_ratio(g1, pt.tau_g1[1], f.msm_g2(pt.tau_g2[:-1], r)[0], f.msm_g2(pt.tau_g2[1:], r)[0]):
        _fail("ptau: tauG2 section: powers do not match")
    timings["powers"] = time.perf_counter() - t0 - timings["read"] - timings["contributions"]
    if pt.contributions and pt.power == pt.ceremony_power:
        h = hashlib.blake2b(pt.contributions[-1].response_hash(), digest_size=64)
        for _, arr in pt.point_sections():
            h.update(_uncompressed(arr))
        if h.digest() != pt.contributions[-1].next_challenge:
            _fail("ptau: the points do not hash to the last contribution's next challenge")
    if pt.lagrange:
        if sorted(pt.lagrange) != [12, 13, 14, 15]:
            _fail("ptau: Lagrange sections incomplete")
        t1 = time.perf_counter()
        k = pt.power
        for sid, g, src, kmax, trunc in (
            (12, "g1", pt.tau_g1, k + 1, True),
            (13, "g2", pt.tau_g2, k, False),
            (14, "g1", pt.alpha_tau_g1, k, False),
            (15, "g1", pt.beta_tau_g1, k, False),
        ):
            if not _lagrange_check(g, src, pt.lagrange[sid], kmax, trunc):
                _fail(f"ptau: Lagrange section {sid} is not the inverse FFT of the powers")
        timings["lagrange"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    names = [c.name for c in pt.contributions]
    return PtauReport(pt.power, len(pt.contributions), bool(pt.lagrange), names, timings)


# --------------------------------------------------------------------------- prepare phase 2


def _bitrev(k: int) -> np.ndarray:
    idx = np.arange(2**k)
    rev = np.zeros_like(idx)
    for b in range(k):
        rev |= ((idx >> b) & 1) << (k - 1 - b)
    return rev


def _group_intt(g: str, pts: np.ndarray) -> np.ndarray:
    """(1/M) sum_j P_j w^(-ij) for the M = 2^k points (radix-2 DIT over the group, vectorised per
    stage with the fast scalar-multiplication and addition kernels; twiddle 1 skipped)."""
    f = _fast()
    mul, add, neg = (f.g1_mul, f.g1_add, f.g1_neg) if g == "g1" else (f.g2_mul, f.g2_add, f.g2_neg)
    m = pts.shape[0]
    k = m.bit_length() - 1
    a = mul(pts, [pow(m, -1, R)] * m)[_bitrev(k)] if m > 1 else mul(pts, [1])
    winv = pow(pow(FR_ROOT_OF_UNITY, 2 ** (FR_TWO_ADICITY - k), R), -1, R) if k else 1
    half = 1
    while half < m:
        wl = pow(winv, m // (2 * half), R)
        tw = _powers(wl, 1, half)
        a = a.reshape(m // (2 * half), 2, half, *a.shape[1:])
        lo = a[:, 0].reshape(-1, *a.shape[3:])
        hi = a[:, 1].reshape(-1, *a.shape[3:])
        tws = tw * (m // (2 * half))
        hw = hi.copy()
        nz = [j for j, w in enumerate(tws) if w != 1]
        if nz:
            hw[nz] = mul(hi[nz], [tws[j] for j in nz])
        top = add(lo, hw)
        bot = add(lo, neg(hw))
        a = np.stack(
            [
                top.reshape(m // (2 * half), half, *a.shape[3:]),
                bot.reshape(m // (2 * half), half, *a.shape[3:]),
            ],
            axis=1,
        ).reshape(m, *a.shape[3:])
        half *= 2
    return np.ascontiguousarray(a)


def ptau_prepare_phase2(pt: Ptau) -> Ptau:
    """Add sections 12-15 (``powersoftau prepare phase2``): for every block size 2^j the Lagrange points
    ``L_i(tau)`` = inverse FFT of the first 2^j powers (tauG1 up to 2^(power+1), its missing last
    power taken as infinity)."""
    k = pt.power
    lag = {}
    for sid, g, src, kmax in (
        (12, "g1", pt.tau_g1, k + 1),
        (13, "g2", pt.tau_g2, k),
        (14, "g1", pt.alpha_tau_g1, k),
        (15, "g1", pt.beta_tau_g1, k),
    ):
        blocks = []
        for j in range(kmax + 1):
            m = 2**j
            block = src[:m]
            if block.shape[0] < m:
                block = np.concatenate(
                    [block, np.zeros((m - block.shape[0], *src.shape[1:]), dtype=np.uint64)]
                )
            blocks.append(_group_intt(g, block))
        lag[sid] = np.ascontiguousarray(np.concatenate(blocks))
    return replace(pt, lagrange=lag, contributions=list(pt.contributions))
