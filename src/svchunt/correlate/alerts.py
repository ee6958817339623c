"""Turn a fired window into an Alert (and the Hit that chained correlations consume)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from svchunt.correlate.occurrence import Hit, Occ, event_identity, event_order
from svchunt.correlate.rule import CorrelationRule
from svchunt.model import Alert, Event, Evidence


def flatten_events(occs: Iterable[Occ]) -> tuple[Event, ...]:
    unique: dict[tuple, Event] = {}
    for occ in occs:
        for event in occ.events:
            unique.setdefault(event_identity(event), event)
    return tuple(sorted(unique.values(), key=event_order))


def make_hit(
    rule: CorrelationRule, occs: list[Occ], group: tuple, metrics: dict[str, Any]
) -> Hit:
    """`occs` are in time order. Alert timestamp = first contributing event; the hit's own time (used by
    chained correlations) = its last occurrence, i.e. the moment the correlation became true."""
    events = flatten_events(occs)
    matched = set().union(*(occ.rules for occ in occs))
    computers = {event.computer for event in events}
    group_dict = dict(zip(rule.group_by, group, strict=True))
    alert = Alert(
        rule=rule.info,
        timestamp=events[0].timestamp if events else None,
        computer=next(iter(computers)) if len(computers) == 1 else None,
        evidence=[Evidence.of(event) for event in events],
        fields={**metrics, **group_dict},
        kind="correlation",
        group=group_dict,
        extra={
            "correlation_type": rule.type,
            "timespan": rule.timespan,
            "first_timestamp": events[0].timestamp if events else None,
            "last_timestamp": events[-1].timestamp if events else None,
            "rules": [rule_id for rule_id in rule.inputs if rule_id in matched],
        },
    )
    return Hit(rule_id=rule.info.rule_id, ts=occs[-1].ts, alert=alert, events=events)
