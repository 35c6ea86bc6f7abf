"""The statement keys on disk: ``zkmb setup`` writes them, the services load them (SPEC §8).

A key directory holds, for each circuit ``NAME`` of :data:`CIRCUITS`, ``NAME.pk`` (proving key, which
contains the verifying key) and ``NAME.vk`` (verifying key) in the format of
:mod:`zkmb.groth16.keys` (each file carries the circuit digest), ``NAME.pkc`` (the same proving key in the
compact distribution format of :mod:`zkmb.groth16.compact`: what a client downloads), ``srs.bin`` and its
compact parts ``srs_<i>.srsc`` (:mod:`zkmb.groth16.srs`), plus ``manifest.json``::

    {"format": 1, "zkmb": "<version>", "circuits": {NAME: {"digest": hex, "constraints": int,
     "public": int, "wires": int, "pk_file": "NAME.pk", "pk_bytes": int, "vk_file": "NAME.vk",
     "vk_bytes": int, "vk_sha256": hex, "pkc_file": "NAME.pkc", "pkc_bytes": int, "pkc_sha256": hex,
     "created": "YYYY-MM-DDTHH:MM:SSZ", "srs_sha256": hex}},
     "srs": {"file": "srs.bin", "sha256": hex, "bytes": int, "g1_powers": int, "g2_powers": int,
             "max_domain": int, "parts": [{"file", "index", "start", "count", "bytes", "sha256"}]}}

``srs.bin`` holds the powers of the one tau that every key of a :func:`generate_keys` run shares;
``srs_sha256`` records which SRS each key was made with (an entry whose value differs from the top-level
``srs.sha256`` is stale).  :func:`verify_key_dir` checks every key against it (docs/setup.md, "Keys
checked against an SRS").  :func:`write_client_files` (called by :func:`generate_keys`) writes the
compact files and their manifest records for a directory made before they existed.

A client's key directory (``client_stub.bootstrap``) holds the served ``manifest.json``, ``NAME.vk``,
``NAME.pkc``, the SRS parts it needs and, written by :func:`verify_key_dir` / :func:`expand_compact_keys`,
``NAME.pk`` decompressed from ``NAME.pkc`` (its header names the compact file's SHA-256; a cache that does
not load, or names another file, is rebuilt).

:func:`load_keys` refuses a key whose digest differs from the circuit this code compiles (default) or,
with ``against="manifest"``, from the manifest entry.  The manifest lives next to the keys, so checking
against it only detects stale or mixed-up files; only the compiled circuit is an independent reference.
Keys made here come from a single-party setup (:func:`zkmb.groth16.setup.setup`); a verifiable
ceremony (``zkmb setup verify|contribute``) produces keys for the same digests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from zkmb.errors import InvalidInput
from zkmb.r1cs import ConstraintSystem

log = logging.getLogger("zkmb.keys")

__all__ = [
    "CIRCUITS",
    "MANIFEST_NAME",
    "KeyMismatch",
    "SetupResult",
    "compile_circuit",
    "expand_compact_keys",
    "generate_keys",
    "srs_parts_for",
    "write_client_files",
    "read_manifest_srs",
    "verify_key_dir",
    "key_file_header",
    "key_paths",
    "load_keys",
    "read_manifest",
    "release_circuits",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
SRS_NAME = "srs.bin"


def _co(suite: str) -> Callable[[], ConstraintSystem]:
    def build() -> ConstraintSystem:
        from .co import co_circuit

        return co_circuit(suite)

    return build


def _pad(suite: str) -> Callable[[], ConstraintSystem]:
    def build() -> ConstraintSystem:
        from .pad import pad_circuit

        return pad_circuit(suite)

    return build


def _pads(suite: str, blocks: int) -> Callable[[], ConstraintSystem]:
    def build() -> ConstraintSystem:
        from .pad import pads_circuit

        return pads_circuit(suite, blocks)

    return build


def _q(size: int) -> Callable[[], ConstraintSystem]:
    def build() -> ConstraintSystem:
        from .query import query_circuit

        return query_circuit(size)

    return build


CIRCUITS: dict[str, Callable[[], ConstraintSystem]] = {
    "co_chacha20": _co("chacha20"),
    "co_aes128gcm": _co("aes128gcm"),
    "pad_block": _pad("chacha20"),
    "pad_block_aes128gcm": _pad("aes128gcm"),
    "pad_blocks_3": _pads("chacha20", 3),
    **{f"q_{b}": _q(b) for b in (64, 128, 192, 320, 448)},
}
"""Every statement circuit with a key pair (SPEC §8: CO and PAD per suite, Q per size class)."""


def release_circuits() -> None:
    """Forget every compiled circuit (the statement modules cache them): the middlebox compiles the
    nine circuits once to check its keys (1.45 GB) and never needs them again."""
    import gc

    from .co import co_circuit
    from .pad import pad_circuit, pads_circuit
    from .query import query_circuit

    for fn in (co_circuit, pad_circuit, pads_circuit, query_circuit):
        fn.cache_clear()
    gc.collect()


class KeyMismatch(InvalidInput):
    """A key file is missing, corrupt, or was made for another circuit than the one expected."""


@dataclass(frozen=True)
class SetupResult:
    """What :func:`generate_keys` did for one circuit: ``"created"``, ``"skipped"`` (keys were current) or
    ``"stale"`` (a key of the directory that was not requested and was made with a replaced SRS)."""

    name: str
    status: str
    entry: dict


def _check_names(names: Iterable[str] | None) -> list[str]:
    out = list(CIRCUITS) if names is None else list(names)
    unknown = [n for n in out if n not in CIRCUITS]
    if unknown:
        raise InvalidInput(f"unknown circuit(s): {', '.join(unknown)}; known: {', '.join(CIRCUITS)}")
    if len(set(out)) != len(out):
        raise InvalidInput("a circuit is named twice")
    return out


def compile_circuit(name: str) -> ConstraintSystem:
    """The compiled constraint system of circuit ``name`` (cached by the statement modules)."""
    return CIRCUITS[_check_names([name])[0]]()


def key_paths(key_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """``(NAME.pk, NAME.vk)`` inside ``key_dir``."""
    d = Path(key_dir)
    return d / f"{name}.pk", d / f"{name}.vk"


_HEAD = struct.Struct("<8sII32s")


def key_file_header(path: str | os.PathLike) -> tuple[int, bytes]:
    """``(kind, digest)`` from a key file's fixed prefix (no payload check); KeyMismatch if unreadable."""
    from zkmb.groth16.keys import FORMAT_VERSION, MAGIC

    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
    except OSError as e:
        raise KeyMismatch(f"cannot read key file {path}: {e.strerror}") from e
    if len(head) != _HEAD.size:
        raise KeyMismatch(f"{path}: truncated key file")
    magic, version, kind, digest = _HEAD.unpack(head)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise KeyMismatch(f"{path}: not a zkmb key file of format {FORMAT_VERSION}")
    return kind, digest


def read_manifest(key_dir: str | os.PathLike) -> dict[str, dict]:
    """The manifest's ``circuits`` table (empty when there is no manifest); InvalidInput if malformed."""
    path = Path(key_dir) / MANIFEST_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    try:
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise InvalidInput(f"{path}: manifest format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
        circuits = data["circuits"]
        if not isinstance(circuits, dict) or not all(isinstance(v, dict) for v in circuits.values()):
            raise TypeError("circuits is not a table")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InvalidInput(f"{path}: malformed manifest ({e})") from e
    return circuits


def read_manifest_srs(key_dir: str | os.PathLike) -> dict | None:
    """The manifest's top-level ``srs`` record (None when absent); InvalidInput if malformed."""
    path = Path(key_dir) / MANIFEST_NAME
    read_manifest(key_dir)  # validates the file
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    srs = data.get("srs")
    if srs is None:
        return None
    if (
        not isinstance(srs, dict)
        or not isinstance(srs.get("file"), str)
        or not isinstance(srs.get("sha256"), str)
    ):
        raise InvalidInput(f"{path}: malformed srs record")
    return srs


_KEEP = object()


def _write_manifest(key_dir: Path, circuits: dict[str, dict], srs: dict | None | object = _KEEP) -> None:
    """Write the manifest; ``srs`` replaces the top-level SRS record (default: keep the current one)."""
    from zkmb import __version__

    path = key_dir / MANIFEST_NAME
    tmp = key_dir / f"{MANIFEST_NAME}.tmp"
    if srs is _KEEP:
        try:
            srs = read_manifest_srs(key_dir)
        except InvalidInput:
            srs = None
    body = {"format": MANIFEST_FORMAT, "zkmb": __version__, "circuits": dict(sorted(circuits.items()))}
    if srs is not None:
        body["srs"] = srs
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _entry(name: str, cs: ConstraintSystem, pk_path: Path, vk_path: Path, created: float) -> dict:
    return {
        "digest": cs.digest().hex(),
        "constraints": cs.n_constraints,
        "public": cs.n_public,
        "wires": cs.n_wires,
        "pk_file": pk_path.name,
        "pk_bytes": pk_path.stat().st_size,
        "vk_file": vk_path.name,
        "vk_bytes": vk_path.stat().st_size,
        "created": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _current(
    cs: ConstraintSystem, pk_path: Path, vk_path: Path, entry: dict | None, srs_sha256: str | None
) -> bool:
    """Both files exist with the right kinds and digest (and, if recorded, the recorded sizes), and the
    entry records the directory's current SRS (``srs_sha256``, None when there is no valid srs.bin)."""
    from zkmb.groth16.keys import KIND_PK, KIND_VK

    if srs_sha256 is None or entry is None or entry.get("srs_sha256") != srs_sha256:
        return False
    digest = cs.digest()
    for path, kind in ((pk_path, KIND_PK), (vk_path, KIND_VK)):
        try:
            if key_file_header(path) != (kind, digest):
                return False
        except KeyMismatch:
            return False
    if entry is not None and entry.get("digest") == digest.hex():
        return (
            entry.get("pk_bytes") == pk_path.stat().st_size
            and entry.get("vk_bytes") == vk_path.stat().st_size
        )
    return True


Progress = Callable[[str, str, float], None]
"""``progress(circuit, step, elapsed_seconds)``; step is compile, setup, write, done or skipped (and
``progress("srs.bin", "setup" | "done", t)`` around the SRS)."""


def _srs_record(path: Path, n_g1: int, max_domain: int, n_g2: int = 2, parts: list | None = None) -> dict:
    from zkmb.groth16.srs import srs_digest

    rec = {
        "file": path.name,
        "sha256": srs_digest(path),
        "bytes": path.stat().st_size,
        "g1_powers": n_g1,
        "g2_powers": n_g2,
        "max_domain": max_domain,
    }
    if parts is not None:
        rec["parts"] = parts
    return rec


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _compact_record(pkc_path: Path, vk_path: Path, written: dict) -> dict:
    return {
        "pkc_file": pkc_path.name,
        "pkc_bytes": written["bytes"],
        "pkc_sha256": written["sha256"],
        "vk_sha256": _sha256_file(vk_path),
    }


def _parts_ok(d: Path, parts) -> bool:
    if not isinstance(parts, list) or not parts:
        return False
    for p in parts:
        try:
            path = d / Path(str(p["file"])).name
            if not path.is_file() or path.stat().st_size != p["bytes"] or _sha256_file(path) != p["sha256"]:
                return False
        except (KeyError, TypeError, OSError):
            return False
    return True


def write_client_files(
    key_dir: str | os.PathLike, names: Iterable[str] | None = None, *, progress: Progress | None = None
) -> list[str]:
    """Make sure the directory publishes what clients download: the compact SRS parts of ``srs.bin`` and
    ``NAME.pkc`` for each circuit of the manifest (``names``: only those), with their manifest records.
    Files that exist and match their records are kept; others are written from ``NAME.pk`` /
    ``srs.bin``.  Returns the names of the files written.  A directory without a current SRS is left
    alone (its keys cannot be checked by a client anyway)."""
    from zkmb.groth16.compact import write_compact_pk
    from zkmb.groth16.keys import ProvingKey
    from zkmb.groth16.srs import read_srs, write_srs_parts

    d = Path(key_dir)
    report = progress or (lambda name, step, elapsed: None)
    manifest = read_manifest(d)
    try:
        rec = read_manifest_srs(d)
    except InvalidInput:
        return []
    if rec is None or _current_srs(d) is None:
        return []
    written = []
    if not _parts_ok(d, rec.get("parts")):
        t0 = time.perf_counter()
        srs = read_srs(d / SRS_NAME)
        rec = {**rec, "parts": write_srs_parts(srs, d), "g2_powers": srs.n_g2}
        written += [p["file"] for p in rec["parts"]]
        report(SRS_NAME, "compact", time.perf_counter() - t0)
    for name in sorted(manifest) if names is None else list(names):
        entry = manifest.get(name)
        pk_path, vk_path = key_paths(d, name)
        if entry is None or not pk_path.is_file() or not vk_path.is_file():
            continue
        pkc = d / f"{name}.pkc"
        ok = (
            entry.get("pkc_file") == pkc.name
            and pkc.is_file()
            and pkc.stat().st_size == entry.get("pkc_bytes")
            and _sha256_file(pkc) == entry.get("pkc_sha256")
            and _sha256_file(vk_path) == entry.get("vk_sha256")
        )
        if ok:
            continue
        t0 = time.perf_counter()
        pk = ProvingKey.load(pk_path, expect_digest=bytes.fromhex(entry["digest"]))
        manifest[name] = {**entry, **_compact_record(pkc, vk_path, write_compact_pk(pk, pkc))}
        del pk
        written.append(pkc.name)
        report(name, "compact", time.perf_counter() - t0)
    if written:
        _write_manifest(d, manifest, rec)
    return written


def srs_parts_for(rec: dict, n: int) -> list[dict]:
    """The compact SRS parts (records of the manifest's ``srs.parts``) a client needs to check keys up to
    domain n: those holding the powers below n when the SRS has ``tau^n G2`` (``g2_powers``), else below
    2n - 1.  InvalidInput if the record lists no parts or too few."""
    parts = rec.get("parts") if isinstance(rec, dict) else None
    if not isinstance(parts, list) or not parts:
        raise InvalidInput("the SRS record lists no compact parts")
    g2 = rec.get("g2_powers", 2)
    need = n if isinstance(g2, int) and n.bit_length() < g2 else 2 * n - 1
    out, covered = [], 0
    for i, p in enumerate(parts):
        if covered >= need:
            break
        if not isinstance(p, dict) or p.get("index") != i or p.get("start") != covered:
            raise InvalidInput(f"the SRS record's part {i} is malformed")
        count = p.get("count")
        if not isinstance(count, int) or count <= 0:
            raise InvalidInput(f"the SRS record's part {i} is malformed")
        out.append(p)
        covered += count
    if covered < need:
        raise InvalidInput(f"the SRS parts hold {covered} powers, domain {n} needs {need}")
    return out


def _current_srs(key_dir: Path) -> str | None:
    """The SHA-256 of the directory's srs.bin if the manifest records exactly that file, else None."""
    from zkmb.groth16.srs import srs_digest

    try:
        rec = read_manifest_srs(key_dir)
    except InvalidInput:
        return None
    if rec is None or rec.get("file") != SRS_NAME:
        return None
    path = key_dir / SRS_NAME
    if not path.exists() or path.stat().st_size != rec.get("bytes"):
        return None
    sha = srs_digest(path)
    return sha if sha == rec.get("sha256") else None


def generate_keys(
    key_dir: str | os.PathLike,
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> list[SetupResult]:
    """Write ``NAME.pk``/``NAME.vk`` for each circuit (all of :data:`CIRCUITS` by default), ``srs.bin`` and
    the manifest.

    A circuit is current when its two files exist for the compiled digest and its manifest entry
    records the directory's current ``srs.bin``.  If every requested circuit is current (and not
    ``force``) nothing is written (all "skipped").  Otherwise one fresh tau is drawn for the run (held
    in memory only), ``srs.bin`` is rewritten with its powers for the largest requested domain, and
    every requested circuit is regenerated with that tau and fresh alpha, beta, gamma, delta.  Keys of
    the directory that were not requested and were made with another SRS are reported as "stale"
    (results after the requested ones): :func:`verify_key_dir` rejects them until they are regenerated.
    The manifest is rewritten after every circuit, so an interrupted run keeps what it finished.
    """
    from zkmb.groth16.compact import write_compact_pk
    from zkmb.groth16.r1cs_to_qap import domain_size_for
    from zkmb.groth16.setup import Trapdoor, random_tau, setup
    from zkmb.groth16.srs import srs_generate, srs_size_for_domain, write_srs, write_srs_parts

    wanted = _check_names(names)
    d = Path(key_dir)
    d.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(d)
    report = progress or (lambda name, step, elapsed: None)
    cur_srs = _current_srs(d)
    t_start: dict[str, float] = {}
    domains: dict[str, int] = {}
    skip = not force
    for name in wanted:
        t_start[name] = time.perf_counter()
        report(name, "compile", 0.0)
        cs = CIRCUITS[name]()
        domains[name] = domain_size_for(cs.n_constraints, cs.n_public)
        pk_path, vk_path = key_paths(d, name)
        skip = skip and _current(cs, pk_path, vk_path, manifest.get(name), cur_srs)
    if skip:
        for name in wanted:
            cs = CIRCUITS[name]()
            pk_path, vk_path = key_paths(d, name)
            if manifest[name].get("digest") != cs.digest().hex():
                manifest[name] = {
                    **_entry(name, cs, pk_path, vk_path, pk_path.stat().st_mtime),
                    "srs_sha256": cur_srs,
                }
                _write_manifest(d, manifest)
        write_client_files(d, wanted, progress=report)  # keys made before the compact files existed
        manifest = read_manifest(d)
        for name in wanted:
            report(name, "skipped", time.perf_counter() - t_start[name])
        return [SetupResult(name, "skipped", manifest[name]) for name in wanted]

    # One tau for the whole run: the SRS first (so a crash never leaves keys without their SRS).
    n_max = max(domains.values())
    tau = random_tau()
    while pow(tau, 2 * n_max, _R()) == 1:  # then also not a 2n-th root for the smaller domains
        tau = random_tau()
    t0 = time.perf_counter()
    report(SRS_NAME, "setup", 0.0)
    for name in wanted:
        manifest.pop(name, None)  # never leave an entry describing files being replaced
    srs_path = d / SRS_NAME
    srs = srs_generate(srs_size_for_domain(n_max), tau)
    write_srs(srs_path, srs)
    srs_rec = _srs_record(srs_path, srs.n_g1, srs.max_domain, srs.n_g2, write_srs_parts(srs, d))
    del srs
    _write_manifest(d, manifest, srs_rec)
    report(SRS_NAME, "done", time.perf_counter() - t0)
    results = []
    for name in wanted:
        t0 = t_start[name]
        cs = CIRCUITS[name]()
        pk_path, vk_path = key_paths(d, name)
        report(name, "setup", time.perf_counter() - t0)
        pk, vk = setup(cs, trapdoor=Trapdoor.random(tau))
        report(name, "write", time.perf_counter() - t0)
        vk.save(vk_path)
        pk.save(pk_path)
        pkc_path = d / f"{name}.pkc"
        compact = _compact_record(pkc_path, vk_path, write_compact_pk(pk, pkc_path))
        del pk, vk
        manifest[name] = {
            **_entry(name, cs, pk_path, vk_path, time.time()),
            **compact,
            "srs_sha256": srs_rec["sha256"],
        }
        _write_manifest(d, manifest, srs_rec)
        report(name, "done", time.perf_counter() - t0)
        results.append(SetupResult(name, "created", manifest[name]))
    del tau
    for name, entry in sorted(manifest.items()):
        if name not in wanted and entry.get("srs_sha256") != srs_rec["sha256"]:
            results.append(SetupResult(name, "stale", entry))
    return results


def _R() -> int:
    from zkmb.algebra.params import R

    return R


def load_keys(
    key_dir: str | os.PathLike,
    names: Sequence[str],
    role: Literal["prover", "verifier"] = "prover",
    *,
    against: Literal["circuit", "manifest"] = "circuit",
) -> dict:
    """``{name: ProvingKey}`` (role ``prover``) or ``{name: VerifyingKey}`` (role ``verifier``).

    Every file is fully checked by :mod:`zkmb.groth16.keys` (format, payload checksum, shapes, points
    on the curve and in the subgroup) and its digest must equal the expected one: the digest of the
    circuit compiled by this code (``against="circuit"``, the default) or the manifest's entry
    (``against="manifest"``, which avoids compiling but only detects stale or mixed-up files).
    Raises :class:`KeyMismatch` naming the circuit and the file otherwise.
    """
    from zkmb.groth16.keys import ProvingKey, VerifyingKey

    if role not in ("prover", "verifier"):
        raise InvalidInput(f"role must be 'prover' or 'verifier', not {role!r}")
    if against not in ("circuit", "manifest"):
        raise InvalidInput(f"against must be 'circuit' or 'manifest', not {against!r}")
    wanted = _check_names(names)
    manifest = read_manifest(key_dir)
    out = {}
    for name in wanted:
        if against == "circuit":
            expect = CIRCUITS[name]().digest()
            entry = manifest.get(name)
            if entry is not None and entry.get("digest") != expect.hex():
                raise KeyMismatch(
                    f"{name}: the manifest in {key_dir} was made for another version of this circuit "
                    f"(digest {str(entry.get('digest'))[:16]}..., "
                    f"this code compiles {expect.hex()[:16]}...); "
                    "run `zkmb setup --force` or fetch the matching keys"
                )
        else:
            entry = manifest.get(name)
            if entry is None:
                raise KeyMismatch(f"{name}: no entry in the manifest of {key_dir}")
            try:
                expect = bytes.fromhex(entry["digest"])
            except (KeyError, TypeError, ValueError) as e:
                raise KeyMismatch(f"{name}: malformed digest in the manifest of {key_dir}") from e
        pk_path, vk_path = key_paths(key_dir, name)
        path, cls = (pk_path, ProvingKey) if role == "prover" else (vk_path, VerifyingKey)
        if not path.exists():
            raise KeyMismatch(f"{name}: key file {path} is missing (run `zkmb setup --keys {key_dir}`)")
        try:
            out[name] = cls.load(path, expect_digest=expect)
        except KeyMismatch:
            raise
        except InvalidInput as e:
            raise KeyMismatch(f"{name}: refused {path}: {e}") from e
    return out


Detail = Callable[[str, str], None]
"""``detail(name, text)``: finer progress of :func:`verify_key_dir` (decompression percentage, key-check
steps, SRS decompression)."""


def _is_cache(pk_path: Path) -> bool:
    """Whether ``NAME.pk`` is a client's decompressed cache (its header names a compact file), or is
    unreadable (then it is rebuilt from the compact file, never trusted)."""
    from zkmb.groth16.keys import read_key_header

    if not pk_path.exists():
        return True
    try:
        return read_key_header(pk_path)[2].get("source_sha256") is not None
    except InvalidInput:
        return True


def _client_layout(d: Path, name: str, entry: dict | None) -> Path | None:
    """``NAME.pkc`` when the directory is a client's (the compact file is there and ``NAME.pk`` is
    absent or its decompressed cache), else None (a setup's directory: check ``NAME.pk`` itself)."""
    pkc = d / f"{name}.pkc"
    if entry is not None and entry.get("pkc_file") not in (None, pkc.name):
        raise KeyMismatch(f"{name}: the manifest names an unexpected compact file {entry.get('pkc_file')!r}")
    if pkc.is_file() and _is_cache(key_paths(d, name)[0]):
        return pkc
    return None


def _load_or_expand(d: Path, name: str, cs, pkc: Path, pkc_sha: str, report: Progress, say: Detail):
    """``(ProvingKey, fresh)``: the decompressed cache ``NAME.pk`` if it loads (format, checksum, digest)
    and came from exactly this compact file; otherwise ``NAME.pkc`` decompressed now (every point
    validated: ``fresh`` True) and saved as the new cache."""
    from zkmb.groth16.compact import read_compact_pk
    from zkmb.groth16.keys import ProvingKey

    pk_path = key_paths(d, name)[0]
    if pk_path.exists():
        try:
            pk = ProvingKey.load(pk_path, expect_digest=cs.digest())
            if pk.source_sha256 == pkc_sha:
                return pk, False
            why = "it was made from another compact file"
        except InvalidInput as e:
            why = str(e)
        log.warning("%s: decompressed key cache %s refused (%s): rebuilding it", name, pk_path, why)
        say(name, f"decompressed cache refused ({why}): rebuilding it")
    t0 = time.perf_counter()
    report(name, "decompress", 0.0)
    last = [t0]

    def tick(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 2.0 or done == total:
            last[0] = now
            say(name, f"decompressing {pkc.name}: {100 * done // max(total, 1)}% ({now - t0:.1f} s)")

    try:
        pk = read_compact_pk(pkc, cs, progress=tick)
    except InvalidInput as e:
        raise KeyMismatch(f"{name}: refused {pkc}: {e}") from e
    if pk.source_sha256 != pkc_sha:
        raise KeyMismatch(f"{name}: {pkc} changed while it was read")
    pk.save(pk_path)
    report(name, "decompressed", time.perf_counter() - t0)
    return pk, True


def expand_compact_keys(
    key_dir: str | os.PathLike,
    names: Iterable[str],
    *,
    progress: Progress | None = None,
    detail: Detail | None = None,
) -> list[str]:
    """Decompress ``NAME.pkc`` into its cache ``NAME.pk`` for each name of a client's key directory
    where the cache is missing, unreadable or from another compact file (what :func:`verify_key_dir`
    does before its check; this is for keys used without one).  Returns the names decompressed."""
    d = Path(key_dir)
    manifest = read_manifest(d)
    report = progress or (lambda name, step, elapsed: None)
    say = detail or (lambda name, text: None)
    out = []
    for name in _check_names(names):
        pkc = _client_layout(d, name, manifest.get(name))
        if pkc is None:
            continue
        sha = _sha256_file(pkc)
        want = manifest.get(name, {}).get("pkc_sha256")
        if want is not None and want != sha:
            raise KeyMismatch(f"{name}: {pkc} does not match the manifest's sha256")
        _, fresh = _load_or_expand(d, name, CIRCUITS[name](), pkc, sha, report, say)
        if fresh:
            out.append(name)
    return out


def _srs_source(d: Path, rec: dict | None, n_max: int, cache_dir, say: Detail):
    """The SRS to check keys of domains up to ``n_max`` against: ``srs.bin`` if present (a setup's
    directory), else the compact parts the manifest lists (a client's), each checked against its
    recorded SHA-256."""
    from zkmb.groth16.keycheck import _SrsSource

    fname = rec.get("file") if rec is not None else SRS_NAME
    if not isinstance(fname, str) or fname != Path(fname).name or fname in ("", ".", ".."):
        raise KeyMismatch(f"{d}: the manifest names an SRS file outside the key directory ({fname!r})")
    srs_path = d / fname
    if srs_path.exists():
        try:
            return _SrsSource(srs_path, cache_dir), True
        except OSError as e:
            raise KeyMismatch(f"cannot read {srs_path}: {e.strerror}") from e
    if rec is None or not rec.get("parts"):
        raise KeyMismatch(f"{d}: no {fname} (keys made before SRS support?): run `zkmb setup --force`")
    try:
        parts = srs_parts_for(rec, n_max)
    except InvalidInput as e:
        raise KeyMismatch(f"{d}: no {fname}, and {e}") from e
    paths, shas = [], []
    for p in parts:
        path = d / Path(str(p.get("file"))).name
        if not path.is_file():
            raise KeyMismatch(f"{d}: no {fname}, and the SRS part {path.name} is missing")
        sha = _sha256_file(path)
        if sha != p.get("sha256"):
            raise KeyMismatch(f"{d}: SRS part {path.name} does not match the manifest's sha256")
        paths.append(path)
        shas.append(sha)
    digest = hashlib.sha256("|".join(["zkmb-srs-parts-v1", *shas]).encode()).hexdigest()
    clock: list[float] = []

    def tick(done: int, total: int) -> None:
        now = time.perf_counter()
        if not clock:
            clock[:] = [now, now]
        if now - clock[1] >= 2.0 or done == total:
            clock[1] = now
            pct = 100 * done // total
            say("srs", f"decompressing the SRS ({len(paths)} parts): {pct}% ({now - clock[0]:.1f} s)")

    return _SrsSource(None, cache_dir, parts=paths, digest=digest, progress=tick), False


def _compare_vk(vk_path: Path, pk, cs, name: str) -> None:
    """``NAME.vk`` must be exactly the verifying key inside ``NAME.pk`` (the middlebox verifies with it)."""
    import numpy as np

    from zkmb.groth16.keycheck import KeyCheckFailed
    from zkmb.groth16.keys import VerifyingKey

    if not vk_path.is_file():
        raise KeyMismatch(f"{name}: key file {vk_path} is missing")
    try:
        vk = VerifyingKey.load(vk_path, expect_digest=cs.digest())
    except InvalidInput as e:
        raise KeyMismatch(f"{name}: refused {vk_path}: {e}") from e
    same = vk.digest == pk.vk.digest and all(
        np.array_equal(getattr(vk, k), getattr(pk.vk, k))
        for k in ("alpha_1", "beta_2", "gamma_2", "delta_2", "ic")
    )
    if not same:
        raise KeyCheckFailed(
            f"{name}: {vk_path.name} is not the verifying key inside the proving key (alpha, beta, gamma, "
            "delta or IC differ): the middlebox would check proofs against another key"
        )


def verify_key_dir(
    key_dir: str | os.PathLike,
    names: Iterable[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: Callable[[str, str, float], None] | None = None,
    detail: Detail | None = None,
) -> dict:
    """Check each circuit's proving key in ``key_dir`` against the directory's SRS.

    For every name (default: all of :data:`CIRCUITS`) the circuit is compiled here, the proving key is
    loaded (format, checksum, digest of the compiled circuit) and
    :func:`zkmb.groth16.keycheck.verify_key_srs` checks that every key element is what the circuit's
    QAP implies for the SRS's tau (every b2 point subgroup-checked exactly), and ``NAME.vk`` must equal
    the verifying key inside it.  The SRS (``srs.bin``, or in a client's directory the compact parts the
    manifest lists, each against its SHA-256) is read, validated and checked to be powers of one tau
    (:func:`zkmb.groth16.srs.verify_srs`) once.  In a client's directory the proving key is ``NAME.pkc``:
    its decompressed cache ``NAME.pk`` is used when it loads and came from that file, else rebuilt (the
    fresh decompression has validated every point, so the check skips those per-point tests).
    Positive verdicts are cached under ``cache_dir`` (None: no cache) by the SHA-256 of (proving key file,
    verifying key file, circuit digest, SRS).  Returns ``{name: KeyCheckReport}``; raises
    :class:`~zkmb.groth16.keycheck.KeyCheckFailed` (a key is not well formed) or :class:`KeyMismatch`
    (missing, unreadable, stale or mixed-up files), naming the circuit.
    ``progress(name, step, elapsed)`` gets steps ``decompress``/``decompressed`` (client directories),
    ``check`` and ``ok`` (or ``cached``); ``detail(name, text)`` finer steps.
    """
    from zkmb.groth16.keycheck import KeyCheckFailed, KeyCheckReport, verify_key_srs
    from zkmb.groth16.keys import ProvingKey
    from zkmb.groth16.r1cs_to_qap import domain_size_for
    from zkmb.groth16.srs import SrsCheckFailed

    wanted = _check_names(names)
    d = Path(key_dir)
    report = progress or (lambda name, step, elapsed: None)
    say = detail or (lambda name, text: None)
    if not d.is_dir():
        what = "is not a directory" if d.exists() else "does not exist"
        raise KeyMismatch(
            f"{d} {what}: make keys with `zkmb setup --keys {d}` "
            "or fetch them with `zkmb stub --bootstrap URL`"
        )
    rec = read_manifest_srs(d)
    manifest = read_manifest(d)
    compiled = {}
    for name in wanted:
        t_c = time.perf_counter()
        say(name, "compiling the circuit from this code (for its digest and QAP)")
        compiled[name] = CIRCUITS[name]()
        n_c, took = compiled[name].n_constraints, time.perf_counter() - t_c
        say(name, f"circuit compiled: {n_c:,} constraints ({took:.1f} s)")
    n_max = max((domain_size_for(cs.n_constraints, cs.n_public) for cs in compiled.values()), default=1)
    src, own_srs = _srs_source(d, rec, n_max, cache_dir, say)
    out = {}
    for name in wanted:
        t0 = time.perf_counter()
        cs = compiled[name]
        entry = manifest.get(name, {})
        recorded = entry.get("srs_sha256")
        current = src.digest if own_srs else (rec or {}).get("sha256")
        if recorded is not None and recorded != current:
            raise KeyMismatch(
                f"{name}: the key was made with another SRS than the directory's (stale): regenerate it "
                "(`zkmb setup --force`) or fetch the matching key directory"
            )
        pk_path, vk_path = key_paths(d, name)
        try:
            pkc = _client_layout(d, name, entry)
            key_file = pkc if pkc is not None else pk_path
            if not key_file.exists():
                raise KeyMismatch(f"{name}: key file {pk_path} is missing")
            if not vk_path.is_file():
                raise KeyMismatch(f"{name}: key file {vk_path} is missing")
            key_sha, vk_sha = _sha256_file(key_file), _sha256_file(vk_path)
            if pkc is not None and entry.get("pkc_sha256") not in (None, key_sha):
                raise KeyMismatch(f"{name}: {pkc} does not match the manifest's sha256")
            tag = hashlib.sha256(
                f"zkmb-srs-keycheck-v2|{key_sha}|{vk_sha}|{cs.digest().hex()}|{src.digest}".encode()
            ).hexdigest()
            marker = Path(cache_dir) / f"key-srs-ok-{tag}" if cache_dir is not None else None
            pk, fresh = None, False
            if pkc is not None:
                pk, fresh = _load_or_expand(d, name, cs, pkc, key_sha, report, say)
            report(name, "check", 0.0)
            t1 = time.perf_counter()
            if marker is not None and marker.exists():
                out[name] = KeyCheckReport(0, 0, 0, 0, 0, key_sha, {"hash": t1 - t0, "cached": 0.0})
                report(name, "cached", time.perf_counter() - t0)
                continue
            if pk is None:
                pk = ProvingKey.load(pk_path, expect_digest=cs.digest())
            _compare_vk(vk_path, pk, cs, name)
            srs = src.get()
            t2 = time.perf_counter()

            def step(what: str, n: str = name, t2: float = t2) -> None:
                say(n, f"key check: {what} ({time.perf_counter() - t2:.1f} s)")

            rep = verify_key_srs(pk, cs, srs, points_checked=fresh, on_step=step)
            del pk
            rep.digest = key_sha
            rep.timings = {"load": t1 - t0, **src.timings, **rep.timings}
            rep.timings["total"] = time.perf_counter() - t0
            src.timings = {}
        except KeyCheckFailed as e:
            raise KeyCheckFailed(e.args[0] if e.args[0].startswith(f"{name}:") else f"{name}: {e}") from e
        except SrsCheckFailed as e:
            raise KeyCheckFailed(f"{name}: SRS: {e}") from e
        except KeyMismatch:
            raise
        except InvalidInput as e:
            raise KeyMismatch(f"{name}: {e}") from e
        except OSError as e:
            raise KeyMismatch(f"{name}: cannot read {pk_path}: {e.strerror}") from e
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(key_sha + "\n")
        out[name] = rep
        report(name, "ok", time.perf_counter() - t0)
    return out
