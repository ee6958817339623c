"""The watch loop: batch -> events -> signals -> alerts (as `hunt`) -> sinks -> commit -> acknowledge.

Order matters for the guarantees:
1. alerts are written to the sinks first (a crash now means the batch is replayed; the JSON-lines sinks read
   back the ids written after their last committed size, and the state's emitted ids cover the rest, so no
   alert is written twice);
2. then input positions, correlator state, sink sizes and the new alert ids are committed in one transaction
   (which also forgets the ids of alerts older than the dedupe retention);
3. only then are inputs acknowledged (Redis items trimmed, HTTP clients answered), so no acknowledged event
   can be lost.

The correlator's watermark is kept per input stream (see `watermark.py`): the minimum over the active ones,
and, once nothing new arrived anywhere for `idle_timeout` seconds, the newest event time seen, so windows
waiting for more traffic close without it.

Detection itself (matching, correlations, suppression, level filter) is the `Detector`'s, as in `hunt`:
this module only feeds it batches and moves its watermark. An event older than the watermark (later than the
allowed lateness) still gets its single-event detections; it is counted, logged and written to the problems
file, because the correlation windows it belonged to were already decided.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from svchunt.correlate.timeparse import from_micros, to_micros
from svchunt.engine.detector import Detector, DetectorStream, Step
from svchunt.model import FLAGS_FIELD, Alert, Event, Problem
from svchunt.rules.loader import RuleSet
from svchunt.watch.batcher import Batch, next_batch
from svchunt.watch.chunk import Chunk
from svchunt.watch.records import RecordParser, reason_kind
from svchunt.watch.state import Prune, StateStore
from svchunt.watch.stats import Stats
from svchunt.watch.watermark import InputQueue, Watermarks

LOG_PER_REASON = 20  # problems logged one by one per reason; the rest are counted


class Input(Protocol):
    key: str

    def start(self, out: Any, positions: dict[str, Any], stats: Stats) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


class Sink(Protocol):
    name: str

    def open(self, saved: dict[str, Any] | None) -> tuple[set[str], str | None]: ...
    def write(self, alerts: list[Alert]) -> None: ...
    def state(self) -> dict[str, Any] | None: ...
    def close(self) -> None: ...


@dataclass
class WatchOptions:
    state_path: str
    batch_size: int = 5000
    flush_interval: float = 0.5  # seconds: the longest a record waits for its batch
    lateness: float = 60.0  # seconds of event time a late event may lag the newest one
    queue_chunks: int = 32  # chunks (up to 2000 records each) in flight between inputs and the pipeline
    min_level: str | None = None
    stats_interval: float = 0.0  # 0 = no periodic stats line
    problems_path: str | None = None  # every skipped record as a JSON line
    # seconds between commits: the correlator state grows with the lateness, and writing it after every
    # batch would cost more than the batch; alerts still go out per batch, acknowledgements wait for the commit
    checkpoint_interval: float = 1.0
    # seconds of processing time with nothing pending and nothing new after which an input stops holding the
    # watermark back; when that holds for every input, all pending windows are decided
    idle_timeout: float = 5.0
    # seconds of event time an emitted alert id is kept (for dedupe) behind the watermark
    dedupe_retention: float = 7 * 86400.0


class Watcher:
    def __init__(
        self,
        options: WatchOptions,
        ruleset: RuleSet,
        inputs: list[Input],
        sinks: list[Sink],
        log: Callable[[str], None] = lambda text: None,
        stats: Stats | None = None,
    ) -> None:
        self.options = options
        self.inputs = inputs
        self.sinks = sinks
        self.log = log
        self.stats = stats or Stats()
        self.stats.on_notice = log
        self.queue: queue.Queue = queue.Queue(maxsize=options.queue_chunks)
        self.detector = Detector(ruleset, min_level=options.min_level)
        self.refused = self.detector.correlation_refused
        self.parser = RecordParser()
        self._stop = threading.Event()
        self._logged: Counter[str] = Counter()
        self._problems_fh: Any = None
        self.state = StateStore(options.state_path)
        self.stream = self._restore_stream()
        self.seen: set[str] = self.state.emitted_ids()
        self.marks = Watermarks(options.lateness, options.idle_timeout)
        self.pruned = 0  # emitted ids forgotten after the dedupe retention
        self._pending_values: dict[str, Any] = {}
        self._pending_ids: list[tuple[str, int | None]] = []
        self._pending_acks: list[Chunk] = []
        self._last_commit = time.monotonic()

    def _restore_stream(self) -> DetectorStream:
        saved = self.state.get_bytes("correlator")
        if saved is not None:
            try:
                return self.detector.stream(self.options.lateness, saved)
            except (ValueError, KeyError, TypeError) as exc:
                self.log(f"correlator state not usable ({exc}): starting with empty windows")
        return self.detector.stream(self.options.lateness)

    @property
    def correlator(self):
        return self.stream.correlator

    def stop(self) -> None:
        """Ask the loop to finish: inputs stop, what they already handed on is processed and committed."""
        self._stop.set()

    # -- run -----------------------------------------------------------------------
    def run(self) -> Stats:
        for sink in self.sinks:
            ids, notice = sink.open(self.state.get("sink:" + sink.name))
            if notice:
                self.log(notice)
            if ids:
                self.log(f"{sink.name}: {len(ids)} alert(s) written before a crash and not committed: not written again")
            self.seen |= ids
            # into the emitted ids with the next commit: that commit also moves the sink's committed size past
            # them, so a later crash (before their events are committed again) cannot make them look new
            self._pending_ids.extend((i, None) for i in sorted(ids))
        if self.options.problems_path:
            self._problems_fh = open(self.options.problems_path, "ab")  # noqa: SIM115
        positions = self.state.positions("pos:")
        for source in self.inputs:
            self.marks.add_input(source.key)
        for source in self.inputs:
            source.start(InputQueue(self.queue, source.key, self.marks), positions, self.stats)
        waiting = {source.key for source in self.inputs}
        last_stats = time.monotonic()
        try:
            while waiting and not self._stop.is_set():
                batch = next_batch(self.queue, self.options.batch_size, self.options.flush_interval)
                self.stats.queue_depth = self.queue.qsize()
                if batch:
                    self.process(batch)
                    waiting.difference_update(batch.done)
                else:
                    self._idle()
                    if self._pending_acks or self._pending_ids or self._pending_values:
                        self.commit()  # idle: nothing more to amortise over
                if self.options.stats_interval and time.monotonic() - last_stats >= self.options.stats_interval:
                    last_stats = time.monotonic()
                    self.log("stats " + orjson.dumps(self.stats.line()).decode())
            finished = not waiting
            for source in self.inputs:
                source.stop()
            while True:  # what the inputs handed on before stopping is processed, not left unacknowledged
                batch = next_batch(self.queue, self.options.batch_size, 0.0, idle_wait=0.05)
                if not batch:
                    break
                self.process(batch)
            self.commit()
            if finished:
                self._finish()
        finally:
            for source in self.inputs:
                source.join(2.0)
            for sink in self.sinks:
                sink.close()
            if self._problems_fh:
                self._problems_fh.close()
            self.state.close()
        return self.stats

    def _finish(self) -> None:
        """Every input ended (stdin EOF, --once): decide the pending correlation windows.

        The correlator state is left as committed before the flush, so a later run on more input goes on
        from there; the flushed alerts are in the emitted ids, so they are not repeated.
        """
        alerts = self._new(self.stream.flush())
        self._emit(alerts)
        self.state.commit(self._sink_values(), {}, [(a.alert_id, _newest_us(a)) for a in alerts])
        self.stats.batch_done(0, len(alerts), None, 0.0)

    # -- one batch -----------------------------------------------------------------
    def process(self, batch: Batch) -> None:
        events: list[Event] = []
        problems: list[Problem] = []
        parse = self.parser.parse
        oldest = min((c.received for c in batch.chunks if c.received), default=time.time())
        for key in batch.done:
            self.marks.done(key)
        for chunk in batch.chunks:
            problems.extend(chunk.problems)
            source = chunk.source
            newest = ""
            for line, raw in chunk.lines:
                item = parse(raw, source, line)
                if type(item) is Event:
                    events.append(item)
                    if FLAGS_FIELD in item.fields:
                        problems.append(Problem.flagged(item))
                    ts = item.timestamp  # fixed-width ISO UTC: sorts as text
                    if ts and ts > newest:
                        newest = ts
                else:
                    problems.append(item)  # type: ignore[arg-type]
            self.marks.processed(chunk, _micros(newest))
        for problem in problems:
            self._problem(problem)
        mark = _time_text(self.stream.horizon)  # what "late" is measured against in this batch
        step = self._feed(events)
        for event in step.late:
            self._late(event, mark)
        if self._problems_fh and (problems or step.late):
            self._problems_fh.flush()  # readable while the run goes on, not only at exit
        alerts = self._new(step.alerts)
        self._emit(alerts)
        for chunk in batch.chunks:
            if chunk.position is not None:
                self._pending_values["pos:" + chunk.key] = chunk.position
            if chunk.ack is not None:
                self._pending_acks.append(chunk)
        self._pending_ids.extend((a.alert_id, _newest_us(a)) for a in alerts)
        newest = max((e.timestamp for e in events if e.timestamp), default=None)
        self.stats.batch_done(len(events), len(alerts), newest, time.time() - oldest)
        if time.monotonic() - self._last_commit >= self.options.checkpoint_interval:
            self.commit()

    def _feed(self, events: list[Event]) -> Step:
        if self.marks.lateness_us is None:  # infinite lateness: the correlator's own (never moving) watermark
            step = self.stream.feed(events)
        else:
            mark = self.marks.watermark()
            step = self.stream.feed(events, advance=False) if mark is None else self.stream.feed(events, mark)
        self._show_watermark()
        return step

    def _show_watermark(self) -> None:
        text = _time_text(self.stream.horizon)
        if text is not None:
            self.stats.watermark = text

    def _idle(self) -> None:
        """Nothing arrived for a moment: move the watermark if idle inputs allow it, deciding waiting windows."""
        mark = self.marks.watermark()
        if mark is None or mark <= self.stream.horizon:
            return
        alerts = self._new(self.stream.advance(mark))
        self._show_watermark()
        self._emit(alerts)
        self._pending_ids.extend((a.alert_id, _newest_us(a)) for a in alerts)
        if alerts:  # out at once; a watermark move alone waits for the next checkpoint
            self.stats.batch_done(0, len(alerts), None, 0.0)
            self.commit()

    def commit(self) -> None:
        """Positions, correlator state, sink sizes and emitted ids in one transaction; then the acks."""
        values = {**self._sink_values(), **self._pending_values}
        horizon = self.stream.horizon
        retention_us = round(self.options.dedupe_retention * 1_000_000)
        prune = Prune(horizon - retention_us if horizon > -(2**61) else None, self.options.dedupe_retention)
        pruned = self.state.commit(values, {"correlator": self.stream.to_state()}, self._pending_ids, prune)
        if pruned:
            self.seen.difference_update(pruned)
            self.pruned += len(pruned)
            self.stats.dedupe_pruned += len(pruned)
        self._last_commit = time.monotonic()
        acks, self._pending_acks = self._pending_acks, []
        self._pending_values, self._pending_ids = {}, []
        for chunk in acks:
            try:
                chunk.ack()  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - the batch is committed; a failed ack means a replay later
                self.log(f"{chunk.source}: acknowledgement failed ({exc}); the items will be read again")

    def _new(self, alerts: list[Alert]) -> list[Alert]:
        out: list[Alert] = []
        seen = self.seen
        for alert in alerts:
            alert_id = alert.alert_id
            if alert_id in seen:
                self.stats.duplicates_suppressed += 1
                continue
            seen.add(alert_id)
            out.append(alert)
        return out

    def _emit(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        alerts.sort(key=Alert.sort_key)
        for sink in self.sinks:
            sink.write(alerts)

    def _sink_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for sink in self.sinks:
            state = sink.state()
            if state is not None:
                values["sink:" + sink.name] = state
        return values

    def _problem(self, problem: Problem) -> None:
        kind = reason_kind(problem.reason)
        if problem.kept:
            self.stats.count_flagged()
        else:
            self.stats.count_skipped(kind)
        self._logged[kind] += 1
        verb = "flagged" if problem.kept else "skipped"
        if self._logged[kind] <= LOG_PER_REASON:
            self.log(f"{verb} {problem.source} {problem.position}: {problem.reason[:300]}")
        elif self._logged[kind] == LOG_PER_REASON + 1:
            self.log(f"more records {verb} for '{kind}': counted in the stats, no longer logged one by one")
        record = {"source": problem.source, "position": problem.position, "reason": problem.reason}
        if problem.kept:
            record["kind"] = "flagged"
        self._write_problem(record)

    def _late(self, event: Event, mark: str | None) -> None:
        """An event older than the watermark: detected on its own, but its correlation windows are decided."""
        self.stats.count_late()
        position = f"line {event.line}" if event.line is not None else f"record {event.record_id}"
        reason = (f"late event: {event.timestamp} is older than the watermark {mark} "
                  f"(allowed lateness {self.options.lateness:g} s); single-event detections only, not correlated")
        self._logged["late"] += 1
        if self._logged["late"] <= LOG_PER_REASON:
            self.log(f"{event.source} {position}: {reason}")
        elif self._logged["late"] == LOG_PER_REASON + 1:
            self.log("more late events: counted in the stats (late_events), no longer logged one by one")
        self._write_problem({"source": event.source, "position": position, "reason": reason, "kind": "late"})

    def _write_problem(self, record: dict[str, Any]) -> None:
        if self._problems_fh:
            self._problems_fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))


def _time_text(micros: int) -> str | None:
    """A correlator horizon as ISO text; None before any event and after the end of input."""
    if not -(2**61) < micros < 2**61:
        return None
    try:
        return from_micros(micros)
    except (ValueError, OverflowError, OSError):
        return None


def _micros(timestamp: str | None) -> int | None:
    if not timestamp:
        return None
    try:
        return to_micros(timestamp)
    except ValueError:
        return None


def _newest_us(alert: Alert) -> int | None:
    """Event time of the alert's newest evidence: what the dedupe retention is measured from."""
    return _micros(max((e.timestamp for e in alert.evidence if e.timestamp), default=None))
