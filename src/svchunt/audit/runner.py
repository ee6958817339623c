"""`run_audit`: read the registry, build the inventory, run every check, return one result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svchunt.audit import checks_acl, checks_drivers, checks_masquerade, checks_paths, checks_recovery
from svchunt.audit.baseline import diff, load_baseline
from svchunt.audit.files import RootResolver, hash_file
from svchunt.audit.findings import Finding, merge
from svchunt.audit.hive import HiveSource, LiveSource, RegistrySource
from svchunt.audit.inventory import ServiceEntry, read_inventory
from svchunt.audit.loldrivers import LolDrivers
from svchunt.audit.loldrivers import load as load_loldrivers
from svchunt.audit.mitigations import Mitigation, mitigation_findings, read_mitigations
from svchunt.audit.signatures import SignatureChecker
from svchunt.model import Problem


@dataclass(slots=True)
class AuditOptions:
    system: str | None = None
    software: str | None = None
    root: str | None = None
    live: bool = False
    loldrivers: str | None = None
    baseline: str | None = None
    winreg: Any = None  # injected for tests of the live path


@dataclass(slots=True)
class AuditResult:
    host: str | None
    hive: str
    control_sets: list[str]
    current_control_set: str | None
    inventory: list[ServiceEntry]
    findings: list[Finding]
    mitigations: list[Mitigation]
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _host(source: RegistrySource, current: str | None) -> str | None:
    if current is None:
        return None
    key = source.key(f"{current}\\Control\\ComputerName\\ComputerName")
    return str(key.get("ComputerName")) if key and key.get("ComputerName") else None


def _attach_files(entries: list[ServiceEntry], resolver: RootResolver, checker: SignatureChecker,
                  problems: list[Problem], label: str) -> None:
    cache: dict[str, dict[str, Any]] = {}
    for entry in entries:
        for role, resolved in (("image", entry.image_path), ("dll", entry.service_dll)):
            if resolved is None or not resolved.path or resolved.location == "network":
                continue
            key = resolved.path.lower()
            if key not in cache:
                found = resolver.find(resolved.path)
                info: dict[str, Any] = {"path": resolved.path, "found": str(found) if found else None}
                if found is not None:
                    try:
                        info["hashes"] = hash_file(found)
                    except OSError as exc:
                        problems.append(Problem(str(found), "file", f"cannot hash: {exc}"))
                    else:
                        if entry.is_driver or role == "image":
                            info["signature"] = checker.check(found)
                cache[key] = info
            entry.files[role] = cache[key]


def run_audit(options: AuditOptions) -> AuditResult:
    started = time.perf_counter()
    if options.live:
        system: RegistrySource = LiveSource("SYSTEM", options.winreg)
        software: RegistrySource | None = LiveSource("SOFTWARE", options.winreg)
    elif options.system:
        system = HiveSource(options.system)
        software = HiveSource(options.software) if options.software else None
    else:
        raise ValueError("give --system HIVE or --live")
    problems: list[Problem] = []
    notes: list[str] = []
    try:
        sets, current, entries = read_inventory(system)
        mitigations = read_mitigations(system, software, current)
        host = _host(system, current)
        root = options.root or (str(Path("C:/")) if options.live else None)
        if root:
            _attach_files(entries, RootResolver(root), SignatureChecker.for_root(Path(root)), problems, system.label)
        lol: LolDrivers | None = None
        if options.loldrivers:
            try:
                lol = load_loldrivers(options.loldrivers)
                notes.append(f"LOLDrivers: {len(lol.by_hash)} hashes from {lol.rows} entries in {options.loldrivers}")
            except (OSError, ValueError) as exc:
                problems.append(Problem(options.loldrivers, "file", f"LOLDrivers list not loaded: {exc}"))
        findings: list[Finding] = []
        for entry in entries:
            findings += checks_paths.check_location(entry)
            findings += checks_paths.check_shell(entry)
            findings += checks_paths.check_unquoted(entry)
            findings += checks_recovery.check_recovery(entry)
            findings += checks_acl.check_hidden(entry)
            findings += checks_acl.check_weak(entry)
            findings += checks_masquerade.check_masquerade(entry)
            findings += checks_drivers.check_driver(entry, lol)
        findings += mitigation_findings(mitigations)
        if options.baseline:
            baseline = load_baseline(options.baseline)
            findings += diff(baseline, [e.to_dict() for e in entries], current, options.baseline)
        for source in (system, software):
            if source is not None:
                problems = source.problems + problems
                notes += getattr(source, "notes", [])
    finally:
        system.close()
        if software is not None:
            software.close()
    return AuditResult(host, system.label, sets, current, entries, merge(findings), mitigations, problems, notes,
                       time.perf_counter() - started)
