"""Byte encodings of BN254 points and Fr elements, with full validation of untrusted input.

All integers are big-endian, 32 bytes per base-field coordinate.  Because ``p < 2^254`` the two top
bits of a coordinate's first byte are always zero in a canonical encoding; the compressed forms put
flags there.

Uncompressed (the EIP-196/197 precompile layout):

- G1: 64 bytes ``x || y``.
- G2: 128 bytes ``x.c1 || x.c0 || y.c1 || y.c0`` (for ``x = x.c0 + x.c1 u``).
- The point at infinity is all zero bytes (unambiguous: ``(0, 0)`` is on neither curve).  No flag
  bits are allowed.

Compressed: G1 32 bytes ``x``, G2 64 bytes ``x.c1 || x.c0``, with the two top bits of the first byte:

- ``0b10``: ``y`` is the lexicographically smaller of the two roots ``{y, -y}``;
- ``0b11``: ``y`` is the larger one;
- ``0b01``: the point at infinity; every other bit must be zero;
- ``0b00``: invalid (an uncompressed encoding has the other length).

Order: in Fq, ``y`` is the larger root iff ``y > (p - 1) / 2`` as an integer in ``[0, p)``.  In Fq2,
compare ``c1`` first and ``c0`` only when ``c1 = 0``: ``y`` is larger iff ``y.c1 > (p - 1) / 2``, or
``y.c1 = 0`` and ``y.c0 > (p - 1) / 2``.  (This is the same flag layout and order as gnark-crypto's
BN254 compressed points; byte-level interoperability has not been tested.)

Decoding validates everything and raises :class:`~zkmb.errors.InvalidPoint`: wrong type or length,
invalid or misplaced flags, non-zero bits in an infinity encoding, a coordinate ``>= p``, an ``x`` with
no ``y``, a point off the curve, and for G2 a point outside the order-``r`` subgroup (the twist has a
large cofactor).  G1 has cofactor 1, so on the curve means in the group.

Fr scalars: 32 bytes big-endian, ``< r`` (:class:`~zkmb.errors.InvalidInput` otherwise).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from numba import njit, prange

from ..errors import InvalidInput, InvalidPoint
from .fast import curves as fast_curves
from .kernels import curve as _curve_kernels
from .kernels import mont, numba_threads
from .kernels.fq2 import fq2_mul as _fq2_mul_m
from .params import B_G1, B_G2, P, R, _fq2_mul, to_limbs

G1Point = tuple[int, int] | None
G2Point = tuple[tuple[int, int], tuple[int, int]] | None

G1_BYTES, G1_COMPRESSED_BYTES = 64, 32
G2_BYTES, G2_COMPRESSED_BYTES = 128, 64
FR_BYTES = 32

FLAG_INFINITY = 0b01
FLAG_SMALLER = 0b10
FLAG_LARGER = 0b11
_FLAG_SHIFT = 6  # flags sit in bits 7..6 of the first byte
_HALF = (P - 1) // 2


# --------------------------------------------------------------------------- Fq / Fq2 helpers (ints)


def fq_sqrt(a: int) -> int | None:
    """A square root of a in Fq, or None if a is not a square (p = 3 mod 4: a^((p+1)/4), then checked)."""
    x = pow(a, (P + 1) // 4, P)
    return x if x * x % P == a % P else None


def fq2_sqrt(a: tuple[int, int]) -> tuple[int, int] | None:
    """A square root of a = a0 + a1 u in Fq2, or None (complex method: via the norm a0^2 + a1^2).

    x0 + x1 u squares to a iff x0^2 - x1^2 = a0 and 2 x0 x1 = a1; with n = sqrt(a0^2 + a1^2) this
    gives x0^2 = (a0 +- n)/2, of which exactly one is a square in Fq when a1 != 0.  The result is
    verified by squaring."""
    a0, a1 = a[0] % P, a[1] % P
    if a1 == 0:
        r = fq_sqrt(a0)
        if r is not None:
            return (r, 0)
        r = fq_sqrt(-a0 % P)  # a0 = -(r^2) = (r u)^2
        return None if r is None else (0, r)
    n = fq_sqrt((a0 * a0 + a1 * a1) % P)
    if n is None:
        return None  # a square in Fq2 has a square norm
    inv2 = (P + 1) // 2
    x0 = fq_sqrt((a0 + n) * inv2 % P)
    if x0 is None:
        x0 = fq_sqrt((a0 - n) * inv2 % P)
        if x0 is None:
            return None
    x1 = a1 * pow(2 * x0, -1, P) % P  # x0 != 0: x0 = 0 would force a1 = 0
    x = (x0, x1)
    return x if _fq2_mul(x, x) == (a0, a1) else None


def _fq2_neg(a: tuple[int, int]) -> tuple[int, int]:
    return (-a[0] % P, -a[1] % P)


def _fq_is_larger(y: int) -> bool:
    return y > _HALF


def _fq2_is_larger(y: tuple[int, int]) -> bool:
    return y[1] > _HALF if y[1] else y[0] > _HALF


def _g1_rhs(x: int) -> int:
    return (x * x * x + B_G1) % P


def _g2_rhs(x: tuple[int, int]) -> tuple[int, int]:
    x3 = _fq2_mul(_fq2_mul(x, x), x)
    return ((x3[0] + B_G2[0]) % P, (x3[1] + B_G2[1]) % P)


# --------------------------------------------------------------------------- G2 subgroup membership


def _g2_in_subgroup(pt: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    """Whether an affine point already known to be on the twist lies in G2 (order r).

    The one place G2 subgroup membership is decided for decoding: the fast backend's numba check
    ([x+1]Q + psi([x]Q) + psi^2([x]Q) == psi^3([2x]Q), about 0.1 ms with the conversion); the tests hold
    it against py_ecc's [r] Q == O."""
    with numba_threads(1):  # one point: a parallel region would only add latency
        return bool(fast_curves.g2_in_subgroup(fast_curves.g2_from_affine([pt]))[0])


# --------------------------------------------------------------------------- input checks


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise InvalidPoint(f"{what} encoding must be bytes, got {type(data).__name__}")


def _pick_form(data: bytes, what: str, compressed: bool | None, full: int, short: int) -> bool:
    """Whether ``data`` is the compressed form; raises InvalidPoint for a length that does not fit."""
    n = len(data)
    if compressed is None:
        if n in (full, short):
            return n == short
    elif n == (short if compressed else full):
        return compressed
    want = {None: f"{full} or {short}", True: f"{short}", False: f"{full}"}[compressed]
    raise InvalidPoint(f"{what} encoding must be {want} bytes, got {n}")


def _coord(data: bytes, i: int, what: str) -> int:
    """The i-th 32-byte big-endian coordinate, checked to be canonical (< p)."""
    v = int.from_bytes(data[32 * i : 32 * i + 32], "big")
    if v >= P:
        raise InvalidPoint(f"{what} coordinate not canonical (>= p)")
    return v


def _split_flags(data: bytes, what: str) -> tuple[int, bytes]:
    """(flags, data with the flag bits cleared) of a compressed encoding; rejects 0b00 and bad infinity."""
    flags = data[0] >> _FLAG_SHIFT
    rest = bytes([data[0] & 0x3F]) + data[1:]
    if flags == 0:
        raise InvalidPoint(f"compressed {what} encoding without a compression flag")
    if flags == FLAG_INFINITY and any(rest):
        raise InvalidPoint(f"compressed {what} infinity encoding with non-zero bits")
    return flags, rest


def _check_uncompressed_flags(data: bytes, what: str) -> None:
    if data[0] >> _FLAG_SHIFT:
        raise InvalidPoint(f"uncompressed {what} encoding with flag bits set")


# --------------------------------------------------------------------------- G1


def _g1_check(pt: object) -> tuple[int, int]:
    """A canonical non-infinity G1 point's coordinates; raises InvalidPoint if it is not one."""
    if not (isinstance(pt, tuple) and len(pt) == 2 and all(isinstance(c, int) for c in pt)):
        raise InvalidPoint("G1 point must be None or a pair of ints")
    x, y = pt
    if not (0 <= x < P and 0 <= y < P):
        raise InvalidPoint("G1 coordinate not canonical")
    if y * y % P != _g1_rhs(x):
        raise InvalidPoint("G1 point not on the curve")
    return x, y


def _encode(xb: bytes, yb: bytes, y_larger: bool, compressed: bool) -> bytes:
    """x || y, or x with the root flag in its top bits."""
    if not compressed:
        return xb + yb
    out = bytearray(xb)
    out[0] |= (FLAG_LARGER if y_larger else FLAG_SMALLER) << _FLAG_SHIFT
    return bytes(out)


def _encode_infinity(size: int, compressed: bool) -> bytes:
    return bytes([FLAG_INFINITY << _FLAG_SHIFT if compressed else 0]) + bytes(size - 1)


def g1_to_bytes(pt: G1Point, compressed: bool = False) -> bytes:
    """Encode a canonical G1 point (None = infinity); raises InvalidPoint if it is not on the curve."""
    if pt is None:
        return _encode_infinity(G1_COMPRESSED_BYTES if compressed else G1_BYTES, compressed)
    x, y = _g1_check(pt)
    return _encode(x.to_bytes(32, "big"), y.to_bytes(32, "big"), _fq_is_larger(y), compressed)


def g1_from_bytes(data: bytes, compressed: bool | None = None) -> G1Point:
    """Decode and validate a G1 point (form chosen by length when ``compressed`` is None).

    Guarantees: the result is None or a canonical point on the curve (hence in G1); anything else in
    ``data`` raises InvalidPoint."""
    data = _as_bytes(data, "G1")
    if not _pick_form(data, "G1", compressed, G1_BYTES, G1_COMPRESSED_BYTES):
        _check_uncompressed_flags(data, "G1")
        if not any(data):
            return None
        x, y = _coord(data, 0, "G1"), _coord(data, 1, "G1")
        if y * y % P != _g1_rhs(x):
            raise InvalidPoint("G1 point not on the curve")
        return (x, y)
    flags, rest = _split_flags(data, "G1")
    if flags == FLAG_INFINITY:
        return None
    x = _coord(rest, 0, "G1")
    y = fq_sqrt(_g1_rhs(x))
    if y is None:
        raise InvalidPoint("G1 x coordinate has no point on the curve (x^3 + 3 is not a square)")
    if y == 0 and flags == FLAG_LARGER:
        raise InvalidPoint("G1 encoding flags the larger root of y = 0")  # unreachable: E(Fq) has odd order
    if _fq_is_larger(y) != (flags == FLAG_LARGER):
        y = P - y
    return (x, y)


# --------------------------------------------------------------------------- G2


def _g2_check(pt: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """A canonical non-infinity twist point's coordinates; raises InvalidPoint if it is not one."""
    ok = isinstance(pt, tuple) and len(pt) == 2
    ok = ok and all(isinstance(c, tuple) and len(c) == 2 and all(isinstance(v, int) for v in c) for c in pt)
    if not ok:
        raise InvalidPoint("G2 point must be None or a pair of pairs of ints")
    x, y = pt
    if not all(0 <= v < P for v in (*x, *y)):
        raise InvalidPoint("G2 coordinate not canonical")
    if _fq2_mul(y, y) != _g2_rhs(x):
        raise InvalidPoint("G2 point not on the twist curve")
    return x, y


def _fq2_bytes(a: tuple[int, int]) -> bytes:
    return a[1].to_bytes(32, "big") + a[0].to_bytes(32, "big")


def g2_to_bytes(pt: G2Point, compressed: bool = False) -> bytes:
    """Encode a canonical G2 point (None = infinity); raises InvalidPoint if it is not on the twist.

    (Subgroup membership of the argument is not re-checked: it is our own point.)"""
    if pt is None:
        return _encode_infinity(G2_COMPRESSED_BYTES if compressed else G2_BYTES, compressed)
    x, y = _g2_check(pt)
    return _encode(_fq2_bytes(x), _fq2_bytes(y), _fq2_is_larger(y), compressed)


def _fq2_coord(data: bytes, i: int) -> tuple[int, int]:
    """Fq2 element from 64 bytes c1 || c0 at coordinate index i (in 64-byte units)."""
    return (_coord(data, 2 * i + 1, "G2"), _coord(data, 2 * i, "G2"))


def g2_from_bytes(data: bytes, compressed: bool | None = None) -> G2Point:
    """Decode and validate a G2 point (form chosen by length when ``compressed`` is None).

    Guarantees: the result is None or a canonical point on the twist of order r; anything else in
    ``data`` (including twist points outside G2) raises InvalidPoint."""
    data = _as_bytes(data, "G2")
    if not _pick_form(data, "G2", compressed, G2_BYTES, G2_COMPRESSED_BYTES):
        _check_uncompressed_flags(data, "G2")
        if not any(data):
            return None
        x, y = _fq2_coord(data, 0), _fq2_coord(data, 1)
        if _fq2_mul(y, y) != _g2_rhs(x):
            raise InvalidPoint("G2 point not on the twist curve")
    else:
        flags, rest = _split_flags(data, "G2")
        if flags == FLAG_INFINITY:
            return None
        x = _fq2_coord(rest, 0)
        y = fq2_sqrt(_g2_rhs(x))
        if y is None:
            raise InvalidPoint("G2 x coordinate has no point on the twist (x^3 + b' is not a square)")
        if y == (0, 0) and flags == FLAG_LARGER:
            raise InvalidPoint("G2 encoding flags the larger root of y = 0")  # unreachable: odd order
        if _fq2_is_larger(y) != (flags == FLAG_LARGER):
            y = _fq2_neg(y)
    if not _g2_in_subgroup((x, y)):
        raise InvalidPoint("G2 point not in the prime-order subgroup")
    return (x, y)


# --------------------------------------------------------------------------- Fr


def fr_to_bytes(x: int) -> bytes:
    """32 bytes big-endian of x in [0, r); raises InvalidInput otherwise."""
    if not isinstance(x, int) or not 0 <= x < R:
        raise InvalidInput("Fr element must be an int in [0, r)")
    return x.to_bytes(FR_BYTES, "big")


def fr_from_bytes(data: bytes) -> int:
    """Decode 32 bytes big-endian; raises InvalidInput for another length/type or a value >= r."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInput(f"Fr encoding must be bytes, got {type(data).__name__}")
    if len(data) != FR_BYTES:
        raise InvalidInput(f"Fr encoding must be {FR_BYTES} bytes, got {len(data)}")
    v = int.from_bytes(data, "big")
    if v >= R:
        raise InvalidInput("Fr encoding not canonical (>= r)")
    return v


# --------------------------------------------------------------------------- bulk G1 (fast backend)

_U64 = np.uint64
_HALF_LIMBS = tuple(_U64(v) for v in to_limbs(_HALF))
_B_MONT = tuple(_U64(v) for v in to_limbs((B_G1 << 256) % P))
_TOP_MASK = _U64((1 << 62) - 1)  # clears the two flag bits of the top limb

_OK, _E_FLAGS, _E_INF_BITS, _E_RANGE, _E_NO_SQRT, _E_CURVE, _E_ROOT0 = range(7)
_BULK_REASONS = {
    _E_FLAGS: "invalid flag bits",
    _E_INF_BITS: "infinity encoding with non-zero bits",
    _E_RANGE: "coordinate not canonical (>= p)",
    _E_NO_SQRT: "x coordinate has no point on the curve",
    _E_CURVE: "point not on the curve",
    _E_ROOT0: "larger root of y = 0 flagged",
}

_njit = dict(cache=True, nogil=True)
_BULK_PARALLEL_MIN = 4096  # in uncompressed-point units of work


def _window_schedule(e: int, w: int = 5) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Left-to-right sliding-window plan for x^e: ``(squarings, digits, tail)``; step k squares the
    accumulator ``squarings[k]`` times and multiplies by x^digits[k] (odd, < 2^w), then ``tail`` squarings.
    For (p+1)/4 (252 bits, 109 ones) that is 251 squarings and 50 multiplications instead of 108."""
    bits = bin(e)[2:]
    sq, dg = [], []
    i, zeros = 0, 0
    while i < len(bits):
        if bits[i] == "0":
            zeros += 1
            i += 1
            continue
        j = min(i + w, len(bits))
        while bits[j - 1] == "0":
            j -= 1
        sq.append(0 if not dg else zeros + (j - i))
        dg.append(int(bits[i:j], 2))
        zeros = 0
        i = j
    return tuple(sq), tuple(dg), zeros


def _plan_arrays(e: int) -> tuple[np.ndarray, np.ndarray, int]:
    sq, dg, tail = _window_schedule(e)
    return np.array(sq, dtype=np.int64), np.array(dg, dtype=np.int64), tail


_SQRT_SQ, _SQRT_DG, _SQRT_TAIL = _plan_arrays((P + 1) // 4)
_INV_SQ, _INV_DG, _INV_TAIL = _plan_arrays(P - 2)


@njit(**_njit)
def _pow_plan(a, sq, dg, tail):
    """a^e (Montgomery Fq) for the plan of :func:`_window_schedule` (inlined products, 16 odd powers)."""
    table = np.empty((16, 4), dtype=_U64)
    a2 = _curve_kernels.bf_mul(a, a)
    cur = a
    for k in range(16):
        mont.store(table, k, cur)
        cur = _curve_kernels.bf_mul(cur, a2)
    acc = mont.load(table, dg[0] >> 1)
    for k in range(1, dg.shape[0]):
        for _ in range(sq[k]):
            acc = _curve_kernels.bf_mul(acc, acc)
        acc = _curve_kernels.bf_mul(acc, mont.load(table, dg[k] >> 1))
    for _ in range(tail):
        acc = _curve_kernels.bf_mul(acc, acc)
    return acc


@njit(**_njit)
def _fq_pow_sqrt(a):
    """a^((p+1)/4): a square root of a when a is a square (p = 3 mod 4)."""
    return _pow_plan(a, _SQRT_SQ, _SQRT_DG, _SQRT_TAIL)


@njit(**_njit)
def _fq_pow_inv(a):
    """a^(p-2) = 1/a (0 for 0)."""
    return _pow_plan(a, _INV_SQ, _INV_DG, _INV_TAIL)


@njit(**_njit)
def _g1_decode_one(raw, flags, compressed, out, i):
    """Decode point i of ``raw`` (plain little-endian limbs, (n, k, 4)) into ``out[i]``; an error code."""
    z = _U64(0)
    for c in range(2):
        for j in range(4):
            out[i, c, j] = z
    f = flags[i]
    x = (raw[i, 0, 0], raw[i, 0, 1], raw[i, 0, 2], raw[i, 0, 3])
    if not compressed:
        if f != 0:
            return _E_FLAGS
        y = (raw[i, 1, 0], raw[i, 1, 1], raw[i, 1, 2], raw[i, 1, 3])
        if mont.is_zero(x) and mont.is_zero(y):
            return _OK
        if not (mont._lt_mod(x, mont.FQ_MOD) and mont._lt_mod(y, mont.FQ_MOD)):
            return _E_RANGE
        xm = mont.fq_to_mont(x)
        ym = mont.fq_to_mont(y)
        rhs = mont.fq_add(mont.fq_mul(mont.fq_sqr(xm), xm), _B_MONT)
        if not mont.eq(mont.fq_sqr(ym), rhs):
            return _E_CURVE
    else:
        x = (x[0], x[1], x[2], x[3] & _TOP_MASK)
        if f == 0:
            return _E_FLAGS
        if f == FLAG_INFINITY:
            return _OK if mont.is_zero(x) else _E_INF_BITS
        if not mont._lt_mod(x, mont.FQ_MOD):
            return _E_RANGE
        xm = mont.fq_to_mont(x)
        rhs = mont.fq_add(mont.fq_mul(mont.fq_sqr(xm), xm), _B_MONT)
        ym = _fq_pow_sqrt(rhs)
        if not mont.eq(mont.fq_sqr(ym), rhs):
            return _E_NO_SQRT
        larger = mont._lt_mod(_HALF_LIMBS, mont.fq_from_mont(ym))
        if mont.is_zero(ym) and f == FLAG_LARGER:
            return _E_ROOT0
        if larger != (f == FLAG_LARGER):
            ym = mont.fq_neg(ym)
    mont.store(out[i], 0, xm)
    mont.store(out[i], 1, ym)
    return _OK


@njit(parallel=True, **_njit)
def _g1_decode_batch(raw, flags, compressed, out, err):
    for i in prange(raw.shape[0]):
        err[i] = _g1_decode_one(raw, flags, compressed, out, i)


def g1_from_bytes_many(data: bytes, count: int, compressed: bool | None = None) -> np.ndarray:
    """Decode ``count`` concatenated G1 encodings (all of one form, chosen by the total length when
    ``compressed`` is None) into a fast-backend ``(count, 2, 4)`` Montgomery affine array (all zeros =
    infinity).  Same validation as :func:`g1_from_bytes`; raises InvalidPoint naming the first bad
    point."""
    data = _as_bytes(data, "G1")
    if not isinstance(count, int) or count < 0:
        raise InvalidInput(f"point count must be a non-negative int, got {count!r}")
    if count == 0:
        if data:
            raise InvalidPoint(f"G1 encodings of 0 points must be empty, got {len(data)} bytes")
        return np.zeros((0, 2, 4), dtype=np.uint64)
    forms = {False: G1_BYTES * count, True: G1_COMPRESSED_BYTES * count}
    candidates = [c for c in (False, True) if compressed in (None, c) and len(data) == forms[c]]
    if not candidates:
        want = " or ".join(str(forms[c]) for c in (False, True) if compressed in (None, c))
        raise InvalidPoint(f"G1 encodings of {count} points must be {want} bytes, got {len(data)}")
    comp = candidates[0]
    k = 1 if comp else 2
    blocks = np.frombuffer(data, dtype=np.uint8).reshape(count, k, 32)
    flags = np.ascontiguousarray(blocks[:, 0, 0] >> 6)
    raw = np.ascontiguousarray(np.frombuffer(data, dtype=">u8").reshape(count, k, 4)[:, :, ::-1], dtype=_U64)
    out = np.empty((count, 2, 4), dtype=_U64)
    err = np.empty(count, dtype=np.int8)
    # about 0.1 us per uncompressed and 6 us per compressed point: small batches stay on this thread
    with numba_threads(1) if count * (64 if comp else 1) < _BULK_PARALLEL_MIN else nullcontext():
        _g1_decode_batch(raw, flags, comp, out, err)
    bad = np.flatnonzero(err)
    if bad.size:
        i = int(bad[0])
        raise InvalidPoint(f"G1 point {i}: {_BULK_REASONS[int(err[i])]}")
    return out


# --------------------------------------------------------------------------- bulk compressed (fast backend)
#
# The compact key files (zkmb.groth16.compact) store many points in the compressed forms above.  These
# kernels convert whole fast-backend arrays (affine Montgomery, all zeros = infinity) both ways.

_INV2_MONT = tuple(_U64(v) for v in to_limbs(((P + 1) // 2 << 256) % P))
_B2_MONT = (
    tuple(_U64(v) for v in to_limbs((B_G2[0] << 256) % P)),
    tuple(_U64(v) for v in to_limbs((B_G2[1] << 256) % P)),
)
_E_SUBGROUP, _E_INFINITY = 7, 8
_BULK_REASONS[_E_SUBGROUP] = "point not in the prime-order subgroup"
_BULK_REASONS[_E_INFINITY] = "the point at infinity is not allowed here"
_FLAG_TOP = 62  # flags in bits 63..62 of the most significant limb = bits 7..6 of the first byte


@njit(parallel=True, **_njit)
def _g1_compress_batch(pts, out):
    """out[i] = plain little-endian limbs of x with the flag bits of the compressed form set."""
    for i in prange(pts.shape[0]):
        x = (pts[i, 0, 0], pts[i, 0, 1], pts[i, 0, 2], pts[i, 0, 3])
        y = (pts[i, 1, 0], pts[i, 1, 1], pts[i, 1, 2], pts[i, 1, 3])
        if mont.is_zero(x) and mont.is_zero(y):
            f = _U64(FLAG_INFINITY)
            xn = x
        else:
            xn = mont.fq_from_mont(x)
            f = _U64(FLAG_LARGER) if mont._lt_mod(_HALF_LIMBS, mont.fq_from_mont(y)) else _U64(FLAG_SMALLER)
        for j in range(3):
            out[i, j] = xn[j]
        out[i, 3] = xn[3] | (f << _U64(_FLAG_TOP))


@njit(parallel=True, **_njit)
def _g2_compress_batch(pts, out):
    """out[i, 0] = x.c1 with the flags, out[i, 1] = x.c0 (plain little-endian limbs)."""
    for i in prange(pts.shape[0]):
        x0 = (pts[i, 0, 0, 0], pts[i, 0, 0, 1], pts[i, 0, 0, 2], pts[i, 0, 0, 3])
        x1 = (pts[i, 0, 1, 0], pts[i, 0, 1, 1], pts[i, 0, 1, 2], pts[i, 0, 1, 3])
        y0 = (pts[i, 1, 0, 0], pts[i, 1, 0, 1], pts[i, 1, 0, 2], pts[i, 1, 0, 3])
        y1 = (pts[i, 1, 1, 0], pts[i, 1, 1, 1], pts[i, 1, 1, 2], pts[i, 1, 1, 3])
        if mont.is_zero(x0) and mont.is_zero(x1) and mont.is_zero(y0) and mont.is_zero(y1):
            f = _U64(FLAG_INFINITY)
            n0, n1 = x0, x1
        else:
            n0, n1 = mont.fq_from_mont(x0), mont.fq_from_mont(x1)
            m1 = mont.fq_from_mont(y1)
            larger = (
                mont._lt_mod(_HALF_LIMBS, m1)
                if not mont.is_zero(m1)
                else (mont._lt_mod(_HALF_LIMBS, mont.fq_from_mont(y0)))
            )
            f = _U64(FLAG_LARGER) if larger else _U64(FLAG_SMALLER)
        for j in range(4):
            out[i, 0, j] = n1[j]
            out[i, 1, j] = n0[j]
        out[i, 0, 3] |= f << _U64(_FLAG_TOP)


def _compress(pts: np.ndarray, group: int) -> bytes:
    n = pts.shape[0]
    if group == 1:
        out = np.empty((n, 4), dtype=_U64)
        kernel, work = _g1_compress_batch, n
    else:
        out = np.empty((n, 2, 4), dtype=_U64)
        kernel, work = _g2_compress_batch, 2 * n
    if n:
        with numba_threads(1) if work < _BULK_PARALLEL_MIN else nullcontext():
            kernel(np.ascontiguousarray(pts), out)
    return np.ascontiguousarray(out[..., ::-1]).astype(">u8").tobytes()


def g1_compress_many(points: np.ndarray) -> bytes:
    """The compressed encodings (32 bytes each, as :func:`g1_to_bytes`) of a fast-backend G1 array
    ``(n, 2, 4)`` (all zeros = infinity), concatenated.  The points are our own: not re-validated."""
    if (
        not isinstance(points, np.ndarray)
        or points.dtype != _U64
        or points.ndim != 3
        or points.shape[1:] != (2, 4)
    ):
        raise InvalidInput("g1_compress_many: expected a uint64 array (n, 2, 4)")
    return _compress(points, 1)


def g2_compress_many(points: np.ndarray) -> bytes:
    """The compressed encodings (64 bytes each, as :func:`g2_to_bytes`) of a fast-backend G2 array
    ``(n, 2, 2, 4)``, concatenated.  The points are our own: not re-validated."""
    if (
        not isinstance(points, np.ndarray)
        or points.dtype != _U64
        or points.ndim != 4
        or points.shape[1:] != (2, 2, 4)
    ):
        raise InvalidInput("g2_compress_many: expected a uint64 array (n, 2, 2, 4)")
    return _compress(points, 2)


@njit(**_njit)
def _fq_sqrt_m(a):
    """(s, ok) with s = a^((p+1)/4) (Montgomery) and ok = s^2 == a."""
    s = _fq_pow_sqrt(a)
    return s, mont.eq(mont.fq_sqr(s), a)


@njit(**_njit)
def _fq2_sqrt_m(a0, a1):
    """(x0, x1, ok) with (x0 + x1 u)^2 = a0 + a1 u (Montgomery), ok False if a is not a square.

    Complex method with one inversion: n = sqrt(a0^2 + a1^2), t = (a0 + n)/2, s = t^((p+1)/4).  If
    s^2 = t then x = (s, a1/(2s)); otherwise s^2 = -t (p = 3 mod 4) and, as t (a0 - n)/2 = -a1^2/4,
    x = (a1/(2s), s).  The result is verified by squaring."""
    z = mont.ZERO4
    if mont.is_zero(a1):
        s, ok = _fq_sqrt_m(a0)
        if ok:
            return s, z, True
        s, ok = _fq_sqrt_m(mont.fq_neg(a0))
        return z, s, ok
    n, ok = _fq_sqrt_m(mont.fq_add(mont.fq_sqr(a0), mont.fq_sqr(a1)))
    if not ok:
        return z, z, False
    t = mont.fq_mul(mont.fq_add(a0, n), _INV2_MONT)
    s, sq = _fq_sqrt_m(t)
    if mont.is_zero(s):
        return z, z, False
    other = mont.fq_mul(mont.fq_mul(a1, _INV2_MONT), _fq_pow_inv(s))
    x0, x1 = (s, other) if sq else (other, s)
    # verify: (x0 + x1 u)^2 = (x0^2 - x1^2) + 2 x0 x1 u
    ok = mont.eq(mont.fq_sub(mont.fq_sqr(x0), mont.fq_sqr(x1)), a0) and mont.eq(
        mont.fq_dbl(mont.fq_mul(x0, x1)), a1
    )
    return x0, x1, ok


@njit(**_njit)
def _g2_decode_one(raw, flags, out, i):
    """Decode compressed point i of ``raw`` ((n, 2, 4) plain little-endian limbs: x.c1 with the flag bits
    cleared, x.c0) into ``out[i]`` (Montgomery, infinity all zeros); an error code."""
    z = _U64(0)
    for c in range(2):
        for k in range(2):
            for j in range(4):
                out[i, c, k, j] = z
    f = flags[i]
    c1 = (raw[i, 0, 0], raw[i, 0, 1], raw[i, 0, 2], raw[i, 0, 3] & _TOP_MASK)
    c0 = (raw[i, 1, 0], raw[i, 1, 1], raw[i, 1, 2], raw[i, 1, 3])
    if f == 0:
        return _E_FLAGS
    if f == FLAG_INFINITY:
        return _OK if (mont.is_zero(c0) and mont.is_zero(c1)) else _E_INF_BITS
    if not (mont._lt_mod(c0, mont.FQ_MOD) and mont._lt_mod(c1, mont.FQ_MOD)):
        return _E_RANGE
    x = (mont.fq_to_mont(c0), mont.fq_to_mont(c1))
    x3 = _fq2_mul_m(_fq2_mul_m(x, x), x)
    y0, y1, ok = _fq2_sqrt_m(mont.fq_add(x3[0], _B2_MONT[0]), mont.fq_add(x3[1], _B2_MONT[1]))
    if not ok:
        return _E_NO_SQRT
    m1 = mont.fq_from_mont(y1)
    larger = (
        mont._lt_mod(_HALF_LIMBS, m1)
        if not mont.is_zero(m1)
        else mont._lt_mod(_HALF_LIMBS, mont.fq_from_mont(y0))
    )
    if mont.is_zero(y0) and mont.is_zero(y1) and f == FLAG_LARGER:
        return _E_ROOT0
    if larger != (f == FLAG_LARGER):
        y0, y1 = mont.fq_neg(y0), mont.fq_neg(y1)
    if not _curve_kernels.aff_in_subgroup((x, (y0, y1))):
        return _E_SUBGROUP
    for j in range(4):
        out[i, 0, 0, j] = x[0][j]
        out[i, 0, 1, j] = x[1][j]
        out[i, 1, 0, j] = y0[j]
        out[i, 1, 1, j] = y1[j]
    return _OK


@njit(parallel=True, **_njit)
def _g2_decode_batch(raw, flags, out, err):
    for i in prange(raw.shape[0]):
        err[i] = _g2_decode_one(raw, flags, out, i)


def _decompress_input(data, count: int, size: int, what: str):
    data = _as_bytes(data, what) if not isinstance(data, np.ndarray) else data
    if not isinstance(count, int) or count < 0:
        raise InvalidInput(f"point count must be a non-negative int, got {count!r}")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buf.dtype != np.uint8 or buf.size != size * count:
        raise InvalidPoint(
            f"compressed {what} encodings of {count} points must be {size * count} bytes, got {buf.size}"
        )
    return buf


def _raise_bulk(what: str, err: np.ndarray, base: int) -> None:
    bad = np.flatnonzero(err)
    if bad.size:
        i = int(bad[0])
        raise InvalidPoint(f"{what} point {base + i}: {_BULK_REASONS[int(err[i])]}")


def g1_decompress_many(data, count: int, *, allow_infinity: bool = False, base: int = 0) -> np.ndarray:
    """Decode ``count`` concatenated compressed G1 encodings (bytes or a uint8 array) into a fast-backend
    array, validating each (flags, canonical x, a point on the curve); the point at infinity is refused
    unless ``allow_infinity``.  InvalidPoint names the first bad point (index offset by ``base``)."""
    buf = _decompress_input(data, count, G1_COMPRESSED_BYTES, "G1")
    blocks = buf.reshape(count, 32)
    flags = np.ascontiguousarray(blocks[:, 0] >> 6)
    if not allow_infinity and count and (flags == FLAG_INFINITY).any():
        err = (flags == FLAG_INFINITY).astype(np.int8) * _E_INFINITY
        _raise_bulk("G1", err, base)
    raw = np.ascontiguousarray(buf.view(">u8").reshape(count, 1, 4)[:, :, ::-1], dtype=_U64)
    out = np.empty((count, 2, 4), dtype=_U64)
    err = np.empty(count, dtype=np.int8)
    if count:
        with numba_threads(1) if count * 64 < _BULK_PARALLEL_MIN else nullcontext():
            _g1_decode_batch(raw, flags, True, out, err)
        _raise_bulk("G1", err, base)
    return out


def g2_decompress_many(data, count: int, *, allow_infinity: bool = False, base: int = 0) -> np.ndarray:
    """Decode ``count`` concatenated compressed G2 encodings into a fast-backend ``(count, 2, 2, 4)``
    array, validating each exactly as :func:`g2_from_bytes` (flags, canonical coordinates, a point on the
    twist, in the order-r subgroup); infinity refused unless ``allow_infinity``.  About 80 us per point
    on one core (two square roots, one inversion, the subgroup test), in parallel over the points."""
    buf = _decompress_input(data, count, G2_COMPRESSED_BYTES, "G2")
    blocks = buf.reshape(count, 64)
    flags = np.ascontiguousarray(blocks[:, 0] >> 6)
    if not allow_infinity and count and (flags == FLAG_INFINITY).any():
        err = (flags == FLAG_INFINITY).astype(np.int8) * _E_INFINITY
        _raise_bulk("G2", err, base)
    raw = np.ascontiguousarray(buf.view(">u8").reshape(count, 2, 4)[:, :, ::-1], dtype=_U64)
    out = np.empty((count, 2, 2, 4), dtype=_U64)
    err = np.empty(count, dtype=np.int8)
    if count:
        with numba_threads(1) if count < 16 else nullcontext():
            _g2_decode_batch(raw, flags, out, err)
        _raise_bulk("G2", err, base)
    return out


__all__ = [
    "g1_compress_many",
    "g1_decompress_many",
    "g2_compress_many",
    "g2_decompress_many",
    "g1_to_bytes",
    "g1_from_bytes",
    "g1_from_bytes_many",
    "g2_to_bytes",
    "g2_from_bytes",
    "fr_to_bytes",
    "fr_from_bytes",
    "fq_sqrt",
    "fq2_sqrt",
    "FLAG_INFINITY",
    "FLAG_SMALLER",
    "FLAG_LARGER",
]
