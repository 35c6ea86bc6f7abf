"""Process settings of the long-running services (``zkmb stub``, ``zkmb middlebox``, ``zkmb demo``).

Their event loop answers packets while worker threads prove or verify.  Those threads run Python
between their numba kernels (witness solving, the scheduler, batching), and a thread waiting for the
GIL (the loop, woken by a packet) gets it only when the running thread is asked to hand it over after
the switch interval: 5 ms by default in CPython, paid at every loop turn on a query's path (the stub
reads the query, sends the record, reads the answer; the middlebox relays both ways).  One query at a
time through an async-mode stub and middlebox, while look-ahead PAD proofs ran (live unbound, 2 cores,
four runs each): p50 4.0-4.5 ms with the default, 3.9-4.3 ms and no answer over 7.7 ms (10.7-12.8 ms
before) with 1 ms.  The proving threads pay for the extra hand-overs only when both hold Python at
once (microseconds each).
"""

from __future__ import annotations

import sys

__all__ = ["SWITCH_INTERVAL_S", "configure_service"]

SWITCH_INTERVAL_S = 0.001


def configure_service() -> None:
    """Set the GIL switch interval of a service process (keeps a shorter one a caller set)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
