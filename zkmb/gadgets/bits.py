"""Bits, bytes and 32-bit words in a circuit, and the byte <-> field-element packing of SPEC §7.

Representation: a *bit* is an :class:`~zkmb.r1cs.LC` whose value is 0 or 1; a *byte* is a list of
8 bits and a *word* (uint32) a list of 32 bits, both least-significant bit first, so rotations and
shifts only re-index (no constraints).  Constant bits are constant LCs, and every gadget folds them
(a constant costs nothing).

Booleanity is a contract: every bit these gadgets return is boolean *by construction* (it is a
``to_bits`` wire, a square ``(a - b)^2`` of a difference of bits, ``1 -`` a bit, or a constant), so
it is constrained exactly once and never re-asserted.  Bits that enter from outside come through
:func:`byte_from_value`, :func:`u32_from_value`, :func:`unpack_bytes` or :func:`bits_from_values`,
which constrain them (once).  The frontend only tracks booleanity of plain wires, so do not hand
these bits to ``api.assert_boolean``/``api.select``/``api.from_bits`` expecting it to know: use
:func:`pack_bits` to recompose (0 constraints).

Constraint counts (all inputs variable):

=================================  =========================================================
``bit_xor``                         1 (``(a - b)^2``), 0 if an input is constant
``bit_xor3``                        2
``bit_and`` / ``bit_ch``            1
``bit_maj``                         2 (1 if an input is constant)
``bit_not``, rotations, shifts      0
(inside ``shared_products``)        a product already made in the block costs 0 (see there)
``add_mod(terms, n)``, ``add_u32``  m + 1 for an m-bit bound of the sum: 34 for 2 words, 35 for 3-4,
                                    36 for 5-8; ``lazy_sum`` 0 (the sum stays unreduced)
``byte_from_value``                 9 (8 booleans + recomposition)
``unpack_bytes`` (k bytes/element)  8k + 1 per element
``pack_bits`` / ``pack_bytes_lc``   0
=================================  =========================================================
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from ..algebra.params import R
from ..errors import InvalidInput
from ..r1cs import API, LC, Witness
from ..r1cs.lc import as_terms, const_value

__all__ = [
    "BYTES_PER_ELEMENT",
    "Bits",
    "Lazy",
    "add_mod",
    "add_u32",
    "and_bits",
    "bit_and",
    "bit_ch",
    "bit_maj",
    "bit_not",
    "bit_xor",
    "bit_xor3",
    "bits_bound",
    "bits_from_values",
    "byte_from_value",
    "bytes_from_values",
    "bytes_to_u32_be",
    "const_bits",
    "const_bytes",
    "const_u32",
    "flatten_bytes",
    "lazy_sum",
    "lc_value",
    "not_bits",
    "pack_bits",
    "pack_bytes",
    "pack_bytes_lc",
    "rotr",
    "shared_memo",
    "shared_products",
    "shr",
    "u32_from_value",
    "u32_to_bytes_be",
    "unpack_bytes",
    "unpack_bytes_native",
    "witness_bytes",
    "witness_int",
    "xor3_bits",
    "xor_bits",
]

Bits = list[LC]
"""Known-boolean LCs, least significant first (a byte has 8, a word 32)."""

Lazy = tuple[LC, int]
"""An unreduced non-negative integer: ``(value, bound)`` with ``0 <= value <= bound`` guaranteed."""

BYTES_PER_ELEMENT = 31
"""SPEC §7: bytes are packed at most 31 per field element, big-endian."""

_ZERO = LC.constant(0)
_ONE = LC.constant(1)
_CONST_BITS = (_ZERO, _ONE)
_POW2 = [1 << i for i in range(254)]


def _lc(x) -> LC:
    return x if type(x) is LC else LC(as_terms(x))


# --------------------------------------------------------------------------- constants


def const_bits(value: int, n: int) -> Bits:
    """The n low bits of a non-negative integer constant (no wires)."""
    if value < 0 or value >> n:
        raise InvalidInput(f"constant {value} does not fit in {n} bits")
    return [_CONST_BITS[(value >> i) & 1] for i in range(n)]


def const_u32(value: int) -> Bits:
    """A constant 32-bit word."""
    return const_bits(value, 32)


def const_bytes(data: bytes) -> list[Bits]:
    """Constant bytes (one 8-bit list per byte)."""
    return [const_bits(b, 8) for b in bytes(data)]


# --------------------------------------------------------------------------- shared products

_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""API -> {product key: product LC} while a :func:`shared_products` block is open on it."""


@contextmanager
def shared_products(api: API) -> Iterator[None]:
    """Within the block, the bit gadgets (xor, Ch, Maj, and) make each distinct product once.

    A product wire is constrained to equal its two operands' product by its one constraint, so a
    later product of the *same* operands may reuse it: the value is the same, nothing is left
    unconstrained.  Xors are normalised first (``(1 - x) xor y = 1 - (x xor y)``), so words that
    differ by a constant xor (an HMAC key's ipad and opad blocks) share their sigma xors.  Used
    where one value feeds several compressions (:func:`~zkmb.gadgets.hmac.co_key_schedule`); it
    changes nothing outside such a block.  Blocks may nest (the outermost one owns the table).
    """
    if api in _SHARED:
        yield
        return
    _SHARED[api] = {}
    try:
        yield
    finally:
        del _SHARED[api]


def shared_memo(api: API) -> dict | None:
    """The table of the open :func:`shared_products` block on ``api`` (None outside one), for gadgets
    that reuse other deterministic, fully constrained results the same way (keys must not collide
    with product keys: use a tuple starting with a string)."""
    return _SHARED.get(api) if _SHARED else None


def _key(t) -> tuple:
    return tuple(sorted(t.items()))


def _mul(api: API, a: LC, b: LC) -> LC:
    """``api.mul(a, b)``, or the product already made for the same operands in a shared block."""
    memo = _SHARED.get(api) if _SHARED else None
    if memo is None:
        return api.mul(a, b)
    ka, kb = _key(a.t), _key(b.t)
    key = (ka, kb) if ka <= kb else (kb, ka)
    out = memo.get(key)
    if out is None:
        out = memo[key] = api.mul(a, b)
    return out


def _strip_not(x: LC) -> tuple[LC, int]:
    """(y, 1) if x is ``1 - y`` for a single wire y, else (x, 0)."""
    t = x.t
    if len(t) == 2 and t.get(0) == 1:
        for k, v in t.items():
            if k and v == R - 1:
                return LC({k: 1}), 1
    return x, 0


# --------------------------------------------------------------------------- single bits


def bit_not(a) -> LC:
    """1 - a (0 constraints)."""
    return _ONE - _lc(a)


def bit_xor(api: API, a, b) -> LC:
    """a xor b as the product wire ``(a - b)^2`` (1 constraint; 0 if either side is constant)."""
    a, b = _lc(a), _lc(b)
    ca = const_value(a.t)
    if ca is not None:
        return b if ca == 0 else _ONE - b
    cb = const_value(b.t)
    if cb is not None:
        return a if cb == 0 else _ONE - a
    if _SHARED and api in _SHARED:
        (a, fa), (b, fb) = _strip_not(a), _strip_not(b)
        d = a - b if _key(a.t) <= _key(b.t) else b - a
        out = _mul(api, d, d)
        return _ONE - out if fa ^ fb else out
    d = a - b
    return api.mul(d, d)


def bit_xor3(api: API, a, b, c) -> LC:
    """a xor b xor c (2 constraints; constants folded, so fewer when an input is constant)."""
    flip = 0
    var: list[LC] = []
    for x in (a, b, c):
        x = _lc(x)
        cx = const_value(x.t)
        if cx is None:
            var.append(x)
        else:
            flip ^= cx
    if not var:
        return _CONST_BITS[flip]
    out = var[0]
    for x in var[1:]:
        out = bit_xor(api, out, x)
    return _ONE - out if flip else out


def bit_and(api: API, a, b) -> LC:
    """a and b (1 constraint unless a side is constant)."""
    return _mul(api, _lc(a), _lc(b))


def bit_ch(api: API, e, f, g) -> LC:
    """SHA-256 Ch: f if e else g, as ``g + e (f - g)`` (1 constraint)."""
    g = _lc(g)
    return g + _mul(api, _lc(e), _lc(f) - g)


def bit_maj(api: API, a, b, c) -> LC:
    """Majority of three bits: ``b + (a xor b)(c - b)`` (2 constraints, 1 when an input is constant).

    The formula is symmetric in value, so constant inputs are moved to the front, where the xor
    is free.
    """
    xs = sorted((_lc(a), _lc(b), _lc(c)), key=lambda x: const_value(x.t) is None)
    a, b, c = xs
    return b + _mul(api, bit_xor(api, a, b), c - b)


# --------------------------------------------------------------------------- bit vectors


def xor_bits(api: API, xs: Sequence, ys: Sequence) -> Bits:
    """Bitwise xor of two equal-length bit vectors (1 constraint per variable pair)."""
    if len(xs) != len(ys):
        raise InvalidInput("xor_bits: lengths differ")
    return [bit_xor(api, x, y) for x, y in zip(xs, ys, strict=True)]


def xor3_bits(api: API, xs: Sequence, ys: Sequence, zs: Sequence) -> Bits:
    """Bitwise xor of three equal-length bit vectors (2 constraints per all-variable position)."""
    if not len(xs) == len(ys) == len(zs):
        raise InvalidInput("xor3_bits: lengths differ")
    return [bit_xor3(api, x, y, z) for x, y, z in zip(xs, ys, zs, strict=True)]


def and_bits(api: API, xs: Sequence, ys: Sequence) -> Bits:
    """Bitwise and (1 constraint per variable pair)."""
    if len(xs) != len(ys):
        raise InvalidInput("and_bits: lengths differ")
    return [bit_and(api, x, y) for x, y in zip(xs, ys, strict=True)]


def not_bits(xs: Sequence) -> Bits:
    """Bitwise not (0 constraints)."""
    return [bit_not(x) for x in xs]


def rotr(word: Sequence, n: int) -> Bits:
    """Rotate right by n (re-indexing only)."""
    m = len(word)
    return [word[(i + n) % m] for i in range(m)]


def shr(word: Sequence, n: int) -> Bits:
    """Logical shift right by n (re-indexing only; zeros enter at the top)."""
    m = len(word)
    return [word[i + n] if i + n < m else _ZERO for i in range(m)]


# --------------------------------------------------------------------------- packing bits into one value


def pack_bits(bits: Sequence) -> LC:
    """``sum bits[i] * 2^i`` as one LC (0 constraints; the bits must be known boolean).

    At most 253 bits, so the value is below r and the packing is unique.
    """
    if len(bits) > 253:
        raise InvalidInput("pack_bits: more than 253 bits would wrap modulo r")
    out: dict[int, int] = {}
    get = out.get
    for i, b in enumerate(bits):
        t = as_terms(b)
        if not t:
            continue
        p = _POW2[i]
        for k, v in t.items():
            nv = (get(k, 0) + v * p) % R
            if nv:
                out[k] = nv
            else:
                del out[k]
    return LC(out)


def bits_bound(bits: Sequence) -> int:
    """The largest value ``pack_bits(bits)`` can take: constant bits count at their value, others as 1."""
    total = 0
    for i, b in enumerate(bits):
        c = const_value(as_terms(b))
        if c is None or c:
            total += _POW2[i]
    return total


def lazy_sum(terms: Iterable) -> Lazy:
    """The unreduced integer sum of terms as ``(lc, bound)`` (0 constraints).

    A term is a bit vector (a list of known-boolean bits, value ``pack_bits``), a non-negative int
    constant, or a :data:`Lazy` pair.  The bound is the sum of the terms' bounds.
    """
    acc: dict[int, int] = {}
    get = acc.get
    bound = 0
    for t in terms:
        if isinstance(t, int):
            if t < 0:
                raise InvalidInput("a constant summand is negative")
            bound += t
            p = as_terms(t)
        elif isinstance(t, tuple) and len(t) == 2 and isinstance(t[1], int):
            if t[1] < 0:
                raise InvalidInput("a summand has a negative bound")
            bound += t[1]
            p = as_terms(t[0])
        else:
            bound += bits_bound(t)
            p = pack_bits(t).t
        for k, v in p.items():
            nv = get(k, 0) + v
            if nv >= R:
                nv -= R
            if nv:
                acc[k] = nv
            else:
                del acc[k]
    return LC(acc), bound


def add_mod(api: API, terms: Iterable, n: int = 32) -> Bits:
    """(sum of terms) mod 2^n as n bits, with a single decomposition of the sum.

    Terms as in :func:`lazy_sum`.  The integer sum is at most the sum of the bounds ``B`` (far below
    r), so it is decomposed into ``m = B.bit_length()`` bits: m + 1 constraints, and the bits are
    unique.  The low n bits are returned (every one boolean); the m - n carry bits are constrained
    and dropped.
    """
    value, bound = lazy_sum(terms)
    if bound >= R >> 1:
        raise InvalidInput("add_mod: the bound of the sum is too large for a unique decomposition")
    m = max(bound.bit_length(), 1)
    bits = api.to_bits(value, m)
    if m >= n:
        return bits[:n]
    return bits + [_ZERO] * (n - m)


def add_u32(api: API, *words) -> Bits:
    """Sum of words (bit vectors or int constants) mod 2^32 (one decomposition, see :func:`add_mod`)."""
    return add_mod(api, words, 32)


# --------------------------------------------------------------------------- bytes and words


def u32_to_bytes_be(word: Sequence) -> list[Bits]:
    """The 4 bytes of a word, big-endian (re-indexing only)."""
    return [list(word[24 - 8 * k : 32 - 8 * k]) for k in range(4)]


def bytes_to_u32_be(four: Sequence[Sequence]) -> Bits:
    """The word whose big-endian bytes are ``four`` (re-indexing only)."""
    if len(four) != 4 or any(len(b) != 8 for b in four):
        raise InvalidInput("bytes_to_u32_be needs 4 bytes of 8 bits")
    out: Bits = []
    for k in range(3, -1, -1):
        out.extend(four[k])
    return out


def flatten_bytes(byte_list: Sequence[Sequence]) -> Bits:
    """All bits of a byte string, byte by byte, each byte least-significant bit first."""
    return [b for byte in byte_list for b in byte]


def bits_from_values(api: API, values: Sequence) -> Bits:
    """Values constrained to be bits (``assert_boolean``, 1 constraint each unless already known)."""
    out: Bits = []
    for v in values:
        v = _lc(v)
        api.assert_boolean(v)
        out.append(v)
    return out


def byte_from_value(api: API, x) -> Bits:
    """The 8 bits of a value constrained to be a byte (9 constraints; the range check of SPEC §7)."""
    return api.to_bits(x, 8)


def bytes_from_values(api: API, values: Sequence) -> list[Bits]:
    """Bytes from field values, each range-checked (9 constraints per byte)."""
    return [byte_from_value(api, v) for v in values]


def u32_from_value(api: API, x) -> Bits:
    """The 32 bits of a value constrained to be a uint32 (33 constraints)."""
    return api.to_bits(x, 32)


# ------------------------------------------------------------------ packing bytes into field elements


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(i, min(i + BYTES_PER_ELEMENT, n)) for i in range(0, n, BYTES_PER_ELEMENT)]


def pack_bytes(data: bytes) -> list[int]:
    """Native packing (SPEC §7): consecutive 31-byte chunks, each read as a big-endian integer.

    The last chunk may be shorter and is read as is (no padding); empty data packs to ``[]``.
    This is the one encoding shared by witness code, the circuits and the tests.
    """
    data = bytes(data)
    return [int.from_bytes(data[i:j], "big") for i, j in _chunks(len(data))]


def unpack_bytes_native(elements: Sequence[int], length: int) -> bytes:
    """Inverse of :func:`pack_bytes` for ``length`` bytes; InvalidInput if the elements do not fit."""
    spans = _chunks(length)
    if len(elements) != len(spans):
        raise InvalidInput(f"{length} bytes pack into {len(spans)} elements, got {len(elements)}")
    out = bytearray()
    for e, (i, j) in zip(elements, spans, strict=True):
        if not isinstance(e, int) or e < 0 or e >> (8 * (j - i)):
            raise InvalidInput(f"packed element does not encode {j - i} bytes")
        out += e.to_bytes(j - i, "big")
    return bytes(out)


def pack_bytes_lc(byte_list: Sequence[Sequence]) -> list[LC]:
    """In-circuit twin of :func:`pack_bytes` on known-boolean bytes (0 constraints)."""
    out: list[LC] = []
    for i, j in _chunks(len(byte_list)):
        bits: list = []
        for byte in reversed(byte_list[i:j]):  # big-endian: the last byte is the least significant
            if len(byte) != 8:
                raise InvalidInput("pack_bytes_lc: a byte needs 8 bits")
            bits.extend(byte)
        out.append(pack_bits(bits))
    return out


def unpack_bytes(api: API, elements: Sequence, length: int) -> list[Bits]:
    """The ``length`` bytes packed in ``elements`` (as by :func:`pack_bytes`), every byte range-checked.

    Each element is decomposed into exactly 8k bits for its k <= 31 bytes (8k + 1 constraints), so an
    element that does not encode k bytes is unsatisfiable.
    """
    spans = _chunks(length)
    if len(elements) != len(spans):
        raise InvalidInput(f"{length} bytes pack into {len(spans)} elements, got {len(elements)}")
    out: list[Bits] = []
    for e, (i, j) in zip(elements, spans, strict=True):
        k = j - i
        bits = api.to_bits(e, 8 * k)
        out.extend(bits[8 * (k - 1 - m) : 8 * (k - m)] for m in range(k))
    return out


# --------------------------------------------------------------------------- reading values from a witness


def _values(w) -> Sequence[int]:
    return w.to_ints() if isinstance(w, Witness) else w


def lc_value(w, x) -> int:
    """The value in [0, r) of an LC under a witness (a Witness, or its ``to_ints()`` list: pass the
    list when reading many values, the conversion costs a pass over every wire)."""
    vals = _values(w)
    return sum(c * vals[k] for k, c in as_terms(x).items()) % R


def witness_int(w, bits: Sequence) -> int:
    """The integer encoded by little-endian bits under a witness (InvalidInput if a bit is not 0/1)."""
    vals = _values(w)
    out = 0
    for i, b in enumerate(bits):
        v = lc_value(vals, b)
        if v > 1:
            raise InvalidInput("witness_int: a bit is neither 0 nor 1")
        out |= v << i
    return out


def witness_bytes(w, byte_list: Sequence[Sequence]) -> bytes:
    """The bytes encoded by a list of 8-bit vectors under a witness."""
    vals = _values(w)
    return bytes(witness_int(vals, byte) for byte in byte_list)
