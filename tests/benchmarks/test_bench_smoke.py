"""The middlebox and e2e benchmark suites exist and are reachable from ``zkmb bench`` (no timing here)."""

from __future__ import annotations

import inspect

import pytest

from zkmb.benchmarks import e2e, middlebox, run_suite
from zkmb.cli import BENCH_SUITES
from zkmb.errors import InvalidInput


@pytest.mark.parametrize("name,module", [("middlebox", middlebox), ("e2e", e2e)])
def test_suite_registered(name, module):
    assert name in BENCH_SUITES
    assert callable(module.run)
    assert list(inspect.signature(module.run).parameters) == ["quick"]
    src = inspect.getsource(run_suite)
    assert f'name == "{name}"' in src and f"from .{name} import run" in src


def test_unknown_suite_is_refused():
    with pytest.raises(InvalidInput):
        run_suite("no-such-suite")


def test_e2e_names_distinct_and_two_shapes():
    names = e2e.bench_names(30, "x")
    assert len(set(names)) == 30
    assert any(len(n) < 30 for n in names) and any(len(n) > 40 for n in names)


def test_quantile_helpers():
    xs = [0.0, 1.0, 2.0, 3.0, 4.0]
    for mod in (middlebox, e2e):
        assert mod._quantile(xs, 0.5) == 2.0
        assert mod._quantile(xs, 0.0) == 0.0 and mod._quantile(xs, 1.0) == 4.0


def test_bridge_pps_skips_with_a_reason(monkeypatch):
    """Not root: no namespaces touched, ``bridge_skipped`` says why (the measurement itself needs root and
    the netns tests' namespace names, so it is exercised by ``zkmb bench middlebox`` run alone)."""
    from zkmb.benchmarks import bridge_pps

    monkeypatch.setattr(bridge_pps.os, "geteuid", lambda: 1000)
    assert bridge_pps.measure(0.1) == {"bridge_skipped": "needs root (network namespaces, iptables)"}
