"""The proof-channel codec: round trips and strict rejection of malformed frames."""

from __future__ import annotations

import pytest

from zkmb.algebra.params import G1_GEN, G2_GEN, R
from zkmb.groth16.proof import Proof
from zkmb.proofchannel import (
    ASYNC,
    MAX_BODY,
    MAX_PADS,
    STRICT,
    VERSION,
    Accepted,
    Announce,
    Announced,
    CoMsg,
    MessageRejected,
    PadMsg,
    PadsMsg,
    QMsg,
    RateLimited,
    Rejected,
    from_wire,
    peek_ref,
    peek_refs,
    split_frame,
    to_wire,
)

PROOF = Proof.from_canonical(G1_GEN, G2_GEN, G1_GEN)

MESSAGES = [
    Announce(("127.0.0.1", 40000), ("192.0.2.1", 853), bytes(range(32))),
    Announce(("2001:db8::1", 1), ("::1", 65535), b"\xff" * 32),
    CoMsg(R - 1, PROOF),
    PadMsg(2**64 - 1, 6, 0, PROOF),
    QMsg(3, PROOF),
    Accepted("q", 3, 0),
    Rejected("pad", 5, 2, "proof does not verify"),
    RateLimited("q", 2**64 - 1, 0, retry_after_ms=2**32 - 1),
    RateLimited("announce"),
    Announced(),
    Announced(ASYNC, 20_000, 3_000, 8, 64),
    Announced(STRICT, 2**32 - 1, 1, 2**16 - 1, 0),
    PadsMsg(((5, 0, 1), (6, 0, R - 1), (2**64 - 1, 6, 0)), PROOF),
    PadsMsg(tuple((n, 1, n) for n in range(MAX_PADS)), PROOF),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    wire = to_wire(msg)
    assert split_frame(wire + b"extra") == (wire[1], len(wire))
    assert split_frame(wire[:-1]) is None
    assert from_wire(wire) == msg


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_truncated_and_extended_bodies_rejected(msg):
    wire = to_wire(msg)
    n = int.from_bytes(wire[2:4], "big")
    short = wire[:2] + (n - 1).to_bytes(2, "big") + wire[4:-1]
    longer = wire[:2] + (n + 1).to_bytes(2, "big") + wire[4:] + b"\0"
    for bad in (short, longer):
        with pytest.raises(MessageRejected):
            from_wire(bad)


def test_bad_fields():
    co = bytearray(to_wire(CoMsg(1, PROOF)))
    co[4:36] = R.to_bytes(32, "big")  # comm_k = r: not canonical
    with pytest.raises(MessageRejected):
        from_wire(bytes(co))
    co = bytearray(to_wire(CoMsg(1, PROOF)))
    co[36 + 63] ^= 1  # A off the curve
    with pytest.raises(MessageRejected):
        from_wire(bytes(co))
    with pytest.raises(MessageRejected):
        split_frame(b"\x01\x02\x00\x00")  # another version (1: before RATE_LIMITED)
    with pytest.raises(MessageRejected):
        split_frame(bytes([VERSION, 10, 0, 0]))  # unknown type
    with pytest.raises(MessageRejected):
        split_frame(b"\x02\x02\x00\x00")  # version 2: no ANNOUNCED, the stub would not learn the mode
    with pytest.raises(MessageRejected):
        split_frame(bytes([VERSION, 2]) + (MAX_BODY + 1).to_bytes(2, "big"))
    ann = bytearray(to_wire(MESSAGES[0]))
    ann[4] = 5  # address family
    with pytest.raises(MessageRejected):
        from_wire(bytes(ann))
    rej = bytearray(to_wire(Rejected("co", 0, 0, "x")))
    rej[-1] = 0xFF
    with pytest.raises(MessageRejected):
        from_wire(bytes(rej))
    with pytest.raises(MessageRejected):
        to_wire(Announce(("127.0.0.1", 1), ("127.0.0.1", 2), b"short"))
    with pytest.raises(MessageRejected):
        to_wire(CoMsg(R, PROOF))


def test_rate_limited_fields_and_peek_ref():
    assert VERSION == 3
    with pytest.raises(MessageRejected):
        to_wire(RateLimited("q", 1, 0, retry_after_ms=2**32))
    rl = from_wire(to_wire(RateLimited("pad", 3, 4, retry_after_ms=7)))
    assert isinstance(rl, Rejected) and rl.reason == "rate_limited" and rl.retry_after_ms == 7
    for msg in MESSAGES[:5]:
        kind = {"Announce": "announce", "CoMsg": "co", "PadMsg": "pad", "QMsg": "q"}[type(msg).__name__]
        assert peek_ref(to_wire(msg)) == (kind, getattr(msg, "n", 0), getattr(msg, "j", 0))
    assert peek_ref(b"\x02\x04\x00") == ("q", 0, 0)  # truncated: no crash


def test_announced_fields():
    for bad in (
        Announced("lenient"),
        Announced(STRICT, 0),
        Announced(STRICT, 1, 0),
        Announced(STRICT, 1 << 32),
        Announced(ASYNC, 1, 1, 1 << 16),
        Announced(ASYNC, 1, 1, 1, -1),
        Announced(ASYNC, 1.5),
    ):
        with pytest.raises(MessageRejected):
            to_wire(bad)
    wire = bytearray(to_wire(Announced(ASYNC, 20_000, 3_000, 8, 64)))
    wire[4] = 7  # mode code
    with pytest.raises(MessageRejected):
        from_wire(bytes(wire))
    wire = bytearray(to_wire(Announced(ASYNC, 20_000, 3_000, 8, 64)))
    wire[5:9] = bytes(4)  # a zero CO deadline
    with pytest.raises(MessageRejected):
        from_wire(bytes(wire))


def test_pads_bounds_and_refs():
    """PADS covers 1 to MAX_PADS blocks (its body stays within MAX_BODY); every block is an answer
    reference (a rate-limited PADS is answered per block)."""
    with pytest.raises(MessageRejected):
        to_wire(PadsMsg((), PROOF))
    with pytest.raises(MessageRejected):
        to_wire(PadsMsg(tuple((n, 0, 1) for n in range(MAX_PADS + 1)), PROOF))
    with pytest.raises(MessageRejected):
        to_wire(PadsMsg(((1, 0, R),), PROOF))  # comm_pad not a field element
    wire = bytearray(to_wire(PadsMsg(((1, 0, 5), (2, 3, 6)), PROOF)))
    assert peek_refs(wire) == [("pad", 1, 0), ("pad", 2, 3)]
    wire[4] = MAX_PADS + 1  # the count byte
    with pytest.raises(MessageRejected):
        from_wire(bytes(wire))
    assert peek_refs(to_wire(QMsg(9, PROOF))) == [("q", 9, 0)]
