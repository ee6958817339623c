"""Write normalised events as a Parquet dataset partitioned by date and channel, in bounded memory.

Layout (Hive-style, what Spark, Databricks, DuckDB and pyarrow all discover):
`DIR/date=2019-03-19/channel=Microsoft-Windows-Sysmon%2FOperational/part-<run>-<n>.parquet`.
Partition values are URI-escaped; an event without a timestamp or a channel goes under
`__HIVE_DEFAULT_PARTITION__` (read back as null). The partition value is for pruning only: the event's
own `Channel` and `timestamp` are inside each row, so reading never depends on directory names.

Memory: events are converted in batches, rows are buffered per partition and a partition is written as
one row group when it has `ROW_GROUP_ROWS` rows; when all buffers together pass `MAX_BUFFERED_ROWS` the
largest are written out early, and at most `MAX_OPEN_FILES` files stay open (the least recently used is
closed, the partition's next rows start a new file). So a run holds at most ~`MAX_BUFFERED_ROWS` rows,
whatever the input size or the number of partitions.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from svchunt.model import Event, Problem
from svchunt.spark.arrow import FILE_SCHEMA, to_batch

BATCH_ROWS = 8192
ROW_GROUP_ROWS = 65536
MAX_BUFFERED_ROWS = 262144
MAX_OPEN_FILES = 64
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Directory names have a length limit (255 bytes); longer channel names are cut and made unique by a hash.
MAX_CHANNEL_CHARS = 100

Key = tuple[str | None, str | None]


@dataclass
class WriteStats:
    files_read: int = 0  # input files
    records_read: int = 0  # events the readers produced
    records_written: int = 0
    records_skipped: int = 0  # unreadable records, and events Arrow cannot hold exactly
    files_skipped: int = 0
    files_written: int = 0
    row_groups: int = 0
    partitions: set[Key] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


def partition_of(event: Event) -> Key:
    """(date, channel) directory values of an event; None goes to the default (null) partition."""
    ts = event.timestamp
    date = ts[:10] if ts and len(ts) >= 10 and ts[4] == "-" and ts[7] == "-" else None
    channel = event.fields.get("Channel")
    if type(channel) is not str or not channel:
        return date, None
    if len(channel) > MAX_CHANNEL_CHARS:
        digest = hashlib.sha256(channel.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        channel = f"{channel[:MAX_CHANNEL_CHARS]}~{digest}"
    return date, channel


def _segment(value: str | None) -> str:
    if value is None:
        return NULL_PARTITION
    return quote(value, safe="", errors="surrogateescape")


def position_of(event: Event) -> str:
    """Where an event sits in its source, in the words Problems use."""
    if event.line is not None:
        return f"line {event.line}"
    if event.header_record_id is not None:
        return f"record {event.header_record_id}"
    return f"record {event.record_id}"


class DatasetWriter:
    """Streams events into the partitioned dataset; `close()` writes what is still buffered."""

    def __init__(self, out_dir: str, stats: WriteStats, run_id: str | None = None) -> None:
        self.out_dir = out_dir
        self.stats = stats
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._buffers: dict[Key, list[pa.RecordBatch]] = {}
        self._buffered: dict[Key, int] = {}
        self._total = 0
        self._writers: OrderedDict[Key, pq.ParquetWriter] = OrderedDict()
        self._serial = 0

    def add(self, events: list[Event]) -> None:
        converted = to_batch(events)
        for index, reason in converted.rejected:
            event = events[index]
            self.stats.problems.append(Problem(event.source, position_of(event), reason))
            self.stats.records_skipped += 1
        rows_by_key: dict[Key, list[int]] = {}
        for row, index in enumerate(converted.kept):
            rows_by_key.setdefault(partition_of(events[index]), []).append(row)
        for key, rows in rows_by_key.items():
            part = converted.batch.take(pa.array(rows, pa.int32()))
            self._buffers.setdefault(key, []).append(part)
            self._buffered[key] = self._buffered.get(key, 0) + len(rows)
            self._total += len(rows)
            if self._buffered[key] >= ROW_GROUP_ROWS:
                self._flush(key)
        while self._total > MAX_BUFFERED_ROWS:
            self._flush(max(self._buffered, key=self._buffered.__getitem__))

    def close(self) -> None:
        for key in sorted(self._buffers, key=lambda k: (k[0] or "", k[1] or "")):
            self._flush(key)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _flush(self, key: Key) -> None:
        parts = self._buffers.pop(key, [])
        count = self._buffered.pop(key, 0)
        if not parts:
            return
        self._total -= count
        table = pa.Table.from_batches(parts, schema=FILE_SCHEMA)
        self._writer(key).write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.stats.records_written += count
        self.stats.row_groups += 1
        self.stats.partitions.add(key)

    def _writer(self, key: Key) -> pq.ParquetWriter:
        writer = self._writers.get(key)
        if writer is not None:
            self._writers.move_to_end(key)
            return writer
        if len(self._writers) >= MAX_OPEN_FILES:
            _, oldest = self._writers.popitem(last=False)
            oldest.close()
        folder = os.path.join(self.out_dir, f"date={_segment(key[0])}", f"channel={_segment(key[1])}")
        os.makedirs(folder, exist_ok=True)
        self._serial += 1
        path = os.path.join(folder, f"part-{self.run_id}-{self._serial:05d}.parquet")
        writer = pq.ParquetWriter(path, FILE_SCHEMA, compression="zstd")
        self._writers[key] = writer
        self.stats.files_written += 1
        return writer


def write_events(items: Iterable[Event | Problem], out_dir: str, stats: WriteStats | None = None) -> WriteStats:
    """Write every Event of `items` to the dataset under `out_dir`; Problems are counted and kept."""
    stats = stats or WriteStats()
    writer = DatasetWriter(out_dir, stats)
    batch: list[Event] = []
    try:
        for item in items:
            if type(item) is Event:
                stats.records_read += 1
                batch.append(item)
                if len(batch) >= BATCH_ROWS:
                    writer.add(batch)
                    batch = []
                continue
            problem: Problem = item  # type: ignore[assignment]
            stats.problems.append(problem)
            if problem.whole_file:
                stats.files_skipped += 1
            elif not problem.kept:  # a flagged record was written, with its flags
                stats.records_skipped += 1
        if batch:
            writer.add(batch)
    finally:
        writer.close()
    return stats


def iter_input_events(paths: list[str], stats: WriteStats) -> Iterator[Event | Problem]:
    """The events and problems of every input file, counting the files as they are opened."""
    from svchunt.sources import iter_inputs, read_events

    for item in iter_inputs(paths):
        if isinstance(item, Problem):
            yield item
            continue
        stats.files_read += 1
        yield from read_events(item.path)
