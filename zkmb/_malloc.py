"""glibc malloc settings for a long-running prover (the stub) or verifier (the middlebox).

A proof allocates and frees arrays of tens of KB to hundreds of MB (witness, polynomial evaluations,
MSM buffers).  With glibc's defaults the mmap threshold rises after such a free, so later large arrays
come from the heap, whose freed memory stays in the process; each thread that allocates also gets its
own arena.  A fixed 128 KiB threshold (the setting until issue 15) kept the stub's resident memory
lowest (CO: 598 MB against 706 MB anonymous RSS) but made every MSM and NTT buffer fresh pages from
the kernel: page faults and zeroing, a quarter of a query proof's CPU time (Q-64 on one thread: 122-127
ms, against 89-91 ms with the settings below; same session, this 2-core Xeon).

So: arrays up to 32 MiB (glibc's largest mmap threshold; every buffer of a query or PAD proof) come
from the heap and are reused from proof to proof, the heap keeps up to 64 MiB free at its top, and
there are two arenas.  Larger arrays (a channel opening's) are mapped and returned as before.
Measured with the live stub (three async bursts of 30 names, real unbound): RSS 958 MB against 870 MB,
peak 1,358 MB against 1,340 MB.  Linux/glibc only; ``ZKMB_MALLOC=default`` leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20


def configure() -> bool:
    """Apply the settings once per process; True when they were applied."""
    if not sys.platform.startswith("linux") or os.environ.get("ZKMB_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok &= mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    ok &= mallopt(M_ARENA_MAX, 2) == 1
    return bool(ok)
