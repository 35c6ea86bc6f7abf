"""``zkmb query`` and ``zkmb resolver`` subcommands (registered by zkmb/cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import sys
from pathlib import Path

from ..errors import InvalidInput


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 literal; the host must be an IP literal."""
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InvalidInput(f"bad address {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidInput(f"bad address {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(f"{host!r} is not an IP address (names are never looked up)") from None
    try:
        port = int(port)
    except ValueError:
        raise InvalidInput(f"bad port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise InvalidInput(f"port out of range in {text!r}")
    return host, port


def _cmd_query(args: argparse.Namespace) -> int:
    import dns.message
    import dns.rdatatype

    from .capture import write_keylog
    from .dot import DotClient, make_config
    from .records import SUITE_NAMES, SUITES_BY_NAME

    host, port = parse_hostport(args.dot, 853)
    try:
        rdtype = dns.rdatatype.from_text(args.type)
        q = dns.message.make_query(args.name, rdtype)
    except Exception as e:
        raise InvalidInput(f"bad query {args.name} {args.type}: {e}") from None
    kwargs = {"cafile": args.ca}
    if args.suite:
        kwargs["suites"] = (SUITES_BY_NAME[args.suite],)
    config = make_config(host, server_name=args.sni, **kwargs)
    client = DotClient(host, port, config, padding_block=128 if args.pad else None, timeout=args.timeout)
    try:
        client.connect()
        resp = client.query(q)
    finally:
        client.close()
        if args.keylog:
            write_keylog(args.keylog, client.capture)
    cap = client.capture
    alpn = cap.alpn or "none"
    print(f";; DoT {host}:{port}  TLS 1.3 {SUITE_NAMES[cap.suite]}  ALPN {alpn}", file=sys.stderr)
    print(resp.to_text())
    return 0


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "zkmb" / "resolver"


def _cmd_resolver(args: argparse.Namespace) -> int:
    from ..resolver import DotResolver, Responder, ensure_certificate, make_server_context

    host, port = parse_hostport(args.listen, 8853)
    static = {}
    for item in args.static or []:
        if "=" not in item:
            raise InvalidInput(f"--static wants NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        static.setdefault(name, []).append(value)
    if args.zone:
        import dns.zone

        try:
            zone = dns.zone.from_file(args.zone, origin=args.origin, relativize=False)
        except Exception as e:
            raise InvalidInput(f"cannot load zone {args.zone}: {e}") from None
        responder = Responder(zone=zone, static=static)
    else:
        responder = Responder(static=static or {"dot.zkmb.test": "127.0.0.1"})
    state = Path(args.state_dir) if args.state_dir else _default_state_dir()
    cert, key = ensure_certificate(state)
    ctx = make_server_context(cert, key, keylog=args.keylog)

    async def run() -> None:
        server = DotResolver(responder, ctx)
        try:
            bound = await server.start(host, port)
        except OSError as e:
            from ..errors import describe_os_error

            raise InvalidInput(describe_os_error(e, f"cannot listen on {args.listen}")) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # systemd and containers stop with SIGTERM
            loop.add_signal_handler(sig, stop.set)
        print(f"zkmb resolver: DoT on {host}:{bound}, certificate {cert}", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await server.close()
        print("zkmb resolver: stopped", file=sys.stderr, flush=True)

    asyncio.run(run())
    return 0


def add_dot_commands(sub) -> None:
    """Register ``query`` and ``resolver`` on the zkmb subparsers object."""
    q = sub.add_parser("query", help="one DNS-over-TLS query with the capturing TLS 1.3 client")
    q.add_argument("name")
    q.add_argument("type", nargs="?", default="A")
    q.add_argument("--dot", required=True, metavar="HOST:PORT", help="resolver IP address and port (853)")
    q.add_argument("--ca", metavar="FILE", help="trusted CA file (default: the system store)")
    q.add_argument("--sni", metavar="NAME", help="server name to send and verify (default: verify the IP)")
    q.add_argument("--suite", choices=("chacha20", "aes128gcm"), help="offer only this cipher suite")
    q.add_argument("--keylog", metavar="FILE", help="append the traffic secrets (NSS key log format)")
    q.add_argument("--pad", action="store_true", help="EDNS(0) padding to 128-byte blocks")
    q.add_argument("--timeout", type=float, default=5.0, help="seconds for connect+handshake, and the query")
    q.set_defaults(func=_cmd_query)

    r = sub.add_parser("resolver", help="run the embedded DoT resolver (local data only)")
    r.add_argument("--listen", default="127.0.0.1:8853", metavar="HOST:PORT")
    r.add_argument("--state-dir", help="where the self-signed certificate is kept")
    r.add_argument("--zone", metavar="FILE", help="zone (master) file to answer from")
    r.add_argument("--origin", help="zone origin if the file has no $ORIGIN")
    r.add_argument(
        "--static", action="append", metavar="NAME=VALUE", help="static answer, e.g. a.test=192.0.2.1"
    )
    r.add_argument("--keylog", metavar="FILE", help="OpenSSL key log of the server side")
    r.set_defaults(func=_cmd_resolver)
