"""The proof channel both services speak (docs/protocol.md, "Proof channel"): the message codec, version 3.

It lives below the middlebox and the stub (neither imports the other).  Frame: ``version (1) || type
(1) || body length (u16, big-endian) || body``; bodies are fixed-size except REJECTED.  Version 2 added
RATE_LIMITED (type 7, decoded as :class:`RateLimited`, a :class:`Rejected` with reason
``rate_limited`` and a ``retry_after_ms`` hint); version 3 answers an accepted ANNOUNCE with ANNOUNCED
(type 8: the enforcement mode and the deadlines the middlebox applies, SPEC §7), so the client
follows the operator's mode without configuration, and adds PADS (type 9: one PAD proof covering up to
6 blocks, answered per block).
:func:`from_wire` checks every field and bound (:class:`MessageRejected`, an
:class:`~zkmb.errors.InvalidInput`); proof points are validated by :meth:`Proof.from_bytes`
(on the curve, in the subgroup, canonical).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput, ZkmbError
from zkmb.groth16.proof import PROOF_BYTES, Proof

__all__ = [
    "HEADER_LEN",
    "MAX_BODY",
    "VERSION",
    "ASYNC",
    "STRICT",
    "Accepted",
    "Announce",
    "Announced",
    "CoMsg",
    "MessageRejected",
    "PadMsg",
    "PadsMsg",
    "QMsg",
    "RateLimited",
    "Rejected",
    "from_wire",
    "peek_ref",
    "peek_refs",
    "split_frame",
    "to_wire",
]

VERSION = 3
HEADER_LEN = 4
MAX_BODY = 512
MAX_REASON = 200
MAX_RETRY_MS = (1 << 32) - 1
RATE_LIMITED = "rate_limited"
"""The reason of every :class:`RateLimited` answer (a fixed code clients can match)."""
T_ANNOUNCE, T_CO, T_PAD, T_Q, T_ACCEPTED, T_REJECTED, T_RATE_LIMITED = 1, 2, 3, 4, 5, 6, 7
T_ANNOUNCED, T_PADS = 8, 9
MAX_PADS = 6
"""Blocks one PADS message may cover."""
STRICT, ASYNC = "strict", "async"
_MODE_CODES = {STRICT: 0, ASYNC: 1}
_CODE_MODES = {v: k for k, v in _MODE_CODES.items()}
_KIND_CODES = {"co": T_CO, "pad": T_PAD, "q": T_Q, "announce": T_ANNOUNCE}
_CODE_KINDS = {v: k for k, v in _KIND_CODES.items()}


class MessageRejected(InvalidInput):
    """A proof-channel message that is malformed, out of bounds or of another version."""


@dataclass(frozen=True)
class Announce:
    """A TLS connection (client IP:port -> server IP:port as the middlebox sees it) and its random."""

    client: tuple[str, int]
    server: tuple[str, int]
    client_random: bytes


@dataclass(frozen=True)
class CoMsg:
    comm_k: int
    proof: Proof


@dataclass(frozen=True)
class PadMsg:
    n: int
    j: int
    comm_pad: int
    proof: Proof


@dataclass(frozen=True)
class PadsMsg:
    """One PAD proof covering several blocks (SPEC §4): ``blocks`` is ``((n, j, comm_pad), ...)``.
    Answered per block, exactly as PAD (ACCEPTED / REJECTED with kind ``pad``, ``n``, ``j``)."""

    blocks: tuple[tuple[int, int, int], ...]
    proof: Proof


@dataclass(frozen=True)
class QMsg:
    n: int
    proof: Proof


@dataclass(frozen=True)
class Accepted:
    kind: str
    n: int = 0
    j: int = 0


@dataclass(frozen=True)
class Announced:
    """The answer to an accepted ANNOUNCE: how the middlebox enforces this connection (SPEC §7).

    ``mode`` is :data:`STRICT` (records held until their proofs are accepted) or :data:`ASYNC`
    (records forwarded at once, proofs due afterwards); ``co_deadline_ms`` after the client Finished
    the CO must be accepted; ``record_deadline_ms`` after a record's arrival (async: or the CO's
    acceptance, whichever is later) its proofs must be; ``max_before_co`` records may be sent before
    the CO is accepted (async; 0 in strict mode); PAD proofs are taken for ``n`` up to
    ``pad_window`` past the lowest unverified record."""

    mode: str = STRICT
    co_deadline_ms: int = 20_000
    record_deadline_ms: int = 2_000
    max_before_co: int = 0
    pad_window: int = 64


@dataclass(frozen=True)
class Rejected:
    kind: str
    n: int = 0
    j: int = 0
    reason: str = ""


@dataclass(frozen=True)
class RateLimited(Rejected):
    """The referenced message was not processed: its client IP is over the proof rate limit.

    A :class:`Rejected` (so a client treats it as a failure of that message) whose ``reason`` is
    always :data:`RATE_LIMITED`; ``retry_after_ms`` is when the limiter will take a message again.
    """

    reason: str = RATE_LIMITED
    retry_after_ms: int = 0


Message = Announce | Announced | CoMsg | PadMsg | PadsMsg | QMsg | Accepted | Rejected


def _addr(host: str, port: int) -> bytes:
    ip = ipaddress.ip_address(host)
    if not 0 <= port <= 65535:
        raise MessageRejected("port out of range")
    return bytes([ip.version]) + ip.packed + port.to_bytes(2, "big")


def _fe(x: int, what: str) -> bytes:
    if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < R:
        raise MessageRejected(f"{what} is not a field element")
    return x.to_bytes(32, "big")


def _u64(x: int) -> bytes:
    if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < 1 << 64:
        raise MessageRejected("record number out of range")
    return x.to_bytes(8, "big")


def _ref(kind: str, n: int, j: int) -> bytes:
    if kind not in _KIND_CODES or not 0 <= j < 256:
        raise MessageRejected("bad answer reference")
    return bytes([_KIND_CODES[kind]]) + _u64(n) + bytes([j])


def to_wire(msg: Message) -> bytes:
    """The framed encoding of ``msg`` (MessageRejected for out-of-range fields)."""
    if isinstance(msg, Announce):
        if len(msg.client_random) != 32:
            raise MessageRejected("a ClientHello random is 32 bytes")
        typ, body = T_ANNOUNCE, _addr(*msg.client) + _addr(*msg.server) + bytes(msg.client_random)
    elif isinstance(msg, CoMsg):
        typ, body = T_CO, _fe(msg.comm_k, "comm_k") + msg.proof.to_bytes()
    elif isinstance(msg, PadMsg):
        if not 0 <= msg.j < 256:
            raise MessageRejected("j out of range")
        typ = T_PAD
        body = _u64(msg.n) + bytes([msg.j]) + _fe(msg.comm_pad, "comm_pad") + msg.proof.to_bytes()
    elif isinstance(msg, PadsMsg):
        if not 1 <= len(msg.blocks) <= MAX_PADS:
            raise MessageRejected(f"a PADS message covers 1 to {MAX_PADS} blocks")
        body = bytes([len(msg.blocks)])
        for n, j, comm_pad in msg.blocks:
            if not isinstance(j, int) or not 0 <= j < 256:
                raise MessageRejected("j out of range")
            body += _u64(n) + bytes([j]) + _fe(comm_pad, "comm_pad")
        typ, body = T_PADS, body + msg.proof.to_bytes()
    elif isinstance(msg, QMsg):
        typ, body = T_Q, _u64(msg.n) + msg.proof.to_bytes()
    elif isinstance(msg, Accepted):
        typ, body = T_ACCEPTED, _ref(msg.kind, msg.n, msg.j)
    elif isinstance(msg, Announced):
        if msg.mode not in _MODE_CODES:
            raise MessageRejected(f"unknown enforcement mode {msg.mode!r}")
        fields = (msg.co_deadline_ms, msg.record_deadline_ms, msg.max_before_co, msg.pad_window)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in fields):
            raise MessageRejected("ANNOUNCED fields are integers")
        if not (0 < msg.co_deadline_ms < 1 << 32 and 0 < msg.record_deadline_ms < 1 << 32):
            raise MessageRejected("deadline out of range")
        if not (0 <= msg.max_before_co < 1 << 16 and 0 <= msg.pad_window < 1 << 16):
            raise MessageRejected("ANNOUNCED bound out of range")
        typ = T_ANNOUNCED
        body = (
            bytes([_MODE_CODES[msg.mode]])
            + msg.co_deadline_ms.to_bytes(4, "big")
            + msg.record_deadline_ms.to_bytes(4, "big")
            + msg.max_before_co.to_bytes(2, "big")
            + msg.pad_window.to_bytes(2, "big")
        )
    elif isinstance(msg, RateLimited):
        retry = msg.retry_after_ms
        if not isinstance(retry, int) or isinstance(retry, bool) or not 0 <= retry <= MAX_RETRY_MS:
            raise MessageRejected("retry_after_ms out of range")
        typ, body = T_RATE_LIMITED, _ref(msg.kind, msg.n, msg.j) + retry.to_bytes(4, "big")
    elif isinstance(msg, Rejected):
        reason = msg.reason.encode("ascii", "replace")[:MAX_REASON]
        typ, body = T_REJECTED, _ref(msg.kind, msg.n, msg.j) + bytes([len(reason)]) + reason
    else:
        raise MessageRejected(f"not a message: {type(msg).__name__}")
    return bytes([VERSION, typ]) + len(body).to_bytes(2, "big") + body


def split_frame(buf: bytes | bytearray) -> tuple[int, int] | None:
    """``(type, total frame length)`` of the frame at the start of ``buf``, or None if incomplete.

    Raises MessageRejected for another version, an unknown type or a body over :data:`MAX_BODY`
    (the caller then drops the connection: the stream cannot be resynchronised).
    """
    if len(buf) < HEADER_LEN:
        return None
    if buf[0] != VERSION:
        raise MessageRejected(f"protocol version {buf[0]}, this middlebox speaks {VERSION}")
    if not T_ANNOUNCE <= buf[1] <= T_PADS:
        raise MessageRejected(f"unknown message type {buf[1]}")
    n = int.from_bytes(buf[2:4], "big")
    if n > MAX_BODY:
        raise MessageRejected(f"message body of {n} bytes (limit {MAX_BODY})")
    if len(buf) < HEADER_LEN + n:
        return None
    return buf[1], HEADER_LEN + n


def peek_ref(frame: bytes | bytearray) -> tuple[str, int, int]:
    """The answer reference ``(kind, n, j)`` of a request frame without decoding or checking it (no
    proof is parsed: cheap enough for frames that will not be processed, e.g. rate-limited ones).

    ``n``/``j`` are read where PAD and Q carry them (0 when the body is too short); answers and
    unknown types give ``("announce", 0, 0)``.
    """
    if len(frame) >= 2 and frame[1] == T_PADS:  # answered per block: refer to its first block
        body = bytes(frame[HEADER_LEN + 1 :])
        return (
            "pad",
            int.from_bytes(body[:8], "big") if len(body) >= 8 else 0,
            body[8] if len(body) >= 9 else 0,
        )
    kind = _CODE_KINDS.get(frame[1], "announce") if len(frame) >= 2 else "announce"
    body = bytes(frame[HEADER_LEN:])
    n = int.from_bytes(body[:8], "big") if kind in ("pad", "q") and len(body) >= 8 else 0
    j = body[8] if kind == "pad" and len(body) >= 9 else 0
    return kind, n, j


def peek_refs(frame: bytes | bytearray) -> list[tuple[str, int, int]]:
    """Every answer reference of a request frame, undecoded (as :func:`peek_ref`): one per block of a
    PADS frame (each block is answered), else the one of :func:`peek_ref`."""
    if len(frame) >= HEADER_LEN + 1 and frame[1] == T_PADS:
        body = bytes(frame[HEADER_LEN:])
        k = min(body[0], MAX_PADS)
        refs = []
        for i in range(k):
            blk = body[1 + 41 * i : 1 + 41 * i + 9]
            if len(blk) < 9:
                break
            refs.append(("pad", int.from_bytes(blk[:8], "big"), blk[8]))
        return refs or [peek_ref(frame)]
    return [peek_ref(frame)]


class _Body:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MessageRejected("message body truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def fe(self, what: str) -> int:
        x = self.u(32)
        if x >= R:
            raise MessageRejected(f"{what} is not a canonical field element")
        return x

    def addr(self) -> tuple[str, int]:
        v = self.u(1)
        if v not in (4, 6):
            raise MessageRejected(f"address family {v}")
        ip = ipaddress.ip_address(self.take(4 if v == 4 else 16))
        return str(ip), self.u(2)

    def proof(self) -> Proof:
        try:
            return Proof.from_bytes(self.take(PROOF_BYTES))
        except MessageRejected:
            raise
        except ZkmbError as e:
            raise MessageRejected(f"bad proof encoding: {e}") from None

    def ref(self) -> tuple[str, int, int]:
        code = self.u(1)
        if code not in _CODE_KINDS:
            raise MessageRejected("bad answer reference")
        return _CODE_KINDS[code], self.u(8), self.u(1)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise MessageRejected("trailing bytes in message body")


def from_wire(frame: bytes) -> Message:
    """Decode one whole frame (as delimited by :func:`split_frame`); strict: every byte accounted for."""
    head = split_frame(frame)
    if head is None or head[1] != len(frame):
        raise MessageRejected("not exactly one frame")
    typ, b = head[0], _Body(bytes(frame[HEADER_LEN:]))
    if typ == T_ANNOUNCE:
        msg: Message = Announce(b.addr(), b.addr(), b.take(32))
    elif typ == T_CO:
        msg = CoMsg(b.fe("comm_k"), b.proof())
    elif typ == T_PAD:
        n, j = b.u(8), b.u(1)
        msg = PadMsg(n, j, b.fe("comm_pad"), b.proof())
    elif typ == T_PADS:
        k = b.u(1)
        if not 1 <= k <= MAX_PADS:
            raise MessageRejected(f"a PADS message covers 1 to {MAX_PADS} blocks")
        blocks = tuple((b.u(8), b.u(1), b.fe("comm_pad")) for _ in range(k))
        msg = PadsMsg(blocks, b.proof())
    elif typ == T_Q:
        msg = QMsg(b.u(8), b.proof())
    elif typ == T_ACCEPTED:
        msg = Accepted(*b.ref())
    elif typ == T_ANNOUNCED:
        code = b.u(1)
        if code not in _CODE_MODES:
            raise MessageRejected(f"unknown enforcement mode {code}")
        co_ms, rec_ms, before, window = b.u(4), b.u(4), b.u(2), b.u(2)
        if co_ms == 0 or rec_ms == 0:
            raise MessageRejected("deadline out of range")
        msg = Announced(_CODE_MODES[code], co_ms, rec_ms, before, window)
    elif typ == T_RATE_LIMITED:
        kind, n, j = b.ref()
        msg = RateLimited(kind, n, j, RATE_LIMITED, b.u(4))
    else:
        kind, n, j = b.ref()
        raw = b.take(b.u(1))
        try:
            reason = raw.decode("ascii")
        except UnicodeDecodeError:
            raise MessageRejected("reason is not ASCII") from None
        msg = Rejected(kind, n, j, reason)
    b.end()
    return msg
