"""The lifecycle every input shares: `start` (keep the queue, positions and stats, prepare, run a daemon
thread), `stop` (set a flag the thread watches), `join`, and a `_put` that gives up when stopped."""

from __future__ import annotations

import queue
import threading
from typing import Any

from svchunt.watch.stats import Stats


class ThreadedInput:
    key: str
    thread_name = "watch-input"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, out: queue.Queue, positions: dict[str, Any], stats: Stats) -> None:
        self._out = out
        self._positions = positions
        self._stats = stats
        self._prepare(positions)  # errors here (bind, connect) reach the caller, not a dying thread
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _prepare(self, positions: dict[str, Any]) -> None:
        """Work that must be done before the thread starts."""

    def _run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def _put(self, item: Any) -> None:
        """Hand on `item`, waiting while the queue is full (backpressure), unless asked to stop."""
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
