"""Micro-batches: take chunks from the input queue until `max_events` records or `max_delay` seconds after the
first one, whichever comes first. Big batches when the stream is fast (throughput), small and prompt ones
when it is slow (latency). The queue is bounded, so a slow pipeline makes the inputs wait (backpressure).
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field

from svchunt.watch.chunk import Chunk, Done


@dataclass
class Batch:
    chunks: list[Chunk] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # inputs that reached their end
    records: int = 0

    def __bool__(self) -> bool:
        return bool(self.chunks or self.done)


def next_batch(source: queue.Queue, max_events: int, max_delay: float, idle_wait: float = 0.2) -> Batch:
    """One batch; an empty one after `idle_wait` seconds with nothing in the queue."""
    batch = Batch()
    try:
        item = source.get(timeout=idle_wait)
    except queue.Empty:
        return batch
    deadline = time.monotonic() + max_delay
    while True:
        if isinstance(item, Done):
            batch.done.append(item.key)
        else:
            batch.chunks.append(item)
            batch.records += len(item.lines) + len(item.problems)
        if batch.records >= max_events:
            return batch
        remaining = deadline - time.monotonic()
        try:
            item = source.get_nowait() if remaining <= 0 else source.get(timeout=remaining)
        except queue.Empty:
            return batch  # past the deadline only what was already queued is taken
