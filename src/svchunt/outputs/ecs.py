"""Alerts as ECS documents (Elastic Common Schema 8.x), one JSON object per line, for Elastic / OpenSearch.

Each alert is an `event.kind: alert` document: `@timestamp`, `event.*` (category and type from ECS's allowed
values, `severity` as a number, `risk_score`), `host.name`, `rule.*`, `threat.*` (MITRE ATT&CK technique,
sub-technique and tactic ids, names and reference URLs), `source.ip` / `source.domain` / `user.*` where the
events show a remote source, `process.*` / `file.*` / `registry.*` where they show one, and the event's own
fields under `winlog.*` as Winlogbeat names them. svchunt's own fields (alert and incident ids, claims,
evidence) live under `svchunt.*`, outside the ECS namespaces, as the ECS guidelines ask for custom fields.
Every value has the type the ECS reference gives its field (keyword fields as strings, `long` as integers,
`ip` only when it parses as an address); tests/fixtures/outputs/ecs_schema.json checks that.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from svchunt.correlate.incident_keys import alert_facts, telling_field
from svchunt.correlate.incidents import Incident, incidents_by_alert
from svchunt.model import Alert
from svchunt.rules.coverage import ITEM_TITLES

ECS_VERSION = "8.11.0"
# event.severity is numeric in ECS; risk_score 0-100 as Elastic's detection rules use it.
SEVERITY = {"informational": 1, "low": 21, "medium": 47, "high": 73, "critical": 99}

# ATT&CK (enterprise, v17) names of the techniques and tactics svchunt's content is tagged with.
TECHNIQUES = {
    "T1003": "OS Credential Dumping", "T1014": "Rootkit", "T1021": "Remote Services",
    "T1021.002": "SMB/Windows Admin Shares", "T1036": "Masquerading", "T1036.003": "Rename Legitimate Utilities",
    "T1036.004": "Masquerade Task or Service", "T1036.005": "Match Legitimate Resource Name or Location",
    "T1047": "Windows Management Instrumentation", "T1055": "Process Injection",
    "T1059": "Command and Scripting Interpreter", "T1059.001": "PowerShell", "T1059.003": "Windows Command Shell",
    "T1068": "Exploitation for Privilege Escalation", "T1112": "Modify Registry",
    "T1134": "Access Token Manipulation", "T1134.001": "Token Impersonation/Theft",
    "T1222": "File and Directory Permissions Modification",
    "T1222.001": "Windows File and Directory Permissions Modification",
    "T1543": "Create or Modify System Process", "T1543.003": "Windows Service",
    "T1553": "Subvert Trust Controls", "T1553.006": "Code Signing Policy Modification",
    "T1562": "Impair Defenses", "T1562.001": "Disable or Modify Tools", "T1564": "Hide Artifacts",
    "T1569": "System Services", "T1569.002": "Service Execution", "T1570": "Lateral Tool Transfer",
    "T1574": "Hijack Execution Flow", "T1574.009": "Path Interception by Unquoted Path",
    "T1574.011": "Services Registry Permissions Weakness", "T1649": "Steal or Forge Authentication Certificates",
}  # fmt: skip
TACTICS = {
    "reconnaissance": ("TA0043", "Reconnaissance"), "resource-development": ("TA0042", "Resource Development"),
    "initial-access": ("TA0001", "Initial Access"), "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"), "privilege-escalation": ("TA0004", "Privilege Escalation"),
    "defense-evasion": ("TA0005", "Defense Evasion"), "credential-access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"), "lateral-movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"), "command-and-control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"), "impact": ("TA0040", "Impact"),
}  # fmt: skip
ATTACK_URL = "https://attack.mitre.org/"

# (Channel family, EventID) -> (event.category, event.type): ECS allowed values only.
_CATEGORY: dict[tuple[str, int], tuple[list[str], list[str]]] = {
    ("system", 7045): (["configuration", "process"], ["creation"]),
    ("security", 4697): (["configuration", "process"], ["creation"]),
    ("system", 7040): (["configuration"], ["change"]),
    ("system", 7036): (["process"], ["info"]),
    ("system", 7009): (["process"], ["error"]),
    ("system", 7000): (["process"], ["error"]),
    ("security", 4624): (["authentication", "session"], ["start"]),
    ("security", 4688): (["process"], ["start"]),
    ("security", 4657): (["registry", "configuration"], ["change"]),
    ("security", 5140): (["network", "file"], ["access"]),
    ("security", 5145): (["network", "file"], ["access"]),
    ("security", 4703): (["iam"], ["change"]),
    ("security", 4826): (["configuration", "host"], ["info"]),
    ("sysmon", 1): (["process"], ["start"]),
    ("sysmon", 3): (["network"], ["connection"]),
    ("sysmon", 6): (["driver"], ["info"]),
    ("sysmon", 8): (["process"], ["change"]),
    ("sysmon", 10): (["process"], ["access"]),
    ("sysmon", 11): (["file"], ["creation"]),
    ("sysmon", 12): (["registry", "configuration"], ["change"]),
    ("sysmon", 13): (["registry", "configuration"], ["change"]),
    ("sysmon", 14): (["registry", "configuration"], ["change"]),
    ("sysmon", 17): (["file"], ["creation"]),
    ("sysmon", 18): (["file", "network"], ["access", "connection"]),
}
_WINLOG_TOP = {"EventID", "Channel", "Provider_Name", "Computer", "EventRecordID"}


def _family(channel: str | None) -> str:
    low = (channel or "").lower()
    return "sysmon" if "sysmon" in low else low.split("/")[0]


def _keyword(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)


def _long(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _prune(obj: Any) -> Any:
    """Drop None, empty strings and empty containers, so every emitted field has a value of its type."""
    if isinstance(obj, dict):
        out = {k: _prune(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(obj, list):
        return [v for v in (_prune(x) for x in obj) if v not in (None, "", [], {})]
    return obj


def _threat(alert: Alert) -> dict[str, Any]:
    techniques = alert.rule.techniques
    parents = sorted({t.split(".")[0] for t in techniques})
    subs = sorted(t for t in techniques if "." in t)
    tactics = [TACTICS[t[7:]] for t in alert.rule.tags if t.lower().startswith("attack.") and t[7:] in TACTICS]
    tactics = list(dict.fromkeys(tactics))

    def url(tid: str) -> str:
        return f"{ATTACK_URL}techniques/{tid.replace('.', '/')}/"

    return {
        "framework": "MITRE ATT&CK",
        "technique": {
            "id": parents,
            "name": [TECHNIQUES[t] for t in parents if t in TECHNIQUES],
            "reference": [url(t) for t in parents],
            "subtechnique": {
                "id": subs,
                "name": [TECHNIQUES[t] for t in subs if t in TECHNIQUES],
                "reference": [url(t) for t in subs],
            },
        },
        "tactic": {
            "id": [t[0] for t in tactics],
            "name": [t[1] for t in tactics],
            "reference": [f"{ATTACK_URL}tactics/{t[0]}/" for t in tactics],
        },
    }


def _process(fields: dict[str, Any], event_id: int | None, family: str) -> dict[str, Any]:
    if family == "security" and event_id == 4688:
        pid, ppid = _long(fields.get("NewProcessId")), _long(fields.get("ProcessId"))
    else:
        pid, ppid = _long(fields.get("ProcessId")), _long(fields.get("ParentProcessId"))
    image = _keyword(fields.get("Image"))
    parent = _keyword(fields.get("ParentImage"))
    return {
        "pid": pid,
        "entity_id": _keyword(fields.get("ProcessGuid")),
        "executable": image,
        "name": image.replace("/", "\\").rsplit("\\", 1)[-1] if image else None,
        "command_line": _keyword(fields.get("CommandLine")),
        "parent": {
            "pid": ppid,
            "entity_id": _keyword(fields.get("ParentProcessGuid")),
            "executable": parent,
            "name": parent.replace("/", "\\").rsplit("\\", 1)[-1] if parent else None,
            "command_line": _keyword(fields.get("ParentCommandLine")),
        },
    }


def ecs_document(alert: Alert, incident: Incident | None, created: str | None = None) -> dict[str, Any]:
    """`created`: when svchunt wrote the document; it is also `@timestamp` (required by ECS) for an alert
    whose events carry no time at all, which `svchunt.untimed` then marks."""
    fields = alert.fields
    first = alert.evidence[0] if alert.evidence else None
    created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    when = alert.timestamp or next((e.timestamp for e in alert.evidence if e.timestamp), None)
    event_id = first.event_id if first else _long(fields.get("EventID"))
    channel = (first.channel if first else None) or _keyword(fields.get("Channel"))
    family = _family(channel)
    category, etype = _CATEGORY.get((family, event_id or -1), (["intrusion_detection"], ["info"]))
    if alert.kind == "correlation":
        category, etype = ["intrusion_detection"], ["info"]
    facts = alert_facts(alert)
    name, value = telling_field(alert)
    address = next((ip for ip in (_ip(a) for a in facts.addresses) if ip), None)
    account = facts.accounts[0] if facts.accounts else ""
    user_domain, _, user_name = account.rpartition("\\")
    event_data = {k: _keyword(v) for k, v in fields.items() if k not in _WINLOG_TOP}
    target = _keyword(fields.get("TargetObject"))
    doc = {
        "@timestamp": when or created,
        "ecs": {"version": ECS_VERSION},
        "message": f"{alert.rule.title} on {alert.computer or '(unknown host)'}" + (f": {name}: {value}" if name else ""),
        "tags": list(alert.rule.tags),
        "event": {
            "kind": "alert",
            "category": category,
            "type": etype,
            "severity": SEVERITY.get(alert.rule.level, 0),
            "risk_score": float(SEVERITY.get(alert.rule.level, 0)),
            "module": "svchunt",
            "dataset": f"svchunt.{alert.kind}",
            "id": alert.alert_id,
            "code": str(event_id) if event_id is not None else None,
            "provider": _keyword(fields.get("Provider_Name")),
            "created": created,
            "start": (alert.extra or {}).get("first_timestamp"),
            "end": (alert.extra or {}).get("last_timestamp"),
        },
        "host": {"name": alert.computer},
        "rule": {
            "id": alert.rule.rule_id,
            "uuid": alert.rule.rule_id,
            "name": alert.rule.title,
            "description": alert.rule.description.strip() or None,
            "ruleset": "svchunt built-in" if "svchunt/content/" in (alert.rule.path or "").replace("\\", "/") else None,
            "reference": alert.rule.path,
            "category": alert.kind,
        },
        "threat": _threat(alert),
        "source": {"ip": address, "address": address or next(iter(facts.addresses + facts.workstations), None),
                   "domain": facts.workstations[0] if facts.workstations else None},
        "user": {"name": user_name or None, "domain": user_domain or None},
        "process": _process(fields, event_id, family),
        "file": {"path": _keyword(fields.get("TargetFilename") or fields.get("ImageLoaded"))},
        "registry": {"path": target, "data": {"strings": [_keyword(fields.get("Details"))] if target else []}},
        "winlog": {
            "event_id": str(event_id) if event_id is not None else None,
            "channel": channel,
            "provider_name": _keyword(fields.get("Provider_Name")),
            "computer_name": alert.computer,
            "record_id": str(first.record_id) if first and first.record_id is not None else None,
            "event_data": event_data if alert.kind != "correlation" else {},
        },
        "svchunt": {
            "alert_id": alert.alert_id,
            "kind": alert.kind,
            "level": alert.rule.level,
            "untimed": True if when is None else None,
            "claims": list(alert.rule.claims),
            "claim_titles": [ITEM_TITLES.get(c, c) for c in alert.rule.claims],
            "incident": {"id": incident.incident_id, "title": incident.title} if incident else None,
            "group": {k: _keyword(v) for k, v in alert.group.items()},
            "evidence": [e.to_dict() for e in alert.evidence],
        },
    }
    return _prune(doc)


def write_ecs(alerts: list[Alert], incidents: list[Incident], path: str) -> int:
    owner = incidents_by_alert(incidents)
    opts = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    ordered = sorted(alerts, key=lambda a: a.sort_key())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with Path(path).open("wb") as out:
        for alert in ordered:
            doc = ecs_document(alert, owner.get(alert.alert_id), created)
            out.write(orjson.dumps(doc, option=opts, default=str))
    return len(ordered)
