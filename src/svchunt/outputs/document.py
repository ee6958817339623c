"""The alert document: the one definition of what an alert says, versioned, that every output reads.

`ALERT_FIELDS` lists each field once: its name, its type, what it means and how it is derived from an
`Alert`. JSONL writes `to_document(alert)` as it is; the CSV columns, the case file's tables (DDL generated
here) and the HTML report's data are all derived from the same list, so a field added here reaches every
output, and `from_document` reads any of them back. docs/alerts.md describes the fields (a test keeps it in
step with this list).

Bump `SCHEMA_VERSION` when a field changes meaning or is removed; adding a field keeps readers working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from svchunt.model import Alert, Evidence, RuleInfo, field_dict

SCHEMA_VERSION = 2  # 1: the unversioned JSONL of earlier releases (no description, falsepositives, claims)

# type name -> DuckDB column type of the case file
TYPES = {"int": "BIGINT", "text": "VARCHAR", "texts": "VARCHAR[]", "json": "JSON", "evidence": None}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str  # a key of TYPES
    doc: str
    get: Callable[[Any], Any]
    rule: bool = False  # the same for every alert of a rule (the HTML report stores it once per rule)


ALERT_FIELDS: tuple[Field, ...] = (
    Field("schema_version", "int", "version of this document", lambda a: SCHEMA_VERSION),
    Field("alert_id", "text", "deterministic id: the same rule and kind on the same evidence give the same id",
          lambda a: a.alert_id),
    Field("timestamp", "text", "event time of the (first) evidence, ISO 8601 UTC", lambda a: a.timestamp),
    Field("level", "text", "informational, low, medium, high or critical", lambda a: a.rule.level, rule=True),
    Field("kind", "text", "detection (one event), correlation (several) or baseline (new for this host)",
          lambda a: a.kind),
    Field("rule_id", "text", "id of the rule or correlation", lambda a: a.rule.rule_id, rule=True),
    Field("title", "text", "title of the rule", lambda a: a.rule.title, rule=True),
    Field("computer", "text", "host the evidence comes from", lambda a: a.computer),
    Field("techniques", "texts", "ATT&CK technique ids from the rule's tags (T1543.003)",
          lambda a: a.rule.techniques, rule=True),
    Field("tags", "texts", "the rule's tags", lambda a: list(a.rule.tags), rule=True),
    Field("claims", "texts", "behaviour items (correlation rules, data-source analytics, mitigations) this alert asserts happened", lambda a: list(a.rule.claims), rule=True),
    Field("covers", "texts", "the same as claims (the name earlier releases used)", lambda a: list(a.rule.claims),
          rule=True),
    Field("description", "text", "what the rule detects", lambda a: a.rule.description, rule=True),
    Field("falsepositives", "texts", "the rule's known false positives: read these before acting",
          lambda a: list(a.rule.falsepositives), rule=True),
    Field("rule_name", "text", "the rule's Sigma `name`, if any", lambda a: a.rule.name, rule=True),
    Field("rule_path", "text", "rule file the rule was loaded from", lambda a: a.rule.path, rule=True),
    Field("group", "json", "group-by values of a correlation ({} for a detection)", lambda a: a.group),
    Field("evidence", "evidence", "the events behind the alert, in time order (see EVIDENCE_FIELDS)",
          lambda a: [evidence_document(e) for e in a.evidence]),
    Field("fields", "json", "the event's normalised fields (a correlation: its first event's)", lambda a: field_dict(a.fields)),
    Field("extra", "json", "kind-specific details, e.g. a correlation's per-event fields under `events`",
          lambda a: a.extra),
)

EVIDENCE_FIELDS: tuple[Field, ...] = (
    Field("source", "text", "input path, or archive!member", lambda e: e.source),
    Field("record_id", "int", "EventRecordID as Event Viewer shows it (or the shape's record number)",
          lambda e: e.record_id),
    Field("event_id", "int", "EventID", lambda e: e.event_id),
    Field("channel", "text", "event channel", lambda e: e.channel),
    Field("timestamp", "text", "event time, ISO 8601 UTC", lambda e: e.timestamp),
    Field("line", "int", "line of a JSON-lines input (1-based), else null", lambda e: e.line),
    Field("header_record_id", "int", "EVTX record-header number, else null", lambda e: e.header_record_id),
)

FIELD_NAMES = tuple(f.name for f in ALERT_FIELDS)
RULE_FIELDS = tuple(f.name for f in ALERT_FIELDS if f.rule)


def evidence_document(ev: Evidence) -> dict[str, Any]:
    return {f.name: f.get(ev) for f in EVIDENCE_FIELDS}


def to_document(alert: Alert) -> dict[str, Any]:
    """The alert as the document every output writes (JSON-able, keys in `ALERT_FIELDS` order)."""
    return {f.name: f.get(alert) for f in ALERT_FIELDS}


def from_document(doc: dict[str, Any]) -> Alert:
    """An Alert from a document (or a case-file row with the same names); missing fields take defaults,
    so documents of older versions read too."""
    claims = tuple(doc.get("claims") or doc.get("covers") or ())
    info = RuleInfo(
        rule_id=doc.get("rule_id") or "",
        title=doc.get("title") or "",
        level=doc.get("level") or "medium",
        tags=tuple(doc.get("tags") or ()),
        covers=claims,
        claims=claims,
        name=doc.get("rule_name"),
        description=doc.get("description") or "",
        falsepositives=tuple(doc.get("falsepositives") or ()),
        path=doc.get("rule_path"),
    )
    evidence = [
        Evidence(**{f.name: e.get(f.name) for f in EVIDENCE_FIELDS}) for e in doc.get("evidence") or ()
    ]
    return Alert(
        rule=info,
        timestamp=doc.get("timestamp"),
        computer=doc.get("computer"),
        evidence=evidence,
        fields=dict(doc.get("fields") or {}),
        kind=doc.get("kind") or "detection",
        group=dict(doc.get("group") or {}),
        extra=dict(doc.get("extra") or {}),
    )


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def case_columns() -> list[tuple[str, str]]:
    """(column, DuckDB type) of the case file's `alerts` table: the document's fields less the evidence
    (its own table), after the case's own `run_id`."""
    return [("run_id", "VARCHAR")] + [(f.name, TYPES[f.type]) for f in ALERT_FIELDS if f.type != "evidence"]  # type: ignore[misc]


def evidence_columns() -> list[tuple[str, str]]:
    return [("alert_id", "VARCHAR"), ("ordinal", "INTEGER")] + [(f.name, TYPES[f.type]) for f in EVIDENCE_FIELDS]  # type: ignore[misc]


def case_ddl() -> str:
    alerts = ", ".join(f"{quote(n)} {t}" for n, t in case_columns())
    evidence = ", ".join(f"{quote(n)} {t}" for n, t in evidence_columns())
    return (
        f"CREATE TABLE IF NOT EXISTS alerts ({alerts}, PRIMARY KEY (alert_id));\n"
        f"CREATE TABLE IF NOT EXISTS evidence ({evidence}, PRIMARY KEY (alert_id, ordinal));\n"
    )
