"""Counters of a watch run and the periodic stats line (events/s, lag, alerts, skipped records by reason)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from svchunt.correlate.timeparse import to_micros


class Stats:
    def __init__(self) -> None:
        self.started = time.time()
        self.events = 0
        self.alerts = 0
        self.duplicates_suppressed = 0
        self.flagged = 0  # read and evaluated with values changed to fit the event bounds (not skipped)
        self.late_events = 0  # older than the watermark when they arrived: detected alone, not correlated
        self.batches = 0
        self.skipped: Counter[str] = Counter()  # reason kind -> records
        self.refused: Counter[str] = Counter()  # HTTP 401/413..., connections dropped
        self.notices: deque[str] = deque(maxlen=50)  # rotation, truncation...: shown, not counted as skipped
        self.newest_event_ts: str | None = None
        self.watermark: str | None = None  # the correlator's: windows ending before it are decided
        self.dedupe_pruned = 0  # emitted alert ids forgotten after the dedupe retention
        self.last_batch_latency = 0.0  # seconds from the oldest read record of the batch to its commit
        self.queue_depth = 0
        self.backlog: dict[str, int] = {}  # input -> bytes or items not yet read
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._lock = threading.Lock()
        self.on_notice = None  # callable(text): the CLI logs notices as they happen

    def count_skipped(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.skipped[kind] += n

    def count_flagged(self, n: int = 1) -> None:
        with self._lock:
            self.flagged += n

    def count_late(self, n: int = 1) -> None:
        with self._lock:
            self.late_events += n

    def count_refused(self, kind: str) -> None:
        with self._lock:
            self.refused[kind] += 1

    def count_notice(self, text: str) -> None:
        with self._lock:
            self.notices.append(text)
        if self.on_notice is not None:
            self.on_notice(text)

    def batch_done(self, events: int, alerts: int, newest_ts: str | None, latency: float) -> None:
        with self._lock:
            self.events += events
            self.alerts += alerts
            self.batches += 1
            if newest_ts and (self.newest_event_ts is None or newest_ts > self.newest_event_ts):
                self.newest_event_ts = newest_ts
            self.last_batch_latency = latency
            self._rate.append((time.time(), self.events))

    def events_per_second(self) -> float:
        with self._lock:
            if len(self._rate) < 2:
                elapsed = time.time() - self.started
                return self.events / elapsed if elapsed > 0 else 0.0
            (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        lag = None
        if self.newest_event_ts:
            try:
                lag = round(time.time() - to_micros(self.newest_event_ts) / 1_000_000, 3)
            except ValueError:
                lag = None
        with self._lock:
            return {
                "uptime_s": round(time.time() - self.started, 1),
                "events": self.events,
                "events_per_s": None,
                "alerts": self.alerts,
                "duplicate_alerts_suppressed": self.duplicates_suppressed,
                "batches": self.batches,
                "skipped": sum(self.skipped.values()),
                "skipped_by_reason": dict(self.skipped),
                "flagged": self.flagged,
                "late_events": self.late_events,
                "refused": dict(self.refused),
                "notices": list(self.notices)[-5:],
                "newest_event": self.newest_event_ts,
                "watermark": self.watermark,
                "dedupe_pruned": self.dedupe_pruned,
                "event_time_lag_s": lag,  # wall clock - newest event time: how far behind the stream we are
                "batch_latency_s": round(self.last_batch_latency, 3),
                "queue_depth": self.queue_depth,
                "backlog": dict(self.backlog),
            }

    def line(self) -> dict[str, Any]:
        snap = self.snapshot()
        snap["events_per_s"] = round(self.events_per_second(), 1)
        return snap
