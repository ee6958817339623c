"""The end-of-run summary on the terminal: what was found, and honestly what was not read or not run.

Every string that comes from an event or a rule file goes through `rich.markup.escape`: a service named
`[link=...]` or `[/]` must print as text, not restyle (or break) the console output.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from svchunt.model import HuntResult
from svchunt.outputs import summary
from svchunt.outputs.sanitize import terminal_text

LEVEL_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "informational": "dim",
}
# When many rules are refused for the same reason, list this many paths per reason and count the rest.
REFUSED_PER_REASON = 5


def _level(level: str) -> str:
    return f"[{LEVEL_STYLE.get(level, '')}]{terminal_text(level)}[/]" if level in LEVEL_STYLE else terminal_text(level)


def _more(table: Table, shown: int, total: int, columns: int) -> None:
    if total > shown:
        table.add_row(f"[dim]… {total - shown} more[/]", *([""] * (columns - 1)))


def render_summary(result: HuntResult, console: Console, max_rows: int = 50) -> None:
    alerts = result.alerts
    stats = result.stats

    if alerts:
        levels = Table(title="Alerts by level", box=box.SIMPLE_HEAD)
        levels.add_column("level")
        levels.add_column("alerts", justify="right")
        for level, count in summary.by_level(alerts).items():
            levels.add_row(_level(level), str(count))
        console.print(levels)

        rules = summary.by_rule(alerts)
        table = Table(title="Alerts by rule", box=box.SIMPLE_HEAD)
        table.add_column("title")
        table.add_column("level")
        table.add_column("alerts", justify="right")
        table.add_column("rule id", style="dim")
        for rule_id, title, level, count in rules[:max_rows]:
            table.add_row(terminal_text(title), _level(level), str(count), terminal_text(rule_id))
        _more(table, min(len(rules), max_rows), len(rules), 4)
        console.print(table)

        hosts = summary.by_host(alerts)
        table = Table(title="Alerts by host", box=box.SIMPLE_HEAD)
        table.add_column("host")
        table.add_column("alerts", justify="right")
        table.add_column("highest level")
        for host, count, top in hosts[:max_rows]:
            table.add_row(terminal_text(host), str(count), _level(top))
        _more(table, min(len(hosts), max_rows), len(hosts), 3)
        console.print(table)
    else:
        console.print("[bold]No alerts.[/]")

    counts = Table(title="Run", box=box.SIMPLE_HEAD, show_header=False)
    counts.add_column("what")
    counts.add_column("count", justify="right")
    counts.add_row("files", str(stats.files))
    counts.add_row("records read", str(stats.records_read))
    counts.add_row("records skipped", str(stats.records_skipped))
    counts.add_row("files skipped", str(stats.files_skipped))
    counts.add_row("problems reported", str(len(result.problems)))
    counts.add_row("records matched", str(stats.records_matched))
    counts.add_row("rules loaded", str(stats.rules_loaded))
    counts.add_row("rules refused", str(len(result.refused)))
    counts.add_row("correlations loaded", str(stats.correlations_loaded))
    counts.add_row("alerts", str(len(alerts)))
    counts.add_row("seconds", f"{stats.seconds:.2f}")
    console.print(counts)

    if result.problems:
        groups = summary.group_problems(result.problems)
        table = Table(title="Not read (problems by reason)", box=box.SIMPLE_HEAD)
        table.add_column("reason")
        table.add_column("count", justify="right")
        table.add_column("examples")
        for g in groups[:max_rows]:
            examples = "\n".join(f"{terminal_text(src)} ({terminal_text(pos)})" for src, pos in g.examples)
            table.add_row(terminal_text(g.reason), str(g.count), examples)
        _more(table, min(len(groups), max_rows), len(groups), 3)
        console.print(table)

    if result.refused:
        table = Table(title="Rules refused", box=box.SIMPLE_HEAD)
        table.add_column("reason")
        table.add_column("rule file")
        table.add_column("title")
        grouped = summary.group_refusals(result.refused)
        many = len(result.refused) > max_rows
        shown_reasons = 0
        for reason, items in grouped.items():
            if shown_reasons >= max_rows:
                break
            shown_reasons += 1
            listed = items[:REFUSED_PER_REASON] if many else items
            for i, r in enumerate(listed):
                label = f"{terminal_text(reason)} [dim]({len(items)})[/]" if i == 0 else ""
                table.add_row(label, terminal_text(r.path), terminal_text(r.title or r.rule_id or ""))
            if len(items) > len(listed):
                table.add_row("", f"[dim]… {len(items) - len(listed)} more with this reason[/]", "")
        _more(table, shown_reasons, len(grouped), 3)
        console.print(table)

    for note in result.notes:
        console.print(f"[dim]note:[/] {terminal_text(note)}")
