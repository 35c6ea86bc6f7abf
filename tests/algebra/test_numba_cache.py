"""numba's on-disk cache as zkmb guards it (:mod:`zkmb._numba_cache`): an entry compiled from other
sources than the ones on disk now is never loaded, and concurrent saves never leave an index that
points one signature at another's code.  Both happened on a development machine: a kernel compiled
lazily after the sources changed under a running process was filed under the new digest, and every
later process got an MSM with wrong results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

KERNEL = """
from numba import njit

@njit(cache=True)
def bump(x):
    return x + 1
"""

RUN = """
import sys
import zkmb._numba_cache as nc
sys.path.insert(0, {moddir!r})
nc.live_digest = lambda: {digest!r}  # what the kernel sources hash to in this process
import kmod
assert kmod.bump(41) == 42
print(sum(kmod.bump.stats.cache_hits.values()), sum(kmod.bump.stats.cache_misses.values()))
"""


def _run(tmp_path: Path, digest: str) -> tuple[int, int]:
    code = RUN.format(moddir=str(tmp_path / "mod"), digest=digest)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    hits, misses = map(int, r.stdout.split())
    return hits, misses


def test_an_entry_from_other_kernel_sources_is_not_loaded(tmp_path):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "kmod.py").write_text(KERNEL)
    assert _run(tmp_path, "sources-A") == (0, 1)  # compiled and saved
    assert _run(tmp_path, "sources-A") == (1, 0)  # same sources: loaded
    assert _run(tmp_path, "sources-B") == (0, 1)  # the kernel sources changed: compiled again
    assert _run(tmp_path, "sources-B") == (1, 0)


SAVER = """
import sys, time
import zkmb  # installs the guard
from numba.core.caching import IndexDataCacheFile
who, path, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start:
    pass
for i in range(n):
    f = IndexDataCacheFile(path, "k", ("stamp", 1))
    f.save((who, i), (who, i, b"x" * 2000))
"""


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_saves_keep_every_entry_with_its_own_data(tmp_path, round_):
    import time

    from numba.core.caching import IndexDataCacheFile

    import zkmb  # noqa: F401  (installs the guard in this process too)

    path = str(tmp_path / "cache")
    os.makedirs(path)
    n = 150
    start = time.time() + 1.5
    procs = [
        subprocess.Popen([sys.executable, "-c", SAVER, who, path, str(n), str(start)])
        for who in ("a", "b", "c")
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0
    f = IndexDataCacheFile(path, "k", ("stamp", 1))
    for who in ("a", "b", "c"):
        for i in range(n):
            assert f.load((who, i)) == (who, i, b"x" * 2000), (who, i)
