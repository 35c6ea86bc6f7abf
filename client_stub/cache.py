"""A bounded, TTL-respecting cache of upstream answers (RFC 1035 §7.4, RFC 2308 negative caching)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

__all__ = ["AnswerCache", "CacheKey", "response_ttl"]

CacheKey = tuple[str, int, int]  # (lower-case name text, rdtype, rdclass)


def response_ttl(resp: dns.message.Message, max_ttl: int) -> int:
    """Seconds the response may be cached: 0 for anything but NOERROR/NXDOMAIN or a truncated answer.

    Positive: the smallest TTL of the answer and authority RRsets; negative (NXDOMAIN or NODATA): the
    SOA's min(TTL, MINIMUM) (RFC 2308 §5), or 0 without an SOA.  Capped at ``max_ttl``.
    """
    if resp.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or resp.flags & dns.flags.TC:
        return 0
    if resp.rcode() == dns.rcode.NOERROR and resp.answer:
        ttls = [rrset.ttl for rrset in resp.answer + resp.authority]
        return max(0, min(min(ttls), max_ttl))
    for rrset in resp.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return max(0, min(rrset.ttl, rrset[0].minimum, max_ttl))
    return 0


class AnswerCache:
    """``get`` returns a copy of a stored response with TTLs decreased by the time it has been stored,
    or None once it has expired; at most ``max_entries`` (least recently used dropped first)."""

    def __init__(
        self, max_entries: int = 10_000, max_ttl: int = 86_400, clock: Callable[[], float] = time.monotonic
    ):
        self.max_entries, self.max_ttl, self.clock = max_entries, max_ttl, clock
        self._d: OrderedDict[CacheKey, tuple[float, float, bytes]] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._d)

    def put(self, key: CacheKey, resp: dns.message.Message) -> int:
        """Store ``resp`` if cacheable; returns the TTL used (0: not stored)."""
        ttl = response_ttl(resp, self.max_ttl)
        if ttl <= 0 or self.max_entries <= 0:
            return 0
        now = self.clock()
        self._d[key] = (now, now + ttl, resp.to_wire())
        self._d.move_to_end(key)
        while len(self._d) > self.max_entries:
            self._d.popitem(last=False)
        return ttl

    def get(self, key: CacheKey) -> dns.message.Message | None:
        item = self._d.get(key)
        now = self.clock()
        if item is None or now >= item[1]:
            if item is not None:
                del self._d[key]
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        stored, _, wire = item
        resp = dns.message.from_wire(wire)
        age = int(now - stored)
        for section in (resp.answer, resp.authority, resp.additional):
            for rrset in section:
                rrset.ttl = max(0, rrset.ttl - age)
        return resp
