"""One self-contained HTML report: incident cards, summary, per-host timeline, filterable alert list, audit.

Safety model (event fields are written by the attacker):
- data travels as JSON inside `<script type="application/json">`, with `<`, `>`, `&`, U+2028/U+2029 escaped,
  so no string can close the element or start markup;
- the only executable script is our own asset, allowed by its SHA-256 in a strict Content-Security-Policy
  (`default-src 'none'`): even a rendering bug could not run injected script or load anything remote;
- the script writes data with `textContent` only and never builds links from data.
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from svchunt.correlate.incident_keys import TELLING_FIELDS
from svchunt.correlate.incidents import Incident, build_incidents
from svchunt.model import Alert, HuntResult
from svchunt.outputs import summary
from svchunt.outputs.document import RULE_FIELDS, SCHEMA_VERSION, to_document
from svchunt.rules.coverage import ITEM_TITLES
from svchunt.values import to_text

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_TRANS = str.maketrans(_ESCAPES)


def _asset(name: str) -> str:
    return resources.files("svchunt.outputs").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe to place inside a `<script type="application/json">` element."""
    text = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=to_text).decode()
    # These characters only occur inside JSON strings, so escaping them keeps the JSON equivalent.
    return text.translate(_TRANS)


def _alert_payload(doc: dict[str, Any], rule_index: int) -> dict[str, Any]:
    """The alert document less its rule fields (stored once per rule, `rule` is the index), with the
    evidence numbered and, for multi-event alerts, each event's fields beside its evidence."""
    # Per-event fields for multi-event alerts come from `extra["events"]` (one dict per evidence, same
    # order) when the correlator provides them. A single-event alert's fields are that event's fields:
    # the page shows `fields` there, rather than the payload carrying them twice.
    extra = doc.get("extra") or {}
    events = extra.get("events") if isinstance(extra, dict) else None
    if not (isinstance(events, list) and len(events) == len(doc["evidence"])):
        events = None
    evidence = []
    for i, ev in enumerate(doc["evidence"]):
        item = {**ev, "ordinal": i}
        if events is not None and isinstance(events[i], dict):
            item["fields"] = events[i]
        evidence.append(item)
    out = {k: v for k, v in doc.items() if k not in RULE_FIELDS}
    out.update(rule=rule_index, evidence=evidence, extra={k: v for k, v in extra.items() if k != "events"})
    return out


def _incidents_payload(alerts: list[Alert], incidents: list[Incident] | None) -> list[dict[str, Any]]:
    """Incident cards: the incident's facts, and its steps as indices into the payload's alert list."""
    incidents = build_incidents(alerts) if incidents is None else incidents
    index = {a.alert_id: i for i, a in enumerate(alerts)}
    out = []
    for inc in incidents:
        item = inc.to_dict()
        item["steps"] = [index[aid] for aid in item.pop("alert_ids") if aid in index]
        out.append(item)
    return out


def build_payload(
    result: HuntResult | None,
    audit: Any = None,
    title: str = "svchunt report",
    runs: list[dict] | None = None,
    incidents: list[Incident] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": title,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "alerts": [],
        "audit": audit,
        "runs": runs or [],
    }
    if result is not None:
        alerts = sorted(result.alerts, key=lambda a: a.sort_key())
        s = result.stats
        payload["summary"] = {
            "files": s.files,
            "records_read": s.records_read,
            "records_skipped": s.records_skipped,
            "problems": len(result.problems),
            "records_matched": s.records_matched,
            "rules_loaded": s.rules_loaded,
            "rules_refused": len(result.refused),
            "correlations_loaded": s.correlations_loaded,
            "alerts": len(alerts),
            "seconds": round(s.seconds, 2),
            "by_level": summary.by_level(alerts),
        }
        rules: dict[bytes, int] = {}
        out = []
        for a in alerts:
            doc = to_document(a)
            key = orjson.dumps({k: doc[k] for k in RULE_FIELDS}, default=to_text)
            index = rules.setdefault(key, len(rules))
            out.append(_alert_payload(doc, index))
        payload["schema_version"] = SCHEMA_VERSION
        payload["rules"] = [orjson.loads(k) for k in rules]
        payload["alerts"] = out
        payload["incidents"] = _incidents_payload(alerts, incidents)
        payload["item_titles"] = dict(ITEM_TITLES)
        payload["telling_fields"] = list(TELLING_FIELDS)
        payload["problems"] = [
            {"reason": g.reason, "count": g.count, "examples": g.examples}
            for g in summary.group_problems(result.problems)
        ]
        payload["refused"] = [
            {"reason": r.reason, "path": r.path, "rule_id": r.rule_id, "title": r.title}
            for r in result.refused
        ]
        payload["notes"] = list(result.notes)
    return payload


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1>{title}</h1><div class="sub">generated {generated} by svchunt</div></header>
<main>
<section id="incidents"><h2>Incidents <span class="muted" id="inc-count"></span></h2>
<p class="muted">Alerts grouped per host into one story per attack, most severe first. Click a card for its steps.</p>
<div id="incident-cards"></div><p><button id="inc-more" type="button" class="hidden"></button></p></section>
<section id="summary"><h2>Summary</h2><div class="cards" id="cards"></div>
<p id="by-level"></p><div id="runs"></div></section>
<section id="timeline"><h2>Timeline per host</h2>
<div id="timeline-rows"></div><div class="tl-axis"><span id="tl-start"></span><span id="tl-end"></span></div>
<div class="muted" id="timeline-note"></div><div id="tl-legend"></div></section>
<section id="alerts"><h2>Alerts</h2>
<div class="filters">
<select id="f-level" aria-label="level"></select><select id="f-rule" aria-label="rule"></select>
<select id="f-host" aria-label="host"></select><select id="f-tech" aria-label="ATT&amp;CK technique"></select>
<select id="f-incident" aria-label="incident"></select>
<input id="f-text" type="search" placeholder="search all fields" aria-label="search">
<button id="f-reset" type="button">reset</button> <span id="count" class="muted"></span>
</div>
<table id="alert-table"><thead><tr><th>time (UTC)</th><th>level</th><th>host</th><th>rule</th>
<th>techniques</th><th>kind</th><th>incident</th><th>key fields</th></tr></thead><tbody id="alert-rows"></tbody></table>
<p><button id="more" type="button" class="hidden"></button></p>
</section>
<section id="audit" class="hidden"><h2>Audit findings</h2><div id="audit-body"></div></section>
<section id="problems" class="hidden"><h2>Not read: problems by reason</h2><div id="problems-body"></div></section>
<section id="refused" class="hidden"><h2>Rules refused</h2><div id="refused-body"></div></section>
</main>
<script id="svchunt-data" type="application/json">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def render_html(
    result: HuntResult | None = None,
    audit: Any = None,
    title: str = "svchunt report",
    runs: list[dict] | None = None,
    incidents: list[Incident] | None = None,
) -> str:
    payload = build_payload(result, audit, title, runs, incidents)
    script = _asset("report.js")
    css = _asset("report.css")
    if "</script" in script.lower() or "</style" in css.lower():
        raise ValueError("report assets must not contain closing script/style tags")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return _TEMPLATE.format(
        csp=csp,
        title=html.escape(title),
        generated=html.escape(payload["generated"]),
        css=css,
        data=embed_json(payload),
        script=script,
    )


def write_html(
    path: str,
    result: HuntResult | None = None,
    audit: Any = None,
    title: str = "svchunt report",
    runs: list[dict] | None = None,
    incidents: list[Incident] | None = None,
) -> None:
    """Write the report; `audit` (dict or list of findings) gets its own section; `runs` is case metadata;
    `incidents` are built from the alerts when not given."""
    Path(path).write_text(render_html(result, audit, title, runs, incidents), encoding="utf-8")
