"""glibc malloc settings for a long-running prover (the stub) or verifier (the middlebox).

A proof allocates and frees arrays of tens to hundreds of MB (witness, polynomial evaluations, MSM
buffers).  glibc's dynamic mmap threshold rises after such a free, so later large arrays come from the
heap, whose freed memory stays in the process; each thread that allocates also gets its own arena.
Measured on the stub's channel opening (compile the CO circuit, prove once): anonymous RSS 706 MB with
the defaults, 598 MB with a fixed 128 KiB threshold.  Fixed thresholds (which also switch the dynamic
adjustment off) and two arenas keep a stub's resident memory near what it uses.  Linux/glibc only;
``ZKMB_MALLOC=default`` leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


def configure() -> bool:
    """Apply the settings once per process; True when they were applied."""
    if not sys.platform.startswith("linux") or os.environ.get("ZKMB_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    ok = mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1
    ok &= mallopt(M_TRIM_THRESHOLD, 128 * 1024) == 1
    ok &= mallopt(M_ARENA_MAX, 2) == 1
    return bool(ok)
