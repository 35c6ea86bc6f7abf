"""The compact proving-key format (zkmb.groth16.compact) and the bulk compressed point codecs.

Round trip against the full key; every malformed encoding refused with a message naming the array and
the point (a checksum-consistent file, as a hostile middlebox would serve: the payload checksum only
catches accidents); the full-file payload checksum and the header's counts checked.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from tests.groth16.test_groth16 import Bits, Cube
from tests.groth16.test_snarkjs_format import twist_point_outside_g2
from zkmb.algebra import fast
from zkmb.algebra.params import P
from zkmb.algebra.serialize import (
    g1_compress_many,
    g1_decompress_many,
    g1_to_bytes,
    g2_compress_many,
    g2_decompress_many,
    g2_to_bytes,
)
from zkmb.errors import InvalidInput, InvalidPoint
from zkmb.groth16.compact import ARRAYS, read_compact_pk, write_compact_pk
from zkmb.groth16.keys import ProvingKey
from zkmb.groth16.setup import setup
from zkmb.r1cs import compile

_PREFIX = struct.Struct("<8sII32sQ")


@pytest.fixture(scope="module")
def keys():
    cs = compile(Bits)
    pk, _ = setup(cs)
    return cs, pk


# --------------------------------------------------------------------------- bulk codecs


def test_bulk_codecs_match_the_single_point_forms():
    g1 = fast.g1_mul_generator(list(range(1, 40)) + [0])  # the last one is infinity
    g2 = fast.g2_mul_generator(list(range(1, 20)) + [0])
    c1, c2 = g1_compress_many(g1), g2_compress_many(g2)
    assert c1 == b"".join(g1_to_bytes(p, True) for p in fast.g1_to_affine(g1))
    assert c2 == b"".join(g2_to_bytes(p, True) for p in fast.g2_to_affine(g2))
    assert np.array_equal(g1_decompress_many(c1, 40, allow_infinity=True), g1)
    assert np.array_equal(g2_decompress_many(c2, 20, allow_infinity=True), g2)
    with pytest.raises(InvalidPoint, match="G1 point 39: the point at infinity is not allowed"):
        g1_decompress_many(c1, 40)
    with pytest.raises(InvalidPoint, match="G2 point 19: the point at infinity is not allowed"):
        g2_decompress_many(c2, 20)
    with pytest.raises(InvalidPoint, match="must be"):
        g1_decompress_many(c1[:-1], 40)


def _g2_cases():
    good = g2_to_bytes(fast.g2_to_affine(fast.g2_mul_generator([7]))[0], True)
    outside = g2_to_bytes(twist_point_outside_g2(), True)
    c0 = int.from_bytes(good[32:], "big")  # x.c0 carries no flags: x.c0 + p is the same residue
    noncanon = bytearray(good)
    noncanon[32:] = (c0 + P).to_bytes(32, "big")
    no_flag = bytes([good[0] & 0x3F]) + good[1:]
    inf_bits = bytes([0x40]) + bytes(62) + b"\x01"
    # an x with no point on the twist: try x = (k, 0) until x^3 + b' is not a square
    from zkmb.algebra.params import B_G2
    from zkmb.algebra.serialize import fq2_sqrt

    k = 1
    while fq2_sqrt(((k**3 + B_G2[0]) % P, B_G2[1])) is not None:
        k += 1
    no_y = bytes([0x80]) + (0).to_bytes(31, "big") + k.to_bytes(32, "big")
    return [
        (outside, "point not in the prime-order subgroup"),
        (bytes(noncanon), "coordinate not canonical"),
        (no_flag, "invalid flag bits"),
        (inf_bits, "infinity encoding with non-zero bits"),
        (no_y, "x coordinate has no point on the curve"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_g2_decompress_refuses(case):
    data, why = _g2_cases()[case]
    good = g2_compress_many(fast.g2_mul_generator([1, 2, 3]))
    with pytest.raises(InvalidPoint, match=f"G2 point 2: {why}"):
        g2_decompress_many(good[:128] + data, 3, allow_infinity=True)


# --------------------------------------------------------------------------- compact files


def test_round_trip(keys, tmp_path):
    cs, pk = keys
    path = tmp_path / "k.pkc"
    rec = write_compact_pk(pk, path)
    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    back = read_compact_pk(path, cs)
    for k in ("a", "b1", "b2", "c", "h", "beta_1", "delta_1"):
        assert np.array_equal(getattr(back, k), getattr(pk, k)), k
    for k in ("alpha_1", "beta_2", "gamma_2", "delta_2", "ic"):
        assert np.array_equal(getattr(back.vk, k), getattr(pk.vk, k)), k
    for m in ("a_rows", "b_rows"):
        r1, r2 = getattr(back, m), getattr(pk, m)
        assert all(np.array_equal(getattr(r1, f), getattr(r2, f)) for f in ("ptr", "cols", "vals"))
    assert back.source_sha256 == rec["sha256"] and back.digest == pk.digest
    # the decompressed cache names its source; a full key file is ~4x the compact one here
    back.save(tmp_path / "k.pk")
    assert ProvingKey.load(tmp_path / "k.pk").source_sha256 == rec["sha256"]
    assert (tmp_path / "k.pk").stat().st_size > 2 * rec["bytes"]


def _layout(raw: bytes):
    """(header, start, {name: (count, present, bitmap offset, points offset, point size)})."""
    from zkmb.groth16.compact import _counts

    hlen = _PREFIX.unpack(raw[: _PREFIX.size])[4]
    header = json.loads(raw[_PREFIX.size : _PREFIX.size + hlen])
    counts = _counts(header["n_vars"], header["n_public"], header["domain_size"])
    off = _PREFIX.size + hlen
    out = {}
    for (name, group), k in zip(ARRAYS, header["present"], strict=True):
        nb = (counts[name] + 7) // 8
        size = 32 if group == 1 else 64
        out[name] = (counts[name], k, off, off + nb, size)
        off += nb + k * size
    return header, _PREFIX.size + hlen, out


def _reseal(raw: bytearray) -> bytes:
    """Recompute the payload checksum in the header (what a hostile server would do)."""
    header, start, _ = _layout(bytes(raw))
    old = header["payload_sha256"]
    new = hashlib.sha256(bytes(raw[start:])).hexdigest()
    return bytes(raw).replace(old.encode(), new.encode(), 1)


def _flip_x(name):
    """Flip the lowest bit of x of the first point where that leaves an x with no point on the curve."""

    def edit(raw, lay):
        _, k_max, _, poff, size = lay[name]
        for k in range(k_max):
            i = poff + k * size
            x = (int.from_bytes(raw[i : i + 32], "big") & ((1 << 254) - 1)) ^ 1
            if x < P and pow((x**3 + 3) % P, (P - 1) // 2, P) == P - 1:  # x^3 + 3 not a square
                raw[i + size - 1] ^= 0x01
                return raw
        raise AssertionError("no such point")

    return edit


def _flags(name, k, flags):
    def edit(raw, lay):
        _, _, _, poff, size = lay[name]
        i = poff + k * size
        raw[i] = (raw[i] & 0x3F) | (flags << 6)
        return raw

    return edit


def _plus_p(name):
    """x + p in place of x for the first point whose x + p still fits below the flag bits (2^254)."""

    def edit(raw, lay):
        _, k_max, _, poff, size = lay[name]
        for k in range(k_max):
            i = poff + k * size
            x = int.from_bytes(raw[i : i + 32], "big") & ((1 << 254) - 1)
            if x + P < 1 << 254:
                fl = raw[i] & 0xC0
                raw[i : i + 32] = (x + P).to_bytes(32, "big")
                raw[i] |= fl
                return raw
        raise AssertionError("no point with a small x")

    return edit


def _b2_outside(raw, lay):
    _, _, _, poff, _ = lay["b2"]
    raw[poff + 64 : poff + 128] = g2_to_bytes(twist_point_outside_g2(), True)
    return raw


def _bitmap_padding(raw, lay):
    _, _, _, poff, _ = lay["ic"]
    raw[poff - 1] |= 0x80  # a bit past the last IC point
    return raw


def _bitmap_count(raw, lay):
    cnt, k, boff, poff, _ = lay["a"]
    bits = np.unpackbits(np.frombuffer(bytes(raw[boff:poff]), np.uint8), bitorder="little")[:cnt]
    i = int(np.flatnonzero(bits == 0)[0]) if (bits == 0).any() else None
    assert i is not None, "the A query of the test circuit has an infinity point"
    raw[boff + i // 8] |= 1 << (i % 8)  # claims one more point than the header's count
    return raw


def _alpha_missing(raw, lay):
    _, _, boff, _, _ = lay["alpha_1"]
    raw[boff] = 0
    return raw


CORRUPT = {
    "h off curve": (_flip_x("h"), "h: G1 point \\d+: x coordinate has no point on the curve"),
    "c infinity flag": (_flags("c", 2, 0b01), "c: G1 point 2: the point at infinity is not allowed"),
    "a no flag": (_flags("a", 1, 0b00), "a: G1 point 1: invalid flag bits"),
    "b1 non-canonical": (_plus_p("b1"), "b1: G1 point \\d+: coordinate not canonical"),
    "b2 outside G2": (_b2_outside, "b2: G2 point 1: point not in the prime-order subgroup"),
    "bitmap padding": (_bitmap_padding, "ic: the presence bitmap does not match"),
    "bitmap count": (_bitmap_count, "a: the presence bitmap does not match"),
    "alpha missing": (_alpha_missing, "alpha_1: the presence bitmap does not match"),
}


@pytest.mark.parametrize("what", list(CORRUPT))
def test_corrupt_points_refused(keys, tmp_path, what):
    cs, pk = keys
    path = tmp_path / "k.pkc"
    write_compact_pk(pk, path)
    raw = bytearray(path.read_bytes())
    edit, match = CORRUPT[what]
    _, _, lay = _layout(bytes(raw))
    raw = edit(raw, lay)
    path.write_bytes(_reseal(raw))
    with pytest.raises(InvalidInput, match=match):
        read_compact_pk(path, cs)


def test_file_level_checks(keys, tmp_path):
    cs, pk = keys
    path = tmp_path / "k.pkc"
    write_compact_pk(pk, path)
    good = path.read_bytes()
    cases = [
        (good[:-1], "file size"),
        (good[:20], "truncated"),
        (good + b"\0", "file size"),
        (b"ZKMBPKD\0" + good[8:], "bad magic"),
        (good[:-1] + bytes([good[-1] ^ 1]), "checksum mismatch"),
    ]
    for data, match in cases:
        path.write_bytes(data)
        with pytest.raises(InvalidInput, match=match):
            read_compact_pk(path, cs)
    path.write_bytes(good)
    with pytest.raises(InvalidInput, match="another circuit"):
        read_compact_pk(path, compile(Cube))
    with pytest.raises(InvalidInput, match="another circuit"):
        read_compact_pk(path, cs, expect_digest=bytes(32))
    # counts that do not fit the circuit (header rewritten consistently)
    header, start, _ = _layout(good)
    header["n_vars"] += 1
    body = json.dumps(header, sort_keys=True).encode()
    magic, ver, fl, dig, _ = _PREFIX.unpack(good[: _PREFIX.size])
    path.write_bytes(_PREFIX.pack(magic, ver, fl, dig, len(body)) + body + good[start:])
    with pytest.raises(InvalidInput, match="wires"):
        read_compact_pk(path, cs)
