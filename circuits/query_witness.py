"""Client side of Q (SPEC §5): the assignment from the record's pads, ciphertext and the policy.

:func:`query_assignment` decrypts the record with the precomputed pads, checks the whole relation
natively first (:func:`parse_query_native`, then the policy lookup: a blocked name raises
:class:`QueryBlocked` naming the rule, so a query that cannot be proven is never sent), and builds
the assignment.  :func:`query_relation_native` is the native twin of the circuit: it checks a public
vector and an assignment without the constraint system.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import pack_bytes, unpack_bytes_native
from zkmb.gadgets.merkle import POLICY_ARITY, POLICY_DEPTH, MerklePath, merkle_path_root_native
from zkmb.gadgets.qname import KEY_LEN, MAX_WIRE, qname_key_native
from zkmb.policy import Blocked, NonMembership, Policy, witness
from zkmb.policy.tree import leaf_hash_keys_native
from zkmb.policy.witness import padded_lt

from .commit import PAD_BYTES, comm_pad_native, fresh_blinder
from .query import HEADER_END, MIN_L, SIZE_CLASSES, query_public_inputs, size_class
from .witness import WitnessError

__all__ = [
    "ParsedQuery",
    "QueryAssignment",
    "QueryBlocked",
    "assemble_query_assignment",
    "parse_query_native",
    "query_assignment",
    "query_relation_native",
]

INNER_TYPE_APPLICATION = 0x17
_OPT = 41
_PADDING = 12


class QueryBlocked(WitnessError):
    """The query's name is blocked by the policy: it cannot be proven (and must not be sent)."""

    def __init__(self, blocked: Blocked):
        super().__init__(f"{blocked.name!r} is blocked by the {blocked.describe()}")
        self.blocked = blocked


@dataclass(frozen=True)
class ParsedQuery:
    """The parts of a provable record plaintext (SPEC §5.2-5.4)."""

    message: bytes  # the DNS message (M bytes)
    wire_name: bytes  # the QNAME as on the wire (final 0 included)
    key: bytes  # its §6 key (case folded)
    qtype: int
    qclass: int
    opt: bool  # an OPT record follows the question

    @property
    def name(self) -> str:
        """The name as text (labels joined by '.'; ASCII by §5.4)."""
        out, pos = [], 0
        while self.wire_name[pos]:
            size = self.wire_name[pos]
            out.append(self.wire_name[pos + 1 : pos + 1 + size].decode("ascii"))
            pos += 1 + size
        return ".".join(out) if out else "."


def _u16(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 2], "big")


def parse_query_native(plaintext: bytes, size: int | None = None) -> ParsedQuery:
    """Check the framing, header, question and OPT rules on a record plaintext; WitnessError if any fails.

    Exactly the conditions the circuit imposes on ``P`` (for ``size`` = B, default the smallest
    class), apart from the policy.
    """
    p = bytes(plaintext)
    length = len(p)
    b_len = size_class(length) if size is None else size
    if b_len not in SIZE_CLASSES:
        raise WitnessError(f"size class {b_len!r} not in {SIZE_CLASSES}")
    if not MIN_L <= length <= b_len:
        raise WitnessError(f"L = {length} outside [{MIN_L}, {b_len}]")
    m = _u16(p, 0)
    if m + 3 != length:
        raise WitnessError(f"DoT length {m} + 3 != L = {length} (not exactly one message, or TLS padding)")
    if p[-1] != INNER_TYPE_APPLICATION:
        raise WitnessError(f"inner content type 0x{p[-1]:02x} is not application_data (0x17)")
    msg = p[2 : 2 + m]
    if msg[2] & 0xF8:
        raise WitnessError("QR or OPCODE not zero")
    if _u16(msg, 4) != 1:
        raise WitnessError(f"QDCOUNT = {_u16(msg, 4)} (must be 1)")
    if _u16(msg, 6) or _u16(msg, 8):
        raise WitnessError("ANCOUNT or NSCOUNT not zero")
    arcount = _u16(msg, 10)
    if arcount > 1:
        raise WitnessError(f"ARCOUNT = {arcount} (at most 1)")
    window = p[HEADER_END : HEADER_END + min(b_len - HEADER_END, MAX_WIRE)].ljust(
        min(b_len - HEADER_END, MAX_WIRE), b"\0"
    )
    try:
        key, wire_len = qname_key_native(window)
    except InvalidInput as e:  # the name is not §5.4-valid
        raise WitnessError(f"QNAME: {e}") from None
    q = 12 + wire_len  # message offset after the name
    if q + 4 > m:
        raise WitnessError("the question does not fit in the message")
    qtype, qclass = _u16(msg, q), _u16(msg, q + 2)
    q += 4
    if arcount == 0:
        if q != m:
            raise WitnessError(f"{m - q} bytes follow the question (ARCOUNT = 0)")
    else:
        if q + 11 > m:
            raise WitnessError("truncated OPT record")
        if msg[q] != 0 or _u16(msg, q + 1) != _OPT:
            raise WitnessError("the additional record is not an OPT record with owner 00")
        rdlen = _u16(msg, q + 9)
        if q + 11 + rdlen != m:
            raise WitnessError(f"OPT RDLEN {rdlen} does not reach exactly to the end of the message")
        if rdlen:
            rdata = msg[q + 11 :]
            if rdlen < 4 or _u16(rdata, 0) != _PADDING or _u16(rdata, 2) != rdlen - 4:
                raise WitnessError("OPT RDATA is not exactly one Padding option")
            if any(rdata[4:]):
                raise WitnessError("Padding option content is not all zero")
    return ParsedQuery(msg, window[:wire_len], key, qtype, qclass, arcount == 1)


@dataclass(frozen=True)
class QueryAssignment:
    """A Q assignment with its public vector (``pads``/``blinders`` are secret)."""

    size: int
    assignment: dict = field(repr=False)
    public: list[int]
    comm_pads: list[int]
    nonmembership: NonMembership | None


def _pad_blocks(pads: bytes | Sequence[bytes], k: int) -> list[bytes]:
    if isinstance(pads, (bytes, bytearray)):
        blob = bytes(pads)
        blocks = [blob[i : i + PAD_BYTES] for i in range(0, len(blob), PAD_BYTES)]
    else:
        blocks = [bytes(x) for x in pads]
    if len(blocks) < k or any(len(x) != PAD_BYTES for x in blocks[:k]):
        raise WitnessError(f"need {k} pad blocks of {PAD_BYTES} bytes")
    return blocks[:k]


def assemble_query_assignment(
    size: int,
    pads: bytes | Sequence[bytes],
    blinders: Sequence[int],
    ciphertext: bytes,
    low: bytes,
    high: bytes,
    path: MerklePath,
    root: int,
) -> QueryAssignment:
    """The assignment from its parts, without checking the relation (tests use it to force witnesses)."""
    k = size // PAD_BYTES
    blocks = _pad_blocks(pads, k)
    comm_pads = [comm_pad_native(x, bl) for x, bl in zip(blocks, blinders, strict=True)]
    public = query_public_inputs(comm_pads, ciphertext, len(ciphertext), root, size)
    assignment = {
        "comm_pad": comm_pads,
        "ct": public[k : k + -(-size // 31)],
        "L": len(ciphertext),
        "root": root,
        "pad": [e for x in blocks for e in pack_bytes(x)],
        "pad_blinder": list(blinders),
        "low": pack_bytes(low.ljust(KEY_LEN, b"\0")),
        "high": pack_bytes(high.ljust(KEY_LEN, b"\0")),
        "index": path.index,
        "children": path.flat_children,
    }
    return QueryAssignment(size, assignment, public, comm_pads, None)


def query_assignment(
    pads: bytes | Sequence[bytes],
    ciphertext: bytes,
    policy: Policy,
    *,
    blinders: Sequence[int] | None = None,
    size: int | None = None,
) -> QueryAssignment:
    """The Q assignment of a record: ``ciphertext`` is the record payload without its tag (``L`` bytes),
    ``pads`` the record's keystream blocks (64 bytes each, block j = pad_{n,j}).

    Raises :class:`WitnessError` if the plaintext is not provable and :class:`QueryBlocked` if the
    policy blocks its name.  Fresh blinders are drawn unless given (they must match the published
    ``comm_pad``s).
    """
    ct = bytes(ciphertext)
    b_len = size_class(len(ct)) if size is None else size
    if b_len not in SIZE_CLASSES or len(ct) > b_len:
        raise WitnessError(f"L = {len(ct)} does not fit size class {b_len!r}")
    k = b_len // PAD_BYTES
    blocks = _pad_blocks(pads, k)
    stream = b"".join(blocks)
    plain = bytes(a ^ b for a, b in zip(ct, stream, strict=False))
    parsed = parse_query_native(plain, b_len)
    nm = witness(policy, parsed.name)
    if isinstance(nm, Blocked):
        raise QueryBlocked(nm)
    if nm.key != parsed.key:
        raise WitnessError("internal error: policy key differs from the circuit's key")  # pragma: no cover
    if (nm.path.arity, nm.path.depth) != (POLICY_ARITY, POLICY_DEPTH):
        raise WitnessError(
            f"policy tree of arity {nm.path.arity} and depth {nm.path.depth}, the circuit has "
            f"arity {POLICY_ARITY} and depth {POLICY_DEPTH}"
        )
    bl = [fresh_blinder() for _ in range(k)] if blinders is None else list(blinders)
    a = assemble_query_assignment(b_len, blocks, bl, ct, nm.low, nm.high, nm.path, nm.root)
    return QueryAssignment(a.size, a.assignment, a.public, a.comm_pads, nm)


def query_relation_native(size: int, assignment: dict) -> None:
    """Native twin of the circuit: WitnessError unless the assignment satisfies SPEC §5 (all of it)."""
    k = size // PAD_BYTES
    n_ct = -(-size // 31)
    a = assignment
    if len(a["comm_pad"]) != k or len(a["ct"]) != n_ct or len(a["pad"]) != 3 * k:
        raise WitnessError("wrong input sizes")
    try:
        ct = unpack_bytes_native(a["ct"], size)
        blocks = [unpack_bytes_native(a["pad"][3 * j : 3 * j + 3], PAD_BYTES) for j in range(k)]
        low = unpack_bytes_native(a["low"], KEY_LEN)
        high = unpack_bytes_native(a["high"], KEY_LEN)
    except Exception as e:
        raise WitnessError(f"an input is not a byte packing: {e}") from None
    for j in range(k):
        if comm_pad_native(blocks[j], a["pad_blinder"][j]) != a["comm_pad"][j]:
            raise WitnessError(f"comm_pad_{j} does not open to its pad")
    length = a["L"]
    if not isinstance(length, int) or not 1 <= length <= size:
        raise WitnessError(f"L = {length!r} outside [1, {size}]")
    stream = b"".join(blocks)
    plain = bytes(x ^ y for x, y in zip(ct[:length], stream, strict=False))
    parsed = parse_query_native(plain, size)
    key = parsed.key
    if not (padded_lt(low, key) and padded_lt(key, high)):
        raise WitnessError("the name's key is not strictly inside the gap (low, high)")
    leaf = leaf_hash_keys_native(low.rstrip(b"\0"), high.rstrip(b"\0"))
    kids = list(a["children"])
    if len(kids) != POLICY_ARITY * POLICY_DEPTH:
        raise WitnessError(f"the path has {POLICY_ARITY * POLICY_DEPTH} children")
    try:
        levels = tuple(tuple(kids[i : i + POLICY_ARITY]) for i in range(0, len(kids), POLICY_ARITY))
        root = merkle_path_root_native(leaf, MerklePath(a["index"], levels, POLICY_ARITY))
    except InvalidInput as e:
        raise WitnessError(f"bad Merkle path: {e}") from None
    if root != a["root"]:
        raise WitnessError("the gap's leaf is not in the tree with this root")
