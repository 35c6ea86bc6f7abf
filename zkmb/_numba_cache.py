"""Point numba's on-disk cache at a folder keyed by the source of every numba module in zkmb.

numba keys each cached kernel on its own file only: after an edit to ``mont.py`` the cached code of
``msm.py`` (which inlines it) would silently stay stale.  Keying the whole cache on a digest of all
kernel sources (and the numba and Python versions) makes any kernel edit a clean recompile, and
keeps the cache out of the installed package folder (which may be read-only).

A user-set ``NUMBA_CACHE_DIR`` is respected.  Old cache folders beyond the newest few are pruned.

Two more guards go into numba's cache files (:func:`guard_cache`, installed when numba's caching module
loads):

- every cache entry also records the kernel digest *at the time it is saved or loaded*, not only at
  process start: a process that compiles a kernel lazily after the sources changed under it (an
  upgrade or an edit while a service runs) used to file code compiled from the new sources under the
  old digest, where every later process loaded it.  That is how a machine ended up with an MSM that
  returned wrong points for one-point inputs;
- saving and loading an entry hold an exclusive ``flock`` on the cache folder: numba picks a data file
  name from the index it read, so two processes compiling the same kernel for different signatures at
  once (the demo starts the middlebox and the stub together on a cold cache) could each write its
  code under the same name and leave an index that points one signature at the other's code.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_KEEP = 4
_SALT = b"zkmb-numba-cache-v2"  # v2: entries carry the digest of their sources and are saved under a lock
_MARKERS = (b"@njit", b"@numba.njit", b"@intrinsic", b"@overload", b"cfunc(")


def _sources() -> list[Path]:
    roots = [Path(__file__).resolve().parent]
    try:  # the zkmb.circuits package lives in its own folder (package-dir mapping)
        import importlib.util

        spec = importlib.util.find_spec("zkmb.circuits")
        if spec and spec.submodule_search_locations:
            roots += [Path(p) for p in spec.submodule_search_locations]
    except (ImportError, ValueError):
        pass
    files = []
    for root in roots:
        files += sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def kernel_digest() -> str:
    """SHA-256 over the path and text of every zkmb source file that defines numba code (as they are
    on disk now; the file list and the hash are kept by :data:`live_digest` until a file changes)."""
    return live_digest()


def _kernel_files() -> list[Path]:
    """The zkmb source files that define numba code."""
    out = []
    for path in _sources():
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(m in data for m in _MARKERS):
            out.append(path)
    return out


def _digest_of(files: list[Path]) -> str:
    h = hashlib.sha256(_SALT)
    h.update(sys.version.encode())
    try:
        from importlib.metadata import version

        h.update(version("numba").encode())
    except Exception:  # noqa: BLE001 - metadata missing in odd installs: the sources still key it
        pass
    # the compiled MSM code differs with the IFMA switch (kernels/ifma.py picks its reduction at typing time)
    h.update(b"ZKMB_NO_IFMA=" + os.environ.get("ZKMB_NO_IFMA", "").encode())
    base = Path(__file__).resolve().parent.parent
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            data = b"<missing>"
        try:
            name = str(path.relative_to(base))
        except ValueError:
            name = path.name
        h.update(name.encode() + b"\0" + data)
    return h.hexdigest()[:16]


class _LiveDigest:
    """The kernel digest of the sources as they are on disk now; re-hashed only when a file's size or
    modification time changes (a stat of each kernel file per call: microseconds)."""

    def __init__(self) -> None:
        self._files: list[Path] | None = None
        self._key: tuple | None = None
        self._digest = ""

    def __call__(self) -> str:
        if self._files is None:
            self._files = _kernel_files()
        key = []
        for path in self._files:
            try:
                st = path.stat()
                key.append((st.st_mtime_ns, st.st_size))
            except OSError:
                key.append(None)
        key_t = tuple(key)
        if key_t != self._key:
            self._digest, self._key = _digest_of(self._files), key_t
        return self._digest


live_digest = _LiveDigest()


@contextmanager
def _locked(folder: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/.zkmb-cache.lock`` (no lock where the folder or flock is
    unavailable: numba's own behaviour)."""
    try:
        import fcntl

        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, ".zkmb-cache.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def guard_cache(caching) -> None:
    """Make numba's ``IndexDataCacheFile`` (module ``caching``) key each entry on the live kernel digest
    as well as its own file's stamp, and save or load entries under an exclusive lock (see above).
    Idempotent."""
    cls = caching.IndexDataCacheFile
    if getattr(cls, "_zkmb_guarded", False):
        return
    orig_init, orig_save, orig_load = cls.__init__, cls.save, cls.load

    def __init__(self, cache_path, filename_base, source_stamp):
        orig_init(self, cache_path, filename_base, source_stamp)
        self._zkmb_file_stamp = source_stamp

    def _stamp(self) -> None:
        self._source_stamp = (self._zkmb_file_stamp, live_digest())

    def save(self, key, data):
        with _locked(self._cache_path):
            _stamp(self)
            return orig_save(self, key, data)

    def load(self, key):
        with _locked(self._cache_path):
            _stamp(self)
            return orig_load(self, key)

    cls.__init__, cls.save, cls.load = __init__, save, load
    cls._zkmb_guarded = True


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Applies :func:`guard_cache` the moment ``numba.core.caching`` is imported (``import zkmb``
    does not import numba)."""

    def find_spec(self, name, path, target=None):
        if name != "numba.core.caching":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        inner = spec.loader

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return inner.create_module(spec)

            def exec_module(self, module):
                inner.exec_module(module)
                guard_cache(module)

        spec.loader = Loader()
        return spec


def _install_guard() -> None:
    caching = sys.modules.get("numba.core.caching")
    if caching is not None:
        guard_cache(caching)
    elif not any(isinstance(f, _GuardOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _GuardOnImport())


def configure() -> Path | None:
    """Set NUMBA_CACHE_DIR (unless the user did) to ``$ZKMB_CACHE_DIR/numba/<digest>``, and guard
    numba's cache files (:func:`guard_cache`) in either case."""
    _install_guard()
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    root = Path(os.environ.get("ZKMB_CACHE_DIR", Path.home() / ".cache" / "zkmb")) / "numba"
    target = root / kernel_digest()
    try:
        target.mkdir(parents=True, exist_ok=True)
        os.utime(target)
        old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for stale in old[:-_KEEP]:
            shutil.rmtree(stale, ignore_errors=True)
    except OSError:
        return None  # no writable cache folder: numba falls back to its own default
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    if "numba" in sys.modules:
        sys.modules["numba"].config.CACHE_DIR = str(target)
    return target
