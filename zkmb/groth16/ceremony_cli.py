"""``zkmb setup`` subcommands of the verifiable Groth16 setup (phase 2 and the client key check).

Hook: :func:`add_ceremony_commands` takes the ``setup`` command's subparsers object and adds
``verify`` and ``contribute``. (Phase-1 ``ptau new|contribute|verify`` and ``keys`` are not
implemented yet; use ``snarkjs powersoftau`` for phase 1, whose files zkmb reads.)
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


def add_ceremony_commands(setup_sub) -> None:
    """Register ``verify`` and ``contribute`` on the ``zkmb setup`` subparsers object."""
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
