"""HTTP webhook: alerts are first appended to a disk queue (a JSON-lines spool), then POSTed by a sender
thread with exponential backoff; a failed POST leaves them in the spool, so nothing is dropped when the
receiver is down, and they survive a restart. The spool has the JSON-lines sink's crash handling.

Each POST is `{"alerts": [...]}` (at most `batch` alerts). Delivery is at least once: a receiver that
saw a POST whose response got lost sees it again, so it should drop repeats by `alert_id`.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from typing import Any

from svchunt.model import Alert
from svchunt.watch.sink_jsonl import JsonlSink

COMPACT_AT = 8 << 20


class WebhookSink:
    def __init__(
        self, url: str, queue_dir: str, token: str | None = None, timeout: float = 10.0, batch: int = 500,
        max_backoff: float = 60.0, log=None,
    ) -> None:
        self.url, self.token, self.timeout, self.batch, self.max_backoff = url, token, timeout, batch, max_backoff
        os.makedirs(queue_dir, exist_ok=True)
        self.spool = JsonlSink(os.path.join(queue_dir, "spool.jsonl"))
        self.offset_path = os.path.join(queue_dir, "sent.offset")
        self.name = f"webhook:{url}"
        self.log = log or (lambda text: None)
        self.sent = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, saved: dict[str, Any] | None) -> tuple[set[str], str | None]:
        result = self.spool.open(saved)
        self._thread = threading.Thread(target=self._run, name="watch-webhook", daemon=True)
        self._thread.start()
        return result

    def write(self, alerts: list[Alert]) -> None:
        with self._lock:
            self.spool.write(alerts)
        if alerts:
            self._wake.set()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self.spool.state()

    def pending(self) -> int:
        with self._lock:
            return self.spool.state()["size"] - self._offset()

    def close(self, drain_seconds: float = 5.0) -> None:
        self._wake.set()
        if drain_seconds > 0 and self._thread:
            end = threading.Event()
            for _ in range(int(drain_seconds * 10)):
                if self.pending() <= 0:
                    break
                end.wait(0.1)
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(self.timeout + 1)
        self.spool.close()

    def compact(self) -> None:
        """Called by the pipeline right after a commit: empty the spool once everything in it was sent."""
        with self._lock:
            size = self.spool.state()["size"]
            if size >= COMPACT_AT and self._offset() >= size:
                self.spool._fh.truncate(0)
                self.spool._fh.seek(0)
                self._save_offset(0)

    def _offset(self) -> int:
        try:
            with open(self.offset_path, "rb") as fh:
                return int(fh.read() or 0)
        except (OSError, ValueError):
            return 0

    def _save_offset(self, offset: int) -> None:
        tmp = self.offset_path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(str(offset).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.offset_path)

    def _next(self) -> tuple[list[bytes], int]:
        with self._lock:
            offset = self._offset()
            size = self.spool.state()["size"]
            if offset >= size:
                return [], offset
            with open(self.spool.path, "rb") as fh:
                fh.seek(offset)
                lines: list[bytes] = []
                for line in fh:
                    if not line.endswith(b"\n") or len(lines) >= self.batch:
                        break
                    lines.append(line)
                    offset += len(line)
        return lines, offset

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            lines, end = self._next()
            if not lines:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._post(lines)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                self.failures += 1
                self.log(f"webhook {self.url}: {exc}; {len(lines)} alert(s) stay queued, retry in {backoff:.1f}s")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.5
            with self._lock:
                self._save_offset(end)
            self.sent += len(lines)

    def _post(self, lines: list[bytes]) -> None:
        body = b'{"alerts":[' + b",".join(line.rstrip(b"\n") for line in lines) + b"]}"
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - user-given URL
            if not 200 <= response.status < 300:
                raise ValueError(f"HTTP {response.status}")
