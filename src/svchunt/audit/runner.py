"""`run_audit`: read the registry, build the inventory, run every check, return one result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svchunt.audit import checks_acl, checks_drivers, checks_masquerade, checks_paths, checks_recovery
from svchunt.audit.attribution import RuleSource, attribute
from svchunt.audit.baseline import diff, load_baseline
from svchunt.audit.files import RootResolver, hash_file
from svchunt.audit.findings import Finding, merge
from svchunt.audit.hive import HiveSource, LiveSource, RegistrySource
from svchunt.audit.inventory import ServiceEntry, read_inventory
from svchunt.audit.loldrivers import LolDrivers, from_names
from svchunt.audit.loldrivers import load as load_loldrivers
from svchunt.audit.mitigations import Mitigation, mitigation_findings, read_mitigations
from svchunt.audit.signatures import SignatureChecker
from svchunt.audit.stock import load_stock
from svchunt.model import Problem

NAME_LIST = "svchunt_vulnerable_driver_names"


@dataclass(slots=True)
class AuditOptions:
    system: str | None = None
    software: str | None = None
    root: str | None = None
    live: bool = False
    loldrivers: str | None = None
    baseline: str | None = None
    winreg: Any = None  # injected for tests of the live path
    attribution: bool = True  # run hunt's rules on each service's install event
    rule_paths: list[str] = field(default_factory=list)  # extra Sigma rules for attribution (hunt's --rules)
    allowlists: list[str] = field(default_factory=list)  # known-good list files (hunt's --allowlist)
    use_cache: bool = True


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


def _loldrivers(options: AuditOptions, problems: list[Problem], notes: list[str]) -> LolDrivers:
    """The LOLDrivers CSV (hashes and names), or else the content's short list of names."""
    if options.loldrivers:
        try:
            lol = load_loldrivers(options.loldrivers)
            notes.append(f"LOLDrivers: {len(lol.by_hash)} hashes and {len(lol.by_name)} file names from {lol.rows} "
                         f"entries in {options.loldrivers}")
            return lol
        except (OSError, ValueError) as exc:
            problems.append(Problem(options.loldrivers, "file", f"LOLDrivers list not loaded: {exc}"))
    from svchunt.rules.allowlists import load_allowlists

    names = load_allowlists(options.allowlists, builtin=True).get(NAME_LIST) or []
    notes.append(f"no LOLDrivers CSV: driver file names are checked against the {len(names)} names of the built-in "
                 f"list {NAME_LIST} only (give --loldrivers drivers.csv for hashes and the full list)")
    return from_names(names, f"built-in {NAME_LIST}")


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
        lol = _loldrivers(options, problems, notes)
        stock = load_stock()
        findings: list[Finding] = []
        for entry in entries:
            findings += checks_paths.check_location(entry, stock)
            findings += checks_paths.check_shell(entry)
            findings += checks_paths.check_unquoted(entry)
            findings += checks_recovery.check_recovery(entry, stock)
            findings += checks_acl.check_hidden(entry)
            findings += checks_acl.check_weak(entry, stock)
            findings += checks_masquerade.check_masquerade(entry, stock)
            findings += checks_drivers.check_driver(entry, lol, stock, root_given=root is not None)
        if options.attribution:
            source = RuleSource(tuple(options.rule_paths), tuple(options.allowlists), use_cache=options.use_cache)
            attributed = attribute(entries, host, system.label, source)
            findings += attributed.findings
            notes += attributed.notes
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
