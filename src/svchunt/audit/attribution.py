"""Which tool planted a service: hunt's own rules, run on the install event each service would have logged.

Every runnable service key becomes the System 7045 that installing it writes (ServiceName, ImagePath,
ServiceType and StartType in 7045's words, AccountName, Computer = the hive's host), normalised by the same
code as a 7045 read from an EVTX (`svchunt.normalise.normalise_record`, which adds `ImagePathNormalised`
and `ImagePathCommand`), and a service with a Description also yields the Sysmon 13 that writes it. The
events go through the Detector built from hunt's rule set, so an audit and a hunt over the install logs
name the same tool with the same claims, and a content change reaches both.

A hive has no event times: the events carry none, so correlation rules (bursts, sequences) do not apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from svchunt.audit.findings import SEVERITY_RANK, Finding
from svchunt.audit.inventory import ServiceEntry
from svchunt.audit.stock import StockList, load_stock
from svchunt.model import Alert, Event, Refusal

CHECK = "attribution"
# 7045 writes the type and start type as words (its message table), not numbers.
START_TYPE_WORDS = {0: "boot start", 1: "system start", 2: "auto start", 3: "demand start", 4: "disabled"}
LEVEL_SEVERITY = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
# Informational rules are building blocks for correlations (any service installed); a hive has no timeline.
MIN_LEVEL = "low"
_TELEMETRY_SUFFIX = re.compile(r"\s*\((?:System|Security|Sysmon)\b[^)]*\)\s*$")
SERVICES_KEY = "HKLM\\System\\CurrentControlSet\\Services\\"


def service_type_words(service_type: int) -> str:
    if service_type & 0x30:
        return "user mode service"
    if service_type & 0x2:
        return "file system driver"
    if service_type & 0x1:
        return "kernel mode driver"
    if service_type & 0x4:
        return "adapter"
    if service_type & 0x8:
        return "recognizer driver"
    return "user mode service"


def _image_path(entry: ServiceEntry) -> str | None:
    """What the install event's ImagePath would say: the registry text, or the driver's implicit file."""
    image = entry.image_path
    if image is None:
        return None
    return image.raw or image.path


def _system(event_id: int, channel: str, provider: str, host: str | None) -> dict[str, Any]:
    return {"Provider": {"#attributes": {"Name": provider}}, "EventID": event_id, "Channel": channel, "Computer": host}


def install_record(entry: ServiceEntry, host: str | None) -> dict[str, Any] | None:
    """The System 7045 for this service in the nested shape the EVTX reader produces; None if it cannot run."""
    image = _image_path(entry)
    if not entry.runnable or not image:
        return None
    data = {
        "ServiceName": entry.name,
        "ImagePath": image,
        "ServiceType": service_type_words(entry.type or 0),
        "StartType": START_TYPE_WORDS.get(entry.start, str(entry.start)) if entry.start is not None else "",
        "AccountName": "" if entry.is_driver else (entry.object_name or ""),
    }
    return {"Event": {"System": _system(7045, "System", "Service Control Manager", host), "EventData": data}}


def description_record(entry: ServiceEntry, host: str | None) -> dict[str, Any] | None:
    """The Sysmon 13 that sets the service's Description (Sliver's default is `Sliver implant`)."""
    if not entry.runnable or not entry.description:
        return None
    data = {"EventType": "SetValue", "TargetObject": f"{SERVICES_KEY}{entry.name}\\Description",
            "Details": entry.description}
    system = _system(13, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", host)
    return {"Event": {"System": system, "EventData": data}}


def to_event(record: dict[str, Any], source: str) -> Event:
    from svchunt.normalise import normalise_record

    fields, timestamp, record_id = normalise_record(record)
    return Event(fields=fields, timestamp=timestamp, source=source, record_id=record_id)


@dataclass(frozen=True, slots=True)
class RuleSource:
    """Which rules attribution runs: hunt's built-in content, plus the user's own (`--rules`, `--allowlist`)."""

    rule_paths: tuple[str, ...] = ()
    allowlists: tuple[str, ...] = ()
    builtin: bool = True
    use_cache: bool = True


@lru_cache(maxsize=4)
def detector_for(source: RuleSource) -> Any:
    """The Detector over hunt's rule set, built once per process (rules come from the compile cache)."""
    from svchunt.engine.detector import Detector
    from svchunt.engine.hunt import HuntOptions, load_ruleset

    options = HuntOptions(paths=[], rule_paths=list(source.rule_paths), builtin=source.builtin,
                          allowlists=list(source.allowlists), use_cache=source.use_cache)
    return Detector(load_ruleset(options), min_level=MIN_LEVEL)


@dataclass(slots=True)
class Attribution:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    events: int = 0
    not_runnable: int = 0


def _title(alert: Alert) -> str:
    return _TELEMETRY_SUFFIX.sub("", alert.rule.title) or alert.rule.title


def _telemetry(alert: Alert) -> str:
    first = alert.evidence[0] if alert.evidence else None
    return "Sysmon 13 Description" if first and first.event_id == 13 else "System 7045"


def _item_words(item: str) -> str:
    from svchunt.rules.coverage import ITEM_TITLES

    title = ITEM_TITLES.get(item)
    return f"{item} {title}" if title else item


def _finding(entry: ServiceEntry, alerts: list[Alert], reach: dict[str, int]) -> Finding:
    """One finding per service key. Rules are listed most severe first and, at one level, the rule that matched
    fewer keys of this hive first: it says more about this service than one that fits many."""
    alerts = sorted(alerts, key=lambda a: (-SEVERITY_RANK[LEVEL_SEVERITY.get(a.rule.level, "info")],
                                           reach.get(a.rule.rule_id, 0), a.rule.rule_id))
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    for alert in alerts:
        if alert.rule.rule_id in seen:
            continue
        seen.add(alert.rule.rule_id)
        rules.append({"rule_id": alert.rule.rule_id, "name": alert.rule.name, "title": alert.rule.title,
                      "level": alert.rule.level,
                      "claims": list(alert.rule.claims), "contributes_to": list(alert.rule.contributes_to),
                      "telemetry": _telemetry(alert)})
    claims = list(dict.fromkeys(item for rule in rules for item in rule["claims"]))
    top = alerts[0]
    title = "; ".join(dict.fromkeys(_title(a) for a in alerts))
    said = "; ".join(f"{_title_of(rule)} [{rule['level']}]" for rule in rules)
    claimed = ", ".join(_item_words(item) for item in claims) or "nothing (building-block rules only)"
    why = f"claims {claimed} — the install event this service would log raises {said}"
    return Finding(CHECK, LEVEL_SEVERITY.get(top.rule.level, "info"), title, tuple(claims), entry.name, entry.key_path,
                   "ImagePath", _image_path(entry), why, [entry.control_set],
                   {"claims": claims, "rules": rules, "last_write": entry.last_write})


def _title_of(rule: dict[str, Any]) -> str:
    return f"{_TELEMETRY_SUFFIX.sub('', rule['title'])} ({rule['telemetry']})"


def _as_shipped(entry: ServiceEntry, stock: StockList) -> bool:
    """A Windows service whose binaries are the ones a clean install has for it (CLFS in System32, ehome)."""
    stock_entry = stock.get(entry.name, entry.type)
    if stock_entry is None:
        return False
    paths = [p.path.lower() for p in (entry.image_path, entry.service_dll) if p is not None and p.path]
    return bool(paths) and all(p in stock_entry.paths for p in paths)


def attribute(entries: list[ServiceEntry], host: str | None, label: str, source: RuleSource | None = None) -> Attribution:
    detector = detector_for(source or RuleSource())
    out = Attribution(refused=list(detector.refused))
    events: list[Event] = []
    owner: dict[str, ServiceEntry] = {}  # event source -> the service key it was built from
    installs = 0
    for entry in entries:
        install = install_record(entry, host)
        if install is None:
            out.not_runnable += 1
            continue
        installs += 1
        where = f"{label}:{entry.key_path}"
        owner[where] = entry
        events.append(to_event(install, where))
        description = description_record(entry, host)
        if description is not None:
            owner[where + ":Description"] = entry
            events.append(to_event(description, where + ":Description"))
    out.events = len(events)
    outcome = detector.detect(events)
    by_entry: dict[int, list[Alert]] = {}
    unplaced = 0
    for alert in outcome.alerts:
        entry = owner.get(alert.evidence[0].source) if alert.evidence else None
        if entry is not None and alert.kind == "detection":
            by_entry.setdefault(id(entry), []).append(alert)
        else:  # a correlation over several keys: a hive has no timeline to support one
            unplaced += 1
    index = {id(e): e for e in owner.values()}
    stock = load_stock()
    as_shipped: list[str] = []
    reach: dict[str, int] = {}
    for alerts in by_entry.values():
        for rule_id in {a.rule.rule_id for a in alerts}:
            reach[rule_id] = reach.get(rule_id, 0) + 1
    for key, alerts in by_entry.items():
        entry = index[key]
        if _as_shipped(entry, stock):
            as_shipped.append(entry.name)
            continue
        out.findings.append(_finding(entry, alerts, reach))
    out.notes.append(
        f"attribution: {installs} service keys became System 7045 events and {len(events) - installs} Sysmon 13 "
        f"Description events, matched against {len(detector.matcher.rules)} hunt rules (level {MIN_LEVEL} and up); "
        f"{len(by_entry)} keys matched a rule. {out.not_runnable} keys without Type or ImagePath cannot run and were "
        f"not matched. Correlation rules need event times, which a hive does not have: not applied"
    )
    if as_shipped:
        names = sorted(set(as_shipped), key=str.lower)
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        out.notes.append(
            f"attribution: {len(as_shipped)} of those keys ({len(names)} services: {shown}) are Windows services "
            f"exactly as a stock install has them and are not reported (stock baseline, docs/audit.md)"
        )
    if unplaced:
        out.notes.append(f"attribution: {unplaced} alert(s) not tied to one service key were not reported")
    for refusal in out.refused:
        out.notes.append(f"rule refused: {refusal.path} {refusal.title or refusal.rule_id or ''}: {refusal.reason}")
    return out
