"""Strict TCP normalisation for bridge mode (SPEC §7), sans-IO.

:func:`parse_packet` turns one IPv4 packet into a :class:`Packet` or refuses it (IP fragments, bad IP
or TCP checksums, URG, SYN carrying data, malformed headers: :class:`~zkmb.errors.InvalidInput`, and
the caller drops the packet).  :class:`Stream` reassembles one direction of a connection from its
ISN: it delivers each byte exactly once, in order, and guarantees that every byte it ever accepted
in a segment is the byte it delivered at that offset: a retransmission is compared byte for byte
with what was delivered (identical: ``DUP``; different: ``CONFLICT``, the caller blocks the flow);
partial overlaps, data beyond the window and retransmissions older than the kept history are
``DROP``; segments ahead of the next expected byte are kept (``HELD``, bounded) until the gap fills.

Offsets are byte positions in the stream (0 = the first byte after the SYN), unbounded ints, so the
32-bit sequence wrap is handled once, here.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from zkmb.errors import InvalidInput

__all__ = [
    "ACK",
    "FIN",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "Packet",
    "Result",
    "Status",
    "Stream",
    "build_packet",
    "parse_packet",
]

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_MOD = 1 << 32
_PROTO_TCP = 6


@dataclass(frozen=True)
class Packet:
    """The fields of one IPv4/TCP packet the normaliser uses (``payload`` is the TCP payload)."""

    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def parse_packet(raw: bytes) -> Packet:
    """Parse and check one IPv4 TCP packet; InvalidInput for anything the bridge must drop (SPEC §7)."""
    if len(raw) < 20:
        raise InvalidInput("short IP packet")
    vihl = raw[0]
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or len(raw) < ihl:
        raise InvalidInput("not an IPv4 header")
    total = int.from_bytes(raw[2:4], "big")
    if total < ihl + 20 or total > len(raw):
        raise InvalidInput("bad IP total length")
    raw = raw[:total]
    frag = int.from_bytes(raw[6:8], "big")
    if frag & 0x2000 or frag & 0x1FFF:
        raise InvalidInput("IP fragment")
    if raw[9] != _PROTO_TCP:
        raise InvalidInput("not TCP")
    if _checksum(raw[:ihl]) != 0xFFFF:
        raise InvalidInput("bad IP header checksum")
    tcp = raw[ihl:]
    doff = (tcp[12] >> 4) * 4
    if doff < 20 or doff > len(tcp):
        raise InvalidInput("bad TCP data offset")
    pseudo = raw[12:20] + bytes([0, _PROTO_TCP]) + len(tcp).to_bytes(2, "big")
    if _checksum(pseudo + tcp) != 0xFFFF:
        raise InvalidInput("bad TCP checksum")
    sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
    flags = tcp[13]
    if flags & URG:
        raise InvalidInput("URG")
    payload = bytes(tcp[doff:])
    if flags & SYN and (payload or flags & FIN):
        raise InvalidInput("SYN carrying data or FIN")
    window = int.from_bytes(tcp[14:16], "big")
    return Packet((_ip(raw[12:16]), sport), (_ip(raw[16:20]), dport), seq, ack, flags, window, payload)


def build_packet(
    src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int, payload: bytes = b""
) -> bytes:
    """A minimal IPv4/TCP packet with correct checksums (tests; RST injection)."""
    s = bytes(int(x) for x in src[0].split("."))
    d = bytes(int(x) for x in dst[0].split("."))
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq % _MOD, ack % _MOD, 5 << 4, flags, 65535, 0, 0)
    tcp += payload
    csum = 0xFFFF ^ _checksum(s + d + bytes([0, _PROTO_TCP]) + len(tcp).to_bytes(2, "big") + tcp)
    tcp = tcp[:16] + csum.to_bytes(2, "big") + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, _PROTO_TCP, 0, s, d)
    ip = ip[:10] + (0xFFFF ^ _checksum(ip)).to_bytes(2, "big") + ip[12:]
    return ip + tcp


class Status(enum.Enum):
    """What :meth:`Stream.segment` made of a segment."""

    NEW = "new"  # in order: its bytes (and any held ones it joined) are delivered now
    HELD = "held"  # ahead of a gap: kept, delivered once the gap fills
    DUP = "dup"  # exactly bytes already accepted (identical retransmission): nothing delivered
    EMPTY = "empty"  # no payload and no FIN news (a pure ACK)
    DROP = "drop"  # refused (partial overlap, outside the window, too old to compare, too many held)
    CONFLICT = "conflict"  # bytes that differ from those already accepted: block the flow


@dataclass(frozen=True)
class Result:
    """The outcome of one segment: ``data`` newly delivered in order; ``end`` the offset after it."""

    status: Status
    data: bytes = b""
    start: int = 0
    end: int = 0
    reason: str = ""


class Stream:
    """One direction of a TCP connection, reassembled strictly from its ISN (see the module docstring)."""

    def __init__(self, isn: int, *, window: int = 1 << 20, keep: int = 1 << 20, max_held: int = 256):
        self.isn = isn % _MOD
        self.window, self.keep, self.max_held = window, keep, max_held
        self.nxt = 0  # offset of the next byte to deliver
        self._hist = bytearray()  # delivered bytes [nxt - len(_hist), nxt), for comparing retransmissions
        self._held: dict[int, bytes] = {}  # offset -> payload, every offset > nxt, pairwise disjoint
        self.fin: int | None = None  # offset of the FIN, once seen
        self.eof = False  # every byte up to the FIN delivered

    def offset(self, seq: int) -> int:
        """The stream offset of sequence number ``seq`` (taken nearest to the next expected byte)."""
        delta = (seq - self.isn - 1 - self.nxt) % _MOD
        if delta >= 1 << 31:
            delta -= _MOD
        return self.nxt + delta

    def seq(self, offset: int) -> int:
        """The sequence number of stream offset ``offset``."""
        return (self.isn + 1 + offset) % _MOD

    def _compare(self, start: int, data: bytes) -> Result:
        end = start + len(data)
        base = self.nxt - len(self._hist)
        if start < base:
            return Result(Status.DROP, start=start, end=end, reason="retransmission older than kept history")
        if bytes(self._hist[start - base : end - base]) != data:
            return Result(Status.CONFLICT, start=start, end=end, reason="retransmission differs")
        return Result(Status.DUP, start=start, end=end)

    def segment(self, seq: int, payload: bytes, fin: bool = False) -> Result:
        """Take one segment's payload (and FIN flag); see :class:`Status` for the outcomes."""
        start = self.offset(seq)
        end = start + len(payload)
        if start < -1 or end > self.nxt + self.window:
            return Result(Status.DROP, start=start, end=end, reason="outside the window")
        if fin:
            if self.fin is not None and self.fin != end:
                return Result(Status.CONFLICT, start=start, end=end, reason="FIN moved")
            if self.fin is None and (end < self.nxt or any(o + len(d) > end for o, d in self._held.items())):
                return Result(Status.CONFLICT, start=start, end=end, reason="FIN before accepted data")
        if payload and self.fin is not None and end > self.fin:
            return Result(Status.CONFLICT, start=start, end=end, reason="data after the FIN")
        if not payload:
            if start < 0 or (self.fin is not None and start > self.fin + 1):
                return Result(Status.DROP, start=start, end=end, reason="outside the stream")
            news = fin and self.fin is None
            if fin:
                self.fin = end
                self._check_eof()
            return Result(Status.NEW if news else Status.EMPTY, start=start, end=end)
        if start < 0:
            return Result(Status.DROP, start=start, end=end, reason="before the stream")
        if end <= self.nxt:
            return self._compare(start, payload)
        if start < self.nxt:
            return Result(Status.DROP, start=start, end=end, reason="partial overlap")
        for o, d in self._held.items():
            if o < end and start < o + len(d):
                if o == start and len(d) == len(payload):
                    if d != payload:
                        return Result(Status.CONFLICT, start=start, end=end, reason="retransmission differs")
                    return Result(Status.DUP, start=start, end=end)
                return Result(Status.DROP, start=start, end=end, reason="partial overlap")
        if fin:
            self.fin = end
        if start > self.nxt:
            if len(self._held) >= self.max_held:
                return Result(Status.DROP, start=start, end=end, reason="too many segments held")
            self._held[start] = payload
            return Result(Status.HELD, start=start, end=end)
        out = bytearray(payload)
        self.nxt = end
        while self.nxt in self._held:
            d = self._held.pop(self.nxt)
            out += d
            self.nxt += len(d)
        self._hist += out
        if len(self._hist) > self.keep:
            del self._hist[: len(self._hist) - self.keep]
        self._check_eof()
        return Result(Status.NEW, bytes(out), start, end)

    def _check_eof(self) -> None:
        if self.fin is not None and self.nxt == self.fin:
            self.eof = True
