"""One big EVTX file read by several workers: its chunks split into ranges, each read on its own.

A range is seen by the parser as an EVTX file of its own (`ChunkWindow`): a clean file header written for
it, then the range's chunks read in place from the real file (no copy). Records keep their own numbers,
so events are the same as from a whole-file read. Only healthy files are split, where every announced
chunk has readable bounds, the record numbers run on without a gap up to the header's next record, and no
chunk lies past the announced ones; any other file is read whole, with the full accounting of
`evtx_reader`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

from svchunt.model import Event, Problem, RouteTest
from svchunt.sources import evtx_reader
from svchunt.sources.evtx_reader import CHUNK_MAGIC, CHUNK_SIZE, HEADER_BLOCK, ChunkSpan
from svchunt.sources.reader import with_flag_reports


@dataclass(frozen=True, slots=True)
class ChunkRange:
    path: str
    first: int  # chunk index, inclusive
    end: int  # chunk index, exclusive
    next_record: int  # the record number after the range's last chunk
    count: int  # chunks in the whole file

    @property
    def start(self) -> int:
        """Byte offset of the range's first chunk (results of a split file sort by it)."""
        return HEADER_BLOCK + self.first * CHUNK_SIZE

    @property
    def share(self) -> float:
        """The part of its file the range is (progress counts a range as that share of one file)."""
        return (self.end - self.first) / self.count


def evtx_chunk_ranges(path: str, parts: int) -> list[ChunkRange] | None:
    """`parts` ranges of chunks of a healthy EVTX file, or None when it should be read whole."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            spans, next_record = evtx_reader._layout(handle, size)  # no spans without the file magic
            if len(spans) < 2 or next_record is None or not _healthy(spans, next_record):
                return None
            if HEADER_BLOCK + len(spans) * CHUNK_SIZE > size or _chunk_past(handle, len(spans), size):
                return None
    except OSError:
        return None
    count = len(spans)
    parts = max(1, min(parts, count))
    bounds = [count * k // parts for k in range(parts)] + [count]
    return [
        ChunkRange(path, a, b, spans[b].first if b < count else next_record, count)  # type: ignore[arg-type]
        for a, b in zip(bounds, bounds[1:], strict=False)
        if a < b
    ]


def _healthy(spans: list[ChunkSpan], next_record: int) -> bool:
    if any(s.first is None or s.trouble or s.merged for s in spans):
        return False
    if any(b.first != a.last + 1 for a, b in zip(spans, spans[1:], strict=False)):  # type: ignore[operator]
        return False
    return next_record == spans[-1].last + 1  # type: ignore[operator]


def _chunk_past(handle: io.BufferedReader, count: int, size: int) -> bool:
    """A chunk in the space past the announced ones (the parser would read it in a whole-file read)."""
    read_at = evtx_reader._reader_at(handle)
    for index in range(count, (size - HEADER_BLOCK) // CHUNK_SIZE):
        if read_at(HEADER_BLOCK + index * CHUNK_SIZE, len(CHUNK_MAGIC)) == CHUNK_MAGIC:
            return True
    return False


class ChunkWindow(io.RawIOBase):
    """A range of an EVTX file's chunks as a file of its own: a header for them, then the chunks in place."""

    def __init__(self, span: ChunkRange) -> None:
        self._header = evtx_reader.file_header(span.end - span.first, span.next_record)
        self._fd = os.open(span.path, os.O_RDONLY)
        self._base = span.start - HEADER_BLOCK  # real offset = window offset + base, past the header
        self._size = HEADER_BLOCK + (span.end - span.first) * CHUNK_SIZE
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        if self._pos < HEADER_BLOCK:
            data = self._header[self._pos : self._pos + min(want, HEADER_BLOCK - self._pos)]
        else:
            data = os.pread(self._fd, want, self._pos + self._base)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def read_chunk_range(span: ChunkRange, route: RouteTest | None = None) -> Iterator[Event | Problem]:
    """Events and problems of the records in `span`'s chunks, as a whole-file read gives them (`route`: as
    `read_evtx`'s)."""
    try:
        window = io.BufferedReader(ChunkWindow(span), buffer_size=CHUNK_SIZE)
    except OSError as exc:
        yield Problem(span.path, "file", f"cannot read: {exc.strerror or exc}")
        return
    with window:
        # the window's own chunk headers give its spans; they are renumbered as the file's chunks
        spans, _ = evtx_reader._layout(window, HEADER_BLOCK + (span.end - span.first) * CHUNK_SIZE)
        for k, s in enumerate(spans):
            s.index = span.first + k
        window.seek(0)
        yield from with_flag_reports(
            evtx_reader._read_records(window, span.path, spans, span.next_record, chunk_offset=span.first, route=route)
        )
