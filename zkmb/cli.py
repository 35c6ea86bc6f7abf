"""The ``zkmb`` command: one front door with subcommands."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import ZkmbError

BENCH_SUITES = ("algebra",)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .benchmarks import run_suite

    result = run_suite(args.suite, quick=args.quick)
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zkmb", description="Zero-knowledge middlebox for encrypted DNS.")
    parser.add_argument("--version", action="version", version=f"zkmb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    bench = sub.add_parser("bench", help="run a benchmark suite and print its results")
    bench.add_argument("suite", choices=BENCH_SUITES, help="which suite to run")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test, noisy numbers)")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ZkmbError as e:
        print(f"zkmb: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
