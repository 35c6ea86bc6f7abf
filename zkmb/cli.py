"""The ``zkmb`` command: one front door with subcommands."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import ZkmbError

BENCH_SUITES = ("algebra", "groth16", "policy")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zkmb", description="Zero-knowledge middlebox for encrypted DNS.")
    parser.add_argument("--version", action="version", version=f"zkmb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    bench = sub.add_parser("bench", help="run a benchmark suite and print its results")
    bench.add_argument("suite", choices=BENCH_SUITES, help="which suite to run")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test, noisy numbers)")
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
