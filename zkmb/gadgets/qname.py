"""The DNS QNAME of a query as the packed policy key (SPEC §5.4, §6), with its native twin.

Input: a window of ``W`` bytes starting at the QNAME (``P[14..]`` in the Q statement), each byte a
list of 8 *known-boolean* bits, least significant first (the :mod:`.bits` contract: the caller has
range-checked them, e.g. they are xor outputs or come from ``byte_from_value``).  Only the first
``W' = min(W, 255)`` bytes are read: a name never exceeds 255 octets.

The circuit is satisfiable exactly when the window starts with an uncompressed name by §5.4: labels
of 1-63 bytes, each byte in 0x21-0x7E except ``.``, then a 0 byte, all within ``W'`` bytes.  A
compression pointer, an extended label type (length bytes 0x40-0xFF), a bad byte, or a missing
terminator makes it unsatisfiable (no validity flag).  The root name (a lone 0 byte) is accepted with
the empty key: the non-membership proof rejects it (the empty key is the minimum sentinel).

Outputs (:class:`QnameKey`), fully determined by the window:

* ``elements``: the §6 key ``rev(l_m) "." ... rev(l_1) "."`` with ``A``-``Z`` folded to lower case,
  zero-padded to 254 bytes and packed 31 bytes per element big-endian (:func:`.bits.pack_bytes`):
  9 elements, the last holding 6 bytes; each below ``2^248``.
* ``key_len = wire_len - 1`` and ``wire_len`` (QTYPE starts at window offset ``wire_len``).
* ``end``: ``W'`` bits, the one-hot of the terminator's position ``wire_len - 1`` (free; e.g. to
  locate QTYPE/QCLASS).

Input choice: bits rather than byte values because the statement's plaintext bytes are xor outputs
(bits) anyway, and the rules and the case fold read individual bits.

Construction, per position j < W' (byte value ``b_j``):

* a counter ``c_j`` of label bytes still to come: ``c_0 = 0``, ``s_j = [c_j = 0]`` marks a length
  byte, ``c_{j+1} = c_j - 1 + s_j (b_j + 1)`` (= ``b_j`` at a length byte, since ``s_j c_j = 0``);
  hence at a length byte ``s_{j+1} = [b_j = 0]``;
* the active flag ``a_j = [j < wire_len]``: ``a_0 = 1``, terminator ``t_j = a_j s_j s_{j+1}``,
  ``a_{j+1} = a_j - t_j``; ``sum t_j = 1`` (a terminator within the window);
* an active length byte has bits 6 and 7 clear (1-63, or 0 = terminator); an active label byte
  ``l_j = a_j - a_j s_j`` has bit 7 clear, bits 6/5 not both clear (so 0x20-0x7F) and
  ``(b - 0x20)(b - 0x2E)(b - 0x7F)`` invertible;
* the key byte ``D_j`` = ``.`` at a length byte, else ``b_j + 32 [0x41 <= b_j <= 0x5A]``.

The key is the byte-reversal of ``D_0 .. D_{L-1}`` (``L = key_len``): key byte ``i`` is
``D_{L-1-i}``.  With the one-hot ``t`` (at position ``L``), element k (key bytes
``[31k, e_k)``, ``e_k = min(31k + 31, 254)``) is
``256^(e_k) * 256^(-L) * sum_j 256^j D_j [j + 31k + 1 <= L <= j + e_k]``: the window indicator is a
sum of at most 31 ``t``'s, ``256^(-L) = sum_m t_m 256^(-m)`` is linear, so element k costs one
product per possible ``j`` plus one.  As an integer identity the sum is exactly the big-endian
packing, so each element is the canonical packing of its (byte-valued) key bytes.

Constraint counts (bits not re-checked), :func:`qname_key_constraints`: 20 per position 1 .. W'-2
(5 for the walk, 7 for the length and label-byte rules, 7 for the case fold, 1 for the key byte;
position 0 is always a length byte and is free, position W'-1 costs 7 with ``s_{W'}``), 3 for the
checks, and
``sum_k max(0, W' - 1 - 31k)`` for the key (window products, j = 0 free, plus one per element).
``W = 64``: 1346; ``W >= 255``: 6240 (of which 1170 for the key).  The counter and active-flag LCs
grow along the window (not materialised: that would cost constraints), so A has ~254k non-zeros at
``W = 255``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..algebra.params import R
from ..errors import InvalidInput
from ..r1cs import API, LC, Circuit, ConstraintSystem, Public, Secret, compile
from .bits import BYTES_PER_ELEMENT, pack_bits, pack_bytes
from .registry import register

__all__ = [
    "KEY_ELEMENTS",
    "KEY_LEN",
    "MAX_LABEL",
    "MAX_WIRE",
    "QnameKey",
    "qname_elements_native",
    "qname_key",
    "qname_key_constraints",
    "qname_key_native",
]

MAX_WIRE = 255
"""Longest name in wire form, the final 0 included (RFC 1035; SPEC §5.4)."""
MAX_LABEL = 63
KEY_LEN = MAX_WIRE - 1
"""Keys are compared as 254-byte strings (SPEC §6)."""
KEY_ELEMENTS = -(-KEY_LEN // BYTES_PER_ELEMENT)
"""9 packed elements per key (8 of 31 bytes, 1 of 6)."""

_DOT = 0x2E
_CHUNKS = [
    (k * BYTES_PER_ELEMENT, min(k * BYTES_PER_ELEMENT + BYTES_PER_ELEMENT, KEY_LEN))
    for k in range(KEY_ELEMENTS)
]
_INV256 = pow(256, -1, R)


def _sum(xs) -> LC:
    return sum(xs, LC.constant(0))


@dataclass(frozen=True)
class QnameKey:
    """The outputs of :func:`qname_key` (LCs; see the module docstring)."""

    elements: list[LC]
    key_len: LC
    wire_len: LC
    end: list[LC]


def qname_key(api: API, window: Sequence[Sequence]) -> QnameKey:
    """Parse the QNAME at the start of ``window`` (bytes as known-boolean bit lists) into its key.

    Unsatisfiable unless the first ``min(len(window), 255)`` bytes start with a §5.4-valid name.
    """
    if not window:
        raise InvalidInput("qname_key: empty window")
    n = min(len(window), MAX_WIRE)
    bytes_ = [list(window[j]) for j in range(n)]
    if any(len(x) != 8 for x in bytes_):
        raise InvalidInput("qname_key: a byte needs 8 bits")
    b = [pack_bits(x) for x in bytes_]

    with api.scope("qname"):
        with api.scope("walk"):
            # s[j] = [c_j == 0] for j = 0..n (s[n] only to detect a terminator at n - 1)
            s: list[LC] = []
            c = LC.constant(0)
            for j in range(n + 1):
                s.append(api.is_zero(c))
                if j < n:
                    c = c - 1 + s[j] + api.mul(s[j], b[j])
            a = LC.constant(1)
            act: list[LC] = []  # a_j
            ls: list[LC] = []  # a_j s_j (active length byte)
            t: list[LC] = []  # terminator one-hot
            for j in range(n):
                act.append(a)
                ls.append(api.mul(a, s[j]))
                t.append(api.mul(ls[j], s[j + 1]))
                a = a - t[j]
        # positions 0 .. n-2 carry the key; at n - 1 only a terminator is satisfiable (else sum t = 0)
        d: list[LC] = []
        bad_len: list[LC] = []
        bad_cls: list[LC] = []
        with api.scope("bytes"):
            for j in range(n - 1):
                x = bytes_[j]
                if j == 0:  # always a length byte (c_0 = 0)
                    bad_len.append(x[6] + x[7])
                    d.append(LC.constant(_DOT))
                    continue
                bad_len.append(api.mul(ls[j], x[6] + x[7]))  # active length byte > 63
                lab = act[j] - ls[j]  # active label byte
                p65 = api.mul(x[6], x[5])
                g00 = 1 - x[5] - x[6] + p65  # b mod 128 < 0x20
                bad_cls.append(api.mul(lab, x[7] + g00))
                q = api.mul(api.mul(b[j] - 0x20, b[j] - _DOT), b[j] - 0x7F)
                api.inverse(api.mul(lab, q - 1) + 1)  # a label byte is not ' ', '.', 0x7F
                # case fold: u = [0x41 <= b <= 0x5A] (given bit 7 clear): group 0x40 and low 5 bits in 1..26
                low5 = pack_bits(x[:5])
                zero5 = api.is_zero(low5)
                x10 = api.mul(x[1], x[0])
                over = api.mul(x[4], x[3])
                hi = api.mul(over, x[2] + x10 - api.mul(x[2], x10))  # low5 >= 27
                u = api.mul(x[6] - p65, 1 - zero5 - hi)
                f = b[j] + 32 * u
                d.append(f + api.mul(s[j], _DOT - f))
        with api.scope("length"):
            api.assert_equal(_sum(bad_len), 0)  # each term in {0, 1, 2}: no wrap
        with api.scope("label"):
            api.assert_equal(_sum(bad_cls), 0)
        with api.scope("end"):
            api.assert_equal(_sum(t), 1)  # a terminator at some j < n (and only one: a is monotone)

        with api.scope("key"):
            inv_pow = LC.constant(0)  # 256^(-L)
            p = 1
            for m in range(n):
                inv_pow = inv_pow + t[m] * p
                p = p * _INV256 % R
            elements: list[LC] = []
            for lo, hi_ in _CHUNKS:
                acc = LC.constant(0)
                for j in range(0, n - 1 - lo):
                    win = _sum(t[m] for m in range(j + lo + 1, min(j + hi_, n - 1) + 1))
                    acc = acc + api.mul(d[j], win) * pow(256, j, R)
                if n - 1 - lo > 0:
                    acc = api.mul(inv_pow, acc) * pow(256, hi_, R)
                elements.append(acc)
        wire_len = _sum(t[j] * (j + 1) for j in range(n))
    return QnameKey(elements=elements, key_len=wire_len - 1, wire_len=wire_len, end=t)


def qname_key_constraints(window: int) -> int:
    """The number of constraints :func:`qname_key` adds for a window of ``window`` bytes (bits given)."""
    if not isinstance(window, int) or window < 1:
        raise InvalidInput("window must be a positive int")
    n = min(window, MAX_WIRE)
    walk = 2 * n + 3 * (n - 1) + 1  # is_zero for s_1..s_n; s b, a s, t for j >= 1; sum t = 1
    rules = 15 * max(n - 2, 0) + (n >= 2) + (n >= 3)  # positions 1..n-2; the two aggregated checks
    key = sum(max(n - 1 - lo, 0) for lo, _ in _CHUNKS)  # window products (j = 0 is free) + 1 per element
    return walk + rules + key


# ---------------------------------------------------------------------------------------------- native twin


def _parse_labels(wire: bytes) -> tuple[list[bytes], int]:
    data = bytes(wire)
    limit = min(len(data), MAX_WIRE)
    labels: list[bytes] = []
    pos = 0
    while True:
        if pos >= limit:
            raise InvalidInput(f"no terminating 0 byte within the first {limit} bytes of the name")
        size = data[pos]
        if size == 0:
            return labels, pos + 1
        if size >= 0xC0:
            raise InvalidInput(f"compression pointer at offset {pos} (QNAMEs are uncompressed)")
        if size > MAX_LABEL:
            raise InvalidInput(
                f"length byte 0x{size:02x} at offset {pos} (labels have 1 to {MAX_LABEL} bytes)"
            )
        if pos + 1 + size >= limit:
            raise InvalidInput(f"name does not end within the first {limit} bytes")
        label = data[pos + 1 : pos + 1 + size]
        for i, byte in enumerate(label):
            if byte < 0x21 or byte > 0x7E or byte == _DOT:
                raise InvalidInput(
                    f"byte 0x{byte:02x} at offset {pos + 1 + i} (0x21-0x7e except '.' allowed)"
                )
        labels.append(label.lower())  # ASCII-only fold: A-Z -> a-z
        pos += 1 + size


def qname_key_native(wire: bytes) -> tuple[bytes, int]:
    """Twin of :func:`qname_key`: ``(key, wire_len)`` of the name at the start of ``wire``.

    ``wire`` is the window (trailing bytes after the name are ignored); raises InvalidInput exactly
    when the circuit is unsatisfiable.  The key is the unpadded §6 key (``len = wire_len - 1``).
    """
    from ..policy.rules import labels_to_key  # lazy: zkmb.policy imports the gadget package

    labels, wire_len = _parse_labels(wire)
    key = labels_to_key(labels)
    if len(key) != wire_len - 1:
        raise AssertionError("internal error: key length")  # pragma: no cover
    return key, wire_len


def qname_elements_native(wire: bytes) -> tuple[list[int], int, int]:
    """``(elements, key_len, wire_len)`` as the circuit outputs them (9 packed key elements)."""
    key, wire_len = qname_key_native(wire)
    return pack_bytes(key.ljust(KEY_LEN, b"\0")), len(key), wire_len


# ---------------------------------------------------------------------------------------------- registry


class QnameKeyCircuit(Circuit):
    """A window of ``W`` bytes -> public key elements and wire length.

    ``checked=False`` (the registry's convention): the window is given as ``8 W`` bits that are not
    re-checked.  ``checked=True``: the window is ``W`` byte values, each range-checked (9 constraints).
    """

    key = Public(count=KEY_ELEMENTS)
    wire_len = Public()
    window = Secret(count=lambda c: c.width * (1 if c.checked else 8))

    def __init__(self, width: int = 64, checked: bool = False):
        self.width = width
        self.checked = checked
        self.out: QnameKey | None = None

    def define(self, api: API) -> None:
        if self.checked:
            window = [api.to_bits(v, 8) for v in self.window]
        else:
            window = [self.window[8 * j : 8 * j + 8] for j in range(self.width)]
        self.out = out = qname_key(api, window)
        for e, k in zip(out.elements, self.key, strict=True):
            api.assert_equal(e, k)
        api.assert_equal(out.wire_len, self.wire_len)


@register("qname_key_64")
def qname_key_64_circuit() -> ConstraintSystem:
    """QNAME walk and key of a 64-byte window (bits not re-checked), outputs asserted equal to 10
    public inputs: ``qname_key_constraints(64) + 10`` constraints."""
    return compile(QnameKeyCircuit(64))
