"""The publishing endpoint's byte ranges (resumable downloads) and the compact files it serves."""

from __future__ import annotations

import asyncio
import socket

import pytest
from zkmb.middlebox.publish import HttpServer, Publisher, parse_range

from zkmb.policy import Kind, Rule, normalise, policy_from_rules
from zkmb.policy.rules import name_key

BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 10_239)),
        ("bytes=-10", (10_230, 10_239)),
        ("bytes=-99999", (0, 10_239)),
        ("bytes=10000-20000", (10_000, 10_239)),
        ("bytes=5 - 6", (5, 6)),
        ("bytes = 5-6", None),  # not the bytes unit as written: ignored
        ("items=0-5", None),  # another unit: ignored, the whole body
        ("bytes=10240-", "unsatisfiable"),
        ("bytes=7-3", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=-", "unsatisfiable"),
        ("bytes=a-b", "unsatisfiable"),
        ("bytes=0-1,5-6", "unsatisfiable"),
    ],
)
def test_parse_range(header, want):
    assert parse_range(header, len(BODY)) == want


@pytest.fixture
def served(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "q_64.pkc").write_bytes(BODY)
    (keys / "srs_0.srsc").write_bytes(b"part zero")
    (keys / "srs_x.srsc").write_bytes(b"not a part name")
    rules = [Rule(name_key("evil.example"), Kind.EXACT, "evil.example", "t", 1)]
    policy_from_rules(normalise(rules)).write(tmp_path / "p.zkmbp")
    return Publisher(tmp_path / "p.zkmbp", keys)


def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _get(port: int, path: str, *extra: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{h}\r\n" for h in extra) + "\r\n"
    return _exchange(port, req.encode())


def test_range_requests(served):
    async def run():
        http = HttpServer(served)
        port = await http.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()

        def get(*a, **kw):
            return loop.run_in_executor(None, lambda: _get(port, *a, **kw))

        try:
            status, h, body = await get("/keys/q_64.pkc")
            assert status == 200 and body == BODY and h["accept-ranges"] == "bytes"
            status, h, body = await get("/keys/q_64.pkc", "Range: bytes=1000-")
            assert status == 206 and body == BODY[1000:]
            assert h["content-range"] == f"bytes 1000-{len(BODY) - 1}/{len(BODY)}"
            assert h["content-length"] == str(len(BODY) - 1000)
            status, h, body = await get("/keys/q_64.pkc", "Range: bytes=10-19")
            assert (status, body, h["content-range"]) == (206, BODY[10:20], f"bytes 10-19/{len(BODY)}")
            status, h, body = await get("/keys/q_64.pkc", "Range: bytes=-5")
            assert (status, body) == (206, BODY[-5:])
            for bad in ("bytes=10240-", "bytes=20-10", "bytes=0-1,4-5", "bytes=x-"):
                status, h, body = await get("/keys/q_64.pkc", f"Range: {bad}")
                assert status == 416 and h["content-range"] == f"bytes */{len(BODY)}", bad
            status, _, _ = await get("/keys/q_64.pkc", "Range: bytes=0-1", "Range: bytes=2-3")
            assert status == 416  # two Range headers
            status, h, body = await get("/keys/q_64.pkc", "Range: bytes=100-199", method="HEAD")
            assert (status, body, h["content-length"]) == (206, b"", "100")
            status, _, body = await get("/policy", "Range: bytes=0-3")  # any 200 body
            assert status == 206 and body == served.policy_bytes[:4]
            status, _, body = await get("/keys/srs_0.srsc")
            assert (status, body) == (200, b"part zero")
            for missing in ("/keys/srs_x.srsc", "/keys/q_64.srsc", "/keys/srs.pkc", "/keys/nope.pkc"):
                status, _, _ = await get(missing, "Range: bytes=0-1")
                assert status == 404, missing
        finally:
            await http.close()

    asyncio.run(run())
