"""What runs inside Spark's Python workers: the embedded engine's matcher over Arrow batches.

Two task kinds, both `mapInArrow` functions that emit rows of OUT_SCHEMA:
- `match_rows`: rows of a Parquet dataset (Spark reads it) -> Events (`arrow.from_batch`) -> matcher;
- `scan_files`: chunks of EVTX / JSON files (paths every executor can open) -> `read_events` -> matcher.

Both use `Matcher.match_indexed` — the very evaluator of `svchunt hunt` — so there is one semantics. The
compiled rules travel once per job as a broadcast of their pickled form and are unpickled once per Python
worker (workers are reused between tasks), not once per batch.

Output rows: kind MATCH (one per matched event: the rule indexes and the event's provenance + fields),
kind PROBLEM (what could not be read, with its file and position) and kind COUNTS (records read and
records outside --since/--until, one row per task), so the driver's counts are exact, not accumulators.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from svchunt.engine.matcher import Matcher
from svchunt.model import Event, Problem
from svchunt.spark.arrow import to_batch

MATCH, PROBLEM, COUNTS = 0, 1, 2
BATCH_SIZE = 8192

OUT_SCHEMA = pa.schema(
    [
        ("kind", pa.int8()),
        ("rank", pa.int32()),  # chunk rank (embedded run order) for file tasks; -1 for Parquet rows
        ("file_index", pa.int32()),  # index of the file in its chunk; -1 for Parquet rows
        ("pos", pa.int64()),  # item number in the file (file tasks) or row index (Parquet rows)
        ("rules", pa.list_(pa.int32())),  # matched rule indexes of the driver's Detector
        ("source", pa.string()),
        ("record_id", pa.int64()),
        ("line", pa.int64()),
        ("header_record_id", pa.int64()),
        ("timestamp", pa.string()),
        ("fields", pa.string()),
        ("file", pa.string()),  # Parquet file as Spark names it (Parquet rows only)
        ("position", pa.string()),  # Problem.position
        ("reason", pa.string()),  # Problem.reason
        ("records", pa.int64()),
        ("outside", pa.int64()),
    ]
)
OUT_DDL = (
    "kind tinyint, rank int, file_index int, pos bigint, rules array<int>, source string, record_id bigint, "
    "line bigint, header_record_id bigint, timestamp string, fields string, file string, position string, "
    "reason string, records bigint, outside bigint"
)
EVENT_COLUMNS = ("source", "record_id", "line", "header_record_id", "timestamp", "fields")

# job token -> (matcher over the shipped rules, local rule index -> the driver's rule index)
_MATCHERS: dict[str, tuple[Matcher, list[int]]] = {}


def matcher_from(broadcast: Any) -> tuple[Matcher, list[int]]:
    """The worker's matcher for this job's rules, unpickled on first use and kept for later tasks.

    The broadcast holds (job token, pickled [(driver rule index, rule)]); Spark keeps its value per worker
    process, and the token says whether this worker already built the matcher for this job.
    """
    token, payload = broadcast.value
    found = _MATCHERS.get(token)
    if found is None:
        shipped: list[tuple[int, Any]] = pickle.loads(payload)
        found = (Matcher([rule for _, rule in shipped]), [index for index, _ in shipped])
        _MATCHERS.clear()  # one job at a time per worker: do not keep old rule sets alive
        _MATCHERS[token] = found
    return found


def _rows(n: int, **columns: Any) -> pa.RecordBatch:
    """A batch of OUT_SCHEMA with `n` rows; columns not given are null."""
    arrays = []
    for f in OUT_SCHEMA:
        value = columns.get(f.name)
        if value is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(value, pa.Array | pa.ChunkedArray):
            arrays.append(value.cast(f.type) if value.type != f.type else value)
        else:
            arrays.append(pa.array(value, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=OUT_SCHEMA)


def _in_window(event: Event, since: str | None, until: str | None) -> bool:
    ts = event.timestamp
    return not (ts is None or (since and ts < since) or (until and ts > until))


def _group(matches: list[tuple[int, Event]], index_map: list[int]) -> tuple[list[Event], list[list[int]]]:
    """(rule, event) pairs -> distinct events (first-match order) and the driver's rule indexes of each."""
    slots: dict[int, int] = {}
    events: list[Event] = []
    rules: list[list[int]] = []
    for local, event in matches:
        slot = slots.get(id(event))
        if slot is None:
            slot = slots[id(event)] = len(events)
            events.append(event)
            rules.append([])
        rules[slot].append(index_map[local])
    return events, rules


def match_rows(batches: Iterator[pa.RecordBatch], broadcast: Any, since: str | None, until: str | None):
    """mapInArrow over Parquet rows (EVENT_COLUMNS + `file` + `row`)."""
    from svchunt.spark.arrow import from_batch

    matcher, index_map = matcher_from(broadcast)
    records = outside = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        items = from_batch(batch)
        files = batch.column("file")
        rows = batch.column("row")
        events: list[Event] = []
        where: dict[int, int] = {}  # id(event) -> row in batch
        bad: list[int] = []
        for i, item in enumerate(items):
            if type(item) is not Event:
                bad.append(i)
                continue
            records += 1
            if (since or until) and not _in_window(item, since, until):
                outside += 1
                continue
            where[id(item)] = i
            events.append(item)
        if bad:
            take = pa.array(bad, pa.int32())
            yield _rows(
                len(bad), kind=[PROBLEM] * len(bad), file=files.take(take), pos=rows.take(take),
                position=[f"row {rows[i].as_py()}" for i in bad], reason=[items[i] for i in bad],
            )  # fmt: skip
        matched, rule_lists = _group(matcher.match_indexed(events), index_map)
        if matched:
            take = pa.array([where[id(e)] for e in matched], pa.int32())
            picked = {name: batch.column(name).take(take) for name in EVENT_COLUMNS}
            yield _rows(
                len(matched), kind=[MATCH] * len(matched), rules=rule_lists, file=files.take(take),
                pos=rows.take(take), **picked,
            )  # fmt: skip
    yield _rows(1, kind=[COUNTS], records=[records], outside=[outside])


def scan_files(batches: Iterator[pa.RecordBatch], broadcast: Any, since: str | None, until: str | None):
    """mapInArrow over chunk rows (`rank`, `paths`, `indexes`): read each file and match its events."""
    from svchunt.sources import read_events

    matcher, index_map = matcher_from(broadcast)
    for batch in batches:
        for rank, paths, indexes in zip(*(batch.column(n).to_pylist() for n in ("rank", "paths", "indexes")), strict=True):
            scan = _Scan(matcher, index_map, rank, since, until)
            for file_index, path in zip(indexes, paths, strict=True):
                for pos, item in enumerate(read_events(path)):
                    if type(item) is Event:
                        yield from scan.add(item, file_index, pos)
                    else:
                        scan.problem(item, file_index, pos)  # type: ignore[arg-type]
            yield from scan.finish()


class _Scan:
    """One chunk of files: events batched across files like `svchunt hunt` workers do."""

    def __init__(self, matcher: Matcher, index_map: list[int], rank: int, since: str | None, until: str | None):
        self.matcher, self.index_map, self.rank = matcher, index_map, rank
        self.since, self.until = since, until
        self.records = self.outside = 0
        self.batch: list[Event] = []
        self.where: dict[int, tuple[int, int]] = {}  # id(event) -> (file index, item number)
        self.problems: list[tuple[int, int, Problem]] = []

    def add(self, event: Event, file_index: int, pos: int) -> Iterator[pa.RecordBatch]:
        self.records += 1
        if (self.since or self.until) and not _in_window(event, self.since, self.until):
            self.outside += 1
            return
        self.batch.append(event)
        self.where[id(event)] = (file_index, pos)
        if len(self.batch) >= BATCH_SIZE:
            yield from self._match()

    def problem(self, problem: Problem, file_index: int, pos: int) -> None:
        self.problems.append((file_index, pos, problem))

    def _match(self) -> Iterator[pa.RecordBatch]:
        matched, rule_lists = _group(self.matcher.match_indexed(self.batch), self.index_map)
        places = [self.where[id(e)] for e in matched]
        self.batch, self.where = [], {}
        if not matched:
            return
        converted = to_batch(matched)
        for index, reason in converted.rejected:  # Arrow cannot carry it back: say so, never drop it
            event = matched[index]
            file_index, pos = places[index]
            rules = ", ".join(str(r) for r in rule_lists[index])
            self.problems.append((file_index, pos, Problem(event.source, _position(event),
                                 f"matched rule(s) #{rules} but cannot be returned from Spark: {reason}")))  # fmt: skip
        kept = converted.kept
        if kept:
            columns = {name: converted.batch.column(name) for name in EVENT_COLUMNS}
            yield _rows(
                len(kept), kind=[MATCH] * len(kept), rank=[self.rank] * len(kept),
                file_index=[places[i][0] for i in kept], pos=[places[i][1] for i in kept],
                rules=[rule_lists[i] for i in kept], **columns,
            )  # fmt: skip

    def finish(self) -> Iterator[pa.RecordBatch]:
        if self.batch:
            yield from self._match()
        if self.problems:
            n = len(self.problems)
            yield _rows(
                n, kind=[PROBLEM] * n, rank=[self.rank] * n, file_index=[p[0] for p in self.problems],
                pos=[p[1] for p in self.problems], source=[p[2].source for p in self.problems],
                position=[p[2].position for p in self.problems], reason=[p[2].reason for p in self.problems],
            )  # fmt: skip
        yield _rows(1, kind=[COUNTS], rank=[self.rank], records=[self.records], outside=[self.outside])


def _position(event: Event) -> str:
    from svchunt.spark.dataset import position_of

    return position_of(event)
