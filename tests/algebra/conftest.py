"""One suite, two implementations: every algebra test runs on the reference and the fast backend."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture(params=["ref", "fast"])
def backend(request):
    """The backend module under test (``zkmb.algebra.ref`` or ``zkmb.algebra.fast``)."""
    return importlib.import_module(f"zkmb.algebra.{request.param}")
