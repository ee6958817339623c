"""Which brief item is implemented by which rule, correlation or audit check, and where it was tested.

The brief ids come from issue 3; rules declare theirs in custom attributes: `claims:` (what an alert of
the rule asserts happened) and `contributes_to:` (items the rule is only a building block of); a rule's
`covers` is the union of both and is what this table counts. Audit checks
(`svchunt audit`, registry hives) cover the mitigation items that logs cannot show. "Tested on" is read
from the content pack's own test table (`svchunt/content/test_cases.yml`), the file the tests run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from svchunt.model import RuleInfo

BRIEF_IDS: tuple[str, ...] = (
    "PT-CR-257", "PT-CR-217", "PT-CR-778", "PT-CR-271", "PT-CR-1363", "PT-CR-1981", "PT-CR-226", "PT-CR-1752",
    "PT-CR-589", "PT-CR-785", "PT-CR-1356", "PT-CR-752", "PT-CR-523", "PT-CR-1355", "PT-CR-2632", "PT-CR-1838",
    "DS0009.services-cmd", "DS0009.new-service", "DS0009.api", "DS0029.scm-network", "DS0019.creation",
    "DS0019.modification", "DS0024.registry", "DS0017.commands", "DS0022.file-then-service", "DS0027.driver-load",
    "SEED.sdset-hidden", "SEED.masquerade", "SEED.recovery-command", "SEED.pnputil",
    "M1018", "M1028", "M1040", "M1045", "M1047",
)  # fmt: skip

# What each item means, in words a user reads (coverage rows, incident titles, reports).
ITEM_TITLES: dict[str, str] = {
    "PT-CR-257": "Windows service installed outside system folders",
    "PT-CR-217": "PsExec or a PsExec-like tool launched",
    "PT-CR-778": "Service created in the registry without the service manager",
    "PT-CR-271": "Service created or modified from the command line or PowerShell",
    "PT-CR-1363": "Masky certificate theft via a service",
    "PT-CR-1981": "Remote connection to the service manager (svcctl)",
    "PT-CR-226": "Impacket psexec",
    "PT-CR-1752": "Service binary on a network path",
    "PT-CR-589": "Sysinternals PsExec remote execution",
    "PT-CR-785": "Existing service modified and started remotely",
    "PT-CR-1356": "Sliver psexec",
    "PT-CR-752": "Cobalt Strike jump psexec",
    "PT-CR-523": "Impacket smbexec",
    "PT-CR-1355": "Sliver getsystem (injection into spoolsv)",
    "PT-CR-2632": "Cobalt Strike service with a network path",
    "PT-CR-1838": "NimExec service hijack",
    "DS0009.services-cmd": "Shell or unusual program started by services.exe",
    "DS0009.new-service": "Service new on this host",
    "DS0009.api": "Service or driver created through the API directly",
    "DS0029.scm-network": "Network connection to the service manager then a new process",
    "DS0019.creation": "Service created",
    "DS0019.modification": "Service configuration changed",
    "DS0024.registry": "Service registry key written",
    "DS0017.commands": "Service command (sc.exe, PowerShell, WMI)",
    "DS0022.file-then-service": "File copied, then run as a service",
    "DS0027.driver-load": "Unsigned, revoked or vulnerable driver loaded",
    "SEED.sdset-hidden": "Service hidden by its security descriptor",
    "SEED.masquerade": "Service or binary masquerading as Windows",
    "SEED.recovery-command": "Service recovery (failure) command set",
    "SEED.pnputil": "Driver installed with PnPUtil",
    "M1018": "Weak service permissions",
    "M1028": "Driver signature enforcement weakened",
    "M1040": "Exploit protection (ASR, vulnerable driver blocklist) off",
    "M1045": "Unsigned driver allowed",
    "M1047": "Audit policy and Sysmon configuration",
}

# Audit checks named in issue 4 and the brief items they implement. Used unless svchunt.audit publishes its
# own `AUDIT_CHECK_COVERS` (same shape), which then wins.
DEFAULT_AUDIT_CHECK_COVERS: dict[str, tuple[str, ...]] = {
    "image outside system folders": (
        "PT-CR-257",
        "PT-CR-1752",
        "PT-CR-2632",
        "DS0019.creation",
        "DS0009.new-service",
    ),
    "shell in service command": ("PT-CR-257", "PT-CR-752", "PT-CR-523", "DS0009.services-cmd"),
    "unquoted service path": ("SEED.masquerade", "M1018"),
    "service failure command": ("SEED.recovery-command", "DS0019.modification"),
    "hidden service SDDL": ("SEED.sdset-hidden",),
    "weak service / registry permissions": ("M1018",),
    "masquerading service name or binary": ("SEED.masquerade",),
    "LOLDrivers / unsigned driver": ("M1045", "DS0027.driver-load"),
    "driver signature enforcement / test signing": ("M1028",),
    "vulnerable driver blocklist and ASR rules": ("M1040",),
    "audit policy and Sysmon configuration": ("M1047",),
}

TEST_CASES = Path(__file__).resolve().parent.parent / "content" / "test_cases.yml"


@dataclass
class CoverageRow:
    item: str
    # {id, name, title, kind, role}: role "claims" (its alerts assert the item) or "contributes" (building block)
    rules: list[dict[str, str]] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    audit_checks: list[str] = field(default_factory=list)
    tested_on: list[str] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return bool(self.rules or self.audit_checks)

    @property
    def title(self) -> str:
        return ITEM_TITLES.get(self.item, "")

    @property
    def claimed(self) -> bool:
        """Some rule's alerts assert this item (not only building blocks or audit checks)."""
        return any(r.get("role") == "claims" for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "title": self.title,
            "rules": self.rules,
            "techniques": self.techniques,
            "audit_checks": self.audit_checks,
            "tested_on": self.tested_on,
            "covered": self.covered,
            "claimed": self.claimed,
        }


def audit_check_covers() -> dict[str, tuple[str, ...]]:
    try:
        import svchunt.audit as audit
    except ImportError:  # the audit stage is optional for coverage
        return dict(DEFAULT_AUDIT_CHECK_COVERS)
    published = getattr(audit, "AUDIT_CHECK_COVERS", None)
    if isinstance(published, dict) and published:
        return {str(k): tuple(v) for k, v in published.items()}
    return dict(DEFAULT_AUDIT_CHECK_COVERS)


def load_test_cases(path: Path = TEST_CASES) -> dict[str, Any]:
    if not path.is_file():
        return {"positives": [], "negatives": []}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {"positives": data.get("positives") or [], "negatives": data.get("negatives") or []}


def tested_samples(cases: dict[str, Any]) -> dict[str, list[str]]:
    """rule name -> samples of its positive cases, in table order, without repeats."""
    out: dict[str, list[str]] = {}
    for case in cases.get("positives", []):
        seen = out.setdefault(str(case.get("rule")), [])
        for sample in case.get("samples") or []:
            if sample not in seen:
                seen.append(sample)
    return out


def build_coverage(
    rules: Iterable[tuple[RuleInfo, str]],
    audit_covers: dict[str, tuple[str, ...]] | None = None,
    cases: dict[str, Any] | None = None,
    items: Iterable[str] = BRIEF_IDS,
) -> list[CoverageRow]:
    """`rules` are (info, kind) pairs, kind "detection" or "correlation"."""
    audit_covers = audit_check_covers() if audit_covers is None else audit_covers
    samples = tested_samples(cases if cases is not None else load_test_cases())
    rows = {item: CoverageRow(item) for item in items}
    for info, kind in rules:
        for item in info.covers:
            row = rows.get(item)
            if row is None:
                continue
            role = "claims" if item in info.claims else "contributes"
            row.rules.append({"id": info.rule_id, "name": info.name or "", "title": info.title, "kind": kind, "role": role})
            for tech in info.techniques:
                if tech not in row.techniques:
                    row.techniques.append(tech)
            for sample in samples.get(info.name or "", []) + samples.get(info.rule_id, []):
                if sample not in row.tested_on:
                    row.tested_on.append(sample)
    for check, covered in audit_covers.items():
        for item in covered:
            if item in rows:
                rows[item].audit_checks.append(check)
    return list(rows.values())


def unknown_covers(infos: Iterable[RuleInfo], items: Iterable[str] = BRIEF_IDS) -> dict[str, list[str]]:
    """Rules whose `covers:` names an id that is not a brief item (usually a typo): rule id -> bad ids."""
    known = set(items)
    out: dict[str, list[str]] = {}
    for info in infos:
        bad = [c for c in info.covers if c not in known]
        if bad:
            out[info.rule_id] = bad
    return out
