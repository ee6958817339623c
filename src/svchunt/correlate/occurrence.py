"""What a correlation buffers: one occurrence = one event (or one inner-correlation hit) in one group."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import orjson

from svchunt.model import Alert, Event, field_dict


def event_identity(event: Event) -> tuple:
    """Same event seen twice (matched by two rules, or the same file given twice) -> same identity."""
    ident: tuple = (event.source, event.record_id, event.line, event.header_record_id, event.timestamp)
    if event.record_id is None and event.line is None and event.header_record_id is None:
        ident += (hashlib.sha256(orjson.dumps(field_dict(event.fields), option=orjson.OPT_SORT_KEYS)).hexdigest(),)
    return ident


def event_order(event: Event) -> tuple:
    """Deterministic order of events, ties on the timestamp broken by provenance."""
    return (
        event.timestamp or "",
        event.source,
        -1 if event.record_id is None else event.record_id,
        -1 if event.line is None else event.line,
        -1 if event.header_record_id is None else event.header_record_id,
    )


@dataclass(slots=True)
class Occ:
    ts: int  # microseconds; the time this occurrence counts at
    order: tuple  # total order among occurrences (ts first)
    ident: tuple
    rules: set[str]  # referenced rules (ids) this occurrence matched
    events: tuple[Event, ...]  # contributing events (several for an inner correlation's hit)
    value: Any = None  # value_* correlations: the field value(s)

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "order": list(self.order),
            "ident": list(self.ident),
            "rules": sorted(self.rules),
            "events": [event_to_json(e) for e in self.events],
            "value": _value_to_json(self.value),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Occ:
        return cls(
            ts=data["ts"],
            order=tuple(data["order"]),
            ident=tuple(data["ident"]),
            rules=set(data["rules"]),
            events=tuple(event_from_json(e) for e in data["events"]),
            value=_value_from_json(data["value"]),
        )


@dataclass(slots=True)
class Hit:
    """A correlation that fired: becomes an alert, and an input of correlations that reference it."""

    rule_id: str
    ts: int  # when it fired = its last contributing occurrence (what chained windows measure)
    alert: Alert
    events: tuple[Event, ...]


def event_to_json(event: Event) -> dict[str, Any]:
    return {
        "fields": field_dict(event.fields),
        "timestamp": event.timestamp,
        "source": event.source,
        "record_id": event.record_id,
        "line": event.line,
        "header_record_id": event.header_record_id,
    }


def event_from_json(data: dict[str, Any]) -> Event:
    return Event(
        fields=data["fields"],
        timestamp=data["timestamp"],
        source=data["source"],
        record_id=data["record_id"],
        line=data["line"],
        header_record_id=data["header_record_id"],
    )


def _value_to_json(value: Any) -> Any:
    if isinstance(value, Fraction):
        return {"fraction": str(value)}
    if isinstance(value, tuple):
        return {"tuple": list(value)}
    return value


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict) and "fraction" in value:
        return Fraction(value["fraction"])
    if isinstance(value, dict) and "tuple" in value:
        return tuple(value["tuple"])
    return value
