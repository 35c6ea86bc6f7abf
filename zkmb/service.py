"""Process settings of the long-running services (``zkmb stub``, ``zkmb middlebox``, ``zkmb demo``).

Their event loop answers packets while worker threads prove or verify.  Those threads run Python
between their numba kernels (witness solving, the scheduler, batching), and a thread waiting for the
GIL (the loop, woken by a packet) gets it only when the running thread is asked to hand it over after
the switch interval: 5 ms by default in CPython, paid at every loop turn on a query's path (the stub
reads the query, sends the record, reads the answer; the middlebox relays both ways).  One query at a
time through an async-mode stub and middlebox, while look-ahead PAD proofs ran (live unbound, 2 cores,
four runs each): p50 4.0-4.5 ms with the default, 3.9-4.3 ms and no answer over 7.7 ms (10.7-12.8 ms
before) with 1 ms and the stub's ``async_reply_s`` (measured together).  The proving threads pay for
the extra hand-overs only when both hold Python at once (microseconds each).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time

__all__ = ["SWITCH_INTERVAL_S", "configure_service", "freeze_heap", "log_gc_pauses"]

SWITCH_INTERVAL_S = 0.001


def configure_service() -> None:
    """Set the GIL switch interval of a service process (keeps a shorter one a caller set)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


def freeze_heap() -> float:
    """Collect once, then move every object alive now to the permanent generation (``gc.freeze``):
    call once a service has loaded what it keeps for its life (modules, keys, circuits, the policy).

    Those are ~150,000 objects, and each full collection walked them all: ~50 ms holding the GIL,
    started by whatever allocation crossed the threshold, a query's proof included (one held it 99 ms
    right after a query in a live run).  Frozen objects are never collected (they live as long as the
    process anyway).  ``ZKMB_GC_FREEZE=0`` leaves the collector alone.  Returns the seconds it took."""
    if os.environ.get("ZKMB_GC_FREEZE") == "0":
        return 0.0
    t0 = time.perf_counter()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - t0


def log_gc_pauses(log: logging.Logger, min_s: float = 0.005) -> None:
    """Log (debug) every garbage collection that held the GIL for ``min_s`` or more."""
    started: list[float] = []

    def observe(phase: str, info: dict) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            dt = time.perf_counter() - started.pop()
            if dt >= min_s:
                log.debug(
                    "gc: a generation-%d collection held the GIL %.0f ms (%d objects freed)",
                    *(info["generation"], dt * 1e3, info["collected"]),
                )

    gc.callbacks.append(observe)
