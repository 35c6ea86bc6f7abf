"""``zkmb stub``: run the stub resolver (plain DNS on loopback, proved DoT through the middlebox relay)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal


def _hostport(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) -> (host, port); SystemExit with one clear line otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"zkmb stub: {what} must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _cmd_stub(args: argparse.Namespace) -> int:
    from zkmb.policy import load_policy
    from zkmb.service import configure_service, freeze_heap, log_gc_pauses

    from .listener import Listener
    from .prover import Groth16Prover
    from .upstream import ProvingUpstream

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.verbose:
        logging.getLogger("zkmb").setLevel(logging.DEBUG)
        log_gc_pauses(logging.getLogger("zkmb.stub"))
    relay, proof = _hostport(args.relay, "--relay"), _hostport(args.proof, "--proof")  # before any loading
    if args.bootstrap and (args.policy or args.keys):
        raise SystemExit("zkmb stub: --bootstrap replaces --policy/--keys; give one or the other")
    for option, path, want_dir in (("--keys", args.keys, True), ("--policy", args.policy, False)):
        # now, not after minutes of key checks
        if path and not (os.path.isdir(path) if want_dir else os.path.isfile(path)):
            raise SystemExit(f"zkmb stub: {option} {path}: no such {'directory' if want_dir else 'file'}")
    if args.bootstrap:
        from .bootstrap import bootstrap
        from .prover import circuit_names, optional_names

        state = args.state_dir or os.path.join(os.path.expanduser("~"), ".cache", "zkmb", "stub")
        args.policy, args.keys = bootstrap(
            args.bootstrap,
            state,
            circuit_names("chacha20", args.sizes),
            verify=not args.allow_unverified_keys,
            optional=optional_names("chacha20"),
        )
    elif not (args.policy and args.keys):
        raise SystemExit("zkmb stub: give --policy and --keys, or --bootstrap URL")
    else:
        from .bootstrap import check_keys
        from .prover import circuit_names

        if not args.allow_unverified_keys:  # the same check as after a bootstrap, cached by key digest
            cache = os.path.join(os.path.expanduser("~"), ".cache", "zkmb", "keycheck")
            from zkmb.circuits.keys import read_manifest

            from .prover import optional_names

            names = circuit_names("chacha20", args.sizes)
            names += [n for n in optional_names("chacha20") if n in read_manifest(args.keys)]
            check_keys(args.keys, names, cache)
    if args.allow_unverified_keys:
        logging.getLogger("zkmb.stub").warning(
            "proving keys NOT checked against an SRS (--allow-unverified-keys): a malformed key "
            "could make the proofs leak the names you query"
        )
    policy = load_policy(args.policy)  # refused unless the rules hash to the stated root
    prover = Groth16Prover.from_dir(args.keys, sizes=tuple(args.sizes), tables=not args.no_msm_tables)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # systemd and containers stop with SIGTERM
            loop.add_signal_handler(sig, stop.set)
        up = ProvingUpstream(
            relay,
            proof,
            prover,
            policy,
            server_name=args.server_name,
            cafile=args.cafile,
            pool_size=args.pool,
            workers=args.workers,
            keepalive=not args.no_keepalive,
            keepalive_horizon_s=args.keepalive_horizon,
        )
        await up.start()
        lst = Listener(up, policy, host=args.listen_host, port=args.port)
        await lst.start()

        async def freeze() -> None:  # what the stub keeps for its life, out of the collector's walks
            await up.warmed()
            took = freeze_heap()
            logging.getLogger("zkmb.stub").debug("gc: startup objects frozen (%.0f ms)", took * 1e3)

        frozen = asyncio.ensure_future(freeze())
        watch = None
        if args.bootstrap:
            from .bootstrap import watch_rotation

            def switch(new_policy) -> None:  # the next checks and proofs use the rotated root
                lst.policy = up.policy = new_policy

            watch = asyncio.ensure_future(
                watch_rotation(args.bootstrap, state, policy.root, switch, interval=args.rotation_interval)
            )
        try:
            await stop.wait()
            logging.getLogger("zkmb.stub").info("stopping")
        finally:
            frozen.cancel()
            if watch is not None:
                watch.cancel()
            await lst.close()
            await up.close()

    configure_service()  # a 1 ms GIL hand-off for the event loop (zkmb/service.py)
    asyncio.run(main())
    return 0


def add_stub_commands(sub) -> None:
    """Register ``zkmb stub`` on the top-level subparsers."""
    p = sub.add_parser("stub", help="run the client stub resolver (plain DNS in, proved DoT out)")
    p.add_argument("--listen-host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5300, help="UDP and TCP port (default 5300)")
    p.add_argument("--relay", required=True, help="middlebox relay HOST:PORT (DoT)")
    p.add_argument("--proof", required=True, help="middlebox proof endpoint HOST:PORT")
    p.add_argument("--server-name", required=True, help="the resolver's certificate name or IP")
    p.add_argument("--cafile", help="trust anchor for the resolver's certificate")
    p.add_argument("--policy", help="published policy file (checked against its root)")
    p.add_argument("--keys", help="key directory (zkmb setup)")
    p.add_argument(
        "--bootstrap", metavar="URL", help="fetch policy and keys from the middlebox's publish URL"
    )
    p.add_argument("--state-dir", help="where --bootstrap caches them (default ~/.cache/zkmb/stub)")
    p.add_argument("--rotation-interval", type=float, default=30.0, help="seconds between root checks")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="Q size classes to use")
    p.add_argument(
        "--pool",
        type=int,
        default=1,
        help="DoT connections while in use (default 1; more open when the machine is idle, as spares)",
    )
    p.add_argument("--verbose", action="store_true", help="log every query's proving times")
    p.add_argument("--workers", type=int, default=None, help="proving threads (default: one per core)")
    p.add_argument(
        "--no-keepalive",
        action="store_true",
        help="do not keep a connection open with the stub's own queries while quiet (a query after "
        "the resolver's idle time-out then waits for a new channel opening)",
    )
    p.add_argument(
        "--keepalive-horizon",
        type=float,
        default=600.0,
        metavar="S",
        help="keep the primary connection alive this long after the last query (default 600)",
    )
    p.add_argument(
        "--no-msm-tables",
        action="store_true",
        help="do not build the query keys' MSM window tables (saves ~150 MB of memory; each query "
        "proof then costs ~14%% more CPU)",
    )
    p.add_argument(
        "--allow-unverified-keys",
        action="store_true",
        help="skip the check of the proving keys against the published SRS (development only)",
    )
    p.set_defaults(func=_cmd_stub)
