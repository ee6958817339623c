"""Alerts as CSV for spreadsheets, with formula injection neutralised.

Event fields are attacker-controlled: a service named `=HYPERLINK(...)` must not become a live formula when
the analyst opens the file in Excel or LibreOffice, so such cells get a leading `'`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson

from svchunt.model import Alert, Evidence
from svchunt.outputs.document import ALERT_FIELDS, Field
from svchunt.values import to_text

# Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection guidance).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Event fields worth a column of their own; everything else stays available in `fields_json`.
KEY_FIELDS = (
    "EventID",
    "Channel",
    "Provider_Name",
    "ServiceName",
    "ImagePath",
    "ServiceType",
    "StartType",
    "AccountName",
    "Image",
    "CommandLine",
    "ParentImage",
    "User",
    "SubjectUserName",
    "TargetObject",
    "Details",
)


def _column(field: Field) -> str:
    return f"{field.name}_json" if field.type == "json" else field.name


# One column per field of the alert document, in its order (lists joined by `;`, JSON as text, evidence as
# `source#record_id` references), with the key event fields after the evidence.
_DOC_COLUMNS = tuple(_column(f) for f in ALERT_FIELDS)
_AT = _DOC_COLUMNS.index("evidence") + 1
COLUMNS = (*_DOC_COLUMNS[:_AT], *KEY_FIELDS, *_DOC_COLUMNS[_AT:])


def neutralise(value: str) -> str:
    """Prefix a `'` to a cell a spreadsheet would evaluate as a formula."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=to_text).decode()
    return neutralise(to_text(value) or "")


def evidence_ref(ev: Evidence) -> str:
    """`source#record_id`, or `source:line` for JSON lines without a record id."""
    if ev.record_id is not None:
        return f"{ev.source}#{ev.record_id}"
    if ev.line is not None:
        return f"{ev.source}:{ev.line}"
    return ev.source


def alert_row(alert: Alert) -> list[str]:
    doc = alert.to_dict()
    values: list[Any] = []
    for field in ALERT_FIELDS:
        value = doc[field.name]
        if field.type == "texts":
            value = ";".join(value)
        elif field.type == "evidence":
            value = " | ".join(evidence_ref(e) for e in alert.evidence)
        elif field.type == "json":
            value = value or None
        values.append(value)
        if field.type == "evidence":
            values.extend(alert.fields.get(name) for name in KEY_FIELDS)
    return [_cell(v) for v in values]


def write_csv(alerts: list[Alert], path: str) -> int:
    """Write one row per alert (sorted like the JSONL output); returns the number of data rows."""
    ordered = sorted(alerts, key=lambda a: a.sort_key())
    # newline="" lets the csv module own line endings, so a CR/LF inside a cell stays quoted in one cell.
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        for alert in ordered:
            writer.writerow(alert_row(alert))
    return len(ordered)
