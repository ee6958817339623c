"""The one detection core: rule set, matcher, correlator, suppression, baseline, level filter.

`run_hunt` (batch over files), the watch pipeline (streaming) and the Spark driver are thin drivers over a
`Detector`: they feed it events and write out what it returns, so every mode gives the same alerts for
the same input.

- `match` / `match_indexed`: per-event matching (stateless; the matcher is safe to fork or ship to workers).
- `alerts(signals)`: a finite input's whole answer — single-event alerts (less the rules that a
  correlation with `generate: false` silences), correlation alerts, baseline alerts, level filter, sorted.
- `stream(...)`: a `DetectorStream` for unbounded input (watch): same rules, incremental correlation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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
        alerts = [a for a in alerts if self.keep(a)]
        alerts.sort(key=Alert.sort_key)
        return Outcome(alerts, notes)

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
