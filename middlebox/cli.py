"""``zkmb middlebox``: the relay, proof endpoint, publishing endpoint and metrics in one process.

Hook: :func:`add_middlebox_commands` registers the command on ``zkmb``'s subparsers.  SIGINT/SIGTERM
stop it cleanly (listeners closed, connections cut, workers stopped); SIGHUP reloads the policy file
and rotates the root with the grace window (a file that fails to load keeps the current policy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
from dataclasses import dataclass

from zkmb.errors import InvalidInput
from zkmb.service import configure_service, freeze_heap

__all__ = ["add_middlebox_commands", "parse_hostport", "serve"]

log = logging.getLogger("zkmb.middlebox")


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); InvalidInput otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _check_addresses(args: argparse.Namespace, *, bridge: bool) -> None:
    """Every HOST:PORT option parsed and its host resolved now, so a typo is one clear line before the
    keys are loaded, and every port to listen on tried (binding can still fail later: a race)."""
    import socket

    options = [("--proof-listen", args.proof_listen)]
    if not bridge:
        options += [("--listen", args.listen), ("--upstream", args.upstream)]
    options += [("--publish", getattr(args, "publish", None)), ("--metrics", getattr(args, "metrics", None))]
    for option, value in options:
        if not value:
            continue
        try:
            host, port = parse_hostport(value)
        except InvalidInput as e:
            raise InvalidInput(f"{option}: {e}") from None
        try:
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except (OSError, UnicodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise InvalidInput(f"{option} {value}: cannot resolve {host!r}: {reason}") from None
        if option != "--upstream" and port != 0:  # a port taken: bind as asyncio will (SO_REUSEADDR)
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(addr)
                except OSError as e:
                    raise InvalidInput(f"{option} {value}: cannot listen: {e.strerror or e}") from None


@dataclass(frozen=True)
class BridgeSpec:
    """What a spawned bridge child needs to build its own verifier (picklable; no keys in it)."""

    keys: str
    key_check: str
    root: int
    grace: float
    workers: int
    max_queue: int
    config: object
    """The flows' :class:`~zkmb.middlebox.flow.FlowConfig` (mode, deadlines, allowed resolvers)."""
    ban_seconds: float


def bridge_from_spec(spec: BridgeSpec, queue: int):
    """In a bridge child: load the verifying keys, then a Bridge with its own pool and metrics."""
    from .bridge import Bridge
    from .metrics import Metrics
    from .verifier import PolicyRoots, Verifier
    from .workers import VerifyPool

    verifier = Verifier.from_key_dir(
        spec.keys, PolicyRoots(spec.root, grace=spec.grace), against=spec.key_check
    )
    pool = VerifyPool(verifier, workers=spec.workers, max_queue=spec.max_queue)
    return Bridge(verifier, config=spec.config, pool=pool, metrics=Metrics(), ban_seconds=spec.ban_seconds)


async def serve(args: argparse.Namespace, *, ready=None, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM); ``ready(ports)`` gets the bound ports."""
    from zkmb.policy import load_policy

    from .flow import FlowConfig, Mode, resolver_set
    from .metrics import Metrics
    from .publish import HttpServer, Publisher
    from .relay import Middlebox, announced_for
    from .verifier import SUITES, PolicyRoots, Verifier, enforceable_suites
    from .workers import VerifyPool

    bridge_queue = getattr(args, "bridge", None)
    resolvers = None
    if bridge_queue is not None:  # fail closed, before anything is loaded: bridge mode needs an allowlist
        if not args.allow:
            raise InvalidInput(
                "bridge mode needs --allow IP for each DoT resolver clients may reach (SPEC §1); "
                "DoT to any other address is cut at its first packet"
            )
        resolvers = resolver_set(args.allow)
    elif not args.listen or not args.upstream:
        raise InvalidInput("relay mode needs --listen and --upstream (or use --bridge QUEUE)")
    _check_addresses(args, bridge=bridge_queue is not None)  # before the keys and policy: seconds
    suites, why = enforceable_suites(args.keys)
    if why is not None:
        raise InvalidInput(why)
    if not os.path.isfile(args.policy):
        raise InvalidInput(f"--policy {args.policy}: no such file (make one with `zkmb policy build`)")
    policy = load_policy(args.policy)
    roots = PolicyRoots(policy.root, grace=args.grace)
    verifier = Verifier.from_key_dir(args.keys, roots, against=args.key_check)
    incomplete = [s for s in SUITES if s not in suites]
    if incomplete:
        log.warning(
            "no keys for suite(s) %s: connections that negotiate them are cut (they cannot be proved)",
            ",".join(incomplete),
        )
    log.info(
        "middlebox keys=%s root=0x%064x rules=%d", ",".join(sorted(verifier.keys)), policy.root, len(policy)
    )
    metrics = Metrics()
    pool = VerifyPool(verifier, workers=args.workers, max_queue=args.max_queue)
    config = FlowConfig(
        mode=Mode(args.mode),
        co_deadline=args.co_deadline,
        async_q_deadline=args.async_deadline,
        async_max_before_co=args.async_before_co,
        resolvers=resolvers,
    )
    queues: list[int] = []
    if bridge_queue is not None:
        from .bridge import Bridge
        from .multiqueue import MultiQueueBridge, parse_queues

        queues = parse_queues(bridge_queue)
        if len(queues) == 1:
            mb = Bridge(verifier, config=config, pool=pool, metrics=metrics, ban_seconds=args.ban_seconds)
        else:
            spec = BridgeSpec(
                keys=str(args.keys),
                key_check=args.key_check,
                root=policy.root,
                grace=args.grace,
                workers=args.workers,
                max_queue=args.max_queue,
                config=config,
                ban_seconds=args.ban_seconds,
            )
            factory = functools.partial(bridge_from_spec, spec)  # called in each spawned child
            mb = MultiQueueBridge(factory, queues, roots=roots)
    else:
        upstream = parse_hostport(args.upstream)
        allow = set(args.allow or [upstream[0]])
        if upstream[0] not in allow:
            raise InvalidInput(f"the upstream {upstream[0]} is not in the --allow list (SPEC §1)")
        mb = Middlebox(
            verifier, upstream, config=config, pool=pool, metrics=metrics, ban_seconds=args.ban_seconds
        )
    publisher = Publisher(
        args.policy,
        args.keys,
        on_rotate=mb.rotate_root,
        grace=lambda: (roots.previous if roots.acceptable(mb.clock())[1:] else None, roots.grace),
        policy=policy,
        enforcement=dataclasses.asdict(announced_for(config)),
    )
    servers = []
    try:
        if len(queues) > 1:
            ports = {"proofs": await mb.start(parse_hostport(args.proof_listen))}
        elif queues:
            ports = {"proofs": await mb.start_bridge(queues[0], parse_hostport(args.proof_listen))}
        else:
            ports = dict(
                zip(
                    ("listen", "proofs"),
                    await mb.start(parse_hostport(args.listen), parse_hostport(args.proof_listen)),
                    strict=True,
                )
            )
        if args.publish:
            http = HttpServer(publisher, metrics)
            ports["publish"] = await http.start(*parse_hostport(args.publish))
            servers.append(http)
        if args.metrics:
            http = HttpServer(None, metrics)
            ports["metrics"] = await http.start(*parse_hostport(args.metrics))
            servers.append(http)
    except (OSError, InvalidInput) as e:  # a port taken, an address not ours, a queue already bound
        for srv in servers:
            await srv.close()
        await mb.close()  # bridge children included
        if isinstance(e, InvalidInput):
            raise
        from zkmb.errors import describe_os_error

        raise InvalidInput(describe_os_error(e, "cannot start")) from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            publisher.reload_policy()
        except InvalidInput as e:
            log.error("policy reload failed, keeping version %d: %s", publisher.version, e)

    installed = []
    for sig, handler in ((signal.SIGINT, stop.set), (signal.SIGTERM, stop.set), (signal.SIGHUP, reload)):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    took = freeze_heap()  # what it keeps for its life (keys, policy, modules), out of the collector's walks
    log.debug("gc: startup objects frozen (%.0f ms)", took * 1e3)
    log.info("middlebox listening %s", " ".join(f"{k}={v}" for k, v in ports.items()))
    if ready is not None:
        ready(ports)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        for s in servers:
            await s.close()
        await mb.close()
        log.info("middlebox stopped")


def exit_when_threads_done(limit: float = 5.0) -> None:
    """After a clean stop: wait up to ``limit`` seconds for the other non-daemon threads (verification
    workers finishing a batch, a numba compile on a cold cache), then, if any is still busy, exit the
    process at once instead of waiting for it at interpreter shutdown (a stopped middlebox must exit)."""
    import sys
    import threading
    import time

    deadline = time.monotonic() + limit
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon:
            t.join(max(0.0, deadline - time.monotonic()))
    busy = [t.name for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]
    if busy:
        log.warning("exiting with thread(s) still busy after %.0f s: %s", limit, ", ".join(busy))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _cmd_middlebox(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if not args.quiet else logging.WARNING, format="%(asctime)s %(message)s"
    )
    configure_service()  # a 1 ms GIL hand-off for the event loop (zkmb/service.py)
    asyncio.run(serve(args))
    exit_when_threads_done()
    return 0


def add_middlebox_commands(sub) -> None:
    """Register ``zkmb middlebox`` on the top-level subparsers object."""
    p = sub.add_parser(
        "middlebox", help="run the middlebox: DoT relay, proof endpoint, policy/key publishing"
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="where DoT clients connect (relay mode)")
    p.add_argument("--proof-listen", required=True, metavar="HOST:PORT", help="the proof channel endpoint")
    p.add_argument("--upstream", metavar="IP:PORT", help="the DoT resolver (relay mode)")
    p.add_argument(
        "--bridge",
        metavar="QUEUE[:LAST]",
        help="bridge mode: normalise DoT packets from NFQUEUE QUEUE, or from each queue of QUEUE:LAST "
        "(iptables --queue-balance QUEUE:LAST; one verifier process per queue) (scripts/bridge-setup.sh)",
    )
    p.add_argument(
        "--allow",
        action="append",
        metavar="IP",
        help="a resolver address allowed (repeatable); relay mode: default the upstream; bridge mode: "
        "required, DoT flows to any other address are cut at their first packet",
    )
    p.add_argument("--keys", required=True, metavar="DIR", help="key directory made by `zkmb setup`")
    p.add_argument(
        "--key-check",
        choices=("circuit", "manifest"),
        default="circuit",
        help="check key digests against the compiled circuits (default) or the manifest (faster)",
    )
    p.add_argument("--policy", required=True, metavar="FILE", help="policy file (`zkmb policy build`)")
    p.add_argument(
        "--mode",
        choices=("strict", "async"),
        default="strict",
        help="strict (default): hold each record until its proofs are accepted; async: forward at once, "
        "cut and ban a client whose proofs are late (SPEC §7; announced to clients)",
    )
    p.add_argument("--co-deadline", type=float, default=20.0, help="seconds after the Finished for the CO")
    p.add_argument(
        "--async-deadline", type=float, default=3.0, help="async: seconds for a record's proofs (default 3)"
    )
    p.add_argument(
        "--async-before-co", type=int, default=8, help="async: records forwarded before the CO (default 8)"
    )
    p.add_argument(
        "--ban-seconds", type=float, default=60.0, help="how long a cut client's new connections are refused"
    )
    p.add_argument("--publish", metavar="HOST:PORT", help="HTTP endpoint: /policy /root /keys/... /metrics")
    p.add_argument("--metrics", metavar="HOST:PORT", help="separate HTTP endpoint for /metrics")
    p.add_argument("--grace", type=float, default=600.0, help="seconds the previous root stays valid")
    p.add_argument("--workers", type=int, default=None, help="verification threads (default: min(4, CPUs))")
    p.add_argument("--max-queue", type=int, default=1024, help="verification jobs queued before dropping")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=_cmd_middlebox)
