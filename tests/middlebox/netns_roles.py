"""Processes of the bridge namespace test, one per namespace (``python -m tests.middlebox.netns_roles ROLE``).

Each prints ``READY`` when it is listening (servers) and its result lines; all are bounded by timeouts.
Stand-in proofs (``FakeProof``) cross the proof channel pickled, as in test_relay's ``fake_frames``.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import sys
import threading
import time

RESOLVER, MB = "10.253.0.2", "10.253.0.254"
PROOF_PORT, ECHO_PORT = 8853, 7007


def _patch_codec():
    from zkmb.groth16.proof import Proof

    from .conftest import FakeProof

    FakeProof.to_bytes = lambda self: pickle.dumps(self).ljust(256, b"\0")
    Proof.from_bytes = classmethod(lambda cls, data: pickle.loads(data))


def resolver(cert: str, key: str) -> None:
    """The embedded DoT resolver on RESOLVER:853 and a TCP echo on ECHO_PORT."""
    from zkmb.resolver import Responder, make_server_context
    from zkmb.resolver.server import DotResolver

    from ..tls.conftest import STATIC

    async def echo(r, w):
        w.write(await r.read(1024))
        await w.drain()
        w.close()

    async def main():
        dot = DotResolver(Responder(static=STATIC), make_server_context(cert, key))
        await dot.start(RESOLVER, 853)
        await asyncio.start_server(echo, RESOLVER, ECHO_PORT)
        print("READY", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())


def bridge(queue: str, q_deadline: str) -> None:
    """The Bridge on NFQUEUE ``queue`` with stand-in proofs, proof endpoint MB:PROOF_PORT."""
    from zkmb.middlebox.bridge import Bridge
    from zkmb.middlebox.flow import FlowConfig
    from zkmb.middlebox.verifier import PolicyRoots, Verifier

    from .conftest import NAMES, ROOT, fake_check

    _patch_codec()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")

    async def main():
        v = Verifier({n: n for n in NAMES}, PolicyRoots(ROOT), check=fake_check)
        b = Bridge(v, config=FlowConfig(q_deadline=float(q_deadline)))
        await b.start_bridge(int(queue), (MB, PROOF_PORT))
        print("READY", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())


def _dot(cafile: str):
    from zkmb.tls import DotClient, TlsClientConfig

    return DotClient(RESOLVER, 853, TlsClientConfig(RESOLVER, cafile=cafile), timeout=4)


def client_noproof(cafile: str) -> None:
    import dns.message

    echo = socket.create_connection((RESOLVER, ECHO_PORT), timeout=5)
    echo.sendall(b"plain tcp")
    print("ECHO", echo.recv(100).decode(), flush=True)
    c = _dot(cafile)
    c.connect()
    print("HANDSHAKE ok", flush=True)
    try:
        r = c.query(dns.message.make_query("www.example.test", "A"))
        print("ANSWER", r.answer, flush=True)
    except Exception as e:  # noqa: BLE001 - the expected outcome: reset or timeout
        print("BLOCKED", type(e).__name__, flush=True)


def client_proofs(cafile: str) -> None:
    """A DoT query with stand-in proofs for every record: the answer must come back through the bridge."""
    import dns.message
    from zkmb.circuits.public import co_public_inputs, pad_public_inputs, parse_channel
    from zkmb.circuits.query import query_public_inputs, size_class
    from zkmb.middlebox.messages import Accepted, Announce, CoMsg, PadMsg, QMsg

    from .conftest import ROOT, FakeProof
    from .test_relay import _Fake

    _patch_codec()
    c = _dot(cafile)
    c.connect()
    cap = c.capture
    local = c._sock.getsockname()[:2]
    p = _Fake.__new__(_Fake)
    p.sock, p.buf = socket.create_connection((MB, PROOF_PORT), timeout=5), b""
    p.send(Announce(tuple(local), (RESOLVER, 853), cap.client_random))
    assert isinstance(p.recv(), Accepted)
    deadline = time.time() + 5
    while cap.client_finished_record is None and time.time() < deadline:
        time.sleep(0.01)
    view = parse_channel(cap.client_bytes, cap.server_bytes)
    suite = cap.suite_name
    p.send(CoMsg(7, FakeProof(f"co_{suite}", tuple(co_public_inputs(view, 7)))))
    assert isinstance(p.recv(), Accepted)
    for j in range(7):
        p.send(PadMsg(0, j, 50 + j, FakeProof(f"pad_{suite}", tuple(pad_public_inputs(7, 0, j, 50 + j)))))
        assert isinstance(p.recv(), Accepted)
    out = {}
    t = threading.Thread(
        target=lambda: out.setdefault("r", c.query(dns.message.make_query("www.example.test", "A")))
    )
    t.start()
    while not cap.client_app_records and time.time() < deadline:
        time.sleep(0.01)
    raw = cap.client_app_records[0].raw
    inner = len(raw) - 21
    b = size_class(inner)
    pub = query_public_inputs(list(range(50, 50 + b // 64)), raw[5 : 5 + inner], inner, ROOT, b)
    p.send(QMsg(0, FakeProof(f"q_{b}", tuple(pub))))
    assert isinstance(p.recv(), Accepted)
    t.join(5)
    print("ANSWER", out["r"].answer[0].to_text(), flush=True)
    c.close()


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
