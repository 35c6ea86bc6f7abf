"""``zkmb bench all``: every suite in its own interpreter, collected into one JSON document.

Document shape (``schema`` 1)::

    {"schema": 1,
     "meta": {machine and software (see collect_meta), "quick", "areas", "started", "finished",
              "wall_s": {area: seconds}, "loadavg_start": [1, 5, 15 min]},
     "areas": {area: <that suite's `zkmb bench AREA --json` object> | {"error": "...", ...}}}

Each area runs as ``python -m zkmb.cli bench AREA --json [--quick]`` so that numba's threading state,
compiled kernels and memory start clean for every suite; a failing or timed-out area is recorded with
its error text and the run goes on.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

AREAS = ("algebra", "groth16", "policy", "statements", "middlebox", "e2e", "baseline", "keys")
AREA_TIMEOUT_S = 4 * 3600
REPO = Path(__file__).resolve().parents[2]


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        res = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - any failure means "unknown"
        return None


def collect_meta(quick: bool = False) -> dict[str, Any]:
    """Machine (CPU model, cores, RAM, OS), software versions, UTC date and git commit (+ dirty flag)."""
    cpu = platform.processor() or platform.machine()
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram_gib = None
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            ram_gib = round(int(line.split()[1]) / 2**20, 1)
    os_name = platform.platform()
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    cores = os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "cores_usable": usable,
        "ram_gib": ram_gib,
        "os": os_name,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "machine": f"{cpu}, {cores} cores, {ram_gib} GiB",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit or "unknown",
        "commit_short": commit[:7] if commit else "unknown",
        "dirty": dirty,
        "quick": quick,
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON object in the output")


def run_area_subprocess(area: str, quick: bool, timeout: float = AREA_TIMEOUT_S) -> dict[str, Any]:
    """``zkmb bench AREA --json`` in a fresh interpreter; its JSON, or ``{"error", "stderr_tail"}``."""
    cmd = [sys.executable, "-m", "zkmb.cli", "bench", area, "--json"] + (["--quick"] if quick else [])
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired as e:
        tail = (e.stderr or b"")[-2000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return {"error": f"timed out after {timeout:.0f} s", "stderr_tail": tail}
    if res.returncode != 0:
        return {"error": f"exit status {res.returncode}", "stderr_tail": res.stderr[-3000:]}
    try:
        return _last_json_line(res.stdout)
    except ValueError as e:
        return {"error": f"unreadable output: {e}", "stdout_tail": res.stdout[-2000:]}


def parse_areas(only: str | None) -> tuple[str, ...]:
    """``"a,b"`` -> the listed areas in the canonical order; None or empty -> all of :data:`AREAS`."""
    if not only:
        return AREAS
    wanted = [a.strip() for a in only.split(",") if a.strip()]
    unknown = [a for a in wanted if a not in AREAS]
    if unknown:
        raise InvalidInput(f"unknown benchmark area(s): {', '.join(unknown)}; known: {', '.join(AREAS)}")
    return tuple(a for a in AREAS if a in wanted)


def run_all(
    areas: Iterable[str] = AREAS,
    quick: bool = False,
    timeout: float = AREA_TIMEOUT_S,
    runner: Callable[[str, bool, float], dict[str, Any]] = run_area_subprocess,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``areas`` one after the other and return the combined document (see the module doc)."""
    say = progress or (lambda s: print(s, file=sys.stderr, flush=True))
    areas = tuple(areas)
    meta = collect_meta(quick)
    meta["areas"] = list(areas)
    meta["started"] = meta["date"]
    meta["wall_s"] = {}
    doc: dict[str, Any] = {"schema": 1, "meta": meta, "areas": {}}
    for area in areas:
        say(f"zkmb bench all: {area} ...")
        t0 = time.perf_counter()
        try:
            result = runner(area, quick, timeout)
        except Exception as e:  # noqa: BLE001 - one area's failure must not stop the others
            result = {"error": f"{type(e).__name__}: {e}"}
        wall = time.perf_counter() - t0
        meta["wall_s"][area] = round(wall, 1)
        doc["areas"][area] = result
        status = f"FAILED: {result['error']}" if "error" in result else "ok"
        say(f"zkmb bench all: {area} {status} ({wall:.0f} s)")
    meta["finished"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def write_json(doc: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the document (parent folders created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
