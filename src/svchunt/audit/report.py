"""Audit output: the JSON document (`audit_to_dict`, also what an HTML renderer consumes) and the terminal table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from svchunt.audit.findings import SEVERITY_RANK
from svchunt.audit.runner import AuditResult

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def audit_to_dict(result: AuditResult) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for finding in result.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return {
        "host": result.host,
        "hive": result.hive,
        "control_sets": result.control_sets,
        "current_control_set": result.current_control_set,
        "summary": {"services": len({e.name.lower() for e in result.inventory}),
                    "inventory_rows": len(result.inventory), "findings": counts,
                    "seconds": round(result.seconds, 3)},
        "inventory": [e.to_dict() for e in result.inventory],
        "findings": [f.to_dict() for f in result.findings],
        "mitigations": [m.to_dict() for m in result.mitigations],
        "problems": [{"source": p.source, "position": p.position, "reason": p.reason} for p in result.problems],
        "notes": result.notes,
    }


def write_json(result: AuditResult, path: str | Path) -> None:
    Path(path).write_bytes(orjson.dumps(audit_to_dict(result), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def _clip(text: Any, width: int = 90) -> str:
    text = "" if text is None else str(text)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_report(result: AuditResult, console: Any = None, min_severity: str = "info") -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    services = len({e.name.lower() for e in result.inventory})
    console.print(f"[bold]{result.hive}[/bold] host={result.host or '?'} control sets={', '.join(result.control_sets)}"
                  f" (current {result.current_control_set}) services+drivers={services} ({result.seconds:.2f} s)")
    table = Table(title="Findings", show_lines=False)
    for column in ("severity", "check", "service", "title", "evidence"):
        table.add_column(column, overflow="fold")
    floor = SEVERITY_RANK[min_severity]
    for f in result.findings:
        if SEVERITY_RANK[f.severity] < floor:
            continue
        table.add_row(f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.check, _clip(f.service or "(host)", 30),
                      f.title, _clip(f"{f.value_name or ''}={f.value} — {f.why}", 120))
    console.print(table)
    if result.mitigations:
        mt = Table(title="Mitigations")
        for column in ("mitigation", "state", "value", "detail"):
            mt.add_column(column, overflow="fold")
        for m in result.mitigations:
            mt.add_row(m.name, m.state, _clip(m.value, 40), _clip(m.detail, 100))
        console.print(mt)
    for problem in result.problems:
        console.print(f"[yellow]problem[/] {_clip(problem.source, 60)} {_clip(problem.position, 60)}: "
                      f"{_clip(problem.reason, 200)}")
    for note in result.notes:
        console.print(f"[dim]note[/] {note}")
