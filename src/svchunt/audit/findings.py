"""The finding object every audit check returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(slots=True)
class Finding:
    check: str  # e.g. "image-location", "hidden-service"
    severity: str
    title: str
    covers: tuple[str, ...]
    service: str | None  # service key name; None for host-wide findings
    key_path: str
    value_name: str | None
    value: Any
    why: str
    control_sets: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable across runs and control sets: check + service + the value that triggered it."""
        key = [self.check, (self.service or "").lower(), (self.value_name or "").lower(), str(self.value)]
        return "AUD-" + hashlib.sha256(orjson.dumps(key)).hexdigest()[:16]

    def sort_key(self) -> tuple:
        return (-SEVERITY_RANK[self.severity], self.check, (self.service or "").lower(), self.id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "check": self.check,
            "severity": self.severity,
            "title": self.title,
            "covers": list(self.covers),
        }
        if self.service is not None:
            out["service"] = self.service
        out["evidence"] = {
            "key_path": self.key_path,
            "value_name": self.value_name,
            "value": self.value,
            "why": self.why,
            "control_sets": self.control_sets,
            **self.extra,
        }
        return out


def merge(findings: list[Finding]) -> list[Finding]:
    """The same finding in ControlSet001 and 002 is one finding listing both control sets."""
    merged: dict[str, Finding] = {}
    for finding in findings:
        existing = merged.get(finding.id)
        if existing is None:
            merged[finding.id] = finding
            continue
        for cs in finding.control_sets:
            if cs not in existing.control_sets:
                existing.control_sets.append(cs)
    return sorted(merged.values(), key=Finding.sort_key)
