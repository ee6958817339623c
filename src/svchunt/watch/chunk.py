"""What inputs hand to the pipeline: raw JSON lines of one input, its position after them, and an ack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from svchunt.model import Problem


@dataclass(slots=True)
class Chunk:
    """Consecutive records of one input.

    `key` names the input in the state file; `position` is what the input needs to resume right after this
    chunk (JSON-able, None when the input cannot resume); `ack` runs once the batch holding the chunk is
    committed (Redis trim, HTTP response). `lines` are (line or sequence number, raw bytes).
    """

    key: str
    source: str
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    position: Any = None
    ack: Callable[[], None] | None = None
    received: float = 0.0  # time.time() when the input read it: for latency stats
    input: str = ""  # key of the input that handed it on (set by the pipeline's InputQueue)


@dataclass(slots=True, frozen=True)
class Done:
    key: str
