"""Groth16 phase 2 (circuit-specific delta) contributions in snarkjs's format.

A contribution with secret ``x`` multiplies ``delta_1``, ``delta_2`` by ``x`` and the C ("L") and H
queries by ``1/x``, and appends to section 10 the record ``deltaAfter, g1_s, g1_sx = x g1_s,
g2_spx = x g2_sp, transcript`` where ``transcript = BLAKE2b-512(csHash || previous records ||
U(g1_s) || U(g1_sx))`` and ``g2_sp = hash_to_g2(transcript)`` (snarkjs's ChaCha-seeded map, reproduced
bit for bit so that ``snarkjs zkey verify`` accepts our contributions and we check theirs). The pair
``(g1_s, g1_sx)`` with ``g2_spx`` is a proof of knowledge of ``x`` bound to the transcript.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass, replace

import numpy as np

from ..algebra.params import B_G2, G1_GEN, P, R
from ..errors import InvalidInput
from .snarkjs import G1_SIZE, G2_SIZE, ZkeyGroth16, _uncompressed

__all__ = ["Contribution", "hash_to_g2", "parse_contributions", "verify_contributions", "contribute"]

_G2_COFACTOR = 0x30644E72E131A029B85045B68181585E06CEECDA572A2489345F2299C0F9FA8D
_RINV_P = pow(1 << 256, -1, P)
_MASK254 = (1 << 254) - 1


# --------------------------------------------------------------------------- ChaCha and Fq2 (pure Python)


def _rotl(v: int, c: int) -> int:
    return ((v << c) | (v >> (32 - c))) & 0xFFFFFFFF


class _ChaCha:
    """ffjavascript's ChaCha20 stream (seeded with 8 u32 words, counter in word 12, 10 double rounds)."""

    def __init__(self, seed: list[int]):
        self.state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *seed, 0, 0, 0, 0]
        self.buf: list[int] = []
        self.idx = 16

    def _update(self) -> None:
        x = list(self.state)

        def qr(a: int, b: int, c: int, d: int) -> None:
            x[a] = (x[a] + x[b]) & 0xFFFFFFFF
            x[d] = _rotl(x[d] ^ x[a], 16)
            x[c] = (x[c] + x[d]) & 0xFFFFFFFF
            x[b] = _rotl(x[b] ^ x[c], 12)
            x[a] = (x[a] + x[b]) & 0xFFFFFFFF
            x[d] = _rotl(x[d] ^ x[a], 8)
            x[c] = (x[c] + x[d]) & 0xFFFFFFFF
            x[b] = _rotl(x[b] ^ x[c], 7)

        for _ in range(10):
            qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
            qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
        self.buf = [(x[i] + self.state[i]) & 0xFFFFFFFF for i in range(16)]
        self.idx = 0
        for w in range(12, 16):  # 128-bit counter
            self.state[w] = (self.state[w] + 1) & 0xFFFFFFFF
            if self.state[w]:
                break

    def u32(self) -> int:
        if self.idx == 16:
            self._update()
        v = self.buf[self.idx]
        self.idx += 1
        return v

    def u64(self) -> int:
        hi = self.u32()
        return (hi << 32) + self.u32()

    def fq(self) -> int:
        """F1.fromRng: a 254-bit value below p taken as the *Montgomery* representation."""
        while True:
            v = sum(self.u64() << (64 * i) for i in range(4)) & _MASK254
            if v < P:
                return v * _RINV_P % P


def _f2mul(a, b):
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _f2add(a, b):
    return ((a[0] + b[0]) % P, (a[1] + b[1]) % P)


def _f2sub(a, b):
    return ((a[0] - b[0]) % P, (a[1] - b[1]) % P)


def _f2inv(a):
    t = pow((a[0] * a[0] + a[1] * a[1]) % P, -1, P)
    return (a[0] * t % P, -a[1] * t % P)


def _f2pow(a, e: int):
    acc = (1, 0)
    while e:
        if e & 1:
            acc = _f2mul(acc, a)
        a = _f2mul(a, a)
        e >>= 1
    return acc


def _f2sqrt(a):
    """A square root of a square ``a`` in Fq2 (p = 3 mod 4; Algorithm 9 of eprint 2012/685)."""
    a1 = _f2pow(a, (P - 3) // 4)
    alpha = _f2mul(a1, _f2mul(a1, a))
    x0 = _f2mul(a1, a)
    if alpha == (P - 1, 0):
        return _f2mul((0, 1), x0)
    b = _f2pow(_f2add((1, 0), alpha), (P - 1) // 2)
    return _f2mul(b, x0)


def _is_neg(a) -> bool:
    v = a[1] if a[1] else a[0]
    return v > (P - 1) // 2


def _g2_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0]:
        if _f2add(p1[1], p2[1]) == (0, 0):
            return None
        lam = _f2mul(_f2mul((3, 0), _f2mul(p1[0], p1[0])), _f2inv(_f2add(p1[1], p1[1])))
    else:
        lam = _f2mul(_f2sub(p2[1], p1[1]), _f2inv(_f2sub(p2[0], p1[0])))
    x3 = _f2sub(_f2sub(_f2mul(lam, lam), p1[0]), p2[0])
    return (x3, _f2sub(_f2mul(lam, _f2sub(p1[0], x3)), p1[1]))


def _g2_mul_any(pt, k: int):
    """[k] pt for any k >= 0 on the twist (not reduced mod r: used for the cofactor)."""
    acc = None
    for bit in bin(k)[2:]:
        acc = _g2_add(acc, acc)
        if bit == "1":
            acc = _g2_add(acc, pt)
    return acc


def hash_to_g2(transcript: bytes):
    """snarkjs's ``hashToG2``: ChaCha seeded with the first 32 bytes (8 big-endian u32), try-and-increment
    x in Fq2 with a sign bit, then the cofactor multiple. Returns a canonical G2 point."""
    if len(transcript) < 32:
        raise InvalidInput("hash_to_g2: need at least 32 bytes")
    rng = _ChaCha(list(struct.unpack(">8I", transcript[:32])))
    while True:
        x = (rng.fq(), rng.fq())
        greatest = rng.u32() & 1 == 1
        rhs = _f2add(_f2mul(_f2mul(x, x), x), B_G2)
        norm = (rhs[0] * rhs[0] + rhs[1] * rhs[1]) % P
        if pow(norm, (P - 1) // 2, P) in (0, 1):
            break
    y = _f2sqrt(rhs)
    if greatest ^ _is_neg(y):
        y = ((-y[0]) % P, (-y[1]) % P)
    return _g2_mul_any((x, y), _G2_COFACTOR)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Contribution:
    """One phase-2 record (points as Montgomery arrays: G1 (2, 4), G2 (2, 2, 4))."""

    delta_after: np.ndarray
    g1_s: np.ndarray
    g1_sx: np.ndarray
    g2_spx: np.ndarray
    transcript: bytes
    type: int
    params: bytes

    def encode(self) -> bytes:
        return b"".join(
            [
                self.delta_after.astype("<u8").tobytes(),
                self.g1_s.astype("<u8").tobytes(),
                self.g1_sx.astype("<u8").tobytes(),
                self.g2_spx.astype("<u8").tobytes(),
                self.transcript,
                struct.pack("<II", self.type, len(self.params)),
                self.params,
            ]
        )

    def hash_pub_key(self) -> bytes:
        """snarkjs's hashPubKey input: U(deltaAfter, g1_s, g1_sx, g2_spx) || transcript."""
        pts = [_uncompressed(p[None]) for p in (self.delta_after, self.g1_s, self.g1_sx, self.g2_spx)]
        return b"".join(pts) + self.transcript


def parse_contributions(data: bytes) -> list[Contribution]:
    """Section 10 after the circuit hash -> records (structure only; see :func:`verify_contributions`)."""
    if len(data) < 4:
        raise InvalidInput("zkey: contributions section too short")
    (n,) = struct.unpack_from("<I", data, 0)
    pos, out = 4, []

    def take(k: int) -> bytes:
        nonlocal pos
        if pos + k > len(data):
            raise InvalidInput("zkey: contribution record truncated")
        pos += k
        return data[pos - k : pos]

    for _ in range(n):
        d = np.frombuffer(take(G1_SIZE), "<u8").reshape(2, 4).astype(np.uint64)
        s = np.frombuffer(take(G1_SIZE), "<u8").reshape(2, 4).astype(np.uint64)
        sx = np.frombuffer(take(G1_SIZE), "<u8").reshape(2, 4).astype(np.uint64)
        spx = np.frombuffer(take(G2_SIZE), "<u8").reshape(2, 2, 4).astype(np.uint64)
        tr = take(64)
        typ, plen = struct.unpack("<II", take(8))
        out.append(Contribution(d, s, sx, spx, tr, typ, take(plen)))
    if pos != len(data):
        raise InvalidInput("zkey: unexpected bytes after the contributions")
    return out


def _fast():
    from ..algebra import fast

    return fast


def _same_ratio(a1, b1, a2, b2) -> bool:
    """e(a1, b2) == e(b1, a2): b1/a1 (G1) has the same discrete log ratio as b2/a2 (G2)."""
    f = _fast()
    return f.pairing_check(np.stack([a1, f.g1_neg(b1[None])[0]]), np.stack([b2, a2]))


def verify_contributions(zk: ZkeyGroth16) -> int:
    """Check section 10's contribution chain as ``snarkjs zkey verify`` does; return the count.

    For each record: the transcript equals BLAKE2b(csHash || previous hashPubKey || U(g1_s) || U(g1_sx));
    g1_s, g1_sx, deltaAfter are valid non-infinity G1 points and g2_spx a G2 point; e(g1_s, g2_spx) =
    e(g1_sx, g2_sp) with g2_sp = hash_to_g2(transcript); deltaAfter = x * (previous delta) via the same
    ratio. Finally the key's delta_1 equals the last deltaAfter (the G1 generator with no record).
    Beacon records (type 1) are checked like ordinary ones (the beacon derivation is not replayed).
    """
    f = _fast()
    recs = parse_contributions(zk.contributions)
    acc = hashlib.blake2b(zk.cs_hash, digest_size=64)
    cur = f.g1_from_affine([G1_GEN])[0]
    for i, c in enumerate(recs):
        for name, pt in (("deltaAfter", c.delta_after), ("g1_s", c.g1_s), ("g1_sx", c.g1_sx)):
            if not pt.any() or not f.g1_is_on_curve(pt[None])[0]:
                raise InvalidInput(f"zkey contribution {i}: {name} is infinity or not on G1")
        if not c.g2_spx.any() or not f.g2_in_subgroup(c.g2_spx[None])[0]:
            raise InvalidInput(f"zkey contribution {i}: g2_spx is infinity or not in G2")
        h = acc.copy()
        h.update(_uncompressed(c.g1_s[None]) + _uncompressed(c.g1_sx[None]))
        if h.digest() != c.transcript:
            raise InvalidInput(f"zkey contribution {i}: inconsistent transcript")
        sp = f.g2_from_affine([hash_to_g2(c.transcript)])[0]
        if not _same_ratio(c.g1_s, c.g1_sx, sp, c.g2_spx):
            raise InvalidInput(f"zkey contribution {i}: proof of knowledge fails (g1 and g2 ratios differ)")
        if not _same_ratio(cur, c.delta_after, sp, c.g2_spx):
            raise InvalidInput(f"zkey contribution {i}: deltaAfter does not follow the contribution key")
        acc.update(c.hash_pub_key())
        cur = c.delta_after
    if not np.array_equal(cur, zk.delta_1):
        raise InvalidInput("zkey: delta_1 is not the last contribution's deltaAfter")
    return len(recs)


def contribute(zk: ZkeyGroth16, *, name: str = "", secret: int | None = None) -> ZkeyGroth16:
    """A new key with one more delta contribution (fresh secret from the OS CSPRNG unless given).

    The result passes ``snarkjs zkey verify`` when the input did. ``secret`` is for tests only.
    """
    f = _fast()
    x = secret if secret is not None else 1 + secrets.randbelow(R - 1)
    if not 0 < x < R:
        raise InvalidInput("contribution secret must be in [1, r)")
    recs = parse_contributions(zk.contributions)
    acc = hashlib.blake2b(zk.cs_hash, digest_size=64)
    for c in recs:
        acc.update(c.hash_pub_key())
    s = 1 + secrets.randbelow(R - 1)
    g1_s = f.g1_mul_generator([s])[0]
    g1_sx = f.g1_mul_generator([s * x % R])[0]
    acc.update(_uncompressed(g1_s[None]) + _uncompressed(g1_sx[None]))
    transcript = acc.digest()
    sp = f.g2_from_affine([hash_to_g2(transcript)])
    g2_spx = f.g2_mul(sp, [x])[0]
    d1 = f.g1_mul(zk.delta_1[None], [x])[0]
    d2 = f.g2_mul(zk.delta_2[None], [x])[0]
    xinv = pow(x, -1, R)
    params = b""
    if name:
        nb = name[:64].encode()
        params = bytes([1, len(nb)]) + nb
    rec = Contribution(d1, g1_s, g1_sx, g2_spx, transcript, 0, params)
    contributions = struct.pack("<I", len(recs) + 1) + zk.contributions[4:] + rec.encode()

    def scale(pts: np.ndarray) -> np.ndarray:
        if pts.shape[0] == 0:
            return pts.copy()
        return np.ascontiguousarray(f.g1_mul(pts, [xinv] * pts.shape[0]))

    return replace(
        zk,
        delta_1=np.ascontiguousarray(d1),
        delta_2=np.ascontiguousarray(d2),
        c=scale(zk.c),
        h=scale(zk.h),
        contributions=contributions,
        section_order=tuple(range(1, 11)),
    )
