"""The correlator: runs every correlation rule over the signals of the rule engine.

Batch (`run`) and streaming (`feed`/`flush`) share one code path: signals are buffered per correlation and
group, and a window is only decided once the input is complete up to its end — in batch mode at the end of
the input, in streaming mode when the watermark (max timestamp seen - lateness) has passed it. So the order
in which signals arrive, and how they are split across files or calls, cannot change the alerts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from svchunt.correlate.absence import AbsenceNode
from svchunt.correlate.node import Node
from svchunt.correlate.occurrence import Hit, event_identity, event_order
from svchunt.correlate.rule import CorrelationRule
from svchunt.correlate.timeparse import to_micros
from svchunt.correlate.windows import WindowNode
from svchunt.model import Alert, Signal

STATE_VERSION = 1
_NEVER = -(2**62)
_END = 2**62


class Correlator:
    def __init__(self, rules: list[CorrelationRule], lateness_seconds: float = 0.0) -> None:
        """`rules` in the order load_correlations returns (referenced correlations first)."""
        self.rules = list(rules)
        if lateness_seconds < 0:
            raise ValueError("lateness must not be negative")
        self.lateness_us = _END if math.isinf(lateness_seconds) else round(lateness_seconds * 1_000_000)
        corr_ids = {rule.info.rule_id for rule in self.rules}
        # rules whose own alerts the spec says not to generate (pySigma: any referencing correlation with
        # generate: false disables the referenced rule's output)
        self._quiet: set[str] = {
            ref for rule in self.rules if not rule.generate for ref in rule.inputs
        }
        self._quiet_detections = self._quiet - corr_ids
        self._consumers: dict[str, list[str]] = {}
        for rule in self.rules:
            for ref in rule.inputs:
                self._consumers.setdefault(ref, []).append(rule.info.rule_id)
        self._corr_ids = corr_ids
        self._reset()

    def _reset(self) -> None:
        self.skipped: Counter[str] = Counter()  # reason -> signals not used
        self.nodes: dict[str, Node] = {}
        for rule in self.rules:
            cls = AbsenceNode if rule.type == "absence" else WindowNode
            self.nodes[rule.info.rule_id] = cls(rule, self.skipped)
        self.max_ts = _NEVER
        self.horizon = _NEVER
        self.finished = False

    # -- public API ------------------------------------------------------------
    def suppressed_rule_ids(self) -> set[str]:
        """Detection rules whose own alerts must not be emitted (referenced with `generate: false`)."""
        return set(self._quiet_detections)

    def run(self, signals: Iterable[Signal]) -> list[Alert]:
        """Batch mode: any order in, the same sorted alerts out. Resets any streaming state."""
        self._reset()
        # time order first, so buffers only ever append (the buffers sort anyway; this is for speed)
        ordered = sorted(signals, key=lambda s: event_order(s.event))
        alerts = self.feed(ordered, advance=False)
        alerts += self.flush()
        return sorted(alerts, key=_alert_order)

    def feed(self, signals: Iterable[Signal], advance: bool = True, watermark_us: int | None = None) -> list[Alert]:
        """Streaming mode: buffer signals, then emit what the watermark (max ts - lateness) allows.

        `watermark_us` (microseconds since the epoch, as `timeparse.to_micros`) replaces that watermark when
        the caller knows better, e.g. one watermark per input; it never moves the watermark back.
        """
        if self.finished:
            raise RuntimeError("correlator already flushed; create a new one (or from_state) to continue")
        for signal in signals:
            self._ingest(signal)
        if not advance:
            return []
        if watermark_us is not None:
            return self._advance(max(self.horizon, watermark_us))
        if self.max_ts == _NEVER:
            return []
        return self._advance(max(self.horizon, self.max_ts - self.lateness_us))

    def flush(self) -> list[Alert]:
        """End of input: decide every pending window."""
        alerts = self._advance(_END)
        self.finished = True
        return alerts

    def notes(self) -> list[str]:
        """Why signals did not take part, for the run report (nothing is dropped silently)."""
        return [f"{count} signal(s) skipped: {reason}" for reason, count in sorted(self.skipped.items())]

    # -- state for restarts -----------------------------------------------------
    def to_state(self) -> bytes:
        state = {
            "version": STATE_VERSION,
            "rules": [rule.info.rule_id for rule in self.rules],
            "max_ts": self.max_ts,
            "horizon": self.horizon,
            "skipped": dict(self.skipped),
            "nodes": {rule_id: node.to_json() for rule_id, node in self.nodes.items()},
        }
        return orjson.dumps(state)

    @classmethod
    def from_state(cls, rules: list[CorrelationRule], state: bytes, lateness_seconds: float = 0.0) -> Correlator:
        data = orjson.loads(state)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"correlator state version {data.get('version')!r} is not {STATE_VERSION}")
        self = cls(rules, lateness_seconds)
        self.max_ts = data["max_ts"]
        self.horizon = data["horizon"]
        self.skipped.update(data["skipped"])
        for rule_id, node_state in data["nodes"].items():
            node = self.nodes.get(rule_id)
            if node is None:
                self.skipped[f"state of correlation {rule_id} discarded: rule no longer loaded"] += 1
                continue
            node.load_json(node_state)
        return self

    # -- internals ---------------------------------------------------------------
    def _ingest(self, signal: Signal) -> None:
        rule_id = signal.rule.rule_id
        consumers = self._consumers.get(rule_id)
        if not consumers:
            return
        event = signal.event
        if event.timestamp is None:
            self.skipped[f"no timestamp, cannot be placed in a time window (rule {rule_id})"] += 1
            return
        try:
            ts = to_micros(event.timestamp)
        except ValueError:
            self.skipped[f"unreadable timestamp {event.timestamp!r} (rule {rule_id})"] += 1
            return
        if ts < self.horizon:
            self.skipped[f"arrived after the watermark (later than the allowed lateness), rule {rule_id}"] += 1
            return
        self.max_ts = max(self.max_ts, ts)
        order = (ts, *event_order(event)[1:], "")
        ident = event_identity(event)
        for consumer in consumers:
            self.nodes[consumer].ingest(rule_id, ts, order, ident, (event,), event.fields)

    def _advance(self, horizon: int) -> list[Alert]:
        self.horizon = max(self.horizon, horizon)
        alerts: list[Alert] = []
        out_horizon: dict[str, int] = {}
        for rule in self.rules:  # referenced correlations come first
            rule_id = rule.info.rule_id
            node = self.nodes[rule_id]
            node_horizon = self.horizon
            for ref in rule.inputs:
                if ref in self._corr_ids:
                    node_horizon = min(node_horizon, out_horizon[ref])
            hits: list[Hit] = node.advance(node_horizon)
            out_horizon[rule_id] = node.output_horizon()
            for hit in hits:
                if rule_id not in self._quiet:
                    alerts.append(hit.alert)
                for consumer in self._consumers.get(rule_id, ()):
                    self.nodes[consumer].ingest_hit(hit)
        return sorted(alerts, key=_alert_order)


def _alert_order(alert: Alert) -> tuple:
    return (*alert.sort_key(), alert.alert_id)


def describe(rule: CorrelationRule) -> dict[str, Any]:
    """Short summary for `svchunt rules` style listings."""
    return {
        "id": rule.info.rule_id,
        "title": rule.info.title,
        "type": rule.type,
        "rules": list(rule.rule_ids),
        "absent": list(rule.absent_ids),
        "group_by": list(rule.group_by),
        "timespan": rule.timespan,
        "condition": rule.condition.describe() if rule.condition else None,
        "generate": rule.generate,
    }
