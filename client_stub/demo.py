"""``zkmb demo``: the whole system on loopback, with real Groth16 proofs.

One process starts, all on 127.0.0.1 with ephemeral ports: the embedded DoT resolver (static answers),
the middlebox in relay mode (real verification in worker threads) and the stub.  It then resolves an
allowed name and a blocked name through the stub's listener with plain DNS and reports what happened.

Reusable pieces (the end-to-end test uses them): :func:`prepare_policy` (shared blocklist -> policy
file cached in the state directory), :func:`prepare_keys` (Groth16 keys generated once into the state
directory), :class:`DemoStack` (resolver + middlebox + stub as an async context manager) and
:func:`run_demo` (the scripted queries; returns a :class:`DemoResult`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import ssl
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncquery
import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from zkmb.errors import InvalidInput
from zkmb.progress import Ticker
from zkmb.service import configure_service

__all__ = [
    "DEMO_CIRCUITS",
    "DEMO_STATIC",
    "DemoResult",
    "DemoStack",
    "add_demo_commands",
    "default_blocklist_dir",
    "default_state_dir",
    "prepare_keys",
    "prepare_policy",
    "run_demo",
]

DEMO_SIZES = (64, 128)
DEMO_CIRCUITS = ("co_chacha20", "pad_block", "pad_blocks_3", *(f"q_{b}" for b in DEMO_SIZES))
"""The key pairs the demo needs: CO and PAD for ChaCha20, Q for the two smallest size classes."""

DEMO_STATIC: dict[str, str] = {
    "example.com": "192.0.2.1",
    "www.example.com": "192.0.2.2",
    "example.net": "192.0.2.3",
    "example.org": "192.0.2.4",
    **{f"t{i}.example.com": f"192.0.2.{10 + i}" for i in range(8)},
}
"""What the embedded resolver answers (documentation addresses, RFC 5737)."""

TIMED_NAMES = tuple(f"t{i}.example.com" for i in range(5))
Out = Callable[[str], None]


def default_state_dir() -> Path:
    """``~/.cache/zkmb/demo``."""
    return Path(os.path.expanduser("~")) / ".cache" / "zkmb" / "demo"


def default_blocklist_dir() -> Path:
    """``../shared/data/blocklists`` beside the repository (:func:`zkmb.shared.shared_dir`)."""
    from zkmb.shared import shared_dir

    base = shared_dir()
    return (base if base is not None else Path("..") / "shared") / "data" / "blocklists"


def _say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------------------------------ setup


def _digest_files(paths: Sequence[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                out[p.name] = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as e:
            raise InvalidInput(f"cannot read blocklist {p}: {e.strerror}") from None
    return out


def prepare_policy(
    state_dir: str | os.PathLike,
    blocklist_dir: str | os.PathLike,
    out: Out = _say,
    *,
    ticker: Ticker | None = None,
):
    """The policy of ``blocklist_dir`` (``domains.txt`` as listed, ``subtree-rules.txt`` as subtree
    rules), written to ``state_dir/policy.zkmbp`` with its tree cached; rebuilt only when the inputs
    change.  Loading always re-checks the root (:func:`zkmb.policy.load_policy`).  With ``ticker``
    the build (10-20 s) is shown as it runs."""
    from zkmb.policy import build_policy, load_policy
    from zkmb.policy.policyfile import cache_policy

    state, src = Path(state_dir), Path(blocklist_dir)
    inputs = [src / "domains.txt", src / "subtree-rules.txt"]
    stamp_path, policy_path, cache_dir = state / "policy.inputs.json", state / "policy.zkmbp", state / "cache"
    digests = _digest_files(inputs)
    with contextlib.suppress(OSError, ValueError):
        if policy_path.is_file() and json.loads(stamp_path.read_text()) == digests:
            t0 = time.perf_counter()
            policy = load_policy(policy_path, cache_dir=str(cache_dir))
            out(f"  policy: {len(policy):,} rules from the state dir ({time.perf_counter() - t0:.1f} s)")
            return policy
    label = f"policy: building from {src} (first run, ~10-20 s)"
    if ticker is not None:
        ticker.start(label)
    else:
        out(f"  {label} ...")
    t0 = time.perf_counter()
    try:
        policy, report, _ = build_policy([(inputs[0], "auto"), (inputs[1], "subtree")])
    finally:
        if ticker is not None:
            ticker.done(f"policy: built ({time.perf_counter() - t0:.1f} s)")
    bad = len(report.invalid) + len(report.unsupported)
    state.mkdir(parents=True, exist_ok=True)
    policy.write(policy_path)
    cache_policy(policy, policy_path, cache_dir=str(cache_dir))
    stamp_path.write_text(json.dumps(digests))
    out(
        f"  policy: {len(policy):,} normalised rules, root 0x{policy.root:064x} "
        f"({time.perf_counter() - t0:.1f} s{f', {bad} rules not taken' if bad else ''})"
    )
    return policy


def prepare_keys(
    state_dir: str | os.PathLike,
    names: Sequence[str] = DEMO_CIRCUITS,
    out: Out = _say,
    *,
    check: bool = True,
) -> Path:
    """Groth16 keys for ``names`` in ``state_dir/keys`` (generated on first use, single-party setup
    by :func:`zkmb.circuits.keys.generate_keys`; kept when current); returns the key directory.

    With ``check`` (the default) every proving key is then checked against the directory's SRS as a
    client does before proving (:func:`zkmb.circuits.keys.verify_key_dir`; SPEC §8), the verdict
    cached in ``state_dir/keycheck``; a key that fails raises and is never used."""
    from zkmb.circuits.keys import generate_keys, verify_key_dir

    key_dir = Path(state_dir) / "keys"
    ticker = Ticker()
    hint = {"co_chacha20": " (CO: ~35-60 s on a 2-core machine, once)"}

    def progress(name: str, step: str, elapsed: float) -> None:
        if step == "compile":
            ticker.start(f"{name}: compiling the circuit")
        elif step == "setup":
            ticker.start(f"{name}: Groth16 setup{hint.get(name, '')}")
        elif step == "write":
            ticker.start(f"{name}: writing the keys")
        elif step == "done":
            ticker.done(f"{name}: keys generated ({elapsed:.1f} s)")
        elif step == "skipped":
            ticker.done(f"{name}: keys present ({elapsed:.1f} s to check)")

    def checked(name: str, step: str, elapsed: float) -> None:
        if step == "check":
            slow = " (CO: ~30-60 s, once per key)" if name.startswith("co_") else ""
            ticker.start(f"{name}: checking the proving key against the SRS{slow}")
        else:
            ticker.done(
                f"{name}: key well formed ({'cached verdict' if step == 'cached' else f'{elapsed:.1f} s'})"
            )

    try:
        generate_keys(key_dir, list(names), progress=progress)
        if check:
            verify_key_dir(key_dir, list(names), Path(state_dir) / "keycheck", progress=checked)
    finally:
        ticker.close()
    return key_dir


# ------------------------------------------------------------------------------------------ services


@dataclass
class DemoStack:
    """Resolver (own thread), middlebox relay + proof endpoint and stub (this event loop), all on
    127.0.0.1; ``async with DemoStack(...) as s``.  ``flow_config`` overrides the middlebox deadlines
    (tests on slow machines); ``resolver_idle`` the resolver's idle timeout (default 30 s, unbound's)."""

    policy: object
    key_dir: Path
    cert: Path
    cert_key: Path
    static: dict = field(default_factory=lambda: dict(DEMO_STATIC))
    sizes: tuple[int, ...] = DEMO_SIZES
    flow_config: object | None = None
    resolver_idle: float = 30.0
    pool_size: int = 1

    async def __aenter__(self) -> DemoStack:
        from zkmb.middlebox.flow import FlowConfig
        from zkmb.middlebox.metrics import Metrics
        from zkmb.middlebox.relay import Middlebox
        from zkmb.middlebox.verifier import PolicyRoots, Verifier
        from zkmb.middlebox.workers import VerifyPool

        from zkmb.resolver import BackgroundResolver, Responder, make_server_context

        from .listener import Listener
        from .prover import Groth16Prover
        from .upstream import ProvingUpstream

        loop = asyncio.get_running_loop()
        # key loading checks every point (subgroup included): seconds for the CO key, so off the loop
        self.prover = await loop.run_in_executor(
            None, lambda: Groth16Prover.from_dir(self.key_dir, sizes=self.sizes)
        )
        roots = PolicyRoots(self.policy.root)
        verifier = await loop.run_in_executor(
            None, lambda: Verifier.from_key_dir(self.key_dir, roots, against="manifest")
        )
        ctx = make_server_context(self.cert, self.cert_key)
        self.resolver = BackgroundResolver(Responder(static=self.static), ctx)
        self.resolver._resolver.idle_timeout = self.resolver_idle
        self.resolver.__enter__()
        self.metrics = Metrics()
        pool = VerifyPool(verifier, workers=2)
        self.middlebox = Middlebox(
            verifier,
            ("127.0.0.1", self.resolver.port),
            config=self.flow_config or FlowConfig(),
            pool=pool,
            metrics=self.metrics,
        )
        self.relay_port, self.proof_port = await self.middlebox.start(("127.0.0.1", 0), ("127.0.0.1", 0))
        self.upstream = ProvingUpstream(
            ("127.0.0.1", self.relay_port),
            ("127.0.0.1", self.proof_port),
            self.prover,
            self.policy,
            server_name="127.0.0.1",
            cafile=str(self.cert),
            pool_size=self.pool_size,
            ready_timeout=120,
        )
        self.started_at = time.perf_counter()
        await self.upstream.start()
        self.listener = Listener(self.upstream, self.policy, port=0, upstream_timeout=150)
        self.udp_port, self.tcp_port = await self.listener.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.listener.close()
        await self.upstream.close()
        await self.middlebox.close()
        self.resolver.__exit__(None, None, None)

    async def ask(
        self, name: str, rdtype: str = "A", timeout: float = 150
    ) -> tuple[dns.message.Message, float]:
        """One plain DNS query over UDP to the stub; ``(response, seconds)``."""
        q = dns.message.make_query(name, rdtype, use_edns=0)
        t0 = time.perf_counter()
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=self.udp_port, timeout=timeout)
        return r, time.perf_counter() - t0

    def direct_dot(self, names: Sequence[str], timeout: float = 10) -> list[float]:
        """Seconds per query on one kept-open DoT connection straight to the resolver (no proofs)."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        times = []
        with socket.create_connection(("127.0.0.1", self.resolver.port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                for name in names:
                    q = dns.message.make_query(name, "A", use_edns=0)
                    t0 = time.perf_counter()
                    dns.query.tls(q, "127.0.0.1", timeout=timeout, sock=s)
                    times.append(time.perf_counter() - t0)
        return times


def _addresses(r: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset]


def _ede_codes(r: dns.message.Message) -> list[int]:
    return [o.code for o in r.options if isinstance(o, dns.edns.EDEOption)]


@dataclass
class DemoResult:
    """What :func:`run_demo` observed; ``ok`` only if both outcomes were as expected."""

    allowed_rcode: int
    allowed_answer: list[str]
    expected_answer: str
    first_query_s: float
    co_prove_s: float | None
    blocked_rcode: int
    blocked_ede: list[int]
    blocked_sent: int
    """Resolver queries and relay connections that the blocked query caused (must be 0)."""
    stub_s: list[float] = field(default_factory=list)
    direct_s: list[float] = field(default_factory=list)
    timed_names: list[str] = field(default_factory=list)
    """The names of ``stub_s`` / ``direct_s`` (one query each)."""

    @property
    def allowed_ok(self) -> bool:
        return self.allowed_rcode == dns.rcode.NOERROR and self.allowed_answer == [self.expected_answer]

    @property
    def blocked_ok(self) -> bool:
        return self.blocked_rcode == dns.rcode.NXDOMAIN and 15 in self.blocked_ede and self.blocked_sent == 0

    @property
    def ok(self) -> bool:
        return self.allowed_ok and self.blocked_ok


async def run_demo(
    stack: DemoStack, allowed: str, blocked: str, out: Out = _say, timed: int = 5
) -> DemoResult:
    """Resolve ``allowed`` (its first query waits for the proved connection, CO included), ``timed``
    further distinct names through the stub and straight over DoT, then ``blocked``."""
    expected = str(stack.static.get(allowed.rstrip(".").lower(), ""))
    r1, first = await stack.ask(allowed)
    co = stack.upstream.timings.get("co", [None])[0]
    names = [n for n in TIMED_NAMES if n != allowed][:timed]
    stub_s = []
    for name in names:
        await asyncio.sleep(0.5)  # let the background PAD proofs for the next records finish
        r, dt = await stack.ask(name)
        if r.rcode() != dns.rcode.NOERROR:
            out(f"  (timed query {name}: {dns.rcode.to_text(r.rcode())})")
        stub_s.append(dt)
    loop = asyncio.get_running_loop()
    direct_s = await loop.run_in_executor(None, stack.direct_dot, names) if names else []

    before = (stack.resolver.queries, stack.middlebox._counter)
    r2, _ = await stack.ask(blocked, timeout=10)
    await asyncio.sleep(0.2)
    after = (stack.resolver.queries, stack.middlebox._counter)
    res = DemoResult(
        allowed_rcode=r1.rcode(),
        allowed_answer=_addresses(r1),
        expected_answer=expected,
        first_query_s=first,
        co_prove_s=co,
        blocked_rcode=r2.rcode(),
        blocked_ede=_ede_codes(r2),
        blocked_sent=sum(a - b for a, b in zip(after, before, strict=True)),
        stub_s=stub_s,
        direct_s=direct_s,
        timed_names=list(names),
    )
    return res


def _report(res: DemoResult, allowed: str, blocked: str, out: Out) -> None:
    mark = {True: "OK  ", False: "FAIL"}
    out("")
    out(
        f"[{mark[res.allowed_ok]}] {allowed} A -> {dns.rcode.to_text(res.allowed_rcode)} "
        f"{', '.join(res.allowed_answer) or '(no answer)'} (expected {res.expected_answer or '?'})"
    )
    co = f"; CO proof {res.co_prove_s:.1f} s of it" if res.co_prove_s is not None else ""
    out(
        f"       first query: {res.first_query_s:.2f} s (TLS handshake through the relay, CO proof + "
        f"verification, PAD and Q proofs{co})"
    )
    if res.stub_s and res.direct_s:
        out("       added latency per query (via the stub with proofs vs straight to the resolver over DoT):")
        names = res.timed_names or [f"query {i + 1}" for i in range(len(res.stub_s))]
        for name, s, d in zip(names, res.stub_s, res.direct_s, strict=False):
            out(f"         {name:<18} {s * 1000:6.0f} ms vs {d * 1000:5.1f} ms: +{(s - d) * 1000:.0f} ms")
        s, d = statistics.median(res.stub_s), statistics.median(res.direct_s)
        out(
            f"       median of {len(res.stub_s)} distinct names: {s * 1000:.0f} ms vs {d * 1000:.1f} ms: "
            f"+{(s - d) * 1000:.0f} ms added per query"
        )
    out(
        f"[{mark[res.blocked_ok]}] {blocked} A -> {dns.rcode.to_text(res.blocked_rcode)}, "
        f"EDE {','.join(map(str, res.blocked_ede)) or 'none'}"
        f"{' (Blocked)' if 15 in res.blocked_ede else ''}; "
        f"{'nothing was sent' if res.blocked_sent == 0 else f'{res.blocked_sent} upstream event(s) seen!'}"
        " (the stub checks the policy locally and never asks for a name it cannot prove)"
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from zkmb.resolver import ensure_certificate

    state = Path(args.state_dir).expanduser()
    state.mkdir(parents=True, exist_ok=True)
    blocklists = Path(args.blocklist_dir).expanduser() if args.blocklist_dir else default_blocklist_dir()
    if args.allowed.rstrip(".").lower() not in DEMO_STATIC:
        raise InvalidInput(f"--allowed must be one of the resolver's names: {', '.join(DEMO_STATIC)}")
    _say(f"zkmb demo — everything on 127.0.0.1, state in {state}")
    _say("setup:")
    cert, key = ensure_certificate(state)
    with Ticker() as ticker:
        policy = prepare_policy(state, blocklists, ticker=ticker)
    from zkmb.policy import check_name

    if check_name(policy, args.blocked) is None:
        raise InvalidInput(f"--blocked {args.blocked}: not blocked by the policy of {blocklists}")
    if check_name(policy, args.allowed) is not None:
        raise InvalidInput(f"--allowed {args.allowed}: blocked by the policy of {blocklists}")
    _say("  Groth16 keys (first run generates them; the CO circuit takes ~35-60 s on this kind of machine):")
    key_dir = prepare_keys(state)

    async def main() -> DemoResult:
        # SIGTERM unwinds like Ctrl-C: the stack below is closed (resolver, middlebox, stub) before exit
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        _say("starting: DoT resolver, middlebox (relay mode, real verification), stub ...")
        async with DemoStack(policy, key_dir, cert, key) as stack:
            _say(
                f"  resolver 127.0.0.1:{stack.resolver.port}  middlebox relay 127.0.0.1:{stack.relay_port}"
                f" proofs 127.0.0.1:{stack.proof_port}  stub udp/tcp 127.0.0.1:{stack.udp_port}"
            )
            _say(f"querying {args.allowed} (the first query waits for the proved connection: CO ~5-20 s) ...")
            return await run_demo(stack, args.allowed, args.blocked)

    try:
        configure_service()  # a 1 ms GIL hand-off for the event loop (zkmb/service.py)
        res = asyncio.run(main())
    except asyncio.CancelledError:  # SIGTERM (Ctrl-C raises KeyboardInterrupt itself)
        from zkmb.errors import Terminated

        raise Terminated() from None
    _report(res, args.allowed, args.blocked, _say)
    _say("")
    _say("demo: OK" if res.ok else "demo: FAILED")
    return 0 if res.ok else 1


def add_demo_commands(sub) -> None:
    """Register ``zkmb demo`` on the top-level subparsers."""
    p = sub.add_parser(
        "demo", help="run resolver, middlebox and stub on loopback and resolve an allowed and a blocked name"
    )
    p.add_argument("--state-dir", default=str(default_state_dir()), help="keys, policy, certificate")
    p.add_argument("--blocklist-dir", help="directory with domains.txt and subtree-rules.txt")
    p.add_argument(
        "--allowed", default="example.com", help="a name the resolver answers (default example.com)"
    )
    p.add_argument("--blocked", default="tracker.10mail.org", help="a name the policy blocks")
    p.set_defaults(func=_cmd_demo)
