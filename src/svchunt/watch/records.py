"""Raw JSON line -> Event or Problem, through the same shape detection and normaliser as `hunt`."""

from __future__ import annotations

from typing import Any

import orjson

from svchunt.model import Event, Problem
from svchunt.normalise.shapes import NotAnEvent, detect_shape, normalise_record


class RecordParser:
    """Remembers the shape last seen per source, as the file reader does, so a record costs one key lookup."""

    def __init__(self) -> None:
        self._shapes: dict[str, str | None] = {}

    def parse(self, raw: bytes, source: str, line: int) -> Event | Problem:
        try:
            record: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            kind = "binary data" if _binary(raw) else "invalid JSON"
            return Problem(source, f"line {line}", f"{kind}: {exc}")
        shape = self._shapes.get(source)
        try:
            fields, timestamp, record_id = normalise_record(record, shape)
        except NotAnEvent as exc:
            return Problem(source, f"line {line}", str(exc))
        except Exception as exc:  # a normaliser bug on one hostile record must not stop the stream
            return Problem(source, f"line {line}", f"record could not be normalised: {type(exc).__name__}: {exc}")
        if shape is None:
            self._shapes[source] = detect_shape(record)
        return Event(fields, timestamp, source, record_id, line)


def _binary(raw: bytes) -> bool:
    if b"\x00" in raw:
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def reason_kind(reason: str) -> str:
    """The part of a problem's reason before any detail: the key skipped records are counted under."""
    head = reason.split(":", 1)[0]
    return head if len(head) <= 60 else head[:60]
