"""zkmb: a zero-knowledge middlebox for encrypted DNS."""

import os as _os

# GNU OpenMP (numba's default threading layer here) spins at every barrier of a parallel region unless
# told otherwise.  On a machine whose cores are busy with other processes, a spinning worker burns the
# time slice its sibling needs, and a parallel NTT of 2^14 points took 99 ms instead of 12 ms (8x,
# two threads, other processes on both cores): the "proving slows ~7x under contention" of issue 15.
# PASSIVE makes idle workers sleep at once; it costs microseconds per region on an idle machine.  Set
# before the OpenMP runtime loads (at the first parallel kernel); a user's own setting is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._malloc import configure as _configure_malloc  # noqa: E402
from ._numba_cache import configure as _configure_numba_cache  # noqa: E402

__version__ = "0.1.0"

_configure_numba_cache()
_configure_malloc()
