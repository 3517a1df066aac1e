"""Progress on stderr: a live status line per component on a TTY, log lines elsewhere.

On a terminal each component gets one status line that is redrawn in place;
build logs are kept and shown only for a component that fails (or always with
--verbose). Off a terminal (CI logs) every log line is printed with a
`[component]` prefix so interleaved parallel builds stay readable.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import TextIO

KEEP_LOG_LINES = 60


class Reporter:
    def __init__(
        self, stream: TextIO | None = None, live: bool | None = None, verbose: bool = False
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.verbose = verbose
        self._lock = threading.Lock()
        self._order: list[str] = []
        self._status: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._logs: dict[str, collections.deque[str]] = {}
        self._drawn = 0
        self._width = 0

    def start(self, names: list[str]) -> None:
        with self._lock:
            self._order = list(names)
            self._width = max((len(n) for n in names), default=0)
            for name in names:
                self._status[name] = "waiting"
                self._logs[name] = collections.deque(maxlen=KEEP_LOG_LINES)
            self._redraw()

    def status(self, name: str, text: str) -> None:
        with self._lock:
            self._status[name] = text
            self._started.setdefault(name, time.monotonic())
            if self.live:
                self._redraw()
            else:
                self._print(f"[{name}] {text}")

    def log(self, name: str, line: str) -> None:
        with self._lock:
            self._logs.setdefault(name, collections.deque(maxlen=KEEP_LOG_LINES)).append(line)
            if not self.live or self.verbose:
                self._print(f"[{name}] {line}")

    def show_log_tail(self, name: str) -> None:
        """After a failure on a TTY, show what the hidden log said last."""
        if not self.live or self.verbose:
            return
        with self._lock:
            for line in self._logs.get(name, ()):
                self._print(f"[{name}] {line}")

    def info(self, message: str) -> None:
        with self._lock:
            self._print(message)

    def finish(self) -> None:
        with self._lock:
            self._drawn = 0

    # -- drawing (caller holds the lock) -----------------------------------

    def _print(self, text: str) -> None:
        if self.live and self._drawn:
            self._clear_block()
        self.stream.write(text + "\n")
        if self.live and self._order:
            self._draw_block()
        self.stream.flush()

    def _redraw(self) -> None:
        if not self.live:
            return
        self._clear_block()
        self._draw_block()
        self.stream.flush()

    def _clear_block(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw_block(self) -> None:
        now = time.monotonic()
        for name in self._order:
            elapsed = now - self._started.get(name, now)
            clock = f" ({elapsed:.0f}s)" if name in self._started else ""
            self.stream.write(f"  {name:<{self._width}}  {self._status[name]}{clock}\n")
        self._drawn = len(self._order)
