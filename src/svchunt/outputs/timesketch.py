"""Alerts as a Timesketch timeline: CSV or JSON Lines with `message`, `datetime`, `timestamp_desc`.

Those three columns are what Timesketch's importer requires (its "CSV and JSONL" import format); `timestamp`
(microseconds since the epoch) and the extra columns become event attributes that can be searched and
filtered: host, level, rule, incident, the event's id/channel/record and the fields that tell the story.
The format is chosen by the file name: `.csv`, or `.jsonl` / `.json`. CSV cells are neutralised against
formula injection like `--csv` (`csv_out.neutralise`). An alert without any time cannot be placed on a
timeline: it is left out and counted (`TimelineStats.untimed`), never dropped silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from svchunt.correlate.incident_keys import alert_facts, telling_field
from svchunt.correlate.incidents import Incident, incidents_by_alert
from svchunt.model import Alert
from svchunt.outputs.csv_out import evidence_ref, neutralise

COLUMNS = (
    "message", "datetime", "timestamp", "timestamp_desc",
    "hostname", "level", "rule_title", "rule_id", "alert_id", "alert_kind", "incident_id", "incident_title",
    "techniques", "tags", "event_id", "channel", "record_id", "evidence", "detail_field", "detail",
    "service_name", "image_path", "command_line", "source_ip", "source_workstation", "account",
)  # fmt: skip
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


@dataclass(slots=True)
class TimelineStats:
    written: int = 0
    untimed: int = 0  # alerts with no timestamp at all (not on the timeline)


def timeline_format(path: str) -> str | None:
    return FORMATS.get(Path(path).suffix.lower())


def _time(alert: Alert) -> str | None:
    return alert.timestamp or next((e.timestamp for e in alert.evidence if e.timestamp), None)


def _micros(ts: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(parsed.timestamp()) * 1_000_000 + parsed.microsecond


def timeline_row(alert: Alert, incident: Incident | None) -> dict[str, Any] | None:
    ts = _time(alert)
    micros = _micros(ts) if ts else None
    if ts is None or micros is None:
        return None
    name, value = telling_field(alert)
    facts = alert_facts(alert)
    first = alert.evidence[0] if alert.evidence else None
    host = alert.computer or ""
    detail = f" — {name}: {value}" if name else ""
    fields = alert.fields
    return {
        "message": f"[{alert.rule.level}] {alert.rule.title} on {host or '(unknown host)'}{detail}",
        # Timesketch's documented form: ISO 8601 with a numeric UTC offset.
        "datetime": ts[:-1] + "+00:00" if ts.endswith("Z") else ts,
        "timestamp": micros,
        "timestamp_desc": "Correlation start (first event)" if alert.kind == "correlation" else "Event logged",
        "hostname": host,
        "level": alert.rule.level,
        "rule_title": alert.rule.title,
        "rule_id": alert.rule.rule_id,
        "alert_id": alert.alert_id,
        "alert_kind": alert.kind,
        "incident_id": incident.incident_id if incident else "",
        "incident_title": incident.title if incident else "",
        "techniques": ",".join(alert.rule.techniques),
        "tags": ",".join(alert.rule.tags),
        "event_id": first.event_id if first else None,
        "channel": first.channel if first else None,
        "record_id": first.record_id if first else None,
        "evidence": " | ".join(evidence_ref(e) for e in alert.evidence),
        "detail_field": name,
        "detail": value,
        "service_name": facts.services[0] if facts.services else "",
        "image_path": facts.images[0] if facts.images else "",
        "command_line": str(fields.get("CommandLine") or ""),
        "source_ip": facts.addresses[0] if facts.addresses else "",
        "source_workstation": facts.workstations[0] if facts.workstations else "",
        "account": facts.accounts[0] if facts.accounts else "",
    }


def write_timesketch(alerts: list[Alert], incidents: list[Incident], path: str) -> TimelineStats:
    fmt = timeline_format(path)
    if fmt is None:
        raise ValueError(f"{path}: Timesketch output must end in .csv or .jsonl")
    owner = incidents_by_alert(incidents)
    stats = TimelineStats()
    rows = []
    for alert in sorted(alerts, key=lambda a: a.sort_key()):
        row = timeline_row(alert, owner.get(alert.alert_id))
        if row is None:
            stats.untimed += 1
            continue
        rows.append(row)
    rows.sort(key=lambda r: (r["timestamp"], r["alert_id"]))
    if fmt == "csv":
        # newline="" lets the csv module quote a CR/LF inside a cell instead of splitting the row.
        with Path(path).open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow([neutralise("" if row[c] is None else str(row[c])) for c in COLUMNS])
    else:
        opts = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
        with Path(path).open("wb") as out:
            for row in rows:
                out.write(orjson.dumps({k: v for k, v in row.items() if v not in (None, "")}, option=opts))
    stats.written = len(rows)
    return stats
