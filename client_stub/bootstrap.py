"""Bootstrap the stub from the middlebox's publishing endpoint (SPEC §6, §8; :mod:`zkmb.middlebox.publish`).

:func:`bootstrap` downloads ``/root``, ``/policy``, ``/keys/manifest.json`` and the key files it needs
into a state directory and returns ``(policy_path, key_dir)`` for the usual local loaders:

* the policy is refused unless :func:`zkmb.policy.load_policy` accepts it (its rules hash to the root
  its header states) *and* that root equals the one ``/root`` publishes; it is cached as
  ``STATE/policy/<root hex>.zkmbp`` (the tree cache of :func:`load_policy` is used as usual);
* only what the stub uses is downloaded (:func:`fetch_keys`): for each of its circuits (its suite's CO and
  PAD, its Q size classes) ``NAME.vk`` and the compact proving key ``NAME.pkc``
  (:mod:`zkmb.groth16.compact`: compressed points, no R1CS rows), and the compact SRS parts holding the
  powers its largest domain needs; every file must have the size and SHA-256 the manifest states or it
  is refused, an interrupted download resumes (HTTP Range), and progress (size, rate) goes to stderr;
* every proving key is decompressed once into ``NAME.pk`` (validating every point; a corrupt cache is
  rebuilt) and checked against the SRS: each key element must be what the circuit (compiled here)
  implies for the SRS's tau, δ ≠ 0, every G2 point in G2, and ``NAME.vk`` the verifying key inside it
  (SPEC §8; :func:`zkmb.circuits.keys.verify_key_dir`, verdict cached by file digests); no SRS or a
  failed check and the keys are refused;
* key files go to ``STATE/keys/<sha256 of the manifest, 16 hex>/``; :func:`zkmb.circuits.keys.load_keys`
  then checks the verifying keys against the circuits this code compiles (so the manifest's digests are
  independently confirmed).

:func:`check_rotation` asks ``/root`` whether the root changed; :func:`watch_rotation` polls it and
hands a newly verified policy to a callback (the stub swaps ``Listener.policy``/``ProvingUpstream.policy``).

Plain ``http``/``https`` with :mod:`urllib` (no proxies, no redirects), timeouts on every request and
size limits on every download.  The endpoint is not authenticated: what a bootstrap guarantees is that
the policy is consistent with the root the endpoint publishes and the keys are well formed for the
circuits (the manifest itself comes from the middlebox).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from zkmb.errors import InvalidInput

__all__ = [
    "BootstrapError",
    "ProgressLine",
    "MAX_KEY_BYTES",
    "MAX_POLICY_BYTES",
    "bootstrap",
    "check_keys",
    "check_rotation",
    "fetch_keys",
    "fetch_policy",
    "fetch_root",
    "stderr_progress",
    "watch_rotation",
]

log = logging.getLogger("zkmb.stub")

MAX_JSON_BYTES = 1 << 20
MAX_POLICY_BYTES = 1 << 30
MAX_KEY_BYTES = 8 << 30
TIMEOUT = 10.0
_CHUNK = 1 << 16
_ROOT = re.compile(r"^0x[0-9a-f]{64}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[str, int, int], None]
"""``progress(file_name, bytes_done, bytes_total)`` during a key download."""


class BootstrapError(InvalidInput):
    """The endpoint could not be reached, answered something malformed, or served a refused file."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise BootstrapError(f"{req.full_url}: redirect ({code}) refused")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _base(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BootstrapError(f"publish URL must be http(s)://HOST:PORT, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@contextlib.contextmanager
def _get(base: str, path: str, limit: int, timeout: float, headers: dict | None = None):
    """The open response to ``GET base+path`` with its announced length checked against ``limit``;
    yields ``(url, response, length)`` (``response.status`` is 200 or 206)."""
    url = base + path
    try:
        req = urllib.request.Request(url, headers={"Accept": "*/*", **(headers or {})})
        resp = _OPENER.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise BootstrapError(f"{url}: HTTP {e.code}", status=e.code) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise BootstrapError(f"{url}: {getattr(e, 'reason', e)}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        try:
            length = int(length) if length is not None else None
        except ValueError:
            raise BootstrapError(f"{url}: bad Content-Length {length!r}") from None
        if length is not None and not 0 <= length <= limit:
            raise BootstrapError(f"{url}: {length} bytes, more than the limit of {limit}")
        yield url, resp, length


def _fetch_bytes(base: str, path: str, limit: int, timeout: float) -> bytes:
    with _get(base, path, limit, timeout) as (url, resp, length):
        try:
            data = resp.read(limit + 1)
        except (OSError, ValueError) as e:
            raise BootstrapError(f"{url}: {e}") from None
    if len(data) > limit:
        raise BootstrapError(f"{url}: more than the limit of {limit} bytes")
    if length is not None and len(data) != length:
        raise BootstrapError(f"{url}: truncated ({len(data)} of {length} bytes)")
    return data


def _fetch_json(base: str, path: str, timeout: float):
    data = _fetch_bytes(base, path, MAX_JSON_BYTES, timeout)
    try:
        return json.loads(data), data
    except (ValueError, UnicodeDecodeError) as e:
        raise BootstrapError(f"{base}{path}: not JSON ({e})") from None


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def _fetch_file(
    base: str,
    path: str,
    dest: Path,
    size: int,
    sha256: str,
    timeout: float,
    progress: Progress | None,
) -> int:
    """Download ``base+path`` into ``dest``: exactly ``size`` bytes whose SHA-256 is ``sha256``, else
    refused (:class:`BootstrapError`).  Returns the bytes transferred.

    The bytes go to ``dest.part`` first and are renamed only once complete and verified.  A ``.part``
    left by an interrupted run is resumed with ``Range: bytes=N-`` (a ``206`` whose ``Content-Range``
    continues it exactly; a ``200`` starts over; a ``416`` drops it and starts over); if a resumed file's
    digest does not match, it is downloaded once more from the start before it is refused."""
    part = dest.with_name(f"{dest.name}.part")
    transferred = 0
    for attempt in range(2):
        have = part.stat().st_size if part.is_file() else 0
        if have > size:
            part.unlink()
            have = 0
        h = hashlib.sha256()
        if have:
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        try:
            resumed, n, h = _download(base, path, part, have, size, h, timeout, progress)
        except BootstrapError as e:
            if e.status == 416 and have and attempt == 0:  # the partial file is not a prefix: restart
                part.unlink(missing_ok=True)
                continue
            raise
        transferred += n
        if h.hexdigest() == sha256:
            os.replace(part, dest)
            return transferred
        part.unlink(missing_ok=True)
        if resumed and attempt == 0:
            log.warning(
                "%s%s: digest mismatch after resuming at %d bytes: fetching it again", base, path, resumed
            )
            continue
        raise BootstrapError(
            f"{base}{path}: sha256 {h.hexdigest()[:16]}... differs from the manifest's {sha256[:16]}...: "
            "refused (corrupted in transit, or not the file the middlebox publishes)"
        )
    raise BootstrapError(f"{base}{path}: could not resume the download")


def _download(base, path, part: Path, have: int, size: int, h, timeout: float, progress):
    """Append bytes ``have..size-1`` of ``base+path`` to ``part`` (all of it when ``have`` is 0 or the
    server ignores the range), updating the hash ``h`` of the part's bytes; returns ``(resumed_at,
    bytes_transferred, hash)``."""
    headers = {"Range": f"bytes={have}-"} if have else None
    if have >= size:
        return have, 0, h
    with _get(base, path, size, timeout, headers) as (url, resp, length):
        if have and resp.status == 206:
            got = resp.headers.get("Content-Range", "")
            m = _CONTENT_RANGE.match(got)
            if m is None or (int(m[1]), int(m[2]), int(m[3])) != (have, size - 1, size):
                raise BootstrapError(
                    f"{url}: Content-Range {got!r} does not continue the {have} of {size} bytes"
                )
        elif resp.status != 200 or (length is not None and length != size):
            raise BootstrapError(f"{url}: HTTP {resp.status}, {length} bytes; the manifest says {size}")
        elif have:  # the server sent the whole file: start over
            have = 0
            h = hashlib.sha256()
        done = start = have
        if progress is not None:
            progress(part.name[: -len(".part")], done, size)
        with open(part, "ab" if have else "wb") as f:
            while done < size:
                try:
                    chunk = resp.read(min(_CHUNK, size - done))
                except (OSError, ValueError) as e:
                    raise BootstrapError(
                        f"{url}: {e} after {done} of {size} bytes (run again to resume)"
                    ) from None
                if not chunk:
                    break
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(part.name[: -len(".part")], done, size)
        if done != size:
            raise BootstrapError(f"{url}: got {done} of {size} bytes (run again to resume)")
        if resp.read(1):
            raise BootstrapError(f"{url}: more than the manifest's {size} bytes")
    return start, done - start, h


class ProgressLine:
    """Download progress on stderr: on a terminal one updating line per file (size, done, rate, at most
    ten updates a second); otherwise a line every ``interval`` seconds.  Each file ends with a line
    giving its size, time and rate (and where it resumed).  Files below ``quiet_below`` bytes are
    not shown (:func:`fetch_keys` logs a summary of everything it fetched)."""

    def __init__(self, stream=None, interval: float = 5.0, quiet_below: int = 1 << 20):
        self.stream = stream
        self.interval = interval
        self.quiet_below = quiet_below
        """Files smaller than this (verifying keys, small SRS parts) show no progress."""
        self._files: dict[str, tuple[float, int, float]] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        if total < self.quiet_below:
            return
        stream = self.stream or sys.stderr
        now = time.monotonic()
        if name not in self._files or done < self._files[name][1]:
            self._files[name] = (now, done, 0.0)
        t0, start, last = self._files[name]
        tty = hasattr(stream, "isatty") and stream.isatty()
        if done < total and now - last < (0.1 if tty else self.interval):
            return
        self._files[name] = (t0, start, now)
        mib = 1 << 20
        rate = (done - start) / max(now - t0, 1e-6) / mib
        resumed = f", resumed at {start / mib:.1f} MiB" if start else ""
        if done >= total:
            line = (
                f"zkmb: fetched {name} {total / mib:.1f} MiB in {now - t0:.1f} s ({rate:.1f} MiB/s{resumed})"
            )
            stream.write(("\r" if tty else "") + line + "\n")
            del self._files[name]
        else:
            line = (
                f"zkmb: fetching {name} {done / mib:8.1f} / {total / mib:.1f} MiB  {rate:6.1f} MiB/s{resumed}"
            )
            stream.write(("\r" + line) if tty else line + "\n")
        stream.flush()


stderr_progress = ProgressLine()
"""The default download progress (see :class:`ProgressLine`)."""


# ---------------------------------------------------------------------------------------------- root


def fetch_root(publish_url: str, *, timeout: float = TIMEOUT) -> dict:
    """``GET /root`` as ``{"root": int, "version", "rules", "previous": int|None, "grace_s"}``; the roots
    must be canonical (0x + 64 hex digits) and below the scalar field order."""
    from zkmb.algebra.params import R

    base = _base(publish_url)
    data, _ = _fetch_json(base, "/root", timeout)

    def field(text, what):
        if not isinstance(text, str) or not _ROOT.match(text) or int(text, 16) >= R:
            raise BootstrapError(f"{base}/root: malformed {what} {text!r}")
        return int(text, 16)

    if not isinstance(data, dict):
        raise BootstrapError(f"{base}/root: not a JSON object")
    version, rules = data.get("version"), data.get("rules")
    if not isinstance(version, int) or not isinstance(rules, int):
        raise BootstrapError(f"{base}/root: malformed version or rules")
    grace = data.get("grace_s", 0.0)
    if not isinstance(grace, int | float):
        raise BootstrapError(f"{base}/root: malformed grace_s")
    prev = data.get("previous")
    return dict(
        root=field(data.get("root"), "root"),
        version=version,
        rules=rules,
        previous=None if prev is None else field(prev, "previous"),
        grace_s=float(grace),
    )


def check_rotation(publish_url: str, current_root: int, *, timeout: float = TIMEOUT) -> int | None:
    """The root ``/root`` publishes now if it differs from ``current_root``, else None."""
    root = fetch_root(publish_url, timeout=timeout)["root"]
    return root if root != current_root else None


# ---------------------------------------------------------------------------------------------- policy


def fetch_policy(
    publish_url: str, state_dir: str | os.PathLike, *, timeout: float = TIMEOUT, stats: dict | None = None
):
    """The published policy, verified: ``(path, Policy)``; the path is ``STATE/policy/<root>.zkmbp``.

    Uses the cached file when one exists for the published root (still re-loaded and checked).
    Raises :class:`BootstrapError` when the served file is refused by :func:`load_policy` or hashes to
    another root than ``/root`` publishes (after one re-read of ``/root``, in case it just rotated).
    """
    from zkmb.policy import load_policy

    base = _base(publish_url)
    pdir = Path(state_dir) / "policy"
    pdir.mkdir(parents=True, exist_ok=True)
    root = fetch_root(base, timeout=timeout)["root"]
    final = pdir / f"{root:064x}.zkmbp"
    if final.is_file():
        try:
            policy = load_policy(final)
            if policy.root == root:
                return final, policy
        except InvalidInput as e:
            log.warning("cached policy %s refused (%s): fetching it again", final, e)
    data = _fetch_bytes(base, "/policy", MAX_POLICY_BYTES, timeout)
    if stats is not None:
        stats["policy_bytes"] = len(data)
        stats["download_bytes"] = stats.get("download_bytes", 0) + len(data)
    tmp = pdir / f".{os.getpid()}.policy.part"
    try:
        tmp.write_bytes(data)
        try:
            policy = load_policy(tmp)
        except InvalidInput as e:
            raise BootstrapError(f"refused the policy served by {base}/policy: {e}") from None
        if policy.root != root:
            again = fetch_root(base, timeout=timeout)["root"]  # a rotation between the two requests
            if policy.root != again:
                raise BootstrapError(
                    f"refused the policy served by {base}/policy: its rules hash to root "
                    f"0x{policy.root:064x}, but {base}/root publishes 0x{again:064x}"
                )
            root = again
            final = pdir / f"{root:064x}.zkmbp"
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    policy.path = os.fspath(final)
    return final, policy


# ---------------------------------------------------------------------------------------------- keys


def _parse_manifest(url: str, data) -> tuple[dict[str, dict], dict | None]:
    """``({name: {"digest", "domain", "vk": (bytes, sha256), "pkc": (bytes, sha256) | None}}, srs record)``
    from the key directory's manifest (:mod:`zkmb.circuits.keys`); BootstrapError if malformed."""
    from zkmb.groth16.r1cs_to_qap import domain_size_for

    def size(v):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_KEY_BYTES:
            raise BootstrapError(f"{url}: bad file size {v!r}")
        return v

    def sha(v):
        if not isinstance(v, str) or not _SHA.match(v):
            raise BootstrapError(f"{url}: bad sha256 {v!r}")
        return v

    def count(v):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 28:
            raise BootstrapError(f"{url}: bad count {v!r}")
        return v

    if not isinstance(data, dict) or "circuits" not in data:
        raise BootstrapError(
            f"{url}: not a key manifest with digests (the middlebox's key directory has no manifest.json; "
            "run `zkmb setup` there)"
        )
    if data.get("format") != 1 or not isinstance(data["circuits"], dict):
        raise BootstrapError(f"{url}: unsupported manifest format {data.get('format')!r}")
    out: dict[str, dict] = {}
    for name, e in data["circuits"].items():
        if not isinstance(e, dict):
            raise BootstrapError(f"{url}: malformed entry {name!r}")
        vk_sha = e.get("vk_sha256")
        out[name] = {
            "digest": sha(e.get("digest")),
            "domain": domain_size_for(count(e.get("constraints")), count(e.get("public"))),
            "vk": (size(e.get("vk_bytes")), sha(vk_sha)) if vk_sha is not None else None,
            "pkc": (size(e.get("pkc_bytes")), sha(e.get("pkc_sha256"))) if "pkc_file" in e else None,
        }
        if "pkc_file" in e and e["pkc_file"] != f"{name}.pkc":
            raise BootstrapError(f"{url}: entry {name!r} names the compact key {e['pkc_file']!r}")
    srs = data.get("srs")
    if srs is not None and not isinstance(srs, dict):
        raise BootstrapError(f"{url}: malformed srs record")
    return out, srs


_PART_NAME = re.compile(r"^srs_\d{1,2}\.srsc$")


def _srs_files(url: str, srs: dict | None, n_max: int) -> list[tuple[str, int, str]]:
    """``[(file, bytes, sha256)]`` of the compact SRS parts needed for domains up to ``n_max``."""
    from zkmb.circuits.keys import srs_parts_for

    if srs is None:
        raise BootstrapError(
            f"{url}: the middlebox publishes no SRS, so its proving keys cannot be checked; refusing "
            "them (a malformed key can break zero knowledge, SPEC §8)"
        )
    try:
        parts = srs_parts_for(srs, n_max)
    except InvalidInput as e:
        raise BootstrapError(
            f"{url}: no usable compact SRS parts ({e}); the middlebox's key directory predates them: run "
            "`zkmb setup` there"
        ) from None
    out = []
    for p in parts:
        name, size, sha = p.get("file"), p.get("bytes"), p.get("sha256")
        if not isinstance(name, str) or not _PART_NAME.match(name):
            raise BootstrapError(f"{url}: bad SRS part name {name!r}")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_KEY_BYTES:
            raise BootstrapError(f"{url}: bad SRS part size {size!r}")
        if not isinstance(sha, str) or not _SHA.match(sha):
            raise BootstrapError(f"{url}: bad SRS part sha256 {sha!r}")
        out.append((name, size, sha))
    return out


def _have(path: Path, size: int, sha256: str) -> bool:
    """The file is already here, complete and with the manifest's digest."""
    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest() == sha256
    except OSError:
        return False


@contextlib.contextmanager
def _locked(directory: Path):
    """An exclusive lock on ``directory/.lock`` (two stubs bootstrapping into one state directory take
    turns instead of writing the same ``.part`` files)."""
    import fcntl

    with open(directory / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch_keys(
    publish_url: str,
    state_dir: str | os.PathLike,
    names: Sequence[str] | None = None,
    *,
    against: Literal["circuit", "manifest"] | None = "circuit",
    role: Literal["prover", "verifier"] = "verifier",
    timeout: float = TIMEOUT,
    progress: Progress | None = stderr_progress,
    verify: bool = True,
    stats: dict | None = None,
    optional: Sequence[str] = (),
) -> Path:
    """Download (or reuse) what the stub needs for ``names`` (default: every known circuit the manifest
    lists), and ``optional`` circuits where the manifest lists them (the batch PAD key), into
    ``STATE/keys/<manifest sha256[:16]>/`` and return that directory.

    Only the files these circuits use: ``NAME.vk``, the compact proving key ``NAME.pkc`` and the compact
    SRS parts holding the powers the largest of their domains needs (:func:`~zkmb.circuits.keys.
    srs_parts_for`).  Each file must have the size and SHA-256 the manifest states, or it is refused;
    interrupted downloads resume (HTTP Range).  Then the ``.vk`` files are checked against the circuits
    (``load_keys(dir, names, "verifier", against=against)``, skipped when ``against`` is None), each
    ``.pkc`` must carry its ``.vk``'s digest, and unless ``verify`` is False every proving key is
    decompressed and checked against the SRS (:func:`check_keys`; refused otherwise).  ``stats``, if
    given, receives ``download_bytes``, ``download_s``, ``files`` (transferred), ``bytes_needed`` (the
    sizes of every file this set needs), ``keys_s`` (decompression and checks) and, per circuit,
    ``decompress_s`` and ``keycheck_s`` (:func:`check_keys`).
    Raises :class:`BootstrapError` or :class:`~zkmb.circuits.keys.KeyMismatch`.
    """
    from zkmb.circuits.keys import (
        CIRCUITS,
        KeyMismatch,
        expand_compact_keys,
        key_file_header,
        key_paths,
        load_keys,
    )

    from zkmb.groth16.compact import compact_file_header
    from zkmb.groth16.keys import KIND_VK

    base = _base(publish_url)
    data, raw = _fetch_json(base, "/keys/manifest.json", timeout)
    murl = f"{base}/keys/manifest.json"
    table, srs = _parse_manifest(murl, data)
    if names is None:
        names = [n for n in table if n in CIRCUITS]
        if not names:
            raise BootstrapError(f"{murl}: lists no known circuit")
    missing = [n for n in names if n not in table or n not in CIRCUITS]
    if missing:
        raise BootstrapError(f"{murl}: no usable keys for {', '.join(missing)}")
    names = [*names, *(n for n in optional if n in table and n in CIRCUITS and n not in names)]
    files: list[tuple[str, int, str]] = []
    for name in names:
        e = table[name]
        if e["pkc"] is None or e["vk"] is None:
            raise BootstrapError(
                f"{murl}: {name} has no compact proving key or no digests in the manifest (a key directory "
                "made before them: run `zkmb setup` on the middlebox's keys)"
            )
        files += [(f"{name}.vk", *e["vk"]), (f"{name}.pkc", *e["pkc"])]
    if verify or srs is not None:
        try:
            files += _srs_files(murl, srs, max(table[n]["domain"] for n in names))
        except BootstrapError:
            if verify:
                raise
    kdir = Path(state_dir) / "keys" / hashlib.sha256(raw).hexdigest()[:16]
    kdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    got = n_files = 0
    with _locked(kdir):
        for fname, size, sha in files:
            if not _have(kdir / fname, size, sha):
                got += _fetch_file(base, f"/keys/{fname}", kdir / fname, size, sha, timeout, progress)
                n_files += 1
        t_dl = time.perf_counter() - t0
        if n_files:
            log.info(
                "bootstrap: fetched %d file(s), %.1f MiB in %.1f s (%s)",
                n_files,
                got / 2**20,
                t_dl,
                ", ".join(f for f, _, _ in files),
            )
        mpath = kdir / "manifest.json"
        if not mpath.is_file() or mpath.read_bytes() != raw:
            tmp = kdir / f".manifest.{os.getpid()}.part"
            tmp.write_bytes(raw)
            os.replace(tmp, mpath)
        for name in names:
            _, vk_path = key_paths(kdir, name)
            kvk, dvk = key_file_header(vk_path)
            try:
                dpk, _ = compact_file_header(kdir / f"{name}.pkc")
            except InvalidInput as e:
                raise KeyMismatch(f"{name}: {e}") from e
            if kvk != KIND_VK or dpk != dvk or dpk.hex() != table[name]["digest"]:
                raise KeyMismatch(f"{name}: the published .pkc and .vk are not a key pair for one circuit")
        if against is not None and role == "verifier":  # cheap: before the decompression
            load_keys(kdir, list(names), role, against=against)
        t1 = time.perf_counter()
        if verify:
            check_keys(kdir, names, Path(state_dir) / "keycheck", verbose=progress is not None, timings=stats)
        else:
            expand_compact_keys(kdir, names, progress=_say_keys if progress is not None else None)
        if against is not None and role == "prover":  # the decompressed caches
            load_keys(kdir, list(names), role, against=against)
    if stats is not None:
        stats.update(
            download_bytes=stats.get("download_bytes", 0) + got,
            download_s=t_dl,
            files=n_files,
            bytes_needed=sum(size for _, size, _ in files),
            keys_s=time.perf_counter() - t1,
        )
    return kdir


def _say_keys(name: str, step: str, elapsed: float) -> None:
    if step == "check":
        print(f"checking the {name} proving key against the SRS (once per key) ...", file=sys.stderr)
    elif step == "decompress":
        print(f"decompressing the {name} proving key (once per key) ...", file=sys.stderr)
    else:
        print(f"  {name}: key {step} ({elapsed:.1f} s)", file=sys.stderr)


def _say_detail(name: str, text: str) -> None:
    print(f"  {name}: {text}", file=sys.stderr)


def check_keys(
    key_dir: str | os.PathLike,
    names: Sequence[str],
    cache_dir,
    *,
    verbose: bool = True,
    timings: dict | None = None,
) -> None:
    """Refuse unless every proving key in ``key_dir`` is what its circuit implies for the directory's
    SRS and ``NAME.vk`` is the verifying key inside it (:func:`zkmb.circuits.keys.verify_key_dir`:
    compact keys are decompressed into their cache first; a positive verdict is cached by file digests
    under ``cache_dir``).  ``timings``, if given, receives ``{"decompress_s": {name: s}, "keycheck_s":
    {name: s}}``.  Raises :class:`~zkmb.groth16.keycheck.KeyCheckFailed` or ``KeyMismatch``."""
    from zkmb.circuits.keys import verify_key_dir

    t0 = time.perf_counter()
    started: dict[str, float] = {}

    def progress(name: str, step: str, elapsed: float) -> None:
        if timings is not None:
            if step == "decompressed":
                timings.setdefault("decompress_s", {})[name] = elapsed
            elif step == "check":
                started[name] = time.perf_counter()
            elif step in ("ok", "cached"):
                timings.setdefault("keycheck_s", {})[name] = time.perf_counter() - started.get(name, t0)
        if verbose:
            _say_keys(name, step, elapsed)

    verify_key_dir(
        key_dir, list(names), cache_dir, progress=progress, detail=_say_detail if verbose else None
    )
    log.info("proving keys checked against the SRS: %s (%.1f s)", ", ".join(names), time.perf_counter() - t0)


def bootstrap(
    publish_url: str,
    state_dir: str | os.PathLike,
    names: Sequence[str] | None = None,
    *,
    against: Literal["circuit", "manifest"] | None = "circuit",
    timeout: float = TIMEOUT,
    progress: Progress | None = stderr_progress,
    verify: bool = True,
    stats: dict | None = None,
    optional: Sequence[str] = (),
) -> tuple[Path, Path]:
    """``(policy_path, key_dir)`` from the endpoint at ``publish_url``: :func:`fetch_policy` then
    :func:`fetch_keys` (verifying keys checked ``against`` the circuits by default, and unless ``verify``
    is False every proving key checked against the published SRS: refused otherwise).  ``stats`` as for
    :func:`fetch_keys`, plus ``policy_bytes`` (0 when the cached policy was current)."""
    policy_path, _ = fetch_policy(publish_url, state_dir, timeout=timeout, stats=stats)
    key_dir = fetch_keys(
        publish_url,
        state_dir,
        names,
        against=against,
        timeout=timeout,
        progress=progress,
        verify=verify,
        stats=stats,
        optional=optional,
    )
    return policy_path, key_dir


async def watch_rotation(
    publish_url: str,
    state_dir: str | os.PathLike,
    current_root: int,
    on_policy: Callable[[object], None],
    *,
    interval: float = 30.0,
    timeout: float = TIMEOUT,
) -> None:
    """Poll ``/root`` every ``interval`` seconds; on a new root fetch and verify the policy and call
    ``on_policy(policy)`` (in the event loop).  Errors are logged and retried; runs until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            new = await loop.run_in_executor(
                None, lambda root=current_root: check_rotation(publish_url, root, timeout=timeout)
            )
            if new is None:
                continue
            path, policy = await loop.run_in_executor(
                None, lambda: fetch_policy(publish_url, state_dir, timeout=timeout)
            )
        except InvalidInput as e:
            log.warning("policy rotation check failed: %s", e)
            continue
        log.info("policy root rotated 0x%064x -> 0x%064x (%s)", current_root, policy.root, path)
        current_root = policy.root
        on_policy(policy)
