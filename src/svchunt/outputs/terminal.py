"""The end-of-run summary on the terminal: incidents first, then a per-alert timeline, then honest counts.

Every string that comes from an event or a rule file goes through `terminal_text` (control and bidi
characters shown as escapes, rich markup escaped): a service named `[link=...]` or `\\x1b]0;...` must print
as text, not restyle the console or rewrite earlier lines.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from svchunt.correlate.incident_keys import telling_field
from svchunt.correlate.incidents import Incident, build_incidents, incidents_by_alert
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
# The per-alert timeline is shown by default up to this many alerts (`--timeline` shows it regardless).
TIMELINE_LIMIT = 200
# Long cells (a PowerShell service command line) are cut to this many characters in the timeline.
DETAIL_WIDTH = 160


def _level(level: str) -> str:
    return f"[{LEVEL_STYLE.get(level, '')}]{terminal_text(level)}[/]" if level in LEVEL_STYLE else terminal_text(level)


def _more(table: Table, shown: int, total: int, columns: int) -> None:
    if total > shown:
        table.add_row(f"[dim]… {total - shown} more[/]", *([""] * (columns - 1)))


def _short_time(ts: str | None) -> str:
    return ts[:19].replace("T", " ") if ts else "(no time)"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _first(values: list[str], more_word: str = "more") -> str:
    if not values:
        return ""
    return values[0] + (f" (+{len(values) - 1} {more_word})" if len(values) > 1 else "")


# Below this console width the tables fold the key facts into the title / rule cell instead of columns.
WIDE = 160


def render_incidents(incidents: list[Incident], console: Console, max_rows: int) -> None:
    wide = console.width >= WIDE
    table = Table(title=f"Incidents ({len(incidents)}), most severe first", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("level", no_wrap=True)
    if wide:
        table.add_column("host", max_width=28, overflow="fold")
        table.add_column("start (UTC)", no_wrap=True)
        table.add_column("alerts", justify="right")
    else:
        table.add_column("start (UTC) / host", max_width=22, overflow="fold")
    if wide:
        table.add_column("source", max_width=30, overflow="fold")
        table.add_column("service", max_width=24, overflow="fold")
        table.add_column("image", max_width=36, overflow="fold")
    table.add_column("title", min_width=24, ratio=1, overflow="fold")
    for n, inc in enumerate(incidents[:max_rows], 1):
        row = [str(n), _level(inc.level)]
        if wide:
            row += [terminal_text(inc.host), _short_time(inc.start), str(len(inc.alert_ids))]
            row += [
                terminal_text(_cut(inc.source_text, 60)),
                terminal_text(_cut(_first(inc.services), 48)),
                terminal_text(_cut(_first(inc.images), 72)),
                terminal_text(inc.title),
            ]
        else:
            # The title already names the source and the service; the image goes under it.
            image = f"\n[dim]{terminal_text(_cut(_first(inc.images), 100))}[/]" if inc.images else ""
            count = f"\n[dim]{len(inc.alert_ids)} alert(s)[/]"
            row += [f"{_short_time(inc.start)}\n{terminal_text(inc.host)}{count}", terminal_text(inc.title) + image]
        table.add_row(*row)
    _more(table, min(len(incidents), max_rows), len(incidents), len(table.columns))
    console.print(table)


def render_timeline(result: HuntResult, incidents: list[Incident], console: Console) -> None:
    """One row per alert in time order, like Hayabusa's: time, host, level, rule title, the telling field."""
    wide = console.width >= WIDE
    number = {inc.incident_id: n for n, inc in enumerate(incidents, 1)}
    owner = incidents_by_alert(incidents)
    table = Table(title="Timeline (every alert, oldest first)", box=box.SIMPLE_HEAD)
    if wide:
        table.add_column("time (UTC)", no_wrap=True)
        table.add_column("host", max_width=28, overflow="fold")
    else:
        table.add_column("time (UTC) / host", max_width=22, overflow="fold")
    table.add_column("level", no_wrap=True)
    table.add_column("inc.", justify="right")
    if wide:
        table.add_column("rule", max_width=60, overflow="fold")
    table.add_column("detail" if wide else "rule / detail", min_width=24, ratio=1, overflow="fold")
    for alert in sorted(result.alerts, key=lambda a: a.sort_key()):
        name, value = telling_field(alert)
        detail = terminal_text(_cut(f"{name}: {value}", DETAIL_WIDTH)) if name else ""
        inc = owner.get(alert.alert_id)
        when, host = _short_time(alert.timestamp), terminal_text(alert.computer or "(unknown)")
        row = [
            *((when, host) if wide else (f"{when}\n{host}",)),
            _level(alert.rule.level),
            f"#{number[inc.incident_id]}" if inc else "",
        ]
        if wide:
            row += [terminal_text(alert.rule.title), detail]
        else:
            row.append(terminal_text(alert.rule.title) + (f"\n[dim]{detail}[/]" if detail else ""))
        table.add_row(*row)
    console.print(table)


def render_summary(
    result: HuntResult,
    console: Console,
    max_rows: int = 50,
    incidents: list[Incident] | None = None,
    timeline: bool | None = None,
    wrote: list[tuple[str, str]] | None = None,
) -> None:
    """`timeline`: True always, False never, None when there are at most TIMELINE_LIMIT alerts.
    `wrote`: (what, path) of the files this run wrote, listed at the end."""
    alerts = result.alerts
    stats = result.stats
    incidents = build_incidents(alerts) if incidents is None else incidents

    if alerts:
        render_incidents(incidents, console, max_rows)
        show = timeline if timeline is not None else len(alerts) <= TIMELINE_LIMIT
        if show:
            render_timeline(result, incidents, console)
        elif timeline is None:
            console.print(
                f"[dim]{len(alerts)} alerts: timeline not shown (over {TIMELINE_LIMIT}); --timeline shows it[/]"
            )

        levels = Table(title="Alerts by level", box=box.SIMPLE_HEAD)
        levels.add_column("level")
        levels.add_column("alerts", justify="right")
        for level, count in summary.by_level(alerts).items():
            levels.add_row(_level(level), str(count))
        console.print(levels)

        rules = summary.by_rule(alerts)
        table = Table(title="Alerts by rule", box=box.SIMPLE_HEAD)
        table.add_column("rule")
        table.add_column("level")
        table.add_column("alerts", justify="right")
        for _rule_id, title, level, count in rules[:max_rows]:
            table.add_row(terminal_text(title), _level(level), str(count))
        _more(table, min(len(rules), max_rows), len(rules), 3)
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
    if stats.records_flagged:
        counts.add_row("records kept with changes", str(stats.records_flagged))
    counts.add_row("problems reported", str(len(result.problems)))
    counts.add_row("records matched", str(stats.records_matched))
    counts.add_row("rules loaded", str(stats.rules_loaded))
    counts.add_row("rules refused", str(len(result.refused)))
    counts.add_row("correlations loaded", str(stats.correlations_loaded))
    counts.add_row("alerts", str(len(alerts)))
    counts.add_row("incidents", str(len(incidents)))
    counts.add_row("seconds", f"{stats.seconds:.2f}")
    console.print(counts)

    if result.problems:
        groups = summary.group_problems(result.problems)
        title = "Problems by reason (not read, or kept with changes)" if stats.records_flagged else "Not read (problems by reason)"
        table = Table(title=title, box=box.SIMPLE_HEAD)
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
    for what, path in wrote or []:
        console.print(f"wrote {terminal_text(what)}: {terminal_text(path)}")
