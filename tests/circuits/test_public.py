"""The middlebox's public-input builder (SPEC §2, §7): strict handshake parsing from wire bytes only."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from zkmb.circuits.public import (
    HandshakeRejected,
    IncompleteCapture,
    co_public_inputs,
    parse_channel,
)

from zkmb.errors import InvalidInput

CCS = bytes.fromhex("140303000101")


def split_records(stream: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(stream):
        n = int.from_bytes(stream[pos + 3 : pos + 5], "big")
        out.append(bytes(stream[pos : pos + 5 + n]))
        pos += 5 + n
    return out


def record(ctype: int, payload: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([ctype]) + version + len(payload).to_bytes(2, "big") + payload


def hello_parts(msg: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """(everything before the extensions block, [(type, body)]) of a Client/ServerHello message."""
    body = msg[4:]
    pos = 2 + 32
    pos += 1 + body[pos]
    if msg[0] == 1:
        pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
        pos += 1 + body[pos]
    else:
        pos += 3
    head, ext_block = body[:pos], body[pos + 2 :]
    exts, i = [], 0
    while i < len(ext_block):
        t, n = int.from_bytes(ext_block[i : i + 2], "big"), int.from_bytes(ext_block[i + 2 : i + 4], "big")
        exts.append((t, ext_block[i + 4 : i + 4 + n]))
        i += 4 + n
    return head, exts


def build_hello(msg_type: int, head: bytes, exts: list[tuple[int, bytes]]) -> bytes:
    block = b"".join(t.to_bytes(2, "big") + len(b).to_bytes(2, "big") + b for t, b in exts)
    body = head + len(block).to_bytes(2, "big") + block
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def edit_first_hello(stream: bytes, edit) -> bytes:
    """Re-encode the first record's hello message after ``edit(head, exts) -> (head, exts)``."""
    recs = split_records(stream)
    msg = recs[0][5:]
    head, exts = edit(*hello_parts(msg))
    recs[0] = record(recs[0][0], build_hello(msg[0], head, exts), recs[0][1:3])
    return b"".join(recs)


@pytest.fixture(scope="module")
def plain(sessions):
    return sessions("chacha20")


@pytest.fixture(scope="module")
def hrr(sessions):
    return sessions("aes128gcm", True)


def test_roundtrip_matches_client(plain, hrr):
    for cap in (plain, hrr):
        v = parse_channel(cap.client_bytes, cap.server_bytes)
        assert v.h2 == cap.h2 and v.finished_ct == cap.client_finished_record.payload[:37]
        assert cap.client_bytes[v.client_app_offset :].startswith(cap.client_app_records[0].raw)
        assert v.hello_retry == cap.hello_retry


def test_message_hash_rule_is_used(hrr):
    """After HRR, H2 is not the plain hash of all messages (RFC 8446 §4.4.1)."""
    msgs = [m for _, m in hrr.handshake_messages][:4]
    assert [m[0] for m in msgs] == [1, 2, 1, 2]
    mh = bytes([254, 0, 0, 32]) + hashlib.sha256(msgs[0]).digest()
    assert (
        parse_channel(hrr.client_bytes, hrr.server_bytes).h2
        == hashlib.sha256(mh + b"".join(msgs[1:])).digest()
    )
    assert hashlib.sha256(b"".join(msgs)).digest() != hrr.h2


@pytest.mark.parametrize("ext", [41, 42, 0xFE0D, 49], ids=["psk", "early_data", "ech", "post_handshake_auth"])
def test_forbidden_client_extensions(plain, ext):
    client = edit_first_hello(plain.client_bytes, lambda h, e: (h, [*e, (ext, b"\x00\x00")]))
    with pytest.raises(HandshakeRejected):
        parse_channel(client, plain.server_bytes)


def test_forbidden_extension_in_second_client_hello(hrr):
    recs = split_records(hrr.client_bytes)
    idx = [i for i, r in enumerate(recs) if r[0] == 22][1]
    msg = recs[idx][5:]
    head, exts = hello_parts(msg)
    recs[idx] = record(22, build_hello(1, head, [*exts, (42, b"")]))
    with pytest.raises(HandshakeRejected, match="early_data"):
        parse_channel(b"".join(recs), hrr.server_bytes)


def test_unedited_rebuild_is_accepted(plain):
    """The editing helpers themselves preserve a valid handshake (so the rejections above are real)."""
    client = edit_first_hello(plain.client_bytes, lambda h, e: (h, e))
    assert client == bytes(plain.client_bytes)


def _sh_ext(value: bytes):
    def edit(head, exts):
        return head, [(t, value if t == 43 else b) for t, b in exts]

    return edit


@pytest.mark.parametrize("value", [b"\x03\x03", b"\x7f\x1c", b"\x03\x04\x00"])
def test_server_must_select_tls13(plain, value):
    server = edit_first_hello(plain.server_bytes, _sh_ext(value))
    with pytest.raises(HandshakeRejected):
        parse_channel(plain.client_bytes, server)


@pytest.mark.parametrize("suite", [0x1302, 0x1304, 0xC02F])
def test_server_suite_outside_profile(plain, suite):
    def edit(head, exts):
        return head[:-3] + suite.to_bytes(2, "big") + head[-1:], exts

    with pytest.raises(HandshakeRejected, match="profile"):
        parse_channel(plain.client_bytes, edit_first_hello(plain.server_bytes, edit))


def test_server_psk_and_missing_key_share(plain):
    add_psk = edit_first_hello(plain.server_bytes, lambda h, e: (h, [*e, (41, b"\x00\x00")]))
    no_share = edit_first_hello(plain.server_bytes, lambda h, e: (h, [x for x in e if x[0] != 51]))
    for server in (add_psk, no_share):
        with pytest.raises(HandshakeRejected):
            parse_channel(plain.client_bytes, server)


def test_duplicate_extension_and_trailing_bytes(plain):
    dup = edit_first_hello(plain.client_bytes, lambda h, e: (h, [*e, e[0]]))
    with pytest.raises(HandshakeRejected, match="twice"):
        parse_channel(dup, plain.server_bytes)
    recs = split_records(plain.client_bytes)
    msg = recs[0][5:] + b"\x00"
    bad = bytes([1]) + (len(msg) - 4).to_bytes(3, "big") + msg[4:]
    with pytest.raises(HandshakeRejected, match="trailing"):
        parse_channel(record(22, bad) + b"".join(recs[1:]), plain.server_bytes)


@pytest.mark.parametrize("delta", [-1, 1, 16])
def test_finished_record_wrong_size(plain, delta):
    recs = split_records(plain.client_bytes)
    i = next(k for k, r in enumerate(recs) if r[0] == 23)
    recs[i] = record(23, recs[i][5:] + b"\x00" * delta if delta > 0 else recs[i][5:delta])
    with pytest.raises(HandshakeRejected, match="Finished"):
        parse_channel(b"".join(recs), plain.server_bytes)


def test_change_cipher_spec_rules(plain):
    recs = split_records(plain.client_bytes)
    i = next(k for k, r in enumerate(recs) if r[0] == 23)
    head = [r for r in recs[:i] if r[0] != 20]
    ok = b"".join([*head, CCS, *recs[i:]])
    parse_channel(ok, plain.server_bytes)
    for bad in (
        b"".join([*head, CCS, CCS, *recs[i:]]),  # two
        b"".join([*head, record(20, b"\x02"), *recs[i:]]),  # wrong content
        b"".join([CCS, *head, *recs[i:]]),  # before the ClientHello
    ):
        with pytest.raises(HandshakeRejected):
            parse_channel(bad, plain.server_bytes)


def test_alert_and_unexpected_records(plain):
    recs = split_records(plain.client_bytes)
    i = next(k for k, r in enumerate(recs) if r[0] == 23)
    for extra in (record(21, b"\x02\x28"), record(22, recs[0][5:]), bytes.fromhex("1803030001ff")):
        with pytest.raises(HandshakeRejected):
            parse_channel(b"".join([*recs[:i], extra, *recs[i:]]), plain.server_bytes)


def test_fragmented_client_hello_is_accepted(plain):
    recs = split_records(plain.client_bytes)
    msg = recs[0][5:]
    frag = record(22, msg[:10], recs[0][1:3]) + record(22, msg[10:])
    v = parse_channel(frag + b"".join(recs[1:]), plain.server_bytes)
    assert v.h2 == plain.h2


def test_seen_random_refused(plain):
    with pytest.raises(HandshakeRejected, match="already seen"):
        parse_channel(plain.client_bytes, plain.server_bytes, seen_randoms={plain.client_random})


def test_hrr_rules(hrr):
    srecs = split_records(hrr.server_bytes)
    crecs = split_records(hrr.client_bytes)
    # a second HelloRetryRequest
    with pytest.raises(HandshakeRejected, match="second HelloRetryRequest"):
        parse_channel(hrr.client_bytes, srecs[0] + srecs[0] + b"".join(srecs[1:]))
    # the Finished without the second ClientHello
    hellos = [k for k, r in enumerate(crecs) if r[0] == 22]
    without = b"".join(r for k, r in enumerate(crecs) if k != hellos[1])
    with pytest.raises(HandshakeRejected):
        parse_channel(without, hrr.server_bytes)
    # a second ClientHello with another random
    msg = crecs[hellos[1]][5:]
    changed = msg[:6] + bytes(32) + msg[38:]
    crecs2 = list(crecs)
    crecs2[hellos[1]] = record(22, changed)
    with pytest.raises(HandshakeRejected, match="random"):
        parse_channel(b"".join(crecs2), hrr.server_bytes)


def test_incomplete_capture(plain):
    v = parse_channel(plain.client_bytes, plain.server_bytes)
    end = v.client_app_offset
    for client, server in (
        (plain.client_bytes[: end - 1], plain.server_bytes),
        (plain.client_bytes[:3], plain.server_bytes),
        (plain.client_bytes, plain.server_bytes[:50]),
        (b"", b""),
    ):
        with pytest.raises(IncompleteCapture):
            parse_channel(client, server)
    assert issubclass(IncompleteCapture, InvalidInput) and issubclass(HandshakeRejected, InvalidInput)


def test_co_public_inputs_layout(plain):
    v = parse_channel(plain.client_bytes, plain.server_bytes)
    pub = co_public_inputs(v, 12345)
    assert pub[0] == int.from_bytes(v.h2[:31], "big") and pub[1] == v.h2[31]
    assert pub[2] == int.from_bytes(v.finished_ct[:31], "big") and pub[3] == int.from_bytes(
        v.finished_ct[31:], "big"
    )
    assert pub[4] == 12345


def test_public_module_imports_no_secret_side():
    """The middlebox module must not pull in the client TLS stack or the witness builder."""
    code = (
        "import sys, zkmb.circuits.public\n"
        "bad = [m for m in ('zkmb.circuits.witness', 'zkmb.tls', 'zkmb.tls.client', 'zkmb.tls.capture') "
        "if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
