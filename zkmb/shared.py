"""Where the project's shared data lives (``../shared`` beside the repository, SPEC's blocklists and
test vectors), found relative to the repository, never through one machine's absolute path."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_dir", "shared_path"]


def shared_dir() -> Path | None:
    """The shared data folder: ``$ZKMB_SHARED`` if set, else ``../shared`` beside the repository this
    package was imported from, else ``../shared`` beside the current directory; None if none exists."""
    env = os.environ.get("ZKMB_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parent.parent.parent / "shared",  # an editable install / a checkout
        Path.cwd().parent / "shared",
        Path.cwd() / ".." / ".." / "shared",
    ]
    for c in candidates:
        if (c / "data").is_dir():
            return c.resolve()
    return None


def shared_path(*parts: str) -> Path | None:
    """``shared_dir() / parts`` when it exists, else None."""
    base = shared_dir()
    if base is None:
        return None
    p = base.joinpath(*parts)
    return p if p.exists() else None
