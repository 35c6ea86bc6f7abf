"""Processes of the bridge namespace test, one per namespace (``python -m tests.middlebox.netns_roles ROLE``).

Each prints ``READY`` when it is listening (servers) and its result lines; all are bounded by timeouts.
Stand-in proofs (``FakeProof``) cross the proof channel pickled, as in test_relay's ``fake_frames``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import pickle
import socket
import sys
import threading
import time

RESOLVER, MB = "10.253.0.2", "10.253.0.254"
PROOF_PORT, ECHO_PORT = 8853, 7007
ALLOWED = frozenset({RESOLVER})  # the bridges' resolver allowlist (SPEC §1)


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
        b = Bridge(v, config=FlowConfig(q_deadline=float(q_deadline), resolvers=ALLOWED))
        await b.start_bridge(int(queue), (MB, PROOF_PORT))
        print("READY", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())


def stand_in_bridge(q_deadline: float, queue: int):
    """In a spawned bridge child: a Bridge with stand-in proofs (the codec patched in this process)."""
    from zkmb.middlebox.bridge import Bridge
    from zkmb.middlebox.flow import FlowConfig
    from zkmb.middlebox.verifier import PolicyRoots, Verifier

    from .conftest import NAMES, ROOT, fake_check

    _patch_codec()
    v = Verifier({n: n for n in NAMES}, PolicyRoots(ROOT), check=fake_check)
    return Bridge(v, config=FlowConfig(q_deadline=q_deadline, resolvers=ALLOWED))


def real_bridge(key_dir: str, queue: int):
    """In a bridge child (or the single-queue process): REAL verification with ``key_dir``'s keys."""
    from zkmb.circuits.keys import load_keys
    from zkmb.middlebox.bridge import Bridge
    from zkmb.middlebox.flow import FlowConfig
    from zkmb.middlebox.verifier import PolicyRoots, Verifier, protocol_name
    from zkmb.middlebox.workers import VerifyPool

    # only the three circuits the client proves (the shared demo key directory may hold others)
    loaded = load_keys(key_dir, ["co_chacha20", "pad_block", "q_64"], "verifier", against="manifest")
    keys = {protocol_name(name): vk for name, vk in loaded.items()}
    verifier = Verifier(keys, PolicyRoots(_small_policy().root))
    config = FlowConfig(co_deadline=150.0, q_deadline=60.0, resolvers=ALLOWED)
    return Bridge(verifier, config=config, pool=VerifyPool(verifier, workers=1))


def bridge_multi(queues: str, q_deadline: str) -> None:
    """MultiQueueBridge over ``queues`` (``N:M``), one stand-in-proof Bridge per queue."""
    from zkmb.middlebox.multiqueue import MultiQueueBridge, parse_queues

    _patch_codec()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")

    # spawned children rebuild the bridge from a picklable factory (module-level, importable name)
    factory = functools.partial(importlib.import_module(__spec__.name).stand_in_bridge, float(q_deadline))

    async def main():
        mq = MultiQueueBridge(factory, parse_queues(queues))
        await mq.start((MB, PROOF_PORT))
        await asyncio.sleep(1.0)  # the children bind their queues
        print("READY", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())


def _bind_source(src: str) -> None:
    """Every TCP connection of this process from ``src`` (a second client address)."""
    orig = socket.create_connection

    def create_connection(address, timeout=None, source_address=None, **kw):
        return orig(address, timeout, source_address or (src, 0), **kw)

    socket.create_connection = create_connection


def client_proofs_from(cafile: str, src: str) -> None:
    _bind_source(src)
    client_proofs(cafile)


def client_replay(cafile: str, src_a: str, src_b: str) -> None:
    """One ClientHello sent from ``src_a`` and then replayed byte for byte from ``src_b`` (another
    address: the kernel may put it on another queue); prints what the resolver answered to each."""
    from zkmb.tls import DotConnection, TlsClientConfig
    from zkmb.tls.records import SUITES_BY_NAME

    conn = DotConnection(TlsClientConfig(RESOLVER, cafile=cafile, suites=(SUITES_BY_NAME["chacha20"],)))
    conn.start()
    hello = conn.data_to_send()
    for tag, src in (("FIRST", src_a), ("REPLAY", src_b)):
        s = socket.create_connection((RESOLVER, 853), timeout=5, source_address=(src, 0))
        print(tag, "port", s.getsockname()[1], flush=True)
        s.sendall(hello)
        got = b""
        s.settimeout(3)
        try:
            while len(got) < 5:
                data = s.recv(4096)
                if not data:
                    break
                got += data
        except OSError:
            pass
        print(tag, "got", len(got), flush=True)
        s.close()


def _small_policy():
    """The policy both sides of the real-proof test build (same rules, same root)."""
    from zkmb.policy import policy_from_rules
    from zkmb.policy.normalise import normalise
    from zkmb.policy.rules import Kind, Rule, name_key

    return policy_from_rules(normalise([Rule(name_key("evil.test"), Kind.SUBTREE, "evil.test", "t", 1)]))


def unbound(cert: str, key: str, workdir: str) -> None:
    """unbound on RESOLVER:853 (DoT only, local data), plus the TCP echo on ECHO_PORT."""
    import shutil
    import subprocess

    conf = f"{workdir}/unbound.conf"
    with open(conf, "w") as f:
        f.write(
            f"""server:
    interface: {RESOLVER}@853
    tls-port: 853
    tls-service-key: "{key}"
    tls-service-pem: "{cert}"
    tls-ciphersuites: "TLS_CHACHA20_POLY1305_SHA256"
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: "{workdir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-ip6: no
    do-udp: no
    tcp-idle-timeout: 120000
    access-control: 10.253.0.0/24 allow
    do-not-query-localhost: yes
    local-zone: "." refuse
    local-zone: "example.test." static
    local-data: "www.example.test. 300 IN A 192.0.2.1"
remote-control:
    control-enable: no
"""
        )
    proc = subprocess.Popen([shutil.which("unbound"), "-d", "-c", conf])

    async def echo(r, w):
        w.write(await r.read(1024))
        await w.drain()
        w.close()

    async def main():
        await asyncio.start_server(echo, RESOLVER, ECHO_PORT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection((RESOLVER, 853), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        print("READY", flush=True)
        await asyncio.sleep(170)

    try:
        asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(5)


def bridge_real(queues: str, key_dir: str) -> None:
    """Bridge(s) with REAL verification (keys from ``key_dir``, worker pool), proof endpoint MB:PROOF_PORT."""
    from zkmb.middlebox.multiqueue import MultiQueueBridge, parse_queues

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    factory = functools.partial(importlib.import_module(__spec__.name).real_bridge, key_dir)

    async def main():
        qs = parse_queues(queues)
        if len(qs) == 1:
            b = factory(qs[0])
            await b.start_bridge(qs[0], (MB, PROOF_PORT))
        else:
            await MultiQueueBridge(factory, qs).start((MB, PROOF_PORT))
            await asyncio.sleep(1.0)
        print("READY", flush=True)
        await asyncio.sleep(170)

    asyncio.run(main())


def client_real(cafile: str, key_dir: str) -> None:
    """A DoT query through the bridge with REAL Groth16 CO / PAD / Q proofs (the stub's prover)."""
    import dns.message
    from zkmb.client_stub.prover import Groth16Prover

    from zkmb.proofchannel import Accepted, Announce, Announced, CoMsg, PadMsg, QMsg

    from .test_relay import _Fake

    policy = _small_policy()
    prover = Groth16Prover.from_dir(key_dir, sizes=(64,))
    c = _dot(cafile, timeout=150)
    c.connect()
    cap = c.capture
    p = _Fake.__new__(_Fake)
    p.sock, p.buf = socket.create_connection((MB, PROOF_PORT), timeout=150), b""
    p.send(Announce(tuple(c._sock.getsockname()[:2]), (RESOLVER, 853), cap.client_random))
    assert isinstance(p.recv(), Announced)
    deadline = time.time() + 5
    while cap.client_finished_record is None and time.time() < deadline:
        time.sleep(0.01)
    t0 = time.time()
    keys, co_proof = prover.co(cap)
    p.send(CoMsg(keys.comm_k, co_proof))
    ans = p.recv()
    assert isinstance(ans, Accepted), ans
    pa, pad_proof = prover.pad(keys, 0, 0)
    p.send(PadMsg(0, 0, pa.comm_pad, pad_proof))
    ans = p.recv()
    assert isinstance(ans, Accepted), ans
    print(f"CO+PAD accepted after {time.time() - t0:.1f} s", flush=True)
    out = {}
    t = threading.Thread(
        target=lambda: out.setdefault("r", c.query(dns.message.make_query("www.example.test", "A")))
    )
    t.start()
    deadline = time.time() + 10
    while not cap.client_app_records and time.time() < deadline:
        time.sleep(0.01)
    raw = cap.client_app_records[0].raw
    inner = len(raw) - 21
    p.send(QMsg(0, prover.q([pa.pad], [pa.blinder], raw[5 : 5 + inner], policy, 64)))
    ans = p.recv()
    assert isinstance(ans, Accepted), ans
    t.join(60)
    print("ANSWER", out["r"].answer[0].to_text(), flush=True)
    c.close()


def stub_real(cafile: str, key_dir: str) -> None:
    """The real stub service (ProvingUpstream + Listener, Groth16Prover) in the client namespace, queried
    with dnspython over UDP on loopback: the bridge is transparent, so the stub's "relay" is the resolver
    itself (RESOLVER:853) and its proof endpoint the bridge's MB:PROOF_PORT."""
    import dns.edns
    import dns.message
    import dns.query
    import dns.rcode
    from zkmb.client_stub.listener import Listener
    from zkmb.client_stub.prover import Groth16Prover
    from zkmb.client_stub.upstream import ProvingUpstream

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
    policy = _small_policy()
    prover = Groth16Prover.from_dir(key_dir, sizes=(64,))

    async def ask(port: int, name: str) -> dns.message.Message:
        q = dns.message.make_query(name, "A", use_edns=0)
        return await asyncio.to_thread(dns.query.udp, q, "127.0.0.1", timeout=90, port=port)

    async def main() -> None:
        up = ProvingUpstream(
            (RESOLVER, 853),
            (MB, PROOF_PORT),
            prover,
            policy,
            server_name=RESOLVER,
            cafile=cafile,
            pool_size=1,
            pad_ahead=1,
            connect_timeout=10.0,
            answer_timeout=120.0,
            ready_timeout=150.0,
        )
        await up.start()
        lst = Listener(up, policy, host="127.0.0.1", port=0, upstream_timeout=150.0)
        try:
            port, _ = await lst.start()
            t0 = time.time()
            r = await ask(port, "www.evil.test")  # before any proved connection exists: no packet needed
            ede = [int(o.code) for o in r.options if isinstance(o, dns.edns.EDEOption)]
            print("BLOCKED", dns.rcode.to_text(r.rcode()), ede, f"{time.time() - t0:.2f}s", flush=True)
            r = await ask(port, "www.example.test")
            print("ANSWER", r.answer[0].to_text(), f"{time.time() - t0:.1f}s", flush=True)
            print(f"STATS blocked={lst.stats.blocked} upstream={lst.stats.upstream}", flush=True)
        finally:
            await lst.close()
            await up.close()

    asyncio.run(main())


def _dot(cafile: str, timeout: float = 4):
    from zkmb.tls import DotClient, TlsClientConfig
    from zkmb.tls.records import SUITES_BY_NAME

    suites = (SUITES_BY_NAME["chacha20"],)
    return DotClient(RESOLVER, 853, TlsClientConfig(RESOLVER, cafile=cafile, suites=suites), timeout=timeout)


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

    from zkmb.proofchannel import Accepted, Announce, Announced, CoMsg, PadMsg, QMsg

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
    assert isinstance(p.recv(), Announced)
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
