"""The one detection core: rule set, matcher, correlator, suppression, baseline, level filter.

`run_hunt` (batch over files), the watch pipeline (streaming) and the Spark driver are thin drivers over a
`Detector`: they feed it events and write out what it returns, so every mode gives the same alerts for
the same input.

- `match` / `match_indexed`: per-event matching (stateless; the matcher is safe to fork or ship to workers).
- `alerts(signals)`: a finite input's whole answer — single-event alerts (less the rules that a
  correlation with `generate: false` silences), correlation alerts, baseline alerts, level filter, sorted.
- `stream(lateness, saved)`: a `DetectorStream` for unbounded input (watch): the same matching, suppression
  and level filter, with correlations decided as the watermark passes; its state survives restarts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from svchunt.engine.matcher import Matcher
from svchunt.model import LEVEL_RANK, Alert, Event, Refusal, Signal, alert_from_signal
from svchunt.rules.loader import RuleSet


@dataclass
class Outcome:
    alerts: list[Alert]
    notes: list[str] = field(default_factory=list)


class Detector:
    def __init__(self, ruleset: RuleSet, min_level: str | None = None, state: str | None = None) -> None:
        from svchunt.correlate import load_correlations

        self.ruleset = ruleset
        self.matcher = Matcher(ruleset.rules)
        docs = ruleset.correlation_docs
        corr_rules, corr_refused = load_correlations(docs, ruleset.infos) if docs else ([], [])
        self.correlation_rules = list(corr_rules)
        self.correlation_refused: list[Refusal] = list(corr_refused)
        self.refused: list[Refusal] = list(ruleset.refused) + list(corr_refused)
        self.min_level = min_level
        self.floor = LEVEL_RANK[min_level] if min_level else None
        self.state = state
        self._suppressed = self._correlator().suppressed_rule_ids()

    # -- per event ---------------------------------------------------------------
    @property
    def infos(self):
        return self.matcher.infos

    def match_indexed(self, events: list[Event]) -> list[tuple[int, Event]]:
        return self.matcher.match_indexed(events)

    def match(self, events: list[Event]) -> list[Signal]:
        return self.matcher.match(events)

    def signal(self, rule_index: int, event: Event) -> Signal:
        return Signal(self.matcher.infos[rule_index], event)

    # -- alerts ------------------------------------------------------------------
    def suppressed(self, signal: Signal) -> bool:
        return signal.rule.rule_id in self._suppressed

    def keep(self, alert: Alert) -> bool:
        return self.floor is None or LEVEL_RANK.get(alert.rule.level, 0) >= self.floor

    def detections(self, signals: Iterable[Signal]) -> list[Alert]:
        return [alert_from_signal(s) for s in signals if not self.suppressed(s)]

    def kept(self, alerts: Iterable[Alert]) -> list[Alert]:
        return [a for a in alerts if self.keep(a)] if self.floor is not None else list(alerts)

    def alerts(self, signals: list[Signal]) -> Outcome:
        """The complete answer for a finite input: detections, correlations, baseline; filtered and sorted."""
        correlator = self._correlator()
        alerts = self.detections(signals)
        alerts.extend(correlator.run(signals))
        notes = list(correlator.notes())
        if self.state:
            from svchunt.correlate.baseline import ServiceBaseline

            with ServiceBaseline(self.state) as baseline:
                outcome = baseline.process(signals)
            alerts.extend(outcome.alerts)
            notes.extend(outcome.notes)
        alerts = self.kept(alerts)
        alerts.sort(key=Alert.sort_key)
        return Outcome(alerts, notes)

    @staticmethod
    def document(alert: Alert) -> dict[str, Any]:
        """The alert as the one versioned alert document every output writes (`svchunt.outputs.document`)."""
        from svchunt.outputs.document import to_document

        return to_document(alert)

    def detect(self, events: list[Event]) -> Outcome:
        """Match and decide a finite list of events in one call (audit, tests, small inputs)."""
        return self.alerts(self.match(events))

    def _correlator(self, lateness_seconds: float = 0.0):
        from svchunt.correlate import Correlator

        return Correlator(self.correlation_rules, lateness_seconds)

    def correlator(self, lateness_seconds: float = 0.0, saved: bytes | None = None):
        """A correlator for streaming: fresh, or restored from `Correlator.to_state()` bytes."""
        from svchunt.correlate import Correlator

        if saved is not None:
            return Correlator.from_state(self.correlation_rules, saved, lateness_seconds)
        return Correlator(self.correlation_rules, lateness_seconds)

    def stream(self, lateness_seconds: float = 0.0, saved: bytes | None = None) -> DetectorStream:
        """Streaming detection; `saved` is a previous `DetectorStream.to_state()` (ValueError if unusable)."""
        return DetectorStream(self, self.correlator(lateness_seconds, saved))


_NEVER = -(2**61)  # below any real horizon: the correlator starts at -(2**62)


@dataclass
class Step:
    """What one fed batch gave: alerts (suppressed and level-filtered), and the events that came later
    than the allowed lateness: matched on their own, too late for correlation windows already decided."""

    alerts: list[Alert]
    late: list[Event] = field(default_factory=list)


class DetectorStream:
    """A `Detector` over unbounded input: feed batches, move the watermark, flush at the end, save the state."""

    def __init__(self, detector: Detector, correlator: Any) -> None:
        self.detector = detector
        self.correlator = correlator

    @property
    def horizon(self) -> int:
        """Event time (µs) before which correlation windows are decided; events older than it are late."""
        return self.correlator.horizon

    def feed(self, events: list[Event], watermark_us: int | None = None, advance: bool = True) -> Step:
        """Match `events`, feed their signals to the correlations, then move the watermark: to `watermark_us`
        when given (never back), else to the newest event time less the lateness (unless `advance` is off)."""
        late = self.late(events)
        signals = self.detector.match(events) if events else []
        alerts = self.detector.detections(signals)
        alerts.extend(self.correlator.feed(signals, advance=advance, watermark_us=watermark_us))
        return Step(self.detector.kept(alerts), late)

    def advance(self, watermark_us: int) -> list[Alert]:
        """Move the watermark with no new events (idle inputs), deciding the windows it passes."""
        return self.detector.kept(self.correlator.feed([], watermark_us=watermark_us))

    def flush(self) -> list[Alert]:
        """End of input: decide every pending window."""
        return self.detector.kept(self.correlator.flush())

    def to_state(self) -> bytes:
        return self.correlator.to_state()

    def notes(self) -> list[str]:
        return list(self.correlator.notes())

    def late(self, events: list[Event]) -> list[Event]:
        horizon = self.correlator.horizon
        if horizon <= _NEVER or not events:
            return []
        from svchunt.correlate.timeparse import from_micros, to_micros

        try:
            mark = from_micros(horizon)
        except (ValueError, OverflowError, OSError):  # the watermark is past any date (after a flush)
            return [e for e in events if e.timestamp]
        out = []
        for event in events:
            ts = event.timestamp
            # fixed-width ISO text sorts as time; the exact test only for the few that look older
            if ts and ts < mark:
                try:
                    if to_micros(ts) < horizon:
                        out.append(event)
                except ValueError:
                    pass  # an unreadable timestamp is not late; the correlator counts it apart
        return out
