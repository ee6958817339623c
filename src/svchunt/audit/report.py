"""Audit output: the JSON document (`audit_to_dict`, also what an HTML renderer consumes) and the terminal table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from svchunt.audit.findings import SEVERITIES, SEVERITY_RANK, Finding
from svchunt.audit.runner import AuditResult
from svchunt.outputs.sanitize import terminal_text

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def severity_counts(result: AuditResult) -> dict[str, int]:
    """Findings per severity, most severe first, every severity present (0 included)."""
    counts = {name: 0 for name in reversed(SEVERITIES)}
    for finding in result.findings:
        counts[finding.severity] += 1
    return counts


def check_counts(result: AuditResult) -> dict[str, dict[str, int]]:
    """Findings per check and severity; checks ordered by their most severe finding, then by count."""
    table: dict[str, dict[str, int]] = {}
    for finding in result.findings:
        row = table.setdefault(finding.check, {})
        row[finding.severity] = row.get(finding.severity, 0) + 1

    def order(item: tuple[str, dict[str, int]]) -> tuple:
        check, row = item
        return (-max(SEVERITY_RANK[s] for s in row), -sum(row.values()), check)

    return {check: {s: row[s] for s in reversed(SEVERITIES) if s in row} for check, row in sorted(table.items(), key=order)}


def audit_to_dict(result: AuditResult) -> dict[str, Any]:
    return {
        "host": result.host,
        "hive": result.hive,
        "control_sets": result.control_sets,
        "current_control_set": result.current_control_set,
        "summary": {"services": len({e.name.lower() for e in result.inventory}),
                    "inventory_rows": len(result.inventory),
                    "findings": {k: v for k, v in severity_counts(result).items() if v},
                    "by_check": check_counts(result),
                    "seconds": round(result.seconds, 3)},
        "inventory": [e.to_dict() for e in result.inventory],
        "findings": [f.to_dict() for f in result.findings],
        "mitigations": [m.to_dict() for m in result.mitigations],
        "problems": [{"source": p.source, "position": p.position, "reason": p.reason} for p in result.problems],
        "notes": result.notes,
    }


def write_json(result: AuditResult, path: str | Path) -> None:
    Path(path).write_bytes(orjson.dumps(audit_to_dict(result), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def _cell(value: Any, width: int = 90) -> str:
    """Hive text clipped to `width`, then made safe for a terminal cell (control/bidi characters escaped)."""
    text = "" if value is None else str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return terminal_text(text)


def _evidence(finding: Finding) -> str:
    # A descriptor's SDDL is evidence for the JSON; the table says in words who gains which right.
    if finding.value_name == "Security" or finding.value is None:
        return finding.why
    return f"{finding.value_name or 'value'}={finding.value} — {finding.why}"


def print_report(result: AuditResult, console: Any = None, min_severity: str = "info") -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    services = len({e.name.lower() for e in result.inventory})
    console.print(f"[bold]{_cell(result.hive, 200)}[/bold] host={_cell(result.host or '?', 60)} control sets="
                  f"{_cell(', '.join(result.control_sets), 120)} (current {_cell(result.current_control_set, 30)}) "
                  f"services+drivers={services} ({result.seconds:.2f} s)")
    counts = severity_counts(result)
    console.print("findings: " + ", ".join(f"[{SEVERITY_STYLE[s]}]{s} {n}[/]" for s, n in counts.items()))
    by_check = check_counts(result)
    if by_check:
        summary = Table(title="Findings by check")
        summary.add_column("check")
        for name in reversed(SEVERITIES):
            summary.add_column(name, justify="right")
        summary.add_column("total", justify="right")
        for check, row in by_check.items():
            summary.add_row(check, *(str(row.get(s, "")) for s in reversed(SEVERITIES)), str(sum(row.values())))
        console.print(summary)
    floor = SEVERITY_RANK[min_severity]
    shown = sorted((f for f in result.findings if SEVERITY_RANK[f.severity] >= floor), key=Finding.sort_key)
    table = Table(title=f"Findings ({len(shown)} at {min_severity} or above, most severe first)", show_lines=False)
    for column in ("severity", "check", "service", "title", "evidence"):
        table.add_column(column, overflow="fold")
    for f in shown:
        table.add_row(f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.check, _cell(f.service or "(host)", 30),
                      _cell(f.title, 100), _cell(_evidence(f), 160))
    console.print(table)
    hidden = len(result.findings) - len(shown)
    if hidden:
        console.print(f"[dim]{hidden} finding(s) below {min_severity} not shown (all are in --json)[/]")
    if result.mitigations:
        mt = Table(title="Mitigations")
        for column in ("mitigation", "state", "value", "detail"):
            mt.add_column(column, overflow="fold")
        for m in result.mitigations:
            mt.add_row(_cell(m.name), _cell(m.state), _cell(m.value, 40), _cell(m.detail, 100))
        console.print(mt)
    for problem in result.problems:
        console.print(f"[yellow]problem[/] {_cell(problem.source, 60)} {_cell(problem.position, 60)}: "
                      f"{_cell(problem.reason, 200)}")
    for note in result.notes:
        console.print(f"[dim]note[/] {_cell(note, 600)}")
