"""Bootstrap the stub from the middlebox's publishing endpoint (SPEC §6, §8; :mod:`zkmb.middlebox.publish`).

:func:`bootstrap` downloads ``/root``, ``/policy``, ``/keys/manifest.json`` and the key files it needs
into a state directory and returns ``(policy_path, key_dir)`` for the usual local loaders:

* the policy is refused unless :func:`zkmb.policy.load_policy` accepts it (its rules hash to the root
  its header states) *and* that root equals the one ``/root`` publishes; it is cached as
  ``STATE/policy/<root hex>.zkmbp`` (the tree cache of :func:`load_policy` is used as usual);
* every proving key is checked against the SRS the endpoint publishes (``/keys/srs.bin``): each key
  element must be what the circuit (compiled here) implies for the SRS's tau, δ ≠ 0 (SPEC §8;
  :func:`zkmb.circuits.keys.verify_key_dir`, verdict cached by key digest); no SRS or a failed check
  and the keys are refused;
* key files go to ``STATE/keys/<sha256 of the manifest, 16 hex>/`` and are downloaded only when the
  cached file does not match the manifest (size, and sha256 or the key file's circuit digest); the
  ``.pk`` and ``.vk`` of a circuit must carry the same digest (and the manifest's, if it states one),
  and :func:`zkmb.circuits.keys.load_keys` then checks them (default: the verifying keys against the
  circuits this code compiles, so the key directory's manifest digests are independently confirmed).

:func:`check_rotation` asks ``/root`` whether the root changed; :func:`watch_rotation` polls it and
hands a newly verified policy to a callback (the stub swaps ``Listener.policy``/``ProvingUpstream.policy``).

Plain ``http``/``https`` with :mod:`urllib` (no proxies, no redirects), timeouts on every request and
size limits on every download.  The endpoint is not authenticated: what a bootstrap guarantees is that
the policy is consistent with the root the endpoint publishes and the keys match the circuits.
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
def _get(base: str, path: str, limit: int, timeout: float):
    """The open response to ``GET base+path`` with its announced length checked against ``limit``."""
    url = base + path
    try:
        resp = _OPENER.open(urllib.request.Request(url, headers={"Accept": "*/*"}), timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise BootstrapError(f"{url}: HTTP {e.code}") from None
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


def _fetch_file(
    base: str, path: str, dest: Path, size: int, sha256: str | None, timeout: float, progress: Progress | None
) -> None:
    """Stream ``base+path`` into ``dest`` (atomically), exactly ``size`` bytes and, if given, that sha256."""
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    done = 0
    try:
        with _get(base, path, size, timeout) as (url, resp, length), open(tmp, "wb") as f:
            if length is not None and length != size:
                raise BootstrapError(f"{url}: {length} bytes, the manifest says {size}")
            if progress is not None:
                progress(dest.name, 0, size)
            while done <= size:
                try:
                    chunk = resp.read(min(_CHUNK, size + 1 - done))
                except (OSError, ValueError) as e:
                    raise BootstrapError(f"{url}: {e}") from None
                if not chunk:
                    break
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(dest.name, min(done, size), size)
            if done != size:
                raise BootstrapError(f"{url}: got {done} bytes, the manifest says {size}")
            if sha256 is not None and h.hexdigest() != sha256:
                raise BootstrapError(f"{url}: sha256 {h.hexdigest()[:16]}... differs from the manifest's")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def stderr_progress(name: str, done: int, total: int, _state: dict = {}) -> None:  # noqa: B006
    """Default progress: one updating line per file on stderr (at most ~10 updates a second)."""
    now = time.monotonic()
    if done not in (0, total) and now - _state.get(name, 0.0) < 0.1:
        return
    _state[name] = now
    mib = 1 << 20
    end = "\n" if done == total else ""
    sys.stderr.write(f"\rzkmb: fetching {name} {done / mib:8.1f} / {total / mib:.1f} MiB{end}")
    sys.stderr.flush()


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


def fetch_policy(publish_url: str, state_dir: str | os.PathLike, *, timeout: float = TIMEOUT):
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


def _parse_manifest(url: str, data) -> tuple[dict[str, dict], bool]:
    """``({name: {"digest": hex|None, "pk": (bytes, sha256|None), "vk": (...)}}, is_key_dir_format)``."""

    def size(v):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_KEY_BYTES:
            raise BootstrapError(f"{url}: bad key size {v!r}")
        return v

    def sha(v):
        if not isinstance(v, str) or not _SHA.match(v):
            raise BootstrapError(f"{url}: bad sha256 {v!r}")
        return v

    if not isinstance(data, dict):
        raise BootstrapError(f"{url}: not a JSON object")
    out: dict[str, dict] = {}
    if "circuits" in data:  # the key directory's own manifest (zkmb.circuits.keys)
        if data.get("format") != 1 or not isinstance(data["circuits"], dict):
            raise BootstrapError(f"{url}: unsupported manifest format {data.get('format')!r}")
        for name, e in data["circuits"].items():
            if not isinstance(e, dict):
                raise BootstrapError(f"{url}: malformed entry {name!r}")
            out[name] = {
                "digest": sha(e.get("digest")),
                "pk": (size(e.get("pk_bytes")), None),
                "vk": (size(e.get("vk_bytes")), None),
            }
        return out, True
    for name, e in data.items():  # the table the publisher computes: {name: {"vk": {bytes, sha256}, ...}}
        if not isinstance(e, dict) or not all(isinstance(e.get(x), dict) for x in ("pk", "vk")):
            continue  # a circuit published without both files is not usable
        out[name] = {
            "digest": None,
            **{x: (size(e[x].get("bytes")), sha(e[x].get("sha256"))) for x in ("pk", "vk")},
        }
    return out, False


def _parse_srs(url: str, data) -> tuple[int, str] | None:
    """The manifest's SRS record as ``(bytes, sha256)`` (None when the endpoint publishes none)."""
    rec = data.get("srs") if isinstance(data, dict) else None
    if rec is None:
        return None
    if not isinstance(rec, dict) or rec.get("file") != "srs.bin":
        raise BootstrapError(f"{url}: malformed srs record")
    size, sha = rec.get("bytes"), rec.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_KEY_BYTES:
        raise BootstrapError(f"{url}: bad srs size {size!r}")
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise BootstrapError(f"{url}: bad srs sha256 {sha!r}")
    return size, sha


def _file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _cached_ok(path: Path, size: int, sha256: str | None, kind: int, digest: str | None) -> bool:
    from zkmb.circuits.keys import KeyMismatch, key_file_header

    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        if sha256 is not None:
            with open(path, "rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest() == sha256
        k, d = key_file_header(path)
        return k == kind and (digest is None or d.hex() == digest)
    except (OSError, KeyMismatch):
        return False


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
) -> Path:
    """Download (or reuse) the key files of ``names`` (default: every known circuit the manifest lists)
    into ``STATE/keys/<manifest sha256[:16]>/`` with a format-1 ``manifest.json``; returns that directory.

    Each circuit's ``.pk`` and ``.vk`` must carry the same circuit digest (and the manifest's, if it
    states one); then ``load_keys(dir, names, role, against=against)`` fully checks them (skipped when
    ``against`` is None).  Raises :class:`BootstrapError` or :class:`~zkmb.circuits.keys.KeyMismatch`.
    """
    from zkmb.circuits.keys import CIRCUITS, KeyMismatch, key_file_header, key_paths, load_keys

    from zkmb.groth16.keys import KIND_PK, KIND_VK

    base = _base(publish_url)
    data, raw = _fetch_json(base, "/keys/manifest.json", timeout)
    murl = f"{base}/keys/manifest.json"
    table, own_format = _parse_manifest(murl, data)
    srs = _parse_srs(murl, data)
    if names is None:
        names = [n for n in table if n in CIRCUITS]
        if not names:
            raise BootstrapError(f"{murl}: lists no known circuit")
    missing = [n for n in names if n not in table or n not in CIRCUITS]
    if missing:
        raise BootstrapError(f"{murl}: no usable keys for {', '.join(missing)}")
    kdir = Path(state_dir) / "keys" / hashlib.sha256(raw).hexdigest()[:16]
    kdir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name in names:
        e = table[name]
        pk_path, vk_path = key_paths(kdir, name)
        for ext, path, kind in (("vk", vk_path, KIND_VK), ("pk", pk_path, KIND_PK)):
            size, sha = e[ext]
            if not _cached_ok(path, size, sha, kind, e["digest"]):
                _fetch_file(base, f"/keys/{name}.{ext}", path, size, sha, timeout, progress)
        (kpk, dpk), (kvk, dvk) = key_file_header(pk_path), key_file_header(vk_path)
        if (kpk, kvk) != (KIND_PK, KIND_VK) or dpk != dvk or (e["digest"] not in (None, dpk.hex())):
            raise KeyMismatch(f"{name}: the published .pk and .vk are not a key pair for one circuit")
        entries[name] = {
            "digest": dpk.hex(),
            "pk_file": pk_path.name,
            "pk_bytes": e["pk"][0],
            "vk_file": vk_path.name,
            "vk_bytes": e["vk"][0],
        }
    if srs is not None:  # the SRS every proving key is checked against (SPEC §8)
        srs_path = kdir / "srs.bin"
        if not (
            srs_path.is_file() and srs_path.stat().st_size == srs[0] and _file_sha256(srs_path) == srs[1]
        ):
            _fetch_file(base, "/keys/srs.bin", srs_path, srs[0], srs[1], timeout, progress)
    mpath = kdir / "manifest.json"
    if own_format:
        body = raw
    else:
        old = {}
        with contextlib.suppress(OSError, ValueError, KeyError, AttributeError):
            old = json.loads(mpath.read_text())["circuits"]
        doc: dict = {"format": 1, "circuits": {**old, **entries}}
        if srs is not None:
            doc["srs"] = {"file": "srs.bin", "bytes": srs[0], "sha256": srs[1]}
        body = json.dumps(doc, indent=1, sort_keys=True).encode()
    if not mpath.is_file() or mpath.read_bytes() != body:
        tmp = kdir / f".manifest.{os.getpid()}.part"
        tmp.write_bytes(body)
        os.replace(tmp, mpath)
    if against is not None:
        load_keys(kdir, list(names), role, against=against)
    if verify:
        if srs is None:
            raise BootstrapError(
                f"{murl}: the middlebox publishes no SRS, so its proving keys cannot be checked; refusing "
                "them (a malformed key can break zero knowledge, SPEC §8)"
            )
        check_keys(kdir, names, Path(state_dir) / "keycheck", verbose=progress is not None)
    return kdir


def check_keys(key_dir: str | os.PathLike, names: Sequence[str], cache_dir, *, verbose: bool = True) -> None:
    """Refuse unless every proving key in ``key_dir`` is what its circuit implies for the directory's
    SRS (:func:`zkmb.circuits.keys.verify_key_dir`; a positive verdict is cached by key digest under
    ``cache_dir``).  Raises :class:`~zkmb.groth16.keycheck.KeyCheckFailed` or ``KeyMismatch``."""
    from zkmb.circuits.keys import verify_key_dir

    def say(name: str, step: str, elapsed: float) -> None:
        if step == "check":
            print(f"checking the {name} proving key against the SRS (once per key) ...", file=sys.stderr)
        else:
            print(f"  {name}: key {step} ({elapsed:.1f} s)", file=sys.stderr)

    t0 = time.perf_counter()
    verify_key_dir(key_dir, list(names), cache_dir, progress=say if verbose else None)
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
) -> tuple[Path, Path]:
    """``(policy_path, key_dir)`` from the endpoint at ``publish_url``: :func:`fetch_policy` then
    :func:`fetch_keys` (verifying keys checked ``against`` the circuits by default, and unless ``verify``
    is False every proving key checked against the published SRS: refused otherwise)."""
    policy_path, _ = fetch_policy(publish_url, state_dir, timeout=timeout)
    key_dir = fetch_keys(
        publish_url, state_dir, names, against=against, timeout=timeout, progress=progress, verify=verify
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
