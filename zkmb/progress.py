"""Progress of a long step on stderr, so that nothing sits silent for minutes (key generation, key
checks, the demo's setup).

On a terminal one status line is rewritten every second with the elapsed time; otherwise (a log, CI)
the step is printed when it starts and a ``... still running (N s)`` line follows every ``every``
seconds until it is done.
"""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Ticker"]


class Ticker:
    """``start(label)`` a step, ``done(text)`` when it ends (the next ``start`` may follow at once);
    ``close()`` stops the background thread.  Usable as a context manager."""

    def __init__(self, stream=None, *, every: float = 15.0, indent: str = "  "):
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.every, self.indent = every, indent
        self._label = ""
        self._since = 0.0
        self._said = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, label: str) -> None:
        with self._lock:
            self._label, self._since = label, time.perf_counter()
            self._said = self._since
            if not self.tty:
                self._write(f"{self.indent}{label} ...\n")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="zkmb-progress", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if not self._label:
                    continue
                now = time.perf_counter()
                elapsed = now - self._since
                if self.tty:
                    self._write(f"\r{self.indent}{self._label} ... {elapsed:4.0f} s")
                elif now - self._said >= self.every:
                    self._said = now
                    self._write(f"{self.indent}{self._label} ... still running ({elapsed:.0f} s)\n")

    def done(self, text: str) -> None:
        with self._lock:
            self._label = ""
            self._write(("\r\x1b[K" if self.tty else "") + f"{self.indent}{text}\n")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not stop the work it reports on
            pass
