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


def shared_data(*parts: str):
    """A path under the shared data folder (``../shared/data/...`` beside the repository); skips, or
    fails in CI, when it is absent."""
    from zkmb.shared import shared_path

    p = shared_path("data", *parts)
    require(p is not None, f"shared data {'/'.join(parts)} not found (../shared beside the repository)")
    return p
