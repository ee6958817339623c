"""`svchunt hunt --engine spark`: the per-event matching runs in Spark, the rest as in `run_hunt`.

What is distributed: reading (Spark's Parquet scan, or `read_events` on executors for EVTX / JSON files)
and per-event matching (the embedded `Matcher`, shipped once as a broadcast). What is not: correlations,
suppression, the baseline and the level filter — `Detector.alerts` on the driver, over the collected
signals, exactly as the embedded engine calls it. The driver therefore returns the same `HuntResult` as
`run_hunt` for the same paths and rules: the same alerts, counts, problems and refusals, in the same order
(signals and problems are put in the embedded engine's file order before the detector sees them).

Collecting the signals is fine while they fit the driver (docs/spark.md measures the cost per signal);
past that, grouping by the correlations' group-by keys in Spark would be the next step.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc

from svchunt.engine.detector import Detector
from svchunt.engine.hunt import HuntOptions, chunk_files, load_ruleset
from svchunt.model import Event, HuntResult, Problem, Refusal, RunStats, Signal
from svchunt.rules.loader import LoadedRule, RuleSet
from svchunt.sources import iter_inputs
from svchunt.sources.parquet import PARQUET_MAGIC, parquet_metadata
from svchunt.spark import tasks
from svchunt.spark.arrow import from_batch

# A path with a scheme (s3a://, abfss://, dbfs:/, hdfs://, file:/) is a Parquet dataset for Spark to list.
_MIN_SCHEME = 2  # so that a Windows drive letter (C:/) is not taken for one
REMOTE_RANK = 1 << 30  # sorts after every local chunk
# Given, not inferred: inference opens a footer per path first (seconds for a few hundred files).
READ_DDL = "source string, record_id bigint, line bigint, header_record_id bigint, timestamp string, fields string"


class SparkRunError(RuntimeError):
    """The Spark job failed (a corrupt Parquet page, an executor lost): the run has no complete answer."""


def is_uri(path: str) -> bool:
    """`s3a://b/x`, `dbfs:/x`, `file:/x`: a location for Spark to list, not a local path for the driver."""
    scheme = urlparse(path).scheme
    return len(scheme) >= _MIN_SCHEME and path[len(scheme) :].startswith(":/")


@dataclass
class Plan:
    """The inputs as `run_hunt` sees them, split into what Spark reads (Parquet) and what executors read."""

    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # from listing: before every chunk's, as run_hunt
    late: list[tuple[tuple, Problem]] = field(default_factory=list)  # footer problems, with their place
    parquet: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    place: dict[str, tuple[int, int]] = field(default_factory=dict)  # file -> (chunk rank, index in chunk)
    chunks: list[tuple[int, list[str], list[int]]] = field(default_factory=list)  # non-Parquet files per chunk


def plan_inputs(paths: list[str]) -> Plan:
    plan = Plan()
    local = [p for p in paths if not is_uri(p)]
    plan.remote = [p for p in paths if is_uri(p)]
    for item in iter_inputs(local):
        if isinstance(item, Problem):
            plan.problems.append(item)
        else:
            plan.files.append(item.path)
    chunks = chunk_files(plan.files)
    # run_hunt orders chunk results by their path lists: the same rank here gives the same file order.
    for rank, index in enumerate(sorted(range(len(chunks)), key=lambda i: chunks[i])):
        others: tuple[list[str], list[int]] = ([], [])
        for position, path in enumerate(chunks[index]):
            plan.place[path] = (rank, position)
            if _is_parquet(path):
                meta, reason = parquet_metadata(path)
                if meta is None:
                    plan.late.append(((rank, position, "", -1), Problem(path, "file", reason or "unreadable")))
                else:
                    plan.parquet.append(path)
            else:
                others[0].append(path)
                others[1].append(position)
        if others[0]:
            plan.chunks.append((rank, *others))
    return plan


def _is_parquet(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == PARQUET_MAGIC
    except OSError:
        return False  # the executor's read_events reports it, as the embedded engine would


def shippable_rules(rules: list[LoadedRule]) -> tuple[list[tuple[int, LoadedRule]], list[Refusal]]:
    """(index, rule) pairs that can be pickled for the executors; any other rule is refused, with why."""
    indexed = list(enumerate(rules))
    try:
        pickle.dumps(indexed, protocol=pickle.HIGHEST_PROTOCOL)
        return indexed, []
    except Exception:  # noqa: BLE001 - find the culprits one by one below
        pass
    shipped: list[tuple[int, LoadedRule]] = []
    refused: list[Refusal] = []
    for index, rule in indexed:
        try:
            pickle.dumps(rule, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - whatever pickle says is the reason we report
            info = rule.info
            refused.append(Refusal(info.path or "", info.rule_id, info.title, f"cannot be shipped to Spark executors: {exc}"))
            continue
        shipped.append((index, rule))
    return shipped, refused


def run_spark_hunt(
    options: HuntOptions,
    ruleset: RuleSet | None = None,
    master: str | None = None,
    session: Any = None,
) -> HuntResult:
    started = time.perf_counter()
    ruleset = ruleset if ruleset is not None else load_ruleset(options)
    detector = Detector(ruleset, min_level=options.min_level, state=options.state)
    shipped, not_shipped = shippable_rules(ruleset.rules)
    plan = plan_inputs(options.paths)

    table = pa.Table.from_batches([], schema=tasks.OUT_SCHEMA)
    remote_files = 0
    if plan.chunks or plan.parquet or plan.remote:
        from svchunt.spark.session import get_session

        spark = session if session is not None else get_session(master)
        payload = pickle.dumps(shipped, protocol=pickle.HIGHEST_PROTOCOL)
        broadcast = spark.sparkContext.broadcast((uuid.uuid4().hex, payload))
        try:
            frames, remote_files = _frames(spark, plan, broadcast, options)
            table = _collect(frames)
        finally:
            broadcast.destroy()

    return _result(detector, ruleset, plan, table, remote_files, not_shipped, started)


def _frames(spark: Any, plan: Plan, broadcast: Any, options: HuntOptions) -> tuple[list[Any], int]:
    from pyspark.sql import functions as F

    since, until = options.since, options.until
    frames = []
    if plan.chunks:
        rdd = spark.sparkContext.parallelize(plan.chunks, len(plan.chunks))  # one task per chunk
        chunks = spark.createDataFrame(rdd, "rank int, paths array<string>, indexes array<int>")
        frames.append(chunks.mapInArrow(partial(tasks.scan_files, broadcast=broadcast, since=since, until=until), tasks.OUT_DDL))
    remote_files = 0
    # `file:` + the absolute path, not a bare path: on a cluster a bare path means the default file system
    # (HDFS, DBFS), and not as_uri(): Hadoop takes the text after the scheme literally, escapes and all.
    local = ["file:" + os.path.abspath(p) for p in plan.parquet]
    for paths in (local, plan.remote):
        if not paths:
            continue
        rows = spark.read.schema(READ_DDL).parquet(*paths).select(
            *tasks.EVENT_COLUMNS, F.col("_metadata.file_path").alias("file"), F.col("_metadata.row_index").alias("row")
        )
        if paths is plan.remote:
            remote_files = len(rows.inputFiles())
        frames.append(rows.mapInArrow(partial(tasks.match_rows, broadcast=broadcast, since=since, until=until), tasks.OUT_DDL))
    return frames, remote_files


def _collect(frames: list[Any]) -> pa.Table:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    try:
        table = out.toArrow()
    except Exception as exc:  # py4j / Spark errors carry the executor's traceback; keep its first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkRunError(f"the Spark job failed: {first}") from exc
    return table.cast(tasks.OUT_SCHEMA) if table.schema != tasks.OUT_SCHEMA else table


def _file_key(plan: Plan, local_names: dict[str, str], spark_file: str | None) -> tuple[str, tuple]:
    """(the file as the user named it, its place in run_hunt's order) of a Parquet row's file."""
    if spark_file is None:
        return "", (REMOTE_RANK, 0, "")
    name = local_names.get(unquote(urlparse(spark_file).path)) if spark_file.startswith("file:") else None
    if name is None:
        return spark_file, (REMOTE_RANK, 0, spark_file)
    rank, index = plan.place[name]
    return name, (rank, index, "")


def _result(
    detector: Detector,
    ruleset: RuleSet,
    plan: Plan,
    table: pa.Table,
    remote_files: int,
    not_shipped: list[Refusal],
    started: float,
) -> HuntResult:
    local_names = {os.path.abspath(p): p for p in plan.parquet}
    kinds = table.column("kind")
    matches = table.filter(pc.equal(kinds, tasks.MATCH))
    problem_rows = table.filter(pc.equal(kinds, tasks.PROBLEM))
    counts = table.filter(pc.equal(kinds, tasks.COUNTS))

    keyed: list[tuple[tuple, int, Event]] = []
    events = from_batch(matches)
    columns = {n: matches.column(n).to_pylist() for n in ("rank", "file_index", "pos", "rules", "file")}
    for i, event in enumerate(events):
        if type(event) is not Event:  # the executors wrote these rows from events: cannot happen
            raise SparkRunError(f"a matched event came back unreadable: {event}")
        if columns["rank"][i] is None:  # a Parquet row
            _, place = _file_key(plan, local_names, columns["file"][i])
        else:
            place = (columns["rank"][i], columns["file_index"][i], "")
        for rule_index in columns["rules"][i]:
            keyed.append(((*place, columns["pos"][i]), rule_index, event))
    keyed.sort(key=lambda k: (k[0], k[1]))
    signals: list[Signal] = [detector.signal(rule_index, event) for _, rule_index, event in keyed]

    located = list(plan.late)
    rows = {n: problem_rows.column(n).to_pylist() for n in ("rank", "file_index", "pos", "source", "file", "position", "reason")}
    for i in range(problem_rows.num_rows):
        if rows["rank"][i] is None:
            name, place = _file_key(plan, local_names, rows["file"][i])
            problem = Problem.from_row(name, rows["position"][i], rows["reason"][i])
        else:
            place = (rows["rank"][i], rows["file_index"][i], "")
            problem = Problem.from_row(rows["source"][i], rows["position"][i], rows["reason"][i])
        located.append(((*place, rows["pos"][i]), problem))
    located.sort(key=lambda item: item[0])
    problems = plan.problems + [p for _, p in located]

    outside = sum(v or 0 for v in counts.column("outside").to_pylist())
    stats = RunStats(
        files=len(plan.files) + remote_files,
        records_read=sum(v or 0 for v in counts.column("records").to_pylist()),
        rules_loaded=len(ruleset.rules) - len(not_shipped),
        correlations_loaded=len(detector.correlation_rules),
    )
    stats.count_problems(problems)
    stats.records_matched = len(_identities(e for _, _, e in keyed))

    outcome = detector.alerts(signals)
    notes = list(outcome.notes)
    if outside:
        notes.append(f"{outside} records outside --since/--until (or without a timestamp) were not evaluated")
    stats.seconds = time.perf_counter() - started
    refused = list(detector.refused) + not_shipped
    return HuntResult(alerts=outcome.alerts, stats=stats, problems=problems, refused=refused, notes=notes)


def _identities(events: Iterable[Event]) -> set[tuple]:
    return {(e.source, e.record_id, e.line, e.header_record_id) for e in events}
