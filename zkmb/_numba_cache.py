"""Point numba's on-disk cache at a folder keyed by the source of every numba module in zkmb.

numba keys each cached kernel on its own file only: after an edit to ``mont.py`` the cached code of
``msm.py`` (which inlines it) would silently stay stale.  Keying the whole cache on a digest of all
kernel sources (and the numba and Python versions) makes any kernel edit a clean recompile, and
keeps the cache out of the installed package folder (which may be read-only).

A user-set ``NUMBA_CACHE_DIR`` is respected.  Old cache folders beyond the newest few are pruned.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

_KEEP = 4
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
    """SHA-256 over the path and text of every zkmb source file that defines numba code."""
    h = hashlib.sha256()
    h.update(sys.version.encode())
    try:
        from importlib.metadata import version

        h.update(version("numba").encode())
    except Exception:  # noqa: BLE001 - metadata missing in odd installs: the sources still key it
        pass
    base = Path(__file__).resolve().parent.parent
    for path in _sources():
        data = path.read_bytes()
        if any(m in data for m in _MARKERS):
            try:
                name = str(path.relative_to(base))
            except ValueError:
                name = path.name
            h.update(name.encode() + b"\0" + data)
    return h.hexdigest()[:16]


def configure() -> Path | None:
    """Set NUMBA_CACHE_DIR (unless the user did) to ``$ZKMB_CACHE_DIR/numba/<digest>``."""
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
