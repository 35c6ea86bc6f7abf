"""``zkmb policy build|info|check`` (registered by zkmb/cli.py through :func:`add_policy_commands`)."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

from ..errors import InvalidInput

_STAGES = {"parse": "parsing", "normalise": "normalising", "hash keys": "hashing keys", "tree": "tree levels"}


class _Progress:
    """One self-overwriting status line on stderr (only on a terminal, unless forced)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        label = _STAGES.get(stage, stage)
        sys.stderr.write(f"\r  [{now - self.t0:6.1f} s] {label}: {done:,}/{total:,}\033[K")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _print_problems(report, limit: int) -> None:
    for title, items in (("INVALID", report.invalid), ("UNSUPPORTED", report.unsupported)):
        if not items:
            continue
        print(f"zkmb policy: {len(items)} {title.lower()} rule(s), NOT in the policy:", file=sys.stderr)
        for p in items[: limit or len(items)]:
            print(f"  {title}: {p}", file=sys.stderr)
        if limit and len(items) > limit:
            print(f"  ... and {len(items) - limit} more (--show-all lists them)", file=sys.stderr)


def _input(arg: str, default: str) -> tuple[str, str]:
    """``PATH`` or ``FORMAT:PATH`` (e.g. ``subtree:list.txt``; an existing file name wins)."""
    from .formats import FORMATS

    fmt, sep, path = arg.partition(":")
    if sep and fmt in FORMATS and not os.path.exists(arg):
        return path, fmt
    return arg, default


def _cmd_build(args: argparse.Namespace) -> int:
    from .policyfile import build_policy, cache_policy

    inputs: list = [_input(p, args.format) for p in args.inputs] + [(p, "subtree") for p in args.subtree]
    if not inputs:
        raise InvalidInput("no input files")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):  # before the build, which may take minutes
        raise InvalidInput(f"cannot write {args.output}: no directory {out_dir}")
    progress = _Progress(args.progress or sys.stderr.isatty())
    policy, report, norm = build_policy(inputs, origin=args.origin, progress=progress)
    _print_problems(report, 0 if args.show_all else 20)
    bad = len(report.invalid) + len(report.unsupported)
    if bad and args.strict:
        print(f"zkmb policy: --strict and {bad} rule(s) not taken: no policy written", file=sys.stderr)
        return 1
    if len(norm) == 0:  # a policy that blocks nothing is almost always a wrong file or format
        names = ", ".join(p for p, _ in inputs)
        raise InvalidInput(
            f"no rules in {names} ({report.summary()}): no policy written; check the file and --format"
        )
    try:
        policy.write(args.output, provenance=not args.no_provenance)
    except OSError as e:
        from ..errors import describe_os_error

        raise InvalidInput(describe_os_error(e, f"cannot write {args.output}")) from None
    if not args.no_cache:
        cache_policy(policy, args.output)
    print(report.summary())
    print(
        f"{len(norm)} normalised rules ({norm.merged} duplicate keys merged, {len(norm.covered)} under a "
        f"subtree rule dropped); root 0x{policy.root:064x}; written to {args.output}"
    )
    if bad:
        print(f"WARNING: {bad} rule(s) were not taken (listed above)", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .policyfile import load_policy
    from .rules import Kind

    t0 = time.perf_counter()
    policy = load_policy(args.policy, use_cache=not args.no_cache)
    dt = time.perf_counter() - t0
    with open(args.policy, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    n_sub = int((policy.kinds == Kind.SUBTREE).sum())
    print(f"file      {args.policy} ({os.path.getsize(args.policy):,} bytes, sha256 {digest})")
    print(f"root      0x{policy.root:064x} (verified)")
    cap = policy.tree.capacity
    print(f"tree      arity {policy.tree.arity}, depth {policy.depth} ({cap - 1:,} rules at most)")
    print(f"rules     {len(policy):,} ({len(policy) - n_sub:,} exact, {n_sub:,} subtree)")
    print(f"leaves    {len(policy) + 1:,} used")
    print(f"loaded in {dt:.2f} s")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .policyfile import load_policy
    from .rules import InvalidName
    from .witness import Blocked, witness

    policy = load_policy(args.policy, use_cache=not args.no_cache)
    status = 0
    for name in args.names:
        try:
            w = witness(policy, name, with_path=args.path)
        except InvalidName as e:
            print(f"UNPROVABLE {name}: {e}")
            status = 1
            continue
        if isinstance(w, Blocked):
            print(f"BLOCKED {name}: {w.describe()}")
            status = 1
        else:
            print(f"allowed {name}: leaf {w.index} ({w.low.decode()!r} < key < {w.high[:64]!r})")
            if args.path:
                for h, sibs in enumerate(w.path.siblings):
                    for s in sibs:
                        print(f"  sibling[{h}] 0x{s:064x}")
    return status


def add_policy_commands(sub) -> None:
    """Register ``zkmb policy ...`` on the top-level subparsers."""
    pol = sub.add_parser("policy", help="build, inspect and query committed blocklists (SPEC §6)")
    ps = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    b = ps.add_parser("build", help="build a policy file from hosts / plain / ABP / RPZ blocklists")
    b.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="blocklist file, or FORMAT:FILE (e.g. subtree:list.txt)"
    )
    b.add_argument("-o", "--output", required=True, metavar="POLICY", help="policy file to write")
    b.add_argument(
        "--subtree", action="append", default=[], metavar="FILE", help="plain list of subtree rules"
    )
    b.add_argument(
        "--format",
        default="auto",
        choices=("auto", "lines", "hosts", "plain", "abp", "rpz", "subtree"),
        help="format of every INPUT (default: detect; hosts/plain/abp lines may be mixed)",
    )
    b.add_argument("--origin", help="RPZ zone origin when a zone file has no $ORIGIN (default: the root)")
    b.add_argument(
        "--strict", action="store_true", help="write nothing if any rule is invalid or unsupported"
    )
    b.add_argument("--show-all", action="store_true", help="list every problem (default: the first 20)")
    b.add_argument("--no-provenance", action="store_true", help="omit source file:line and rule text")
    b.add_argument("--no-cache", action="store_true", help="do not cache the built tree")
    b.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    b.set_defaults(func=_cmd_build)

    i = ps.add_parser("info", help="load (and verify) a policy file and print its header")
    i.add_argument("policy")
    i.add_argument("--no-cache", action="store_true", help="rebuild the tree even if cached")
    i.set_defaults(func=_cmd_info)

    c = ps.add_parser("check", help="say whether names are allowed; exit status 1 if any is blocked")
    c.add_argument("policy")
    c.add_argument("names", nargs="+", metavar="NAME")
    c.add_argument("--path", action="store_true", help="also print the Merkle path of allowed names")
    c.add_argument("--no-cache", action="store_true", help="rebuild the tree even if cached")
    c.set_defaults(func=_cmd_check)
