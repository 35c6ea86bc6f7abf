"""scripts/setup.sh and scripts/demo.sh in a scratch copy of the repository, with a stand-in ``.venv``
(no network, nothing installed): setup reinstalls only when pyproject.toml changed (or when asked),
and the demo script fails loudly when the setup or the installed command is broken."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for .venv/bin/python: logs pip installs, "imports" succeed unless BROKEN exists
case "$*" in
  *"pip install"*) echo "$*" >> "$(dirname "$0")/../../pip.log" ;;
  -c*) [ ! -e "$(dirname "$0")/../../BROKEN" ] || exit 1 ;;
esac
exit 0
"""


@pytest.fixture
def tree(tmp_path) -> Path:
    """scripts/ and pyproject.toml copied, a stand-in .venv, and node tools marked current."""
    (tmp_path / "scripts").mkdir()
    for name in ("setup.sh", "demo.sh"):
        shutil.copy(REPO / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    py = bin_dir / "python"
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    tools = tmp_path / ".tools"
    (tools / "node_modules").mkdir(parents=True)
    (tools / "package-lock.json").write_text("{}\n")
    (tools / "node_modules" / ".package-lock.json").write_text("{}\n")
    (tools / "node_modules" / ".lock-copy").write_text("{}\n")
    return tmp_path


def _bash(tree: Path, script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(tree / "scripts" / script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ZKMB_SETUP_FORCE": "0", **env},
    )


def _installs(tree: Path) -> int:
    log = tree / "pip.log"
    return sum("-e" in line for line in log.read_text().splitlines()) if log.exists() else 0


def test_setup_reinstalls_only_when_pyproject_changes(tree):
    r = _bash(tree, "setup.sh")
    assert r.returncode == 0, r.stderr
    assert _installs(tree) == 1 and "installing zkmb" in r.stderr

    again = _bash(tree, "setup.sh")
    assert again.returncode == 0, again.stderr
    assert _installs(tree) == 1, "nothing changed: no reinstall"
    assert again.stdout == "" and again.stderr == "", "nothing changed: nothing printed"

    with open(tree / "pyproject.toml", "a") as f:
        f.write("\n# a new dependency would go here\n")
    assert _bash(tree, "setup.sh").returncode == 0
    assert _installs(tree) == 2, "pyproject.toml changed: reinstalled"

    assert _bash(tree, "setup.sh", ZKMB_SETUP_FORCE="1").returncode == 0
    assert _installs(tree) == 3, "ZKMB_SETUP_FORCE=1 reinstalls"

    (tree / "BROKEN").write_text("")  # the stamp is current but zkmb no longer imports
    assert _bash(tree, "setup.sh").returncode != 0
    assert _installs(tree) == 4


def test_demo_script_fails_when_the_command_is_broken(tree):
    zkmb = tree / ".venv" / "bin" / "zkmb"
    zkmb.write_text("#!/bin/sh\necho 'ImportError: something broke' >&2\nexit 1\n")
    zkmb.chmod(0o755)
    r = _bash(tree, "demo.sh")
    assert r.returncode != 0
    assert "ImportError: something broke" in r.stderr
    assert "broken" in r.stderr and "not yet" not in r.stdout + r.stderr


def test_demo_script_fails_when_setup_fails(tree):
    (tree / "scripts" / "setup.sh").write_text("#!/usr/bin/env bash\necho 'setup: boom' >&2\nexit 1\n")
    r = _bash(tree, "demo.sh")
    assert r.returncode != 0
    assert "setup failed" in r.stderr


def test_demo_script_passes_the_demo_status_through(tree):
    zkmb = tree / ".venv" / "bin" / "zkmb"
    zkmb.write_text('#!/bin/sh\n[ "$2" = --help ] && exit 0\necho "demo: FAILED"\nexit 1\n')
    zkmb.chmod(0o755)
    _bash(tree, "setup.sh")
    r = _bash(tree, "demo.sh")
    assert r.returncode == 1 and "demo: FAILED" in r.stdout
