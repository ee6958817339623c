"""Read back a Parquet file of the svchunt event schema (written by `svchunt convert` or a Spark job).

The embedded engine reads a dataset file by file like any other input (the reader sniffs `PAR1`); each row
becomes the Event it was written from (`svchunt.spark.arrow.from_batch`, the conversion Spark uses too).
A file that is not Parquet, not of our schema, or whose row group cannot be decoded is reported: a bad file
as one Problem(path, "file"), every row of a row group that cannot be read as Problem(path, "row N").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from svchunt.model import Event, Problem

if TYPE_CHECKING:
    import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"
# Rows converted to Python objects at a time: bounds memory however large a row group is.
SLICE_ROWS = 8192


def parquet_metadata(path: str) -> tuple[pq.FileMetaData | None, str | None]:
    """(footer, None) for a readable file of our schema, else (None, why not)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from svchunt.spark.arrow import schema_problem

    try:
        meta = pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        return None, f"not a readable Parquet file: {exc}"
    reason = schema_problem(meta.schema.to_arrow_schema())
    return (None, reason) if reason else (meta, None)


def read_parquet(path: str) -> Iterator[Event | Problem]:
    # pyarrow is imported on first use: most runs read no Parquet, and start-up time matters.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from svchunt.spark.arrow import REBUILD_COLUMNS, from_batch

    meta, reason = parquet_metadata(path)
    if meta is None:
        yield Problem(path, "file", reason or "unreadable")
        return
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        yield Problem(path, "file", f"not a readable Parquet file: {exc}")
        return
    with handle:
        row = 0
        for group in range(meta.num_row_groups):
            count = meta.row_group(group).num_rows
            try:
                table = handle.read_row_group(group, columns=list(REBUILD_COLUMNS))
            except (pa.ArrowException, OSError) as exc:
                for lost in range(row, row + count):
                    yield Problem(path, f"row {lost}", f"row group {group} unreadable: {exc}")
                row += count
                continue
            for start in range(0, table.num_rows, SLICE_ROWS):
                for item in from_batch(table.slice(start, SLICE_ROWS)):
                    if type(item) is Event:
                        yield item
                    else:
                        yield Problem(path, f"row {row}", str(item))
                    row += 1
