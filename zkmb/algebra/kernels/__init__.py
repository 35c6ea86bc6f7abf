"""Numba kernels for BN254 (the fast backend). Import through :mod:`zkmb.algebra.fast`.

The kernels are compiled on first use and cached on disk (``cache=True``); the first start
on a machine therefore takes a while, which :func:`compile_notice` announces.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numba
from numba.core import event

_HERE = Path(__file__).resolve().parent
_announced = False


def cache_is_warm() -> bool:
    """True if numba has cached kernels for this package (next to the sources or in NUMBA_CACHE_DIR)."""
    dirs = [_HERE / "__pycache__"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs = [Path(os.environ["NUMBA_CACHE_DIR"])]
    return any(any(d.rglob("*.nbi")) for d in dirs if d.is_dir())


def compile_notice() -> None:
    """Tell the user, once per process, that the first compile of the kernels is running."""
    global _announced
    if _announced or cache_is_warm():
        return
    _announced = True
    print(
        "zkmb: compiling the numba kernels for this machine (first run only, about a minute; "
        "later starts load them from the cache)...",
        file=sys.stderr,
        flush=True,
    )
    # then a progress line at most every 10 s while kernels compile (numba's compile events)
    event.register("numba:compile", _CompileProgress())


class _CompileProgress(event.Listener):
    """Counts the kernels numba compiles (a cache miss; nested compiles count once) and says so."""

    every_s = 10.0

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.depth = self.done = 0

    def on_start(self, ev) -> None:
        self.depth += 1

    def on_end(self, ev) -> None:
        self.depth = max(0, self.depth - 1)
        if self.depth:
            return
        self.done += 1
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            print(
                f"zkmb: numba kernels: {self.done} compiled so far ({now - self.t0:.0f} s) ...",
                file=sys.stderr,
                flush=True,
            )


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Run the enclosed numba calls of this thread with at most ``n`` threads.

    For small inputs use 1: a parallel region on a busy machine can wait a scheduler tick (~10-20 ms)
    for a worker thread, where the work itself takes microseconds."""
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, old)))
    try:
        yield
    finally:
        numba.set_num_threads(old)
