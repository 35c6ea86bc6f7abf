"""Statement Q, the query (SPEC §5): one circuit per size class ``B`` (64, 128, 192, 320, 448 bytes).

Public inputs, in this order (docs/protocol.md, "Statements"):

* ``comm_pad`` (``k = B / 64``): the pad commitments ``comm_pad_{n,0..k-1}`` of this record;
* ``ct`` (``ceil(B / 31)``): the first ``min(L, B)`` ciphertext bytes of the record (tag excluded),
  zero-filled to ``B`` bytes and packed by :func:`~zkmb.gadgets.bits.pack_bytes`
  (:func:`query_public_inputs` builds it and enforces the zero fill);
* ``L``: the inner plaintext length (record payload length - 16);
* ``root``: the policy root ``R``.

Secret inputs: ``pad`` (``3 k``: each 64-byte pad packed 31 + 31 + 2), ``pad_blinder`` (``k``),
``low``/``high`` (9 packed key elements each: the gap ``(A, hi)`` of §6), ``index`` (the leaf
index, 22 bits: 11 base-4 digits) and ``children`` (44: the 4 children of the path's node at each of
the 11 levels, leaf level first, the path's own child included).

Every Poseidon here takes its domain tag in the capacity element (circomlib ``PoseidonEx``
``initialState``; SPEC §7), which costs no constraint.

Relation (every line a constraint group):

1. ``unpack(pad_j)`` are range-checked bytes and ``comm_pad_j = Poseidon_{TAG_PAD_COMMITMENT}(pad_j,
   blinder_j)``; ``ct`` unpacks to ``B`` range-checked bytes; ``P = ct xor pad`` (bits).
2. ``256 P[0] + P[1] + 3 = L``; with ``E = L - 1`` (the one-hot ``f`` of ``E`` makes
   ``1 <= L <= B``): ``P[E] = 0x17``.  Bytes at positions ``>= L`` enter no constraint that matters:
   the name, the question and the OPT record are forced to end before ``E`` (below).
3. Header ``P[2..14]``: QR and OPCODE bits of ``P[4]`` zero, ``QDCOUNT = 1``, ``ANCOUNT = NSCOUNT =
   0``, ``P[12] = 0`` and ``P[13] in {0, 1}`` (``ar``, the ARCOUNT).  ID, the other flag bits, QTYPE,
   QCLASS and the OPT CLASS/TTL are free.
4. QNAME: :func:`~zkmb.gadgets.qname.qname_key` on ``P[14 .. 14 + min(B - 14, 255))``; its wire
   length ``w`` puts the end of the question at ``q = 18 + w``, and its one-hot ``end`` (at
   ``13 + w``) shifted by 5 is the one-hot ``u`` of ``q`` (free).
5. ``E = q + ar (11 + RDLEN)``.  The OPT fields are read at ``q``: one mux of the 9 bytes at
   ``q + {0, 1, 2, 9, 10, 11, 12, 13, 14}`` packed into one 72-bit value and decomposed (unique,
   since ``u`` is one-hot): ``ar (owner|TYPE - 0x000029) = 0``; with ``g = ar [RDLEN != 0]``:
   ``g (code - 12) = 0``, ``g (OPTION-LENGTH + 4 - RDLEN) = 0`` (16-bit values, so RDLEN >= 4) and
   ``g sum_i z_i P[i] = 0`` with ``z_i = [i >= q + 15] - [i >= E]``, which is 0/1 when ``g = 1``
   (``E >= q + 15``) and the byte sum is far below r: the option content is all zero.  With
   ``ar = 0`` the message ends at ``q``.  Hence ``L >= 20`` (a one-byte name) always.
6. Policy: ``low < key < high`` (:func:`~zkmb.gadgets.compare.assert_strictly_between`, range
   assumed: the key elements are < 2^248 by construction and ``low``/``high`` are bound by Poseidon
   to a leaf of the middlebox's own tree, whose keys are valid packings < 2^248); leaf
   ``Poseidon_{TAG_LEAF}(Poseidon_{TAG_KEY_HASH}(low), Poseidon_{TAG_KEY_HASH}(high))``; the index
   decomposed into 22 bits (so ``index < 4^11``); the 4-ary Merkle path (depth 11) to ``root``
   (:func:`~zkmb.gadgets.merkle.merkle_verify`): at each level the child at the index's base-4 digit
   ``b_0 + 2 b_1`` equals the node below (``u = c_0 + b_0 (c_1 - c_0)``, ``v = c_2 + b_0 (c_3 -
   c_2)``, ``b_1 (v - u) = cur - u``), then ``cur = Poseidon_{node_tag(4)}(c_0, c_1, c_2, c_3)``.
   The sentinel leaves ``H_leaf(max, max)`` are unsatisfiable.

Constraints (pinned in tests/circuits/test_query.py), by scope:

=====  ======  =====  =========  =======  ======  =====  ======  ======
B      total   pads   plaintext  framing  header  qname  opt     policy
=====  ======  =====  =========  =======  ======  =====  ======  ======
64      8,140    813      1,027      132       4  1,037     161   4,966
128    11,714  1,626      2,053      260       4  2,516     289   4,966
192    15,420  2,439      3,079      388       4  4,127     417   4,966
320    21,677  4,065      5,131      644       4  6,240     627   4,966
448    25,739  5,691      7,183      900       4  6,240     755   4,966
=====  ======  =====  =========  =======  ======  =====  ======  ======

``policy`` = Merkle path 3,301 (11 levels of 297 + 3, root equality 1) + two key hashes and the leaf
1,074 (417 + 417 + 240) + order 568 + index bits 23 (before: binary depth 22 with tags as inputs,
7,460 in all).  ``pads`` = per pad 516 to unpack it into bytes + 297 for ``comm_pad`` (318 with the tag as an
input).  The 64-byte class fits a 2^13 domain (8,140 + 7 public rows <= 8,192).
"""

from __future__ import annotations

from functools import cache

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import BYTES_PER_ELEMENT, pack_bits, pack_bytes, unpack_bytes, xor_bits
from zkmb.gadgets.compare import assert_strictly_between, one_hot
from zkmb.gadgets.merkle import POLICY_ARITY, POLICY_DEPTH, leaf_hash, level_bits, merkle_verify
from zkmb.gadgets.poseidon import poseidon
from zkmb.gadgets.qname import KEY_ELEMENTS, MAX_WIRE, qname_key
from zkmb.gadgets.registry import register
from zkmb.gadgets.tags import TAG_KEY_HASH
from zkmb.r1cs import API, LC, Circuit, ConstraintSystem, Public, Secret, compile

from .commit import PAD_BYTES, comm_pad_hash
from .public import PublicInputRejected, _field

__all__ = [
    "HEADER_END",
    "MIN_L",
    "SIZE_CLASSES",
    "Query",
    "query_circuit",
    "query_public_inputs",
    "size_class",
]

SIZE_CLASSES = (64, 128, 192, 320, 448)
"""SPEC §5: the size classes B (bytes of inner plaintext a Q circuit covers)."""
HEADER_END = 14
"""The QNAME starts at P[14]: 2 bytes of DoT length, 12 bytes of DNS header."""
MIN_L = 2 + 12 + 3 + 4 + 1
"""The smallest provable L (22): a one-byte label name (3 wire octets), QTYPE, QCLASS and 0x17."""
# owner, TYPE (2), RDLEN (2), OPTION-CODE (2), OPTION-LENGTH (2): offsets from q
_OPT_OFFSETS = (0, 1, 2, 9, 10, 11, 12, 13, 14)
_OPT_HEADER = 11  # owner 1, TYPE 2, CLASS 2, TTL 4, RDLEN 2
_CONTENT = 15  # the first option content byte after q


def _sum(xs) -> LC:
    return sum(xs, LC.constant(0))


def size_class(length: int) -> int:
    """The smallest class ``B`` with ``length <= B`` (InvalidInput when none)."""
    for b in SIZE_CLASSES:
        if length <= b:
            return b
    raise InvalidInput(f"inner plaintext of {length} bytes exceeds the largest size class {SIZE_CLASSES[-1]}")


def _check_class(b: int) -> int:
    if b not in SIZE_CLASSES:
        raise InvalidInput(f"size class {b!r} not in {SIZE_CLASSES}")
    return b


def _n_ct(c: Query) -> int:
    return -(-c.size // BYTES_PER_ELEMENT)


class Query(Circuit):
    """SPEC §5 for size class ``size`` (see the module docstring)."""

    comm_pad = Public(count=lambda c: c.size // PAD_BYTES)
    ct = Public(count=_n_ct)
    L = Public()
    root = Public()
    pad = Secret(count=lambda c: 3 * (c.size // PAD_BYTES))
    pad_blinder = Secret(count=lambda c: c.size // PAD_BYTES)
    low = Secret(count=KEY_ELEMENTS)
    high = Secret(count=KEY_ELEMENTS)
    index = Secret()
    children = Secret(count=lambda c: c.depth * c.arity)

    def __init__(self, size: int = 64, depth: int = POLICY_DEPTH, arity: int = POLICY_ARITY):
        self.size = _check_class(size)
        self.depth = depth
        self.arity = arity

    def define(self, api: API) -> None:
        b_len = self.size
        k = b_len // PAD_BYTES
        with api.scope("pads"):
            pad_bytes = []
            for j in range(k):
                elems = self.pad[3 * j : 3 * j + 3]
                pad_bytes.extend(unpack_bytes(api, elems, PAD_BYTES))
                api.assert_equal(comm_pad_hash(api, elems, self.pad_blinder[j]), self.comm_pad[j])
        with api.scope("plaintext"):
            ct_bytes = unpack_bytes(api, self.ct, b_len)
            p = [xor_bits(api, c, q) for c, q in zip(ct_bytes, pad_bytes, strict=True)]
            pv = [pack_bits(x) for x in p]  # byte values (LCs)
        with api.scope("framing"):
            api.assert_equal(pv[0] * 256 + pv[1] + 3, self.L)
            f = one_hot(api, api.sub(self.L, 1), b_len)  # E = L - 1 in [0, B)
            api.assert_equal(_sum(api.mul(f[i], pv[i]) for i in range(b_len)), 0x17)
        with api.scope("header"):
            api.assert_equal(_sum(p[4][3:8]), 0)  # QR = 0, OPCODE = 0
            api.assert_equal(pv[6] * 256 + pv[7], 1)  # QDCOUNT = 1
            api.assert_equal(_sum(pv[8:12]), 0)  # ANCOUNT = NSCOUNT = 0 (bytes: no wrap)
            api.assert_equal(pv[12] + pack_bits(p[13][1:]), 0)  # ARCOUNT in {0, 1}
            ar = p[13][0]
        with api.scope("qname"):
            n = min(b_len - HEADER_END, MAX_WIRE)
            qk = qname_key(api, p[HEADER_END : HEADER_END + n])
        q_end = qk.wire_len + (HEADER_END + 4)
        shift = HEADER_END + 5  # u_i = end_{i - 19}: end_j marks wire_len = j + 1, so q = 19 + j
        u = {shift + j: t for j, t in enumerate(qk.end) if shift + j < b_len}
        with api.scope("opt"):
            zero = LC.constant(0)
            sel = LC.constant(0)
            for i, ui in u.items():
                v = _sum(
                    (pv[i + r] if i + r < b_len else zero) * (1 << (8 * (len(_OPT_OFFSETS) - 1 - m)))
                    for m, r in enumerate(_OPT_OFFSETS)
                )
                sel = sel + api.mul(ui, v)
            bits = api.to_bits(sel, 8 * len(_OPT_OFFSETS))
            fb = [pack_bits(bits[8 * (8 - m) : 8 * (9 - m)]) for m in range(len(_OPT_OFFSETS))]
            owner_type = fb[0] * 65536 + fb[1] * 256 + fb[2]
            rdlen = fb[3] * 256 + fb[4]
            code = fb[5] * 256 + fb[6]
            optlen = fb[7] * 256 + fb[8]
            api.assert_equal(api.mul(ar, owner_type - 0x29), 0)
            api.assert_equal(api.sub(self.L, 1), q_end + api.mul(ar, rdlen + _OPT_HEADER))
            g = api.mul(ar, 1 - api.is_zero(rdlen))
            api.assert_equal(api.mul(g, code - 12), 0)
            api.assert_equal(api.mul(g, optlen + 4 - rdlen), 0)
            # z_i = [i >= q + 15] - [i >= E]: prefix sums of the one-hots (linear)
            start = HEADER_END + 5 + _CONTENT
            c_acc = LC.constant(0)
            f_acc = _sum(f[:start])
            content = []
            for i in range(start, b_len):
                c_acc = c_acc + u.get(i - _CONTENT, zero)
                f_acc = f_acc + f[i]
                content.append(api.mul(c_acc - f_acc, pv[i]))
            api.assert_equal(api.mul(g, _sum(content)), 0)
        with api.scope("policy"):
            assert_strictly_between(api, self.low, qk.elements, self.high, 248, assume_range=True)
            h_lo = poseidon(api, self.low, init=TAG_KEY_HASH)
            h_hi = poseidon(api, self.high, init=TAG_KEY_HASH)
            leaf = leaf_hash(api, [h_lo, h_hi])
            idx = api.to_bits(self.index, self.depth * level_bits(self.arity))
            merkle_verify(api, self.root, leaf, idx, self.children, self.arity)


@cache
def query_circuit(size: int, depth: int = POLICY_DEPTH, arity: int = POLICY_ARITY) -> ConstraintSystem:
    """The compiled Q circuit of size class ``size`` (cached); the policy tree shape is a parameter
    only for measurement: the published one is arity 4, depth 11."""
    return compile(Query(_check_class(size), depth, arity))


def query_public_inputs(comm_pads, ciphertext: bytes, inner_length: int, root: int, size: int) -> list[int]:
    """The Q public vector ``[comm_pad_0..k-1, pack(ct zero-filled to B), L, root]`` (middlebox side).

    ``ciphertext`` is the record payload without the 16-byte tag (``L`` bytes); only its first
    ``min(L, B)`` bytes are used and the rest of the ``B``-byte window is zero.  Refuses a class that
    is not the smallest with ``L <= B`` (SPEC §5) and an ``L`` below :data:`MIN_L`.
    """
    b_len = _check_class(size)
    ct = bytes(ciphertext)
    if not isinstance(inner_length, int) or isinstance(inner_length, bool) or inner_length != len(ct):
        raise PublicInputRejected(f"L = {inner_length!r} is not the ciphertext length {len(ct)}")
    if inner_length < MIN_L:
        raise PublicInputRejected(f"L = {inner_length} is below the smallest provable query ({MIN_L})")
    if inner_length > SIZE_CLASSES[-1] or size_class(inner_length) != b_len:
        raise PublicInputRejected(f"L = {inner_length} does not select size class {b_len}")
    comm_pads = list(comm_pads)
    if len(comm_pads) != b_len // PAD_BYTES:
        raise PublicInputRejected(f"class {b_len} needs {b_len // PAD_BYTES} pad commitments")
    window = ct[:b_len].ljust(b_len, b"\0")
    return [
        *(_field(c, "comm_pad") for c in comm_pads),
        *pack_bytes(window),
        inner_length,
        _field(root, "root"),
    ]


def _builder(size: int):
    def build() -> ConstraintSystem:
        return query_circuit(size)

    build.__doc__ = f"The Q circuit of size class {size} ({POLICY_ARITY}-ary tree, depth {POLICY_DEPTH})."
    return build


for _b in (64, 192, 448):
    register(f"q_{_b}")(_builder(_b))
