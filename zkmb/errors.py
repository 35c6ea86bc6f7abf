"""The one exception root of zkmb and its direct children."""

from __future__ import annotations


class ZkmbError(Exception):
    """Root of every error zkmb raises on purpose."""


class InvalidInput(ZkmbError, ValueError):
    """Untrusted input failed validation (malformed encoding, out-of-range value, wrong size)."""


class InvalidPoint(InvalidInput):
    """A curve point is not on the curve, not in the prime-order subgroup, or not canonically encoded."""


class Terminated(KeyboardInterrupt):
    """SIGTERM while no service handler is installed (loading or checking keys, building a policy), or
    the demo stopped by SIGTERM: unwinds like Ctrl-C, so ``finally`` blocks run and spawned children
    are stopped; ``zkmb`` then exits with status 143.  Not an error."""


def describe_os_error(e: OSError, what: str = "") -> str:
    """One line for an OSError: ``what``, the file names and the reason (``strerror``), never a repr."""
    reason = e.strerror or str(e) or type(e).__name__
    names = [str(f) for f in (e.filename, e.filename2) if f is not None]
    return ": ".join(p for p in (what, " -> ".join(names), reason) if p)
