"""The Arrow form of a normalised event (schema version 1), and the one conversion each way.

One event is one row. Event fields differ from event to event (a Sysmon 1 has ~20, a 4624 ~25, other
providers anything at all), so they are not columns: `fields` holds the whole `Event.fields` dict as JSON
text, in its original key order. JSON keeps the value types the matcher and the outputs see — `4` stays an
int, `true` a bool, `null` a null, a list a list — where a `map<string,string>` would turn 4 into "4" and
change both numeric comparisons and what alerts print; Spark has no union type that could do better.
Spark SQL and DuckDB read it with `get_json_object(fields, '$.Image')` / `json_extract_string`.

Provenance is fixed, typed columns. `event_id`, `computer`, `provider` and `time` are copies for people
querying the lake (typed, prunable); an event is rebuilt from provenance + `fields` + `timestamp` only,
so those copies can never change an answer. See docs/spark.md for the schema table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from svchunt.model import Event

SCHEMA_VERSION = "1"
SCHEMA_KEY = b"svchunt.schema"

FILE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),  # input path as given, or archive!member
        pa.field("record_id", pa.int64()),  # EventRecordID (what Event Viewer shows) / record number
        pa.field("line", pa.int64()),  # JSON line number, 1-based; null for EVTX
        pa.field("header_record_id", pa.int64()),  # EVTX record-header number
        pa.field("timestamp", pa.string()),  # fixed-width UTC text, exactly what the engine compares
        pa.field("time", pa.timestamp("us", tz="UTC")),  # the same instant, typed (null if not a valid time)
        pa.field("event_id", pa.int32()),  # copy of fields.EventID when it is an int
        pa.field("computer", pa.string()),  # copy of fields.Computer
        pa.field("provider", pa.string()),  # copy of fields.Provider_Name
        pa.field("fields", pa.string(), nullable=False),  # Event.fields as JSON, key order kept
    ],
    metadata={SCHEMA_KEY: SCHEMA_VERSION.encode()},
)
# Hive-style directories `date=YYYY-MM-DD/channel=NAME/` (values URI-escaped; null = __HIVE_DEFAULT_PARTITION__).
PARTITION_COLUMNS = ("date", "channel")
# What an Event is rebuilt from; readers select only these (column pruning).
REBUILD_COLUMNS = ("source", "record_id", "line", "header_record_id", "timestamp", "fields")

_INTEGER = (pa.types.is_integer,)
_TEXT = (pa.types.is_string, pa.types.is_large_string)
_REQUIRED = {
    "source": _TEXT,
    "record_id": _INTEGER,
    "line": _INTEGER,
    "header_record_id": _INTEGER,
    "timestamp": _TEXT,
    "fields": _TEXT,
}


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a Parquet schema is not an svchunt event dataset, or None when its rows can be rebuilt."""
    version = (schema.metadata or {}).get(SCHEMA_KEY)
    if version is not None and version.decode(errors="replace") != SCHEMA_VERSION:
        return f"svchunt event schema version {version.decode(errors='replace')} (this svchunt reads {SCHEMA_VERSION})"
    for name, checks in _REQUIRED.items():
        index = schema.get_field_index(name)
        if index < 0:
            return f"not an svchunt event dataset: no column '{name}'"
        kind = schema.field(index).type
        if not any(check(kind) for check in checks):
            return f"not an svchunt event dataset: column '{name}' is {kind}"
    return None


@dataclass(slots=True)
class Converted:
    """Rows of `batch` are `events[kept[i]]`; `rejected` are (index in events, reason) that Arrow cannot hold."""

    batch: pa.RecordBatch
    kept: list[int]
    rejected: list[tuple[int, str]] = field(default_factory=list)


def to_batch(events: Sequence[Event]) -> Converted:
    """Events -> one record batch of FILE_SCHEMA. Lossless: `from_batch` gives back equal events.

    An event that cannot be stored exactly (a value JSON cannot hold: text with lone surrogates, an integer
    beyond 64 bits; a source path that is not valid UTF-8) is rejected with its reason, never altered.
    """
    dumps = orjson.dumps
    texts: list[bytes] = []
    kept: list[int] = []
    rejected: list[tuple[int, str]] = []
    for i, event in enumerate(events):
        try:
            texts.append(dumps(event.fields))
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            rejected.append((i, f"event fields cannot be stored as JSON: {exc}"))
            continue
        kept.append(i)
    rows = [events[i] for i in kept]
    try:
        return Converted(_build(rows, texts), kept, rejected)
    except (pa.ArrowException, UnicodeError, OverflowError):
        pass
    # Rare: find the rows Arrow refuses one by one, keep the rest.
    good_rows: list[Event] = []
    good_texts: list[bytes] = []
    good_kept: list[int] = []
    for i, event, text in zip(kept, rows, texts, strict=True):
        try:
            _build([event], [text])
        except (pa.ArrowException, UnicodeError, OverflowError) as exc:
            rejected.append((i, f"event cannot be stored in Arrow: {exc}"))
            continue
        good_rows.append(event)
        good_texts.append(text)
        good_kept.append(i)
    rejected.sort()
    return Converted(_build(good_rows, good_texts), good_kept, rejected)


def _build(rows: list[Event], texts: list[bytes]) -> pa.RecordBatch:
    timestamps = pa.array([e.timestamp for e in rows], pa.string())
    return pa.RecordBatch.from_arrays(
        [
            pa.array([e.source for e in rows], pa.string()),
            pa.array([e.record_id for e in rows], pa.int64()),
            pa.array([e.line for e in rows], pa.int64()),
            pa.array([e.header_record_id for e in rows], pa.int64()),
            timestamps,
            _times(timestamps),
            pa.array([_int32(e.fields.get("EventID")) for e in rows], pa.int32()),
            pa.array([_text(e.fields.get("Computer")) for e in rows], pa.string()),
            pa.array([_text(e.fields.get("Provider_Name")) for e in rows], pa.string()),
            pa.array(texts, pa.string()),
        ],
        schema=FILE_SCHEMA,
    )


_TIME = pa.timestamp("us", tz="UTC")


def _times(timestamps: pa.Array) -> pa.Array:
    """The typed instant of each timestamp text; one vectorised cast, per value only when one is invalid."""
    try:
        return timestamps.cast(_TIME)
    except pa.ArrowInvalid:
        pass
    out: list[datetime | None] = []
    for text in timestamps.to_pylist():
        try:
            out.append(datetime.fromisoformat(text).astimezone(UTC) if text else None)
        except (ValueError, OverflowError):
            out.append(None)
    return pa.array(out, _TIME)


def _int32(value: object) -> int | None:
    return value if type(value) is int and -(2**31) <= value < 2**31 else None  # type: ignore[return-value]


def _text(value: object) -> str | None:
    return value if type(value) is str else None


def from_batch(batch: pa.RecordBatch | pa.Table) -> list[Event | str]:
    """Rows -> events, one item per row in row order: the Event, or the reason the row is not one."""
    columns = [batch.column(name).to_pylist() for name in REBUILD_COLUMNS]
    loads = orjson.loads
    out: list[Event | str] = []
    for source, record_id, line, header_record_id, timestamp, text in zip(*columns, strict=True):
        if source is None or text is None:
            out.append(f"no {'source' if source is None else 'fields'} value")
            continue
        try:
            fields = loads(text)
        except orjson.JSONDecodeError as exc:
            out.append(f"fields is not valid JSON: {exc}")
            continue
        if type(fields) is not dict:
            out.append("fields is not a JSON object")
            continue
        out.append(Event(fields, timestamp, source, record_id, line, header_record_id))
    return out
