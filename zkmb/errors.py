"""The one exception root of zkmb and its direct children."""

from __future__ import annotations


class ZkmbError(Exception):
    """Root of every error zkmb raises on purpose."""


class InvalidInput(ZkmbError, ValueError):
    """Untrusted input failed validation (malformed encoding, out-of-range value, wrong size)."""


class InvalidPoint(InvalidInput):
    """A curve point is not on the curve, not in the prime-order subgroup, or not canonically encoded."""
