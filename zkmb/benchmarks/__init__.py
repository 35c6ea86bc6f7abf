"""Benchmark runs behind ``zkmb bench SUITE``: each suite returns one flat dict of medians."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidInput


def median_time(fn: Callable[[], Any], runs: int, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` over ``runs`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_info() -> dict[str, Any]:
    """What every result says about where and when it was measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(__file__),
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit or "unknown",
    }


def run_suite(name: str, quick: bool = False) -> dict[str, Any]:
    if name == "algebra":
        from .algebra import run
    elif name == "groth16":
        from .groth16 import run
    elif name == "policy":
        from .policy import run
    elif name == "statements":
        from .statements import run
    elif name == "middlebox":
        from .middlebox import run
    elif name == "e2e":
        from .e2e import run
    elif name == "baseline":
        from .baseline import run
    elif name == "keys":
        from .keys import run
    else:
        raise InvalidInput(f"unknown benchmark suite {name!r}")
    result = machine_info()
    result["suite"] = name
    result.update(run(quick=quick))
    return result
