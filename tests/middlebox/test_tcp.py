"""The bridge-mode TCP normaliser (SPEC §7): parsing refusals and strict per-direction reassembly."""

from __future__ import annotations

import random

import pytest
from zkmb.middlebox.tcp import ACK, FIN, PSH, SYN, URG, Status, Stream, build_packet, parse_packet

from zkmb.errors import InvalidInput

ISN = 0xFFFFFF00  # wraps after 255 bytes: every test crosses the 32-bit sequence wrap
C, S = ("10.253.0.1", 40000), ("10.253.0.2", 853)


def seg(st: Stream, off: int, data: bytes, fin: bool = False):
    return st.segment(st.seq(off), data, fin)


# ------------------------------------------------------------------ reassembly


def test_in_order_across_the_wrap():
    st = Stream(ISN)
    data = bytes(range(256)) * 3
    got = b""
    for i in range(0, len(data), 100):
        r = seg(st, i, data[i : i + 100])
        assert r.status is Status.NEW and r.start == i
        got += r.data
    assert got == data and st.nxt == len(data)


def test_out_of_order_is_held_then_delivered_once():
    st = Stream(ISN)
    assert seg(st, 10, b"B" * 10).status is Status.HELD
    assert seg(st, 30, b"D" * 5).status is Status.HELD
    r = seg(st, 0, b"A" * 10)
    assert r.status is Status.NEW and r.data == b"A" * 10 + b"B" * 10 and st.nxt == 20
    r = seg(st, 20, b"C" * 10)
    assert r.data == b"C" * 10 + b"D" * 5 and st.nxt == 35


def test_random_permutation_delivers_the_stream_exactly():
    rng = random.Random(7)
    data = rng.randbytes(5000)
    cuts = sorted(rng.sample(range(1, 5000), 60))
    pieces = list(zip([0, *cuts], [*cuts, 5000], strict=True))
    order = pieces[:]
    rng.shuffle(order)
    st, got = Stream(rng.getrandbits(32)), b""
    for a, b in order + order[:10]:  # the tail: identical retransmissions
        r = seg(st, a, data[a:b])
        assert r.status in (Status.NEW, Status.HELD, Status.DUP)
        got += r.data
    assert got == data


def test_identical_retransmission_is_a_duplicate_not_delivered_twice():
    st = Stream(ISN)
    assert seg(st, 0, b"hello").data == b"hello"
    r = seg(st, 0, b"hello")
    assert r.status is Status.DUP and r.data == b""
    assert seg(st, 2, b"ll").status is Status.DUP  # a sub-range of delivered bytes, identical
    assert seg(st, 9, b"zz").status is Status.HELD
    assert seg(st, 9, b"zz").status is Status.DUP
    assert st.nxt == 5


def test_different_retransmission_is_a_conflict():
    st = Stream(ISN)
    seg(st, 0, b"hello")
    assert seg(st, 0, b"jello").status is Status.CONFLICT
    assert seg(st, 9, b"zz").status is Status.HELD
    assert seg(st, 9, b"zy").status is Status.CONFLICT
    assert st.nxt == 5


def test_partial_overlaps_are_dropped():
    st = Stream(ISN)
    seg(st, 0, b"hello")
    r = seg(st, 3, b"lo world")  # starts in delivered bytes, ends beyond
    assert r.status is Status.DROP and "overlap" in r.reason and st.nxt == 5
    assert seg(st, 10, b"0123456789").status is Status.HELD
    assert seg(st, 15, b"56789abc").status is Status.DROP  # overlaps a held segment
    assert seg(st, 8, b"xyz").status is Status.DROP
    assert seg(st, 10, b"01234").status is Status.DROP  # same start, different length
    assert seg(st, 5, b" worl").data == b" worl0123456789"


def test_window_history_and_held_bounds():
    st = Stream(ISN, window=100, keep=10, max_held=2)
    assert seg(st, 0, b"x" * 101).status is Status.DROP
    seg(st, 0, b"a" * 50)
    assert seg(st, 0, b"a" * 5).status is Status.DROP  # older than the 10 bytes kept
    assert seg(st, 45, b"a" * 5).status is Status.DUP
    assert seg(st, 60, b"b").status is Status.HELD
    assert seg(st, 70, b"c").status is Status.HELD
    assert seg(st, 80, b"d").status is Status.DROP
    assert seg(st, -5, b"zzzz").status is Status.DROP


def test_fin():
    st = Stream(ISN)
    seg(st, 0, b"abc")
    assert seg(st, 5, b"", fin=True).status is Status.NEW and not st.eof  # FIN ahead of a gap
    assert seg(st, 3, b"de").data == b"de" and st.eof
    assert seg(st, 5, b"", fin=True).status is Status.EMPTY  # retransmitted FIN
    assert seg(st, 5, b"x").status is Status.CONFLICT  # data after the FIN
    assert seg(st, 6, b"").status is Status.EMPTY  # the ACK after the FIN
    assert seg(st, 7, b"").status is Status.DROP
    st2 = Stream(ISN)
    seg(st2, 0, b"abc", fin=True)
    assert st2.eof and seg(st2, 0, b"ab", fin=True).status is Status.CONFLICT  # the FIN moved
    st3 = Stream(ISN)
    seg(st3, 10, b"zz")
    assert seg(st3, 5, b"", fin=True).status is Status.CONFLICT  # FIN before held bytes
    assert seg(st3, 0, b"", fin=False).status is Status.EMPTY


# ------------------------------------------------------------------ packet parsing


def test_parse_round_trip():
    raw = build_packet(C, S, 123, 456, ACK | PSH, b"payload")
    p = parse_packet(raw + b"\x00" * 6)  # Ethernet padding after the IP total length is ignored
    assert (p.src, p.dst, p.seq, p.ack, p.flags, p.payload) == (C, S, 123, 456, ACK | PSH, b"payload")


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "bad TCP checksum"),
        (lambda b: b[:11] + bytes([b[11] ^ 1]) + b[12:], "bad IP header checksum"),
        (lambda b: b[:6] + b"\x20\x00" + b[8:], "IP fragment"),
        (lambda b: b[:6] + b"\x00\x10" + b[8:], "IP fragment"),
        (lambda b: b[:10], "short"),
        (lambda b: b"\x65" + b[1:], "not an IPv4"),
        (lambda b: b[:9] + b"\x11" + b[10:], "not TCP"),
        (lambda b: b[:2] + b"\xff\xff" + b[4:], "total length"),
    ],
)
def test_parse_refusals(mutate, why):
    raw = build_packet(C, S, 1, 2, ACK, b"data")
    with pytest.raises(InvalidInput):
        parse_packet(mutate(raw))


def test_urg_is_refused():
    with pytest.raises(InvalidInput, match="URG"):
        parse_packet(build_packet(C, S, 1, 2, ACK | URG, b"data"))


def test_syn_with_data_is_refused():
    parse_packet(build_packet(C, S, 1, 0, SYN))
    with pytest.raises(InvalidInput, match="SYN"):
        parse_packet(build_packet(C, S, 1, 0, SYN, b"x"))
    with pytest.raises(InvalidInput, match="SYN"):
        parse_packet(build_packet(C, S, 1, 0, SYN | FIN))
