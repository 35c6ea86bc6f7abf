"""``zkmb setup`` subcommands of the verifiable Groth16 setup (phase 2 and the client key check).

Hook: :func:`add_ceremony_commands` takes the ``setup`` command's subparsers object and adds
``verify``, ``contribute`` and ``ptau new|contribute|verify|prepare`` (phase 1, :mod:`.ptau`).
(``keys``, phase 2 from a prepared ptau for the statement circuits, is not implemented yet.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_ceremony_commands"]


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zkmb" / "keycheck"


def _cmd_verify(args: argparse.Namespace) -> int:
    from .keycheck import cached_verify_zkey, verify_zkey

    if args.no_cache:
        rep = verify_zkey(args.zkey, args.r1cs, args.ptau, strict_b2=args.strict_b2)
    else:
        rep = cached_verify_zkey(args.zkey, args.r1cs, args.ptau, args.cache or _default_cache())
    if "cached" in rep.timings:
        print(f"key OK (cached verdict) sha256={rep.digest}")
    else:
        print(
            f"key OK: {rep.n_constraints} constraints, {rep.n_vars} signals, {rep.n_public} public, "
            f"domain {rep.domain_size}, {rep.n_contributions} phase-2 contributions, "
            f"{rep.timings['total']:.2f} s, sha256={rep.digest}"
        )
    return 0


def _cmd_contribute(args: argparse.Namespace) -> int:
    from .phase2 import contribute
    from .snarkjs import read_zkey, write_zkey

    zk = read_zkey(args.zkey_in)
    out = contribute(zk, name=args.name or "")
    write_zkey(args.zkey_out, out)
    print(f"wrote {args.zkey_out} with {out.n_contributions} phase-2 contributions")
    return 0


def _cmd_ptau(args: argparse.Namespace) -> int:
    from . import ptau as P

    if args.ptau_cmd == "new":
        P.write_ptau(args.out, P.ptau_new(args.power))
        print(f"wrote {args.out}: power {args.power}, no contributions (contribute before use)")
    elif args.ptau_cmd == "contribute":
        pt = P.ptau_contribute(P.read_ptau(args.ptau_in), name=args.name, entropy=args.entropy.encode())
        P.write_ptau(args.ptau_out, pt)
        print(f"wrote {args.ptau_out} with {len(pt.contributions)} contributions (prepare phase 2 again)")
    elif args.ptau_cmd == "prepare":
        P.write_ptau(args.ptau_out, P.ptau_prepare_phase2(P.read_ptau(args.ptau_in)))
        print(f"wrote {args.ptau_out} with the Lagrange sections")
    else:
        rep = P.ptau_verify(args.ptau)
        names = ", ".join(repr(n) for n in rep.names)
        print(
            f"ptau OK: power {rep.power}, {rep.n_contributions} contributions ({names}), "
            f"{'prepared' if rep.prepared else 'not prepared for phase 2'}, {rep.timings['total']:.2f} s"
        )
    return 0


def add_ceremony_commands(setup_sub) -> None:
    """Register ``verify``, ``contribute`` and ``ptau`` on the ``zkmb setup`` subparsers object."""
    v = setup_sub.add_parser(
        "verify",
        help="check a proving key (.zkey) against its circuit (.r1cs) and phase-1 transcript (.ptau)",
    )
    v.add_argument("zkey")
    v.add_argument("r1cs")
    v.add_argument("ptau", help="prepared powers-of-tau file (snarkjs format)")
    v.add_argument("--cache", type=Path, default=None, help="verdict cache directory")
    v.add_argument("--no-cache", action="store_true", help="always re-verify")
    v.add_argument("--strict-b2", action="store_true", help="subgroup-check every B2 point (slow)")
    v.set_defaults(func=_cmd_verify)
    c = setup_sub.add_parser("contribute", help="add a phase-2 (delta) contribution to a .zkey")
    c.add_argument("zkey_in")
    c.add_argument("zkey_out")
    c.add_argument("--name", default="", help="contributor name stored in the transcript")
    c.set_defaults(func=_cmd_contribute)
    pt = setup_sub.add_parser("ptau", help="phase 1: powers of tau in snarkjs's .ptau format")
    ps = pt.add_subparsers(dest="ptau_cmd", required=True)
    pn = ps.add_parser("new", help="start an accumulator (all points the generators)")
    pn.add_argument("power", type=int)
    pn.add_argument("out")
    pc = ps.add_parser("contribute", help="add a contribution (OS randomness plus --entropy)")
    pc.add_argument("ptau_in")
    pc.add_argument("ptau_out")
    pc.add_argument("--name", default="")
    pc.add_argument("--entropy", default="", help="extra entropy mixed into the OS randomness")
    pv = ps.add_parser("verify", help="check every contribution, the powers and the Lagrange sections")
    pv.add_argument("ptau")
    pp = ps.add_parser("prepare", help="add the Lagrange sections 12-15 (powersoftau prepare phase2)")
    pp.add_argument("ptau_in")
    pp.add_argument("ptau_out")
    for sp in (pn, pc, pv, pp):
        sp.set_defaults(func=_cmd_ptau)
