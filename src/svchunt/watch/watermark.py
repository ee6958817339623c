"""The correlator's watermark in watch mode: one per input stream, the minimum over the active ones.

A stream is what one chunk key names (a followed file, a Redis list, stdin, an HTTP or syslog port). Its
watermark is the newest event time seen on it minus the lateness. The correlator's effective watermark is
the minimum over the streams that are still *active*, so an input that runs ahead in event time (a file
backlog) cannot make the events of a slower one (a trickling Redis list) late.

A stream stops holding the watermark back when it is *idle*: nothing of it pending (handed on by its input
and not yet processed) and nothing new for `idle_timeout` seconds of processing time; or when its input
ended. An input that has handed on nothing yet holds the watermark back for `idle_timeout` seconds from the
start, so a fast input cannot run ahead before a slow one has delivered its first records.

When no stream is active (nothing new anywhere for `idle_timeout`), all input is taken to be complete up to
the newest event time seen on any stream: the watermark jumps there, so a window that was only waiting for
the lateness closes. A window that ends after that newest event still needs event time to pass; while
everything stays quiet, event time is taken to follow the wall clock: after `quiet` seconds without anything
new the watermark is `newest + max(0, quiet - lateness)`. That is the watermark a live source (event time ~
wall clock) would give, so an event arriving then is late only when it is more than `lateness` old, as always;
a window waiting for traffic closes `lateness` seconds after its end at the latest.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from svchunt.watch.chunk import Chunk


@dataclass
class _Stream:
    input: str
    last_seen: float  # processing time (monotonic) of the last hand-off or processing of one of its chunks
    pending: int = 0  # chunks handed on and not yet processed
    newest_us: int | None = None  # newest event time seen, µs since the epoch


@dataclass
class _Input:
    started: float
    handed: bool = False  # has handed on a chunk: its streams speak for it from then on
    done: bool = False


class Watermarks:
    def __init__(self, lateness: float, idle_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        if lateness < 0 or idle_timeout <= 0:
            raise ValueError("lateness must be >= 0 and idle timeout > 0")
        self.lateness_us = None if math.isinf(lateness) else round(lateness * 1_000_000)
        self.lateness = lateness
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._streams: dict[str, _Stream] = {}
        self._inputs: dict[str, _Input] = {}
        self._lock = threading.Lock()

    def add_input(self, key: str) -> None:
        with self._lock:
            self._inputs.setdefault(key, _Input(self.clock()))

    def handed(self, chunk: Chunk, input_key: str) -> None:
        """An input handed on `chunk` (called on the input's thread)."""
        now = self.clock()
        chunk.input = input_key  # marks it as counted in `pending`
        with self._lock:
            stream = self._streams.get(chunk.key)
            if stream is None:
                stream = self._streams[chunk.key] = _Stream(input_key, now)
            stream.pending += 1
            stream.last_seen = now
            state = self._inputs.setdefault(input_key, _Input(now))
            state.handed = True

    def processed(self, chunk: Chunk, newest_us: int | None) -> None:
        """The pipeline processed `chunk`, whose newest event time is `newest_us`."""
        now = self.clock()
        with self._lock:
            stream = self._streams.get(chunk.key)
            if stream is None:  # handed on directly, not through an InputQueue (tests)
                stream = self._streams[chunk.key] = _Stream(chunk.input or chunk.key, now)
            if chunk.input:
                stream.pending = max(0, stream.pending - 1)
            stream.last_seen = now
            if newest_us is not None and (stream.newest_us is None or newest_us > stream.newest_us):
                stream.newest_us = newest_us

    def done(self, input_key: str) -> None:
        with self._lock:
            self._inputs.setdefault(input_key, _Input(self.clock())).done = True

    def watermark(self) -> int | None:
        """The effective watermark in µs, or None while it cannot move (or with an infinite lateness)."""
        if self.lateness_us is None:
            return None
        now = self.clock()
        idle = self.idle_timeout
        with self._lock:
            for state in self._inputs.values():
                if not state.done and not state.handed and now - state.started < idle:
                    return None  # an input not heard from yet: its events may be the oldest
            active: list[int] = []
            newest: int | None = None
            heard = -math.inf
            for stream in self._streams.values():
                heard = max(heard, stream.last_seen)
                if stream.newest_us is not None and (newest is None or stream.newest_us > newest):
                    newest = stream.newest_us
                state = self._inputs.get(stream.input)
                if state is not None and state.done:
                    continue
                if stream.pending or now - stream.last_seen < idle:
                    if stream.newest_us is not None:
                        active.append(stream.newest_us)
                    elif stream.pending:
                        return None  # its first records are still queued: their time is not known yet
                    # else: it only sent records without an event time so far; those cannot be late
            if active:
                return min(active) - self.lateness_us
            if newest is None:
                return None
            return newest + max(0, round((now - heard - self.lateness) * 1_000_000))

    def snapshot(self) -> dict[str, Any]:
        """Per stream: newest event time (µs), pending chunks, seconds since last heard of: for the stats."""
        now = self.clock()
        with self._lock:
            return {key: {"newest_us": s.newest_us, "pending": s.pending, "quiet_s": round(now - s.last_seen, 1)}
                    for key, s in self._streams.items()}


class InputQueue:
    """What one input puts its chunks into: the shared queue, noting each chunk as pending for its stream."""

    def __init__(self, target: queue.Queue, input_key: str, marks: Watermarks) -> None:
        self.target = target
        self.input_key = input_key
        self.marks = marks

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, Chunk) and not item.input:  # a retry after queue.Full is not a second chunk
            self.marks.handed(item, self.input_key)
        self.target.put(item, block, timeout)

    def qsize(self) -> int:
        return self.target.qsize()
