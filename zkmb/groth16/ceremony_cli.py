"""``zkmb setup`` subcommands of the verifiable Groth16 setup (phase 2 and the client key check).

Hook: :func:`add_ceremony_commands` takes the ``setup`` command's subparsers object and adds
``verify``, ``contribute``, ``ptau new|contribute|verify|prepare`` (phase 1, :mod:`.ptau`), ``keys``
(phase 2 from a prepared ptau for the statement circuits, :func:`setup_keys_from_ptau`), ``verify-keys``
(every key of a key directory against its ``srs.bin``, :func:`circuits.keys.verify_key_dir`) and
``srs --from-ptau`` (an SRS file from a ceremony's ptau, :func:`.srs.srs_from_ptau`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

__all__ = ["add_ceremony_commands", "setup_keys_from_ptau"]


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


def setup_keys_from_ptau(
    ptau: str | os.PathLike,
    key_dir: str | os.PathLike,
    names: list[str] | None = None,
    *,
    contributor: str = "zkmb setup keys",
    progress=None,
) -> list[str]:
    """For each circuit (all of ``circuits.keys.CIRCUITS`` by default): the key ``snarkjs groth16 setup``
    derives from the prepared ``ptau`` plus one local delta contribution (OS randomness), written as
    ``NAME.zkey`` (snarkjs format, verifiable with ``zkmb setup verify``) and as our ``NAME.pk``/``NAME.vk``
    (digest = the compiled circuit's, so :func:`circuits.keys.load_keys` accepts them), and the manifest
    entry (with ``zkey_file`` and ``srs_sha256`` added); ``srs.bin`` holds the ptau's tau powers (so
    :func:`circuits.keys.verify_key_dir` checks these keys too). Returns the names written. The ptau is
    trusted: verify it first.
    """
    from dataclasses import replace

    from ..circuits import keys as K
    from .convert import proving_key_from_zkey
    from .phase2 import contribute
    from .snarkjs import read_ptau_info, write_zkey
    from .srs import srs_from_ptau, write_srs
    from .zkey_new import zkey_from_ptau

    report = progress or (lambda name, step: None)
    wanted = K._check_names(names)
    d = Path(key_dir)
    d.mkdir(parents=True, exist_ok=True)
    manifest = K.read_manifest(d)
    # the ptau's powers as the directory's SRS (every domain the prepared ptau supports: n <= 2^(power-1)),
    # so `zkmb setup verify-keys` and the stub's check work for ceremony keys too
    power = read_ptau_info(ptau).power
    srs = srs_from_ptau(ptau, (1 << power) - 1)
    srs_path = d / K.SRS_NAME
    write_srs(srs_path, srs)
    srs_rec = K._srs_record(srs_path, srs.n_g1, srs.max_domain, srs.n_g2)
    del srs
    K._write_manifest(d, manifest, srs_rec)
    for name in wanted:
        report(name, "compile")
        cs = K.CIRCUITS[name]()
        report(name, "zkey")
        zk = contribute(zkey_from_ptau(cs, ptau), name=contributor)
        pk_path, vk_path = K.key_paths(d, name)
        zkey_path = d / f"{name}.zkey"
        manifest.pop(name, None)  # never leave an entry describing files being replaced
        K._write_manifest(d, manifest)
        write_zkey(zkey_path, zk)
        pk = proving_key_from_zkey(zk)
        vk = replace(pk.vk, digest=cs.digest())
        pk = replace(pk, vk=vk)
        vk.save(vk_path)
        pk.save(pk_path)
        entry = K._entry(name, cs, pk_path, vk_path, time.time())
        entry["zkey_file"] = zkey_path.name
        entry["srs_sha256"] = srs_rec["sha256"]
        manifest[name] = entry
        K._write_manifest(d, manifest)
        report(name, "done")
    K.write_client_files(d, wanted)  # NAME.pkc and the SRS parts clients download
    return wanted


def _cmd_keys(args: argparse.Namespace) -> int:
    from .snarkjs import read_ptau_info

    if not read_ptau_info(args.ptau).prepared:
        print(f"{args.ptau} is not prepared for phase 2 (run `zkmb setup ptau prepare`)")
        return 1
    names = [n for n in args.circuits.split(",") if n] if args.circuits else None
    t0 = time.perf_counter()

    def progress(name: str, step: str) -> None:
        print(f"{name}: {step} ({time.perf_counter() - t0:.1f} s)", flush=True)

    done = setup_keys_from_ptau(args.ptau, args.keys, names, progress=progress)
    print(f"wrote {len(done)} key(s) to {args.keys} (NAME.zkey, NAME.pk, NAME.vk, manifest.json)")
    return 0


def _cmd_verify_keys(args: argparse.Namespace) -> int:
    import sys

    from ..circuits.keys import verify_key_dir

    names = [n for n in args.circuits.split(",") if n] if args.circuits else None
    cache = None if args.no_cache else (args.cache or _default_cache())
    t0 = time.perf_counter()

    def progress(name: str, step: str, elapsed: float) -> None:
        print(f"{name}: {step} ({elapsed:.1f} s)", file=sys.stderr, flush=True)

    def detail(name: str, text: str) -> None:
        print(f"  {name}: {text}", file=sys.stderr, flush=True)

    reports = verify_key_dir(args.keys, names, cache, progress=progress, detail=detail)
    for name, rep in reports.items():
        if "cached" in rep.timings:
            print(f"{name:<20} OK (cached verdict)  sha256={rep.digest[:16]}")
            continue
        parts = ", ".join(f"{k} {v:.2f}" for k, v in rep.timings.items() if k != "total")
        print(
            f"{name:<20} OK  domain {rep.domain_size}, {rep.n_vars} wires, {rep.timings['total']:.1f} s "
            f"({parts})  sha256={rep.digest[:16]}"
        )
    print(f"{len(reports)} key(s) well formed for the SRS in {args.keys} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_srs(args: argparse.Namespace) -> int:
    from .srs import srs_from_ptau, srs_size_for_domain, verify_srs, write_srs

    count = srs_size_for_domain(args.domain) if args.domain else None
    srs = srs_from_ptau(args.from_ptau, count)
    verify_srs(srs)
    write_srs(args.out, srs)
    print(f"wrote {args.out}: {srs.n_g1} G1 powers (domains up to {srs.max_domain}), verified")
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
    v.add_argument(
        "--strict-b2",
        action="store_true",
        default=True,
        help="subgroup-check every B2 point exactly (the default; ~50 us per point)",
    )
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
    k = setup_sub.add_parser(
        "keys", help="phase 2 from a prepared ptau: NAME.zkey (one local contribution) + NAME.pk/.vk"
    )
    k.add_argument("--ptau", required=True, help="prepared powers-of-tau file (trusted: verify it first)")
    # SUPPRESS: `zkmb setup --keys DIR keys ...` keeps the parent's value.
    k.add_argument("--keys", default=argparse.SUPPRESS, help="key directory (default: ./keys)")
    k.add_argument(
        "--circuits", default=argparse.SUPPRESS, help="comma-separated circuit names (default: all)"
    )
    k.set_defaults(func=_cmd_keys)
    vk = setup_sub.add_parser(
        "verify-keys",
        help="check every proving key of a key directory against its srs.bin (what the client stub does)",
    )
    vk.add_argument("--keys", default=argparse.SUPPRESS, help="key directory (default: ./keys)")
    vk.add_argument(
        "--circuits", default=argparse.SUPPRESS, help="comma-separated circuit names (default: all)"
    )
    vk.add_argument("--cache", type=Path, default=None, help="verdict cache directory")
    vk.add_argument("--no-cache", action="store_true", help="always re-verify")
    vk.set_defaults(func=_cmd_verify_keys)
    sr = setup_sub.add_parser("srs", help="write an SRS file (powers of tau) taken from a snarkjs .ptau")
    sr.add_argument("--from-ptau", required=True, help="powers-of-tau file (snarkjs format)")
    sr.add_argument("--domain", type=int, default=0, help="largest domain to cover (default: all powers)")
    sr.add_argument("out")
    sr.set_defaults(func=_cmd_srs)
