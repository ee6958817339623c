"""`svchunt hunt` as a library call: inputs → events → signals → correlations → alerts.

Files are spread over worker processes (forked, so the compiled rules are shared, not re-loaded);
each worker streams its file in bounded batches and sends back only the matched events and the
problems it met. Everything after that (correlation, alert order) happens in the parent, so the
answer does not depend on how files were split between workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from svchunt.correlate.incident_keys import event_keys_json
from svchunt.engine.detector import Detector
from svchunt.engine.matcher import Matcher, route_key
from svchunt.engine.spool import FieldSpool, FieldWriter, PackedEvent, pack, run_directory
from svchunt.model import FLAGS_FIELD, Event, HuntResult, Problem, RouteTest, RunStats, Signal, Unrouted
from svchunt.rules.allowlists import load_allowlists
from svchunt.rules.loader import RuleSet, load_rules
from svchunt.sources import iter_inputs, read_events
from svchunt.sources.evtx_ranges import ChunkRange, evtx_chunk_ranges, read_chunk_range
from svchunt.sources.ranges import ByteRange, json_lines_ranges, read_range

BATCH_SIZE = 8192
# Workers take files in chunks and batch events across the files of a chunk: with thousands of
# small EVTX files, evaluating per file would pay every rule's fixed cost per file. Bigger chunks make
# bigger (channel, EventID) groups, which a large rule set evaluates in fewer passes; smaller ones
# balance the workers better at the end. A chunk grows from CHUNK_BYTES up to MAX_CHUNK_BYTES while the
# input still makes CHUNK_COUNT of them; files per chunk grow in the same proportion. The chunks depend on
# the input only, not on the number of workers: results are ordered by chunk, so every worker count (and
# the Spark driver) gives the problems in the same order.
CHUNK_BYTES = 8 << 20
MAX_CHUNK_BYTES = 32 << 20
CHUNK_FILES = 64
CHUNK_COUNT = 16
# A JSON-lines file at least this big is split into byte ranges, and a healthy EVTX file into ranges of
# its chunks, so one big file uses every worker.
SPLIT_BYTES = 64 << 20
RANGES_PER_WORKER = 2


@dataclass
class HuntOptions:
    paths: list[str]
    rule_paths: list[str] = field(default_factory=list)
    builtin: bool = True
    allowlists: list[str] = field(default_factory=list)
    since: str | None = None  # normalised ISO UTC, compared as text
    until: str | None = None
    min_level: str | None = None
    workers: int | None = None
    use_cache: bool = True
    state: str | None = None
    loldrivers: str | None = None  # a LOLDrivers drivers.csv: its hashes join the vulnerable-driver list


@dataclass
class ChunkResult:
    paths: list[str]
    start: int = 0  # byte offset of a range of a split file (0 for whole files): results sort by (paths, start)
    files_done: float = 0.0  # for progress: a range is its share of one file
    records: int = 0
    outside_window: int = 0
    # (rule index, index into `events`): an event that several rules match is sent once
    matches: list[tuple[int, int]] = field(default_factory=list)
    events: list[PackedEvent | Event] = field(default_factory=list)
    fields_path: str | None = None  # the worker's file of the packed events' fields (engine/spool.py)
    problems: list[Problem] = field(default_factory=list)
    # in the parent, after `unpack`: the matches as signals, and how many distinct records they are
    signals: list[Signal] = field(default_factory=list)
    matched: int = 0

    def add_matches(self, found: list[tuple[int, Event]], writer: FieldWriter) -> None:
        index: dict[int, int] = {}
        for rule_index, event in found:
            at = index.get(id(event))
            if at is None:
                at = index[id(event)] = len(self.events)
                self.events.append(pack(event, writer, event_keys_json))
            self.matches.append((rule_index, at))

    def unpack(self, spool: FieldSpool, signal: Callable[[int, Event], Signal]) -> None:
        """`signals` from the matches, the events' fields moved to `spool`; the blobs are let go."""
        base = spool.take(self.fields_path)
        events = [spool.unpack(e, base) if type(e) is PackedEvent else e for e in self.events]
        self.signals = [signal(rule_index, events[at]) for rule_index, at in self.matches]
        # a chunk holds whole files or one range of lines: no record is in two chunks
        self.matched = len({(e.source, e.record_id, e.line, e.header_record_id) for e in events})
        self.events, self.matches, self.fields_path = [], [], None


def rule_paths_for(options: HuntOptions) -> list[str]:
    paths = list(options.rule_paths)
    if options.builtin:
        from svchunt.content import builtin_rule_paths

        paths = [str(p) for p in builtin_rule_paths()] + paths
    return paths


def load_ruleset(options: HuntOptions) -> RuleSet:
    allowlists = load_allowlists(options.allowlists, builtin=True, loldrivers=options.loldrivers)
    return load_rules(rule_paths_for(options), allowlists=allowlists, use_cache=options.use_cache)


# Set in the parent before forking workers; read-only afterwards.
_WORKER: dict[str, object] = {}


def scan_chunk(paths: list[str] | ByteRange | ChunkRange) -> ChunkResult:
    """Read and match a chunk of whole files, or one range of a big JSON-lines or EVTX file."""
    # Records are trees of dicts and lists without cycles, made by the thousand: the cyclic collector would
    # only walk each batch again and again. Paused for one chunk (bounded input), it collects at the end.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan_chunk(paths)
    finally:
        if was_enabled:
            gc.enable()


def _scan_chunk(paths: list[str] | ByteRange | ChunkRange) -> ChunkResult:
    matcher: Matcher = _WORKER["matcher"]  # type: ignore[assignment]
    since: str | None = _WORKER.get("since")  # type: ignore[assignment]
    until: str | None = _WORKER.get("until")  # type: ignore[assignment]
    writer = FieldWriter(_WORKER["run_dir"])  # type: ignore[arg-type]
    # Records no rule meets need not be normalised, only counted; with a time window they are normalised
    # all the same, as the window counts the records outside it whatever their routing.
    route = None if since or until else matcher.record_filter
    if isinstance(paths, ByteRange):
        span = paths
        result = ChunkResult([span.path], span.start, _share(span))
        readers = [read_range(span)]
    elif isinstance(paths, ChunkRange):
        result = ChunkResult([paths.path], paths.start, paths.share)
        readers = [read_chunk_range(paths, route)]
    else:
        result = ChunkResult(list(paths), files_done=len(paths))
        readers = (read_events(path, route) for path in paths)
    batch: list[Event] = []
    for items in readers:
        for item in items:
            if type(item) is not Event:
                if type(item) is Unrouted:
                    result.records += item.count  # type: ignore[union-attr]
                else:
                    result.problems.append(item)  # type: ignore[arg-type]
                continue
            result.records += 1
            if since or until:
                ts = item.timestamp
                if ts is None or (since and ts < since) or (until and ts > until):
                    result.outside_window += 1
                    continue
            elif item.header_record_id is None and _unmatchable(item, route):  # type: ignore[arg-type]
                continue  # (an EVTX record has been asked already, by its reader)
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                result.add_matches(matcher.match_indexed(batch), writer)
                batch.clear()
    if batch:
        result.add_matches(matcher.match_indexed(batch), writer)
    result.fields_path = writer.close()
    return result


def _unmatchable(event: Event, route: RouteTest) -> bool:
    """An event that no rule can match and that has nothing to report (no flag): counted, not batched. The
    EVTX reader asks before normalising where it can (`normalise.shapes.route_record`); this is the same
    test for every other shape (JSON lines, archives), on the normalised fields, which hold every field a
    raw test reads with the same value, and every field a normalised one needs."""
    fields = event.fields
    if FLAGS_FIELD in fields:
        return False
    skips = route(route_key(fields))
    return skips is not None and skips(fields)


def chunk_files(files: list[str] | dict[str, int]) -> list[list[str]]:
    """Big files first (better balance between workers), small ones grouped. `files` may map each path to
    its size (as listed), else each file is measured here."""
    sizes = files if isinstance(files, dict) else {path: _size(path) for path in files}
    limit = min(max(sum(sizes.values()) // CHUNK_COUNT, CHUNK_BYTES), MAX_CHUNK_BYTES)
    max_files = CHUNK_FILES * limit // CHUNK_BYTES
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for path in sorted(files, key=sizes.__getitem__, reverse=True):
        current.append(path)
        size += sizes[path]
        if size >= limit or len(current) >= max_files:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


def _share(span: ByteRange) -> float:
    size = _size(span.path)
    return (span.end - span.start) / size if size else 1.0


def split_big_files(chunks: list[list[str]], workers: int) -> list[list[str] | ByteRange | ChunkRange]:
    """A chunk that is one big JSON-lines or EVTX file becomes ranges of it (a few per worker)."""
    out: list[list[str] | ByteRange | ChunkRange] = []
    for chunk in chunks:
        size = _size(chunk[0]) if len(chunk) == 1 else 0
        spans: list[ByteRange] | list[ChunkRange] | None = None
        if size >= SPLIT_BYTES:
            parts = workers * RANGES_PER_WORKER
            spans = json_lines_ranges(chunk[0], size, parts) or evtx_chunk_ranges(chunk[0], parts)
        if spans:
            out.extend(spans)
        else:
            out.append(chunk)
    return out


def _scan_all(
    files: dict[str, int],
    workers: int,
    on_chunk: Callable[[ChunkResult], None] | None,
    receive: Callable[[ChunkResult], None],
) -> list[ChunkResult]:
    """Every chunk's result, each passed to `receive` as it arrives (then to `on_chunk`)."""
    chunks: list[list[str] | ByteRange | ChunkRange] = list(chunk_files(files))
    if workers > 1:
        chunks = split_big_files(chunks, workers)  # type: ignore[arg-type]
    # The compiled rules (thousands of objects with all SigmaHQ rules) live for the whole scan: frozen, the
    # garbage collector stops walking them on every full collection, in the parent and in forked workers
    # (whose memory pages then stay shared, not copied on the collector's writes).
    gc.freeze()
    try:
        return _scan_chunks(chunks, workers, on_chunk, receive)
    finally:
        gc.unfreeze()


def _scan_chunks(
    chunks: list[list[str] | ByteRange | ChunkRange],
    workers: int,
    on_chunk: Callable[[ChunkResult], None] | None,
    receive: Callable[[ChunkResult], None],
) -> list[ChunkResult]:
    results: list[ChunkResult] = []
    # Workers share the compiled rules by forking; where there is no fork (Windows), run in-process.
    if workers <= 1 or len(chunks) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for chunk in chunks:
            res = scan_chunk(chunk)
            receive(res)
            results.append(res)
            if on_chunk:
                on_chunk(res)
        return results
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes=min(workers, len(chunks))) as pool:
        for res in pool.imap_unordered(scan_chunk, chunks, chunksize=1):
            receive(res)
            results.append(res)
            if on_chunk:
                on_chunk(res)
    return results


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_hunt(
    options: HuntOptions,
    ruleset: RuleSet | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    on_inputs: Callable[[int], None] | None = None,
    detector: Detector | None = None,
) -> HuntResult:
    """`detector`, when given, must be built from `ruleset` with the options' level and state."""
    started = time.perf_counter()
    ruleset = ruleset if ruleset is not None else detector.ruleset if detector is not None else load_ruleset(options)
    if detector is None:
        detector = Detector(ruleset, min_level=options.min_level, state=options.state)

    files: dict[str, int] = {}  # path -> size, in listing order
    problems: list[Problem] = []
    for item in iter_inputs(options.paths):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            files[item.path] = item.size
    if on_inputs:
        on_inputs(len(files))

    workers = options.workers or default_workers()
    # Matched events' fields wait on disk for correlation, incidents and outputs (engine/spool.py): workers
    # write them in the run's directory, the parent gathers them into one unlinked spool file.
    spool = FieldSpool()
    with run_directory() as run_dir:
        _WORKER.clear()
        _WORKER.update(matcher=detector.matcher, since=options.since, until=options.until, run_dir=run_dir)
        results = _scan_all(files, workers, on_chunk, lambda res: res.unpack(spool, detector.signal))

    stats = RunStats(
        files=len(files), rules_loaded=len(ruleset.rules), correlations_loaded=len(detector.correlation_rules)
    )
    signals: list[Signal] = []
    outside = 0
    for res in sorted(results, key=lambda r: (r.paths, r.start)):
        stats.records_read += res.records
        stats.records_matched += res.matched
        outside += res.outside_window
        problems.extend(res.problems)
        signals.extend(res.signals)
        res.signals = []
    del results
    stats.count_problems(problems)

    outcome = detector.alerts(signals)
    notes: list[str] = list(outcome.notes)
    if outside:
        notes.append(f"{outside} records outside --since/--until (or without a timestamp) were not evaluated")
    stats.seconds = time.perf_counter() - started
    return HuntResult(alerts=outcome.alerts, stats=stats, problems=problems, refused=detector.refused, notes=notes)
