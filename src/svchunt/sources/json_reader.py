"""JSON inputs: JSON lines, one (possibly pretty-printed) JSON object, or a JSON array of events.

The layout is told from the content: `[` starts an array; `{` starts JSON lines when the first line is a
complete JSON value, else one document (a pretty-printed object, e.g. SigmaHQ regression samples) or
several pretty-printed objects one after another (as `evtx_dump` writes them). A file that is none of
these (a first line broken in the middle) is read as JSON lines, each bad line reported.
The shape of the events (nested / flat / ECS, see svchunt.normalise.shapes) is found on the first event
and checked with one key lookup per record; a record of another shape is detected on its own.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import IO, Any

import orjson

from svchunt.model import Event, Problem
from svchunt.normalise.shapes import NotAnEvent, detect_shape, normalise_record

# A line longer than this is refused without being loaded whole (a JSON event is a few KiB).
MAX_LINE_BYTES = 16 * 1024 * 1024
# A document (pretty-printed object or array) is parsed whole; beyond this it is taken as JSON lines.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
_SKIP_CHUNK = 1024 * 1024
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


class _Prefixed(io.RawIOBase):
    """Bytes already read, followed by the rest of the stream, so reading can resume line by line."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest
        # One underlying read per call: a stream that fails part-way (a truncated .gz) then loses nothing
        # that came before the failure, as a looping read(n) would.
        self._read = getattr(rest, "read1", rest.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _first_significant(head: bytes) -> int:
    """Index of the first byte that is not whitespace or a UTF-8 BOM, or -1."""
    start = len(_BOM) if head.startswith(_BOM) else 0
    for index in range(start, len(head)):
        if head[index] not in _WHITESPACE:
            return index
    return -1


def _read_head(stream: IO[bytes], size: int) -> bytes:
    read = getattr(stream, "read1", stream.read)
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def looks_like_json(head: bytes) -> bool:
    index = _first_significant(head)
    return index >= 0 and head[index] in b"{["


def _event(record: Any, shape: str | None, source: str, line: int) -> tuple[Event | Problem, str | None]:
    try:
        fields, timestamp, record_id = normalise_record(record, shape)
    except NotAnEvent as exc:
        return Problem(source, f"line {line}", str(exc)), shape
    except Exception as exc:  # a normaliser bug on one hostile record must not end the run
        return Problem(source, f"line {line}", f"record could not be normalised: {type(exc).__name__}: {exc}"), shape
    if shape is None:
        shape = detect_shape(record)
    return Event(fields, timestamp, source, record_id, line), shape


def _document(document: Any, source: str) -> Iterator[Event | Problem]:
    """A parsed whole document: one object is one event (line 1); an array's items are numbered 1.."""
    if type(document) is list:
        shape = None
        for number, item in enumerate(document, 1):
            result, shape = _event(item, shape, source, number)
            if isinstance(result, Problem):
                result = Problem(source, f"record {number}", result.reason)
            yield result
        return
    yield _event(document, None, source, 1)[0]


def _lines(stream: IO[bytes], source: str, first_line: int = 1) -> Iterator[Event | Problem]:
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    readline = stream.readline
    limit = MAX_LINE_BYTES
    shape: str | None = None
    number = first_line - 1
    while True:
        line = readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # skip the rest of the line without keeping it
                chunk = readline(_SKIP_CHUNK)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield Problem(source, f"line {number}", f"line longer than {limit} bytes: refused")
            continue
        if line[0] in _WHITESPACE and not line.strip():
            continue
        try:
            record = loads(line)
        except decode_error as exc:
            yield Problem(source, f"line {number}", f"invalid JSON: {exc}")
            continue
        result, shape = _event(record, shape, source, number)
        yield result


def read_json(stream: IO[bytes], source: str) -> Iterator[Event | Problem]:
    """Events of a JSON input read from a binary stream (file, gzip or zip member)."""
    head = _read_head(stream, 4096)
    start = _first_significant(head)
    if start < 0:
        rest = stream.read(MAX_DOCUMENT_BYTES)
        if not rest.strip():
            yield Problem(source, "file", "empty file" if not head else "no data (whitespace only)")
            return
        head += rest
        start = _first_significant(head)
    if head[start] not in b"{[":
        yield Problem(source, "file", "unrecognised format: not EVTX, gzip, zip or JSON")
        return
    reader = io.BufferedReader(_Prefixed(head, stream), buffer_size=1024 * 1024)
    if head[start] == ord("{"):
        first = reader.readline(MAX_LINE_BYTES + 1)
        try:
            record = orjson.loads(first)
        except orjson.JSONDecodeError:
            record = None
        if record is not None:  # JSON lines
            result, _shape = _event(record, None, source, 1)
            yield result
            yield from _lines(reader, source, first_line=2)
            return
        reader = io.BufferedReader(_Prefixed(first, reader), buffer_size=1024 * 1024)
    # One document: parse it whole when it fits, else fall back to line by line.
    body = reader.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) <= MAX_DOCUMENT_BYTES:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if body[start : start + 1] == b"[":
                yield Problem(source, "file", f"invalid JSON document: {exc}")
                return
            text = body.decode("utf-8", errors="replace")
            if _starts_with_object(text):
                yield from _concatenated(text, source)
                return
        else:
            yield from _document(document, source)
            return
    yield from _lines(io.BufferedReader(_Prefixed(body, reader), buffer_size=1024 * 1024), source)


# NaN / Infinity (not JSON, but Python writes them) become floats, which the normaliser keeps as text.
_DECODER = json.JSONDecoder()
# Python's decoder recurses per nesting level: catch its RecursionError like any syntax error.
_DECODE_ERRORS = (ValueError, RecursionError)


def _starts_with_object(text: str) -> bool:
    """True when the text opens with one complete JSON value (then more may follow)."""
    try:
        _DECODER.raw_decode(text, len(text) - len(text.lstrip("\ufeff \t\r\n")))
    except _DECODE_ERRORS:
        return False
    return True


def _concatenated(text: str, source: str) -> Iterator[Event | Problem]:
    """Pretty-printed objects one after another (as `evtx_dump` writes them); `line` is where each starts.

    A broken object is reported with its starting line, and reading resumes at the next line that
    starts with `{`.
    """
    decode = _DECODER.raw_decode
    shape: str | None = None
    position = 0
    line = 1
    size = len(text)
    while True:
        stripped = position
        while stripped < size and text[stripped] in "\ufeff \t\r\n":
            stripped += 1
        if stripped >= size:
            return
        line += text.count("\n", position, stripped)
        try:
            record, end = decode(text, stripped)
        except _DECODE_ERRORS as exc:
            reason = f"nested too deeply ({exc})" if isinstance(exc, RecursionError) else str(exc)
            yield Problem(source, f"line {line}", f"invalid JSON: {reason}")
            resume = text.find("\n{", stripped + 1)
            if resume == -1:
                return
            line += text.count("\n", stripped, resume + 1)
            position = resume + 1
            continue
        result, shape = _event(record, shape, source, line)
        yield result
        line += text.count("\n", stripped, end)
        position = end
