"""A small, scriptable, misbehaving TLS 1.3 DoT server for the client tests.

The handshake is aioquic's server-side ``tls.Context`` (ECDHE, certificate, CertificateVerify, Finished);
the record layer is ``zkmb.tls.records``; this module adds HelloRetryRequest (aioquic's server has none),
record padding, KeyUpdate, post-handshake CertificateRequest, corrupted tags and control over how records
are cut into TCP writes. :class:`ServerCore` is sans-IO (the fuzz tests drive it in memory);
:class:`HostileServer` runs it on 127.0.0.1 in a thread with bounded timeouts.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aioquic import tls as aq
from aioquic.buffer import Buffer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from zkmb.resolver import Responder
from zkmb.tls.client import HRR_RANDOM
from zkmb.tls.records import (
    CT_APPLICATION_DATA,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    LEGACY_VERSION,
    TAG_LEN,
    Record,
    RecordProtection,
    RecordReader,
    next_traffic_secret,
    plaintext_records,
)

CCS_RECORD = bytes.fromhex("140303000101")
# Actions a Script can run before or after answering query number i (0-based, per connection).
ACTIONS = frozenset(
    {
        "key_update",  # KeyUpdate(update_not_requested), then the server's write key moves on
        "key_update_requested",  # KeyUpdate(update_requested), same
        "certificate_request",  # a post-handshake CertificateRequest
        "bad_tag",  # the next protected record gets a flipped tag bit
        "ccs",  # a ChangeCipherSpec record after the handshake (illegal)
        "drop",  # (before only) do not answer this query
        "close",  # close the connection after this step
    }
)


@dataclass
class Script:
    """How one connection misbehaves. Defaults: a correct server that negotiates no ALPN (like unbound)."""

    alpn: str | None = None  # selected whatever the client offered
    hrr_cookie: bytes | None = None  # send a HelloRetryRequest carrying this cookie
    hrr_group: int | None = None  # ... and/or asking for this group (the server then only accepts it)
    suites: tuple[int, ...] = (0x1303, 0x1301)  # server preference
    ccs_after_server_hello: bool = False  # middlebox-compatibility ChangeCipherSpec (RFC 8446 §D.4)
    bad_tag_in_flight: bool = False  # flip a tag bit of the first encrypted handshake record
    pad: int = 0  # zero bytes of padding in every protected server record
    record_size: int | None = None  # split each DoT response into records of at most this many bytes
    chunk: int | None = None  # after the handshake: TCP writes of at most this many bytes, with pauses
    chunk_pause: float = 0.02
    before: dict[int, tuple[str, ...]] = field(default_factory=dict)
    after: dict[int, tuple[str, ...]] = field(default_factory=dict)
    mutate_handshake: Callable[[bytes], bytes] | None = None  # applied to the encrypted flight (fuzzing)
    mutate_server_hello: Callable[[bytes], bytes] | None = None  # applied to the ServerHello/HRR record

    def __post_init__(self) -> None:
        for actions in (*self.before.values(), *self.after.values()):
            unknown = set(actions) - ACTIONS
            if unknown:
                raise ValueError(f"unknown actions {sorted(unknown)}")


class ServerError(Exception):
    """The client did something the server did not expect (recorded by the runner, never sent)."""


class _ServerContext(aq.Context):
    """aioquic's server context whose new key schedule starts with the HRR transcript prefix.

    aioquic's ``_server_handle_hello`` creates ``KeySchedule`` and hashes the ClientHello; after a
    HelloRetryRequest the transcript must start with message_hash(ClientHello1) || HRR (RFC 8446
    §4.4.1), so the assignment of ``key_schedule`` is intercepted to prepend it.
    """

    zk_transcript_prefix = b""

    @property
    def key_schedule(self):
        return self.__dict__.get("_zk_key_schedule")

    @key_schedule.setter
    def key_schedule(self, value) -> None:
        if value is not None and self.zk_transcript_prefix:
            value.update_hash(self.zk_transcript_prefix)
        self.__dict__["_zk_key_schedule"] = value


def seal(prot: RecordProtection, inner_type: int, content: bytes, pad: int = 0) -> bytes:
    """One protected record with ``pad`` zero bytes of TLS padding (the client never pads; servers may)."""
    inner = content + bytes([inner_type]) + bytes(pad)
    header = bytes([CT_APPLICATION_DATA]) + LEGACY_VERSION + struct.pack("!H", len(inner) + TAG_LEN)
    ct = prot._aead.encrypt(prot._nonce(prot.seq), inner, header)
    prot.seq += 1
    return header + ct


def _hrr_message(session_id: bytes, suite: int, group: int | None, cookie: bytes | None) -> bytes:
    exts = struct.pack("!HHH", 43, 2, 0x0304)
    if group is not None:
        exts += struct.pack("!HHH", 51, 2, group)
    if cookie is not None:
        exts += struct.pack("!HHH", 44, len(cookie) + 2, len(cookie)) + cookie
    body = b"\x03\x03" + HRR_RANDOM + bytes([len(session_id)]) + session_id
    body += struct.pack("!HB", suite, 0) + struct.pack("!H", len(exts)) + exts
    return bytes([2]) + len(body).to_bytes(3, "big") + body


def _split_messages(buf: bytearray) -> list[bytes]:
    out = []
    while len(buf) >= 4:
        n = int.from_bytes(buf[1:4], "big")
        if len(buf) < 4 + n:
            break
        out.append(bytes(buf[: 4 + n]))
        del buf[: 4 + n]
    return out


class ServerCore:
    """Sans-IO server connection: ``receive(data)``, then ``take_writes()`` gives the TCP writes to make."""

    def __init__(
        self,
        cert_pem: bytes,
        key_pem: bytes,
        script: Script | None = None,
        responder: Responder | None = None,
    ):
        self.script = script or Script()
        self.responder = responder or Responder(static={"www.example.test": "192.0.2.1"})
        ctx = _ServerContext(is_client=False, cipher_suites=[aq.CipherSuite(s) for s in self.script.suites])
        ctx.certificate = x509.load_pem_x509_certificate(cert_pem)
        ctx.certificate_private_key = serialization.load_pem_private_key(key_pem, None)
        ctx.alpn_negotiated = self.script.alpn  # kept: with _alpn_protocols None aioquic negotiates nothing
        if self.script.hrr_group is not None:
            ctx._supported_groups = [aq.Group(self.script.hrr_group)]
        ctx.update_traffic_key_cb = self._on_key
        self._ctx = ctx
        self._reader = RecordReader()
        self._hs_buf = bytearray()
        self._frames = bytearray()
        self._write_hs: RecordProtection | None = None
        self._write_app: RecordProtection | None = None
        self._read: RecordProtection | None = None
        self._next_read: RecordProtection | None = None
        self._state = "client_hello"
        self._client_hello1: bytes | None = None
        self._writes: list[bytes] = []
        self._pending = bytearray()
        self._corrupt_next = False
        self.closed = False
        self.handshake_done = False
        self.queries: list[bytes] = []
        self.facts: dict[str, object] = {}

    # -- driver API --------------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Process bytes from the client (raises ServerError on a client fault)."""
        if self.closed:
            return
        for rec in self._reader.feed(data):
            if self.closed:
                break
            self._on_record(rec)
        self._flush()

    def take_writes(self) -> list[bytes]:
        """The TCP writes produced so far, each to be sent with one ``sendall`` (or chunked)."""
        out, self._writes = self._writes, []
        return out

    # -- internals -------------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._pending:
            self._writes.append(bytes(self._pending))
            self._pending.clear()

    def _on_key(self, direction, epoch, suite, secret) -> None:
        prot = RecordProtection(int(suite), secret)
        if direction == aq.Direction.ENCRYPT:
            if epoch == aq.Epoch.HANDSHAKE:
                self._write_hs = prot
            else:
                self._write_app = prot
        elif epoch == aq.Epoch.HANDSHAKE:
            self._read = prot
        else:
            self._next_read = prot

    def _emit_protected(self, prot: RecordProtection, inner_type: int, content: bytes) -> None:
        rec = bytearray(seal(prot, inner_type, content, self.script.pad))
        if self._corrupt_next:
            rec[-1] ^= 0x01
            self._corrupt_next = False
        self._pending += rec

    def _run_ctx(self, msg: bytes) -> dict:
        bufs = {epoch: Buffer(capacity=1 << 16) for epoch in aq.Epoch}
        try:
            self._ctx.handle_message(msg, bufs)
        except aq.Alert as exc:
            raise ServerError(f"aioquic server rejected the client: {exc!r}") from None
        return {epoch: bufs[epoch].data for epoch in aq.Epoch}

    def _on_record(self, rec: Record) -> None:
        ctype, payload = rec.content_type, rec.payload
        if ctype == CT_CHANGE_CIPHER_SPEC:
            self.facts["client_ccs"] = True
            return
        if self._state in ("client_hello", "client_hello2"):
            if ctype != CT_HANDSHAKE:
                raise ServerError(f"expected a ClientHello record, got type {ctype}")
            self._hs_buf += payload
            for msg in _split_messages(self._hs_buf):
                self._on_client_hello(msg)
            return
        if ctype != CT_APPLICATION_DATA or self._read is None:
            raise ServerError(f"unexpected record type {ctype} in state {self._state}")
        _, inner, content = self._read.open(rec)
        if self._state == "finished":
            if inner != CT_HANDSHAKE:
                raise ServerError("expected the client Finished")
            self.facts["client_finished_payload_len"] = len(payload)
            self._run_ctx(content)
            if self._ctx.state != aq.State.SERVER_POST_HANDSHAKE or self._next_read is None:
                raise ServerError("client Finished not accepted")
            self._read, self._next_read = self._next_read, None
            self._state = "app"
            self.handshake_done = True
            return
        if inner != CT_APPLICATION_DATA:
            raise ServerError(f"client sent inner content type {inner} after the handshake")
        self._frames += content
        while len(self._frames) >= 2:
            n = int.from_bytes(self._frames[:2], "big")
            if len(self._frames) < 2 + n:
                break
            wire = bytes(self._frames[2 : 2 + n])
            del self._frames[: 2 + n]
            self._on_query(wire)
            if self.closed:
                return

    def _on_client_hello(self, msg: bytes) -> None:
        script = self.script
        if msg[0] != 1:
            raise ServerError(f"expected ClientHello, got handshake type {msg[0]}")
        if self._state == "client_hello" and (script.hrr_cookie is not None or script.hrr_group is not None):
            hello = aq.pull_client_hello(Buffer(data=msg))
            suite = next((s for s in script.suites if s in hello.cipher_suites), None)
            if suite is None:
                raise ServerError("no common suite for the HelloRetryRequest")
            hrr = _hrr_message(hello.legacy_session_id, suite, script.hrr_group, script.hrr_cookie)
            self._client_hello1 = msg
            self._ctx.zk_transcript_prefix = bytes([254, 0, 0, 32]) + hashlib.sha256(msg).digest() + hrr
            self._ctx._cipher_suites = [aq.CipherSuite(suite)]
            rec = plaintext_records(CT_HANDSHAKE, hrr)
            if script.mutate_server_hello is not None:
                rec = script.mutate_server_hello(rec)
            self._pending += rec
            self._state = "client_hello2"
            return
        if self._state == "client_hello2":
            hello = aq.pull_client_hello(Buffer(data=msg))
            hello1 = aq.pull_client_hello(Buffer(data=self._client_hello1))
            self.facts["same_random"] = hello.random == hello1.random
            cookies = [v for t, v in hello.other_extensions if t == 44]
            cookie = script.hrr_cookie
            self.facts["cookie_echoed"] = cookie is not None and cookies == [
                struct.pack("!H", len(cookie)) + cookie
            ]
            if cookie is not None and not self.facts["cookie_echoed"]:
                raise ServerError("second ClientHello does not echo the cookie")
            if not self.facts["same_random"]:
                raise ServerError("second ClientHello has a new random")
        out = self._run_ctx(msg)
        sh = plaintext_records(CT_HANDSHAKE, out[aq.Epoch.INITIAL])
        if script.mutate_server_hello is not None:
            sh = script.mutate_server_hello(sh)
        self._pending += sh
        if script.ccs_after_server_hello:
            self._pending += CCS_RECORD
        flight = out[aq.Epoch.HANDSHAKE]
        if script.mutate_handshake is not None:
            flight = script.mutate_handshake(flight)
        self._corrupt_next = script.bad_tag_in_flight
        for i in range(0, len(flight), 1 << 14):
            self._emit_protected(self._write_hs, CT_HANDSHAKE, flight[i : i + (1 << 14)])
        self._state = "finished"

    def _actions(self, actions: tuple[str, ...]) -> None:
        for action in actions:
            prot = self._write_app
            if action in ("key_update", "key_update_requested"):
                requested = int(action == "key_update_requested")
                self._emit_protected(prot, CT_HANDSHAKE, bytes([24, 0, 0, 1, requested]))
                self._write_app = RecordProtection(prot.suite, next_traffic_secret(prot.secret))
                self.facts["key_updates"] = int(self.facts.get("key_updates", 0)) + 1
            elif action == "certificate_request":
                # request_context 0x2a, extensions: signature_algorithms [ecdsa_secp256r1_sha256]
                body = bytes([1, 0x2A]) + struct.pack("!HHHHH", 8, 13, 4, 2, 0x0403)
                self._emit_protected(prot, CT_HANDSHAKE, bytes([13]) + len(body).to_bytes(3, "big") + body)
            elif action == "bad_tag":
                self._corrupt_next = True
            elif action == "ccs":
                self._pending += CCS_RECORD
            elif action == "close":
                self._flush()
                self.closed = True

    def _on_query(self, wire: bytes) -> None:
        i = len(self.queries)
        self.queries.append(wire)
        before = self.script.before.get(i, ())
        self._actions(tuple(a for a in before if a != "drop"))
        if self.closed:
            return
        if "drop" not in before:
            resp = self.responder.answer(wire)
            if resp is None:
                raise ServerError("responder produced no answer")
            frame = struct.pack("!H", len(resp)) + resp
            size = self.script.record_size or len(frame)
            for j in range(0, len(frame), size):
                self._emit_protected(self._write_app, CT_APPLICATION_DATA, frame[j : j + size])
        self._actions(self.script.after.get(i, ()))


class HostileServer:
    """Runs :class:`ServerCore` connections one after another on 127.0.0.1 in a daemon thread.

    Connection ``k`` uses ``scripts[min(k, len(scripts) - 1)]``. Every socket operation has ``timeout``;
    faults seen by the server are collected in ``errors`` (tests assert on them), finished cores in
    ``cores``.
    """

    def __init__(
        self,
        cert_pem: bytes,
        key_pem: bytes,
        scripts: list[Script] | Script | None = None,
        responder: Responder | None = None,
        timeout: float = 5.0,
    ):
        if isinstance(scripts, Script) or scripts is None:
            scripts = [scripts or Script()]
        self.cert_pem, self.key_pem = cert_pem, key_pem
        self.scripts = scripts
        self.responder = responder
        self.timeout = timeout
        self.errors: list[BaseException] = []
        self.cores: list[ServerCore] = []
        self._stop = threading.Event()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(4)
        self._lsock.settimeout(0.1)
        self.port: int = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)
        self._lsock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            script = self.scripts[min(len(self.cores), len(self.scripts) - 1)]
            core = ServerCore(self.cert_pem, self.key_pem, script, self.responder)
            self.cores.append(core)
            with conn:
                try:
                    self._serve(conn, core)
                except (ServerError, OSError, ValueError) as e:
                    self.errors.append(e)
                except Exception as e:  # noqa: BLE001 - recorded for the test to see
                    self.errors.append(e)

    def _serve(self, conn: socket.socket, core: ServerCore) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(self.timeout)
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = conn.recv(65536)
            except TimeoutError:
                return
            if not data:
                return
            core.receive(data)
            for blob in core.take_writes():
                self._write(conn, blob, core.script, core.handshake_done)
            if core.closed:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)
                return

    def _write(self, conn: socket.socket, blob: bytes, script: Script, handshake_done: bool) -> None:
        if not script.chunk or not handshake_done:
            conn.sendall(blob)
            return
        for i in range(0, len(blob), script.chunk):
            conn.sendall(blob[i : i + script.chunk])
            time.sleep(script.chunk_pause)


__all__ = ["ACTIONS", "CCS_RECORD", "HostileServer", "Script", "ServerCore", "ServerError", "seal"]
