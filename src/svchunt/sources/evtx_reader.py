"""EVTX files through the `evtx` package, with exact accounting of records it could not return.

The parser raises a RuntimeError for a broken record or chunk and then carries on, but it may also drop
the rest of a damaged chunk, or a truncated chunk, without any error. So the records that should be there
are taken from the file's own headers (each chunk header names its first and last record number; a chunk
whose header is gone is bounded by its neighbours and the file header's next record number) and every
expected record that did not come out is reported as one Problem "record N". Counts of skipped records
are therefore exact whenever the headers allow it; a chunk with no usable bounds gives one Problem
"chunk K".

A file cut short (a copy interrupted, a collection that hit a size limit) usually ends inside the last
chunk's unused space; the parser would drop that whole chunk, so such a file is parsed from a copy
padded with zeros to the chunk boundary, and every record that is really there comes out.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import evtx
import orjson

from svchunt.model import FLAGS_FIELD, Event, Problem, RouteTest, Unrouted
from svchunt.normalise.bounds import INT64_MAX
from svchunt.normalise.shapes import NotAnEvent, from_nested, route_record

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
HEADER_BLOCK = 4096
CHUNK_SIZE = 65536
# A record takes at least 24 bytes of a 64 KiB chunk: larger bounds mean a garbled header.
MAX_RECORDS_PER_CHUNK = CHUNK_SIZE // 24
# Stop when the parser only fails for this long: it is not moving forward any more.
MAX_CONSECUTIVE_ERRORS = 10_000
# Worker threads of the Rust parser (0 = as many as cores). Chunks are decoded in parallel.
PARSER_THREADS = 0
# A truncated file up to this size is padded in memory, a larger one in a temporary copy.
PAD_IN_MEMORY = 256 << 20

_UNREADABLE = "not a readable EVTX file"
_RECORD_ERROR = re.compile(r"record number (\d+)")
_CHUNK_ERROR = re.compile(r"chunk number (\d+)")


@dataclass(slots=True)
class ChunkSpan:
    index: int
    first: int | None  # record numbers, None when the header does not tell
    last: int | None
    trouble: str | None = None  # why the chunk is incomplete, when the file itself says so
    merged: bool = False  # its records are counted with the previous unreadable chunk


def chunk_layout(path: str) -> tuple[list[ChunkSpan], int | None]:
    """Chunks the file header announces, with their record-number bounds; and the next record number."""
    with open(path, "rb") as handle:
        return _layout(handle, os.fstat(handle.fileno()).st_size)


def _reader_at(handle: io.IOBase) -> Callable[[int, int], bytes]:
    """`read(offset, n)` on `handle`: one pread on a file of the disk (no seek, and no buffer filled for a
    40-byte chunk header), else a seek and a read (a chunk window, an in-memory copy)."""
    if isinstance(getattr(handle, "raw", handle), io.FileIO):  # not a buffered chunk window
        fd = handle.fileno()
        return lambda offset, n: os.pread(fd, n, offset)

    def read(offset: int, n: int) -> bytes:
        handle.seek(offset)
        return handle.read(n)

    return read


def _layout(handle: io.IOBase, size: int) -> tuple[list[ChunkSpan], int | None]:
    read_at = _reader_at(handle)
    header = read_at(0, HEADER_BLOCK)
    if len(header) < 0x2C or not header.startswith(FILE_MAGIC):
        return [], None
    next_record = struct.unpack_from("<Q", header, 0x18)[0]
    count = struct.unpack_from("<H", header, 0x2A)[0]
    spans: list[ChunkSpan] = []
    for index in range(count):
        offset = HEADER_BLOCK + index * CHUNK_SIZE
        trouble = None
        if offset >= size:
            spans.append(ChunkSpan(index, None, None, f"chunk {index} missing: file ends at byte {size}"))
            continue
        if offset + CHUNK_SIZE > size:
            trouble = f"chunk {index} truncated: file ends {size - offset} bytes into it"
        head = read_at(offset, 0x28)
        if len(head) < 0x28 or not head.startswith(CHUNK_MAGIC):
            spans.append(ChunkSpan(index, None, None, trouble or f"chunk {index} header unreadable"))
            continue
        first, last = struct.unpack_from("<QQ", head, 0x18)
        if last < first or last - first >= MAX_RECORDS_PER_CHUNK:
            spans.append(ChunkSpan(index, None, None, trouble or f"chunk {index} header garbled"))
            continue
        spans.append(ChunkSpan(index, first, last, trouble))
    _unmark_copies(spans)
    _infer_missing_bounds(spans, next_record)
    return spans, next_record


def _unmark_copies(spans: list[ChunkSpan]) -> None:
    """A chunk whose header repeats another chunk's bounds holds a copy of it (a chunk copied over
    another): its own records are unknown, and get bounded by its neighbours like an unreadable chunk's.
    The original is the one that fits its neighbours in file order."""
    groups: dict[tuple[int, int], list[ChunkSpan]] = {}
    for span in spans:
        if span.first is not None:
            groups.setdefault((span.first, span.last), []).append(span)  # type: ignore[arg-type]
    for same in groups.values():
        if len(same) < 2:
            continue
        original = next((s for s in same if _fits(spans, s)), same[0])
        for copy in same:
            if copy is not original:
                copy.first = copy.last = None
                copy.trouble = f"chunk {copy.index} holds a copy of chunk {original.index}'s records"


def _fits(spans: list[ChunkSpan], span: ChunkSpan) -> bool:
    after = spans[span.index + 1] if span.index + 1 < len(spans) else None
    before = spans[span.index - 1] if span.index > 0 else None
    return (after is not None and after.first == span.last + 1) or (  # type: ignore[operator]
        before is not None and before.last is not None and before.last + 1 == span.first
    )


def _infer_missing_bounds(spans: list[ChunkSpan], next_record: int) -> None:
    """Chunks without readable bounds hold the records between their known neighbours.

    A run of several such chunks shares one gap that cannot be split between them: the whole gap goes
    to the first chunk of the run (the count stays exact), the others are marked as merged into it.
    """
    known = [span.first is not None for span in spans]
    position = 0
    while position < len(spans):
        if known[position]:
            position += 1
            continue
        end = position
        while end + 1 < len(spans) and not known[end + 1]:
            end += 1
        before = spans[position - 1].last if position > 0 else 0
        after = spans[end + 1].first if end + 1 < len(spans) else next_record
        count = after - before - 1  # type: ignore[operator]
        if 0 < count < MAX_RECORDS_PER_CHUNK * (end - position + 1):
            first = spans[position]
            first.first, first.last = before + 1, after - 1  # type: ignore[operator]
            if end > position:
                first.trouble = f"chunks {position}-{end} unreadable ({first.trouble})"
                for merged in spans[position + 1 : end + 1]:
                    merged.merged = True
        position = end + 1


@dataclass(slots=True)
class Gap:
    """Record numbers no chunk holds: between two chunks, or after the last one (file header's next
    record number). A chunk copied over another, or a chunk header whose bounds were changed, leaves one."""

    first: int
    last: int
    where: str


# A jump in record numbers larger than this is a garbled number, not lost records: reported once.
MAX_GAP_RECORDS = 16 * MAX_RECORDS_PER_CHUNK


def continuity_gaps(spans: list[ChunkSpan], next_record: int | None) -> tuple[list[Gap], list[str]]:
    """Gaps in the record numbers of the chunks (in file order) and up to the file header's next record
    number; and notes for jumps too large to be lost records."""
    known = [s for s in spans if s.first is not None and not s.merged]
    gaps: list[Gap] = []
    notes: list[str] = []
    highest = 0
    previous: ChunkSpan | None = None
    for span in sorted(known, key=lambda s: s.first):  # type: ignore[arg-type, return-value]
        if previous is not None and span.first > highest + 1:  # type: ignore[operator]
            where = f"between chunk {previous.index} and chunk {span.index}"
            _add_gap(gaps, notes, highest + 1, span.first - 1, where)  # type: ignore[operator]
        if span.last > highest:  # type: ignore[operator]
            highest, previous = span.last, span  # type: ignore[assignment]
    if previous is not None and next_record is not None and next_record > highest + 1:
        _add_gap(gaps, notes, highest + 1, next_record - 1, f"after chunk {previous.index} (file header)")
    return gaps, notes


def _add_gap(gaps: list[Gap], notes: list[str], first: int, last: int, where: str) -> None:
    if last - first + 1 > MAX_GAP_RECORDS:
        notes.append(f"record numbers jump from {first - 1} to {last + 1} {where}: a garbled header, not counted")
    else:
        gaps.append(Gap(first, last, where))


def rebuilt_header(path: str) -> bytes | None:
    """A file header for the chunks found on disk (their magic at each 64 KiB slot), for a file whose own
    header is damaged; None when there is no chunk at all."""
    size = os.path.getsize(path)
    count = 0
    highest = 0
    with open(path, "rb") as handle:
        read_at = _reader_at(handle)
        for index in range(max(size - HEADER_BLOCK, 0) // CHUNK_SIZE + 1):
            head = read_at(HEADER_BLOCK + index * CHUNK_SIZE, 0x28)
            if len(head) < 0x28 or not head.startswith(CHUNK_MAGIC):
                continue
            count = index + 1
            first, last = struct.unpack_from("<QQ", head, 0x18)
            if first <= last and last - first < MAX_RECORDS_PER_CHUNK:
                highest = max(highest, last)
    if not count:
        return None
    return file_header(count, highest + 1)


def file_header(count: int, next_record: int) -> bytes:
    """A clean file header (with its CRC) for `count` chunks and the given next record number."""
    header = bytearray(HEADER_BLOCK)
    header[0:8] = FILE_MAGIC
    struct.pack_into("<QQQIHHHH", header, 8, 0, count - 1, next_record, 128, 1, 3, HEADER_BLOCK, count)
    struct.pack_into("<I", header, 0x7C, zlib.crc32(bytes(header[:0x78])))
    return bytes(header)


def _padding(size: int) -> int:
    """Zero bytes that make a file of `size` bytes end on a chunk boundary."""
    return (-(size - HEADER_BLOCK)) % CHUNK_SIZE if size > HEADER_BLOCK else 0


@contextmanager
def _padded(path: str, size: int) -> Iterator[object]:
    """A copy of a file that does not end on a chunk boundary, padded with zeros up to one."""
    missing = _padding(size)
    if size <= PAD_IN_MEMORY:
        with open(path, "rb") as handle:
            yield io.BytesIO(handle.read() + b"\0" * missing)
        return
    with tempfile.TemporaryFile(prefix="svchunt-evtx-") as tmp, open(path, "rb") as handle:
        shutil.copyfileobj(handle, tmp)
        tmp.write(b"\0" * missing)
        tmp.seek(0)
        yield tmp


def read_evtx(path: str, source: str | None = None, route: RouteTest | None = None) -> Iterator[Event | Problem]:
    """Events of one EVTX file; `source` names it in events and problems (default: `path`).

    A file whose header is damaged (its chunks intact) is read through a copy with a rebuilt header.
    With `route`, the records no rule can match and that normalise quietly are counted in an `Unrouted`.
    """
    source = source or path
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by read_open_evtx
    except OSError as exc:
        yield Problem(source, "file", f"{_UNREADABLE}: {exc}")
        return
    yield from read_open_evtx(handle, path, source, route)


def read_open_evtx(
    handle: io.BufferedReader | io.FileIO,
    path: str,
    source: str,
    route: RouteTest | None = None,
    magic: bytes | None = None,
    size: int | None = None,
) -> Iterator[Event | Problem]:
    """`read_evtx` of a file already open (`handle`, closed here once the chunk headers are read): the
    input reader has opened it to tell its format, and need not open it again. `magic` and `size`: the
    file's first bytes and its size, when the caller has them already."""
    try:
        with handle:  # one open for the magic, the size and the chunk headers
            fd = handle.fileno()
            if magic is None:
                magic = os.pread(fd, len(FILE_MAGIC), 0)
            magic = magic[: len(FILE_MAGIC)]
            if size is None:
                size = os.fstat(fd).st_size
            spans, next_record = _layout(handle, size) if magic == FILE_MAGIC else ([], None)
        if magic != FILE_MAGIC:
            yield from _read_rebuilt(path, source, "file header magic missing", route=route)
            return
    except OSError as exc:
        yield Problem(source, "file", f"{_UNREADABLE}: {exc}")
        return
    if not _padding(size):  # the usual file, whole chunks: read as it is, without a context to enter
        yield from _records_or_rebuilt(path, path, source, spans, next_record, route)
        return
    with _padded(path, size) as target:
        yield from _records_or_rebuilt(target, path, source, spans, next_record, route)


def _records_or_rebuilt(
    target: object,
    path: str,
    source: str,
    spans: list[ChunkSpan],
    next_record: int | None,
    route: RouteTest | None,
) -> Iterator[Event | Problem]:
    items = _read_records(target, source, spans, next_record, route=route)  # type: ignore[arg-type]
    first = next(items, None)
    if type(first) is Problem and first.position == "file" and first.reason.startswith(_UNREADABLE):
        yield from _read_rebuilt(path, source, first.reason, fallback=first, route=route)  # the parser refused the header
        return
    if first is not None:
        yield first
    yield from items


def _read_rebuilt(
    path: str, source: str, why: str, fallback: Problem | None = None, route: RouteTest | None = None
) -> Iterator[Event | Problem]:
    header = rebuilt_header(path)
    if header is None:
        yield fallback or Problem(source, "file", f"{_UNREADABLE}: {why}, and no chunk found")
        return
    with tempfile.NamedTemporaryFile(prefix="svchunt-evtx-", suffix=".evtx") as copy, open(path, "rb") as handle:
        copy.write(header)
        handle.seek(HEADER_BLOCK)
        shutil.copyfileobj(handle, copy)
        copy.write(b"\0" * _padding(copy.tell()))  # whole chunks, as _padded gives
        copy.flush()
        yield Problem(source, "file header", f"damaged ({why}): chunks read with a rebuilt header", kept=True)
        spans, next_record = chunk_layout(copy.name)
        yield from _read_records(copy.name, source, spans, next_record, route=route)


def _read_records(
    target: object,
    source: str,
    spans: list[ChunkSpan],
    next_record: int | None = None,
    chunk_offset: int = 0,
    route: RouteTest | None = None,
) -> Iterator[Event | Problem]:
    """`chunk_offset`: the file index of `target`'s first chunk, when it is a window of a file's chunks.
    `route`: see `read_evtx`."""
    try:
        records = evtx.PyEvtxParser(target, number_of_threads=PARSER_THREADS).records_json()
    except (OSError, RuntimeError) as exc:
        yield Problem(source, "file", f"{_UNREADABLE}: {exc}")
        return
    gaps, jump_notes = continuity_gaps(spans, next_record)
    known = [s for s in spans if s.first is not None]
    low = min((s.first for s in known), default=0)  # type: ignore[type-var]
    high = max([s.last for s in known] + [g.last for g in gaps], default=-1)  # type: ignore[type-var]
    seen = bytearray(max(high - low + 1, 0))
    outside: set[int] = set()  # numbers beyond the expected range, to tell duplicates there too
    errors: list[tuple[int | None, str]] = []  # (last good record number before the error, message)
    last_number: int | None = None
    failures = 0
    unrouted = 0  # records counted, not passed on: given as one Unrouted at the end
    loads = orjson.loads
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except Exception as exc:  # the parser raises RuntimeError; be safe against anything it wraps
            errors.append((last_number, str(exc)))
            failures += 1
            if failures >= MAX_CONSECUTIVE_ERRORS:
                errors.append((None, f"parser stopped after {failures} consecutive errors"))
                break
            continue
        failures = 0
        number = record.get("event_record_id")
        if type(number) is int:
            last_number = number
            if low <= number <= high:
                if seen[number - low]:
                    yield _duplicate(source, number)
                    continue
                seen[number - low] = 1
            elif number in outside:
                yield _duplicate(source, number)
                continue
            elif len(outside) < MAX_GAP_RECORDS:
                outside.add(number)
            if not 0 <= number <= INT64_MAX:  # a damaged record header: no usable number
                number = None
        else:
            number = None
        try:
            text = record["data"]
            data = loads(text)
            verdict, quiet = route_record(data, route, text) if route is not None else (None, False)
            if verdict is True:
                unrouted += 1  # no rule can match it: normalising it would only cost time
                continue
            fields, timestamp, record_id = from_nested(data, parsed=True)
            if not quiet:
                text = None
            if verdict is not None and FLAGS_FIELD not in fields and verdict(fields, text):  # type: ignore[operator]
                unrouted += 1  # nothing to report of it, and no rule can match its fields
                continue
        except (orjson.JSONDecodeError, NotAnEvent, KeyError, TypeError) as exc:
            yield Problem(source, f"record {number}", f"unusable record: {exc}")
            continue
        except Exception as exc:  # a normaliser bug on one damaged record must not end the file
            yield Problem(source, f"record {number}", f"record could not be normalised: {type(exc).__name__}: {exc}")
            continue
        yield Event(fields, timestamp, source, record_id, None, number, text)
    if unrouted:
        yield Unrouted(unrouted)
    yield from _missing(source, spans, low, seen, *_sort_errors(spans, errors, chunk_offset))
    for gap in gaps:
        for number in range(gap.first, gap.last + 1):
            if not seen[number - low]:
                yield Problem(source, f"record {number}", f"lost: no chunk holds it (gap {gap.where})")
    for note in jump_notes:
        yield Problem(source, "file", note, kept=True)


def _duplicate(source: str, number: int) -> Problem:
    return Problem(source, f"record {number}", "duplicate of a record already read (a chunk copied over another?): skipped")


def _sort_errors(
    spans: list[ChunkSpan], errors: list[tuple[int | None, str]], chunk_offset: int = 0
) -> tuple[dict[int, str], dict[int, list[str]], list[str]]:
    """Parser errors by the record or chunk they name, else by the chunk of the last good record."""
    record_errors: dict[int, str] = {}
    chunk_errors: dict[int, list[str]] = {}
    loose_errors: list[str] = []
    current: int | None = None
    for last_number, message in errors:
        if last_number is not None:
            current = _chunk_of(spans, last_number, current)
        if match := _RECORD_ERROR.search(message):
            number = int(match.group(1))
            record_errors[number] = message
            current = _chunk_of(spans, number, current)
        elif match := _CHUNK_ERROR.search(message):
            current = int(match.group(1)) + chunk_offset
        if current is None:
            loose_errors.append(message)
        else:
            chunk_errors.setdefault(current, []).append(message)
    return record_errors, chunk_errors, loose_errors


def _chunk_of(spans: list[ChunkSpan], number: int, default: int | None) -> int | None:
    for span in spans:
        if span.first is not None and span.first <= number <= span.last:  # type: ignore[operator]
            return span.index
    return default


def _missing(
    source: str,
    spans: list[ChunkSpan],
    low: int,
    seen: bytearray,
    record_errors: dict[int, str],
    chunk_errors: dict[int, list[str]],
    loose_errors: list[str],
) -> Iterator[Problem]:
    reported_chunks: set[int] = set()
    for span in spans:
        errors = chunk_errors.get(span.index, [])
        detail = span.trouble or (errors[0] if errors else "not returned by the parser")
        if span.merged:
            reported_chunks.add(span.index)
            continue
        if span.first is None:
            if span.trouble or errors:
                reported_chunks.add(span.index)
                yield Problem(source, f"chunk {span.index}", f"unreadable, record count unknown: {detail}")
            continue
        for number in range(span.first, span.last + 1):  # type: ignore[operator]
            if not seen[number - low]:
                reported_chunks.add(span.index)
                reason = record_errors.get(number) or f"lost with chunk {span.index}: {detail}"
                yield Problem(source, f"record {number}", reason)
    # Errors that cost no expected record (e.g. a damaged chunk beyond the announced count) still show.
    for index, errors in sorted(chunk_errors.items()):
        if index not in reported_chunks:
            yield Problem(source, f"chunk {index}", errors[0])
    for message in loose_errors:
        yield Problem(source, "file", message)
