"""The ``zkmb`` command: one front door with subcommands."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys

from . import __version__
from .errors import Terminated, ZkmbError, describe_os_error

BENCH_SUITES = ("algebra", "groth16", "policy", "statements", "middlebox", "e2e", "baseline", "keys")
BENCH_DEFAULT_JSON = "docs/benchmarks.json"
BENCH_DEFAULT_REPORT = "docs/benchmarks.md"
BENCH_DEFAULT_IMG = "docs/img"


def _cmd_bench_all(args: argparse.Namespace) -> int:
    from .benchmarks.runner import parse_areas, run_all, write_json

    doc = run_all(parse_areas(args.only), quick=args.quick, timeout=args.timeout)
    if args.json is True:
        json_path = BENCH_DEFAULT_JSON
    else:
        json_path = args.json
    if json_path == "-":
        print(json.dumps(doc, sort_keys=True))
    elif json_path:
        write_json(doc, json_path)
        print(f"wrote {json_path}", file=sys.stderr)
    # a quick run's noisy numbers never replace the docs unless asked for explicitly
    report = args.report or (None if args.quick else BENCH_DEFAULT_REPORT)
    if report and report != "-":
        from .benchmarks.report import write_report

        written = write_report(doc, report, args.img or BENCH_DEFAULT_IMG, json_path=json_path)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    failed = [a for a, r in doc["areas"].items() if "error" in r]
    if failed:
        print(f"zkmb bench all: failed areas: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_bench_report(args: argparse.Namespace) -> int:
    from .benchmarks.report import write_report

    if not args.path:
        from .errors import InvalidInput

        raise InvalidInput("zkmb bench report needs the JSON of a `zkmb bench all` run")
    doc = _read_json(args.path)
    written = write_report(
        doc, args.report or BENCH_DEFAULT_REPORT, args.img or BENCH_DEFAULT_IMG, json_path=args.path
    )
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .benchmarks import run_suite

    if args.suite == "all":
        return _cmd_bench_all(args)
    if args.suite == "report":
        return _cmd_bench_report(args)
    if args.path:
        from .errors import InvalidInput

        raise InvalidInput(f"zkmb bench {args.suite} takes no positional path")
    result = run_suite(args.suite, quick=args.quick)
    if isinstance(args.json, str) and args.json != "-":
        _write_json(args.json, result)
        return 0
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _read_json(path: str):
    from .errors import InvalidInput

    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise InvalidInput(f"{path}: not valid JSON ({e})") from e


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def _cmd_groth16_prove(args: argparse.Namespace) -> int:
    from .groth16 import snarkjs
    from .groth16.convert import proof_to_snarkjs, proving_key_from_zkey
    from .groth16.prover import prove
    from .r1cs import read_wtns

    pk = proving_key_from_zkey(snarkjs.read_zkey(args.zkey))
    wtns = read_wtns(args.wtns)
    if len(wtns) != pk.n_vars:
        from .errors import InvalidInput

        raise InvalidInput(f"witness has {len(wtns)} wires, the key expects {pk.n_vars}")
    proof = prove(pk, wtns)
    _write_json(args.proof, snarkjs.proof_to_json(proof_to_snarkjs(proof)))
    _write_json(args.public, snarkjs.public_to_json(wtns.to_ints()[1 : 1 + pk.n_public]))
    return 0


def _cmd_groth16_verify(args: argparse.Namespace) -> int:
    from .groth16 import snarkjs
    from .groth16.convert import proof_from_snarkjs, verifying_key_from_snarkjs
    from .groth16.verifier import verify

    vk = verifying_key_from_snarkjs(snarkjs.vk_from_json(_read_json(args.vk), check_alphabeta=False))
    public = snarkjs.public_from_json(_read_json(args.public))
    proof = proof_from_snarkjs(snarkjs.proof_from_json(_read_json(args.proof)))
    ok = verify(vk, public, proof)
    print("OK: proof is valid" if ok else "INVALID: proof does not verify", file=sys.stderr)
    return 0 if ok else 1


def _cmd_circuits(args: argparse.Namespace) -> int:
    from .gadgets.registry import builders

    table = builders()
    names = args.names or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        from .errors import InvalidInput

        raise InvalidInput(f"unknown circuit(s): {', '.join(unknown)}; known: {', '.join(table)}")
    counts = {}
    for name in names:
        cs = table[name]()
        counts[name] = {"constraints": cs.n_constraints, "public": cs.n_public, "wires": cs.n_wires}
    if args.json:
        print(json.dumps(counts, sort_keys=True))
    else:
        width = max(len(n) for n in counts)
        for name, c in counts.items():
            print(f"{name:<{width}}  {c['constraints']:>9,} constraints  {c['wires']:>9,} wires")
    return 0


def _setup_progress(total: int, ticker):
    """A progress printer for circuits.keys.generate_keys: each step on ``ticker`` (a
    :class:`zkmb.progress.Ticker`: elapsed time while it runs, CO's setup takes about a minute)."""
    seen: list[str] = []

    def report(name: str, step: str, elapsed: float) -> None:
        if name == "srs.bin":  # the run's shared SRS, not a circuit
            label = "srs.bin"
        else:
            if name not in seen:
                seen.append(name)
            label = f"[{len(seen)}/{total}] {name}"
        if step in ("done", "skipped"):
            ticker.done(f"{label}: {step} ({elapsed:.1f} s)")
        else:
            ticker.start(f"{label}: {step}")

    return report


def _cmd_setup_generate(args: argparse.Namespace) -> int:
    from .circuits.keys import CIRCUITS, generate_keys

    names = [n for n in args.circuits.split(",") if n] if args.circuits else list(CIRCUITS)
    from .progress import Ticker

    with Ticker(indent="") as ticker:
        progress = _setup_progress(len(names), ticker)
        results = generate_keys(args.keys, names, force=args.force, progress=progress)
    for r in results:
        e = r.entry
        print(
            f"{r.name:<20} {r.status:<8} {e['constraints']:>9,} constraints"
            f"  pk {e['pk_bytes'] / 2**20:8.1f} MiB"
            f"  vk {e['vk_bytes']:>6} B  digest {e['digest'][:16]}"
        )
    return 0


def add_setup_commands(sub) -> None:
    """``zkmb setup [generate]`` (single-party key generation) and the ceremony actions, if installed."""
    import importlib.util

    def key_options(p: argparse.ArgumentParser, default) -> None:
        p.add_argument("--keys", default=default("keys"), help="key directory (default: ./keys)")
        p.add_argument(
            "--circuits",
            default=default(None),
            help="comma-separated circuit names (default: all statements)",
        )
        p.add_argument(
            "--force", action="store_true", default=default(False), help="regenerate existing keys"
        )

    from zkmb.client_stub.cli import add_stub_commands

    add_stub_commands(sub)

    setup = sub.add_parser(
        "setup",
        help="generate the statement keys (default action), or run a verifiable setup action",
        description="Without ACTION: the same as `generate` (single-party keys for every statement).",
    )
    key_options(setup, lambda v: v)
    setup.set_defaults(func=_cmd_setup_generate)
    setup_sub = setup.add_subparsers(dest="setup_command", metavar="ACTION")
    gen = setup_sub.add_parser("generate", help="write NAME.pk/NAME.vk and manifest.json for each circuit")
    key_options(gen, lambda v: argparse.SUPPRESS)
    gen.set_defaults(func=_cmd_setup_generate)
    if importlib.util.find_spec("zkmb.groth16.ceremony_cli") is not None:
        from .groth16.ceremony_cli import add_ceremony_commands

        add_ceremony_commands(setup_sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zkmb", description="Zero-knowledge middlebox for encrypted DNS.")
    parser.add_argument("--version", action="version", version=f"zkmb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    bench = sub.add_parser(
        "bench",
        help="run a benchmark suite and print its results",
        description="Run one suite, or `all` of them (each in its own interpreter) into one JSON document "
        "and the report docs/benchmarks.md with its figures; `report JSON` regenerates the report.",
    )
    bench.add_argument(
        "suite", choices=(*BENCH_SUITES, "all", "report"), help="which suite to run, `all`, or `report`"
    )
    bench.add_argument("path", nargs="?", help="report: the JSON of a `zkmb bench all` run")
    bench.add_argument(
        "--json",
        nargs="?",
        const=True,
        default=None,
        metavar="PATH",
        help=f"one suite: print one JSON object (or write it to PATH); all: write the document to PATH "
        f"(default {BENCH_DEFAULT_JSON}; `-` prints it)",
    )
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test, noisy numbers)")
    bench.add_argument("--only", metavar="A,B", help="all: only these suites (comma-separated)")
    bench.add_argument(
        "--report",
        metavar="MD",
        help=f"all/report: write the report here (default {BENCH_DEFAULT_REPORT}; a --quick run "
        "writes none unless given; `-` writes none)",
    )
    bench.add_argument(
        "--img", metavar="DIR", help=f"all/report: figure folder (default {BENCH_DEFAULT_IMG})"
    )
    bench.add_argument(
        "--timeout", type=float, default=4 * 3600, help="all: seconds allowed per suite (default 4 h)"
    )
    bench.set_defaults(func=_cmd_bench)

    circ = sub.add_parser("circuits", help="list the gadget and statement circuits with constraint counts")
    circ.add_argument("names", nargs="*", help="only these circuits")
    circ.add_argument("--json", action="store_true", help="print one JSON object")
    circ.set_defaults(func=_cmd_circuits)

    g16 = sub.add_parser("groth16", help="snarkjs-compatible Groth16 prove/verify")
    g16sub = g16.add_subparsers(dest="g16_command", metavar="ACTION", required=True)
    p = g16sub.add_parser("prove", help="prove with a snarkjs .zkey and a circom .wtns")
    p.add_argument("zkey")
    p.add_argument("wtns")
    p.add_argument("proof", help="output proof.json")
    p.add_argument("public", help="output public.json")
    p.set_defaults(func=_cmd_groth16_prove)
    v = g16sub.add_parser("verify", help="verify a snarkjs proof; exit status 0 only for a valid proof")
    v.add_argument("vk", help="verification_key.json")
    v.add_argument("public", help="public.json")
    v.add_argument("proof", help="proof.json")
    v.set_defaults(func=_cmd_groth16_verify)

    from .tls.cli import add_dot_commands

    add_dot_commands(sub)

    from .policy.cli import add_policy_commands

    add_policy_commands(sub)

    from zkmb.middlebox.cli import add_middlebox_commands

    add_middlebox_commands(sub)

    from zkmb.client_stub.demo import add_demo_commands

    add_demo_commands(sub)

    add_setup_commands(sub)
    return parser


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except ZkmbError as e:
        print(f"zkmb: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # what the machine refused (a file, a port): one line, never a traceback
        print(f"zkmb: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C/SIGTERM before a service's own handler is installed
        stopped = isinstance(e, Terminated)
        print(f"zkmb: {'terminated' if stopped else 'interrupted'}", file=sys.stderr)
        return 143 if stopped else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
