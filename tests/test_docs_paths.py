"""Every repository path the documentation cites exists (docs/*.md, README.md, bench/README.md): the
packages are the folders ``zkmb/``, ``circuits/``, ``middlebox/`` and ``client_stub/`` (installed as
``zkmb.circuits`` etc.), so ``zkmb/middlebox/...`` or ``zkmb/circuits/`` name nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md", REPO / "bench" / "README.md"]
TOP = ("zkmb", "circuits", "middlebox", "client_stub", "tests", "scripts", "bench", "docs", ".ci")
ALT = "|".join(re.escape(t) for t in TOP)
# a file (with an extension), a folder (trailing /) or a glob; not a tag string like `zkmb/v2/...`
PATH = re.compile(r"`((?:" + ALT + r")/(?:[\w./-]*(?:\.\w+|/)|[\w./-]*\*[\w./*-]*))(?:::[\w.]*)?`")


def cited(doc: Path) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(doc.read_text().splitlines(), 1):
        for m in PATH.finditer(line):
            out.append((i, m.group(1).rstrip(".,;:")))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_cited_paths_exist(doc):
    missing = [f"{doc.name}:{i}: {p}" for i, p in cited(doc) if not list(REPO.glob(p.rstrip("/")))]
    assert not missing, "\n".join(missing)


def test_the_checker_sees_paths():
    assert "zkmb/proofchannel.py" in {p for _, p in cited(REPO / "docs" / "security.md")}
