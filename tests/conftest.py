"""Project-wide test helpers."""

from __future__ import annotations

import os

import pytest


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless the requirement holds; under CI (ZKMB_REQUIRE_ALL=1) fail instead."""
    if condition:
        return
    if os.environ.get("ZKMB_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)
