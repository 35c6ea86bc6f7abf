"""Point and scalar encodings: round trips, the documented byte layout, and every invalid input rejected."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc import optimized_bn128 as ob

from zkmb.algebra import fast
from zkmb.algebra import serialize as S
from zkmb.algebra.params import B_G2, G1_GEN, G2_GEN, P, R
from zkmb.errors import InvalidInput, InvalidPoint

rng = random.Random(0x5E71A1)


def fq2_mul(a, b):
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def g1_point(k: int):
    q = ob.normalize(ob.multiply(ob.G1, k))
    return (int(q[0]), int(q[1]))


def g2_point(k: int):
    q = ob.normalize(ob.multiply(ob.G2, k))
    return tuple(tuple(int(c) for c in v.coeffs) for v in q[:2])


def g1_neg(p):
    return (p[0], -p[1] % P)


def g2_neg(p):
    return (p[0], (-p[1][0] % P, -p[1][1] % P))


def be(v: int) -> bytes:
    return v.to_bytes(32, "big")


G1_RANDOM = [g1_point(rng.randrange(1, R)) for _ in range(6)]
G2_RANDOM = [g2_point(rng.randrange(1, R)) for _ in range(3)]
G1_ALL = [G1_GEN, g1_neg(G1_GEN), *G1_RANDOM, *map(g1_neg, G1_RANDOM[:2])]
G2_ALL = [G2_GEN, g2_neg(G2_GEN), *G2_RANDOM, g2_neg(G2_RANDOM[0])]


def g1_bad_x() -> int:
    """An x with x^3 + 3 not a square in Fq (Euler's criterion, independent of the code under test)."""
    x = 1
    while pow((x**3 + 3) % P, (P - 1) // 2, P) == 1:
        x += 1
    return x


def fq2_is_square(a) -> bool:
    return a == (0, 0) or pow((a[0] ** 2 + a[1] ** 2) % P, (P - 1) // 2, P) == 1


def twist_rhs(x):
    x3 = fq2_mul(fq2_mul(x, x), x)
    return ((x3[0] + B_G2[0]) % P, (x3[1] + B_G2[1]) % P)


def g2_bad_x():
    """x = (c, 1) with x^3 + b' not a square in Fq2."""
    c = 0
    while fq2_is_square(twist_rhs((c, 1))):
        c += 1
    return (c, 1)


def twist_point_outside_g2():
    """A point on the twist E'(Fq2) with [r]Q != O (checked here with py_ecc)."""
    c = 1
    while True:
        x = (c, 0)
        y = S.fq2_sqrt(twist_rhs(x))
        if y is not None:
            assert fq2_mul(y, y) == twist_rhs(x)
            q = (ob.FQ2(list(x)), ob.FQ2(list(y)), ob.FQ2.one())
            assert ob.is_on_curve(q, ob.b2)
            if not ob.is_inf(ob.multiply(q, R)):
                return (x, y)
        c += 1


OUTSIDE_G2 = twist_point_outside_g2()


# --------------------------------------------------------------------------- square roots


@pytest.mark.parametrize("a", [0, 1, 2, 3, 4, P - 1, P - 4, 5**20 % P])
def test_fq_sqrt(a):
    r = S.fq_sqrt(a)
    is_sq = a == 0 or pow(a, (P - 1) // 2, P) == 1
    assert (r is not None) == is_sq
    if r is not None:
        assert r * r % P == a


fq_ints = st.one_of(st.integers(0, P - 1), st.sampled_from([0, 1, 2, P - 1, P - 2, (P - 1) // 2]))


@settings(max_examples=150, deadline=None)
@given(a=st.tuples(fq_ints, fq_ints))
def test_fq2_sqrt(a):
    r = S.fq2_sqrt(a)
    assert (r is not None) == fq2_is_square(a)
    if r is not None:
        assert fq2_mul(r, r) == a
    sq = fq2_mul(a, a)
    r = S.fq2_sqrt(sq)
    assert r is not None and fq2_mul(r, r) == sq


def test_fq2_sqrt_real_non_residue():
    """a0 a non-residue of Fq, a1 = 0: the root is purely imaginary."""
    a0 = P - 1  # -1 is not a square mod p = 3 mod 4, but it is -(1^2) = u^2
    assert S.fq_sqrt(a0) is None
    assert S.fq2_sqrt((a0, 0)) in [(0, 1), (0, P - 1)]


# --------------------------------------------------------------------------- layout and round trips


def test_uncompressed_layout_is_eip197():
    assert S.g1_to_bytes(G1_GEN) == be(1) + be(2)
    (x0, x1), (y0, y1) = G2_GEN
    assert S.g2_to_bytes(G2_GEN) == be(x1) + be(x0) + be(y1) + be(y0)
    assert S.g1_to_bytes(None) == bytes(64)
    assert S.g2_to_bytes(None) == bytes(128)
    assert S.g1_to_bytes(None, compressed=True) == b"\x40" + bytes(31)
    assert S.g2_to_bytes(None, compressed=True) == b"\x40" + bytes(63)


def test_compressed_layout_and_flags():
    b = S.g1_to_bytes(G1_GEN, compressed=True)
    assert b[0] >> 6 == S.FLAG_SMALLER and b[1:] == be(1)[1:]  # y = 2 is the smaller root
    assert S.g1_to_bytes(g1_neg(G1_GEN), compressed=True)[0] >> 6 == S.FLAG_LARGER
    for pt in G2_ALL:
        b = S.g2_to_bytes(pt, compressed=True)
        y0, y1 = pt[1]
        larger = y1 > (P - 1) // 2 if y1 else y0 > (P - 1) // 2
        assert b[0] >> 6 == (S.FLAG_LARGER if larger else S.FLAG_SMALLER)
        assert bytes([b[0] & 0x3F]) + b[1:] == be(pt[0][1]) + be(pt[0][0])


@pytest.mark.parametrize("compressed", [False, True])
def test_g1_round_trip(compressed):
    for pt in [*G1_ALL, None]:
        data = S.g1_to_bytes(pt, compressed)
        assert len(data) == (32 if compressed else 64)
        assert S.g1_from_bytes(data) == pt
        assert S.g1_from_bytes(bytearray(data), compressed) == pt
        assert S.g1_from_bytes(memoryview(data)) == pt


@pytest.mark.parametrize("compressed", [False, True])
def test_g2_round_trip(compressed):
    for pt in [*G2_ALL, None]:
        data = S.g2_to_bytes(pt, compressed)
        assert len(data) == (64 if compressed else 128)
        assert S.g2_from_bytes(data) == pt
        assert S.g2_from_bytes(data, compressed) == pt


def test_fr_round_trip_and_rejects():
    for v in [0, 1, 2**255 % R, R - 1]:
        assert S.fr_from_bytes(S.fr_to_bytes(v)) == v
        assert len(S.fr_to_bytes(v)) == 32
    assert S.fr_to_bytes(1) == be(1)
    for bad in [be(R), be(R + 1), b"\xff" * 32, bytes(31), bytes(33), b"", "0" * 32, 5, None]:
        with pytest.raises(InvalidInput):
            S.fr_from_bytes(bad)
    for bad in [-1, R, 2**256, 1.0, "1", None]:
        with pytest.raises(InvalidInput):
            S.fr_to_bytes(bad)


# --------------------------------------------------------------------------- rejected encodings


def rejects(fn, data, match=None, **kw):
    with pytest.raises(InvalidPoint, match=match):
        fn(data, **kw)


@pytest.mark.parametrize("n", [0, 1, 31, 33, 63, 65, 96, 128])
def test_g1_wrong_length(n):
    rejects(S.g1_from_bytes, bytes(n), "bytes")


@pytest.mark.parametrize("n", [0, 32, 63, 65, 127, 129, 192])
def test_g2_wrong_length(n):
    rejects(S.g2_from_bytes, bytes(n), "bytes")


def test_forced_form_wrong_length():
    rejects(S.g1_from_bytes, S.g1_to_bytes(G1_GEN), "32 bytes", compressed=True)
    rejects(S.g1_from_bytes, S.g1_to_bytes(G1_GEN, True), "64 bytes", compressed=False)
    rejects(S.g2_from_bytes, S.g2_to_bytes(G2_GEN), "64 bytes", compressed=True)
    rejects(S.g2_from_bytes, S.g2_to_bytes(G2_GEN, True), "128 bytes", compressed=False)


@pytest.mark.parametrize("bad", ["ab" * 32, list(range(64)), 7, None])
def test_wrong_type(bad):
    rejects(S.g1_from_bytes, bad, "bytes")
    rejects(S.g2_from_bytes, bad, "bytes")


def test_g1_non_canonical_coordinates():
    x, y = G1_RANDOM[0]
    for xx, yy in [(x + P, y), (x, y + P), (P, y), (x, P)]:
        if max(xx, yy) < 2**254:
            rejects(S.g1_from_bytes, be(xx) + be(yy), "canonical")
    assert 1 + P < 2**254
    rejects(S.g1_from_bytes, be(1) + be(2 + P), "canonical")
    rejects(S.g1_from_bytes, be(1 + P) + be(2), "canonical")
    comp = bytearray(be(1 + P))
    comp[0] |= S.FLAG_SMALLER << 6
    rejects(S.g1_from_bytes, bytes(comp), "canonical")
    comp = bytearray(be(P))
    comp[0] |= S.FLAG_LARGER << 6
    rejects(S.g1_from_bytes, bytes(comp), "canonical")


def test_g2_non_canonical_coordinates():
    good = S.g2_to_bytes(G2_RANDOM[0])
    for i in range(4):  # each of x.c1, x.c0, y.c1, y.c0 plus p (still below 2^254 for these values?)
        v = int.from_bytes(good[32 * i : 32 * i + 32], "big") + P
        if v < 2**256:
            bad = good[: 32 * i] + be(v) + good[32 * i + 32 :]
            rejects(S.g2_from_bytes, bad, "canonical|flag")
    cgood = S.g2_to_bytes(G2_RANDOM[0], compressed=True)
    c0 = int.from_bytes(cgood[32:], "big")
    rejects(S.g2_from_bytes, cgood[:32] + be(c0 + P), "canonical")
    c1 = int.from_bytes(bytes([cgood[0] & 0x3F]) + cgood[1:32], "big")
    if c1 + P < 2**254:
        b = bytearray(be(c1 + P))
        b[0] |= cgood[0] & 0xC0
        rejects(S.g2_from_bytes, bytes(b) + cgood[32:], "canonical")


@pytest.mark.parametrize("flags", [1, 2, 3])
def test_uncompressed_with_flags_rejected(flags):
    for enc, fn in [(S.g1_to_bytes(G1_GEN), S.g1_from_bytes), (S.g2_to_bytes(G2_GEN), S.g2_from_bytes)]:
        b = bytearray(enc)
        b[0] |= flags << 6
        rejects(fn, bytes(b), "flag")
    for size, fn in [(64, S.g1_from_bytes), (128, S.g2_from_bytes)]:  # an "infinity" with flags
        rejects(fn, bytes([flags << 6]) + bytes(size - 1), "flag")


def test_compressed_without_flag_rejected():
    rejects(S.g1_from_bytes, be(1), "flag")
    rejects(S.g1_from_bytes, bytes(32), "flag")
    rejects(S.g2_from_bytes, bytes(64), "flag")
    x = G2_GEN[0]
    rejects(S.g2_from_bytes, be(x[1]) + be(x[0]), "flag")


@pytest.mark.parametrize("bit", [0, 1, 5, 8, 100, 253])
def test_infinity_with_nonzero_bits_rejected(bit):
    for size, fn in [(32, S.g1_from_bytes), (64, S.g2_from_bytes)]:
        v = (1 << (8 * size - 2)) | (1 << (8 * size - 3 - bit))  # flag 0b01 plus one stray bit
        rejects(fn, v.to_bytes(size, "big"), "infinity")
    rejects(S.g2_from_bytes, b"\x40" + bytes(31) + be(1 << bit), "infinity")


@pytest.mark.parametrize("flag", [S.FLAG_SMALLER, S.FLAG_LARGER])
def test_x_without_y_rejected(flag):
    b = bytearray(be(g1_bad_x()))
    b[0] |= flag << 6
    rejects(S.g1_from_bytes, bytes(b), "square")
    x = g2_bad_x()
    b = bytearray(be(x[1]) + be(x[0]))
    b[0] |= flag << 6
    rejects(S.g2_from_bytes, bytes(b), "square")


def test_not_on_curve_rejected():
    rejects(S.g1_from_bytes, be(1) + be(3), "not on the curve")
    x, y = G1_RANDOM[1]
    rejects(S.g1_from_bytes, be(x) + be((y + 1) % P), "not on the curve")
    rejects(S.g1_from_bytes, be(0) + be(1), "not on the curve")
    (x0, x1), (y0, y1) = G2_RANDOM[1]
    rejects(S.g2_from_bytes, be(x1) + be(x0) + be(y1) + be((y0 + 1) % P), "not on the twist")
    rejects(S.g2_from_bytes, be(x0) + be(x1) + be(y1) + be(y0), "not on the twist")  # c0/c1 swapped
    rejects(S.g2_from_bytes, bytes(96) + be(1), "not on the twist")


def test_twist_point_outside_subgroup_rejected():
    (x0, x1), (y0, y1) = OUTSIDE_G2
    rejects(S.g2_from_bytes, be(x1) + be(x0) + be(y1) + be(y0), "subgroup")
    for flag in (S.FLAG_SMALLER, S.FLAG_LARGER):
        b = bytearray(be(x1) + be(x0))
        b[0] |= flag << 6
        rejects(S.g2_from_bytes, bytes(b), "subgroup")
    # and G2 points stay accepted next to it: Q + G2_GEN is outside too
    q = (ob.FQ2([x0, x1]), ob.FQ2([y0, y1]), ob.FQ2.one())
    s = ob.normalize(ob.add(q, ob.G2))
    s = tuple(tuple(int(c) for c in v.coeffs) for v in s[:2])
    rejects(S.g2_from_bytes, S.g2_to_bytes(s), "subgroup")


def _pe(pt):
    return (ob.FQ2(list(pt[0])), ob.FQ2(list(pt[1])), ob.FQ2.one())


def _canon(q):
    q = ob.normalize(q)
    return tuple(tuple(int(c) for c in v.coeffs) for v in q[:2])


def test_g2_subgroup_check_agrees_with_py_ecc():
    """The decoder's subgroup check against py_ecc's [r] Q == O on twist points in and out of G2."""
    outside = []
    c = 1
    while len(outside) < 4:
        y = S.fq2_sqrt(twist_rhs((c, 7)))
        if y is not None:
            outside.append(((c, 7), y))
        c += 1
    torsion = _canon(ob.multiply(_pe(OUTSIDE_G2), R))  # order divides the cofactor, not 1
    mixed = _canon(ob.add(_pe(torsion), ob.G2))
    candidates = [*G2_ALL, OUTSIDE_G2, *outside, torsion, mixed]
    for pt in candidates:
        expected = ob.is_inf(ob.multiply(_pe(pt), R))
        assert S._g2_in_subgroup(pt) == expected
        if expected:
            assert S.g2_from_bytes(S.g2_to_bytes(pt, compressed=True)) == pt
        else:
            rejects(S.g2_from_bytes, S.g2_to_bytes(pt), "subgroup")
    assert not ob.is_inf(_pe(torsion)) and sum(S._g2_in_subgroup(p) for p in candidates) == len(G2_ALL)


def test_encoders_reject_bad_points():
    for bad in [(1, 3), (P + 1, 2), (1, -2), (1,), "pt", (1.0, 2.0)]:
        for c in (False, True):
            with pytest.raises(InvalidPoint):
                S.g1_to_bytes(bad, c)
    (x0, x1), (y0, y1) = G2_GEN
    for bad in [((x0, x1), (y0, y1 + 1)), ((x0 + P, x1), (y0, y1)), ((x0, x1), y0), (1, 2)]:
        for c in (False, True):
            with pytest.raises(InvalidPoint):
                S.g2_to_bytes(bad, c)


# --------------------------------------------------------------------------- bulk G1


def _bulk_ints(arr: np.ndarray) -> list:
    xs = fast.fq_to_ints(np.ascontiguousarray(arr[:, 0, :]))
    ys = fast.fq_to_ints(np.ascontiguousarray(arr[:, 1, :]))
    return [None if x == y == 0 else (x, y) for x, y in zip(xs, ys, strict=True)]


@pytest.mark.parametrize("compressed", [False, True])
def test_g1_from_bytes_many(compressed):
    pts = [*G1_ALL, None, G1_GEN, None]
    data = b"".join(S.g1_to_bytes(p, compressed) for p in pts)
    arr = S.g1_from_bytes_many(data, len(pts))
    assert arr.shape == (len(pts), 2, 4) and arr.dtype == np.uint64
    assert _bulk_ints(arr) == pts
    assert not arr[len(G1_ALL)].any()  # infinity is all zeros
    assert _bulk_ints(S.g1_from_bytes_many(data, len(pts), compressed)) == pts
    expect = fast.fq_from_ints([G1_GEN[0], G1_GEN[1]])
    assert (arr[0] == expect).all()  # Montgomery form, as the fast backend stores it


def test_g1_from_bytes_many_sizes():
    assert S.g1_from_bytes_many(b"", 0).shape == (0, 2, 4)
    with pytest.raises(InvalidPoint):
        S.g1_from_bytes_many(bytes(64), 0)
    for count, n in [(2, 64 * 2 + 1), (2, 63), (3, 64 * 2), (1, 96)]:
        with pytest.raises(InvalidPoint, match="bytes"):
            S.g1_from_bytes_many(bytes(n), count)
    with pytest.raises(InvalidPoint):
        S.g1_from_bytes_many(bytes(64), 1, compressed=True)
    with pytest.raises(InvalidInput):
        S.g1_from_bytes_many(bytes(64), -1)


def _bad_g1_encodings(compressed: bool) -> list[bytes]:
    """One encoding for each rejection reason of the given form."""
    if not compressed:
        x, y = G1_RANDOM[0]
        flagged = bytearray(S.g1_to_bytes(G1_GEN))
        flagged[0] |= 0x80
        return [be(1) + be(3), be(1 + P) + be(2), be(1) + be(2 + P), bytes(flagged), b"\x40" + bytes(63)]
    nosqrt = bytearray(be(g1_bad_x()))
    nosqrt[0] |= 0x80
    noncanon = bytearray(be(1 + P))
    noncanon[0] |= 0xC0
    return [be(1), bytes(nosqrt), bytes(noncanon), b"\x40" + bytes(30) + b"\x01", b"\x7f" + bytes(31)]


@pytest.mark.parametrize("compressed", [False, True])
def test_g1_from_bytes_many_rejects(compressed):
    good = [S.g1_to_bytes(p, compressed) for p in G1_RANDOM[:5]]
    for bad in _bad_g1_encodings(compressed):
        with pytest.raises(InvalidPoint):
            S.g1_from_bytes(bad)
        with pytest.raises(InvalidPoint, match="point 3"):
            S.g1_from_bytes_many(b"".join(good[:3] + [bad] + good[3:]), 6)


# --------------------------------------------------------------------------- fuzzing


def _decode_or_invalid(fn, data, **kw):
    try:
        return fn(data, **kw)
    except InvalidPoint:
        return "invalid"


def exact(n: int):
    return st.binary(min_size=n, max_size=n)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=140), exact(32), exact(64)))
def test_fuzz_g1(data):
    out = _decode_or_invalid(S.g1_from_bytes, data)
    if out not in ("invalid", None):
        assert S.g1_to_bytes(out, compressed=len(data) == 32) == data  # canonical: one encoding per point
    if len(data) in (32, 64):
        bulk = _decode_or_invalid(S.g1_from_bytes_many, data, count=1)
        assert isinstance(bulk, str) == (out == "invalid")
        if out != "invalid":
            assert _bulk_ints(bulk) == [out]


@st.composite
def flagged_x(draw, size: int):
    """Mostly-plausible compressed encodings: a random flag over a random x (often < p)."""
    flag = draw(st.integers(0, 3))
    words = [draw(st.integers(0, P - 1)) for _ in range(size // 32)]
    raw = bytearray(b"".join(be(w) for w in words))
    raw[0] |= flag << 6
    return bytes(raw)


@settings(max_examples=200, deadline=None)
@given(data=flagged_x(32))
def test_fuzz_g1_compressed(data):
    out = _decode_or_invalid(S.g1_from_bytes, data)
    if out not in ("invalid", None):
        assert S.g1_to_bytes(out, compressed=True) == data


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(st.binary(max_size=140), exact(64), flagged_x(64), flagged_x(128)))
def test_fuzz_g2(data):
    out = _decode_or_invalid(S.g2_from_bytes, data)
    if out not in ("invalid", None):
        assert S.g2_to_bytes(out, compressed=len(data) == 64) == data
