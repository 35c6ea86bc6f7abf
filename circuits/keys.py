"""The statement keys on disk: ``zkmb setup`` writes them, the services load them (SPEC §8).

A key directory holds, for each circuit ``NAME`` of :data:`CIRCUITS`, ``NAME.pk`` (proving key, which
contains the verifying key) and ``NAME.vk`` (verifying key) in the format of
:mod:`zkmb.groth16.keys` (each file carries the circuit digest), plus ``manifest.json``::

    {"format": 1, "zkmb": "<version>", "circuits": {NAME: {"digest": hex, "constraints": int,
     "public": int, "wires": int, "pk_file": "NAME.pk", "pk_bytes": int, "vk_file": "NAME.vk",
     "vk_bytes": int, "created": "YYYY-MM-DDTHH:MM:SSZ", "srs_sha256": hex}},
     "srs": {"file": "srs.bin", "sha256": hex, "bytes": int, "g1_powers": int, "max_domain": int}}

``srs.bin`` (:mod:`zkmb.groth16.srs`) holds the powers of the one tau that every key of a
:func:`generate_keys` run shares; ``srs_sha256`` records which SRS each key was made with (an entry
whose value differs from the top-level ``srs.sha256`` is stale).  :func:`verify_key_dir` checks every
key against it (docs/setup.md, "Keys checked against an SRS").

:func:`load_keys` refuses a key whose digest differs from the circuit this code compiles (default) or,
with ``against="manifest"``, from the manifest entry.  The manifest lives next to the keys, so checking
against it only detects stale or mixed-up files; only the compiled circuit is an independent reference.
Keys made here come from a single-party setup (:func:`zkmb.groth16.setup.setup`); a verifiable
ceremony (``zkmb setup verify|contribute``) produces keys for the same digests.
"""

from __future__ import annotations

import json
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

__all__ = [
    "CIRCUITS",
    "MANIFEST_NAME",
    "KeyMismatch",
    "SetupResult",
    "compile_circuit",
    "generate_keys",
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
    **{f"q_{b}": _q(b) for b in (64, 128, 192, 320, 448)},
}
"""Every statement circuit with a key pair (SPEC §8: CO and PAD per suite, Q per size class)."""


def release_circuits() -> None:
    """Forget every compiled circuit (the statement modules cache them): the middlebox compiles the
    nine circuits once to check its keys (1.45 GB) and never needs them again."""
    import gc

    from .co import co_circuit
    from .pad import pad_circuit
    from .query import query_circuit

    for fn in (co_circuit, pad_circuit, query_circuit):
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


def _srs_record(path: Path, n_g1: int, max_domain: int) -> dict:
    from zkmb.groth16.srs import srs_digest

    return {
        "file": path.name,
        "sha256": srs_digest(path),
        "bytes": path.stat().st_size,
        "g1_powers": n_g1,
        "max_domain": max_domain,
    }


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
    from zkmb.groth16.r1cs_to_qap import domain_size_for
    from zkmb.groth16.setup import Trapdoor, random_tau, setup
    from zkmb.groth16.srs import srs_generate, srs_size_for_domain, write_srs

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
        results = []
        for name in wanted:
            cs = CIRCUITS[name]()
            pk_path, vk_path = key_paths(d, name)
            if manifest[name].get("digest") != cs.digest().hex():
                manifest[name] = {
                    **_entry(name, cs, pk_path, vk_path, pk_path.stat().st_mtime),
                    "srs_sha256": cur_srs,
                }
                _write_manifest(d, manifest)
            report(name, "skipped", time.perf_counter() - t_start[name])
            results.append(SetupResult(name, "skipped", manifest[name]))
        return results

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
    srs_rec = _srs_record(srs_path, srs.n_g1, srs.max_domain)
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
        del pk, vk
        manifest[name] = {**_entry(name, cs, pk_path, vk_path, time.time()), "srs_sha256": srs_rec["sha256"]}
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


def verify_key_dir(
    key_dir: str | os.PathLike,
    names: Iterable[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: Callable[[str, str, float], None] | None = None,
) -> dict:
    """Check each circuit's proving key in ``key_dir`` against the directory's ``srs.bin``.

    For every name (default: all of :data:`CIRCUITS`) the circuit is compiled here, ``NAME.pk`` is
    loaded (format, checksum, digest of the compiled circuit) and
    :func:`zkmb.groth16.keycheck.verify_key_srs` checks that every key element is what the circuit's
    QAP implies for the SRS's tau; ``srs.bin`` itself is read, validated and checked to be powers of
    one tau (:func:`zkmb.groth16.srs.verify_srs`) once.  Positive verdicts are cached under
    ``cache_dir`` (None: no cache).  Returns ``{name: KeyCheckReport}``; raises
    :class:`~zkmb.groth16.keycheck.KeyCheckFailed` (a key is not well formed) or :class:`KeyMismatch`
    (missing, unreadable, stale or mixed-up files), naming the circuit.
    ``progress(name, step, elapsed)`` gets steps ``check`` and ``ok`` (or ``cached``).
    """
    from zkmb.groth16.keycheck import KeyCheckFailed, _cached_key_check, _SrsSource
    from zkmb.groth16.srs import SrsCheckFailed

    wanted = _check_names(names)
    d = Path(key_dir)
    report = progress or (lambda name, step, elapsed: None)
    rec = read_manifest_srs(d)
    fname = rec.get("file") if rec is not None else SRS_NAME
    if not isinstance(fname, str) or fname != Path(fname).name or fname in ("", ".", ".."):
        raise KeyMismatch(f"{d}: the manifest names an SRS file outside the key directory ({fname!r})")
    srs_path = d / fname
    if not srs_path.exists():
        raise KeyMismatch(f"{d}: no {fname} (keys made before SRS support?): run `zkmb setup --force`")
    try:
        src = _SrsSource(srs_path, cache_dir)
    except OSError as e:
        raise KeyMismatch(f"cannot read {srs_path}: {e.strerror}") from e
    manifest = read_manifest(d)
    out = {}
    for name in wanted:
        t0 = time.perf_counter()
        report(name, "check", 0.0)
        recorded = manifest.get(name, {}).get("srs_sha256")
        if recorded is not None and recorded != src.digest:
            raise KeyMismatch(
                f"{name}: the key was made with another SRS than {srs_path} (stale): regenerate it "
                "(`zkmb setup --force`) or fetch the matching key directory"
            )
        pk_path, _ = key_paths(d, name)
        if not pk_path.exists():
            raise KeyMismatch(f"{name}: key file {pk_path} is missing")
        cs = CIRCUITS[name]()
        try:
            rep = _cached_key_check(pk_path, cs, src, cache_dir)
        except KeyCheckFailed as e:
            raise KeyCheckFailed(f"{name}: {e}") from e
        except SrsCheckFailed as e:
            raise KeyCheckFailed(f"{name}: {srs_path}: {e}") from e
        except KeyMismatch:
            raise
        except InvalidInput as e:
            raise KeyMismatch(f"{name}: {e}") from e
        except OSError as e:
            raise KeyMismatch(f"{name}: cannot read {pk_path}: {e.strerror}") from e
        out[name] = rep
        report(name, "cached" if "cached" in rep.timings else "ok", time.perf_counter() - t0)
    return out
