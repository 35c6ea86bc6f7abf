"""EDNS(0) Padding (RFC 7830) for queries: block-length padding (RFC 8467) or an exact target length.

The padded query has the shape the Q statement accepts (SPEC §5.3): one OPT record with owner 00 and RDATA
that is either empty or exactly one Padding option of zero bytes. Any other EDNS option is refused.
"""

from __future__ import annotations

import dns.edns
import dns.message

from ..errors import InvalidInput

PADDING = 12
OPTION_HEADER = 4


def _prepare(query: dns.message.Message) -> int:
    if query.edns < 0:
        query.use_edns(0)
    others = [o for o in query.options if o.otype != PADDING]
    if others:
        raise InvalidInput("padded queries carry no EDNS option other than Padding")
    query.use_edns(query.edns, query.ednsflags, query.payload, options=[])
    return len(query.to_wire())


def pad_to_length(query: dns.message.Message, length: int) -> bytes:
    """Set a Padding option so the query's wire form is exactly ``length`` bytes; returns the wire.

    Raises InvalidInput when the unpadded query plus the 4-byte option header is already longer.
    The query is modified in place (EDNS(0) enabled, options replaced).
    """
    base = _prepare(query)
    pad = length - base - OPTION_HEADER
    if pad < 0:
        raise InvalidInput(f"query of {base} bytes cannot be padded to {length}")
    query.use_edns(
        query.edns, query.ednsflags, query.payload, options=[dns.edns.GenericOption(PADDING, bytes(pad))]
    )
    wire = query.to_wire()
    if len(wire) != length:
        raise InvalidInput(f"padding produced {len(wire)} bytes, wanted {length}")
    return wire


def pad_to_block(query: dns.message.Message, block: int = 128) -> bytes:
    """Pad the query to the next multiple of ``block`` bytes (RFC 8467 block-length padding)."""
    if block <= 0:
        raise InvalidInput("block must be positive")
    base = _prepare(query)
    return pad_to_length(query, base + OPTION_HEADER + (-(base + OPTION_HEADER)) % block)
