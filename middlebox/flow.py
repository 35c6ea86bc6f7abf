"""The sans-IO flow core: every rule the middlebox enforces on one DoT connection (SPEC §2, §4, §5, §7).

A :class:`Flow` is fed the TCP payload of each direction (:meth:`Flow.client_data`,
:meth:`Flow.server_data`) and the proof messages of the connection (:meth:`Flow.co`,
:meth:`Flow.pad`, :meth:`Flow.q`); it never does I/O and never needs a secret.  Outputs:

* :meth:`Flow.take_to_server` -- client bytes it released (in order, whole records only);
* :meth:`Flow.take_to_client` -- resolver bytes, passed on at once, never held;
* :meth:`Flow.take_answers` -- ACCEPTED / REJECTED answers for the proof channel;
* :attr:`Flow.closed` -- the reason the connection must be cut (and :attr:`Flow.ban`).

Every decision is one structured log line (logger ``zkmb.middlebox``): flow id, what, record
number, length, action, reason; never any record content.

Client records, in order (anything else closes the connection): the ClientHello (held until the
whole message is in and checked), a second one only after a HelloRetryRequest, at most one
compatibility ChangeCipherSpec, the 53-byte Finished record (forwarded; it starts the CO deadline),
then application records of payload 1 + 16 .. 448 + 16, numbered by the middlebox from 0.  In strict
mode each application record is held until CO and its Q proof verified, and released in order; in
asynchronous mode it is forwarded at once and the connection is cut (and the client banned) if its
proof fails to arrive by the deadline.  Proof messages that fail never close a connection.

Verification may be asynchronous: ``verifier.verify`` returns True, False, or None for "queued"
(:mod:`zkmb.middlebox.workers`); a queued proof stays pending and :meth:`Flow.retry` (called when the
verdict is in) re-runs the check, which then finds the verdict.  A False verdict carries
``verifier.refusal`` as its reason when the verifier sets one (e.g. it was overloaded).
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from zkmb.circuits.commit import PAD_BLOCKS, PAD_BYTES
from zkmb.circuits.public import (
    _CCS_RECORD,
    _HRR_RANDOM,
    FINISHED_RECORD_LEN,
    ChannelView,
    _client_hello,
    _Messages,
    _server_hello,
    co_public_inputs,
    pad_public_inputs,
    parse_channel,
)
from zkmb.circuits.query import MIN_L, SIZE_CLASSES, query_public_inputs, size_class

from zkmb.errors import InvalidInput
from zkmb.groth16.proof import Proof

from .randoms import RandomSet, SharedRandomSet
from .verifier import Verifier, co_name, pad_name, pads_name, q_name

__all__ = [
    "MAX_APP_PAYLOAD",
    "RESOLVER_CLOSED_BEFORE_CO",
    "Answer",
    "Decision",
    "Flow",
    "FlowConfig",
    "Mode",
    "RandomSet",
    "resolver_set",
]

log = logging.getLogger("zkmb.middlebox")

_CT_CCS, _CT_ALERT, _CT_HANDSHAKE, _CT_APP = 20, 21, 22, 23
_HT_CLIENT_HELLO, _HT_SERVER_HELLO = 1, 2
_TAG = 16
MAX_APP_PAYLOAD = SIZE_CLASSES[-1] + _TAG
"""SPEC §2: an application record carries at most 448 + 16 bytes of payload."""
_MAX_HS_RECORD = 1 << 14


RESOLVER_CLOSED_BEFORE_CO = "resolver closed the connection before the CO was accepted"
"""The close reason (and metrics label) of a resolver whose idle time-out is shorter than the CO."""


class Mode(enum.Enum):
    """Strict: hold each record until verified.  Async: forward at once, cut and ban when late."""

    STRICT = "strict"
    ASYNC = "async"


@dataclass(frozen=True)
class FlowConfig:
    """Deadlines (seconds), windows and bounds of one flow."""

    mode: Mode = Mode.STRICT
    co_deadline: float = 20.0
    """SPEC §2: a CO proof must verify within [20 s] of the client Finished."""
    q_deadline: float = 2.0
    """SPEC §7 (strict): a record with no valid proof after [2 s] closes the connection."""
    async_q_deadline: float = 3.0
    """SPEC §7 (async): a record's PAD and Q proofs must be accepted within [3 s] of its arrival or of
    the CO's acceptance, whichever is later."""
    async_max_before_co: int = 8
    """SPEC §7 (async): at most [8] records are forwarded before the CO is accepted."""
    pad_window: int = 64
    """SPEC §4: PAD proofs for n in [next, next + W]."""
    max_unverified: int = 64
    """At most this many application records held or unverified at once."""
    max_handshake_bytes: int = 1 << 16
    """Bytes kept per direction for the handshake transcript."""
    max_pending_pad: int = 64 * PAD_BLOCKS
    """PAD proofs waiting for their verdict at once (more are answered REJECTED)."""
    keep_decisions: int = 256
    """:attr:`Flow.decisions` keeps (at least) the last this many decisions, never more than twice that."""
    resolvers: frozenset[str] | None = None
    """SPEC §1: the resolver addresses a flow may go to (canonical IP text, see :func:`resolver_set`);
    None admits any (relay mode, whose one upstream is fixed).  Bridge mode requires a set."""


@dataclass(frozen=True)
class Decision:
    """One decision on client bytes: ``forward``, ``hold`` or ``block`` (closing the connection)."""

    action: str
    what: str
    reason: str = ""
    n: int | None = None
    length: int | None = None
    ban: bool = False
    held: float | None = None
    """Seconds a verified application record waited between arrival and release (strict mode)."""

    @property
    def cut(self) -> bool:
        """A ``block`` that cuts the connection for a rule, a deadline or a shutdown (not the client's
        or the resolver's own close: what ``eof`` / ``rst``)."""
        return self.action == "block" and self.what not in ("eof", "rst")


@dataclass(frozen=True)
class Answer:
    """An answer to one proof message: ``kind`` is ``co``, ``pad`` or ``q``."""

    kind: str
    accepted: bool
    reason: str = ""
    n: int = 0
    j: int = 0


def resolver_set(addresses) -> frozenset[str]:
    """The canonical text of each IP address in ``addresses`` (at least one); InvalidInput otherwise."""
    out = set()
    for a in addresses:
        try:
            out.add(str(ipaddress.ip_address(str(a).strip("[]"))))
        except ValueError:
            raise InvalidInput(f"not an IP address: {a!r}") from None
    if not out:
        raise InvalidInput("no resolver address allowed")
    return frozenset(out)


@dataclass
class _Record:
    n: int
    raw: bytes
    arrival: float
    verified: bool = False


class _State(enum.Enum):
    HELLO = 1
    APP = 2
    CLOSED = 3


@dataclass
class _ServerSide:
    buf: bytearray = field(default_factory=bytearray)
    seen: bytearray = field(default_factory=bytearray)
    msgs: _Messages = field(default_factory=lambda: _Messages("server"))
    hrr: bool = False
    server_hello: bool = False
    ccs: bool = False


class Flow:
    """One client<->resolver connection as the middlebox sees it (see the module docstring)."""

    def __init__(
        self,
        verifier: Verifier,
        clock: Callable[[], float],
        config: FlowConfig | None = None,
        *,
        seen_randoms: RandomSet | SharedRandomSet | None = None,
        flow_id: str = "-",
        on_decision: Callable[[Decision], None] | None = None,
    ):
        self.verifier = verifier
        self.clock = clock
        self.config = config or FlowConfig()
        self.seen_randoms = seen_randoms if seen_randoms is not None else RandomSet()
        self.flow_id = flow_id
        self.closed: str | None = None
        self.ban = False
        self.client_random: bytes | None = None
        self.view: ChannelView | None = None
        self.comm_k: int | None = None
        self._state = _State.HELLO
        self._cbuf = bytearray()
        self._cseen = bytearray()
        self._hs_pending = bytearray()
        self._cmsgs = _Messages("client")
        self._hellos = 0
        self._ccs = False
        self._server = _ServerSide()
        self._finished_at: float | None = None
        self._co_at: float | None = None  # when the CO was accepted
        self._pending_co: tuple[int, Proof] | None = None
        self._records: OrderedDict[int, _Record] = OrderedDict()  # unreleased (strict) / unverified (async)
        self._next_in = 0  # the number the next application record gets
        self._low = 0  # every record below this number is verified
        self._pads: dict[tuple[int, int], int] = {}
        self._pending_q: dict[int, Proof] = {}
        self._pending_pad: dict[tuple[int, int], tuple[int, Proof]] = {}
        self._pending_pads: dict[tuple[tuple[int, int, int], ...], Proof] = {}  # PADS awaiting a verdict
        self._to_server = bytearray()
        self._to_client = bytearray()
        self._answers: list[Answer] = []
        self.decisions: list[Decision] = []
        """The latest decisions (a bounded window, for logs and tests): between ``keep_decisions`` and
        twice that once that many were made; :attr:`decision_count` counts them all."""
        self.decision_count = 0
        self.on_decision = on_decision
        """Called with every decision as it is made (the adapters count metrics with it)."""

    # ------------------------------------------------------------------ outputs

    def take_to_server(self) -> bytes:
        """Client bytes released for the resolver since the last call."""
        out = bytes(self._to_server)
        self._to_server.clear()
        return out

    def take_to_client(self) -> bytes:
        """Resolver bytes to pass to the client (never held)."""
        out = bytes(self._to_client)
        self._to_client.clear()
        return out

    def take_answers(self) -> list[Answer]:
        """Proof-channel answers produced since the last call."""
        out, self._answers = self._answers, []
        return out

    @property
    def next_record(self) -> int:
        """The lowest record number not yet verified (the ``next`` of SPEC §4)."""
        return self._low

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next (None: nothing is waiting)."""
        if self.closed:
            return None
        times = []
        if self._finished_at is not None and self.comm_k is None:
            times.append(self._finished_at + self.config.co_deadline)
        for rec in self._records.values():
            if not rec.verified:
                due = self._record_due(rec)
                if due is not None:
                    times.append(due)
                break
        return min(times) if times else None

    def _record_due(self, rec: _Record) -> float | None:
        """When an unverified record's proofs are overdue (None: its clock has not started)."""
        if self.config.mode is Mode.STRICT:
            return rec.arrival + self.config.q_deadline
        if self._co_at is None:
            return None  # async: the CO deadline governs until the CO is accepted
        return max(rec.arrival, self._co_at) + self.config.async_q_deadline

    # ------------------------------------------------------------------ decisions

    def _decide(self, d: Decision) -> None:
        self.decisions.append(d)
        self.decision_count += 1
        keep = max(1, self.config.keep_decisions)
        if len(self.decisions) > 2 * keep:
            del self.decisions[:-keep]  # amortised O(1) per decision
        if self.on_decision is not None:
            self.on_decision(d)
        log.info(
            "flow=%s what=%s n=%s len=%s action=%s reason=%s",
            self.flow_id,
            d.what,
            "-" if d.n is None else d.n,
            "-" if d.length is None else d.length,
            d.action,
            (d.reason or "-").replace(" ", "_"),
        )

    def _answer(self, a: Answer) -> None:
        self._answers.append(a)
        log.info(
            "flow=%s proof=%s n=%s j=%s result=%s reason=%s",
            self.flow_id,
            a.kind,
            a.n,
            a.j,
            "accepted" if a.accepted else "rejected",
            (a.reason or "-").replace(" ", "_"),
        )

    def close(self, reason: str, *, what: str = "connection", ban: bool = False, **kw) -> None:
        """Cut the connection: nothing held is released, later input is ignored."""
        if self.closed:
            return
        self.closed = reason
        self.ban = ban
        self._state = _State.CLOSED
        # proofs still waiting get their answer now: the client must not wait for nothing
        why = f"connection closed: {reason}"
        if self._pending_co is not None:
            self._answer(Answer("co", False, why))
        for n, j in sorted(self._pending_pad):
            self._answer(Answer("pad", False, why, n, j))
        for blocks in self._pending_pads:
            for n, j, _ in blocks:
                self._answer(Answer("pad", False, why, n, j))
        for n in sorted(self._pending_q):
            self._answer(Answer("q", False, why, n))
        self._records.clear()
        self._pads.clear()
        self._pending_q.clear()
        self._pending_pad.clear()
        self._pending_pads.clear()
        self._pending_co = None
        self._to_server.clear()
        self._decide(Decision("block", what, reason, ban=ban, **kw))

    def _forward(
        self, raw: bytes, what: str, n: int | None = None, reason: str = "", held: float | None = None
    ) -> None:
        self._to_server += raw
        self._decide(Decision("forward", what, reason, n=n, length=len(raw) - 5, held=held))

    # ------------------------------------------------------------------ admission

    def admit_resolver(self, ip: str) -> bool:
        """SPEC §1: True when the flow's destination ``ip`` is an allowed resolver (or no allowlist is
        configured); otherwise the flow is closed at once, decision ``block`` reason ``resolver not
        allowed``, and False."""
        allowed = self.config.resolvers
        if allowed is None:
            return True
        try:
            canonical = str(ipaddress.ip_address(ip))
        except ValueError:
            canonical = None
        if canonical is not None and canonical in allowed:
            return True
        self.close("resolver not allowed", what="syn")
        return False

    # ------------------------------------------------------------------ server -> client

    def server_data(self, data: bytes) -> None:
        """Resolver bytes: passed on at once; parsed only up to the ServerHello (SPEC §2)."""
        if self.closed:
            return
        self._to_client += data
        s = self._server
        if s.server_hello:
            return
        s.buf += data
        try:
            self._parse_server()
        except InvalidInput as e:
            self.close(f"server: {e}", what="server_handshake")

    def _parse_server(self) -> None:
        s = self._server
        while not s.server_hello and len(s.buf) >= 5:
            ctype, length = s.buf[0], int.from_bytes(s.buf[3:5], "big")
            if ctype not in (_CT_CCS, _CT_ALERT, _CT_HANDSHAKE) or not 0 < length <= _MAX_HS_RECORD:
                raise InvalidInput(f"record type {ctype} length {length} before the ServerHello")
            if bytes(s.buf[1:3]) not in (b"\x03\x03", b"\x03\x01"):
                raise InvalidInput("bad legacy_record_version")
            if len(s.buf) < 5 + length:
                return
            raw = bytes(s.buf[: 5 + length])
            del s.buf[: 5 + length]
            if len(s.seen) + len(raw) > self.config.max_handshake_bytes:
                raise InvalidInput("handshake too long")
            s.seen += raw
            if ctype == _CT_ALERT:
                raise InvalidInput("alert before the ServerHello")
            if ctype == _CT_CCS:
                if raw != _CCS_RECORD or s.ccs or not s.hrr:
                    raise InvalidInput("unexpected ChangeCipherSpec")
                s.ccs = True
                continue
            for msg in s.msgs.feed(raw[5:]):
                if msg[0] != _HT_SERVER_HELLO or s.msgs.buf:
                    raise InvalidInput("expected a ServerHello ending its record")
                hello = _server_hello(msg)
                if hello.random == _HRR_RANDOM:
                    if s.hrr:
                        raise InvalidInput("a second HelloRetryRequest")
                    s.hrr = True
                else:
                    s.server_hello = True
                    break

    # ------------------------------------------------------------------ client -> server

    def client_data(self, data: bytes) -> None:
        """Client bytes (any fragmentation): checked record by record and forwarded, held or blocked."""
        if self.closed:
            return
        self.tick()
        self._cbuf += data
        while not self.closed and len(self._cbuf) >= 5:
            ctype, version = self._cbuf[0], bytes(self._cbuf[1:3])
            length = int.from_bytes(self._cbuf[3:5], "big")
            limit = MAX_APP_PAYLOAD if self._state is _State.APP else _MAX_HS_RECORD
            if ctype not in (_CT_CCS, _CT_ALERT, _CT_HANDSHAKE, _CT_APP):
                self.close(f"record of unknown content type {ctype}", what="record")
                return
            if version not in (b"\x03\x03", b"\x03\x01") or (ctype == _CT_APP and version != b"\x03\x03"):
                self.close(f"bad legacy_record_version {version.hex()}", what="record")
                return
            if length == 0 or length > limit:
                self.close(f"record payload of {length} bytes (limit {limit})", what="record", length=length)
                return
            if len(self._cbuf) < 5 + length:
                return
            raw = bytes(self._cbuf[: 5 + length])
            del self._cbuf[: 5 + length]
            if self._state is _State.HELLO:
                self._handshake_record(ctype, raw)
            else:
                self._app_record(ctype, raw)

    def server_eof(self) -> None:
        """The resolver closed its side.  Before the CO was accepted that is an idle time-out shorter
        than the channel opening (dnsdist 2 s, Knot Resolver 10 s): its own reason, counted."""
        if self._state is _State.APP and self.comm_k is None:
            self.close(RESOLVER_CLOSED_BEFORE_CO, what="eof")
        else:
            self.close("resolver closed the connection", what="eof")

    def client_eof(self) -> None:
        """The client closed its side: whatever is held is dropped."""
        self.close("client closed the connection", what="eof")

    def _keep(self, raw: bytes) -> bool:
        if len(self._cseen) + len(raw) > self.config.max_handshake_bytes:
            self.close("handshake too long", what="record")
            return False
        self._cseen += raw
        return True

    def _handshake_record(self, ctype: int, raw: bytes) -> None:
        expected = 2 if self._server.hrr else 1
        if ctype == _CT_HANDSHAKE:
            if self._hellos >= expected:
                self.close("a ClientHello not admitted here (SPEC §2)", what="client_hello")
                return
            if not self._keep(raw):
                return
            self._hs_pending += raw
            try:
                msgs = self._cmsgs.feed(raw[5:])
                for msg in msgs:
                    if msg[0] != _HT_CLIENT_HELLO:
                        raise InvalidInput(f"plaintext handshake message {msg[0]}")
                    if self._cmsgs.buf or len(msgs) > 1:
                        raise InvalidInput("a ClientHello does not end its record")
                    hello = _client_hello(msg)
                    if self._hellos == 0:
                        if not self.seen_randoms.check_and_add(hello.random):
                            raise InvalidInput("ClientHello random already seen on another connection")
                        self.client_random = hello.random
                    elif hello.random != self.client_random:
                        raise InvalidInput("the second ClientHello changes the random")
            except InvalidInput as e:
                self.close(str(e), what="client_hello")
                return
            if msgs:
                self._hellos += 1
                pending = bytes(self._hs_pending)
                self._hs_pending.clear()
                self._to_server += pending
                self._decide(Decision("forward", "client_hello", length=len(pending)))
            else:
                self._decide(Decision("hold", "client_hello", "incomplete message", length=len(raw) - 5))
            return
        if ctype == _CT_CCS:
            if raw != _CCS_RECORD or self._ccs or self._hellos == 0 or self._cmsgs.buf:
                self.close("ChangeCipherSpec not admitted here (SPEC §2)", what="ccs")
                return
            if not self._keep(raw):
                return
            self._ccs = True
            self._forward(raw, "ccs")
            return
        if ctype == _CT_ALERT:
            self.close("alert record during the handshake", what="alert")
            return
        # the first protected record: the client Finished
        if self._hellos != expected or self._cmsgs.buf or not self._server.server_hello:
            self.close("protected record before the handshake admits it (SPEC §2)", what="finished")
            return
        if len(raw) != FINISHED_RECORD_LEN:
            self.close(
                f"Finished record of {len(raw) - 5} bytes, not 53", what="finished", length=len(raw) - 5
            )
            return
        if not self._keep(raw):
            return
        try:
            self.view = parse_channel(bytes(self._cseen), bytes(self._server.seen))
        except InvalidInput as e:
            self.close(str(e), what="finished")
            return
        self._cseen = bytearray()
        self._state = _State.APP
        self._finished_at = self.clock()
        self._forward(raw, "finished")
        if self._pending_co is not None:
            comm_k, proof = self._pending_co
            self._pending_co = None
            self.co(comm_k, proof)

    def _app_record(self, ctype: int, raw: bytes) -> None:
        n = self._next_in
        length = len(raw) - 5
        if ctype != _CT_APP:
            self.close(f"record of type {ctype} after the Finished", what="record", n=n, length=length)
            return
        inner = length - _TAG
        if inner < MIN_L:
            self.close(f"record too short for a provable query (L = {inner})", what="record", n=n)
            return
        if len(self._records) >= self.config.max_unverified:
            self.close("too many unverified records", what="record", n=n, length=length)
            return
        if self.config.mode is Mode.ASYNC and self.comm_k is None and n >= self.config.async_max_before_co:
            self.close("too many records before the CO was accepted", what="record", n=n, ban=True)
            return
        self._next_in += 1
        rec = _Record(n, raw, self.clock())
        self._records[n] = rec
        if self.config.mode is Mode.ASYNC:
            self._forward(raw, "record", n=n, reason="async")
        else:
            self._decide(Decision("hold", "record", "awaiting proof", n=n, length=length))
        if n in self._pending_q:
            self._try_q(n, self._pending_q.pop(n))

    # ------------------------------------------------------------------ deadlines

    def tick(self) -> None:
        """Apply deadlines at the clock's current time (cut the connection when one passed)."""
        if self.closed:
            return
        now = self.clock()
        ban = self.config.mode is Mode.ASYNC
        if self._finished_at is not None and self.comm_k is None:
            if now > self._finished_at + self.config.co_deadline:
                # async: a ban only where records went out before the CO (answers without proofs)
                self.close("no valid CO proof by the deadline", what="co", ban=ban and self._next_in > 0)
                return
        for rec in self._records.values():
            if rec.verified:
                continue
            due = self._record_due(rec)
            if due is not None and now > due:
                self.close("no valid Q proof by the deadline", what="record", n=rec.n, ban=ban)
                return

    # ------------------------------------------------------------------ proofs

    def co(self, comm_k: int, proof: Proof) -> None:
        """A CO proof for this connection (SPEC §3); one is accepted per connection."""
        if self.closed:
            return
        self.tick()
        if self.closed:
            return
        if self.comm_k is not None:
            self._answer(Answer("co", False, "channel already opened"))
            return
        if self.view is None:
            self._pending_co = (comm_k, proof)  # one, the latest; checked when the Finished arrives
            return
        try:
            public = co_public_inputs(self.view, comm_k)
        except InvalidInput as e:
            self._answer(Answer("co", False, str(e)))
            return
        ok = self.verifier.verify(co_name(self.view.suite.name), public, proof)
        if ok is None:
            self._pending_co = (comm_k, proof)  # queued: retry() finds the verdict
            return
        if not ok:
            self._answer(Answer("co", False, self._refusal()))
            return
        self.comm_k = comm_k
        self._co_at = self.clock()
        self._answer(Answer("co", True))

    def pad(self, n: int, j: int, comm_pad: int, proof: Proof) -> None:
        """A PAD proof for block ``j`` of record ``n`` (SPEC §4); the first valid one per (n, j) is kept."""
        if self.closed:
            return
        if self.comm_k is None or self.view is None:
            self._answer(Answer("pad", False, "no verified CO for this connection yet", n, j))
            return
        if (n, j) in self._pads:
            self._answer(Answer("pad", False, "block already committed", n, j))
            return
        try:
            public = pad_public_inputs(
                self.comm_k, n, j, comm_pad, next_record=self._low, window=self.config.pad_window
            )
        except InvalidInput as e:
            # echo the client's (n, j) so it can match the answer, where they fit the wire (u64, u8)
            n_echo = n if isinstance(n, int) and 0 <= n < 1 << 64 else 0
            j_echo = j if isinstance(j, int) and 0 <= j < 256 else 0
            self._answer(Answer("pad", False, str(e), n_echo, j_echo))
            return
        ok = self.verifier.verify(pad_name(self.view.suite.name), public, proof)
        if ok is None:
            if (n, j) not in self._pending_pad and len(self._pending_pad) >= self.config.max_pending_pad:
                # bounded: refused with an answer (the client may resend once some verdicts are in)
                self._answer(Answer("pad", False, "too many PAD proofs pending", n, j))
                return
            self._pending_pad[(n, j)] = (comm_pad, proof)
            return
        self._pending_pad.pop((n, j), None)
        if not ok:
            self._answer(Answer("pad", False, self._refusal(), n, j))
            return
        self._pads[(n, j)] = comm_pad
        self._answer(Answer("pad", True, "", n, j))
        if n in self._pending_q and n in self._records:
            self._try_q(n, self._pending_q.pop(n))

    def pads(self, blocks: tuple[tuple[int, int, int], ...], proof: Proof) -> None:
        """One PAD proof for several blocks ``((n, j, comm_pad), ...)`` (SPEC §4: "one PAD proof may
        cover several blocks"): each block checked as :meth:`pad` checks one, the proof against the
        ``pads<k>_<suite>`` key, each block answered; a block committed meanwhile keeps its first
        ``comm_pad`` (the others of the batch are still taken)."""
        if self.closed:
            return
        blocks = tuple(blocks)

        def refuse(why: str) -> None:
            for n, j, _ in blocks:
                n_echo = n if isinstance(n, int) and 0 <= n < 1 << 64 else 0
                j_echo = j if isinstance(j, int) and 0 <= j < 256 else 0
                self._answer(Answer("pad", False, why, n_echo, j_echo))

        if self.comm_k is None or self.view is None:
            refuse("no verified CO for this connection yet")
            return
        if len({(n, j) for n, j, _ in blocks}) != len(blocks):
            refuse("a block twice in one PAD proof")
            return
        try:
            for n, j, comm_pad in blocks:
                pad_public_inputs(
                    self.comm_k, n, j, comm_pad, next_record=self._low, window=self.config.pad_window
                )
        except InvalidInput as e:
            refuse(str(e))
            return
        if all((n, j) in self._pads for n, j, _ in blocks):
            refuse("block already committed")
            return
        public = [
            self.comm_k,
            *(n for n, _, _ in blocks),
            *(j for _, j, _ in blocks),
            *(cp for _, _, cp in blocks),
        ]
        ok = self.verifier.verify(pads_name(self.view.suite.name, len(blocks)), public, proof)
        if ok is None:
            pending = sum(len(b) for b in self._pending_pads) + len(self._pending_pad)
            if blocks not in self._pending_pads and pending + len(blocks) > self.config.max_pending_pad:
                refuse("too many PAD proofs pending")
                return
            self._pending_pads[blocks] = proof
            return
        self._pending_pads.pop(blocks, None)
        if not ok:
            refuse(self._refusal())
            return
        for n, j, comm_pad in blocks:
            self._pads.setdefault((n, j), comm_pad)
            self._answer(Answer("pad", True, "", n, j))
        for n in sorted({n for n, _, _ in blocks}):
            if n in self._pending_q and n in self._records:
                self._try_q(n, self._pending_q.pop(n))

    def q(self, n: int, proof: Proof) -> None:
        """A Q proof for client application record ``n`` (SPEC §5)."""
        if self.closed:
            return
        self.tick()
        if self.closed:
            return
        if not isinstance(n, int) or not self._low <= n <= self._low + self.config.pad_window:
            self._answer(
                Answer("q", False, "record number outside the window", n if isinstance(n, int) else 0)
            )
            return
        rec = self._records.get(n)
        if rec is not None and rec.verified:
            self._answer(Answer("q", False, "record already verified", n))
            return
        if rec is None or self.comm_k is None:
            self._pending_q[n] = proof  # one per n, the latest; the window bounds how many
            return
        self._try_q(n, proof)

    def _try_q(self, n: int, proof: Proof) -> None:
        rec = self._records[n]
        inner = len(rec.raw) - 5 - _TAG
        size = size_class(inner)
        k = size // PAD_BYTES
        pads = [self._pads.get((n, j)) for j in range(k)]
        if self.comm_k is None or any(p is None for p in pads):
            self._pending_q[n] = proof  # retried when the missing PAD proofs verify
            return
        ct = rec.raw[5 : 5 + inner]
        try:  # the current root, and the previous one in its grace window: checked in one round
            publics = [
                query_public_inputs(pads, ct, inner, root, size)
                for root in self.verifier.roots.acceptable(self.clock())
            ]
        except InvalidInput as e:
            self._answer(Answer("q", False, str(e), n))
            return
        ok = self.verifier.verify_any(q_name(size), publics, proof)
        if ok is None:
            self._pending_q[n] = proof  # queued: retry() finds the verdict
            return
        if not ok:
            self._answer(Answer("q", False, self._refusal(), n))
            return
        rec.verified = True
        self._answer(Answer("q", True, "", n))
        self._advance()

    def _refusal(self) -> str:
        return getattr(self.verifier, "refusal", None) or "proof does not verify"

    def retry(self) -> None:
        """Re-run the checks of proofs whose verification was queued (their verdicts are now in)."""
        if self.closed:
            return
        if self._pending_co is not None and self.view is not None and self.comm_k is None:
            comm_k, proof = self._pending_co
            self._pending_co = None
            self.co(comm_k, proof)
        for (n, j), (comm_pad, proof) in list(self._pending_pad.items()):
            if self.closed:
                return
            self._pending_pad.pop((n, j), None)
            self.pad(n, j, comm_pad, proof)
        for blocks, proof in list(self._pending_pads.items()):
            if self.closed:
                return
            self._pending_pads.pop(blocks, None)
            self.pads(blocks, proof)
        for n in sorted(self._pending_q):
            if self.closed:
                return
            if n in self._records and n in self._pending_q:
                self._try_q(n, self._pending_q.pop(n))

    def _advance(self) -> None:
        """Release (strict) or forget (async) the verified records at the head, in order."""
        while self._records:
            n, rec = next(iter(self._records.items()))
            if not rec.verified:
                break
            del self._records[n]
            for j in range(PAD_BLOCKS):
                self._pads.pop((n, j), None)
            self._low = n + 1
            if self.config.mode is Mode.STRICT:
                self._forward(rec.raw, "record", n=n, reason="verified", held=self.clock() - rec.arrival)
        for key in [key for key in self._pads if key[0] < self._low]:
            del self._pads[key]
        for m in [m for m in self._pending_q if m < self._low]:
            del self._pending_q[m]
        for key in [key for key in self._pending_pad if key[0] < self._low]:
            del self._pending_pad[key]
        for blocks in [b for b in self._pending_pads if all(n < self._low for n, _, _ in b)]:
            del self._pending_pads[blocks]
