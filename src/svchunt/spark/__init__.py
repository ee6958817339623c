"""Normalised events as Arrow / Parquet, and `svchunt hunt --engine spark`.

- `arrow`: the documented Arrow schema of an event and the one pair of conversion functions
  (events -> record batch, record batch -> events) that `convert`, the Parquet reader and Spark share;
- `dataset`: writing a Parquet dataset partitioned by date and channel, in bounded memory;
- `session`, `tasks`, `driver`: the Spark engine (pyspark is imported only by these three).

Nothing here imports pyspark at import time: `svchunt convert` and the Parquet reader work without it.
"""
