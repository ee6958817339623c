"""Helpers shared by the correlation tests: synthetic signals and rules (no tests here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from svchunt.correlate import Correlator, load_correlations
from svchunt.model import Event, RuleInfo, Signal

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rule(rule_id: str, name: str | None = None) -> RuleInfo:
    return RuleInfo(rule_id=rule_id, title=f"rule {rule_id}", name=name or rule_id)


_counter = [0]


def event(seconds: float | None, source: str = "Security.evtx", record: int | None = None,
          **fields: Any) -> Event:
    if record is None:
        _counter[0] += 1
        record = _counter[0]
    fields.setdefault("Computer", "host1")
    return Event(fields=fields, timestamp=None if seconds is None else ts(seconds), source=source,
                 record_id=record)


def sig(info: RuleInfo, ev: Event) -> Signal:
    return Signal(info, ev)


def correlator(docs: list[dict], base: list[RuleInfo], lateness: float = 0.0) -> Correlator:
    rules, refused = load_correlations([(f"mem{i}.yml", d) for i, d in enumerate(docs)], base)
    assert not refused, refused
    return Correlator(rules, lateness)


def corr(kind: str, rules: list[str], timespan: str = "60s", group_by: list[str] | None = None,
         condition: dict | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"type": kind, "rules": rules, "timespan": timespan,
                            "group-by": ["Computer"] if group_by is None else group_by}
    if condition is not None:
        body["condition"] = condition
    title = extra.pop("title", f"{kind} over {','.join(rules)}")
    doc: dict[str, Any] = {"title": title, "id": extra.pop("id", f"c-{kind}-{'-'.join(rules)}"),
                           "correlation": body}
    body.update({k: v for k, v in extra.items() if k in ("aliases", "absent", "generate")})
    doc.update({k: v for k, v in extra.items() if k not in ("aliases", "absent", "generate")})
    return doc
