"""One big JSON-lines file read by several workers: split into byte ranges, each read on its own.

A range `[start, end)` holds the lines that *begin* inside it: its reader skips the line that began in the
previous range and reads on past `end` to the end of the line that began before it, so every line is read
exactly once. Line numbers stay exact: a range counts the line breaks before its first line (a fast
`bytes.count` over the prefix). Only plain files whose first line is a complete JSON value are split;
archives, EVTX and single JSON documents are read whole, as `read_events` reads them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from svchunt.model import Event, Problem
from svchunt.sources import json_reader
from svchunt.sources.reader import with_flag_reports

_COUNT_BLOCK = 8 << 20


@dataclass(frozen=True, slots=True)
class ByteRange:
    path: str
    start: int
    end: int


def json_lines_ranges(path: str, size: int, parts: int) -> list[ByteRange] | None:
    """`parts` ranges of a JSON-lines file, or None when the file is not plain JSON lines."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(json_reader.MAX_LINE_BYTES + 1)
    except OSError:
        return None
    # EVTX, gzip, zip and Parquet never start with `{`: only JSON is split
    start = json_reader._first_significant(first[:4096])
    if start < 0 or first[start : start + 1] != b"{":
        return None
    try:
        orjson.loads(first)
    except orjson.JSONDecodeError:
        return None  # a pretty-printed document: read whole
    step = max(size // parts, 1)
    bounds = [k * step for k in range(parts)] + [size]
    return [ByteRange(path, bounds[k], bounds[k + 1]) for k in range(parts) if bounds[k] < bounds[k + 1]]


class _Limited(io.RawIOBase):
    def __init__(self, raw: io.BufferedReader, length: int) -> None:
        self._raw = raw
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self._left <= 0:
            return 0
        data = self._raw.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def _line_breaks_before(handle: io.BufferedReader, offset: int) -> int:
    handle.seek(0)
    count = 0
    left = offset
    while left > 0:
        block = handle.read(min(_COUNT_BLOCK, left))
        if not block:
            break
        count += block.count(b"\n")
        left -= len(block)
    return count


def read_range(span: ByteRange) -> Iterator[Event | Problem]:
    """Events and problems of the lines that begin in `span`, numbered as in the whole file."""
    try:
        handle = open(span.path, "rb", buffering=1 << 20)  # noqa: SIM115 - closed below
    except OSError as exc:
        yield Problem(span.path, "file", f"cannot read: {exc.strerror or exc}")
        return
    with handle:
        first = _line_start(handle, span.start)
        last = _line_start(handle, span.end)
        if last <= first:
            return
        first_line = _line_breaks_before(handle, first) + 1
        handle.seek(first)
        stream = io.BufferedReader(_Limited(handle, last - first), buffer_size=1 << 20)
        yield from with_flag_reports(json_reader._lines(stream, span.path, first_line=first_line))


def _line_start(handle: io.BufferedReader, offset: int) -> int:
    """The offset of the first line that begins at or after `offset`."""
    if offset <= 0:
        return 0
    handle.seek(offset - 1)
    if handle.read(1) == b"\n":
        return offset
    handle.readline()
    return handle.tell()
