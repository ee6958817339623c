"""Input sources: files and folders -> normalised events, and a Problem for everything unreadable.

Public interface used by the engine:
- `iter_inputs(paths)` -> InputFile | Problem (folders walked recursively, sorted by name);
- `read_events(path)` -> Event | Problem (format chosen from the content);
- `iter_events(paths)` -> both chained.
"""

from __future__ import annotations

from collections.abc import Iterator

from svchunt.model import Event, Problem
from svchunt.sources.inputs import InputFile, iter_inputs
from svchunt.sources.reader import read_events


def iter_events(paths: list[str]) -> Iterator[Event | Problem]:
    """Events and problems of every input file under `paths`, file by file in `iter_inputs` order."""
    for item in iter_inputs(paths):
        if isinstance(item, Problem):
            yield item
        else:
            yield from read_events(item.path)


__all__ = ["InputFile", "iter_events", "iter_inputs", "read_events"]
